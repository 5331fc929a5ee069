"""The kernel's aiohttp application: callback transport, health check, database and outbox.

`create_app` knows nothing of any workflow or scheduler: the composition root
(`infodesk.app`) passes the routers to include and the background services to run (the
schedulers), so `bot/` never imports `handlers/` or `schedules/`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web

from bot.appkeys import (
    API,
    CLOCK,
    CONFIG,
    CRYPTO,
    DISPATCHER,
    ENGINE,
    JOURNAL,
    PIPELINE,
    REGISTRY,
    RENDERER,
    ROBOT_CRYPTO,
    WORKER,
)
from bot.clock import Clock, SystemClock
from bot.config import Config, ConfigError, Secrets
from bot.conversation import kernel
from bot.crypto import WeComCrypto
from bot.inbound import BadXML, parse_inbound, parse_xml
from bot.journal import (
    GIVE_WAY_SECONDS,
    Applier,
    Applying,
    Intake,
    Journal,
    Receiving,
    Waiters,
    journal_health,
    prepare_journal,
    shared_count,
)
from bot.logs import log, msg_id_var, quiet_protocol_errors
from bot.metrics import METRICS, Metrics, note_outcome, overdue_timers
from bot.org import Org, required_chain_problems
from bot.outbox import Dispatcher, outbox_health
from bot.pauses import DirectorNotices, Pauses, pause_health
from bot.pipeline import Applied, Outcome, Pipeline
from bot.render import Renderer
from bot.robot import parse_robot, robot_routes
from bot.router import Registry, Router
from bot.transport import Rejected, echo, open_envelope, reject, signed_body
from bot.wecom_api import WeComAPI
from bot.worker import RemoteApplier, WorkerLink, stop_seconds
from storage.db import checkpoint_wal, journal_url, make_engine, make_sessionmaker, migrate, ping, reading
from storage.journal_writer import journal_writer

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# A background service runs beside the server (after the database and the outbox are up) and
# stops before them: an aiohttp cleanup context.
Service = Callable[[web.Application], AsyncIterator[None]]

logger = logging.getLogger("infodesk.app")


def check_registry(config: Config, registry: Registry) -> None:
    """The chains the included workflows submit to must be configured (ConfigError otherwise)."""
    problems = required_chain_problems(config, registry.required_chains)
    if problems:
        raise ConfigError(problems)


def create_app(
    config: Config,
    *,
    routers: Iterable[Router],
    clock: Clock | None = None,
    services: Sequence[Service] = (),
    run_dispatcher: bool = True,
    worker_argv: Sequence[str] | None = None,
    link: WorkerLink | None = None,
) -> web.Application:
    """Build the bot's web app; database, HTTP client, dispatcher and services live in cleanup_ctx.

    By default one process does everything. With `worker_argv` the app is the front (bot/worker.py):
    it answers and records callbacks and runs the worker (that command line) for the rest. With
    `link` the app is that worker: the journal's applier, the dispatcher and the services, told of
    recorded callbacks over the link."""
    front = worker_argv is not None
    registry = Registry([kernel, *routers])  # the kernel's own card actions (free-text offers) first
    check_registry(config, registry)
    quiet_protocol_errors()
    metrics = None
    if config.server.metrics:
        paths = {config.server.callback_path: "app"}
        if config.robot is not None:
            paths[config.server.robot_path] = "robot"
        metrics = Metrics(paths, config.server.metrics_allow)
    # The front tells its worker process how many callbacks it has in hand (they give way to them).
    if front:
        shared_fd, shared = shared_count()
        receiving = Receiving(shared=shared, shared_fd=shared_fd)
    else:
        receiving = Receiving(remote=link.receiving if link is not None else None)
        if link is not None:
            link.idle = receiving.front_idle

    def counted(channel: str, outcome: Outcome) -> None:
        if metrics is not None:
            metrics.applied(channel, outcome)

    @web.middleware
    async def count_receiving(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method != "POST":
            return await handler(request)
        with receiving:  # the journal's applier gives way meanwhile
            return await handler(request)

    app = web.Application(
        client_max_size=config.server.max_body_bytes,
        middlewares=[count_receiving, *([metrics.middleware] if metrics is not None else [])],
    )
    secrets = Secrets.of(config.wecom)
    app[CONFIG] = config
    app[CLOCK] = clock or SystemClock()
    app[CRYPTO] = WeComCrypto(secrets.token, secrets.aes_key, config.wecom.corp_id)
    app[REGISTRY] = registry
    app[RENDERER] = Renderer(registry.template_dirs)

    async def database(app: web.Application) -> AsyncIterator[None]:
        engine = make_engine(config.database.url, background_checkpoints=True)
        await migrate(engine)
        app[ENGINE] = engine
        sessions = make_sessionmaker(engine)
        # A SQLite file's inbound journal is a file of its own (bot/journal.py): recording a callback
        # never waits for the connection an apply holds.
        inbound_url = journal_url(config.database.url)
        inbound = make_engine(inbound_url, background_checkpoints=True) if inbound_url else None
        journal = make_sessionmaker(inbound) if inbound is not None else None
        if journal is not None:
            await prepare_journal(journal, sessions)
        app[PIPELINE] = Pipeline(sessions, app[CLOCK], config, app[RENDERER], app[REGISTRY], journal)
        stop = asyncio.Event()
        checkpoints = [
            asyncio.create_task(checkpoint_wal(url, stop), name="wal-checkpoints")
            for url in (config.database.url, inbound_url)
            if url is not None
        ]
        yield
        stop.set()
        await asyncio.gather(*checkpoints)
        if inbound is not None:
            await inbound.dispose()
        await engine.dispose()

    async def outbound(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            api = WeComAPI.of(session, config, app[CLOCK])
            app[API] = api
            webhook_keys = {g.chat_id: g.webhook_key.get_secret_value() for g in config.groups if g.webhook_key}
            dispatcher = Dispatcher(
                app[PIPELINE].sessions,
                api,
                app[CLOCK],
                config.outbox,
                webhook_keys,
                delivery_pauses(app),
                give_way=lambda: receiving.give_way(GIVE_WAY_SECONDS),
            )
            app[DISPATCHER] = dispatcher
            task = asyncio.create_task(dispatcher.run(), name="outbox-dispatcher") if run_dispatcher else None
            yield
            dispatcher.stop()
            if task is not None:
                try:
                    await asyncio.wait_for(task, timeout=config.outbox.request_timeout_seconds + 1)
                except TimeoutError:
                    task.cancel()

    async def journal(app: web.Application) -> AsyncIterator[None]:
        pipeline = app[PIPELINE]
        writer = journal_writer(pipeline.journal_sessions)
        intake = Intake(writer, app[CLOCK])
        waiters = Waiters()
        applier: Applying
        if worker_argv is not None:
            worker_stop = stop_seconds(config.server.shutdown_timeout_seconds, config.outbox.request_timeout_seconds)
            app[WORKER] = remote = RemoteApplier(worker_argv, counted, worker_stop, receiving, waiters=waiters)
            applier = remote
        else:
            applier = local_applier(app, waiters)
        app[JOURNAL] = j = Journal(intake, applier, config.server.answer_wait_seconds, waiters)
        task = asyncio.create_task(j.run(), name="inbound-journal")
        yield
        j.stop()  # what is recorded and not yet applied stays in the journal for the next start
        stopping = config.server.shutdown_timeout_seconds + (app[WORKER].stop_seconds if front else 0)
        try:
            await asyncio.wait_for(task, timeout=stopping)
        except TimeoutError:
            task.cancel()
        try:  # after the intake's last batch, or its cancellation at the timeout
            await writer.close()
        except Exception as exc:
            log(logger, logging.WARNING, "journal_writer_close_failed", error=type(exc).__name__)

    def local_applier(app: web.Application, waiters: Waiters) -> Applier:
        pipeline = app[PIPELINE]
        # SQLite has one writer (one connection): one applier. PostgreSQL applies a few at once.
        workers = 1 if app[ENGINE].dialect.name == "sqlite" else APPLIERS
        # A journal in its own file is read ahead by one applier, in order (Pipeline._peek_next).
        assert pipeline.journal is None or workers == 1
        dispatcher = app[DISPATCHER]

        def applied(done: Applied) -> None:
            if done.outcome is not Outcome.DUPLICATE:
                dispatcher.wake()  # its replies are in the outbox
            counted(done.channel, done.outcome)
            if link is not None:
                link.applied(done)

        return Applier(pipeline, PARSERS, applied, receiving, workers, waiters)

    # The front writes nothing but the journal: the worker delivers and runs the services.
    app.cleanup_ctx.extend([database, journal] if front else [database, outbound, journal, *services])
    app.router.add_get(config.server.callback_path, verify_url)
    app.router.add_post(config.server.callback_path, receive_callback)
    app.router.add_get("/healthz", healthz)
    if metrics is not None:  # off by default: without the key, /metrics is a 404
        app[METRICS] = metrics
        app.router.add_get("/metrics", metrics.scrape)
    if config.robot is not None:
        robot = Secrets.of(config.robot)
        # Smart robots encrypt with an empty receive id (doc 101033).
        app[ROBOT_CRYPTO] = WeComCrypto(robot.token, robot.aes_key, "")
        robot_routes(app, config.server.robot_path, ROBOT_CRYPTO)
    return app


# How a journal row's payload is read back, by channel: the decrypted XML, or a robot's JSON.
PARSERS = {"app": parse_inbound, "robot": parse_robot}
APPLIERS = 2  # journal appliers per process on PostgreSQL


def delivery_pauses(app: web.Application) -> Pauses:
    """Configuration errors pause delivery; the director hears when a cause appears and clears."""
    config = app[CONFIG]
    notices = DirectorNotices(
        app[RENDERER],
        Org(config).with_role("director"),
        {p.userid: p.name for p in config.people},
        ZoneInfo(config.scheduler.timezone),
    )
    return Pauses(members=[p.userid for p in config.people], notices=notices)


async def verify_url(request: web.Request) -> web.Response:
    """GET callback: the admin console's URL check."""
    return await echo(request, request.app[CRYPTO])


