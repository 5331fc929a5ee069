"""Engine and session factory; SQLite gets WAL, a busy timeout and BEGIN IMMEDIATE."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiosqlite
from sqlalchemy import event, inspect, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

logger = logging.getLogger("infodesk.db")
MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration (tests/test_migrations.py checks it is Alembic's head). A start that finds
# the database there does not import Alembic: ~11 MB and ~150 ms in each process, for nothing.
HEAD_REVISION = "8c3f1a67e2b9"
BUSY_TIMEOUT_MS = 30000  # how long a SQLite writer waits for another process's write lock
# `await session.connection(execution_options=READ_ONLY)` before the first statement: on SQLite the
# transaction does not take the write lock (it must not write).
READ_ONLY_OPTION = "infodesk_read_only"
READ_ONLY = {READ_ONLY_OPTION: True}


def make_engine(url: str, *, background_checkpoints: bool = False, **kwargs: Any) -> AsyncEngine:
    """An async engine; on SQLite every transaction takes the write lock up front.

    `background_checkpoints` (SQLite): the engine's connections never checkpoint the WAL themselves;
    the caller runs `checkpoint_wal` (the server does), so that a checkpoint's fsync happens in a
    thread instead of inside a commit on the event loop.

    SQLite's default deferred BEGIN lets two connections both read and then both try to write,
    and the loser fails at once with SQLITE_BUSY (the busy timeout does not apply to a lock
    upgrade). BEGIN IMMEDIATE makes writers queue on the busy timeout instead.
    """
    if url.startswith("sqlite"):
        # Only a file `checkpoint_wal` can keep gives up SQLite's own checkpoints.
        checkpoints_elsewhere = background_checkpoints and sqlite_database(url) is not None
        # One connection per process: SQLite has one writer, and every transaction here takes the
        # write lock (BEGIN IMMEDIATE). Queueing for the connection in asyncio (FIFO, no polling)
        # beats queueing on SQLite's busy handler, which sleeps in growing steps and made the
        # slowest callbacks wait over a second under load. Other processes still queue on the
        # busy timeout. No code path holds a session while it opens another.
        kwargs.setdefault("pool_size", 1)
        kwargs.setdefault("max_overflow", 0)
        kwargs.setdefault("pool_timeout", 60)
        if make_url(url).query:  # URI options (mode=memory, …): aiosqlite as it comes
            engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
        else:
            engine = create_async_engine(url, async_creator=_inline_creator(url), **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
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
            # Durability: in WAL mode with synchronous=NORMAL a commit is appended to the WAL and
            # handed to the OS without an fsync; the WAL is fsynced at each checkpoint. A crash of
            # the bot (SIGKILL, OOM, an exception) loses nothing committed: the OS already holds
            # the WAL, and the next connection replays it. Only an OS crash or a power cut may lose
            # the last commits before the checkpoint, atomically (never half a transaction), and a
            # callback answered 200 among them would then not be retried by WeCom. That risk is taken
            # for an fsync saved per callback. The inbound journal's own file (bot/journal.py) is
            # checkpointed on its own: after a power cut it may keep a later deletion of a message's
            # row while the database lost that message's earlier commit, the same loss of the last
            # commits in another shape. A deployment that cannot take it sets
            # synchronous=FULL here (one fsync per commit, with the connection held meanwhile), or
            # runs on PostgreSQL, whose commits are fsynced.
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            if checkpoints_elsewhere:
                cur.execute("PRAGMA wal_autocheckpoint=0")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # A session that only reads asks for READ_ONLY: in WAL mode its plain BEGIN neither waits
            # for the writer nor makes another process's writer wait (on the busy handler's sleeps).
            read_only = conn.get_execution_options().get(READ_ONLY_OPTION)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    return create_async_engine(url, pool_pre_ping=True, **kwargs)


def _inline_creator(url: str) -> Callable[[], Awaitable[Any]]:
    """aiosqlite connections whose statements run on the event loop's thread, except those that
    may wait for another process's lock (BEGIN, PRAGMA), which keep going through aiosqlite's thread.

    aiosqlite hands every call (cursor, execute, fetch, close: four per statement) to its worker
    thread and wakes the event loop for each answer; a callback's ~20 round trips cost more than the
    statements themselves, and the one connection was held all the while. Inside a transaction that
    began with BEGIN IMMEDIATE this connection holds SQLite's write lock, and in WAL mode readers
    never block it, so no statement there can wait on another connection: it takes microseconds
    (commits do not fsync with synchronous=NORMAL; a checkpoint, every ~4 MB of WAL, does). What can
    wait (BEGIN queueing behind another process's writer, up to the busy timeout) still waits off the
    loop.
    """
    database = make_url(url).database or ":memory:"

    async def create() -> Any:
        conn = aiosqlite.connect(database, timeout=30, check_same_thread=False)
        conn._thread.daemon = True  # as SQLAlchemy's own aiosqlite dialect does
        return _InlineConnection(await conn)

    return create


class _InlineCursor:
    """An aiosqlite-shaped cursor over the sqlite3 cursor; see `_inline_creator`."""

    def __init__(self, owner: aiosqlite.Connection, cursor: sqlite3.Cursor) -> None:
        self._owner = owner
        self._cursor = cursor

    async def __aenter__(self) -> _InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = None) -> _InlineCursor:
        params = () if parameters is None else parameters
        head = sql.lstrip()[:6].upper()
        if head.startswith("BEGIN"):
            await self._begin(sql, params)
        elif head == "PRAGMA":
            await self._owner._execute(self._cursor.execute, sql, params)  # type: ignore[no-untyped-call]
        else:
            self._cursor.execute(sql, params)
        return self

    async def _begin(self, sql: str, params: Any) -> None:
        """BEGIN at once when no other connection writes (the usual case); otherwise wait for the
        lock on the busy timeout in aiosqlite's thread, off the event loop."""
        conn, cursor = self._owner._conn, self._cursor
        conn.execute("PRAGMA busy_timeout=0")  # on its own cursor: BEGIN's stays without rows
        try:
            cursor.execute(sql, params)
            return
        except sqlite3.OperationalError as exc:
            if not sqlite_busy(exc):
                raise
        finally:
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        await self._owner._execute(cursor.execute, sql, params)  # type: ignore[no-untyped-call]

    async def executemany(self, sql: str, seq: Any) -> _InlineCursor:
        self._cursor.executemany(sql, seq)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


def sqlite_busy(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused because another connection holds the lock (SQLITE_BUSY/LOCKED)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in str(exc) or "busy" in str(exc)


class _CursorOpener:
    """`connection.cursor()`: awaitable and an async context manager, as aiosqlite's is."""

    def __init__(self, owner: aiosqlite.Connection) -> None:
        self._owner = owner

    def __await__(self) -> Generator[Any, None, _InlineCursor]:
        return self.__aenter__().__await__()

    async def __aenter__(self) -> _InlineCursor:
        return _InlineCursor(self._owner, self._owner._conn.cursor())

    async def __aexit__(self, *exc: object) -> None:
        return None


class _InlineConnection:
    """An aiosqlite connection whose cursors, commits and rollbacks run inline."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._aio = conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._aio, name)

    def cursor(self) -> _CursorOpener:
        return _CursorOpener(self._aio)

    async def commit(self) -> None:
        self._aio._conn.commit()

    async def rollback(self) -> None:
        self._aio._conn.rollback()


CHECKPOINT_SECONDS = 1.0  # how often `checkpoint_wal` copies the WAL back into the database


async def checkpoint_wal(url: str, stop: asyncio.Event, every: float = CHECKPOINT_SECONDS) -> None:
    """Until `stop` is set: a PASSIVE checkpoint of a SQLite file's WAL every `every` seconds, on
    its own connection in a worker thread.

    With inline statements (`_inline_creator`) SQLite's automatic checkpoint, every ~4 MB of WAL,
    ran inside a commit on the event loop's thread, fsync included: every callback waited for it.
    A PASSIVE checkpoint never blocks writers or readers (what a reader still needs stays in the WAL
    for the next one), and sqlite3 releases the GIL while it works. A checkpoint that fails is
    logged and tried again; the WAL only grows meanwhile.
    """
    database = sqlite_database(url)
    if database is None:
        await stop.wait()
        return
    # One thread of its own for the connection: its close always runs after a checkpoint still in
    # progress, even when this task is cancelled meanwhile (with the default executor the close
    # could run on another thread during the checkpoint, freeing what the checkpoint was using).
    thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wal-checkpoint")
    loop = asyncio.get_running_loop()
    conn = await loop.run_in_executor(thread, functools.partial(sqlite3.connect, database, timeout=0))
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
            try:
                await loop.run_in_executor(thread, conn.execute, "PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:
                logger.warning("wal_checkpoint_failed", extra={"fields": {"error": str(exc)[:200]}})
    finally:
        closed = loop.run_in_executor(thread, conn.close)
        thread.shutdown(wait=False)  # the close is its last work
        await closed


def journal_url(url: str) -> str | None:
    """Where a SQLite database file's inbound journal lives: a file of its own beside it
    (infodesk.db → infodesk.inbound.db, bot/journal.py), or None: in the database itself
    (PostgreSQL; SQLite in memory or with URI options)."""
    database = sqlite_database(url)
    if database is None:
        return None
    return str(make_url(url).set(database=str(journal_file(Path(database)))))


def journal_file(database: Path) -> Path:
    """The inbound journal's own file beside a SQLite database file (`journal_url`)."""
    return database.with_name(f"{database.stem}.inbound{database.suffix or '.db'}")


def shareable(url: str) -> bool:
    """Whether two processes can open the database at `url` (PostgreSQL, or a SQLite file)."""
    return not url.startswith("sqlite") or sqlite_database(url) is not None


def sqlite_database(url: str) -> str | None:
    """The SQLite file at `url`, whose WAL `checkpoint_wal` keeps; None: PostgreSQL, memory, URI
    options."""
    parsed = make_url(url)
    if not url.startswith("sqlite") or parsed.query or parsed.database in (None, "", ":memory:"):
        return None
    return parsed.database


@contextlib.asynccontextmanager
async def reading(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session that only reads: on SQLite its transaction is a plain BEGIN (READ_ONLY), which
    neither waits for the writer nor holds up another process's."""
    async with sessions() as s:
        await s.connection(execution_options=READ_ONLY)
        yield s


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that never expire loaded objects on commit (we read them after)."""
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


async def migrate(engine: AsyncEngine) -> None:
    """Apply every Alembic migration up to head (idempotent)."""

    def _current(conn: Connection) -> str | None:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()

    def _upgrade(conn: Connection) -> None:
        from alembic import command

        if conn.dialect.name == "postgresql":
            # Several replicas starting at once: one migrates, the others wait here and then find
            # the schema at head (SQLite serialises on BEGIN IMMEDIATE already).
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7142003)")
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")

    async with engine.connect() as conn:
        await conn.execution_options(**READ_ONLY)
        if await conn.run_sync(_current) == HEAD_REVISION:
            return
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)


async def ping(engine: AsyncEngine) -> bool:
    """True when the database answers a trivial query."""
    try:
        async with engine.connect() as conn:
            await conn.execution_options(**READ_ONLY)
            await conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
