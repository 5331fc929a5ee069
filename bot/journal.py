"""The inbound journal: a callback is answered once its message is durably recorded; the applier
then applies the journal in order, each message in the one transaction of its effects.

Why: applying a message (its dedupe row, the workflow's records, the replies in the outbox) costs
milliseconds of CPU through the ORM, and WeCom waits for the answer. Recording costs one row, and
the rows of concurrent callbacks are written together (group commit: one transaction, one commit,
for every callback that arrived while the previous batch was being written), each callback
answered only after the commit that holds its row. A member sees no difference (the reply follows
within milliseconds when the bot is not overloaded); WeCom gets its answer at once, and a burst
larger than the bot can apply waits in the journal, durably, instead of being refused.

Exactly once: the journal's unique dedupe key makes a retry that arrives while the message waits a
no-op; the applier deletes the row in the transaction that applies it, and the applied message's
row in `inbound_events` makes a retry that arrives later a duplicate. A process killed at any point
leaves each message either in the journal (applied after the restart) or applied, never both.

`server.answer_wait_seconds` makes the answer wait for the apply as well (up to that long, then it
answers anyway: the message is recorded); the tests run that way so that they can read the effects
as soon as the answer comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mmap
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.inbound import Inbound
from bot.logs import log
from bot.pipeline import Applied, Outcome, Pipeline
from storage.db import reading
from storage.journal_writer import JournalWriter, Row
from storage.models import Base, JournalEntry

logger = logging.getLogger("infodesk.journal")

# Which parser reads a journal row's payload, by channel (app: the decrypted XML; robot: JSON).
Parsers = Mapping[str, Callable[[str], Inbound | None]]

BATCH = 500  # rows written in one group commit at most
POLL_SECONDS = 1.0  # how often an idle applier looks for rows another replica recorded
FAILURE_PAUSE_SECONDS = 1.0  # after the database refused a batch or an apply
# The applier gives way to callbacks being received (their answers wait on the same event loop),
# but never for longer than this before each message: under a constant stream it still applies.
GIVE_WAY_SECONDS = 0.02
QUIET_SECONDS = 0.002  # in two processes, the front is idle when its count stays 0 this long

# The bytes the front and its worker process share (bot/worker.py).
COUNT = 0  # callbacks the front has in hand (at most 255 said)
ROWS_WANTED = 1  # the worker's applier is about to look for rows: wake it when one is recorded
IDLE_WANTED = 2  # the worker gives way: tell it when the front has nothing in hand
ARRIVALS = 3  # callbacks the front has taken in, modulo 256
SHARED_BYTES = 4


@dataclass
class Receiving:
    """How many callbacks are being received right now (counted by the app's middleware).

    In two processes (bot/worker.py) the front publishes its count in shared memory (`shared`), and
    the worker's give_way reads it there (`remote`): its applies and deliveries give way to the
    front's answers as they do in one process, instead of taking a core from them in a burst.

    Neither side polls and neither sends a message the other did not ask for: a worker that gives
    way raises IDLE_WANTED and waits; the front, when its count falls to 0 and the flag is up,
    lowers it and calls `on_idle` (a line over the link, which calls `front_idle` in the worker);
    the worker goes on once the count has stayed 0 for QUIET_SECONDS (the gaps between the callbacks
    of a burst are shorter: it would otherwise start an apply in each, and take a core from them).
    A worker about to look for rows raises ROWS_WANTED (`expect_rows`); the front wakes it only
    then (`rows_wanted`), so a burst of callbacks costs a wake per look, not one per callback.
    """

    count: int = 0
    shared: mmap.mmap | None = None
    shared_fd: int | None = None  # the front's, passed on to each worker it starts
    remote: mmap.mmap | None = None
    on_idle: Callable[[], None] | None = None  # the front's: tell the worker
    _idle: asyncio.Event = field(default_factory=asyncio.Event)
    _front_idle: asyncio.Event = field(default_factory=asyncio.Event)  # the worker's: the front said so

    def __post_init__(self) -> None:
        self._idle.set()

    def __enter__(self) -> None:
        self.count += 1
        self._idle.clear()
        if self.shared is not None:
            self.shared[COUNT] = min(self.count, 255)
            self.shared[ARRIVALS] = (self.shared[ARRIVALS] + 1) & 0xFF

    def __exit__(self, *exc: object) -> None:
        self.count -= 1
        if self.count == 0:
            self._idle.set()
        shared = self.shared
        if shared is not None:
            shared[COUNT] = min(self.count, 255)
            if self.count == 0 and shared[IDLE_WANTED]:
                shared[IDLE_WANTED] = 0
                if self.on_idle is not None:
                    self.on_idle()

    async def give_way(self, at_most: float) -> None:
        """Return when no callback is being received, or after `at_most` seconds."""
        remote = self.remote
        if remote is not None:  # the front's count; it says when it falls to 0
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(at_most):
                    # Once it has waited, idle is a count that stays 0 with nothing new taken in for
                    # a moment, not a gap in a burst. A count of 0 when it looks is idle at once: a
                    # trickle of callbacks is not waited for.
                    arrivals: int | None = None
                    while remote[COUNT] or (arrivals is not None and remote[ARRIVALS] != arrivals):
                        if remote[COUNT]:
                            remote[IDLE_WANTED] = 1
                            self._front_idle.clear()
                            if remote[COUNT]:  # else it fell to 0 before the flag was up: nobody says so
                                await self._front_idle.wait()
                        arrivals = remote[ARRIVALS]
                        await asyncio.sleep(QUIET_SECONDS)
            return
        if self.count:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(at_most):
                    await self._idle.wait()

    def front_idle(self) -> None:
        """The worker's side: the front said it has nothing in hand."""
        self._front_idle.set()

    def expect_rows(self) -> None:
        """The worker's side: about to look for rows, wake me for any recorded after the look."""
        if self.remote is not None:
            self.remote[ROWS_WANTED] = 1

    def rows_wanted(self) -> bool:
        """The front's side: whether to wake the worker for a row just recorded (lowers the flag).
        Without shared memory (a test's worker, or none), always."""
        shared = self.shared
        if shared is None:
            return True
        if not shared[ROWS_WANTED]:
            return False
        shared[ROWS_WANTED] = 0
        return True


def shared_count(fd: int | None = None) -> tuple[int, mmap.mmap]:
    """The bytes two processes share: new ones (their fd, to pass on), or those at `fd`."""
    if fd is None:
        fd = os.memfd_create("infodesk-receiving")
        os.ftruncate(fd, SHARED_BYTES)
    return fd, mmap.mmap(fd, SHARED_BYTES)


@dataclass
class Intake:
    """Group commit of journal rows: `record` returns once the row (or the same key's) is committed.

    The writer (storage/journal_writer.py) does the INSERT and the commit, and little else: on SQLite
    in a thread of its own, on PostgreSQL as one statement."""

    writer: JournalWriter
    clock: Clock
    _queue: list[tuple[Row, asyncio.Future[None]]] = field(default_factory=list)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _stopping: bool = False

    async def record(self, inbound: Inbound, channel: str, payload: str) -> None:
        """Durably record the message (raises what the database raised when it could not)."""
        row = Row(inbound.dedupe_key[:300], channel, inbound.from_user[:64], payload, self.clock.now())
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((row, done))
        self._wake.set()
        await done

    async def run(self) -> None:
        """Write whatever is queued, batch after batch, until stopped with nothing queued."""
        while True:
            if not self._queue:
                if self._stopping:
                    return  # the writer is its owner's to close (bot/app.py), after this returns
                self._wake.clear()
                await self._wake.wait()
                continue
            batch, self._queue = self._queue[:BATCH], self._queue[BATCH:]
            try:
                await self.writer.write([row for row, _ in batch])
            except Exception as exc:
                log(logger, logging.ERROR, "journal_write_failed", rows=len(batch), error=type(exc).__name__)
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for _, done in batch:
                if not done.done():  # the request may have gone (the client hung up): its row stays
                    done.set_result(None)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()


@dataclass
class Waiters:
    """Callbacks waiting for their message's apply (`server.answer_wait_seconds`), by dedupe key."""

    _by_key: dict[str, list[asyncio.Future[Outcome]]] = field(default_factory=dict)

    def expect(self, key: str) -> asyncio.Future[Outcome]:
        """A future resolved with the outcome when the message `key` is applied."""
        waiter: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._by_key.setdefault(key[:300], []).append(waiter)
        return waiter

    def forget(self, key: str, waiter: asyncio.Future[Outcome]) -> None:
        waiters = self._by_key.get(key[:300], [])
        if waiter in waiters:
            waiters.remove(waiter)
        if not waiters:
            self._by_key.pop(key[:300], None)

    def resolve(self, key: str, outcome: Outcome) -> None:
        for waiter in self._by_key.pop(key, []):
            if not waiter.done():
                waiter.set_result(outcome)


class Applying(Protocol):
    """What the journal needs of whatever applies it: the Applier here, or the worker process's
    (bot/worker.RemoteApplier); either resolves the journal's Waiters as it hears of an apply."""

    def wake(self) -> None: ...

    def stop(self) -> None: ...

    async def run(self) -> None: ...


@dataclass
class Applier:
    """Applies the journal, oldest first; `workers` at once (one member's messages one at a time)."""

    pipeline: Pipeline
    parsers: Parsers
    on_applied: Callable[[Applied], None]  # after each row taken (not when the database failed)
    receiving: Receiving
    workers: int = 1
    waiters: Waiters = field(default_factory=Waiters)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _stopping: bool = False

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        await asyncio.gather(*(self._work() for _ in range(self.workers)))
        try:
            await self.pipeline.flush_journal()
        except Exception as exc:  # left for the next start, which finds them duplicates
            log(logger, logging.WARNING, "journal_flush_failed", error=type(exc).__name__)

    async def _work(self) -> None:
        while not self._stopping:
            await self.receiving.give_way(GIVE_WAY_SECONDS)
            self.receiving.expect_rows()
            self._wake.clear()  # before looking: a row recorded while we look wakes the wait below
            try:
                applied = await self.pipeline.apply_next(self.parsers)
            except Exception:
                logger.exception("journal_apply_failed")
                applied = None
                await asyncio.sleep(FAILURE_PAUSE_SECONDS)
            if applied is None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(POLL_SECONDS):
                        await self._wake.wait()
                continue
            if applied.outcome is Outcome.UNAVAILABLE:  # nothing applied: the database is failing
                await asyncio.sleep(FAILURE_PAUSE_SECONDS)
                continue
            self.on_applied(applied)
            self.waiters.resolve(applied.key, applied.outcome)
            await asyncio.sleep(0)  # let the callbacks that arrived meanwhile be recorded first


@dataclass
class Journal:
    """The callbacks' way in: record, answer, apply."""

    intake: Intake
    applier: Applying
    answer_wait_seconds: float
    waiters: Waiters  # the applier's: it resolves them

    async def submit(self, inbound: Inbound, channel: str, payload: str) -> Outcome:
        """RECORDED (or, when the answer waits for the apply, the apply's outcome), or UNAVAILABLE
        when the message could not be recorded (answer 503: WeCom sends it again)."""
        waiter = self.waiters.expect(inbound.dedupe_key) if self.answer_wait_seconds > 0 else None
        try:
            await self.intake.record(inbound, channel, payload)
        except Exception:
            if waiter is not None:
                self.waiters.forget(inbound.dedupe_key, waiter)
            return Outcome.UNAVAILABLE
        self.applier.wake()
        if waiter is None:
            return Outcome.RECORDED
        try:
            async with asyncio.timeout(self.answer_wait_seconds):
                return await waiter
        except TimeoutError:
            self.waiters.forget(inbound.dedupe_key, waiter)
            return Outcome.RECORDED

    async def run(self) -> None:
        await asyncio.gather(self.intake.run(), self.applier.run())

    def stop(self) -> None:
        self.intake.stop()
        self.applier.stop()


async def prepare_journal(journal: async_sessionmaker[AsyncSession], sessions: async_sessionmaker[AsyncSession]) -> int:
    """Make the journal's own file ready, and move into it what the database's own journal still
    holds (left by a version that kept it there); return how many rows moved. A crash between the
    two commits leaves rows in both: the next start moves them again, and the unique dedupe key
    keeps one of each."""
    async with journal() as j, j.begin():
        table = Base.metadata.tables[JournalEntry.__tablename__]
        await j.run_sync(lambda sync: table.create(sync.connection(), checkfirst=True))
    columns = (JournalEntry.dedupe_key, JournalEntry.channel, JournalEntry.from_user, JournalEntry.payload)
    async with sessions() as s, s.begin():
        left = [
            dict(r._mapping)
            for r in await s.execute(select(*columns, JournalEntry.received_at).order_by(JournalEntry.id))
        ]
        if left:
            async with journal() as j, j.begin():
                insert = sqlite.insert(JournalEntry).on_conflict_do_nothing(index_elements=["dedupe_key"])
                await j.execute(insert, left)
            await s.execute(delete(JournalEntry))
            log(logger, logging.INFO, "journal_moved", rows=len(left))
    return len(left)


async def journal_health(journal: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    """Messages recorded and answered but not yet applied (`journal`: Pipeline.journal_sessions)."""
    async with reading(journal) as s:
        pending = (await s.execute(select(func.count()).select_from(JournalEntry))).scalar_one()
    return {"pending": int(pending)}