async def receive_callback(request: web.Request) -> web.Response:
    """POST callback: verify, decrypt, record in the journal, then 200 (applied after, bot/journal.py)."""
    try:
        signature, timestamp, nonce, body = await signed_body(request)
        try:
            envelope = parse_xml(body)
        except BadXML as exc:
            raise Rejected(400, f"bad_envelope:{exc}") from None
        encrypted = envelope.get("Encrypt")
        if not isinstance(encrypted, str) or not encrypted:
            raise Rejected(400, "no_encrypt")
        crypto = request.app[CRYPTO]
        plain = open_envelope(crypto, signature, timestamp, nonce, encrypted)
        to_user = envelope.get("ToUserName")
        if isinstance(to_user, str) and to_user != crypto.receive_id:
            raise Rejected(400, "wrong_corp")
        try:
            inbound = parse_inbound(plain)
        except BadXML as exc:
            raise Rejected(400, f"bad_message:{exc}") from None
    except Rejected as exc:
        return reject(request, exc)
    token = msg_id_var.set(inbound.msg_id or inbound.dedupe_key)
    try:
        outcome = await request.app[JOURNAL].submit(inbound, "app", plain)
    finally:
        msg_id_var.reset(token)
    note_outcome(outcome)
    if outcome is Outcome.UNAVAILABLE:
        return web.Response(status=503, text="try_later")
    # An empty 200 acknowledges without a passive reply (doc 90930); answers go via the outbox.
    return web.Response(status=200, text="")


