"""Apply one inbound event: dedupe row, handler effects and outbox rows in ONE transaction."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.config import Config
from bot.context import Ctx
from bot.conversation import handle_text
from bot.inbound import Inbound
from bot.logs import log
from bot.render import Renderer
from bot.router import Registry
from storage.models import InboundEvent

logger = logging.getLogger("infodesk.pipeline")


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    FAILED = "failed"


@dataclass
class Pipeline:
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    config: Config
    renderer: Renderer
    registry: Registry

    def __post_init__(self) -> None:
        from handlers.org import Org

        self.org = Org(self.config)

    def ctx(self, s: AsyncSession, inbound: Inbound, event_id: int | None) -> Ctx:
        return Ctx(s, self.clock, self.config, self.renderer, self.registry, inbound, event_id, self.org)

    async def apply(self, inbound: Inbound, channel: str = "app") -> Outcome:
        """Record and handle an event exactly once; a handler error rolls everything back."""
        try:
            async with self.sessions() as s, s.begin():
                event = await self._record(s, inbound, channel, error_id=None)
                ctx = self.ctx(s, inbound, event.id)
                await self._route(ctx)
        except _Duplicate:
            log(logger, logging.INFO, "inbound_duplicate", key=inbound.dedupe_key)
            return Outcome.DUPLICATE
        except Exception:
            error_id = uuid.uuid4().hex[:8]
            logger.exception("handler_failed", extra={"fields": {"error_id": error_id,
                                                                   "from_user": inbound.from_user}})
            await self._apologise(inbound, channel, error_id)
            return Outcome.FAILED
        log(logger, logging.INFO, "inbound_applied", kind=inbound.kind, from_user=inbound.from_user)
        return Outcome.APPLIED

    async def _record(self, s: AsyncSession, inbound: Inbound, channel: str, error_id: str | None) -> InboundEvent:
        event = InboundEvent(
            dedupe_key=inbound.dedupe_key, channel=channel, msg_type=inbound.event or inbound.msg_type,
            from_user=inbound.from_user, received_at=self.clock.now(), error_id=error_id,
        )
        s.add(event)
        try:
            await s.flush()
        except IntegrityError:
            raise _Duplicate() from None
        return event

    async def _route(self, ctx: Ctx) -> None:
        inbound = ctx.inbound
        if inbound.kind == "text":
            await handle_text(ctx, inbound.content)
        elif inbound.kind == "card_click":
            from handlers.approvals import handle_click

            await handle_click(ctx)
        # Images and other events are recorded (deduped) here; photo attachments come with the
        # fault-ticket issue.

    async def _apologise(self, inbound: Inbound, channel: str, error_id: str) -> None:
        """Record the failed event (so WeCom's retries do not repeat it) and tell the user."""
        try:
            async with self.sessions() as s, s.begin():
                event = await self._record(s, inbound, channel, error_id=error_id)
                ctx = self.ctx(s, inbound, event.id)
                ctx.reply("error_apology", error_id=error_id)
        except _Duplicate:
            pass
        except Exception:
            logger.exception("apology_failed", extra={"fields": {"error_id": error_id}})
            raise


class _Duplicate(Exception):
    pass
