"""活动服务 (W9) over HTTP: request → a free member assigned → reminded → delivery recorded; a busy
team offers the nearest free slots or goes to the director; the register and the monthly archive."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from bot.appkeys import PIPELINE
from bot.clock import FakeClock
from bot.emulator.server import Emulator
from handlers.registers import export, find_register
from storage.models import ActivityBooking, ActivityStatus, Conversation, Task
from tests.conftest import Bot, example_raw, make_config, start_bot, start_scene
from tests.scene import Scene

# The scene starts on Wednesday 2026-11-25, 09:00 in Shanghai; 明天 is Thursday the 26th.
ASK = "活动服务 活动:技能节开幕式 地点:本部礼堂 日期:明天 时间:9:00-11:00 类型:{service} 联系人:赵磊 电话:138-0000-1234"
TZ = ZoneInfo("Asia/Shanghai")
TEAM = ("guoqing", "sunyu", "liting")  # 郭庆, 孙宇, 李婷: the 微课视频编辑部 of the example
# The monthly archive, at a time the test reaches (daily at 18:00 here; the example runs it monthly).
ARCHIVE = {
    "key": "photo_archive",
    "cron": "0 18 * * *",
    "title": "活动照片归档",
    "text": "请把各活动的照片和影像素材整理存档，交综合办公室。",
    "roles": ["video_editor"],
    "deadline_minutes": 600,
}


def shanghai(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ).astimezone(UTC)


async def at(scene: Scene, clock: FakeClock, when: datetime) -> None:
    clock.advance((when - clock.now()).total_seconds())
    await scene.tick()


async def bookings(scene: Scene) -> list[ActivityBooking]:
    async with scene.bot.app[PIPELINE].sessions() as s:
        found = list((await s.execute(select(ActivityBooking).order_by(ActivityBooking.id))).scalars())
        s.expunge_all()
        return found


def buttons(card: dict[str, Any]) -> list[str]:
    return [b["text"] for b in card["button_list"]]


Start = Callable[..., Awaitable[Scene]]


@pytest.fixture
async def start(emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock) -> AsyncIterator[Start]:
    """A bot of the example organisation whose only duty is the archive (fake clock)."""
    bots: list[Bot] = []

    async def go() -> Scene:
        raw = example_raw()
        raw["duties"] = [ARCHIVE]
        bot = await start_scene(raw, emulator, db_url, http, clock)
        bots.append(bot)
        return Scene(bot, emulator)

    yield go
    for b in bots:
        await b.stop()


# -- the whole service ----------------------------------------------------------------------------
async def test_request_assigned_acknowledged_reminded_delivered_and_archived(
    start: Start, clock: FakeClock, tmp_path: Path
) -> None:
    scene = await start()
    reply = await scene.say("zhaolei", ASK.format(service="拍照"))
    assert "活动服务已登记，编号 #1：技能节开幕式，本部礼堂，11月26日（周四）09:00-11:00，拍照" in reply, reply
    assert "已安排微课视频编辑部郭庆负责" in reply and "赵磊 13800001234" in reply
    card = scene.card("guoqing")
    assert card["main_title"]["title"] == "活动服务 #1 · 技能节开幕式"
    rows = {h["keyname"]: h["value"] for h in card["horizontal_content_list"]}
    assert rows["地点"] == "本部礼堂" and rows["申请单位"] == "信息技术系" and rows["服务"] == "拍照"
    assert not scene.cards("sunyu") and not scene.cards("liting")  # one member, not the whole team

    assert "现场联系人 赵磊 13800001234" in await scene.click("guoqing", card, "收到")
    assert scene.got("zhaolei", "微课视频编辑部郭庆已确认负责您的活动服务 #1")
    assert scene.update_labels("guoqing") == ["已收到"]

    await at(scene, clock, shanghai(26, 7, 59))
    assert not scene.got("guoqing", "提醒：活动服务 #1")
    await at(scene, clock, shanghai(26, 8, 0))  # an hour before the start
    assert scene.got("guoqing", "提醒：活动服务 #1“技能节开幕式”11月26日（周四）09:00-11:00，在本部礼堂，需要拍照")
    await at(scene, clock, shanghai(26, 11, 29))
    assert not scene.got("guoqing", "请整理素材")
    await at(scene, clock, shanghai(26, 11, 30))  # half an hour after the end
    assert scene.got("guoqing", "交付 #1 存放:路径或网盘链接 照片:张数")
    assert not scene.got("guoqing", "视频:段数")  # photos only
    ask = scene.card("guoqing")
    assert ask["main_title"]["title"] == "素材交付 #1" and buttons(ask) == ["登记交付"]

    # Only the assignee records the delivery; a photo service needs its photo count.
    assert "不是由您负责的" in await scene.say("sunyu", "交付 #1 存放:NAS/活动/技能节 照片:120")
    assert "多少张照片" in await scene.say("guoqing", "交付 #1 存放:NAS/活动/技能节")
    assert "不是数量" in await scene.say("guoqing", "很多")
    reply = await scene.say("guoqing", "120张")
    assert "已登记活动服务 #1 的交付：存放在 NAS/活动/技能节，照片 120 张" in reply, reply
    assert scene.got("zhaolei", "素材已整理好：存放在 NAS/活动/技能节，照片 120 张")
    assert scene.update_labels("guoqing")[-1] == "已交付"
    [b] = await bookings(scene)
    assert b.status == ActivityStatus.DELIVERED and b.photos == 120 and b.videos is None
    assert "现在是“已交付”" in await scene.say("guoqing", "交付 #1 存放:别处 照片:1")

    # The register keeps the manual's columns.
    register = find_register("活动服务登记表")
    assert register is not None
    path = tmp_path / "activity.xlsx"
    async with scene.bot.app[PIPELINE].sessions() as s:
        assert await export(s, scene.bot.config, register, date(2026, 11, 1), date(2026, 11, 30), path) == 1
    sheet = [list(r) for r in load_workbook(path).active.iter_rows(values_only=True)]
    columns = ["序号", "日期", "活动", "地点", "申请单位", "联系人", "服务类型", "负责人", "交付情况/存放位置"]
    assert sheet[1] == [*columns, "备注"]
    assert sheet[2][:9] == [
        1,
        "2026-11-26",
        "技能节开幕式",
        "本部礼堂",
        "信息技术系",
        "赵磊 13800001234",
        "拍照",
        "郭庆",
        "已交付：NAS/活动/技能节（照片 120 张）",
    ]
    assert sheet[2][9] == "09:00-11:00"

    # The archive to 综合办公室 lists what was delivered since the last one, each record once.
    await at(scene, clock, shanghai(26, 18, 0))
    archive = next(t for t in scene.texts("sunyu") if "活动照片归档" in t or "本次要归档" in t)
    assert "本次要归档的记录（1 条）" in archive, archive
    assert "活动服务 #1 11月26日（周四）09:00-11:00 技能节开幕式（郭庆）存放：NAS/活动/技能节，照片 120 张" in archive
    rows = {h["keyname"]: h["value"] for h in scene.card("sunyu")["horizontal_content_list"]}
    assert rows["归档记录"] == "1 条"
    await at(scene, clock, shanghai(27, 18, 0))
    assert sum("活动服务 #1 11月26日" in t for t in scene.texts("sunyu")) == 1
    async with scene.bot.app[PIPELINE].sessions() as s:
        tasks = (await s.execute(select(Task).where(Task.duty == "photo_archive").order_by(Task.id))).scalars()
        listed = [t.id for t in tasks if t.spec.get("listing")]
        record = await s.get(ActivityBooking, 1)
        assert record is not None and listed == [record.archive_task_id]
    path = tmp_path / "again.xlsx"
    async with scene.bot.app[PIPELINE].sessions() as s:
        await export(s, scene.bot.config, register, date(2026, 11, 1), date(2026, 11, 30), path)
    assert f"已归档（任务 #T{listed[0]}）" in load_workbook(path).active.cell(row=3, column=10).value


@pytest.mark.parametrize(
    ("text", "service"),
    [
        (
            "約拍攝 活動:德國考察團來訪 地點:行政樓 日期:明天 時間:下午2點到4點 類型:攝像 聯繫人:張老師 電話:6601",
            "video",
        ),
        (
            "activity service activity:Visit location:Hall date:2026-11-27 time:14:00-16:00 type:both "
            "contact:Li phone:6601",
            "both",
        ),
        (
            "约拍摄 活动：家长会 地点：报告厅 日期：明天 时间：14:00-16:00 类型：拍照和摄像 联系人：李老师 电话：6601",
            "both",
        ),
    ],
)
async def test_traditional_english_and_full_width_requests(scene: Scene, text: str, service: str) -> None:
    reply = await scene.say("liyan", text)
    assert "编号 #1" in reply, reply
    [b] = await bookings(scene)
    assert b.service == service and b.phone == "6601" and b.assignee == "guoqing"


# -- a busy team ----------------------------------------------------------------------------------
async def test_a_busy_team_offers_the_nearest_free_slots_and_the_director_decides(scene: Scene) -> None:
    for who, member in zip(("zhaolei", "majun", "liyan"), TEAM, strict=True):
        assert f"已安排微课视频编辑部{scene.bot.config.person(member).name}负责" in await scene.say(  # type: ignore[union-attr]
            who, ASK.format(service="摄像")
        )
    reply = await scene.say(
        "songtao",
        "活动服务 活动:机电技能展示 地点:东湖校区舞台 日期:明天 时间:10:00-12:00 类型:拍照 联系人:宋涛 电话:6602",
    )
    assert "这个时段微课视频编辑部的同事都有安排了" in reply, reply
    assert "· 郭庆：活动服务 #1“技能节开幕式”（11月26日（周四）09:00-11:00）" in reply
    assert "· 李婷：活动服务 #3" in reply
    offered = [line for line in reply.splitlines() if line.startswith("· 11月26日")]
    assert offered == [f"· 11月26日（周四）{t}" for t in ("11:00-13:00", "11:30-13:30", "12:00-14:00")]
    assert await scene.bot.count(ActivityBooking) == 3  # nothing stored while the requester chooses
    assert not scene.got("chenhao", "待指派")
    # Taking a free slot assigns at once.
    assert "编号 #4" in await scene.say("songtao", "时间:11:00-13:00")
    assert (await bookings(scene))[3].assignee == "guoqing"

    # Insisting on a busy slot: the director gets a card with the team; a click assigns anyway.
    await scene.say(
        "hanbing", "活动服务 活动:学生会换届 地点:本部报告厅 日期:明天 时间:10:00-11:00 类型:拍照 联系人:韩冰 电话:6603"
    )
    reply = await scene.say("hanbing", "是")
    assert "编号 #5" in reply and "已请中心主任协调指派" in reply
    assert scene.got("chenhao", "活动服务 #5 待指派：学生处申请为“学生会换届”拍照")
    card = scene.card("chenhao")
    assert card["main_title"]["title"] == "活动服务待指派 #5" and buttons(card) == ["郭庆", "孙宇", "李婷"]
    reply = await scene.click("chenhao", card, "孙宇")
    assert "已把活动服务 #5“学生会换届”（11月26日（周四）10:00-11:00）指派给孙宇" in reply
    assert "注意：孙宇这个时段还有活动服务 #2“技能节开幕式”" in reply
    assert scene.card("sunyu")["main_title"]["title"] == "活动服务 #5 · 学生会换届"
    told = "您的活动服务 #5“学生会换届”（11月26日（周四）10:00-11:00）已安排微课视频编辑部孙宇负责拍照"
    assert scene.got("hanbing", told)
    assert scene.update_labels("chenhao") == ["已指派孙宇"]
    assert "已经是孙宇负责了" in await scene.click("chenhao", card, "李婷")  # a second click changes nothing
    assert len(scene.cards("liting")) == 1  # only her own #3
    b5 = (await bookings(scene))[4]
    assert (b5.status, b5.assignee, b5.assigned_by) == (ActivityStatus.ASSIGNED, "sunyu", "chenhao")


async def test_a_member_on_stage_duty_is_busy_then(
    emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    raw = example_raw()
    for p in raw["people"]:
        if p["userid"] == "guoqing":  # 郭庆 also operates the stage
            p["roles"], p["skills"] = [*p["roles"], "technician"], ["stage"]
    scene = Scene(await start_scene(raw, emulator, db_url, http, clock), emulator)
    try:
        flags = "户外:否 校外:否 重大活动:否"
        booked = await scene.say("zhaolei", f"借舞台 场地:本部礼堂 日期:明天 时间:8:30-10:00 活动:开幕式彩排 {flags}")
        n = int(booked.split("编号 #")[1].split("：")[0])
        await scene.say("chenhao", f"同意 #{n}")
        assert "您已接单" in await scene.say("guoqing", f"接舞台 #{n}")
        # First in the team's order, but on stage duty at 09:00: the next member is assigned.
        assert "已安排微课视频编辑部孙宇负责" in await scene.say("zhaolei", ASK.format(service="拍照"))
        reply = await scene.say("chenhao", "指派 #1 郭庆")  # the director may, and is warned
        assert f"郭庆这个时段还有舞台值班（申请 #{n}）“开幕式彩排”（11月26日（周四）08:30-10:00）" in reply
        # Everyone busy (the others on services): the stage duty is named among the reasons.
        await scene.say("majun", ASK.format(service="摄像").replace("技能节开幕式", "校庆"))
        await scene.say("majun", ASK.format(service="拍照").replace("技能节开幕式", "展演"))
        clash = await scene.say("songtao", ASK.format(service="拍照").replace("技能节开幕式", "讲座"))
        assert f"郭庆：舞台值班（申请 #{n}）“开幕式彩排”" in clash and "郭庆：活动服务 #1" in clash
    finally:
        await scene.bot.stop()


async def test_the_director_assigns_or_reassigns_by_text(scene: Scene) -> None:
    await scene.say("zhaolei", ASK.format(service="拍照"))
    assert "只有信息中心主任可以使用" in await scene.say("zhaolei", "指派 #1 李婷")
    assert "没找到“王五”" in await scene.say("chenhao", "指派 #1 王五")
    reply = await scene.say("chenhao", "李婷")
    assert "已把活动服务 #1“技能节开幕式”（11月26日（周四）09:00-11:00）指派给李婷" in reply
    assert scene.got("guoqing", "活动服务 #1“技能节开幕式”（11月26日（周四）09:00-11:00）已改由李婷负责，您不用去了")
    assert scene.update_labels("guoqing") == ["已改派"]
    assert scene.card("liting")["main_title"]["title"] == "活动服务 #1 · 技能节开幕式"
    assert scene.got("zhaolei", "已安排微课视频编辑部李婷负责拍照")
    assert "不是由您负责的" in await scene.click("guoqing", scene.card("guoqing"), "收到")
    assert "已经是李婷负责了" in await scene.say("chenhao", "指派 #1 李婷")
    assert "没有找到您能操作的活动服务 #9" in await scene.say("chenhao", "指派 #9 李婷")
    [b] = await bookings(scene)
    assert b.assignee == "liting"


async def test_the_requester_cancels_and_the_assignee_is_told(scene: Scene) -> None:
    await scene.say("zhaolei", ASK.format(service="拍照"))
    assert "没有找到您能操作的活动服务 #1" in await scene.say("majun", "取消活动服务 #1")
    assert "已取消活动服务 #1" in await scene.say("zhaolei", "取消活动服务 #1")
    assert scene.got("guoqing", "信息技术系取消了活动服务 #1“技能节开幕式”")
    assert scene.update_labels("guoqing") == ["已取消"]
    # Its time is free again.
    assert "已安排微课视频编辑部郭庆负责" in await scene.say("majun", ASK.format(service="拍照"))
    assert "接下来的活动服务" in (schedule := await scene.say("guoqing", "活动安排"))
    assert "#2 11月26日（周四）09:00-11:00 技能节开幕式（本部礼堂，拍照）郭庆负责" in schedule
    assert "#1" not in schedule


# -- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ASK.format(service="跳舞"), "请写 拍照、摄像 或 拍照和摄像，例如：类型:拍照"),
        (ASK.format(service="拍照").replace("138-0000-1234", "找赵老师"), "电话“找赵老师”不对"),
        (ASK.format(service="拍照").replace("日期:明天", "日期:今天").replace("9:00-11:00", "7:00-8:00"), "已经过去"),
        (ASK.format(service="拍照").replace("9:00-11:00", "2点到4点"), "是上午还是下午"),
        (ASK.format(service="拍照").replace("日期:明天", "日期:下个月某天"), "没看懂日期"),
    ],
)
async def test_bad_input_is_explained_with_an_example_and_stores_nothing(
    scene: Scene, text: str, expected: str
) -> None:
    reply = await scene.say("zhaolei", text)
    assert expected in reply, reply
    assert "例如" in reply
    assert await scene.bot.count(ActivityBooking) == 0
    assert not scene.cards("guoqing")


async def test_a_malformed_request_gets_the_form_and_an_example(scene: Scene) -> None:
    reply = await scene.say("zhaolei", "活动服务 明天上午技能节帮忙拍几张")
    assert "活动服务 活动:" in reply and "电话:" in reply, reply
    assert await scene.bot.count(ActivityBooking) == 0


async def test_a_missing_field_is_asked_for(scene: Scene) -> None:
    reply = await scene.say("zhaolei", "活动服务 活动:技能节 地点:本部礼堂 日期:明天 时间:9:00-11:00 类型:摄像")
    assert "现场联系人是谁" in reply
    assert "电话是多少" in await scene.say("zhaolei", "赵磊")
    assert "编号 #1" in await scene.say("zhaolei", "6601")
    assert await scene.bot.count(Conversation) == 0


# -- a restart ------------------------------------------------------------------------------------
async def test_reminder_and_delivery_survive_a_restart(
    scene: Scene, emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    await scene.say("zhaolei", ASK.format(service="拍照和摄像"))
    card = scene.card("guoqing")
    await scene.bot.stop()  # down while the reminder (08:00) comes due
    clock.advance((shanghai(26, 8, 20) - clock.now()).total_seconds())
    bot = await start_bot(make_config(emulator.base_url, db_url), http, clock=clock, run_dispatcher=False)
    again = Scene(bot, emulator)
    try:
        await again.tick()
        await again.tick()
        assert sum("提醒：活动服务 #1" in t for t in again.texts("guoqing")) == 1  # once
        assert "好的，活动服务 #1" in await again.click("guoqing", card, "收到")  # a card from before
        clock.advance((shanghai(26, 11, 30) - clock.now()).total_seconds())
        await again.tick()
        assert again.got("guoqing", "交付 #1 存放:路径或网盘链接 照片:张数 视频:段数")
        assert "存放在哪里" in await again.click("guoqing", again.card("guoqing"), "登记交付")
        assert "多少张照片" in await again.say("guoqing", "https://pan.school.edu.cn/s/jnj")
        assert "多少段视频" in await again.say("guoqing", "86")
        reply = await again.say("guoqing", "3段")
        assert "存放在 https://pan.school.edu.cn/s/jnj，照片 86 张，视频 3 段" in reply, reply
        [b] = await bookings(again)
        assert (b.status, b.photos, b.videos) == (ActivityStatus.DELIVERED, 86, 3)
    finally:
        await bot.stop()
        scene.bot.runner = bot.runner  # the fixture's stop() is now a no-op on a cleaned runner


async def test_a_reminder_is_not_sent_after_the_start(
    scene: Scene, emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    await scene.say("zhaolei", ASK.format(service="拍照"))
    clock.advance((shanghai(26, 9, 30) - clock.now()).total_seconds())  # the bot "was down" past the start
    await scene.tick()
    assert not scene.got("guoqing", "提醒：活动服务 #1")
    clock.advance(timedelta(hours=2).total_seconds())
    await scene.tick()
    assert scene.got("guoqing", "交付 #1")


async def test_reassigned_after_the_event_the_new_assignee_records_the_delivery(scene: Scene, clock: FakeClock) -> None:
    await scene.say("zhaolei", ASK.format(service="摄像"))
    await at(scene, clock, shanghai(26, 11, 30))
    assert scene.got("guoqing", "交付 #1 存放:路径或网盘链接 视频:段数")
    await scene.say("chenhao", "指派 #1 李婷")  # 郭庆 is ill: 李婷 has the footage
    assert scene.update_labels("guoqing") == ["已改派", "已改派"]  # the assignment and the delivery card
    assert scene.got("liting", "交付 #1 存放:路径或网盘链接 视频:段数")
    assert "不是由您负责的" in await scene.say("guoqing", "交付 #1 存放:NAS/x 视频:1")
    assert "视频 3 段" in await scene.say("liting", "交付 #1 存放:NAS/活动/技能节 视频:3")
    [b] = await bookings(scene)
    assert (b.status, b.assignee, b.videos) == (ActivityStatus.DELIVERED, "liting", 3)
