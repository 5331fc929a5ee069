"""The schedulers as a background service of the kernel's app (an aiohttp cleanup context).

Database timers and per-tick sweeps run on `TimerRunner`'s tick; recurring jobs are woken by
APScheduler at their cron times and also checked on every tick (the safety net). Both find
their handlers in the registry the app was built with.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from bot.app import Service
from bot.appkeys import CONFIG, DISPATCHER, PIPELINE
from schedules.jobs import Scheduler, build_jobs
from schedules.runner import TimerRunner

TIMERS = web.AppKey("timers", TimerRunner)


def scheduling(*, run_loop: bool = True, run_jobs: bool = True) -> Service:
    """The service: `run_loop` ticks in the background (tests tick by hand), `run_jobs` adds cron jobs."""

    async def service(app: web.Application) -> AsyncIterator[None]:
        pipeline, dispatcher = app[PIPELINE], app[DISPATCHER]
        jobs = Scheduler(pipeline, build_jobs(pipeline), on_commit=dispatcher.wake)
        timers = TimerRunner(
            pipeline, app[CONFIG].scheduler.tick_seconds, on_commit=dispatcher.wake, jobs=jobs if run_jobs else None
        )
        app[TIMERS] = timers
        if run_loop and run_jobs:
            jobs.start()
        task = asyncio.create_task(timers.run(), name="timers") if run_loop else None
        yield
        timers.stop()
        jobs.shutdown()
        if task is not None:
            try:
                await asyncio.wait_for(task, timeout=app[CONFIG].outbox.request_timeout_seconds + 1)
            except TimeoutError:
                task.cancel()

    return service
