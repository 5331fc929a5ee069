"""aiohttp application factory: callback transport, health check, dispatcher lifecycle."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from datetime import timedelta

import aiohttp
from aiohttp import web
from sqlalchemy import func, select

from bot.clock import Clock, SystemClock
from bot.config import Config, Secrets
from bot.crypto import CryptoError, WeComCrypto
from bot.inbound import BadXML, parse_inbound, parse_xml
from bot.logs import log, msg_id_var
from bot.outbox import Dispatcher, outbox_health
from bot.pipeline import Outcome, Pipeline
from bot.render import Renderer
from bot.router import Registry, Router
from bot.wecom_api import WeComAPI
from schedules.jobs import Scheduler, build_jobs
from schedules.runner import TimerRunner
from storage.db import make_engine, make_sessionmaker, migrate, ping
from storage.models import Timer

logger = logging.getLogger("infodesk.http")

CONFIG = web.AppKey("config", Config)
CLOCK = web.AppKey("clock", object)
CRYPTO = web.AppKey("crypto", WeComCrypto)
PIPELINE = web.AppKey("pipeline", Pipeline)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
API = web.AppKey("api", WeComAPI)
ENGINE = web.AppKey("engine", object)
REGISTRY = web.AppKey("registry", Registry)
TIMERS = web.AppKey("timers", object)
ROBOT_CRYPTO = web.AppKey("robot_crypto", WeComCrypto)
RENDERER = web.AppKey("renderer", Renderer)


class Rejected(Exception):
    """A request refused before it touched the database; `status` and `reason` for the log."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def create_app(
    config: Config,
    *,
    clock: Clock | None = None,
    routers: Iterable[Router] | None = None,
    run_dispatcher: bool = True,
    run_jobs: bool = True,
) -> web.Application:
    """Build the bot's web app; database, HTTP client and dispatcher live in cleanup_ctx."""
    if routers is None:
        from handlers import ROUTERS

        routers = ROUTERS
    app = web.Application(client_max_size=config.server.max_body_bytes)
    secrets = Secrets.of(config.wecom)
    app[CONFIG] = config
    app[CLOCK] = clock or SystemClock()
    app[CRYPTO] = WeComCrypto(secrets.token, secrets.aes_key, config.wecom.corp_id)
    app[REGISTRY] = Registry(routers)
    app[RENDERER] = Renderer()

    async def database(app: web.Application) -> AsyncIterator[None]:
        engine = make_engine(config.database.url)
        await migrate(engine)
        app[ENGINE] = engine
        app[PIPELINE] = Pipeline(make_sessionmaker(engine), app[CLOCK], config, app[RENDERER], app[REGISTRY])
        yield
        await engine.dispose()

    async def outbound(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            api = WeComAPI(
                session, api_base=config.wecom.api_base, corp_id=config.wecom.corp_id,
                secret=secrets.secret, agent_id=config.wecom.agent_id, clock=app[CLOCK],
                timeout=config.outbox.request_timeout_seconds,
            )
            app[API] = api
            webhook_keys = {
                g.chat_id: g.webhook_key.get_secret_value() for g in config.groups if g.webhook_key
            }
            dispatcher = Dispatcher(app[PIPELINE].sessions, api, app[CLOCK], config.outbox, webhook_keys)
            app[DISPATCHER] = dispatcher
            jobs = Scheduler(app[PIPELINE], build_jobs(config), on_commit=dispatcher.wake)
            timers = TimerRunner(app[PIPELINE], config.scheduler.tick_seconds, on_commit=dispatcher.wake,
                                 jobs=jobs if run_jobs else None)
            app[TIMERS] = timers
            if run_dispatcher and run_jobs:
                jobs.start()
            tasks = [
                asyncio.create_task(dispatcher.run(), name="outbox-dispatcher"),
                asyncio.create_task(timers.run(), name="timers"),
            ] if run_dispatcher else []
            yield
            dispatcher.stop()
            timers.stop()
            jobs.shutdown()
            for task in tasks:
                try:
                    await asyncio.wait_for(task, timeout=config.outbox.request_timeout_seconds + 1)
                except asyncio.TimeoutError:
                    task.cancel()

    app.cleanup_ctx.extend([database, outbound])
    app.router.add_get(config.server.callback_path, verify_url)
    app.router.add_post(config.server.callback_path, receive_callback)
    app.router.add_get("/healthz", healthz)
    if config.robot is not None:
        from bot.robot import robot_routes

        robot = Secrets.of(config.robot)
        # Smart robots encrypt with an empty receive id (doc 101033).
        app[ROBOT_CRYPTO] = WeComCrypto(robot.token, robot.aes_key, "")
        robot_routes(app, config.server.robot_path, ROBOT_CRYPTO)
    return app


def _query(request: web.Request, *names: str) -> list[str]:
    values = [request.query.get(n, "") for n in names]
    if not all(values):
        raise Rejected(400, "missing_query_params")
    return values


def _check_timestamp(request: web.Request, timestamp: str) -> None:
    if not timestamp.isdigit():
        raise Rejected(400, "bad_timestamp")
    now = request.app[CLOCK].now().timestamp()  # type: ignore[attr-defined]
    if abs(now - int(timestamp)) > request.app[CONFIG].wecom.timestamp_window_seconds:
        raise Rejected(403, "stale_timestamp")


def _reject(request: web.Request, exc: Rejected) -> web.Response:
    log(logger, logging.WARNING, "callback_rejected", status=exc.status, reason=exc.reason,
        method=request.method, remote=request.remote)
    return web.Response(status=exc.status, text=exc.reason)


async def echo(request: web.Request, crypto: WeComCrypto) -> web.Response:
    """URL verification (GET): check the signature, reply with the decrypted echostr (within 1 s)."""
    try:
        signature, timestamp, nonce, echostr = _query(request, "msg_signature", "timestamp", "nonce", "echostr")
        _check_timestamp(request, timestamp)
        plain = open_envelope(crypto, signature, timestamp, nonce, echostr)
    except Rejected as exc:
        return _reject(request, exc)
    log(logger, logging.INFO, "url_verified", path=request.path)
    return web.Response(text=plain, content_type="text/plain")


async def signed_body(request: web.Request) -> tuple[str, str, str, bytes]:
    """The signature parameters and the (size-capped) body of a callback POST."""
    signature, timestamp, nonce = _query(request, "msg_signature", "timestamp", "nonce")
    _check_timestamp(request, timestamp)
    cap = request.app[CONFIG].server.max_body_bytes
    if request.content_length is not None and request.content_length > cap:
        raise Rejected(413, "body_too_large")
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise Rejected(413, "body_too_large") from None
    return signature, timestamp, nonce, body


def open_envelope(crypto: WeComCrypto, signature: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """Constant-time signature check, then decrypt; Rejected(403/400) otherwise."""
    if not crypto.verify(signature, timestamp, nonce, encrypted):
        raise Rejected(403, "bad_signature")
    try:
        return crypto.decrypt(encrypted)
    except CryptoError as exc:
        raise Rejected(400, exc.reason) from None


async def verify_url(request: web.Request) -> web.Response:
    """GET callback: the admin console's URL check."""
    return await echo(request, request.app[CRYPTO])


async def receive_callback(request: web.Request) -> web.Response:
    """POST callback: verify, decrypt, dedupe and apply in one transaction, then 200."""
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
        return _reject(request, exc)
    token = msg_id_var.set(inbound.msg_id or inbound.dedupe_key)
    try:
        outcome = await request.app[PIPELINE].apply(inbound)
    finally:
        msg_id_var.reset(token)
    if outcome is not Outcome.DUPLICATE:
        request.app[DISPATCHER].wake()
    # An empty 200 acknowledges without a passive reply (doc 90930); answers go via the outbox.
    return web.Response(status=200, text="")


async def healthz(request: web.Request) -> web.Response:
    """Database reachability and the outbox backlog, as JSON."""
    engine = request.app[ENGINE]
    db_ok = await ping(engine)  # type: ignore[arg-type]
    body: dict[str, object] = {"database": "ok" if db_ok else "unreachable"}
    if db_ok:
        now = request.app[CLOCK].now()  # type: ignore[attr-defined]
        async with request.app[PIPELINE].sessions() as s:
            body["outbox"] = await outbox_health(s, now)
            # Timers that should have fired minutes ago mean the scheduler is stuck or failing.
            body["overdue_timers"] = int((await s.execute(
                select(func.count()).select_from(Timer).where(
                    Timer.fired_at.is_(None), Timer.due_at < now - timedelta(minutes=5))
            )).scalar_one())
    body["status"] = "ok" if db_ok else "degraded"
    return web.json_response(body, status=200 if db_ok else 503)
