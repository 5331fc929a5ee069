"""Apply one inbound event: dedupe row, handler effects and outbox rows in ONE transaction.

The events come from the inbound journal (bot/journal.py), which the callback wrote before it
answered WeCom: `apply_next` takes the oldest row and deletes it in that same transaction.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Select, bindparam, delete, exists, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from bot.cards import handle_click
from bot.clock import Clock
from bot.config import Config
from bot.context import Ctx
from bot.conversation import handle_text
from bot.inbound import Inbound
from bot.logs import log, msg_id_var
from bot.org import Org
from bot.outbox import enqueue
from bot.render import Renderer
from bot.router import Registry
from storage.db import reading
from storage.models import InboundEvent, JournalEntry

logger = logging.getLogger("infodesk.pipeline")


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    FAILED = "failed"
    UNAVAILABLE = "unavailable"  # nothing could be recorded: answer 503 so that WeCom retries
    RECORDED = "recorded"  # in the journal, answered; applied after (bot/journal.py)


@dataclass(frozen=True)
class Applied:
    """A journal row taken and done with: its dedupe key, what became of it, and its channel."""

    key: str
    outcome: Outcome
    channel: str


# A journal row's payload read back into an event (by channel), or None when it holds none.
Parse = Callable[[str], Inbound | None]


@dataclass
class Pipeline:
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    config: Config
    renderer: Renderer
    registry: Registry
    # The inbound journal in its own SQLite file (bot/journal.py), or None: in the database itself.
    journal: async_sessionmaker[AsyncSession] | None = None

    def __post_init__(self) -> None:
        self.org = Org(self.config)
        # The configuration as loaded; `config` may add the people WeCom's directory lists
        # (bot/directory.py), recomputed from this one after each sync.
        self.base_config = self.config
        # What one process's appliers are applying: one member's messages apply one at a time, in
        # the order they were recorded (bot/journal.py runs several appliers on PostgreSQL).
        self._busy: set[str] = set()
        self._take = asyncio.Lock()
        # The journal in its own file: rows read ahead, and rows done with but not yet deleted.
        self._ahead: deque[Taken] = deque()
        # Rows done with, by dedupe key: an id may be given again to a new row once deleted (SQLite
        # reuses the largest), so an applier deleting by id late could take another's new row.
        self._released: set[str] = set()
        self._read_to = 0  # the journal file's rows up to this id have been read

    def ctx(self, s: AsyncSession, inbound: Inbound, event_id: int | None) -> Ctx:
        ctx = Ctx(s, self.clock, self.config, self.renderer, self.registry, inbound, event_id, self.org)
        if inbound.response_url:  # a smart-robot message: answers go back through its response_url
            ctx.robot_replies = []
            ctx.in_group = inbound.chat_id is not None
        return ctx

    async def apply_next(self, parsers: Mapping[str, Parse]) -> Applied | None:
        """Take the journal's oldest row and apply it exactly once, or None when nothing waits.

        The row is deleted in the transaction of the event's effects, so the event is applied, or
        still waits, never both. A handler error rolls everything back; the event is then recorded
        as failed (so that it is not applied again) and the member hears an apology with an error id.
        A transaction that lost a deadlock or a serialisation race is retried from the start (its
        effects were rolled back, so nothing is applied twice).
        """
        for attempt in range(1, RETRIES + 1):
            try:
                return await self._apply_next_once(parsers)
            except _Retry:
                log(logger, logging.WARNING, "transaction_retry", attempt=attempt)
        return Applied("", Outcome.UNAVAILABLE, "")

    @property
    def journal_sessions(self) -> async_sessionmaker[AsyncSession]:
        """Where the inbound journal is: its own SQLite file (`journal`), or the database itself."""
        return self.journal or self.sessions

    async def _apply_next_once(self, parsers: Mapping[str, Parse]) -> Applied | None:
        entry: Taken | None = None
        token = None
        try:
            async with self.sessions() as s, s.begin():
                async with self._take:
                    entry = await _take_next(s, self._busy) if self.journal is None else await self._peek_next()
                    if entry is None:
                        return None
                    self._busy.add(entry.from_user)
                inbound = _read(entry, parsers)
                if inbound is not None:
                    token = msg_id_var.set(inbound.msg_id or inbound.dedupe_key)
                    event = await self._record(s, inbound, entry.channel, error_id=None)
                    ctx = self.ctx(s, inbound, event.id)
                    await self._route(ctx)
                    _robot_answer(ctx)
            self._release(entry)
            if inbound is None:
                return Applied(entry.dedupe_key, Outcome.FAILED, entry.channel)
            log(logger, logging.INFO, "inbound_applied", kind=inbound.kind, from_user=inbound.from_user)
            return Applied(entry.dedupe_key, Outcome.APPLIED, entry.channel)
        except _Duplicate:
            assert entry is not None
            await self._discard(entry)
            log(logger, logging.INFO, "inbound_duplicate", key=entry.dedupe_key)
            return Applied(entry.dedupe_key, Outcome.DUPLICATE, entry.channel)
        except Exception as exc:
            if isinstance(exc, DBAPIError) and _retryable(exc):
                raise _Retry() from exc
            if entry is None:  # nothing taken: the database failed (the applier pauses)
                raise
            return Applied(entry.dedupe_key, await self._fail(entry, parsers), entry.channel)
        finally:
            if token is not None:
                msg_id_var.reset(token)
            if entry is not None:
                self._busy.discard(entry.from_user)
                if self.journal is not None and entry.dedupe_key not in self._released:
                    self._ahead.appendleft(entry)  # not done with (retried, or the database failed): next again

    async def _discard(self, entry: Taken) -> None:
        """Delete a journal row whose event was applied before (a retry recorded again)."""
        if self.journal is not None:
            self._release(entry)
            return
        async with self.sessions() as s, s.begin():
            await s.execute(delete(JournalEntry).where(JournalEntry.id == entry.id))

    async def _peek_next(self) -> Taken | None:
        """The oldest row of the journal in its own file (SQLite: one applier, applying in order).

        Rows are read PREFETCH at a time, without the file's write lock, and stay in the journal
        until their event's transaction has committed: the rows done with (`_release`) are deleted
        RELEASE_BATCH at a time, or as soon as there is nothing new to read, or at stop. A crash in
        between leaves them there: taken again after the restart, each is found to be a duplicate
        and dropped.
        """
        if not self._ahead:
            assert self.journal is not None
            if len(self._released) >= RELEASE_BATCH:
                await self._delete_released()
            rows = await self._read_after()
            if not rows and self._released:  # idle: delete what is done with, and look again
                await self._delete_released()
                rows = await self._read_after()
            self._ahead.extend(rows)
        return self._ahead.popleft() if self._ahead else None

    async def flush_journal(self) -> None:
        """Delete the rows done with since the last read (the applier stops: none is left behind to
        be found a duplicate after a restart, or applied again on a database restored from a copy)."""
        if self.journal is not None and self._released:
            await self._delete_released()

    async def _read_after(self) -> list[Taken]:
        """The journal file's rows after those read, read without its write lock (another process,
        the front of bot/worker.py, records into it)."""
        assert self.journal is not None
        async with reading(self.journal) as j:
            rows = [Taken(*row) for row in await j.execute(_READ_AFTER, {"after": self._read_to})]
        if rows:
            self._read_to = rows[-1].id
        return rows

    async def _delete_released(self) -> None:
        """Delete the rows done with. Every row up to `_read_to` is one of them or waits in
        `_ahead`; reading starts from the first row again, since SQLite may give a new row the id
        of one deleted (the table's largest)."""
        assert self.journal is not None
        async with self.journal() as j, j.begin():
            await j.execute(delete(JournalEntry).where(JournalEntry.dedupe_key.in_(sorted(self._released))))
        self._released.clear()
        self._read_to = 0

    def _release(self, entry: Taken) -> None:
        """Done with a row of the journal in its own file: its event's transaction has committed
        (with the journal in the database, that transaction deleted the row)."""
        if self.journal is not None:
            self._released.add(entry.dedupe_key)

    async def _fail(self, entry: Taken, parsers: Mapping[str, Parse]) -> Outcome:
        error_id = uuid.uuid4().hex[:8]
        logger.exception("handler_failed", extra={"fields": {"error_id": error_id, "from_user": entry.from_user}})
        return await self._apologise(entry, parsers, error_id)

    async def _record(self, s: AsyncSession, inbound: Inbound, channel: str, error_id: str | None) -> InboundEvent:
        # The transport bounds every value; the cuts below only make sure the apology for an event
        # that failed can never fail again on the same values.
        event = InboundEvent(
            dedupe_key=inbound.dedupe_key[:300],
            channel=channel[:16],
            msg_type=(inbound.event or inbound.msg_type)[:64],
            from_user=inbound.from_user[:64],
            received_at=self.clock.now(),
            error_id=error_id,
        )
        s.add(event)
        try:
            await s.flush()
        except IntegrityError:
            raise _Duplicate() from None
        return event

    async def _route(self, ctx: Ctx) -> None:
        inbound = ctx.inbound
        if ctx.person is None and inbound.kind in ("text", "card_click", *ATTACHMENT_KINDS):
            # Someone WeCom knows but the organisation does not: one reply, nothing recorded.
            ctx.reply("not_in_directory", contacts=[ctx.org.name(u) for u in ctx.org.with_role("director")])
            return
        if inbound.kind == "text":
            await handle_text(ctx, inbound.content)
        elif inbound.kind == "card_click":
            await handle_click(ctx)
        elif inbound.kind in ATTACHMENT_KINDS:
            for route in self.registry.attachments:  # in their declared order; the first taker wins
                if inbound.kind in route.kinds and await route.handler(ctx):
                    return
            ctx.reply("photo_unattached")
        # Other events (enter_agent, unknown types) are recorded, deduped and acknowledged.

    async def _apologise(self, entry: Taken, parsers: Mapping[str, Parse], error_id: str) -> Outcome:
        """Record the failed event (so WeCom's retries do not repeat it) and tell the user."""
        try:
            async with self.sessions() as s, s.begin():
                if self.journal is None:
                    taken = await s.execute(delete(JournalEntry).where(JournalEntry.id == entry.id))
                    if not taken.rowcount:  # type: ignore[attr-defined]  # another replica dealt with it
                        return Outcome.DUPLICATE
                inbound = _read(entry, parsers)
                if inbound is not None:
                    event = await self._record(s, inbound, entry.channel, error_id=error_id)
                    ctx = self.ctx(s, inbound, event.id)
                    ctx.reply("error_apology", error_id=error_id)
                    _robot_answer(ctx)
            self._release(entry)
        except _Duplicate:
            await self._discard(entry)
        except Exception:
            # Not even the failure could be recorded (the database is down): the row stays in the
            # journal and is applied again later.
            logger.exception("apology_failed", extra={"fields": {"error_id": error_id}})
            return Outcome.UNAVAILABLE
        return Outcome.FAILED


async def _take_next(s: AsyncSession, busy: set[str]) -> Taken | None:
    """Delete and return the oldest journal row of a member not being applied in this process.

    On PostgreSQL a row another replica is applying is locked by its transaction and skipped; the
    deletion commits (or rolls back, and the row is taken again) with the event's effects. Until
    then the row is still there for everyone else, so "no older row of the same member" keeps that
    member's later messages waiting: one member's messages apply in order across replicas too.
    """
    oldest = _oldest(busy)
    if s.get_bind().dialect.name == "postgresql":
        oldest = oldest.with_for_update(skip_locked=True)
    j = JournalEntry
    take = delete(j).where(j.id == oldest.scalar_subquery())
    stmt = take.returning(*TAKEN_COLUMNS)
    row = (await s.execute(stmt.execution_options(synchronize_session=False))).one_or_none()
    return None if row is None else Taken(*row)


PREFETCH = 64  # journal rows read at once from a journal in its own file
RELEASE_BATCH = 256  # rows done with, deleted together (an idle applier deletes them at once)
TAKEN_COLUMNS = (
    JournalEntry.id,
    JournalEntry.dedupe_key,
    JournalEntry.channel,
    JournalEntry.from_user,
    JournalEntry.payload,
)

# Built once: the journal is read after every few messages (see bot/outbox.py's statements).
_READ_AFTER = (
    select(*TAKEN_COLUMNS).where(JournalEntry.id > bindparam("after")).order_by(JournalEntry.id).limit(PREFETCH)
)


def _oldest(busy: set[str]) -> Select[int]:
    """The id of the journal's oldest row of a member with no earlier row waiting and not being
    applied in this process."""
    earlier = aliased(JournalEntry)
    first_of_member = ~exists().where(earlier.from_user == JournalEntry.from_user, earlier.id < JournalEntry.id)
    oldest = select(JournalEntry.id).where(first_of_member)
    if busy:
        oldest = oldest.where(JournalEntry.from_user.not_in(busy))
    return oldest.order_by(JournalEntry.id).limit(1)


@dataclass(frozen=True)
class Taken:
    """A journal row taken to apply (plain values: they outlive a rolled-back transaction)."""

    id: int
    dedupe_key: str
    channel: str
    from_user: str
    payload: str


def _read(entry: Taken, parsers: Mapping[str, Parse]) -> Inbound | None:
    """The event a journal row holds, or None (logged) for a row this version cannot read: it is
    dropped, never retried (the intake records none such)."""
    try:
        inbound = parsers[entry.channel](entry.payload)
    except Exception:
        inbound = None
    if inbound is None:
        log(logger, logging.ERROR, "journal_row_unreadable", id=entry.id, channel=entry.channel)
    return inbound


def _robot_answer(ctx: Ctx) -> None:
    """The one reply a smart-robot callback allows, through its response_url, via the outbox."""
    if not ctx.robot_replies or not ctx.inbound.response_url:
        return
    where = ctx.inbound.chat_id or ctx.user
    enqueue(
        ctx.session,
        ctx.now(),
        f"robot:{where}",
        "robot_response",
        {
            "url": ctx.inbound.response_url,
            "body": {"msgtype": "markdown", "markdown": {"content": "\n\n".join(ctx.robot_replies)}},
        },
        caused_by=ctx.event_id,
    )


ATTACHMENT_KINDS = frozenset({"image", "file", "voice", "video"})


class _Duplicate(Exception):
    pass


class _Retry(Exception):
    pass


RETRIES = 3
# PostgreSQL: serialization_failure, deadlock_detected; SQLite: the busy timeout ran out.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


def _retryable(exc: DBAPIError) -> bool:
    orig = exc.orig
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if code in RETRYABLE_SQLSTATES:
        return True
    cause = getattr(orig, "__cause__", None)
    if getattr(cause, "sqlstate", None) in RETRYABLE_SQLSTATES:
        return True
    return "database is locked" in str(orig)
