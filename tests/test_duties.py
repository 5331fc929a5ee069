"""Duties that get done (issue 12): each occurrence is a task with a card, a deadline and an escalation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot.appkeys import PIPELINE
from bot.clock import FakeClock
from bot.config import ConfigError, parse_config
from bot.emulator.server import Emulator
from storage.models import Task, TaskStatus, Ticket
from tests.conftest import Bot, example_raw, make_config, start_bot, start_scene
from tests.scene import Scene

# The scene starts 2026-11-25 09:00 in Shanghai (a Wednesday).
START = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)

UPS = {
    "key": "ups_check",
    "cron": "0 10 * * *",
    "title": "UPS 检查",
    "text": "请检查服务器 UPS 是否正常。",
    "users": ["lihua", "hejun"],
    "deadline_minutes": 60,
    "results": ["正常", "异常"],
    "abnormal": ["异常"],
    "fault_category": "network",
    "fault_location": "服务器机房 UPS",
    "escalate_after_minutes": 60,
}
# A key the old closed catalogue never had, defined only here.
LAB = {
    "key": "lab_check",
    "cron": "15 9 * * *",
    "title": "机房巡检",
    "text": "请巡检各机房的电脑和空调。",
    "users": ["wangpeng"],
    "deadline_minutes": 120,
    "checklist": ["一号机房", "二号机房", "三号机房"],
}

Start = Callable[..., Awaitable[Scene]]


def shanghai(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 25, hour - 8, minute, tzinfo=UTC)


@pytest.fixture
async def start(emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock) -> AsyncIterator[Start]:
    """Start a bot whose [[duties]] are exactly the ones given (fake clock, scheduler on demand)."""
    bots: list[Bot] = []

    async def go(*duties: dict[str, Any]) -> Scene:
        raw = example_raw()
        raw["duties"] = list(duties)
        bot = await start_scene(raw, emulator, db_url, http, clock)
        bots.append(bot)
        return Scene(bot, emulator)

    yield go
    for b in bots:
        await b.stop()


async def at(scene: Scene, clock: FakeClock, when: datetime) -> None:
    clock.advance((when - clock.now()).total_seconds())
    await scene.tick()


async def task(scene: Scene, number: int) -> Task:
    async with scene.bot.app[PIPELINE].sessions() as s:
        found = (await s.execute(select(Task).where(Task.id == number))).scalar_one()
        s.expunge(found)
        return found


def buttons(card: dict[str, Any]) -> list[str]:
    return [b["text"] for b in card["button_list"]]


async def test_a_duty_is_a_task_the_first_click_closes_every_card(start: Start, clock: FakeClock) -> None:
    scene = await start(UPS)
    await at(scene, clock, shanghai(10))
    for who in ("lihua", "hejun"):
        assert scene.got(who, "请检查服务器 UPS 是否正常") and scene.got(who, "任务 #T1")
        card = scene.card(who)
        assert card["main_title"]["title"] == "任务 #T1 · UPS 检查"
        assert buttons(card) == ["正常", "异常"]
    assert not scene.cards("chenhao")

    assert "已完成，结果：正常" in await scene.click("hejun", scene.card("hejun"), "正常")
    assert scene.update_labels("lihua") == ["何军已完成（正常）"]  # the other assignee's card
    assert scene.update_labels("hejun") == ["何军已完成（正常）"]
    done = await task(scene, 1)
    assert (done.status, done.done_by, done.result) == (TaskStatus.DONE, "hejun", {"choice": "正常", "note": ""})
    # A late click on the other card is told who did it; nothing changes.
    assert "由何军完成" in await scene.click("lihua", scene.card("lihua"), "异常")
    assert (await task(scene, 1)).done_by == "hejun"

    # Nothing is reminded or escalated once it is done.
    await at(scene, clock, shanghai(12, 5))
    assert not scene.got("lihua", "提醒") and not scene.got("chenhao", "任务逾期")


async def test_abnormal_result_asks_why_and_opens_a_linked_ticket(start: Start, clock: FakeClock) -> None:
    scene = await start(UPS)
    await at(scene, clock, shanghai(10))
    asked = await scene.click("lihua", scene.card("lihua"), "异常")
    assert "请简单说明情况" in asked
    assert (await task(scene, 1)).status == TaskStatus.OPEN  # not done before the 说明
    reply = await scene.say("lihua", "UPS 报警灯一直闪")
    assert "已为您报修，报修编号 #1" in reply
    done = await task(scene, 1)
    assert done.status == TaskStatus.DONE and done.ticket_id == 1
    assert done.result == {"choice": "异常", "note": "UPS 报警灯一直闪"}
    async with scene.bot.app[PIPELINE].sessions() as s:
        ticket = await s.get(Ticket, 1)
        assert ticket is not None
        assert (ticket.category, ticket.location, ticket.reporter) == ("network", "服务器机房 UPS", "lihua")
        assert "任务 #T1" in ticket.description and "UPS 报警灯一直闪" in ticket.description
    # The network technicians (not the reporter) get the ticket's 接单 card.
    assert scene.card("hejun")["main_title"]["title"] == "报修 #1 · 网络"
    assert "李华已完成（异常）"[:10] in scene.update_labels("hejun")


async def test_text_result_with_its_note_in_one_message(start: Start, clock: FakeClock) -> None:
    scene = await start(UPS)
    await at(scene, clock, shanghai(10))
    assert "结果是什么" in await scene.say("hejun", "完成任务 #T1")
    assert "已完成，结果：正常" in await scene.say("hejun", "正常")
    assert "由何军完成" in await scene.say("lihua", "完成任务 #T1 异常 灯闪")


async def test_plain_wancheng_with_a_task_number_completes_the_task(start: Start, clock: FakeClock) -> None:
    """`完成` is also the ticket command: a #T number makes it the task's."""
    scene = await start(UPS)
    await at(scene, clock, shanghai(10))
    assert "已完成，结果：正常" in await scene.say("hejun", "完成 #T1 正常")
    assert "由何军完成" in await scene.say("lihua", "完成 任务 #1 正常")
    assert "报修" in await scene.say("hejun", "完成 #B1 修好了")  # a ticket's number: still the ticket command
    progress = await scene.say("hejun", "进度 #T1")
    assert progress.startswith("任务 #T1") and "由何军于" in progress and "结果：正常" in progress
    assert "没有找到" in await scene.say("zhaolei", "进度 #T1")  # not theirs


