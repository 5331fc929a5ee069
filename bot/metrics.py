"""GET /metrics in Prometheus' text format; off unless `[server] metrics = true`.

Counted in this process (a middleware around the callback paths): callbacks by channel and
outcome, and how long each took. Read from the database at scrape time, so every replica reports
the same shared numbers: outbox rows by status and errcode, the backlog and its oldest row's age,
overdue timers, pending approvals by step.

Each app has its own `CollectorRegistry` (not prometheus_client's global one), so several apps in
one process, as in the tests, count separately.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.appkeys import CLOCK, PIPELINE
from bot.journal import journal_health
from bot.logs import log
from bot.pipeline import Outcome
from bot.transport import Rejected, reject
from storage.db import reading
from storage.models import OutboxMessage, OutboxStatus, Request, Timer

logger = logging.getLogger("infodesk.metrics")

# Timers this late mean the scheduler is stuck or failing (/healthz says the same).
OVERDUE_AFTER = timedelta(minutes=5)
# WeCom gives up on a callback after 5 s and retries it.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# What became of a callback: the pipeline's outcomes, or, when it never reached the pipeline,
# rejected (4xx: signature, size, malformed), ignored (acknowledged, nothing to apply), error.
OUTCOMES = (*(o.value for o in Outcome), "rejected", "ignored", "error")
APPLY_OUTCOMES = (Outcome.APPLIED.value, Outcome.DUPLICATE.value, Outcome.FAILED.value)
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# The outcome of the callback the current request serves, filled in by `note_outcome`.
_outcome: ContextVar[list[str] | None] = ContextVar("callback_outcome", default=None)


def note_outcome(outcome: Outcome) -> None:
    """Tell the metrics middleware what became of the callback the current request serves."""
    cell = _outcome.get()
    if cell is not None:
        cell.append(outcome.value)


@dataclass(frozen=True)
class Snapshot:
    """The numbers read from the database for one scrape."""

    outbox: list[tuple[str, str, int]]  # status, errcode ("none" before any answer), rows
    oldest_pending_age: float  # seconds; 0 when nothing is pending
    overdue_timers: int
    approvals: list[tuple[str, str, str, int]]  # workflow, step (1-based), role, requests
    inbound_pending: int = 0  # messages answered and not yet applied (the inbound journal)


async def overdue_timers(s: AsyncSession, now: datetime) -> int:
    """Timers that should have fired more than OVERDUE_AFTER ago."""
    count = await s.execute(
        select(func.count()).select_from(Timer).where(Timer.fired_at.is_(None), Timer.due_at < now - OVERDUE_AFTER)
    )
    return int(count.scalar_one())


def _current_step(flow: Mapping[str, Any]) -> tuple[str, str]:
    """The pending step of a stored approval flow (approval_engine.Flow.to_json) as (number, role)."""
    try:
        index = int(flow["current"])
        return str(index + 1), str(flow["steps"][index]["role"])
    except (KeyError, IndexError, TypeError, ValueError):
        return "unknown", "unknown"


async def read_snapshot(s: AsyncSession, now: datetime, inbound_pending: int) -> Snapshot:
    """Count what the metrics report from the shared database."""
    outbox = [
        (str(status), "none" if errcode is None else str(errcode), int(rows))
        for status, errcode, rows in (
            await s.execute(
                select(OutboxMessage.status, OutboxMessage.errcode, func.count())
                .group_by(OutboxMessage.status, OutboxMessage.errcode)
                .order_by(OutboxMessage.status, OutboxMessage.errcode)
            )
        ).all()
    ]
    oldest = (
        await s.execute(select(func.min(OutboxMessage.created_at)).where(OutboxMessage.status == OutboxStatus.PENDING))
    ).scalar()
    if isinstance(oldest, str):  # SQLite's min() returns the stored text, not the column type
        oldest = datetime.fromisoformat(oldest)
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    steps: Tally[tuple[str, str, str]] = Tally()
    for workflow, flow in (
        await s.execute(select(Request.workflow, Request.flow).where(Request.status == "pending"))
    ).all():
        steps[(workflow, *_current_step(flow))] += 1
    return Snapshot(
        outbox=outbox,
        oldest_pending_age=max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0,
        overdue_timers=await overdue_timers(s, now),
        approvals=[(*key, n) for key, n in sorted(steps.items())],
        inbound_pending=inbound_pending,
    )


class DatabaseCollector(Collector):
    """Serves the snapshot the scrape just read (prometheus_client collects synchronously)."""

    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None

    def collect(self) -> Iterator[Metric]:
        """The database gauges; only `infodesk_database_up 0` when the database did not answer."""
        snap = self.snapshot
        yield GaugeMetricFamily(
            "infodesk_database_up", "1 if this scrape could read the database, else 0", value=int(snap is not None)
        )
        if snap is None:
            return
        rows = GaugeMetricFamily(
            "infodesk_outbox_messages",
            "Outbox rows by status and the errcode of their latest WeCom answer "
            "(sent rows are purged after outbox.keep_sent_days)",
            labels=["status", "errcode"],
        )
        for status, errcode, n in snap.outbox:
            rows.add_metric([status, errcode], n)
        yield rows
        pending = sum(n for status, _, n in snap.outbox if status == OutboxStatus.PENDING)
        yield GaugeMetricFamily(
            "infodesk_outbox_pending", "Outbox rows waiting to be sent (the backlog)", value=pending
        )
        yield GaugeMetricFamily(
            "infodesk_outbox_oldest_pending_age_seconds",
            "Age of the oldest pending outbox row (0 when none is pending)",
            value=snap.oldest_pending_age,
        )
        yield GaugeMetricFamily(
            "infodesk_inbound_pending",
            "Messages answered and recorded in the inbound journal, not yet applied (the bot's backlog)",
            value=snap.inbound_pending,
        )
        yield GaugeMetricFamily(
            "infodesk_timers_overdue",
            "SLA and reminder timers more than 5 minutes past due (the scheduler is stuck)",
            value=snap.overdue_timers,
        )
        approvals = GaugeMetricFamily(
            "infodesk_approvals_pending",
            "Requests waiting for an approval, by workflow and the step (number and role) they wait at",
            labels=["workflow", "step", "role"],
        )
        for workflow, step, role, n in snap.approvals:
            approvals.add_metric([workflow, step, role], n)
        yield approvals


def _address(text: str) -> Address | None:
    """An address as a peer or a forwarding header gives it (with or without port, brackets, zone)."""
    text = text.strip().strip('"')
    if text.startswith("["):  # [v6]:port
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class Metrics:
    """One app's registry, its callback middleware and its /metrics handler."""

    def __init__(self, callback_paths: Mapping[str, str], allow: Iterable[str] = ()) -> None:
        self.registry = CollectorRegistry()
        self.paths = dict(callback_paths)  # path -> channel
        self.allowed: tuple[Network, ...] = (*LOOPBACK, *(ipaddress.ip_network(n, strict=False) for n in allow))
        self.callbacks = Counter(
            "infodesk_callbacks",
            "Callbacks (POST) received, by channel (app, robot) and outcome",
            ["channel", "outcome"],
            registry=self.registry,
        )
        self.inbound = Counter(
            "infodesk_inbound_applied",
            "Messages the applier took from the inbound journal, by channel and outcome: applied, "
            "duplicate (WeCom's retry of one applied before), failed (a handler error, apologised for)",
            ["channel", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "infodesk_callback_duration_seconds",
            "Time from a callback's arrival to its answer (verify, decrypt, the inbound journal's commit)",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        for channel in self.paths.values():  # every series from the start, so rate() sees the first one
            self.latency.labels(channel)
            for outcome in OUTCOMES:
                self.callbacks.labels(channel, outcome)
            for outcome in APPLY_OUTCOMES:
                self.inbound.labels(channel, outcome)
        self.database = DatabaseCollector()
        self.registry.register(self.database)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Time and count the POSTs to the callback paths; other requests pass untouched."""
        channel = self.paths.get(request.path)
        if channel is None or request.method != "POST":
            return await handler(request)
        cell: list[str] = []
        token = _outcome.set(cell)
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            _outcome.reset(token)
            self.latency.labels(channel).observe(time.perf_counter() - started)
            self.callbacks.labels(channel, cell[-1] if cell else _by_status(status)).inc()

    def applied(self, channel: str, outcome: Outcome) -> None:
        """Count a message the applier took from the journal."""
        self.inbound.labels(channel, outcome.value).inc()

    def allows(self, request: web.Request) -> bool:
        """Loopback and the `metrics_allow` networks; a proxied request must come from them too."""
        claimed = [request.remote or ""]
        # A reverse proxy on this host makes every client look like loopback: trust the peer only
        # if the addresses the proxy forwards for are allowed as well.
        for header in ("X-Forwarded-For", "X-Real-IP"):
            for value in request.headers.getall(header, ()):
                claimed.extend(value.split(","))
        claimed.extend(str(f.get("for", "")) for f in request.forwarded)
        for text in claimed:
            address = _address(text)
            if address is None or not any(address in n for n in self.allowed):
                return False
        return True

    async def scrape(self, request: web.Request) -> web.Response:
        """GET /metrics: 403 to clients outside the allowed networks."""
        if not self.allows(request):
            return reject(request, Rejected(403, "metrics_not_allowed"))
        try:
            pipeline = request.app[PIPELINE]
            pending = (await journal_health(pipeline.journal_sessions))["pending"]
            async with reading(pipeline.sessions) as s:
                snapshot: Snapshot | None = await read_snapshot(s, request.app[CLOCK].now(), pending)
        except Exception as exc:  # the in-process counters are still worth serving
            log(logger, logging.WARNING, "metrics_database_unreadable", error=str(exc)[:200])
            snapshot = None
        # No await between setting the snapshot and rendering it: concurrent scrapes cannot mix.
        self.database.snapshot = snapshot
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _by_status(status: int) -> str:
    if 200 <= status < 300:
        return "ignored"
    if 400 <= status < 500:
        return "rejected"
    return "error"


METRICS = web.AppKey("metrics", Metrics)
