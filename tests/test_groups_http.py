"""Audio-class pushes, duty reminders and the once-per-occurrence scheduler (injected clock)."""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError

from bot.appkeys import ENGINE, PIPELINE
from bot.clock import FakeClock
from bot.config import parse_config
from bot.emulator.server import Emulator
from infodesk.app import TIMERS
from schedules.jobs import Scheduler, build_jobs
from storage.models import JobRun
from tests.conftest import example_raw, make_config, start_bot
from tests.scene import Scene

# 2026-11-25 09:00 in Shanghai (Wednesday).
START = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)


def shanghai(hour: int, minute: int = 0, day: int = 25) -> datetime:
    return datetime(2026, 11, day, hour - 8, minute, tzinfo=UTC)


def group_texts(emu: Emulator, to: str) -> list[str]:
    return [d.body["markdown"]["content"] for d in emu.delivered if d.to == to]


AUDIO = "音频课堂 日期:今天 时间:19:30 标题:Excel 数据透视表入门 主讲:周燕 链接:https://example.edu.cn/a/12 群:{group}"


PARENTS = "wrOgQhDgAAparents2024AAAAA"  # a customer group (external): mass sends
STUDENTS = "wrOgQhDgAAstudents2024AAAA"


async def test_approved_notice_is_pushed_at_its_time_and_unapproved_withheld(scene: Scene, clock: FakeClock) -> None:
    await scene.tick()  # the 07:30 cleaning reminder (within the grace window) goes out now
    assert "编号 #1" in await scene.say("zhangwei", AUDIO.format(group="信息技术组教师群"))
    assert "编号 #2" in await scene.say("liyan", AUDIO.format(group="24级家长群").replace("Excel", "家庭教育"))
    assert "编号 #3" in await scene.say("zhangwei", AUDIO.format(group="24级信息技术在校生群").replace("Excel", "Word"))
    assert "只有这些群的管理员" in await scene.say("liyan", AUDIO.format(group="毕业生群"))
    await scene.say("liuyang", "同意 #1")
    await scene.say("liuyang", "同意 #2")
    await scene.say("liuyang", "驳回 #3 链接打不开")

    clock.advance((shanghai(18, 5) - START).total_seconds())  # 18:05: admins prompted
    await scene.tick()
    assert scene.got("liyan", "将推送《家庭教育 数据透视表入门》")
    assert scene.got("liyan", "群主李燕确认群发")  # a customer group: the owner will be asked
    assert scene.got("zhouyan", "24级信息技术在校生群今天 19:05 的推送：目前没有已批准的内容")
    assert scene.group_deliveries() == []  # nothing is pushed before the time

    clock.advance(3600)  # 19:05: push
    await scene.tick()
    teachers = group_texts(scene.emu, "chat:itteachers2024")  # the internal app group: at once
    assert len(teachers) == 1 and "Excel 数据透视表入门" in teachers[0] and "https://example.edu.cn/a/12" in teachers[0]
    # The parents' group is external: WeCom asks its owner to confirm; nothing is in the group yet.
    [task] = scene.emu.customer.waiting("liyan")
    assert task.chat_ids == [PARENTS] and "家庭教育 数据透视表入门" in task.text
    assert task.attachments[0]["link"]["url"] == "https://example.edu.cn/a/12"
    assert scene.emu.customer.sent_to(PARENTS) == []
    assert scene.emu.customer.waiting("zhouyan") == []  # rejected: never pushed
    assert scene.got("zhouyan", "没有推送音频课堂")
    scene.emu.customer.confirm("liyan")  # the owner taps 发送
    assert len(scene.emu.customer.sent_to(PARENTS)) == 1
    await scene.tick()
    assert len(group_texts(scene.emu, "chat:itteachers2024")) == 1  # once
    assert len(scene.emu.calls_to("externalcontact/add_msg_template")) == 1


