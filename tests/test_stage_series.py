"""A weekly rehearsal booked as one request (issue 12 point 5) over encrypted HTTP, fake clock:
every occurrence checked and shown before confirming, one approval, then each occurrence has its
own number, reminder, condition card and closing checklist; one or all cancelled."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import aiohttp
from sqlalchemy import func, select

from bot.appkeys import PIPELINE
from bot.clock import FakeClock
from bot.emulator.server import Emulator
from storage.models import Booking, Request, StageCrew
from tests.conftest import make_config, start_bot
from tests.scene import Scene
from tests.test_stage_ops import FLAGS, at, buttons, titled

TZ = ZoneInfo("Asia/Shanghai")
# The scene starts on Wednesday 2026-11-25 09:00: the Thursdays are 26 Nov, 3, 10 and 17 Dec.
WEEKLY = f"借舞台 场地:本部礼堂 时间:每周四 14:00-16:00 共4次 活动:合唱排练 {FLAGS}"


def local(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=TZ)


async def counts(scene: Scene) -> tuple[int, int, int]:
    """(requests, bookings holding their slot, technicians on duty)."""
    async with scene.bot.app[PIPELINE].sessions() as s:
        requests = (await s.execute(select(func.count()).select_from(Request))).scalar_one()
        holding = (await s.execute(select(func.count()).where(Booking.holds.is_(True)))).scalar_one()
        on_duty = (await s.execute(select(func.count()).where(StageCrew.technician.is_not(None)))).scalar_one()
        return requests, holding, on_duty


async def test_a_weekly_rehearsal_from_preview_to_each_occurrence(scene: Scene, clock: FakeClock) -> None:
    # Someone else already asked for the second Thursday.
    assert "编号 #1" in await scene.say(
        "songtao", f"借舞台 场地:本部礼堂 日期:12月3日 时间:15:00-17:00 活动:展示 {FLAGS}"
    )

    preview = await scene.say("zhaolei", WEEKLY)
    assert "每周四 14:00-16:00，11月26日（周四）起共4次（至12月17日（周四））" in preview
    for day in ("11月26日（周四）14:00-16:00", "12月3日（周四）14:00-16:00", "12月10日", "12月17日"):
        assert day in preview
    assert "12月3日（周四）14:00-16:00 ✗ 与申请 #1" in preview and "其中 3 次空闲，1 次冲突" in preview
    assert await counts(scene) == (1, 1, 0)  # nothing stored before the answer

    submitted = await scene.say("zhaolei", "是")
    assert "已提交每周预约（申请 #2）" in submitted and "申请以下 3 次" in submitted
    assert "有冲突、不在申请中：12月3日（周四）14:00-16:00（与申请 #1）" in submitted
    told = scene.last_text("chenhao")  # the approver has the whole list, the card the rule
    assert "每周预约（申请 #2）" in told and "12月10日（周四）14:00-16:00" in told and "12月17日" in told
    card = scene.card("chenhao")
    rows = {r["keyname"]: r["value"] for r in card["horizontal_content_list"]}
    assert rows["每周"].startswith("每周四共3次至12月17日") and rows["时间"] == "11月26日（周四）14:00-16:00"

    # While pending, the later occurrences are held too.
    clash = await scene.say("majun", f"借舞台 场地:本部礼堂 日期:12月10日 时间:15:00-16:00 活动:讲座 {FLAGS}")
    assert "与申请 #2" in clash and "合唱排练" in clash
    await scene.say("majun", "取消")

    # One approval: each occurrence a request of its own.
    await scene.click("chenhao", card, "同意")
    booked = scene.last_text("zhaolei")
    assert "每周预约（申请 #2）已批准，共 3 次" in booked
    assert "申请 #3 12月10日（周四）14:00-16:00" in booked and "申请 #4 12月17日（周四）14:00-16:00" in booked
    assert await counts(scene) == (4, 4, 0)
    # One claim card for the series; claiming it covers the later ones.
    assert [c["main_title"]["title"] for c in titled(scene, "xuqiang", "舞台值守")] == ["舞台值守 申请 #2"]
    [claim] = titled(scene, "xuqiang", "舞台值守")
    assert "之后的 2 次" in claim["main_title"]["desc"]
    assert "之后的 2 次也由您值守" in await scene.click("xuqiang", claim, "接单")
    assert await counts(scene) == (4, 4, 3)

    # The first Thursday: reminder, condition card and closing checklist, for #2 only.
    await at(scene, clock, local(11, 26, 13, 30))
    assert scene.got("xuqiang", "申请 #2“合唱排练”将在 30 分钟后开始")
    await at(scene, clock, local(11, 26, 16, 30))
    assert titled(scene, "zhaolei", "设备运转情况 #2") and not titled(scene, "zhaolei", "设备运转情况 #3")
    [closing] = titled(scene, "xuqiang", "收场检查")
    assert closing["main_title"]["title"] == "收场检查 申请 #2"
    assert "收场" in await scene.click("xuqiang", closing, "确认收场")

    # One occurrence given back: nothing fires for it; the next one goes on.
    assert "已取消" in await scene.say("zhaolei", "取消预约 #3")
    assert scene.got("xuqiang", "申请 #3“合唱排练”（本部礼堂，12月10日（周四）14:00-16:00）已被申请人取消")
    await at(scene, clock, local(12, 10, 17, 0))
    assert not scene.got("xuqiang", "申请 #3“合唱排练”将在")
    assert not titled(scene, "zhaolei", "设备运转情况 #3")
    await at(scene, clock, local(12, 17, 13, 30))
    assert scene.got("xuqiang", "申请 #4“合唱排练”将在 30 分钟后开始")
    await at(scene, clock, local(12, 17, 16, 30))
    assert titled(scene, "zhaolei", "设备运转情况 #4")
    assert [c["main_title"]["title"] for c in titled(scene, "xuqiang", "收场检查")][-1] == "收场检查 申请 #4"
    [condition] = titled(scene, "zhaolei", "设备运转情况 #4")
    assert "正常" in buttons(condition)
    assert "正常" in await scene.click("zhaolei", condition, "正常")


async def test_bad_input_no_confirmation_restart_and_cancelling_the_series(
    scene: Scene, emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    base = f"借舞台 场地:本部报告厅 活动:社团排练 {FLAGS}"
    assert "请把规律写在时间里" in await scene.say("zhaolei", f"{base} 日期:每周五 时间:9:00-10:00 至 12月11日")
    await scene.say("zhaolei", "取消")
    assert "要写到哪天为止或一共几次" in await scene.say("zhaolei", f"{base} 时间:每周五 9:00-10:00")
    assert "最多 26 次" in await scene.say("zhaolei", "时间:每周五 9:00-10:00 至 2027-12-31")
    assert "只有一次" in await scene.say("zhaolei", "时间:每周五 9:00-10:00 至 11月28日")
    preview = await scene.say("zhaolei", "时间:每週五 9:00-10:00 至 12月11日")  # Traditional 週
    assert "每一次都空闲" in preview and "11月27日" in preview and "12月11日" in preview
    assert "没有提交" in await scene.say("zhaolei", "否")
    assert await counts(scene) == (0, 0, 0)

    # English, with a count; confirmed, then the bot restarts before the director decides.
    assert "每一次都空闲" in await scene.say("zhaolei", f"{base} 时间:weekly fri 9:00-10:00 x3")
    assert "已提交每周预约（申请 #1）" in await scene.say("zhaolei", "是")
    await scene.bot.stop()
    bot = await start_bot(make_config(emulator.base_url, db_url), http, clock=clock, run_dispatcher=False)
    again = Scene(bot, emulator)
    try:
        refused = await again.say("songtao", "取消预约 #1 全部")  # not theirs
        assert "没有找到申请 #1" in refused or "只有申请人本人" in refused
        assert await counts(again) == (1, 1, 0)
        await again.say("chenhao", "同意 #1")
        assert "已批准，共 3 次" in again.last_text("zhaolei")
        assert await counts(again) == (3, 3, 0)
        assert "不是每周预约" not in await again.say("zhaolei", "取消预约 #2 全部")  # from any occurrence
        assert "已取消每周预约（申请 #1）还没开始的 3 次" in again.last_text("zhaolei")
        assert again.got("chenhao", "取消了每周预约（申请 #1，本部报告厅）还没开始的 3 次")
        assert await counts(again) == (3, 0, 0)
        assert "已经没有还没开始的场次" in await again.say("zhaolei", "取消预约 #1 全部")
        assert "只能写“全部”" in await again.say("zhaolei", "取消预约 #1 一些")
        await again.say("zhaolei", "取消")
        # A single booking is no series.
        await again.say("zhaolei", f"借舞台 场地:本部礼堂 日期:明天 时间:9:00-10:00 活动:彩排 {FLAGS}")
        assert "不是每周预约" in await again.say("zhaolei", "取消预约 #4 全部")
    finally:
        await bot.stop()
        scene.bot.runner = bot.runner