async def test_not_done_is_reminded_then_escalated_and_missed(start: Start, clock: FakeClock) -> None:
    scene = await start(UPS)
    await at(scene, clock, shanghai(10))
    await at(scene, clock, shanghai(11))  # the deadline
    for who in ("lihua", "hejun"):
        assert scene.got(who, "已过截止时间") and scene.got(who, "将报告信息中心主任")
    assert not scene.got("chenhao", "任务逾期")
    assert (await task(scene, 1)).status == TaskStatus.OPEN
    await at(scene, clock, shanghai(12))  # one hour later: the director is told
    escalated = [t for t in scene.texts("chenhao") if "任务逾期" in t]
    assert len(escalated) == 1 and "UPS 检查" in escalated[0] and "李华、何军" in escalated[0]
    assert (await task(scene, 1)).status == TaskStatus.MISSED
    assert scene.update_labels("lihua") == ["已逾期"]
    assert "已逾期" in await scene.say("lihua", "完成任务 #T1 正常")
    await scene.tick()
    assert sum("任务逾期" in t for t in scene.texts("chenhao")) == 1


async def test_down_past_the_escalation_escalates_without_a_stale_reminder(start: Start, clock: FakeClock) -> None:
    scene = await start(UPS)
    await at(scene, clock, shanghai(10))
    await at(scene, clock, shanghai(15))
    assert scene.got("chenhao", "任务逾期")
    assert not scene.got("lihua", "已过截止时间")


async def test_my_tasks_lists_the_open_tasks_of_the_asker(start: Start, clock: FakeClock) -> None:
    scene = await start(UPS, LAB)
    await at(scene, clock, shanghai(9, 15))
    await at(scene, clock, shanghai(10))
    mine = await scene.say("lihua", "我的任务")
    assert "任务 #T2 UPS 检查" in mine and "机房巡检" not in mine
    assert "任务 #T1 机房巡检" in await scene.say("wangpeng", "我的任務")  # Traditional
    assert "没有待完成的任务" in await scene.say("chenhao", "my tasks")
    await scene.click("lihua", scene.card("lihua"), "正常")
    assert "没有待完成的任务" in await scene.say("lihua", "我的任务")