async def test_webhook_group_and_pending_content_named_to_admins(scene: Scene, clock: FakeClock) -> None:
    await scene.say("zhouyan", AUDIO.format(group="毕业生群、24级信息技术在校生群"))
    clock.advance((shanghai(19, 5) - START).total_seconds())
    await scene.tick()
    assert scene.got("zhouyan", "#1《Excel 数据透视表入门》未获批准，未推送")
    assert scene.group_deliveries() == []
    await scene.say("liuyang", "同意 #1")
    clock.advance(24 * 3600 - 1800)  # the next day, 18:30: content for yesterday is not pushed today
    await scene.tick()
    assert scene.group_deliveries() == []


async def test_duties_fire_once_at_their_time(scene: Scene, clock: FakeClock) -> None:
    await scene.tick()  # 09:00: the 07:30 cleaning reminder is 90 minutes late, inside the grace window
    assert scene.got("lihua", "机房打扫") and not scene.got("zhanglei", "机房打扫")  # computer technicians only
    assert not scene.got("lihua", "UPS")
    clock.advance((shanghai(10) - START).total_seconds())
    await scene.tick()
    assert scene.got("lihua", "UPS")  # sysadmin, 10:00
    await scene.tick()
    assert sum("UPS" in t for t in scene.texts("lihua")) == 1


async def test_a_tick_just_before_the_time_does_not_skip_the_occurrence(scene: Scene, clock: FakeClock) -> None:
    # The scheduler ticked half a second before 10:00; the next tick, just after, sends the UPS check
    # (it was skipped when the search for the next time started a whole second after the last tick).
    clock.advance((shanghai(10) - START).total_seconds() - 0.5)
    await scene.tick()
    assert not scene.got("lihua", "UPS")
    clock.advance(1)
    await scene.tick()
    assert sum("UPS" in t for t in scene.texts("lihua")) == 1


