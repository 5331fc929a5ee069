"""Engine and session factory; SQLite gets WAL, a busy timeout and BEGIN IMMEDIATE."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine; on SQLite every transaction takes the write lock up front.

    SQLite's default deferred BEGIN lets two connections both read and then both try to write,
    and the loser fails at once with SQLITE_BUSY (the busy timeout does not apply to a lock
    upgrade). BEGIN IMMEDIATE makes writers queue on the busy timeout instead.
    """
    if url.startswith("sqlite"):
        # One connection per process: SQLite has one writer, and every transaction here takes the
        # write lock (BEGIN IMMEDIATE). Queueing for the connection in asyncio (FIFO, no polling)
        # beats queueing on SQLite's busy handler, which sleeps in growing steps and made the
        # slowest callbacks wait over a second under load. Other processes still queue on the
        # busy timeout. No code path holds a session while it opens another.
        kwargs.setdefault("pool_size", 1)
        kwargs.setdefault("max_overflow", 0)
        kwargs.setdefault("pool_timeout", 60)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout=30000")
            # Switching a new database to WAL takes an exclusive lock and does not wait on the
            # busy handler, so processes starting together retry it (WAL then persists in the file).
            for attempt in range(100):
                try:
                    cur.execute("PRAGMA journal_mode=WAL")
                    break
                except Exception as exc:  # sqlite3.OperationalError: database is locked
                    if "locked" not in str(exc) or attempt == 99:
                        raise
                    time.sleep(0.05)
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_async_engine(url, pool_pre_ping=True, **kwargs)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that never expire loaded objects on commit (we read them after)."""
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


async def migrate(engine: AsyncEngine) -> None:
    """Apply every Alembic migration up to head (idempotent)."""

    def _upgrade(conn: Connection) -> None:
        if conn.dialect.name == "postgresql":
            # Several replicas starting at once: one migrates, the others wait here and then find
            # the schema at head (SQLite serialises on BEGIN IMMEDIATE already).
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7142003)")
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")

    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)


async def ping(engine: AsyncEngine) -> bool:
    """True when the database answers a trivial query."""
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
