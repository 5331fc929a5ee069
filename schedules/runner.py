"""Fires database timers and sweeps idle approvals, each in its own transaction.

A timer is claimed by flipping `fired_at` from NULL in the transaction that runs it, so it fires
once even with several bot processes on one PostgreSQL, and a timer that came due while the bot
was down fires at the next start. A handler error rolls its transaction back; the timer stays
due and is tried again on the next tick.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select, update

from bot.inbound import Inbound
from bot.logs import log
from bot.pipeline import Pipeline
from storage.models import Timer

logger = logging.getLogger("infodesk.schedules")


def system_event(ref: str, now_ts: int) -> Inbound:
    """The 'message' a scheduled action acts on behalf of (actor 'system')."""
    return Inbound(kind="timer", msg_type="timer", from_user="system", create_time=now_ts, event=ref)


class TimerRunner:
    def __init__(self, pipeline: Pipeline, tick_seconds: float, on_commit: object = None,
                 jobs: object = None) -> None:
        self._p = pipeline
        self.jobs = jobs  # schedules.jobs.Scheduler: recurring jobs, checked on every tick too
        self._purged_at: object = None
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
            try:
                await asyncio.wait_for(self._wake.wait(), self._tick)
            except asyncio.TimeoutError:
                pass

    async def tick(self) -> int:
        """Fire every due timer and sweep idle approvals once; return how many acted."""
        fired = await self.fire_due()
        fired += await self.sweep()
        await self._purge()
        if self.jobs is not None:
            fired += await self.jobs.run_due()  # type: ignore[attr-defined]
        if fired and callable(self._on_commit):
            self._on_commit()
        return fired

    async def _purge(self) -> None:
        """Once an hour: drop sent outbox rows past their retention, so the table stays small."""
        from datetime import timedelta

        from bot.outbox import purge_sent

        now = self._p.clock.now()
        if self._purged_at is not None and now - self._purged_at < timedelta(hours=1):
            return
        self._purged_at = now
        removed = await purge_sent(self._p.sessions, now, self._p.config.outbox.keep_sent_days)
        if removed:
            log(logger, logging.INFO, "outbox_purged", rows=removed)

    async def fire_due(self) -> int:
        from handlers import TIMER_HANDLERS

        now = self._p.clock.now()
        async with self._p.sessions() as s:
            due = list((await s.execute(
                select(Timer.id, Timer.kind).where(Timer.fired_at.is_(None), Timer.due_at <= now)
                .order_by(Timer.due_at, Timer.id).limit(200)
            )).all())
        fired = 0
        for timer_id, kind in due:
            handler = TIMER_HANDLERS.get(kind)
            try:
                async with self._p.sessions() as s, s.begin():
                    claimed = await s.execute(
                        update(Timer).where(Timer.id == timer_id, Timer.fired_at.is_(None)).values(fired_at=now)
                    )
                    if claimed.rowcount != 1:
                        continue  # another process fired it
                    timer = await s.get(Timer, timer_id)
                    assert timer is not None
                    if handler is not None:
                        ctx = self._p.ctx(s, system_event(f"timer:{timer_id}", int(now.timestamp())), None)
                        await handler(ctx, timer)
                fired += 1
                log(logger, logging.INFO, "timer_fired", id=timer_id, kind=kind, known=handler is not None)
            except Exception:
                logger.exception("timer_failed", extra={"fields": {"id": timer_id, "kind": kind}})
        return fired

    async def sweep(self) -> int:
        from handlers.approvals import sweep_idle

        now = self._p.clock.now()
        async with self._p.sessions() as s, s.begin():
            ctx = self._p.ctx(s, system_event("sweep", int(now.timestamp())), None)
            acted = await sweep_idle(ctx)
        if acted:
            log(logger, logging.INFO, "approvals_swept", acted=acted)
        return acted
