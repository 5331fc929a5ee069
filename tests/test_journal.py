"""The inbound journal (bot/journal.py): WeCom is answered once a message is durably recorded; the
message is applied after, exactly once, even across a restart; what cannot be recorded is a 503."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import make_url, text

from bot.appkeys import JOURNAL, PIPELINE
from bot.clock import RunningClock
from bot.emulator.server import Emulator
from bot.pipeline import _take_next
from storage.db import journal_url, make_engine, make_sessionmaker
from storage.models import InboundEvent, JournalEntry, OutboxMessage, Ticket
from tests.conftest import Bot, make_config, start_bot

ANSWER_AT_ONCE = {"answer_wait_seconds": 0}  # the production default


def waiting(key: str, from_user: str, payload: str, at: datetime) -> JournalEntry:
    """A message recorded in the journal and not applied yet, as the intake writes it."""
    return JournalEntry(dedupe_key=key, channel="app", from_user=from_user, payload=payload, received_at=at)


async def until_applied(bot: Bot) -> None:
    for _ in range(600):
        if (await bot.health())["inbound"]["pending"] == 0:
            await bot.settle()
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("the journal was not applied")


async def test_answered_once_recorded_and_applied_once_after_a_restart(
    emulator: Emulator, db_url: str, http: aiohttp.ClientSession, wall_clock: RunningClock
) -> None:
    config = make_config(emulator.base_url, db_url, server=ANSWER_AT_ONCE)
    first = await start_bot(config, http, run_jobs=False)
    first.app[JOURNAL].applier.stop()  # the bot is killed before it applies anything
    await asyncio.sleep(0.1)
    xml, _ = first.sender.text_xml("majun", "报修 地点:机房 设备:电脑 描述:蓝屏")
    query, body = first.sender.envelope(xml)
    assert (await first.sender.post_raw(query, body)).status == 200
    assert (await first.sender.post_raw(query, body)).status == 200  # WeCom's retry: still one row
    assert (await first.sender.text("zhaolei", "帮助")).status == 200
    assert (await first.health())["inbound"] == {"pending": 2}
    assert await first.count(InboundEvent) == 0
    assert await first.count(Ticket) == 0
    await first.stop()
    assert emulator.texts_to("majun") == []

    second = await start_bot(config, http, run_jobs=False)
    try:
        await until_applied(second)
        assert await second.count(Ticket) == 1
        assert await second.count(InboundEvent) == 2
        assert len(emulator.texts_to("majun")) == 1
        assert "报修已登记" in emulator.texts_to("majun")[0]
        assert emulator.texts_to("zhaolei")
        # A retry that comes after the apply is recorded again and found to be a duplicate.
        assert (await second.sender.post_raw(query, body)).status == 200
        await until_applied(second)
        assert await second.count(Ticket) == 1
        assert len(emulator.texts_to("majun")) == 1
    finally:
        await second.stop()


async def test_a_message_that_cannot_be_recorded_is_refused_with_503_and_nothing_is_kept(
    emulator: Emulator, db_url: str, http: aiohttp.ClientSession, wall_clock: RunningClock
) -> None:
    bot = await start_bot(make_config(emulator.base_url, db_url, server=ANSWER_AT_ONCE), http, run_jobs=False)
    try:
        journal = bot.app[PIPELINE].journal_sessions  # the database itself, or SQLite's own file
        async with journal() as s, s.begin():  # the database refuses the journal's writes
            await s.execute(text("ALTER TABLE inbound_journal RENAME TO inbound_journal_gone"))
        refused = await bot.sender.text("majun", "报修 地点:机房 设备:电脑 描述:蓝屏")
        assert (refused.status, refused.text) == (503, "try_later")  # WeCom sends it again
        assert await bot.count(InboundEvent) == 0
        assert await bot.count(OutboxMessage) == 0
        async with journal() as s, s.begin():
            await s.execute(text("ALTER TABLE inbound_journal_gone RENAME TO inbound_journal"))
        assert (await bot.sender.text("majun", "报修 地点:机房 设备:电脑 描述:蓝屏")).status == 200
        await until_applied(bot)
        assert await bot.count(Ticket) == 1
    finally:
        await bot.stop()


async def test_a_journal_row_that_cannot_be_read_is_dropped_and_the_next_applied(
    bot: Bot, emulator: Emulator, wall_clock: RunningClock
) -> None:
    """A row an older version wrote that this one cannot parse never blocks the journal."""
    async with bot.app[PIPELINE].journal_sessions() as s, s.begin():
        s.add(waiting("msg:1", "majun", "<xml>", wall_clock.now()))
    assert (await bot.sender.text("majun", "帮助")).status == 200  # answered once applied (the tests wait)
    assert (await bot.health())["inbound"] == {"pending": 0}
    assert await bot.count(InboundEvent) == 1  # the 帮助; the unreadable row left nothing behind
    await bot.settle()
    assert [t for t in emulator.texts_to("majun") if "出错" in t] == []  # nobody is apologised to


async def test_a_members_later_message_waits_while_another_replica_applies_an_earlier_one(
    emulator: Emulator, db_url: str, http: aiohttp.ClientSession, wall_clock: RunningClock
) -> None:
    """Two replicas on one PostgreSQL: while one applies majun's first message, the other takes
    zhaolei's, not majun's second (it used to, and a member's 是 could be applied before the
    question it answers)."""
    if not db_url.startswith("postgresql"):
        pytest.skip("one SQLite writer at a time: there are no concurrent appliers to order")
    config = make_config(emulator.base_url, db_url, server=ANSWER_AT_ONCE)
    bot = await start_bot(config, http, run_jobs=False)
    bot.app[JOURNAL].applier.stop()  # the test takes rows itself, as two replicas' appliers would
    await asyncio.sleep(0.1)
    try:
        for who, text_ in (("majun", "报修"), ("majun", "是"), ("zhaolei", "帮助")):
            assert (await bot.sender.text(who, text_)).status == 200
        sessions = bot.app[PIPELINE].sessions
        async with sessions() as one, one.begin(), sessions() as other, other.begin():
            first = await _take_next(one, set())  # replica 1 is applying majun's 报修
            second = await _take_next(other, set())
            assert first is not None and second is not None
            assert (first.from_user, second.from_user) == ("majun", "zhaolei") and "报修" in first.payload
            assert await _take_next(other, set()) is None  # majun's 是 waits for the 报修
            await one.rollback()  # replica 1 died: its row is back, still first
            third = await _take_next(other, {"zhaolei"})
            assert third is not None and third.id == first.id
    finally:
        await bot.stop()


async def test_what_an_earlier_version_left_in_the_databases_journal_is_applied_once(
    emulator: Emulator, db_url: str, http: aiohttp.ClientSession, wall_clock: RunningClock
) -> None:
    """SQLite keeps the journal in a file of its own (infodesk.inbound.db); a message an earlier
    version recorded in the database's own journal, and never applied, is moved there and applied."""
    if not db_url.startswith("sqlite"):
        pytest.skip("on PostgreSQL the journal is the database's own")
    config = make_config(emulator.base_url, db_url, server=ANSWER_AT_ONCE)
    first = await start_bot(config, http, run_jobs=False)
    xml, _ = first.sender.text_xml("majun", "报修 地点:机房 设备:电脑 描述:蓝屏")
    await first.stop()
    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as s, s.begin():
            s.add(waiting("msg:left-behind", "majun", xml, wall_clock.now()))
    finally:
        await engine.dispose()
    assert journal_url(db_url) is not None and Path(make_url(journal_url(db_url)).database or "").is_file()
    second = await start_bot(config, http, run_jobs=False)
    try:
        await until_applied(second)
        assert await second.count(Ticket) == 1
        assert await second.count(JournalEntry) == 0  # the database's own journal is empty now
        assert len([t for t in emulator.texts_to("majun") if "报修已登记" in t]) == 1
    finally:
        await second.stop()
