"""监控室 records over HTTP (issue 12 point 4): the shift log with handover notes, preserved incident
footage, both append-only (a correction is a new entry), refused to everyone but the operators and
the director, kept across a restart."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy import select

from bot.appkeys import PIPELINE
from bot.clock import FakeClock
from bot.emulator.server import Emulator
from storage.models import AppendOnlyError, CctvShiftEntry, Conversation, KeptFootage
from tests.conftest import Bot, example_raw, start_scene
from tests.scene import Scene

TZ = ZoneInfo("Asia/Shanghai")
# The scene starts 2026-11-25 09:00 in Shanghai (a Wednesday). 林雪 (linxue) and 张磊 (zhanglei, made
# an operator here) share the main campus's CCTV room; 王鹏 (wangpeng) runs the one at 东湖校区;
# 陈浩 (chenhao) is the director; 赵磊 (zhaolei, a teacher) and 李华 (lihua, a technician) are neither.
FIGHT = (
    "留存录像 类型:打架 事件:两名学生在走廊发生冲突 地点:教学楼三楼东走廊 时间:昨天 21:10-21:30"
    " 存放:NAS-1 /留存/2026-11/打架-01"
)

Start = Callable[[], Awaitable[Scene]]


@pytest.fixture
async def start(emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock) -> AsyncIterator[Start]:
    """Start (or start again, on the same database) a bot with a second operator on the main campus."""
    bots: list[Bot] = []

    async def go() -> Scene:
        for b in bots:
            await b.stop()
        bots.clear()
        raw = example_raw()
        for p in raw["people"]:
            if p["userid"] == "zhanglei":
                p["roles"] = [*p["roles"], "cctv_operator"]
        bot = await start_scene(raw, emulator, db_url, http, clock)
        bots.append(bot)
        return Scene(bot, emulator)

    yield go
    for b in bots:
        await b.stop()


def shanghai(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ)


def at(clock: FakeClock, when: datetime) -> None:
    clock.advance((when.astimezone(UTC) - clock.now()).total_seconds())


async def shifts(scene: Scene) -> list[CctvShiftEntry]:
    async with scene.bot.app[PIPELINE].sessions() as s:
        return list((await s.execute(select(CctvShiftEntry).order_by(CctvShiftEntry.id))).scalars())


async def kept(scene: Scene) -> list[KeptFootage]:
    async with scene.bot.app[PIPELINE].sessions() as s:
        return list((await s.execute(select(KeptFootage).order_by(KeptFootage.id))).scalars())


# -- the shift log ----------------------------------------------------------------------------
async def test_the_next_operator_sees_the_last_handover_note(start: Start, clock: FakeClock) -> None:
    scene = await start()
    at(clock, shanghai(25, 8))
    reply = await scene.say("linxue", "接班 设备正常")
    assert "已接班：值班记录 #Z1，本部校区监控室，11月25日 08:00" in reply
    assert "还没有交接班记录" in reply
    assert "已在值班" in await scene.say("linxue", "接班")  # once is enough

    at(clock, shanghai(25, 17))
    reply = await scene.say("linxue", "交班 交接：3号摄像头画面模糊已报修，东门夜间有施工车辆")
    assert "已交班：值班记录 #Z2，值班 11月25日 08:00-17:00" in reply

    at(clock, shanghai(25, 17, 5))
    reply = await scene.say("zhanglei", "接班")
    assert "已接班：值班记录 #Z3" in reply
    assert "上一班：林雪 11月25日 08:00-17:00" in reply
    assert "交接：3号摄像头画面模糊已报修，东门夜间有施工车辆" in reply
    # Another campus has its own room: 王鹏 starts there without a word about 本部's shifts.
    reply = await scene.say("wangpeng", "接班")
    assert "东湖校区监控室" in reply and "还没有交接班记录" in reply

    rows = await shifts(scene)
    assert [(r.kind, r.operator, r.campus, r.note) for r in rows] == [
        ("start", "linxue", "main", "设备正常"),
        ("end", "linxue", "main", "3号摄像头画面模糊已报修，东门夜间有施工车辆"),
        ("start", "zhanglei", "main", ""),
        ("start", "wangpeng", "donghu", ""),
    ]
    assert rows[1].shift_id == 1 and rows[1].at == shanghai(25, 17)

    listing = await scene.say("chenhao", "值班记录")  # the director reads them too
    assert "值班记录（11月25日（周三））" in listing
    assert "#Z1 11月25日 08:00 本部校区 林雪 接班｜备注：设备正常" in listing
    assert "#Z2 11月25日 17:00 本部校区 林雪 交班｜交接：3号摄像头画面模糊已报修" in listing
    assert "#Z4 11月25日 17:05 东湖校区 王鹏 接班" in listing


async def test_taking_over_an_open_shift_asks_for_the_handover_and_closes_it(start: Start, clock: FakeClock) -> None:
    scene = await start()
    at(clock, shanghai(25, 8))
    await scene.say("linxue", "接班")
    at(clock, shanghai(25, 17, 30))
    asked = await scene.say("zhanglei", "接班")
    assert "林雪的值班（值班记录 #Z1，11月25日 08:00 接班）还没有交班" in asked
    assert len(await shifts(scene)) == 1  # nothing recorded while asking

    reply = await scene.say("zhanglei", "设备正常，林雪临时有事先走，当面交接")
    assert "已接班：值班记录 #Z3" in reply and "替对方记下交班" in reply
    assert "（交班由张磊代记）" in reply and "交接：设备正常，林雪临时有事先走，当面交接" in reply
    told = scene.last_text("linxue")
    assert "张磊已接班" in told and "值班记录 #Z1" in told and "#Z2" in told

    end = (await shifts(scene))[1]
    assert (end.kind, end.operator, end.recorded_by, end.shift_id) == ("end", "linxue", "zhanglei", 1)
    assert "没有在值班" in await scene.say("linxue", "交班 交接:设备正常")  # her shift is closed
    assert len(await shifts(scene)) == 3


async def test_shift_end_asks_for_the_handover_note(start: Start, clock: FakeClock) -> None:
    scene = await start()
    assert "没有在值班" in await scene.say("linxue", "交班")  # not on shift: not even asked
    assert await scene.bot.count(Conversation) == 0
    await scene.say("linxue", "接班")
    assert "请写下交接情况" in await scene.say("linxue", "交班")
    assert "已交班：值班记录 #Z2" in await scene.say("linxue", "设备正常")
    assert [r.note for r in await shifts(scene)] == ["", "设备正常"]


async def test_only_operators_and_the_director_may_write_or_read_them(start: Start) -> None:
    scene = await start()
    await scene.say("linxue", "接班")
    await scene.say("linxue", FIGHT)
    for who in ("zhaolei", "lihua"):
        for text in ("接班", "交班 交接:设备正常", "值班记录", FIGHT, "留存记录", "更正 #Z1 交接:无"):
            reply = await scene.say(who, text)
            assert "只有监控室、信息中心主任可以使用" in reply, reply
            assert "#Z1" not in reply and "NAS-1" not in reply
    assert len(await shifts(scene)) == 1 and len(await kept(scene)) == 1
    assert await scene.bot.count(Conversation) == 0  # refused at once, no question asked


async def test_period_of_the_shift_log(start: Start, clock: FakeClock) -> None:
    scene = await start()
    at(clock, shanghai(24, 8))  # Tuesday
    await scene.say("linxue", "接班")
    at(clock, shanghai(26, 9))  # Thursday
    assert "11月26日（周四）没有值班记录" in await scene.say("linxue", "值班记录")
    assert "#Z1" in await scene.say("linxue", "值班記錄 本周")  # Traditional works too
    assert "#Z1" in await scene.say("linxue", "值班记录 11月24日")
    assert "#Z1" not in await scene.say("linxue", "值班记录 昨天")
    at(clock, shanghai(30, 9))  # the next Monday: Tuesday the 24th was last week
    assert "#Z1" in await scene.say("linxue", "值班记录 上周")
    assert "#Z1" not in await scene.say("linxue", "值班记录 本周")
    reply = await scene.say("linxue", "值班记录 后年的某天")
    assert "看不懂" in reply and "例如：值班记录 11月24日" in reply


# -- preserved footage ------------------------------------------------------------------------
async def test_preserved_footage_is_recorded_the_director_told_and_listed(start: Start) -> None:
    scene = await start()
    reply = await scene.say("linxue", FIGHT)
    assert "已登记留存录像：留存录像 #L1" in reply
    assert "类型：打架斗殴" in reply and "时段：11月24日 21:10-21:30" in reply
    assert "存放：NAS-1 /留存/2026-11/打架-01" in reply

    [row] = await kept(scene)
    assert (row.kind, row.location, row.campus, row.operator) == ("fight", "教学楼三楼东走廊", "main", "linxue")
    assert (row.start_at, row.end_at) == (shanghai(24, 21, 10), shanghai(24, 21, 30))

    told = scene.last_text("chenhao")
    assert "林雪登记了留存录像 #L1" in told and "两名学生在走廊发生冲突" in told
    assert scene.emu.messages_to("chenhao")[-1].body.get("safe") == 1  # confidential: no forwarding

    await scene.say(
        "wangpeng", "留存录像 类型:车祸 事件:校门口电动车剐蹭 地点:东湖校区大门 时间:今天 6:30-6:45 存放:2号移动硬盘"
    )
    assert "上午还是下午" in scene.last_text("wangpeng")  # 6:30 may be evening; the form asks again
    assert "已登记留存录像：留存录像 #L2" in await scene.say("wangpeng", "时间:今天 06:30-06:45")

    listing = await scene.say("chenhao", "留存记录")
    assert "#L1 打架斗殴｜11月24日 21:10-21:30 教学楼三楼东走廊（本部校区）" in listing
    assert "#L2 交通事故｜11月25日 06:30-06:45 东湖校区大门（东湖校区）" in listing
    assert "存放：2号移动硬盘" in listing and "王鹏 登记于 11月25日 09:00" in listing
    assert "#L2" not in await scene.say("linxue", "留存记录 昨天")


async def test_malformed_footage_gets_the_form_and_an_example_and_nothing_is_stored(start: Start) -> None:
    scene = await start()
    reply = await scene.say("linxue", FIGHT.replace("类型:打架", "类型:吵嘴"))
    assert "“吵嘴”不是可选的类型" in reply and "例：留存录像 类型:打架" in reply
    await scene.say("linxue", "取消")

    reply = await scene.say("linxue", "留存录像 随便写写")
    assert "格式不对" in reply and "例：留存录像 类型:打架" in reply

    reply = await scene.say("linxue", FIGHT.replace("昨天", "明天"))
    assert "这个时段还没到" in reply and "例如：昨天 21:10-21:30" in reply
    await scene.say("linxue", "取消")

    reply = await scene.say("linxue", "留存录像 类型:火险 事件:配电房冒烟")
    assert "是哪里的摄像头" in reply  # the form asks for what is missing
    await scene.say("linxue", "取消")
    assert await kept(scene) == []
    assert await scene.bot.count(Conversation) == 0


# -- corrections ------------------------------------------------------------------------------
async def test_a_correction_is_a_new_entry_and_the_old_one_is_shown_corrected(start: Start, clock: FakeClock) -> None:
    scene = await start()
    at(clock, shanghai(25, 8))
    await scene.say("linxue", "接班")
    at(clock, shanghai(25, 17))
    await scene.say("linxue", "交班 交接:设备正常")
    at(clock, shanghai(25, 17, 10))
    reply = await scene.say("linxue", "更正 #Z2 交接：3号硬盘录像机报警，已报修")
    assert "已记下更正：值班记录 #Z3，更正 值班记录 #Z2" in reply

    rows = await shifts(scene)
    assert rows[1].note == "设备正常"  # the old entry is never touched
    assert (rows[2].kind, rows[2].corrects_id, rows[2].note, rows[2].at) == (
        "end",
        2,
        "3号硬盘录像机报警，已报修",
        shanghai(25, 17),
    )

    listing = await scene.say("linxue", "值班记录")
    assert "#Z2 11月25日 17:00 本部校区 林雪 交班｜交接：设备正常（已更正，见 #Z3）" in listing
    assert (
        "#Z3 11月25日 17:00 本部校区 林雪 更正 #Z2（交班，11月25日 17:10写）｜交接：3号硬盘录像机报警，已报修"
        in listing
    )
    # The next operator reads the handover as corrected; a correction is not a shift of its own.
    reply = await scene.say("zhanglei", "接班")
    assert "交接：3号硬盘录像机报警，已报修（已更正）" in reply and "还没有交班" not in reply

    # Only the writer or the director corrects; a malformed correction changes nothing.
    assert "只有记录人本人或信息中心主任可以更正" in await scene.say("zhanglei", "更正 #Z2 交接:无")
    assert "例如：更正 #Z2 交接:" in await scene.say("linxue", "更正 #Z2")
    assert "不是值班记录或留存录像的编号" in await scene.say("linxue", "更正 #B2 交接:无")
    assert "没有找到编号 #9" in await scene.say("linxue", "更正 #9 交接:无")
    assert len(await shifts(scene)) == 4


async def test_a_footage_correction_copies_the_rest_and_names_the_old_one(start: Start) -> None:
    scene = await start()
    await scene.say("linxue", "接班")
    await scene.say("linxue", FIGHT)
    # #1 is both a shift entry and a footage entry: the reply says how to tell them apart.
    reply = await scene.say("linxue", "更正 #1 存放:NAS-2 /留存/2026-11/打架-01")
    assert "更正 #Z1" in reply and "更正 #L1 存放:NAS-2" in reply
    reply = await scene.say("linxue", "更正 #L1 存放：NAS-2 /留存/2026-11/打架-01")
    assert "已记下更正：留存录像 #L2，更正 留存录像 #L1（改了：存放）" in reply
    assert "林雪更正了留存录像 #L1，新记录 留存录像 #L2" in scene.last_text("chenhao")

    old, new = await kept(scene)
    assert old.storage == "NAS-1 /留存/2026-11/打架-01" and new.storage == "NAS-2 /留存/2026-11/打架-01"
    assert (new.kind, new.what, new.start_at, new.corrects_id) == (old.kind, old.what, old.start_at, 1)

    listing = await scene.say("chenhao", "留存记录")
    assert "林雪 登记于 11月25日 09:00（已更正，见 #L2）" in listing
    assert "｜更正 #L1" in listing

    reply = await scene.say("linxue", "更正 #L1 类型:吵嘴")
    assert "“吵嘴”不是可选的类型" in reply and "没有记下更正" in reply
    reply = await scene.say("linxue", "更正 #L1 随便写写")
    assert "字段有：类型、事件、地点、时间、存放" in reply and "例：更正 #L1 存放:" in reply
    assert len(await kept(scene)) == 2


# -- restart ----------------------------------------------------------------------------------
async def test_the_log_and_a_half_filled_handover_survive_a_restart(start: Start, clock: FakeClock) -> None:
    scene = await start()
    at(clock, shanghai(25, 8))
    await scene.say("linxue", "接班")
    await scene.say("linxue", FIGHT)
    at(clock, shanghai(25, 16, 58))
    assert "请写下交接情况" in await scene.say("linxue", "交班")

    scene = await start()  # the same database, a new process
    at(clock, shanghai(25, 17))
    assert "已交班：值班记录 #Z2，值班 11月25日 08:00-17:00" in await scene.say("linxue", "设备正常")
    assert "交接：设备正常" in await scene.say("zhanglei", "接班")
    assert "#L1 打架斗殴" in await scene.say("chenhao", "留存记录")
    assert "#Z3" in await scene.say("chenhao", "值班记录")


async def test_the_records_cannot_be_changed_or_deleted_even_by_code(start: Start) -> None:
    scene = await start()
    await scene.say("linxue", "接班 设备正常")
    await scene.say("linxue", FIGHT)
    for model in (CctvShiftEntry, KeptFootage):
        for change in ("update", "delete"):
            async with scene.bot.app[PIPELINE].sessions() as s:
                row = (await s.execute(select(model))).scalar_one()
                if change == "update":
                    row.operator = "someone"
                else:
                    await s.delete(row)
                with pytest.raises(AppendOnlyError):
                    await s.commit()
    assert [r.operator for r in await shifts(scene)] == ["linxue"]
    assert [r.operator for r in await kept(scene)] == ["linxue"]
