"""Fires database timers and sweeps idle approvals, each in its own transaction.

A timer is claimed by flipping `fired_at` from NULL in the transaction that runs it, so it fires
once even with several bot processes on one PostgreSQL, and a timer that came due while the bot
was down fires at the next start. A handler error rolls its transaction back; the timer stays
due and is tried again on the next tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update

from bot.inbound import Inbound
from bot.logs import log
from bot.outbox import purge_sent
from bot.pipeline import Pipeline
from schedules.jobs import Scheduler
from storage.models import Timer

logger = logging.getLogger("infodesk.schedules")


class TimerRunner:
    def __init__(
        self,
        pipeline: Pipeline,
        tick_seconds: float,
        on_commit: Callable[[], None] | None = None,
        jobs: Scheduler | None = None,
    ) -> None:
        self._p = pipeline
        self.jobs = jobs  # recurring jobs, checked on every tick too
        self._purged_at: datetime | None = None
        self._tick = tick_seconds
        self._stopping = False
        self._wake = asyncio.Event()
        self._on_commit = on_commit

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("scheduler_tick_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._tick)

    async def tick(self) -> int:
        """Fire every due timer and sweep idle approvals once; return how many acted."""
        fired = await self.fire_due()
        fired += await self.sweep()
        await self._purge()
        if self.jobs is not None:
            fired += await self.jobs.run_due()
        if fired and self._on_commit is not None:
            self._on_commit()
        return fired

    async def _purge(self) -> None:
        """Once an hour: drop sent outbox rows past their retention, so the table stays small."""
        now = self._p.clock.now()
        if self._purged_at is not None and now - self._purged_at < timedelta(hours=1):
            return
        self._purged_at = now
        removed = await purge_sent(self._p.sessions, now, self._p.config.outbox.keep_sent_days)
        if removed:
            log(logger, logging.INFO, "outbox_purged", rows=removed)

    async def fire_due(self) -> int:
        """Fire due timers through the handlers the routers registered for their kinds."""
        handlers = self._p.registry.timers
        now = self._p.clock.now()
        async with self._p.sessions() as s:
            due = list(
                (
                    await s.execute(
                        select(Timer.id, Timer.kind)
                        .where(Timer.fired_at.is_(None), Timer.due_at <= now)
                        .order_by(Timer.due_at, Timer.id)
                        .limit(200)
                    )
                ).all()
            )
        fired = 0
        for timer_id, kind in due:
            handler = handlers.get(kind)
            try:
                async with self._p.sessions() as s, s.begin():
                    claimed = await s.execute(
                        update(Timer).where(Timer.id == timer_id, Timer.fired_at.is_(None)).values(fired_at=now)
                    )
                    if getattr(claimed, "rowcount", 0) != 1:
                        continue  # another process fired it
                    timer = await s.get(Timer, timer_id)
                    assert timer is not None
                    if handler is not None:
                        ctx = self._p.ctx(s, Inbound.system(f"timer:{timer_id}", int(now.timestamp())), None)
                        await handler(ctx, timer)
                fired += 1
                log(logger, logging.INFO, "timer_fired", id=timer_id, kind=kind, known=handler is not None)
            except Exception:
                logger.exception("timer_failed", extra={"fields": {"id": timer_id, "kind": kind}})
        return fired

    async def sweep(self) -> int:
        """Run every registered per-tick handler (e.g. idle approvals), each in its own transaction."""
        acted = 0
        for handler in self._p.registry.ticks:
            now = self._p.clock.now()
            name = getattr(handler, "__qualname__", "tick")
            try:
                async with self._p.sessions() as s, s.begin():
                    ctx = self._p.ctx(s, Inbound.system(f"tick:{name}", int(now.timestamp())), None)
                    done = await handler(ctx)
            except Exception:
                logger.exception("tick_failed", extra={"fields": {"handler": name}})
                continue
            if done:
                log(logger, logging.INFO, "tick_acted", handler=name, acted=done)
            acted += done
        return acted
