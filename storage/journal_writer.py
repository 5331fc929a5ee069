"""Writing the inbound journal's rows: the one write on a callback's path (bot/journal.Intake).

A group commit of journal rows is one INSERT of a few rows and a commit. Through the ORM session
it cost ~1 ms of the event loop's CPU for eight rows (session, unit of work, statement cache, the
dialect's bind processing) and, on PostgreSQL, four round trips (the pool's ping, BEGIN, INSERT,
COMMIT). The writers here do only that INSERT:

- `SqliteFileWriter`: a sqlite3 connection of its own to the journal's file. BEGIN IMMEDIATE,
  executemany and COMMIT run on the event loop when the write lock is free (the usual case: a batch
  takes tens of microseconds, commits do not fsync); when another process holds it (the worker's
  delete of applied rows, a checkpoint), the batch is handed to a thread of its own, which waits on
  the busy timeout. The event loop never waits for SQLite's lock. Handing every batch to the thread
  cost the front more than the write itself: the executor's queue, the thread's wake-up, the GIL
  passed back and forth and the loop woken to take the result.
- `AsyncpgWriter`: a connection of its own, one statement in autocommit: the rows go as arrays
  (`unnest`), so the batch is one round trip and one atomic commit (fsynced, as every PostgreSQL
  commit here is).
- `SessionWriter`: the ORM session, for the rest (SQLite in memory or with URI options, which
  another connection could not see, and any other database).

Each writes a row as the ORM would (the same columns, `received_at` in UTC as `UTCDateTime` stores
it), so the applier reads it back through the ORM unchanged; `ON CONFLICT (dedupe_key) DO NOTHING`
makes a retry of a recorded message a no-op. A writer that failed is reopened at the next batch.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.db import BUSY_TIMEOUT_MS, sqlite_busy, sqlite_database
from storage.models import JournalEntry

COLUMNS = ("dedupe_key", "channel", "from_user", "payload", "received_at")
TABLE = JournalEntry.__tablename__
# As SQLAlchemy's SQLite DATETIME stores a value (UTCDateTime has made it UTC): the ORM reads it back.
SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"


@dataclass(frozen=True)
class Row:
    """One journal row, as bot/journal.Intake queues it."""

    dedupe_key: str
    channel: str
    from_user: str
    payload: str
    received_at: datetime  # aware


class JournalWriter(Protocol):
    async def write(self, rows: Sequence[Row]) -> None:
        """Commit the rows (a row whose dedupe key is there already is skipped), or raise."""
        ...

    async def close(self) -> None: ...


@dataclass
class SessionWriter:
    """Through the ORM session (any database)."""

    sessions: async_sessionmaker[AsyncSession]

    async def write(self, rows: Sequence[Row]) -> None:
        async with self.sessions() as s, s.begin():
            dialect = s.get_bind().dialect.name
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            stmt = insert(JournalEntry).on_conflict_do_nothing(index_elements=["dedupe_key"])
            await s.execute(stmt, [{c: getattr(r, c) for c in COLUMNS} for r in rows])

    async def close(self) -> None:
        return None


@dataclass
class SqliteFileWriter:
    """A sqlite3 connection to the journal's file: on the event loop while the write lock is free,
    in a thread of its own while another process holds it."""

    path: Path
    _conn: sqlite3.Connection | None = None
    _closed: bool = False
    _thread: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-writer")
    )

    SQL = f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES (?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING"

    async def write(self, rows: Sequence[Row]) -> None:
        values: list[tuple[str, ...]] = [
            (
                r.dedupe_key,
                r.channel,
                r.from_user,
                r.payload,
                _aware(r.received_at).astimezone(UTC).strftime(SQLITE_DATETIME),
            )
            for r in rows
        ]
        if self._closed:
            raise RuntimeError("the journal writer is closed")
        conn = self._conn or self._open()
        try:
            conn.execute("BEGIN IMMEDIATE")  # busy_timeout 0: fails at once if another has the lock
        except sqlite3.OperationalError as exc:
            if not sqlite_busy(exc):
                self._drop(conn)
                raise
            await asyncio.get_running_loop().run_in_executor(self._thread, self._write_waiting, values)
            return
        self._finish(conn, values)

    def _write_waiting(self, values: list[tuple[str, ...]]) -> None:  # in the writer's thread
        conn = self._conn or self._open()
        try:
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            conn.execute("BEGIN IMMEDIATE")  # waits here for the other writer, on the busy timeout
            conn.execute("PRAGMA busy_timeout=0")  # takes no lock: the write lock is ours already
        except BaseException:
            self._drop(conn)
            raise
        self._finish(conn, values)

    def _finish(self, conn: sqlite3.Connection, values: list[tuple[str, ...]]) -> None:
        """The INSERT and the COMMIT, holding the write lock (in WAL mode nothing waits here)."""
        try:
            conn.executemany(self.SQL, values)
            conn.execute("COMMIT")
        except BaseException:
            self._drop(conn)
            raise

    def _drop(self, conn: sqlite3.Connection) -> None:
        self._conn = None  # reopened at the next batch, whatever state this one is in
        conn.close()

    def _open(self) -> sqlite3.Connection:
        # As storage.db's engines configure theirs: WAL (the file is WAL already), commits without
        # an fsync (the durability argument is written there), checkpoints left to checkpoint_wal.
        # The busy timeout is 0 but while the thread waits for the lock (`_write_waiting`).
        conn = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=0")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        self._conn = conn
        return conn

    async def close(self) -> None:
        """Close the connection, after the write in hand if any (the thread runs one thing at a
        time). Closing twice is closing once; a write after it fails."""
        if self._closed:
            return
        self._closed = True

        def closing() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._thread, closing)
        self._thread.shutdown(wait=False)  # idle: `closing` was its last work


@dataclass
class AsyncpgWriter:
    """An asyncpg connection of its own, taken from the engine (so with the URL's options: SSL,
    server settings, …) and detached from its pool: one statement, one round trip and one commit
    per batch. A batch that meets a broken connection (the server restarted, a failover, an idle
    timeout) is written again once on a new one: its rows' keys make a second write a no-op."""

    engine: AsyncEngine
    _conn: Any = None  # asyncpg.Connection
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _closed: bool = False

    SQL = (
        f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) "
        "SELECT d, c, f, p, r FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::text[], "
        "$5::timestamptz[]) WITH ORDINALITY AS t(d, c, f, p, r, n) ORDER BY n "  # ids in batch order
        "ON CONFLICT (dedupe_key) DO NOTHING"
    )
    TIMEOUT_SECONDS = 10.0  # a connection that stopped answering fails the batch (503) instead of hanging

    async def write(self, rows: Sequence[Row]) -> None:
        columns = (
            [r.dedupe_key for r in rows],
            [r.channel for r in rows],
            [r.from_user for r in rows],
            [r.payload for r in rows],
            [_aware(r.received_at) for r in rows],
        )
        async with self._lock:  # one statement at a time on the connection
            if self._closed:
                raise RuntimeError("the journal writer is closed")
            for attempt in (1, 2):
                conn = self._conn or await self._open()
                try:
                    await conn.execute(self.SQL, *columns, timeout=self.TIMEOUT_SECONDS)
                    return
                except BaseException as exc:
                    self._conn = None
                    conn.terminate()  # its state is unknown: the next batch (or the retry) reconnects
                    if attempt == 2 or not _broken(exc):
                        raise

    async def _open(self) -> Any:
        raw = await self.engine.raw_connection()
        self._conn = raw.driver_connection
        raw.detach()  # ours until closed: the pool neither resets nor lends it
        return self._conn

    async def close(self) -> None:
        """Close the connection, after the write in hand if any. Closing twice is closing once;
        a write after it fails."""
        async with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
            if conn is None:
                return
            try:
                await conn.close(timeout=5)
            except Exception:
                conn.terminate()


