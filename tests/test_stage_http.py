"""Stage bookings over HTTP: date forms, conflicts, chains, exactly-one approval, after the event."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.appkeys import PIPELINE
from bot.clock import FakeClock
from storage.models import Booking, BookingCondition, Request, Ticket
from tests.scene import Scene

TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)  # Wednesday 09:00 in Shanghai
FLAGS = "户外:否 校外:否 重大活动:否"


async def bookings(scene: Scene) -> list[Booking]:
    async with scene.bot.app[PIPELINE].sessions() as s:
        return list((await s.execute(select(Booking).order_by(Booking.id))).scalars())


async def status(scene: Scene, number: int) -> str:
    async with scene.bot.app[PIPELINE].sessions() as s:
        req = await s.get(Request, number)
        assert req is not None
        return req.status


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=TZ)


@pytest.mark.parametrize(
    ("date_text", "time_text", "start", "end"),
    [
        ("今天", "14:00-16:00", at(25, 14), at(25, 16)),
        ("明天", "下午2点到4点", at(26, 14), at(26, 16)),
        ("后天", "9:00-11:30", at(27, 9), at(27, 11, 30)),
        ("下周三", "晚上7点到9点", at(2, 19, month=12), at(2, 21, month=12)),
        ("12月1日", "14:00-16:00", at(1, 14, month=12), at(1, 16, month=12)),
        ("2026-12-01", "上午10点到11点", at(1, 10, month=12), at(1, 11, month=12)),
    ],
)
async def test_date_and_time_forms(
    scene: Scene, date_text: str, time_text: str, start: datetime, end: datetime
) -> None:
    reply = await scene.say("zhaolei", f"借舞台 场地:本部礼堂 日期:{date_text} 时间:{time_text} 活动:排练 {FLAGS}")
    assert "编号 #1" in reply, reply
    [b] = await bookings(scene)
    assert (b.start_at, b.end_at) == (start, end)


async def test_ambiguous_past_and_open_times_get_a_question(scene: Scene) -> None:
    assert "上午还是下午" in await scene.say(
        "zhaolei", f"借舞台 场地:本部礼堂 日期:明天 时间:2点到4点 活动:排练 {FLAGS}"
    )
    assert "开始和结束" in await scene.say("zhaolei", "下午2点")
    assert "编号 #1" in await scene.say("zhaolei", "下午2点到4点")
    assert "已经过去" in await scene.say("liyan", f"借舞台 场地:本部礼堂 日期:今天 时间:7:00-8:00 活动:晨会 {FLAGS}")
    assert "编号 #2" in await scene.say("liyan", "15:00-16:00")
    b1, b2 = await bookings(scene)
    assert (b1.start_at, b1.end_at) == (at(26, 14), at(26, 16))
    assert (b2.start_at, b2.end_at) == (at(25, 15), at(25, 16))


async def test_clash_is_answered_with_the_booking_and_three_free_slots(scene: Scene) -> None:
    await scene.say("zhaolei", f"借舞台 场地:本部礼堂 日期:明天 时间:14:00-16:00 活动:合唱排练 {FLAGS}")
    reply = await scene.say("songtao", f"借舞台 场地:本部礼堂 日期:明天 时间:15:00-17:00 活动:机电技能展示 {FLAGS}")
    assert "与申请 #1（信息技术系“合唱排练”，11月26日（周四）14:00-16:00，审批中）冲突" in reply
    assert reply.count("· 11月26日") == 3
    for slot in ("11月26日（周四）16:00-18:00", "11月26日（周四）16:30-18:30", "11月26日（周四）17:00-19:00"):
        assert slot in reply
    # Picking a free slot instead submits at once.
    assert "编号 #2" in await scene.say("songtao", "时间:16:00-18:00")
    assert len(await bookings(scene)) == 2
    # Another venue is a different slot altogether.
    assert "编号 #3" in await scene.say("liyan", f"借舞台 场地:本部报告厅 日期:明天 时间:14:00-16:00 活动:讲座 {FLAGS}")


async def test_competing_requests_director_sees_both_and_exactly_one_wins(scene: Scene) -> None:
    await scene.say("zhaolei", f"借舞台 场地:本部礼堂 日期:明天 时间:14:00-16:00 活动:合唱排练 {FLAGS}")
    await scene.say("songtao", f"借舞台 场地:本部礼堂 日期:明天 时间:15:00-17:00 活动:技能展示 {FLAGS}")
    assert "中心主任裁决" in await scene.say("songtao", "是")
    cards = scene.cards("chenhao")
    assert len(cards) == 2
    assert ("冲突", "申请 #1 合唱排练") in [(h["keyname"], h["value"]) for h in cards[1]["horizontal_content_list"]]
    posts = []
    for card in cards:
        key = next(b["key"] for b in card["button_list"] if b["text"] == "同意")
        posts.append(
            scene.bot.sender.card_click(
                "chenhao", card["task_id"], key, scene.emu.issue_click_code(card["task_id"], "chenhao")
            )
        )
    assert [p.status for p in await asyncio.gather(*posts)] == [200, 200]
    await scene.bot.settle()
    states = sorted([await status(scene, 1), await status(scene, 2)])
    assert states == ["approved", "rejected"]
    loser = "zhaolei" if await status(scene, 1) == "rejected" else "songtao"
    assert "已批准了" in scene.last_text(loser)
    assert [b.holds for b in await bookings(scene)].count(True) == 1


async def test_outdoor_and_offsite_chains(scene: Scene) -> None:
    reply = await scene.say(
        "songtao", "借舞台 场地:东湖校区舞台 日期:明天 时间:14:00-16:00 活动:运动会 户外:是 校外:否 重大活动:否"
    )
    assert "信息中心主任 → 主管副校长" in reply
    await scene.say("chenhao", "同意 #1")
    assert scene.card("sunli")  # the mech department's supervising VP
    await scene.say("sunli", "同意 #1")
    assert await status(scene, 1) == "approved"
    reply = await scene.say(
        "zhaolei", "借舞台 场地:本部报告厅 日期:明天 时间:14:00-16:00 活动:社区演出 户外:否 校外:是 重大活动:否"
    )
    assert "信息中心主任 → 校长" in reply
    await scene.say("chenhao", "同意 #2")
    await scene.say("wangjianguo", "同意 #2")
    assert await status(scene, 2) == "approved"


async def test_major_event_check_and_condition_opening_a_ticket(scene: Scene, clock: FakeClock) -> None:
    await scene.say(
        "zhaolei", "借舞台 场地:本部礼堂 日期:12月1日 时间:14:00-16:00 活动:校庆彩排 户外:否 校外:否 重大活动:是"
    )
    await scene.click("chenhao", scene.card("chenhao"), "同意")
    # Within 15 days: the stage technician is asked at once (beside the card to claim the booking).
    [check] = [c for c in scene.cards("zhanglei") if c["main_title"]["title"] == "重大活动设备调试 #1"]
    await scene.click("zhanglei", check, "已调试")
    assert "调试完毕" in scene.last_text("zhaolei")
    clock.advance((at(1, 16, 31, month=12) - START).total_seconds())
    await scene.tick()
    cond = scene.card("zhaolei")
    assert cond["main_title"]["title"] == "设备运转情况 #1"
    assert "说明" in await scene.click("zhaolei", cond, "异常")
    assert "报修 #1" in await scene.say("zhaolei", "左侧音箱有杂音")
    async with scene.bot.app[PIPELINE].sessions() as s:
        t = (await s.execute(select(Ticket))).scalar_one()
    assert (t.category, t.location, t.booking_id) == ("stage", "本部礼堂", 1)
    assert "左侧音箱有杂音" in t.description
    assert scene.card("zhanglei")["main_title"]["title"] == "报修 #1 · 舞台音响"
    [b] = await bookings(scene)
    assert (b.condition, b.ticket_id, b.checked_by) == (BookingCondition.ABNORMAL, 1, "zhanglei")


async def test_cancel_frees_the_slot(scene: Scene) -> None:
    await scene.say("zhaolei", f"借舞台 场地:本部礼堂 日期:明天 时间:14:00-16:00 活动:排练 {FLAGS}")
    await scene.say("chenhao", "同意 #1")
    assert "冲突" in await scene.say("songtao", f"借舞台 场地:本部礼堂 日期:明天 时间:14:00-16:00 活动:展示 {FLAGS}")
    await scene.say("songtao", "取消")
    assert "没有找到" in await scene.say("songtao", "取消预约 #1")  # not his booking
    assert "已释放" in await scene.say("zhaolei", "取消预约 #1")
    assert "已释放" in scene.last_text("chenhao")
    assert "编号 #2" in await scene.say("songtao", f"借舞台 场地:本部礼堂 日期:明天 时间:14:00-16:00 活动:展示 {FLAGS}")


async def test_pending_request_withdrawn_frees_the_slot(scene: Scene) -> None:
    await scene.say("zhaolei", f"借舞台 场地:本部礼堂 日期:明天 时间:14:00-16:00 活动:排练 {FLAGS}")
    await scene.say("zhaolei", "撤销 #1")
    assert "编号 #2" in await scene.say("songtao", f"借舞台 场地:本部礼堂 日期:明天 时间:14:00-16:00 活动:展示 {FLAGS}")