async def test_a_checklist_duty_defined_only_in_config(start: Start, clock: FakeClock) -> None:
    scene = await start(LAB)
    await at(scene, clock, shanghai(9, 15))
    assert scene.got("wangpeng", "请巡检各机房的电脑和空调") and scene.got("wangpeng", "1. 一号机房")
    card = scene.card("wangpeng")
    assert buttons(card) == ["1. 一号机房", "2. 二号机房", "3. 三号机房", "全部完成"]
    ticked = await scene.say("wangpeng", "完成任务 #T1 1，2")
    assert "2/3" in ticked and "还差：三号机房" in ticked
    assert "还差：三号机房" in await scene.say("wangpeng", "我的任务")
    assert "哪几项" in await scene.say("wangpeng", "完成任务 #T1 九号机房")
    assert "已完成" in await scene.say("wangpeng", "3")
    done = await task(scene, 1)
    assert done.status == TaskStatus.DONE and done.checklist == {
        "ticked": {"0": "wangpeng", "1": "wangpeng", "2": "wangpeng"}
    }
    assert scene.update_labels("wangpeng") == ["王鹏已完成"]


async def test_checklist_items_ticked_on_the_card(start: Start, clock: FakeClock) -> None:
    scene = await start(LAB)
    await at(scene, clock, shanghai(9, 15))
    card = scene.card("wangpeng")
    assert "1/3" in await scene.click("wangpeng", card, "2. 二号机房")
    assert "已完成" in await scene.click("wangpeng", card, "全部完成")
    assert (await task(scene, 1)).status == TaskStatus.DONE


async def test_someone_else_cannot_complete_a_task(start: Start, clock: FakeClock) -> None:
    scene = await start(UPS)
    await at(scene, clock, shanghai(10))
    assert "没有找到您的任务 #T1" in await scene.say("zhaolei", "完成任务 #T1 正常")
    assert (await task(scene, 1)).status == TaskStatus.OPEN


async def test_shipped_duties_become_tasks(scene: Scene, clock: FakeClock) -> None:
    """The example config: the 07:25 cleaning (sent late at start-up) goes to the computer
    technicians as a task; the first to confirm closes it for all."""
    await scene.tick()
    techs = ("lihua", "wangpeng", "xuqiang", "hejun")
    for who in techs:
        assert scene.card(who)["main_title"]["title"] == "任务 #T1 · 机房打扫"
    assert "已完成" in await scene.click("xuqiang", scene.card("xuqiang"), "完成")
    for who in techs:
        assert scene.update_labels(who) == ["许强已完成"]


# -- configuration ------------------------------------------------------------------------------
def test_the_example_ships_the_manuals_duties() -> None:
    config = make_config("http://127.0.0.1:1", "sqlite+aiosqlite://")
    keys = {d.key for d in config.duties}
    assert {"room_cleaning", "ups_check", "stage_wipe", "stage_maintenance", "cctv_inspection", "inventory"} <= keys
    assert {"network_fee", "domain_fees", "platform_backup", "cctv_storage", "stage_fire_check"} <= keys
    ups = next(d for d in config.duties if d.key == "ups_check")
    assert ups.results == ("正常", "异常") and ups.abnormal == ("异常",)
    # Off the busy :00 and :30 marks, except where the manual fixes the time (UPS at 10:00).
    assert all(d.cron.split()[0] not in ("0", "30") for d in config.duties if d.key != "ups_check")


def _with_duties(*duties: dict[str, Any]) -> dict[str, Any]:
    raw = example_raw()
    raw["duties"] = list(duties)
    return raw