async def healthz(request: web.Request) -> web.Response:
    """Database reachability, the outbox backlog and the delivery pauses, as JSON.

    503 only when the database is unreachable; a delivery pause (a configuration error in WeCom's
    console) makes the status "degraded" with 200: the bot still takes callbacks and queues replies.
    """
    engine = request.app[ENGINE]
    db_ok = await ping(engine)
    body: dict[str, object] = {"database": "ok" if db_ok else "unreachable"}
    paused = False
    if db_ok:
        now = request.app[CLOCK].now()
        pipeline = request.app[PIPELINE]
        # The journal first: a message applied after this read has its replies in the outbox by
        # the next (its row goes after its transaction commits), so "nothing pending in either" is
        # never read between the two.
        body["inbound"] = await journal_health(pipeline.journal_sessions)
        async with reading(pipeline.sessions) as s:
            body["outbox"] = await outbox_health(s, now)
            body["delivery_pauses"] = pauses = await pause_health(s)
            paused = bool(pauses)
            # Timers that should have fired minutes ago mean the scheduler is stuck or failing.
            body["overdue_timers"] = await overdue_timers(s, now)
    working = True
    if WORKER in request.app:  # the worker process applies, delivers and runs the schedules
        state = request.app[WORKER].state
        body["worker"] = state.health()
        working = state.state == "running"
    body["status"] = "ok" if db_ok and not paused and working else "degraded"
    return web.json_response(body, status=200 if db_ok else 503)