def _broken(exc: BaseException) -> bool:
    """Whether `exc` may say the connection is gone rather than that the statement was refused:
    then the batch is worth one more try on a new connection. Not a timeout (the answer is late
    already) nor a cancellation."""
    import asyncpg

    if not isinstance(exc, Exception) or isinstance(exc, TimeoutError):
        return False
    if isinstance(exc, asyncpg.PostgresError):  # the server's answer: only these mean the connection
        return isinstance(exc, asyncpg.PostgresConnectionError | asyncpg.exceptions.OperatorInterventionError)
    return True  # the client's side: a closed connection, a protocol left mid-operation, the socket


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:  # as UTCDateTime refuses it: a naive time is a bug, not local time
        raise ValueError("naive datetime; use the injected clock (aware UTC)")
    return at


def journal_writer(sessions: async_sessionmaker[AsyncSession]) -> JournalWriter:
    """The writer for the journal `sessions` open (its own file on SQLite, else the database's)."""
    engine: AsyncEngine = sessions.kw["bind"]
    url = engine.url
    if url.get_backend_name() == "sqlite":
        database = sqlite_database(url.render_as_string(hide_password=False))
        if database is not None:
            return SqliteFileWriter(Path(database))
        return SessionWriter(sessions)
    if url.get_backend_name() == "postgresql" and url.get_driver_name() == "asyncpg":
        return AsyncpgWriter(engine)
    return SessionWriter(sessions)
