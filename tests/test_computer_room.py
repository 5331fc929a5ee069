"""微机室 registers over HTTP (issue 14 point 4): a lab lesson registered in one message (one seat 异常
opens a ticket for that seat's computer), a violation, bad input refused with nothing written, a
reminder for a timetabled lesson nobody registered (kept across a restart), the administrator's
approval of a visitor and a USB drive, and the three registers exported."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select, text

from bot.appkeys import PIPELINE
from bot.clock import FakeClock
from bot.emulator.server import Emulator
from handlers import asset_store
from handlers.registers import export, find_register, verify
from storage.models import AssetKind, AssetState, LabLessonRecord, LabSeat, LabViolation, Ticket
from tests.conftest import Bot, example_raw, start_scene
from tests.scene import Scene

TZ = ZoneInfo("Asia/Shanghai")
# The example org: 微机室1 (本部, seats 1-40, administrator 李华 lihua); on Wednesdays its 第3节
# (10:00-10:45) is 赵磊's (zhaolei) lesson with 24级计算机应用1班. The scene starts Wed 2026-11-25 09:00.
LESSON = "上机登记 微机室1 第3节 24级计算机应用1班 座位1-40 正常 12号异常 键盘失灵 模块:Word排版"

Start = Callable[[], Awaitable[Scene]]


@pytest.fixture
async def start(emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock) -> AsyncIterator[Start]:
    """Start (or start again, on the same database) a bot on the example configuration."""
    bots: list[Bot] = []

    async def go() -> Scene:
        for b in bots:
            await b.stop()
        bots.clear()
        bot = await start_scene(example_raw(), emulator, db_url, http, clock)
        bots.append(bot)
        return Scene(bot, emulator)

    yield go
    for b in bots:
        await b.stop()


async def at(scene: Scene, clock: FakeClock, hour: int, minute: int = 0, day: int = 25) -> None:
    clock.advance((datetime(2026, 11, day, hour, minute, tzinfo=TZ).astimezone(UTC) - clock.now()).total_seconds())
    await scene.tick()


async def count(scene: Scene, model: type[LabLessonRecord] | type[LabSeat] | type[LabViolation]) -> int:
    async with scene.bot.app[PIPELINE].sessions() as s:
        return int((await s.execute(select(func.count()).select_from(model))).scalar_one())


async def sheet(scene: Scene, name: str, tmp_path: Path) -> list[list[object]]:
    register = find_register(name)
    assert register is not None
    path = tmp_path / f"{register.key}.xlsx"
    async with scene.bot.app[PIPELINE].sessions() as s:
        await export(s, scene.bot.config, register, date(2026, 11, 1), date(2026, 11, 30), path)
    return [list(r) for r in load_workbook(path).active.iter_rows(values_only=True)]


async def test_a_lab_lesson_a_violation_and_the_three_registers(start: Start, clock: FakeClock, tmp_path: Path) -> None:
    scene = await start()
    async with scene.bot.app[PIPELINE].sessions() as s, s.begin():
        await asset_store.register(
            s, number="PC-M1-012", kind=AssetKind.COMPUTER, actor="import", at=clock.now(),
            campus="main", location="微机室1-12", state=AssetState.IN_USE, model="联想 M720",
        )  # fmt: skip

    # Between lessons, without 第N节: which lesson? Nothing is written.
    await at(scene, clock, 9, 45)
    reply = await scene.say("zhaolei", "上机登记 微机室1 座位1-40 正常")
    assert "现在（09:45）不在上课时间，请写明是今天第几节" in reply and "第3节 10:00-10:45" in reply
    assert "例：上机登记 微机室1 第3节 24级计算机应用1班 座位1-40 正常 12号异常 键盘失灵" in reply

    await at(scene, clock, 10, 20)
    reply = await scene.say("zhaolei", "上机登记 微机室1 第3节 24级计算机应用1班 座位1-41 正常")
    assert "微机室1的机位是 1-40 号，没有 41 号" in reply
    reply = await scene.say("zhaolei", "上机登记 微机室1 第3节 高三(9)班 座位1-40 正常")
    assert "没有“高三(9)班”这个班级" in reply
    reply = await scene.say("zhaolei", "上机登记 微机室1 第5节 座位1-40 正常")
    assert "第5节还没开始（14:00 上课）" in reply
    reply = await scene.say("zhangwei", "上机登记 微机室1 座位1-40 正常")  # not his lesson
    assert "微机室1今天第3节是赵磊老师的课" in reply
    reply = await scene.say("zhaolei", "上机登记 机房9 第3节 座位1-40 正常")
    assert "没有“机房9”微机室。可选：微机室1、东湖微机室" in reply
    assert await count(scene, LabLessonRecord) == 0 and await count(scene, LabSeat) == 0

    # The lesson, in one message (the lesson and class could be left out: it is on the timetable).
    reply = await scene.say("zhaolei", LESSON)
    assert (
        "已登记上机情况 #1：微机室1 11月25日 第3节（10:00-10:45），24级计算机应用1班，授课教师赵磊，上课人数 40"
        in reply
    )
    assert "12号机异常（键盘失灵）：已报修 #1，资产 PC-M1-012" in reply
    assert scene.card("lihua")["main_title"]["title"].startswith("报修 #1")  # the computer technicians
    async with scene.bot.app[PIPELINE].sessions() as s:
        ticket = await s.get(Ticket, 1)
        asset = await asset_store.find(s, "PC-M1-012")
        assert ticket is not None and asset is not None
        assert (ticket.asset_id, ticket.category, ticket.location) == (asset.id, "computer", "微机室1 12号机")
        assert asset.state == AssetState.REPAIR
        assert [e.ref for e in await asset_store.history(s, asset)][-1] == "ticket:1"
        seats = list((await s.execute(select(LabSeat).order_by(LabSeat.seat))).scalars())
        assert len(seats) == 40 and (seats[11].condition, seats[11].ticket_id) == ("abnormal", 1)
    # Once per lesson; Traditional characters and full-width digits read the same.
    reply = await scene.say("zhaolei", "上機登記 微機室1 第３節 座位1-40 正常")
    assert "微机室1今天第3节已由赵磊登记过" in reply
    assert await count(scene, LabLessonRecord) == 1

    reply = await scene.say("zhaolei", "违纪登记 微机室1 张三 15号 玩游戏 处理:扣2分，课后谈话")
    assert (
        "已登记违纪 #1：微机室1 第3节，24级计算机应用1班 张三（15号机），原因：玩游戏；处理：扣2分，课后谈话" in reply
    )
    reply = await scene.say("zhaolei", "违纪登记 微机室1 高三(9)班 李四 吃零食")
    assert "没有“高三(9)班”这个班级" in reply
    reply = await scene.say("zhaolei", "违纪登记 微机室1 第3节 张三")
    assert "请写出学生姓名和违纪原因" in reply and "例：违纪登记 微机室1 第3节 张三 15号 玩游戏" in reply
    assert await count(scene, LabViolation) == 1

    seats_sheet = await sheet(scene, "上机情况登记表", tmp_path)
    assert seats_sheet[1] == ["序号", "机位", "班级", "使用人姓名", "课堂训练模块", "授课教师", "设备运转情况", "备注"]
    assert len(seats_sheet) == 42
    assert seats_sheet[13] == [
        12, "微机室1 12号", "24级计算机应用1班", None, "Word排版", "赵磊", "异常",
        "2026-11-25 第3节（10:00）；键盘失灵；报修 #1",
    ]  # fmt: skip
    use = await sheet(scene, "微机室使用登记表", tmp_path)
    assert use[1] == ["序号", "时间", "班级", "授课教师", "上课人数", "课堂情况", "设备运转情况", "备注"]
    assert use[2] == [
        1, "2026-11-25 第3节（10:00）", "24级计算机应用1班", "赵磊", 40, None,
        "异常：12号 键盘失灵（报修 #1）", "微机室1",
    ]  # fmt: skip
    violations = await sheet(scene, "微机室违纪情况登记表", tmp_path)
    assert violations[1] == ["序号", "时间", "班级", "授课教师", "学生姓名", "违纪原因", "量化结果及处理办法", "备注"]
    assert violations[2] == [
        1, "2026-11-25 第3节（10:00）", "24级计算机应用1班", "赵磊", "张三", "玩游戏",
        "扣2分，课后谈话", "微机室1 15号",
    ]  # fmt: skip

    # 微机室1 is 本部's: a 东湖 export of the three registers is empty, a 本部 one is whole.
    for name, rows in (("上机情况登记表", 40), ("微机室使用登记表", 1), ("微机室违纪情况登记表", 1)):
        register = find_register(name)
        assert register is not None and register.chained
        async with scene.bot.app[PIPELINE].sessions() as s:
            for campus, expected in (("donghu", 0), ("main", rows)):
                written = await export(
                    s,
                    scene.bot.config,
                    register,
                    date(2026, 11, 1),
                    date(2026, 11, 30),
                    tmp_path / "c.csv",
                    campus=campus,
                )
                assert written == expected, (name, campus)
    # Each is a hash chain: a violation's outcome changed with SQL is named by verify.
    async with scene.bot.app[PIPELINE].sessions() as s, s.begin():
        assert all(not v.broken for v in await verify(s, scene.bot.config))
        await s.execute(text("UPDATE lab_violations SET outcome = '无' WHERE id = 1"))
        broken = {v.register.key: v.broken for v in await verify(s, scene.bot.config) if v.broken}
        assert list(broken) == ["lab-violations"] and "(violation:1)" in broken["lab-violations"]


async def test_an_unregistered_lesson_is_reminded_and_visitors_need_the_administrator(
    start: Start, clock: FakeClock, tmp_path: Path
) -> None:
    scene = await start()
    await at(scene, clock, 11, 0)  # 第3节 ended 10:45; 15 minutes later nobody has registered it
    assert scene.got("zhaolei", "您今天第3节（10:00-10:45）在微机室1给24级计算机应用1班上的课还没有上机登记")
    assert not scene.got("lihua", "还没有上机登记")

    scene = await start()  # a restart: the administrator's reminder is still due
    await at(scene, clock, 12, 0)
    assert scene.got("lihua", "微机室1今天第3节（10:00-10:45，24级计算机应用1班，赵磊老师）到现在还没有上机登记")
    assert "请发上机情况，例如：微机室1 第3节" in await scene.say("zhaolei", "lab lesson")  # a short form
    reply = await scene.say("zhaolei", "微机室1 第3节 座位1-30 正常")
    assert "已登记上机情况 #1" in reply and "上课人数 30" in reply and "设备运转正常" in reply

    # A visitor: the room's administrator decides; the first decision counts.
    reply = await scene.say("zhaolei", "外来人员 微机室1 王明 兄弟学校来访参观")
    assert "已提交外来人员上机申请 #1（微机室1，王明：兄弟学校来访参观），等待李华审批" in reply
    assert not scene.cards("wangpeng")
    card = scene.card("lihua")
    assert card["main_title"]["title"] == "外来人员上机申请 #1"
    assert "请安排或指定人员陪同" in await scene.click("lihua", card, "批准")
    assert scene.got("zhaolei", "您的外来人员上机申请 #1（微机室1，王明）李华已批准")
    assert "已由李华处理（已批准）" in await scene.click("lihua", card, "拒绝")
    # A USB drive, refused.
    await scene.say("zhangwei", "U盘申请 微机室1 技能竞赛素材拷贝")
    await scene.click("lihua", scene.card("lihua"), "拒绝")
    assert scene.got("zhangwei", "您的U盘使用申请 #2（微机室1）李华未批准")
    reply = await scene.say("zhaolei", "外来人员 机房9 王明 参观")
    assert "没有“机房9”这个微机室。可选：微机室1、东湖微机室" in reply

    use = await sheet(scene, "微机室使用登记表", tmp_path)
    assert [r[5] for r in use[2:5]] == [None, "外来人员上机：王明（兄弟学校来访参观）", "U盘使用（技能竞赛素材拷贝）"]
    assert use[5:] == []  # decided: the requests going on, no correction noted below the form
    assert use[3][7].startswith("微机室1；已批准（李华 2026-11-25 12:")
    assert use[4][3] == "张伟" and use[4][7].startswith("微机室1；未批准（李华")