async def test_an_old_style_entry_still_loads_and_uses_the_shipped_text(start: Start, clock: FakeClock) -> None:
    old = {"key": "room_cleaning", "cron": "0 9 * * mon-fri", "roles": ["technician"], "skills": ["computer"]}
    scene = await start(old)
    await scene.tick()
    assert scene.got("lihua", "每日 8:00 前要完成机房打扫")
    assert scene.card("lihua")["main_title"]["title"] == "任务 #T1 · 机房打扫"


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"key": "lab_check", "cron": "15 9 * * *", "users": ["lihua"]}, "needs a title and a text"),
        ({**LAB, "key": "Lab Check"}, "slug"),
        ({**UPS, "abnormal": ["坏了"]}, "abnormal"),
        ({**UPS, "checklist": ["一号机房"]}, "not both"),
        ({**UPS, "results": ["正常"], "abnormal": []}, "results"),
    ],
)
def test_a_duty_entry_that_cannot_work_is_refused(entry: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(_with_duties(entry), environ={})
    assert fragment in str(err.value)


def test_deadline_and_escalation_defaults() -> None:
    config = parse_config(_with_duties(LAB), environ={})
    [lab] = config.duties
    assert (lab.deadline_minutes, lab.escalate_to, lab.escalate_after_minutes) == (120, "director", 60)
    assert timedelta(minutes=lab.deadline_minutes) == timedelta(hours=2)


async def test_a_leader_hands_down_a_task_and_hears_how_it_goes(scene: Scene, clock: FakeClock) -> None:
    """交办 (校委会/领导交付的其它工作): the assignee gets a card, reports progress, completes;
    overdue, they are reminded and the leader told a day later; the task stays open."""
    answer = await scene.say("chenhao", "交办 给:李华 内容:整理本学期机房使用记录 截止:明天 17:00")
    assert "已交办 任务 #T1 整理本学期机房使用记录 给李华" in answer
    assert scene.card("lihua")["main_title"]["title"].startswith("任务 #T1")
    assert scene.got("lihua", "陈浩交办给您一项任务：任务 #T1 整理本学期机房使用记录")
    assert "还没有人接受" in await scene.say("chenhao", "进度 #T1")
    assert "已接受任务 #T1" in await scene.click("lihua", scene.card("lihua"), "接受")
    assert scene.got("chenhao", "李华已接受您交办的任务 #T1 整理本学期机房使用记录")
    assert "您已在" in await scene.say("lihua", "接受 #T1")  # once is enough; the leader hears it once
    assert sum("已接受您交办" in m for m in scene.texts("chenhao")) == 1
    assert "没有找到" in await scene.say("wangpeng", "接受 #T1")  # not his task
    assert "已把进展转告陈浩" in await scene.say("lihua", "进展 #T1 已整理一半")
    assert scene.got("chenhao", "李华汇报任务 #T1 整理本学期机房使用记录 的进展：已整理一半")
    assert "李华" in await scene.say("chenhao", "进度 #T1")  # the leader may look it up
    assert "只有" in await scene.say("zhaolei", "交办 给:李华 内容:帮我修电脑 截止:明天 17:00")  # leaders only

    clock.advance(3 * 24 * 3600)  # more than a day past the due time
    await scene.tick()
    await scene.tick()
    assert scene.got("chenhao", "您交办的任务 #T1 整理本学期机房使用记录 已过截止时间")
    assert scene.got("chenhao", "（已接受：李华）")
    assert "已完成" in await scene.say("lihua", "完成 #T1")  # still open: it can be done late
    assert scene.got("chenhao", "您交办的任务 #T1 整理本学期机房使用记录 已由李华完成")


async def test_handing_down_to_a_unit_and_bad_input(scene: Scene) -> None:
    answer = await scene.say("chenhao", "交办 给:信息中心 内容:盘点交换机 截止:12月20日")
    assert "已交办 任务 #T1 盘点交换机 给" in answer and "截止 12月20日" in answer
    assert "没找到“王五”" in await scene.say("chenhao", "交办 给:王五 内容:盘点 截止:12月20日")
    assert "已经过去" in await scene.say("chenhao", "交办 给:李华 内容:盘点 截止:昨天 9:00")


async def test_a_school_day_duty_rests_on_a_holiday_and_in_the_vacation(
    emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """The school calendar: 2026-11-25 is a (made-up) holiday; the next day is a school day again."""
    raw = example_raw()
    raw["duties"] = [{**LAB, "days": "school_days"}]
    raw["calendar"] = {**raw.get("calendar", {}), "holidays": ["2026-11-25"]}
    raw["wecom"]["api_base"], raw["database"] = emulator.base_url, {"url": db_url}
    emulator.clock = lambda: clock.now().timestamp()
    bot = await start_bot(parse_config(raw, environ={}), http, clock=clock, run_dispatcher=False)
    scene = Scene(bot, emulator)
    try:
        await at(scene, clock, shanghai(9, 30))
        assert not scene.got("wangpeng", "请巡检各机房")  # a holiday: no task
        await at(scene, clock, shanghai(9, 30) + timedelta(days=1))
        assert scene.got("wangpeng", "请巡检各机房")  # a school day
    finally:
        await bot.stop()
