"""The full bot: the kernel's app with every workflow's router and the schedulers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence

from aiohttp import web

from bot.app import create_app as create_kernel_app
from bot.appkeys import CLOCK, CONFIG, PIPELINE, RENDERER
from bot.clock import Clock
from bot.config import Config
from bot.directory import directory_service
from bot.router import Router
from bot.worker import WorkerLink
from handlers import ROUTERS
from handlers.registers import track
from schedules.service import TIMERS, scheduling

__all__ = ["ROUTERS", "TIMERS", "create_app"]


def create_app(
    config: Config,
    *,
    clock: Clock | None = None,
    routers: Iterable[Router] = ROUTERS,
    run_dispatcher: bool = True,
    run_jobs: bool = True,
    worker_argv: Sequence[str] | None = None,
    link: WorkerLink | None = None,
) -> web.Application:
    """The bot as `infodesk serve` runs it; `routers` replaces the workflow list (tests).
    `worker_argv`: the front of two processes; `link`: their worker (bot/worker.py)."""
    return create_kernel_app(
        config,
        routers=routers,
        clock=clock,
        run_dispatcher=run_dispatcher,
        worker_argv=worker_argv,
        link=link,
        services=[
            register_ledger,
            scheduling(run_loop=run_dispatcher, run_jobs=run_jobs),
            *([directory_service()] if config.directory.enabled else []),
        ],
    )


async def register_ledger(app: web.Application) -> AsyncIterator[None]:
    """Every transaction that adds or changes a register's record appends to its hash chain."""
    track(app[PIPELINE].sessions, app[CONFIG], app[RENDERER], app[CLOCK])
    yield
