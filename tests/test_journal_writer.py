"""The journal's writers (storage/journal_writer.py): what the intake commits is what the applier
reads back through the ORM, a recorded key is never recorded twice, a writer that failed works
again at the next batch, and on SQLite a write waiting for another process's lock does not stop
the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.db import journal_url, make_engine, make_sessionmaker, sqlite_database
from storage.journal_writer import (
    AsyncpgWriter,
    JournalWriter,
    Row,
    SessionWriter,
    SqliteFileWriter,
    journal_writer,
)
from storage.models import Base, JournalEntry

SHANGHAI = timezone(timedelta(hours=8))


_engines: list[AsyncEngine] = []


@pytest.fixture(autouse=True)
async def _dispose_engines() -> AsyncIterator[None]:
    """Every engine a test opened is disposed before its event loop closes: an aiosqlite
    connection left to the garbage collector is finalised on another thread while its own thread
    may still be using it."""
    yield
    while _engines:
        await _engines.pop().dispose()


async def journal_of(db_url: str) -> tuple[str, async_sessionmaker[AsyncSession]]:
    """The journal for the database at `db_url` (its own file on SQLite), ready: its URL and
    sessions."""
    url = journal_url(db_url) or db_url
    engine = make_engine(url)
    _engines.append(engine)
    async with engine.begin() as conn:
        table = Base.metadata.tables[JournalEntry.__tablename__]
        await conn.run_sync(lambda sync: table.create(sync, checkfirst=True))
    return url, make_sessionmaker(engine)


async def rows_in(sessions: async_sessionmaker[AsyncSession]) -> list[JournalEntry]:
    async with sessions() as s:
        return list((await s.scalars(select(JournalEntry).order_by(JournalEntry.id))).all())


def row(n: int, at: datetime, user: str = "zhangsan") -> Row:
    return Row(f"msg:{n}", "app", user, f"<xml><Content><![CDATA[报修 {n}]]></Content></xml>", at)


async def test_rows_read_back_through_the_orm_as_written_and_a_key_is_recorded_once(db_url: str) -> None:
    url, sessions = await journal_of(db_url)
    writer = journal_writer(sessions)
    expected = AsyncpgWriter if url.startswith("postgresql") else SqliteFileWriter
    assert isinstance(writer, expected)
    at = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=SHANGHAI)  # a local time: stored as UTC
    try:
        await writer.write([row(1, at), row(2, at, "lisi"), row(1, at)])  # a retry within the batch
        await writer.write([row(2, at + timedelta(seconds=5), "lisi"), row(3, at)])  # and a later one
    finally:
        await writer.close()
    got = await rows_in(sessions)
    assert [(r.dedupe_key, r.from_user) for r in got] == [
        ("msg:1", "zhangsan"),
        ("msg:2", "lisi"),
        ("msg:3", "zhangsan"),
    ]
    assert got[0].payload == "<xml><Content><![CDATA[报修 1]]></Content></xml>" and got[0].channel == "app"
    # The first write of a key stands; the time is the same instant, read back aware in UTC.
    assert got[1].received_at == at and got[1].received_at.tzinfo is not None
    assert got[1].received_at.utcoffset() == timedelta(0)
    # The ORM's own rows and the writer's compare in order (the applier's queries sort by time).
    async with sessions() as s, s.begin():
        s.add(JournalEntry(dedupe_key="msg:4", channel="app", from_user="x", payload="p", received_at=at))
    async with sessions() as s:
        same = (await s.scalars(select(JournalEntry.dedupe_key).where(JournalEntry.received_at == at))).all()
    assert sorted(same) == ["msg:1", "msg:2", "msg:3", "msg:4"]


async def test_a_failed_write_changes_nothing_and_the_next_batch_writes(db_url: str) -> None:
    url, sessions = await journal_of(db_url)
    writer = journal_writer(sessions)
    at = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    too_long = Row("msg:9", "app", "u" * 300, "p", at)  # longer than the column (PostgreSQL refuses it)
    bad = Row("msg:8", "app", "zhangsan", None, at)  # type: ignore[arg-type]  # NOT NULL, both refuse it
    try:
        with pytest.raises(Exception):  # noqa: B017  (the driver's own error class)
            await writer.write([row(1, at), bad])
        if url.startswith("postgresql"):
            with pytest.raises(Exception):  # noqa: B017
                await writer.write([row(1, at), too_long])
        assert await rows_in(sessions) == []  # all or nothing
        await writer.write([row(1, at)])
    finally:
        await writer.close()
    assert [r.dedupe_key for r in await rows_in(sessions)] == ["msg:1"]


async def test_postgresql_writer_writes_again_on_a_new_connection_after_its_own_is_killed(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    _, sessions = await journal_of(db_url)
    writer = journal_writer(sessions)
    at = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    try:
        await writer.write([row(1, at)])
        async with sessions() as s, s.begin():  # as a database restart or a failover would
            await s.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        await writer.write([row(2, at)])  # on a new connection, the batch written once
        await writer.write([row(3, at)])
    finally:
        await writer.close()
    assert [r.dedupe_key for r in await rows_in(sessions)] == ["msg:1", "msg:2", "msg:3"]


async def test_sqlite_write_waits_for_another_process_lock_off_the_event_loop(db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite only")
    url, sessions = await journal_of(db_url)
    database = sqlite_database(url)
    assert database is not None
    writer = journal_writer(sessions)
    other = sqlite3.connect(database, isolation_level=None)  # another process's writer, as it were
    other.execute("BEGIN IMMEDIATE")
    at = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.create_task(tick())
    try:
        write = asyncio.create_task(writer.write([row(1, at)]))
        await asyncio.sleep(0.5)
        assert not write.done()  # waiting for the lock
        assert ticks >= 20  # while the loop went on
        other.execute("COMMIT")
        await asyncio.wait_for(write, 10)
        await writer.write([row(2, at)])  # the lock free: written at once
        other.execute("BEGIN IMMEDIATE")  # and held again: the next batch waits again, not fails
        write = asyncio.create_task(writer.write([row(3, at)]))
        await asyncio.sleep(0.2)
        assert not write.done()
        other.execute("COMMIT")
        await asyncio.wait_for(write, 10)
    finally:
        ticking.cancel()
        other.close()
        await writer.close()
    assert [r.dedupe_key for r in await rows_in(sessions)] == ["msg:1", "msg:2", "msg:3"]


async def test_a_journal_no_other_connection_can_see_is_written_through_the_session(tmp_path: Path) -> None:
    """SQLite with URI options (or in memory): the journal is in the database itself, written
    through the engine's one connection."""
    url = f"sqlite+aiosqlite:///file:{tmp_path}/journal.db?mode=rwc&uri=true"
    engine = make_engine(url)
    _engines.append(engine)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.tables[JournalEntry.__tablename__].create)
    sessions = make_sessionmaker(engine)
    writer: JournalWriter = journal_writer(sessions)
    assert isinstance(writer, SessionWriter)
    await writer.write([row(1, datetime(2026, 3, 2, 1, 0, tzinfo=UTC))])
    assert [r.dedupe_key for r in await rows_in(sessions)] == ["msg:1"]


