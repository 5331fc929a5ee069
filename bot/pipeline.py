"""Apply one inbound event: dedupe row, handler effects and outbox rows in ONE transaction."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cards import handle_click
from bot.clock import Clock
from bot.config import Config
from bot.context import Ctx
from bot.conversation import handle_text
from bot.inbound import Inbound
from bot.logs import log
from bot.org import Org
from bot.outbox import enqueue
from bot.render import Renderer
from bot.router import Registry
from storage.models import InboundEvent

logger = logging.getLogger("infodesk.pipeline")


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    FAILED = "failed"
    UNAVAILABLE = "unavailable"  # nothing could be recorded: answer 503 so that WeCom retries


@dataclass
class Pipeline:
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    config: Config
    renderer: Renderer
    registry: Registry

    def __post_init__(self) -> None:
        self.org = Org(self.config)
        # The configuration as loaded; `config` may add the people WeCom's directory lists
        # (bot/directory.py), recomputed from this one after each sync.
        self.base_config = self.config
        # Callbacks applied at once; the rest wait their turn (first come, first served), at most
        # ADMIT_WAIT_SECONDS. SQLite runs one transaction at a time on its one connection: there the
        # callbacks queue here, in order, rather than in the connection pool, where a newcomer can
        # take the connection just returned ahead of those already waiting (p99 went past 1 s).
        bind = self.sessions.kw.get("bind")
        sqlite = bind is not None and bind.dialect.name == "sqlite"
        self._slots = asyncio.Semaphore(1 if sqlite else MAX_IN_FLIGHT)

    def ctx(self, s: AsyncSession, inbound: Inbound, event_id: int | None) -> Ctx:
        ctx = Ctx(s, self.clock, self.config, self.renderer, self.registry, inbound, event_id, self.org)
        if inbound.response_url:  # a smart-robot message: answers go back through its response_url
            ctx.robot_replies = []
            ctx.in_group = inbound.chat_id is not None
        return ctx

    async def apply(self, inbound: Inbound, channel: str = "app") -> Outcome:
        """Record and handle an event exactly once; a handler error rolls everything back.

        A transaction that lost a deadlock or a serialisation race is retried from the start
        (its effects were rolled back, so nothing is applied twice).

        A callback that cannot start within ADMIT_WAIT_SECONDS (a burst larger than the bot can
        apply) is refused with UNAVAILABLE before anything is recorded: WeCom gives up on an answer
        after 5 s and sends the callback again, so a queue that grew without bound would answer
        late every message behind it; a 503 now makes WeCom retry when the burst has passed.
        """
        try:
            async with asyncio.timeout(ADMIT_WAIT_SECONDS):
                await self._slots.acquire()
        except TimeoutError:
            log(logger, logging.WARNING, "callback_deferred", key=inbound.dedupe_key, waited_s=ADMIT_WAIT_SECONDS)
            return Outcome.UNAVAILABLE
        try:
            return await self._apply_admitted(inbound, channel)
        finally:
            self._slots.release()

    async def _apply_admitted(self, inbound: Inbound, channel: str) -> Outcome:
        for attempt in range(1, RETRIES + 1):
            try:
                return await self._apply_once(inbound, channel)
            except _Retry:
                log(logger, logging.WARNING, "transaction_retry", attempt=attempt)
        return await self._fail(inbound, channel)

    async def _apply_once(self, inbound: Inbound, channel: str) -> Outcome:
        try:
            async with self.sessions() as s, s.begin():
                event = await self._record(s, inbound, channel, error_id=None)
                ctx = self.ctx(s, inbound, event.id)
                await self._route(ctx)
                _robot_answer(ctx)
        except _Duplicate:
            log(logger, logging.INFO, "inbound_duplicate", key=inbound.dedupe_key)
            return Outcome.DUPLICATE
        except DBAPIError as exc:
            if _retryable(exc):
                raise _Retry() from exc
            return await self._fail(inbound, channel)
        except Exception:
            return await self._fail(inbound, channel)
        log(logger, logging.INFO, "inbound_applied", kind=inbound.kind, from_user=inbound.from_user)
        return Outcome.APPLIED

    async def _fail(self, inbound: Inbound, channel: str) -> Outcome:
        error_id = uuid.uuid4().hex[:8]
        logger.exception("handler_failed", extra={"fields": {"error_id": error_id, "from_user": inbound.from_user}})
        return await self._apologise(inbound, channel, error_id)

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

    async def _apologise(self, inbound: Inbound, channel: str, error_id: str) -> Outcome:
        """Record the failed event (so WeCom's retries do not repeat it) and tell the user."""
        try:
            async with self.sessions() as s, s.begin():
                event = await self._record(s, inbound, channel, error_id=error_id)
                ctx = self.ctx(s, inbound, event.id)
                ctx.reply("error_apology", error_id=error_id)
                _robot_answer(ctx)
        except _Duplicate:
            pass
        except Exception:
            # Not even the failure could be recorded (the database is down): WeCom should retry.
            logger.exception("apology_failed", extra={"fields": {"error_id": error_id}})
            return Outcome.UNAVAILABLE
        return Outcome.FAILED


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
# How many callbacks one process applies at once, and how long one waits for its turn. With
# SQLite the transactions run one at a time anyway (one connection); with PostgreSQL a few overlap.
# The wait plus the callback's own transaction stays below WeCom's 5 s; a shorter wait refused
# too many of the retries that arrive together after a restart on a busy machine (tests/test_chaos.py).
MAX_IN_FLIGHT = 8
ADMIT_WAIT_SECONDS = 3.0
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
