"""Delivery pauses: a configuration error holds the messages it concerns instead of failing them.

Some WeCom answers will repeat for every message until an admin changes something (WECOM.md,
"Corrections"): the server's IP is not in the app's 企业可信IP (60020), the app's credentials are
wrong (40001, 40013, 40056, a token error that survives the client's one refresh), the app may
not call an API (48002), or a member listed in the config is not (yet) in WeCom's directory or the
app's visible range (81013). Failing each message would destroy the queue; retrying each blindly
hammers WeCom. Instead the cause is recorded once (`delivery_pauses`), the rows it concerns stay
pending in their order, and one row at a time probes it (after 30 s, the interval doubling up to
15 min), across every process sharing the database. An attempt that gets past the cause clears
it, and delivery resumes by itself.

A cause holds rows by scope:
- `app`: every row sent with the app's token (message, update_card, appchat, the customer-group
  mass sends and their follow-ups). Group-robot
  webhooks and smart-robot response_urls carry their own credentials and keep flowing.
- `api:<path>`: the rows that call one API. 48002 is per API: a forbidden appchat/send must not
  stop one-to-one messages.
- `user:<userid>`: one member's rows (the cause is the rows' recipient).

The director hears once when a cause appears and once when it clears; the messages go through
the outbox like any other (bot/templates/delivery_pause.j2).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from bot.logs import log
from bot.render import Renderer
from bot.wecom_api import API_FORBIDDEN, APP_CONFIG_ERRORS, INVALID_USER, TRANSIENT_ERRORS
from storage.models import DeliveryPause, OutboxMessage, OutboxStatus

logger = logging.getLogger("infodesk.outbox")

# The outbox kinds sent with the app's access_token, and the API each calls.
APP_KINDS: Mapping[str, str] = {
    "message": "message/send",
    "update_card": "message/update_template_card",
    "appchat": "appchat/send",
    "groupmsg": "externalcontact/add_msg_template",
    "groupmsg_result": "externalcontact/get_groupmsg_send_result",
    "groupmsg_remind": "externalcontact/remind_groupmsg_send",
    "groupmsg_cancel": "externalcontact/cancel_groupmsg_send",
    # A kept photo or file: media/upload when its cached upload nears 3 days, then message/send.
    # Filed under media/upload: a 48002 from those rows can only be the upload's (the texts
    # beside them prove message/send works), and it must not hold the texts.
    "image": "media/upload",
    "file": "media/upload",
    "media_fetch": "media/get",
}
PROBE_FIRST = timedelta(seconds=30)
PROBE_MAX = timedelta(minutes=15)
_IP_RE = re.compile(r"from ip:\s*([0-9A-Fa-f.:]+[0-9A-Fa-f])")


def probe_interval(probes: int) -> timedelta:
    """The wait after the `probes`-th probe: the first comes 30 s after the cause appeared, then
    the interval doubles (1 min, 2 min …) up to 15 min."""
    return min(PROBE_MAX, PROBE_FIRST * (1 << min(probes, 10)))


def cause_of(errcode: int, recipient: str, kind: str, members: Collection[str]) -> str | None:
    """The pause an error calls for, or None when it is the message's own failure.

    81013 pauses a member only if the config lists them (they may not be in WeCom's directory
    yet); a userid nobody configured is a wrong address, and that message fails.
    """
    if kind not in APP_KINDS:
        return None
    if errcode in APP_CONFIG_ERRORS:
        return "app"
    if errcode == API_FORBIDDEN:
        return f"api:{APP_KINDS[kind]}"
    if errcode == INVALID_USER and recipient.startswith("user:") and recipient[5:] in members:
        return recipient
    return None


def covers(cause: str, recipient: str, kind: str) -> bool:
    """Whether a pause holds a row."""
    if kind not in APP_KINDS:
        return False
    if cause == "app":
        return True
    if cause.startswith("api:"):
        return APP_KINDS[kind] == cause[4:]
    return cause == recipient


def held_rows(cause: str) -> ColumnElement[bool]:
    """SQL: the pending rows a pause holds."""
    kinds = [k for k, path in APP_KINDS.items() if cause in ("app", f"api:{path}") or cause.startswith("user:")]
    where = [OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.kind.in_(kinds)]
    if cause.startswith("user:"):
        where.append(OutboxMessage.recipient == cause)
    return and_(*where)


def got_past(cause: str, errcode: int) -> bool:
    """Whether an answer shows that WeCom no longer stops calls for `cause`.

    WeCom checks the caller (token, IP) before the API's permission, and both before the message
    itself: a refusal of the message (a bad card, an unknown member) means the app-wide checks
    passed. Transient errors and lost answers (negative codes) show nothing; nor does any error for
    a member's pause except success (the order of WeCom's member and content checks is unknown).
    """
    if errcode == 0:
        return True
    if errcode < 0 or errcode in TRANSIENT_ERRORS or errcode in APP_CONFIG_ERRORS:
        return False
    if cause == "app":
        return True
    if cause.startswith("api:"):
        return errcode != API_FORBIDDEN
    return False


def choose_probes(heads: Sequence[Any], active: Sequence[DeliveryPause], now: datetime) -> tuple[list[Any], list[Any]]:
    """Split due head rows (with .id, .recipient, .kind) into free rows and probes.

    Each pause whose next probe is due gets one probe: its oldest head that no other pause holds,
    else its oldest head not taken yet. Returns (free rows, [(row, pause)]).
    """
    holders = {h.id: [p for p in active if covers(p.cause, h.recipient, h.kind)] for h in heads}
    free = [h for h in heads if not holders[h.id]]
    due = [p for p in active if p.next_probe_at <= now]
    taken: dict[int, DeliveryPause] = {}
    for only_theirs in (True, False):
        for p in due:
            if p in taken.values():
                continue
            for h in sorted(heads, key=lambda h: h.id):
                if h.id in taken or p not in holders[h.id]:
                    continue
                if only_theirs and len(holders[h.id]) > 1:
                    continue
                taken[h.id] = p
                break
    probes = [(h, taken[h.id]) for h in heads if h.id in taken]
    return free, probes


class Notices(Protocol):
    """Tells people that a pause appeared or cleared (by queueing outbox rows in `s`)."""

    async def appeared(self, s: AsyncSession, now: datetime, pause: DeliveryPause, changed: bool) -> bool: ...

    async def cleared(self, s: AsyncSession, now: datetime, pause: DeliveryPause, held: int) -> None: ...


# The open pauses, looked at before every drain of the outbox: built once.
_ACTIVE = select(DeliveryPause).where(DeliveryPause.cleared_at.is_(None)).order_by(DeliveryPause.id)


class Pauses:
    """The pause table's operations; every write is conditional, so processes never step on
    each other: one opens a cause (and tells the director), one probes it per interval, one
    clears it."""

    def __init__(self, members: Collection[str] = (), notices: Notices | None = None) -> None:
        self.members = frozenset(members)
        self._notices = notices

    async def active(self, s: AsyncSession) -> list[DeliveryPause]:
        return list((await s.execute(_ACTIVE)).scalars())

    async def claim_probe(self, s: AsyncSession, pause: DeliveryPause, now: datetime) -> bool:
        """Take this interval's probe (compare-and-set on the probe count)."""
        res = await s.execute(
            update(DeliveryPause)
            .where(
                DeliveryPause.id == pause.id,
                DeliveryPause.cleared_at.is_(None),
                DeliveryPause.probes == pause.probes,
                DeliveryPause.next_probe_at <= now,
            )
            .values(probes=pause.probes + 1, last_probe_at=now, next_probe_at=now + probe_interval(pause.probes + 1))
            .execution_options(synchronize_session=False)
        )
        return _rowcount(res) == 1

    async def probe_again_now(self, s: AsyncSession, pause: DeliveryPause, now: datetime) -> None:
        """The probe row failed on its own account (it shows nothing): let the next row probe."""
        await s.execute(
            update(DeliveryPause)
            .where(DeliveryPause.id == pause.id, DeliveryPause.since == pause.since, DeliveryPause.cleared_at.is_(None))
            .values(next_probe_at=now)
            .execution_options(synchronize_session=False)
        )

    async def hold(self, s: AsyncSession, cause: str, errcode: int, errmsg: str, now: datetime) -> bool:
        """Record that `cause` stops delivery; True if this call opened it (or changed its code)."""
        first = {"errcode": errcode, "last_error": errmsg[:500], "since": now, "probes": 0}
        first |= {"last_probe_at": None, "next_probe_at": now + PROBE_FIRST, "cleared_at": None, "notified": False}
        # Reopen the cause's row if it cleared before, else create it; a process that finds it
        # already open (or created a moment ago by another) changes nothing.
        reopened = await s.execute(
            update(DeliveryPause)
            .where(DeliveryPause.cause == cause, DeliveryPause.cleared_at.is_not(None))
            .values(**first)
            .execution_options(synchronize_session=False)
        )
        opened = _rowcount(reopened) == 1
        if not opened:
            dialect = s.get_bind().dialect.name
            ins = pg_insert(DeliveryPause) if dialect == "postgresql" else sqlite_insert(DeliveryPause)
            created = await s.execute(ins.values(cause=cause, **first).on_conflict_do_nothing(index_elements=["cause"]))
            opened = _rowcount(created) == 1
        changed = False
        if not opened:
            # The same scope, another reason (the IP is fixed, now the secret is wrong): say so.
            res = await s.execute(
                update(DeliveryPause)
                .where(
                    DeliveryPause.cause == cause, DeliveryPause.cleared_at.is_(None), DeliveryPause.errcode != errcode
                )
                .values(errcode=errcode, last_error=errmsg[:500])
                .execution_options(synchronize_session=False)
            )
            changed = _rowcount(res) == 1
        if not (opened or changed):
            return False
        pause = (await s.execute(select(DeliveryPause).where(DeliveryPause.cause == cause))).scalar_one()
        await s.refresh(pause)
        told = await self._notices.appeared(s, now, pause, changed) if self._notices else False
        if told:
            pause.notified = True
        log(
            logger,
            logging.WARNING,
            "delivery_pause_changed" if changed else "delivery_paused",
            cause=cause,
            errcode=errcode,
            error=errmsg[:200],
            director_told=told,
        )
        return True

    async def clear(self, s: AsyncSession, pause: DeliveryPause, now: datetime, by_row: int) -> bool:
        """End the pause (this episode only); True if this call ended it."""
        res = await s.execute(
            update(DeliveryPause)
            .where(DeliveryPause.id == pause.id, DeliveryPause.since == pause.since, DeliveryPause.cleared_at.is_(None))
            .values(cleared_at=now)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(res) != 1:
            return False
        held = int((await s.execute(select(func.count()).where(held_rows(pause.cause)))).scalar_one())
        told = (await s.execute(select(DeliveryPause.notified).where(DeliveryPause.id == pause.id))).scalar_one()
        if told and self._notices is not None:
            await self._notices.cleared(s, now, pause, held)
        log(
            logger,
            logging.INFO,
            "delivery_resumed",
            cause=pause.cause,
            errcode=pause.errcode,
            paused_s=round((now - pause.since).total_seconds()),
            held=held,
            by_row=by_row,
        )
        return True

    async def drop(self, s: AsyncSession, pause: DeliveryPause, now: datetime) -> None:
        """End a member's pause without a message: the config no longer lists them, so their
        held rows go out and fail as addressed to nobody."""
        res = await s.execute(
            update(DeliveryPause)
            .where(DeliveryPause.id == pause.id, DeliveryPause.cleared_at.is_(None))
            .values(cleared_at=now)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(res) == 1:
            log(logger, logging.INFO, "delivery_pause_dropped", cause=pause.cause, reason="not in the config any more")


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _explained(cause: str, errcode: int, errmsg: str) -> dict[str, Any]:
    """What the template needs to say what is wrong and who must do what."""
    ip = _IP_RE.search(errmsg or "")
    return {
        "scope": cause.split(":", 1)[0],
        "api": cause[4:] if cause.startswith("api:") else "",
        "userid": cause[5:] if cause.startswith("user:") else "",
        "errcode": errcode,
        "ip": ip.group(1) if ip else "",
    }


class DirectorNotices:
    """The director's messages about pauses, queued through the outbox (held like any other)."""

    def __init__(self, renderer: Renderer, directors: Sequence[str], names: Mapping[str, str], tz: ZoneInfo) -> None:
        self._renderer = renderer
        self._directors = list(dict.fromkeys(directors))
        self._names = dict(names)
        self._tz = tz

    def _local(self, at: datetime) -> str:
        return at.astimezone(self._tz).strftime("%m月%d日 %H:%M")

    def _context(self, pause: DeliveryPause) -> dict[str, Any]:
        ctx = _explained(pause.cause, pause.errcode, pause.last_error)
        ctx["name"] = self._names.get(ctx["userid"], ctx["userid"])
        ctx["since"] = self._local(pause.since)
        ctx["what"] = self._renderer.block("delivery_pause", "what", **ctx) or ""
        ctx["problem"] = self._renderer.block("delivery_pause", "problem", **ctx) or ""
        return ctx

    def _queue(self, s: AsyncSession, now: datetime, texts: Iterable[tuple[str, str]]) -> None:
        from bot.outbox import enqueue  # bot.outbox imports this module

        for userid, text in texts:
            body = {"touser": userid, "msgtype": "text", "text": {"content": text}}
            enqueue(s, now, f"user:{userid}", "message", body)

    async def appeared(self, s: AsyncSession, now: datetime, pause: DeliveryPause, changed: bool) -> bool:
        ctx = self._context(pause)
        text = self._renderer.block("delivery_pause", "appeared", changed=changed, **ctx) or ""
        self._queue(s, now, ((d, text) for d in self._directors))
        return bool(self._directors)

    async def cleared(self, s: AsyncSession, now: datetime, pause: DeliveryPause, held: int) -> None:
        ctx = self._context(pause)
        minutes = max(1, round((now - pause.since).total_seconds() / 60))
        texts = []
        for d in self._directors:
            # While the pause held the director's own messages, the notice that it appeared is
            # still queued: both arrive now, in order, and this one says so.
            own = covers(pause.cause, f"user:{d}", "message")
            text = self._renderer.block(
                "delivery_pause", "cleared", until=self._local(now), minutes=minutes, held=held, own=own, **ctx
            )
            texts.append((d, text or ""))
        self._queue(s, now, texts)


async def pause_health(s: AsyncSession) -> list[dict[str, Any]]:
    """The active pauses for /healthz and the command line: cause, errcode, since, next probe."""
    out = []
    for p in (
        await s.execute(select(DeliveryPause).where(DeliveryPause.cleared_at.is_(None)).order_by(DeliveryPause.id))
    ).scalars():
        held = int((await s.execute(select(func.count()).where(held_rows(p.cause)))).scalar_one())
        out.append(
            {
                "cause": p.cause,
                "errcode": p.errcode,
                "error": p.last_error,
                "since": p.since.isoformat(),
                "last_probe": p.last_probe_at.isoformat() if p.last_probe_at else None,
                "next_probe": p.next_probe_at.isoformat(),
                "probes": p.probes,
                "held": held,
                "director_told": p.notified,
            }
        )
    return out


async def cleared_pauses(s: AsyncSession, limit: int = 10) -> list[DeliveryPause]:
    """The latest pauses that have ended (one row per cause, its latest episode)."""
    q = (
        select(DeliveryPause)
        .where(DeliveryPause.cleared_at.is_not(None))
        .order_by(DeliveryPause.cleared_at.desc())
        .limit(limit)
    )
    return list((await s.execute(q)).scalars())
