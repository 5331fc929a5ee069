"""Recurring jobs (duties, audio-class pushes, publishing cadence), each occurrence claimed once.

APScheduler's `AsyncIOScheduler` wakes the bot at every cron time; what actually fires is decided
here from the jobs' triggers and the injected clock: every occurrence in the grace window that
has no `job_runs` row is claimed by inserting that row in the same transaction as its messages.
Two processes on one PostgreSQL both wake up; one insert wins, the other rolls back. After a
restart, an occurrence missed while down is sent if still within the grace window (configurable;
when several are due only the latest is sent), otherwise recorded and logged as missed. An
occurrence whose transaction fails (a database error, a handler's bug) commits nothing and is tried
again on the next tick, up to MAX_TRIES times (then recorded as failed) or until it is out of the
grace window.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from bot.inbound import Inbound
from bot.logs import log
from bot.pipeline import Pipeline
from bot.router import Job
from storage.models import JobRun

logger = logging.getLogger("infodesk.jobs")


class Claim(enum.Enum):
    DONE = "done"  # this process fired the occurrence
    TAKEN = "taken"  # already claimed (here or by another process), or recorded as missed
    FAILED = "failed"  # the job's transaction failed: nothing committed, tried again next tick


MAX_TRIES = 3  # an occurrence whose transaction failed this often (a tick apart) is recorded as failed
MAX_CATCH_UP = 500  # occurrences looked at per job and run (a long outage is summarised)


def build_jobs(pipeline: Pipeline) -> list[Job]:
    """Every recurring job the configuration asks for, from the routers that registered them."""
    return pipeline.registry.jobs(pipeline.config)


def occurrences(trigger: CronTrigger, after: datetime, until: datetime) -> list[datetime]:
    """Fire times t with after < t <= until (at most MAX_CATCH_UP, the latest ones).

    `after` is usually the previous check, a fraction of a second before a fire time as often as
    not: the search starts just past it (not a whole second later, which skipped a 19:05 push when
    the previous tick ran at 19:04:59.5).
    """
    out: list[datetime] = []
    t = trigger.get_next_fire_time(None, after + timedelta(microseconds=1))
    while t is not None and t <= until:
        out.append(t)
        t = trigger.get_next_fire_time(t, t + timedelta(microseconds=1))
    return out[-MAX_CATCH_UP:]


class Scheduler:
    """Runs due occurrences; `run_due` is safe to call any time, from any number of processes."""

    def __init__(self, pipeline: Pipeline, jobs: list[Job], on_commit: Callable[[], None] | None = None) -> None:
        self._p = pipeline
        self.jobs = jobs
        self._grace = timedelta(minutes=pipeline.config.schedules.grace_minutes)
        self._checked: dict[str, datetime] = {}
        self._failures: dict[str, tuple[datetime, int]] = {}  # job → its occurrence failing, tries in a row
        self._on_commit = on_commit
        self._aps: AsyncIOScheduler | None = None

    async def _last_run(self, job_id: str) -> datetime | None:
        async with self._p.sessions() as s:
            value = (await s.execute(select(func.max(JobRun.scheduled_at)).where(JobRun.job_id == job_id))).scalar()
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    async def run_due(self) -> int:
        """Fire every unclaimed occurrence up to now; return how many this process fired."""
        now = self._p.clock.now()
        fired = 0
        for job in self.jobs:
            since = self._checked.get(job.id)
            if since is None:
                since = await self._last_run(job.id) or (now - self._grace)
            due = occurrences(job.trigger, since, now)
            late = [w for w in due if w < now - self._grace]
            fresh = [w for w in due if w >= now - self._grace]
            claimed: Claim = Claim.TAKEN
            if late and not fresh:
                # Too late to be useful: one row marks the latest as missed (the next run starts
                # after it), one log line says how many there were.
                claimed = await self._claim(job, late[-1], "missed", count=len(late))
            elif fresh:
                claimed = await self._claim(job, fresh[-1], "done", count=len(due))
                if claimed is Claim.DONE:
                    fired += 1  # several due at once (after a restart): send the latest only
                elif claimed is Claim.FAILED:
                    failed_at, tries = self._failures.get(job.id, (fresh[-1], 0))
                    tries = tries + 1 if failed_at == fresh[-1] else 1
                    self._failures[job.id] = (fresh[-1], tries)
                    if tries >= MAX_TRIES:  # a bug, not a passing fault: recorded as failed, not tried again
                        claimed = await self._claim(job, fresh[-1], "failed", count=tries)
            # FAILED: nothing was committed (no run row, no message); the next tick looks from the
            # same point and tries the occurrence again, until MAX_TRIES or until it falls out of the
            # grace window and is recorded as missed.
            if claimed is not Claim.FAILED:
                self._checked[job.id] = now
                self._failures.pop(job.id, None)
        if fired and self._on_commit is not None:
            self._on_commit()
        return fired

    async def _claim(self, job: Job, when: datetime, status: str, count: int = 1) -> Claim:
        now = self._p.clock.now()
        try:
            async with self._p.sessions() as s, s.begin():
                s.add(JobRun(job_id=job.id, scheduled_at=when, status=status, ran_at=now))
                try:
                    await s.flush()
                except IntegrityError:
                    raise _Taken() from None
                if status == "done":
                    ctx = self._p.ctx(s, Inbound.system(f"job:{job.id}", int(now.timestamp())), None)
                    await job.action(ctx, when)
        except _Taken:
            return Claim.TAKEN  # another process (or an earlier run of this one) has it
        except Exception:
            logger.exception(
                "job_failed",
                extra={"fields": {"job": job.id, "scheduled_at": when.isoformat(), "retry": "next tick"}},
            )
            return Claim.FAILED
        level = {"done": logging.INFO, "missed": logging.WARNING}.get(status, logging.ERROR)
        log(
            logger,
            level,
            "job_" + {"done": "fired", "missed": "missed"}.get(status, "gave_up"),
            job=job.id,
            scheduled_at=when.isoformat(),
            late_s=round((now - when).total_seconds()),
            due_occurrences=count,
        )
        return Claim.DONE if status == "done" else Claim.TAKEN

    def start(self) -> None:
        """Wake at every job's cron time (APScheduler); the timer tick is the safety net."""
        aps = AsyncIOScheduler(timezone=ZoneInfo(self._p.config.scheduler.timezone))
        for job in self.jobs:
            aps.add_job(
                self.run_due,
                trigger=job.trigger,
                id=job.id,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=int(self._grace.total_seconds()),
            )
        aps.start()
        self._aps = aps

    def shutdown(self) -> None:
        if self._aps is not None:
            self._aps.shutdown(wait=False)
            self._aps = None


class _Taken(Exception):
    pass


def describe(jobs: list[Job], now: datetime) -> list[dict[str, Any]]:
    """The next fire time of each job (for logs and the health check)."""
    return [{"job": j.id, "next": (j.trigger.get_next_fire_time(None, now) or now).isoformat()} for j in jobs]