async def test_postgresql_writer_connects_with_the_urls_options(db_url: str) -> None:
    """The URL's options (SSL mode, the driver's statement cache) are the engine's, not sent to the
    server as settings it would refuse."""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    await journal_of(db_url)
    engine = make_engine(f"{db_url}?ssl=disable&prepared_statement_cache_size=0")
    _engines.append(engine)
    sessions = make_sessionmaker(engine)
    writer = journal_writer(sessions)
    try:
        await writer.write([row(1, datetime(2026, 3, 2, 1, 0, tzinfo=UTC))])
    finally:
        await writer.close()
    _, check = await journal_of(db_url)
    assert [r.dedupe_key for r in await rows_in(check)] == ["msg:1"]


async def test_a_naive_time_is_refused_as_the_orm_refuses_it(db_url: str) -> None:
    _, sessions = await journal_of(db_url)
    writer = journal_writer(sessions)
    try:
        with pytest.raises(ValueError, match="naive"):
            await writer.write([row(1, datetime(2026, 3, 2, 9, 0))])
        await writer.write([row(2, datetime(2026, 3, 2, 1, 0, tzinfo=UTC))])
    finally:
        await writer.close()
    assert [r.dedupe_key for r in await rows_in(sessions)] == ["msg:2"]


async def test_closing_twice_is_closing_once_and_a_write_after_it_fails(db_url: str) -> None:
    """A second close does nothing, and nothing writes after a close."""
    _, sessions = await journal_of(db_url)
    writer = journal_writer(sessions)
    at = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    await writer.write([row(1, at)])
    await writer.close()
    await writer.close()
    with pytest.raises(RuntimeError):
        await writer.write([row(2, at)])
    assert [r.dedupe_key for r in await rows_in(sessions)] == ["msg:1"]
