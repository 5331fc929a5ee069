"""Stage operations after approval (issue 12 point 5) over encrypted HTTP with a fake clock:
the technician on duty (claim card, reminder, unclaimed → director), the closing checklist."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from sqlalchemy import select

from bot.appkeys import PIPELINE
from bot.clock import FakeClock
from bot.emulator.server import Emulator
from storage.models import ApprovalAudit, Booking, BookingCondition, StageCrew, StageDamage, Ticket
from tests.conftest import make_config, start_bot
from tests.scene import Scene
from tests.test_registers import sheet

TZ = ZoneInfo("Asia/Shanghai")
FLAGS = "户外:否 校外:否 重大活动:否"
# The scene starts on Wednesday 2026-11-25 09:00; 明天 is Thursday the 26th.
BOOK = f"借舞台 场地:本部礼堂 日期:明天 时间:14:00-16:00 活动:合唱排练 {FLAGS}"
CHECKLIST = ["话筒电池取出", "电源关闭", "门已上锁", "设备已擦拭"]


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ)


async def at(scene: Scene, clock: FakeClock, when: datetime) -> None:
    clock.advance((when - clock.now()).total_seconds())
    await scene.tick()


def titled(scene: Scene, userid: str, prefix: str) -> list[dict[str, Any]]:
    return [c for c in scene.cards(userid) if c["main_title"]["title"].startswith(prefix)]


def buttons(card: dict[str, Any]) -> list[str]:
    return [b["text"] for b in card["button_list"]]


async def crew(scene: Scene) -> StageCrew:
    async with scene.bot.app[PIPELINE].sessions() as s:
        found = (await s.execute(select(StageCrew))).scalar_one()
        s.expunge(found)
        return found


async def booked(scene: Scene, text: str = BOOK) -> int:
    """zhaolei books, the director approves; the request's number."""
    reply = await scene.say("zhaolei", text)
    number = int(reply.split("编号 #")[1].split("：")[0])
    await scene.say("chenhao", f"同意 #{number}")
    return number


# -- 1. the technician on duty -----------------------------------------------------------------------
async def test_first_technician_to_claim_is_on_duty_and_the_others_see_it_taken(scene: Scene) -> None:
    n = await booked(scene)
    [card_zhang] = titled(scene, "zhanglei", f"舞台值守 申请 #{n}")
    [card_xu] = titled(scene, "xuqiang", f"舞台值守 申请 #{n}")
    assert buttons(card_xu) == ["接单"]
    assert ("场地", "本部礼堂") in [(r["keyname"], r["value"]) for r in card_xu["horizontal_content_list"]]
    assert not titled(scene, "lihua", "舞台值守")  # only the stage technicians

    reply = await scene.click("xuqiang", card_xu, "接单")
    assert f"您已接单：申请 #{n}“合唱排练”，本部礼堂" in reply and "30 分钟" in reply
    assert scene.got("zhaolei", "由舞台技术员许强负责设备操作")
    assert "已由许强接单" in scene.update_labels("zhanglei")
    # The later click, and a second claim by the one on duty, change nothing.
    assert f"申请 #{n}（本部礼堂，11月26日（周四）14:00-16:00）已由许强接单了" in await scene.click(
        "zhanglei", card_zhang, "接单"
    )
    assert "您已经接下" in await scene.say("xuqiang", f"接舞台 #S{n}")
    assert (await crew(scene)).technician == "xuqiang"


async def test_claim_by_text_and_who_may_not(scene: Scene) -> None:
    n = await booked(scene)
    assert "只有舞台技术员" in await scene.say("lihua", f"接舞台 申请 #{n}")  # a technician, not for the stage
    assert "技术员" in await scene.say("zhaolei", f"接舞台 #{n}")  # the router refuses a teacher
    assert "没有找到舞台预约" in await scene.say("zhanglei", "接舞台 #99")
    assert "例如：#12" in await scene.say("zhanglei", "接舞台 十二")  # malformed: asked again, with an example
    assert (await crew(scene)).technician is None
    assert "您已接单" in await scene.say("zhanglei", f"接舞台 #{n}")
    assert (await crew(scene)).technician == "zhanglei"
    assert "已由张磊接单" in scene.update_labels("xuqiang")


