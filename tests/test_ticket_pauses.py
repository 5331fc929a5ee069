"""SLA clocks: a ticket waiting for parts (暂停 … 恢复) and categories on working time, over HTTP."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy import select

from bot.appkeys import PIPELINE
from bot.clock import FakeClock
from bot.config import ConfigError, parse_config
from bot.config_workflows import CalendarConfig
from bot.emulator.server import Emulator
from bot.worktime import Span, WorkingTime, deadline, parse_windows
from storage.models import Ticket, Timer
from tests.conftest import example_raw, make_config, start_bot
from tests.scene import Scene
from tests.test_registers import sheet

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    """A Shanghai wall-clock moment in 2026, as UTC."""
    return datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


async def ticket(scene: Scene, number: int = 1) -> Ticket:
    async with scene.bot.app[PIPELINE].sessions() as s:
        return (await s.execute(select(Ticket).where(Ticket.id == number))).scalar_one()


async def test_waiting_for_parts_stops_the_clock_and_shows_in_the_register(
    scene: Scene, clock: FakeClock, tmp_path: Path
) -> None:
    await scene.say("zhaolei", "报修 地点:机房A 设备:电脑 描述:主板坏了")
    await scene.say("lihua", "接单 #1")
    clock.advance(2 * 3600)
    reply = await scene.say("lihua", "暂停 #1 待配件")
    assert "已暂停：待配件" in reply and "停止计时" in reply
    assert "在等待：待配件" in scene.last_text("zhaolei")  # the reporter knows why nothing happens
    t = await ticket(scene)
    assert t.deadline is None
    assert "暂停中：待配件" in await scene.say("zhaolei", "进度 #1")
    # Two days pass waiting: neither the 75 % warning nor the deadline fires.
    clock.advance(48 * 3600)
    await scene.tick()
    assert not scene.got("lihua", "已超过处理时限") and not scene.cards("chenhao")
    assert "已经在暂停中" in await scene.say("lihua", "暂停 #1 还是待配件")
    reply = await scene.say("lihua", "恢复 #1")
    assert "已恢复维修（共暂停 48.0 小时）" in reply
    t = await ticket(scene)
    # 24 h of SLA, 2 used before the pause: 22 h from the resume.
    assert t.deadline == clock.now() + timedelta(hours=22)
    assert "已继续处理" in scene.last_text("zhaolei")
    assert "没有暂停" in await scene.say("lihua", "恢复 #1")
    clock.advance(22 * 3600 + 60)
    await scene.tick()
    assert scene.card("chenhao")["main_title"]["title"] == "报修超时 #1"  # the clock ran again
    await scene.say("lihua", "完成 #1 换了主板")
    rows = await sheet(scene, "设备维修登记表", tmp_path)
    assert rows[2][6] == "72.0小时（其中暂停 48.0小时：待配件）"


async def test_only_the_owner_or_the_director_pauses_and_bad_input_changes_nothing(scene: Scene) -> None:
    await scene.say("zhaolei", "报修 地点:机房A 设备:电脑 描述:主板坏了")
    assert "不在您名下" in await scene.say("lihua", "暂停 #1 待配件")  # not claimed yet
    await scene.say("lihua", "接单 #1")
    assert "不在您名下" in await scene.say("wangpeng", "暂停 #1 待配件")  # another technician
    assert "哪张报修单" in await scene.say("lihua", "暂停")
    await scene.say("lihua", "取消")
    assert "在等什么？例如：待配件" in await scene.say("lihua", "暂停 #1")
    await scene.say("lihua", "取消")
    assert "没有找到" in await scene.say("lihua", "暂停 #9 待配件")
    assert (await ticket(scene)).pauses is None
    assert "已暂停" in await scene.say("chenhao", "暂停 #1 等厂家上门")  # the director may
    assert "已恢复" in await scene.say("chenhao", "恢復 #1")  # Traditional


async def test_a_pause_survives_a_restart(
    scene: Scene, emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    await scene.say("zhaolei", "报修 地点:机房A 设备:电脑 描述:电源坏了")
    await scene.say("lihua", "接单 #1")
    await scene.say("lihua", "pause #1 parts on order")
    await scene.bot.stop()
    clock.advance(30 * 3600)
    bot = await start_bot(make_config(emulator.base_url, db_url), http, clock=clock, run_dispatcher=False)
    again = Scene(bot, emulator)
    try:
        await again.tick()
        assert not again.got("lihua", "还没有人接单") and not again.got("lihua", "已超过处理时限")
        assert "共暂停 30.0 小时" in await again.say("lihua", "resume #1")
        async with bot.app[PIPELINE].sessions() as s:
            due = (await s.execute(select(Timer.due_at).where(Timer.kind == "ticket_sla_due"))).scalars().all()
        assert max(due) == clock.now() + timedelta(hours=24)  # nothing of the SLA was used before the pause
    finally:
        await bot.stop()
        scene.bot.runner = bot.runner


async def test_network_faults_run_on_working_time(scene: Scene, clock: FakeClock) -> None:
    """The example puts network faults (8 h) on working time: reported Friday 16:00, due Monday."""
    clock.advance((at(27, 16) - clock.now()).total_seconds())  # Friday 2026-11-27, 16:00
    reply = await scene.say("zhaolei", "报修 地点:图书馆 设备:网络 描述:无线网连不上")
    # Friday 16:00-17:30 is 1.5 h; Monday 08:00-12:00 4 h, 14:00-16:30 the last 2.5 h.
    assert (await ticket(scene)).deadline == at(30, 16, 30)
    assert "11月30日（周一）16:30" in reply


def test_working_time_skips_nights_weekends_holidays_and_counts_make_up_days() -> None:
    calendar = CalendarConfig(holidays=("2026-10-01..2026-10-09",), workdays=(date(2026, 10, 10),))
    working = WorkingTime(parse_windows(["08:00-12:00", "14:00-17:30"]), calendar, SHANGHAI)
    # Sept 30 (Wed) 17:00: half an hour that day, then the National Day holiday, then the
    # make-up Saturday Oct 10 from 08:00.
    assert deadline(at(30, 17, month=9), 2, [], "working", working) == at(10, 9, 30, month=10)
    assert working.seconds_between(at(30, 17, month=9), at(10, 9, 30, month=10)) == 2 * 3600
    # A start at lunch waits for 14:00; a pause inside working time is not counted.
    assert deadline(at(25, 12, 30), 1, [], "working", working) == at(25, 15)
    assert deadline(at(25, 9), 2, [Span(at(25, 10), at(25, 10, 30))], "working", working) == at(25, 11, 30)
    # On the wall clock a pause shifts the deadline by its length; an ongoing pause has none.
    assert deadline(at(25, 9), 8, [Span(at(25, 10), at(25, 13))], "wall", working) == at(25, 20)
    assert deadline(at(25, 9), 8, [Span(at(25, 10), None)], "wall", working) is None
    # A pause after the deadline does not move it: late stays late.
    assert deadline(at(25, 9), 1, [Span(at(25, 11), at(25, 12))], "wall", working) == at(25, 10)
    assert parse_windows(["14:00-17:30", "08:00-12:00"]) == ((time(8), time(12)), (time(14), time(17, 30)))


@pytest.mark.parametrize(
    ("faults", "key"),
    [
        ({"sla_clock": {"computer": "working"}}, 'computer 只能是 "wall"'),
        ({"working_hours": ["08:00-12:00", "11:00-13:00"]}, "“11:00-13:00”不是一段工作时间"),
        ({"working_hours": ["8点到12点"]}, "“8点到12点”不是一段工作时间"),
        ({"sla_clock": {"network": "sometimes"}}, "可选：wall、working"),
    ],
)
def test_bad_sla_clock_settings_name_the_key(faults: dict[str, object], key: str) -> None:
    raw = example_raw()
    raw["faults"] = {**raw["faults"], **faults}
    with pytest.raises(ConfigError) as err:
        parse_config(raw, environ={})
    assert key in str(err.value) and "[faults" in str(err.value)
