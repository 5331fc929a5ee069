"""Two connections to one SQLite file (two processes in production): the second writer waits for
the first's lock without stopping the event loop, then writes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from storage.db import make_engine


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