async def test_restart_across_a_scheduled_time_sends_once_at_start_up(
    scene: Scene, emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    await scene.tick()
    await scene.bot.stop()
    clock.advance((shanghai(10, 30) - START).total_seconds())  # 10:00 passed while down
    bot = await start_bot(make_config(emulator.base_url, db_url), http, clock=clock, run_dispatcher=False)
    again = Scene(bot, emulator)
    try:
        await again.tick()
        assert sum("UPS" in t for t in again.texts("lihua")) == 1
        await bot.stop()
        clock.advance(26 * 3600)  # down past the next 10:00 and beyond the 2-hour grace window
        bot = await start_bot(make_config(emulator.base_url, db_url), http, clock=clock, run_dispatcher=False)
        again = Scene(bot, emulator)
        await again.tick()
        assert sum("UPS" in t for t in again.texts("lihua")) == 1  # too late: logged as missed, not sent
        async with bot.app[PIPELINE].sessions() as s:
            missed = (
                await s.execute(
                    select(func.count())
                    .select_from(JobRun)
                    .where(JobRun.job_id == "duty:ups_check", JobRun.status == "missed")
                )
            ).scalar_one()
        assert missed == 1
    finally:
        await bot.stop()
        scene.bot.runner = bot.runner


async def test_two_schedulers_on_one_database_fire_each_occurrence_once(scene: Scene, clock: FakeClock) -> None:
    pipeline = scene.bot.app[PIPELINE]
    other = Scheduler(pipeline, build_jobs(pipeline))  # a second bot process's scheduler
    clock.advance((shanghai(10) - START).total_seconds())
    import asyncio

    fired = await asyncio.gather(scene.bot.app[TIMERS].jobs.run_due(), other.run_due())
    await scene.bot.settle()
    assert sum("UPS" in t for t in scene.texts("lihua")) == 1
    async with pipeline.sessions() as s:
        runs = (
            await s.execute(select(func.count()).select_from(JobRun).where(JobRun.job_id == "duty:ups_check"))
        ).scalar_one()
    assert runs == 1 and sum(fired) >= 1


async def test_prompt_before_midnight_announces_the_next_days_push(
    emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """A 23:30 prompt for a 00:10 push is about the notices for the day of the push."""
    raw = example_raw()
    teachers = next(g for g in raw["groups"] if g["chat_id"] == "itteachers2024")
    teachers.update(push_time="00:10", prompt_minutes_before=40)
    raw["wecom"]["api_base"], raw["database"] = emulator.base_url, {"url": db_url}
    emulator.clock = lambda: clock.now().timestamp()
    bot = await start_bot(parse_config(raw, environ={}), http, clock=clock, run_dispatcher=False)
    scene = Scene(bot, emulator)
    try:
        await scene.say(
            "zhangwei", AUDIO.format(group="信息技术组教师群").replace("今天", "明天").replace("Excel", "Word")
        )
        await scene.say("liuyang", "同意 #1")
        clock.advance((shanghai(23, 30) - START).total_seconds())  # the prompt, on the 25th
        await scene.tick()
        assert scene.got("zhangwei", "将推送《Word 数据透视表入门》")
        assert not scene.got("zhangwei", "信息技术组教师群今天 00:10 的推送：目前没有已批准的内容")
        clock.advance(40 * 60)  # 00:10 on the 26th: the push
        await scene.tick()
        assert len(group_texts(scene.emu, "chat:itteachers2024")) == 1
    finally:
        await bot.stop()


async def test_an_occurrence_whose_transaction_failed_is_sent_on_the_next_tick(scene: Scene, clock: FakeClock) -> None:
    # The database refuses the 10:00 UPS reminder's outbox row once (a lost connection, a full
    # disk): nothing is committed, and the next tick sends it, once. It used to be skipped for good.
    engine = scene.bot.app[ENGINE].sync_engine
    refused: list[str] = []

    def refuse_once(conn: object, cursor: object, statement: str, parameters: object, *args: object) -> None:
        if not refused and statement.lstrip().upper().startswith("INSERT INTO OUTBOX") and "UPS" in str(parameters):
            refused.append(statement)
            raise OperationalError(statement, {}, Exception("disk I/O error"))

    await scene.tick()  # the morning's earlier duties, before the fault
    clock.advance((shanghai(10) - START).total_seconds())
    event.listen(engine, "before_cursor_execute", refuse_once)
    try:
        await scene.tick()
        assert refused and not scene.got("lihua", "UPS")
        clock.advance(30)
        await scene.tick()
    finally:
        event.remove(engine, "before_cursor_execute", refuse_once)
    assert sum("UPS" in t for t in scene.texts("lihua")) == 1
    async with scene.bot.app[PIPELINE].sessions() as s:
        runs = (await s.execute(select(JobRun.status).where(JobRun.job_id == "duty:ups_check"))).scalars().all()
    assert runs == ["done"]


async def test_an_occurrence_that_fails_every_time_is_recorded_as_failed_after_three_tries(
    scene: Scene, clock: FakeClock
) -> None:
    engine = scene.bot.app[ENGINE].sync_engine
    refused: list[str] = []

    def refuse(conn: object, cursor: object, statement: str, parameters: object, *args: object) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO OUTBOX") and "UPS" in str(parameters):
            refused.append(statement)
            raise OperationalError(statement, {}, Exception("a handler's bug"))

    await scene.tick()
    clock.advance((shanghai(10) - START).total_seconds())
    event.listen(engine, "before_cursor_execute", refuse)
    try:
        for _ in range(5):
            await scene.tick()
            clock.advance(30)
    finally:
        event.remove(engine, "before_cursor_execute", refuse)
    assert len(refused) == 3 and not scene.got("lihua", "UPS")
    async with scene.bot.app[PIPELINE].sessions() as s:
        runs = (await s.execute(select(JobRun.status).where(JobRun.job_id == "duty:ups_check"))).scalars().all()
    assert runs == ["failed"]