async def test_the_technician_is_reminded_before_the_start_at_the_right_time(scene: Scene, clock: FakeClock) -> None:
    n = await booked(scene)
    await scene.say("zhanglei", f"接舞台 #{n}")
    await at(scene, clock, local(26, 13, 29))
    assert not scene.got("zhanglei", "分钟后开始")
    await at(scene, clock, local(26, 13, 30))
    reminder = scene.last_text("zhanglei")
    assert f"申请 #{n}“合唱排练”将在 30 分钟后开始（本部礼堂" in reminder and "分钟后开始" in reminder
    await at(scene, clock, local(26, 13, 40))
    assert sum("分钟后开始" in t for t in scene.texts("zhanglei")) == 1  # once
    assert not scene.got("xuqiang", "分钟后开始")


async def test_the_reminder_lead_is_configurable(
    emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    emulator.clock = lambda: clock.now().timestamp()
    config = make_config(emulator.base_url, db_url, stage={"crew_reminder_minutes": 60})
    scene = Scene(await start_bot(config, http, clock=clock, run_dispatcher=False), emulator)
    try:
        n = await booked(scene)
        assert "60 分钟" in await scene.say("zhanglei", f"接舞台 #{n}")
        await at(scene, clock, local(26, 12, 59))
        assert not scene.got("zhanglei", "分钟后开始")
        await at(scene, clock, local(26, 13, 0))
        assert scene.got("zhanglei", "将在 60 分钟后开始")
    finally:
        await scene.bot.stop()


async def test_unclaimed_a_day_before_the_director_is_told(scene: Scene, clock: FakeClock) -> None:
    n = await booked(scene, f"借舞台 场地:本部礼堂 日期:后天 时间:14:00-16:00 活动:讲座 {FLAGS}")
    await at(scene, clock, local(26, 13, 59))
    assert not scene.got("chenhao", "还没有舞台技术员接单")
    await at(scene, clock, local(26, 14, 0))
    told = scene.last_text("chenhao")
    assert f"申请 #{n}“讲座”" in told and "还没有舞台技术员接单" in told and "张磊、许强" in told
    # Claimed in time: nobody is told.
    m = await booked(scene, f"借舞台 场地:本部报告厅 日期:11月30日 时间:9:00-10:00 活动:家长会 {FLAGS}")
    await scene.say("xuqiang", f"接舞台 #{m}")
    await at(scene, clock, local(29, 10, 0))
    assert sum("还没有舞台技术员接单" in t for t in scene.texts("chenhao")) == 1


async def test_the_director_assigns_and_reassigns_the_technician(
    scene: Scene, clock: FakeClock, tmp_path: Path
) -> None:
    n = await booked(scene, f"借舞台 场地:本部礼堂 日期:后天 时间:14:00-16:00 活动:讲座 {FLAGS}")
    assert "只有信息中心主任" in await scene.say("xuqiang", f"指派舞台 #{n} 许强")  # the router refuses
    assert "“李华”不是舞台技术员。舞台技术员：张磊、许强" in await scene.say("chenhao", f"指派舞台 #{n} 李华")
    await scene.say("chenhao", "取消")
    # Unclaimed a day before: the director's card has a button per stage technician.
    await at(scene, clock, local(26, 14, 0))
    [card] = titled(scene, "chenhao", f"舞台无人值守 申请 #{n}")
    assert buttons(card) == ["张磊", "许强"]
    assert f"已指派许强值守申请 #{n}“讲座”" in await scene.click("chenhao", card, "许强")
    assert scene.got("xuqiang", f"陈浩指派您值守舞台：申请 #{n}“讲座”")
    assert "已指派给许强" in scene.update_labels("zhanglei")  # the claim cards are closed
    assert scene.got("zhaolei", "由舞台技术员许强负责设备操作")
    assert "已由许强接单了" in await scene.say("zhanglei", f"接舞台 #{n}")
    # Reassigned by text; 指派 with a request's number is the stage's (a bare number: 活动服务).
    reply = await scene.say("chenhao", f"指派 申请 #{n} 张磊")
    assert f"已指派张磊值守申请 #{n}" in reply and "原值守的许强已收到通知" in reply
    assert scene.got("xuqiang", f"申请 #{n}“讲座”（本部礼堂，11月27日（周五）14:00-16:00）改由张磊值守")
    assert (await crew(scene)).technician == "zhanglei"
    await at(scene, clock, local(27, 13, 30))
    assert scene.got("zhanglei", "将在 30 分钟后开始") and not scene.got("xuqiang", "将在 30 分钟后开始")
    rows = await sheet(scene, "舞台设备使用登记表", tmp_path)
    assert "技术员张磊" in rows[2][7]
    await at(scene, clock, local(27, 16, 30))
    assert "不是进行中" in await scene.say("chenhao", f"指派舞台 #{n} 许强")  # over: nothing to assign


async def test_approved_on_the_day_the_technicians_get_half_the_time_left(scene: Scene, clock: FakeClock) -> None:
    n = await booked(scene, f"借舞台 场地:本部礼堂 日期:今天 时间:15:00-16:00 活动:彩排 {FLAGS}")
    await at(scene, clock, local(25, 11, 59))  # approved at 09:00, starts at 15:00: told at 12:00
    assert not scene.got("chenhao", "还没有舞台技术员接单")
    await at(scene, clock, local(25, 12, 0))
    assert scene.got("chenhao", f"申请 #{n}“彩排”")


async def test_cancelled_after_the_claim_the_technician_is_told_and_nothing_fires(
    scene: Scene, clock: FakeClock
) -> None:
    n = await booked(scene)
    await scene.say("xuqiang", f"接舞台 #{n}")
    await scene.say("zhaolei", f"取消预约 #{n}")
    assert scene.got("xuqiang", f"申请 #{n}“合唱排练”（本部礼堂，11月26日（周四）14:00-16:00）已被申请人取消")
    await at(scene, clock, local(26, 17, 0))
    assert not scene.got("xuqiang", "分钟后开始")
    assert not titled(scene, "xuqiang", "收场检查")
    assert "不是进行中的舞台预约" in await scene.say("zhanglei", f"接舞台 #{n}")


async def test_claim_and_reminder_survive_a_restart(
    scene: Scene, emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    n = await booked(scene)
    await scene.bot.stop()  # down while the technicians read their cards
    bot = await start_bot(make_config(emulator.base_url, db_url), http, clock=clock, run_dispatcher=False)
    again = Scene(bot, emulator)
    try:
        [card] = titled(again, "xuqiang", f"舞台值守 申请 #{n}")
        assert "您已接单" in await again.click("xuqiang", card, "接单")
        await bot.stop()
        bot = await start_bot(make_config(emulator.base_url, db_url), http, clock=clock, run_dispatcher=False)
        again = Scene(bot, emulator)
        clock.advance((local(26, 13, 45) - clock.now()).total_seconds())  # down across 13:30
        await again.tick()  # the first tick fires what came due while down
        assert again.got("xuqiang", "将在 30 分钟后开始")
        assert "已由许强接单了" in await again.say("zhanglei", f"接舞台 #{n}")
    finally:
        await bot.stop()
        scene.bot.runner = bot.runner  # the fixture's stop() is now a no-op on a cleaned runner


# -- 2. the closing checklist ----------------------------------------------------------------------
async def test_closing_checklist_ticked_on_the_card_and_what_was_not_done_is_kept(
    scene: Scene, clock: FakeClock
) -> None:
    n = await booked(scene)
    await scene.say("xuqiang", f"接舞台 #{n}")
    await at(scene, clock, local(26, 16, 29))
    assert not titled(scene, "xuqiang", "收场检查")
    await at(scene, clock, local(26, 16, 30))
    assert titled(scene, "zhaolei", f"设备运转情况 #{n}")  # the user still reports how it ran
    [card] = titled(scene, "xuqiang", f"收场检查 申请 #{n}")
    assert not titled(scene, "zhanglei", "收场检查")  # only the technician on duty
    assert buttons(card) == [f"{i}. {item}" for i, item in enumerate(CHECKLIST, 1)] + ["确认收场"]
    assert "还差：电源关闭、门已上锁、设备已擦拭" in await scene.click("xuqiang", card, "1. 话筒电池取出")
    assert "2/4" in await scene.click("xuqiang", card, "2. 电源关闭")
    clock.advance(5)  # a second click is a new event (WeCom dedupes by the click's time)
    assert "2/4" in await scene.click("xuqiang", card, "2. 电源关闭")  # ticking twice counts once
    reply = await scene.click("xuqiang", card, "确认收场")
    assert "未完成：门已上锁、设备已擦拭" in reply
    slot = "本部礼堂，11月26日（周四）14:00-16:00"
    assert scene.got("chenhao", f"申请 #{n}“合唱排练”（{slot}），许强确认时未完成：门已上锁、设备已擦拭")
    assert "已收场·2项未完成" in scene.update_labels("xuqiang")
    c = await crew(scene)
    assert (c.closed_by, c.missed) == ("xuqiang", {"items": ["门已上锁", "设备已擦拭"]})
    clock.advance(5)
    assert "已由许强确认过了（未完成：门已上锁、设备已擦拭）" in await scene.click("xuqiang", card, "确认收场")
    assert "确认过了" in await scene.say("xuqiang", f"舞台检查 #{n} 全部")
    assert (await crew(scene)).missed == {"items": ["门已上锁", "设备已擦拭"]}


async def test_closing_checklist_by_text_with_bad_input(scene: Scene, clock: FakeClock) -> None:
    n = await booked(scene)
    await scene.say("xuqiang", f"接舞台 #{n}")
    assert "16:00 才结束" in await scene.say("xuqiang", f"舞台检查 #{n} 全部")
    await at(scene, clock, local(26, 16, 30))
    reply = await scene.say("xuqiang", f"舞台检查 #{n} 1,9")
    assert "1. 话筒电池取出" in reply and "4. 设备已擦拭" in reply and "例如 1,2,3" in reply
    assert (await crew(scene)).closed_at is None  # nothing recorded
    assert "取消" in await scene.say("xuqiang", "取消")
    assert "由值守的舞台技术员许强负责" in await scene.say("zhanglei", f"舞台检查 #{n} 全部")
    assert "技术员" in await scene.say("zhaolei", f"舞台检查 #{n} 全部")  # not a technician's word
    assert "例如：#12" in await scene.say("xuqiang", "舞台检查 #S")  # malformed: asked again, with an example
    assert "取消" in await scene.say("xuqiang", "取消")
    reply = await scene.say("xuqiang", f"舞台检查 #{n} 电源关闭、1 门已上锁 4")
    assert "各项均已完成" in reply
    assert (await crew(scene)).missed == {"items": []}
    assert not scene.got("chenhao", "未完成")
    assert "已收场·许强" in scene.update_labels("xuqiang")


async def test_closing_with_nothing_done_and_unclaimed_goes_to_every_stage_technician(
    scene: Scene, clock: FakeClock
) -> None:
    n = await booked(scene)
    await at(scene, clock, local(26, 16, 30))
    assert titled(scene, "zhanglei", f"收场检查 申请 #{n}") and titled(scene, "xuqiang", f"收场检查 申请 #{n}")
    assert "未完成：话筒电池取出、电源关闭、门已上锁、设备已擦拭" in await scene.say("zhanglei", f"舞台检查 #{n} 无")
    assert "已收场·4项未完成" in scene.update_labels("xuqiang")
    async with scene.bot.app[PIPELINE].sessions() as s:
        assert (await s.execute(select(Booking))).scalar_one().holds


# -- 3. damage caused by a person: who pays, and a refusal to the 校委会 ------------------------------------
async def damages(scene: Scene) -> list[StageDamage]:
    async with scene.bot.app[PIPELINE].sessions() as s:
        found = list((await s.execute(select(StageDamage))).scalars())
        for d in found:
            s.expunge(d)
        return found


async def history(scene: Scene, number: int) -> list[str]:
    async with scene.bot.app[PIPELINE].sessions() as s:
        q = select(ApprovalAudit.action).where(ApprovalAudit.request_id == number).order_by(ApprovalAudit.id)
        return [a for a in (await s.execute(q)).scalars() if a.startswith("damage_")]


async def test_damage_reported_recorded_refused_to_the_committee_then_paid(
    scene: Scene, clock: FakeClock, tmp_path: Path
) -> None:
    n = await booked(scene)
    await scene.say("zhanglei", f"接舞台 #{n}")
    await at(scene, clock, local(26, 16, 30))
    [cond] = titled(scene, "zhaolei", f"设备运转情况 #{n}")
    assert buttons(cond) == ["正常", "异常", "人为损坏"]
    assert "说明" in await scene.click("zhaolei", cond, "人为损坏")
    assert "报修 #1" in await scene.say("zhaolei", "一支无线话筒被摔坏")
    async with scene.bot.app[PIPELINE].sessions() as s:
        ticket = (await s.execute(select(Ticket))).scalar_one()
        assert ticket.damage and "人为损坏：一支无线话筒被摔坏" in ticket.description
        assert (await s.execute(select(Booking))).scalar_one().condition == BookingCondition.DAMAGED
    for told in ("chenhao", "zhanglei"):
        assert scene.got(told, f"赔偿 #{n} 宋涛 300 话筒摔坏"), told  # how to record who pays

    reply = await scene.say("zhanglei", f"赔偿 #{n} 赵磊 300 话筒摔坏")
    assert f"已登记赔偿：申请 #{n}（本部礼堂“合唱排练”），责任方赵磊，金额 300 元，话筒摔坏" in reply
    assert scene.got("chenhao", "张磊登记了舞台设备赔偿")
    [card] = titled(scene, "zhaolei", f"赔偿通知 申请 #{n}")
    assert buttons(card) == ["接受", "拒绝"]
    assert ("金额", "300 元") in [(r["keyname"], r["value"]) for r in card["horizontal_content_list"]]
    assert "原因" in await scene.click("zhaolei", card, "拒绝")
    assert "上报校委会" in await scene.say("zhaolei", "进场时话筒已经有问题")
    for member in ("wangjianguo", "liuyang", "zhaomin"):  # the committee role in the example
        notice = scene.last_text(member)
        assert notice.startswith("【上报校委会】") and "赵磊拒绝赔偿，原因：进场时话筒已经有问题" in notice, member
    assert scene.got("chenhao", "赵磊拒绝赔偿") and scene.got("zhanglei", "赵磊拒绝赔偿")
    assert "已拒绝·上报校委会" in scene.update_labels("zhaolei")
    assert "已经答复过了（已拒绝（已上报校委会））" in await scene.say("zhaolei", f"接受赔偿 #{n}")

    assert f"申请 #{n} 的赔偿 300 元（赵磊）已付清" in await scene.say("zhanglei", f"赔偿 #{n} 已付")
    assert scene.got("zhaolei", "信息中心已收到您就申请")
    assert "已记为付清" in await scene.say("chenhao", f"赔偿 #{n} 已付")
    [d] = await damages(scene)
    assert (d.liable_user, d.amount_cents, d.status) == ("zhaolei", 30000, "refused")
    assert d.answer_note == "进场时话筒已经有问题"
    assert d.paid_at is not None
    assert await history(scene, n) == ["damage_recorded", "damage_refused", "damage_paid"]
    rows = await sheet(scene, "舞台设备使用登记表", tmp_path)
    assert rows[2][6] == "人为损坏" and rows[2][7].endswith("技术员张磊 赔偿 赵磊 300元 已付")


async def test_a_unit_is_liable_its_head_accepts_by_text(scene: Scene, clock: FakeClock) -> None:
    n = await booked(scene)
    await at(scene, clock, local(26, 16, 30))
    assert "报修" in await scene.say("zhaolei", f"设备情况 #{n} 损坏 灯架被撞弯")
    reply = await scene.say("chenhao", f"赔偿 编号:#{n} 责任人:机电工程系 金额:120.5元 说明:搬运时撞弯灯架")
    assert "责任方机电工程系，金额 120.5 元" in reply and "已通知宋涛确认" in reply
    [card] = titled(scene, "songtao", f"赔偿通知 申请 #{n}")  # the unit's head answers for it
    assert "由机电工程系照价赔偿 120.5 元" in card["main_title"]["desc"]
    assert "没有需要您处理的赔偿" in await scene.say("zhaolei", f"接受赔偿 #{n}")
    assert "已记录您接受赔偿" in await scene.say("songtao", f"接受赔偿 #{n}")
    assert scene.got("chenhao", f"宋涛接受了申请 #{n} 的赔偿 120.5 元（机电工程系）")
    assert "已接受赔偿" in scene.update_labels("songtao")
    assert not any("校委会" in t for t in scene.texts("wangjianguo"))
    [d] = await damages(scene)
    assert (d.liable_unit, d.answerer, d.status, d.paid_at) == ("mech", "songtao", "accepted", None)


async def test_bad_damage_input_changes_nothing(scene: Scene, clock: FakeClock) -> None:
    n = await booked(scene)
    assert "没有找到“某某某”" in await scene.say("zhanglei", f"赔偿 #{n} 某某某 300")
    assert "取消" in await scene.say("zhanglei", "取消")
    assert "例如 300 或 120.5" in await scene.say("zhanglei", f"赔偿 #{n} 赵磊 三百块")
    assert "例如 300 或 120.5" in await scene.say("zhanglei", "0")
    assert "取消" in await scene.say("zhanglei", "取消")
    assert "技术员" in await scene.say("zhaolei", f"赔偿 #{n} 宋涛 300")  # a teacher: refused before any question
    assert "舞台技术员或中心主任登记" in await scene.say("lihua", f"赔偿 #{n} 宋涛 300")  # not a stage technician
    assert "没有需要您处理的赔偿记录" in await scene.say("zhanglei", f"赔偿 #{n} 已付")
    assert "没有找到舞台预约" in await scene.say("zhanglei", "赔偿 #99 宋涛 300")
    assert "没有需要您处理的赔偿" in await scene.say("songtao", f"拒绝赔偿 #{n} 不是我")
    assert await damages(scene) == []
    assert await history(scene, n) == []
    assert "已登记赔偿" in await scene.say("zhanglei", f"赔偿 #{n} 宋涛 300")
    assert "已登记过赔偿：宋涛 300 元，待答复" in await scene.say("chenhao", f"赔偿 #{n} 赵磊 50")
    assert len(await damages(scene)) == 1


async def test_a_refusal_after_a_restart_still_reaches_the_committee(
    scene: Scene, emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    n = await booked(scene)
    await scene.say("zhanglei", f"赔偿 #{n} 宋涛 80 踩坏地排线")
    await scene.bot.stop()
    bot = await start_bot(make_config(emulator.base_url, db_url), http, clock=clock, run_dispatcher=False)
    again = Scene(bot, emulator)
    try:
        [card] = titled(again, "songtao", f"赔偿通知 申请 #{n}")
        assert "原因" in await again.click("songtao", card, "拒绝")
        assert "上报校委会" in await again.say("songtao", "线是别人踩的")
        assert again.got("wangjianguo", "宋涛拒绝赔偿，原因：线是别人踩的")
        assert await history(again, n) == ["damage_recorded", "damage_refused"]
    finally:
        await bot.stop()
        scene.bot.runner = bot.runner  # the fixture's stop() is now a no-op on a cleaned runner


# -- 4. the mobile speaker kit is booked like a venue ----------------------------------------------
async def test_the_speaker_kit_is_booked_with_clash_checks(scene: Scene) -> None:
    assert "哪一天" in await scene.say("zhaolei", "借音响")  # no venue to ask: it is the kit
    assert "几点到几点" in await scene.say("zhaolei", "明天")
    await scene.say("zhaolei", "14:00-16:00")
    await scene.say("zhaolei", "升旗仪式")
    await scene.say("zhaolei", "是")
    await scene.say("zhaolei", "否")
    reply = await scene.say("zhaolei", "否")
    assert "编号 #1：移动音响，11月26日（周四）14:00-16:00" in reply and "主管副校长" in reply
    reply = await scene.say("songtao", f"借音響 日期:明天 時間:15:00-17:00 活動:運動會 {FLAGS}")
    assert "与申请 #1（信息技术系“升旗仪式”，11月26日（周四）14:00-16:00，审批中）冲突" in reply
    assert "11月26日（周四）16:00-18:00" in reply  # the nearest free slot of the kit
    assert "取消" in await scene.say("songtao", "取消")
    # A venue at the same time is another resource altogether.
    assert "编号 #2" in await scene.say("songtao", f"借舞台 场地:本部礼堂 日期:明天 时间:15:00-17:00 活动:展示 {FLAGS}")
    async with scene.bot.app[PIPELINE].sessions() as s:
        kit, hall = (await s.execute(select(Booking).order_by(Booking.id))).scalars()
    assert (kit.venue, hall.venue) == ("speaker_kit", "main_hall")


async def test_without_a_kit_in_the_config_booking_one_says_so(
    emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    emulator.clock = lambda: clock.now().timestamp()
    config = make_config(emulator.base_url, db_url)
    config = config.model_copy(update={"venues": tuple(v for v in config.venues if v.kind == "venue")})
    scene = Scene(await start_bot(config, http, clock=clock, run_dispatcher=False), emulator)
    try:
        reply = await scene.say("zhaolei", f"借音响 日期:明天 时间:14:00-16:00 活动:升旗仪式 {FLAGS}")
        assert "没有配置可预约的移动音响" in reply
        async with scene.bot.app[PIPELINE].sessions() as s:
            assert list((await s.execute(select(Booking))).scalars()) == []
    finally:
        await scene.bot.stop()


async def test_no_damage_on_a_booking_that_was_never_approved(scene: Scene) -> None:
    reply = await scene.say("zhaolei", BOOK)
    n = int(reply.split("编号 #")[1].split("：")[0])
    assert "没有获批" in await scene.say("zhanglei", f"赔偿 #{n} 赵磊 300")
    assert await damages(scene) == []
