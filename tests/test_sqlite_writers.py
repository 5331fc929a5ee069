"""Two connections to one SQLite file (two processes in production): the second writer waits for
the first's lock without stopping the event loop, then writes."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from sqlalchemy import text

from storage.db import checkpoint_wal, make_engine


async def test_a_writer_waits_for_another_connections_lock_off_the_event_loop(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/w.db"
    first, second = make_engine(url), make_engine(url)
    try:
        async with first.begin() as conn:
            await conn.execute(text("CREATE TABLE t (n INTEGER)"))
        ticks = 0

        async def write_second() -> None:
            async with second.begin() as conn:  # BEGIN IMMEDIATE: waits while `first` writes
                await conn.execute(text("INSERT INTO t VALUES (2)"))

        async with first.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (1)"))
            waiting = asyncio.create_task(write_second())
            for _ in range(20):  # the loop keeps running while the second writer waits
                await asyncio.sleep(0.01)
                ticks += 1
            assert not waiting.done()
        await asyncio.wait_for(waiting, 30)
        assert ticks == 20
        async with first.connect() as conn:
            assert (await conn.execute(text("SELECT n FROM t ORDER BY n"))).scalars().all() == [1, 2]
    finally:
        await first.dispose()
        await second.dispose()


async def test_the_wal_is_checkpointed_in_the_background_not_in_a_commit(tmp_path: Path) -> None:
    """The serving engine never checkpoints inside a commit (on the event loop); `checkpoint_wal`
    copies committed pages into the database file from a thread."""
    url = f"sqlite+aiosqlite:///{tmp_path}/w.db"
    engine = make_engine(url, background_checkpoints=True)
    try:
        async with engine.begin() as conn:
            assert (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar() == 0
            await conn.execute(text("CREATE TABLE t (n INTEGER)"))
            await conn.execute(text("INSERT INTO t VALUES (1), (2), (3)"))

        def rows_in_the_database_file() -> int:
            """The database file alone (a copy without its WAL): what was checkpointed."""
            copy = tmp_path / "copy.db"
            copy.write_bytes((tmp_path / "w.db").read_bytes())
            with sqlite3.connect(copy) as c:
                try:
                    return int(c.execute("SELECT count(*) FROM t").fetchone()[0])
                except sqlite3.OperationalError:  # no such table: not checkpointed yet
                    return 0

        assert rows_in_the_database_file() == 0  # committed, still only in the WAL
        stop = asyncio.Event()
        task = asyncio.create_task(checkpoint_wal(url, stop, every=0.05))
        for _ in range(100):
            if rows_in_the_database_file() == 3:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await task
        assert rows_in_the_database_file() == 3
    finally:
        await engine.dispose()


async def test_a_database_the_checkpointer_cannot_keep_keeps_sqlites_own_checkpoints(tmp_path: Path) -> None:
    """A URL with URI options is not one `checkpoint_wal` keeps: its WAL must not grow unchecked."""
    engine = make_engine(f"sqlite+aiosqlite:///file:{tmp_path}/u.db?mode=rwc&uri=true", background_checkpoints=True)
    try:
        async with engine.begin() as conn:
            assert (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar() == 1000
    finally:
        await engine.dispose()
