"""The outbox: outbound messages are rows committed with the state change that caused them.

A dispatcher drains them in order per recipient, within WeCom's documented limits (doc 90312:
30 messages/min and 1000/h from one app to one member; doc 91770: 20/min per group robot; doc
90248: 20,000 person-messages/min and 150,000/h per corp into app groups, each group's message
counting its members), with backoff on transient errors. A row is claimed with a lease before it
is sent, so several processes sharing one database never send the same row at once. If a process
dies after WeCom accepted a message but before the row was marked sent, the retry carries WeCom's
own `enable_duplicate_check`, so the member does not get it twice.

A configuration error (untrusted IP, bad credentials, a forbidden API, a configured member WeCom
does not know yet) fails no row: it pauses delivery for its cause and one row at a time probes it
(bot/pauses.py); the rows stay pending in their order and go out when the cause clears.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.config import OutboxConfig
from bot.logs import log
from bot.pauses import Pauses, cause_of, choose_probes, covers, got_past
from bot.wecom_api import WeComAPI, WeComError
from storage.models import Card, DeliveryPause, MediaFile, MediaStatus, OutboxMessage, OutboxStatus, Timer

logger = logging.getLogger("infodesk.outbox")

# (window seconds, max messages) per recipient kind.
RATE_LIMITS: dict[str, tuple[tuple[int, int], ...]] = {
    "user": ((60, 30), (3600, 1000)),
    "webhook": ((60, 20),),
    "chat": ((60, 200),),
}
# App group chats (doc 90248): per corp at most 20,000 person-messages a minute and 150,000 an hour
# (the smallest tier) — a message into a group of 50 counts 50. Counted corp-wide over every appchat
# row, with each group's member count (appchat/get, cached for MEMBERS_TTL).
APPCHAT_CORP_LIMITS: tuple[tuple[int, int], ...] = ((60, 20_000), (3600, 150_000))
MEMBERS_TTL = timedelta(hours=1)
FREQ_LIMITED = 45009
DUPLICATE_CHECK_SECONDS = 1800
# Customer-contact (客户联系) calls that follow a mass send, by outbox kind.
EXTERNAL_KINDS: Mapping[str, str] = {
    "groupmsg_result": "get_groupmsg_send_result",
    "groupmsg_remind": "remind_groupmsg_send",
    "groupmsg_cancel": "cancel_groupmsg_send",
}
BATCH = 500
# A kept photo or file sent as itself (bot/media.py): uploaded, then message/send.
MEDIA_KINDS = frozenset({"image", "file"})
# An upload lives 3 days (doc 96484): renew it well before, so neither a late send nor its retry
# carries a media_id that expires on WeCom's side first.
REUPLOAD_AFTER = timedelta(hours=60)
# "taskid has existed or empty or exceed max len": a card's task_id is single-use per app.
TASK_ID_USED = 42014
RESPONSE_CODE_SPENT = 40058


def outcome_unknown(errcode: int | None) -> bool:
    """Whether the last attempt may have reached WeCom although no answer said so: the process
    died mid-call (None), a timeout (-2), a dropped connection (-3), an unreadable answer (-4),
    or an HTTP 5xx from WeCom or a proxy in front of it (-5xx)."""
    return errcode is None or errcode in (-2, -3, -4) or -599 <= errcode <= -500


def _used_at() -> Any:
    """When a row used up a message of its recipient's limits: a message counts from when it was
    sent; an attempt whose outcome is unknown (in flight, a timeout, a lost answer) may have been
    delivered too, so it counts from when it was made: WeCom drops what is over the limit without
    saying so."""
    errcode = OutboxMessage.errcode
    unknown = or_(errcode.is_(None), errcode.in_((-2, -3, -4)), errcode.between(-599, -500))
    return case(
        (OutboxMessage.status == OutboxStatus.SENT, OutboxMessage.sent_at),
        (and_(OutboxMessage.attempted_at.is_not(None), unknown), OutboxMessage.attempted_at),
        else_=None,
    )


def enqueue(
    session: AsyncSession,
    now: datetime,
    recipient: str,
    kind: str,
    payload: dict[str, Any],
    caused_by: int | None = None,
    then: str | None = None,
) -> OutboxMessage:
    """Add an outbound message to the caller's transaction (never sent if it rolls back).

    `then` names a timer kind fired once the call is settled (sent, or failed for good), with
    `{"outbox_id", "ok", "errcode"}` in its payload: how a workflow reads WeCom's answer.
    """
    row = OutboxMessage(
        recipient=recipient,
        kind=kind,
        payload=payload,
        status=OutboxStatus.PENDING,
        attempts=0,
        created_at=now,
        next_attempt_at=now,
        caused_by=caused_by,
        then=then,
    )
    session.add(row)
    return row


def settled(s: AsyncSession, row: OutboxMessage, now: datetime, ok: bool, errcode: int) -> None:
    """The `then` timer of a settled row, in the transaction that settles it."""
    if row.then:
        payload = {"outbox_id": row.id, "ok": ok, "errcode": errcode}
        s.add(Timer(kind=row.then, ref=f"outbox:{row.id}", due_at=now, payload=payload))


def message_request(row: OutboxMessage) -> dict[str, Any]:
    """The message/send body for a row: the same JSON on every attempt, the first included.

    WeCom's duplicate check compares the whole request JSON (doc 90236, see WECOM.md), so a retry
    after a lost answer is dropped only if the first send was identical, flag and all. Two
    *different* rows may carry the same text to the same member (the same question asked again
    after 取消) and must both arrive: the interval, a documented field, is made to differ per row
    (30 to 60 minutes, from the row's id), which keeps their JSON apart.
    """
    assert row.id is not None
    return {
        **row.payload,
        "enable_duplicate_check": 1,
        "duplicate_check_interval": DUPLICATE_CHECK_SECONDS + row.id % DUPLICATE_CHECK_SECONDS,
    }


def backoff(attempts: int, cap: float) -> float:
    """Exponential backoff with jitter: ~1 s, 2 s, 4 s ... up to `cap`."""
    base = min(cap, 2.0 ** max(0, attempts - 1))
    return base * (0.75 + random.random() / 2)


# The statements every delivery runs, built once: building one (and its cache key) cost more of the
# worker's CPU than executing it (~350 of ~900 µs for the sent-marking transaction, this machine).
# The oldest pending row of each recipient (its head).
_HEADS = (
    select(
        OutboxMessage.id,
        OutboxMessage.recipient,
        OutboxMessage.kind,
        OutboxMessage.next_attempt_at,
        OutboxMessage.lease_until,
    )
    .where(
        OutboxMessage.id.in_(
            select(func.min(OutboxMessage.id))
            .where(OutboxMessage.status == OutboxStatus.PENDING)
            .group_by(OutboxMessage.recipient)
            .limit(BATCH)
            .scalar_subquery()
        )
    )
    .order_by(OutboxMessage.id)
)
_CLAIM = (
    update(OutboxMessage)
    .where(
        OutboxMessage.id.in_(bindparam("ids", expanding=True)),
        OutboxMessage.status == OutboxStatus.PENDING,
        or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until <= bindparam("now")),
    )
    .values(
        lease_until=bindparam("lease"),
        lease_owner=bindparam("token"),
        attempts=OutboxMessage.attempts + 1,
        attempted_at=bindparam("now"),
    )
    .execution_options(synchronize_session=False)
)
_CLAIMED = (
    select(OutboxMessage)
    .where(
        OutboxMessage.id.in_(bindparam("ids", expanding=True)),
        OutboxMessage.lease_owner == bindparam("token"),
        OutboxMessage.status == OutboxStatus.PENDING,
    )
    .order_by(OutboxMessage.id)
)
_SENT = (
    update(OutboxMessage)
    .where(and_(OutboxMessage.id == bindparam("row_id"), OutboxMessage.lease_owner == bindparam("owner")))
    .values(
        status=OutboxStatus.SENT,
        sent_at=bindparam("now"),
        lease_until=None,
        result=bindparam("result"),
        errcode=0,
        last_error=None,
    )
    .execution_options(synchronize_session=False)  # nothing of the row is loaded where it is used
)


class Dispatcher:
    """Drains pending outbox rows to the WeCom API."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        api: WeComAPI,
        clock: Clock,
        config: OutboxConfig,
        webhook_keys: Mapping[str, str] | None = None,
        pauses: Pauses | None = None,
        give_way: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._sessions = sessions
        # Awaited before each drain and each delivery: the app gives way to callbacks being received.
        self._give_way = give_way
        self._pauses = pauses or Pauses()
        self._api = api
        self._clock = clock
        self._cfg = config
        self._webhook_keys = dict(webhook_keys or {})
        self._wake = asyncio.Event()
        self._stopping = False
        self.owner = uuid.uuid4().hex[:12]
        self._claims = 0
        self._lease = timedelta(seconds=config.request_timeout_seconds + 5)
        self._members: dict[str, tuple[int, datetime]] = {}  # chat id -> (member count, good until)
        self._appchat_held_until: datetime | None = None  # after a 45009 on appchat/send

    def wake(self) -> None:
        """Look for work now (called after a transaction that wrote outbox rows commits)."""
        self._wake.set()

    async def run(self) -> None:
        """Drain until stopped; survives database and network errors."""
        try:
            await self.probe_pauses_now()
        except Exception:
            logger.exception("delivery_pause_start_probe_failed")  # the pauses probe on schedule
        while not self._stopping:
            self._wake.clear()
            if self._give_way is not None:
                await self._give_way()
            try:
                sent = await self.drain_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("outbox_drain_failed")
                sent = 0
            if sent:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._cfg.poll_interval_seconds)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def probe_pauses_now(self) -> None:
        """At start: probe every open pause now (a restart is when an admin's fixed config takes
        effect), and end the pauses of members the config no longer lists (their rows then fail
        as addressed to nobody)."""
        now = self._clock.now()
        async with self._sessions() as s, s.begin():
            for p in await self._pauses.active(s):
                members = self._pauses.members
                if p.cause.startswith("user:") and members and p.cause[5:] not in members:
                    await self._pauses.drop(s, p, now)
                elif p.next_probe_at > now:
                    await self._pauses.probe_again_now(s, p, now)

    async def drain_once(self) -> int:
        """Send the head row of every recipient that is due and under its limits."""
        now = self._clock.now()
        async with self._sessions() as s:
            # The oldest pending row of each recipient (its head): one busy or rate-limited member
            # never hides the others, however many rows they have queued.
            rows = (await s.execute(_HEADS)).all()
            heads: dict[str, Any] = {row.recipient: row for row in rows}
            due = [
                r
                for r in heads.values()
                if r.next_attempt_at <= now and (r.lease_until is None or r.lease_until <= now)
            ]
            # Rows a paused cause holds wait, except one probe per cause when its interval is up.
            active = await self._pauses.active(s)
            free, probes = choose_probes(due, active, now)
            candidates = [r.recipient for r in [*free, *(h for h, _ in probes)]]
            allowed = await self._under_limits(s, candidates, now)
        chats = [r for r in candidates if r in allowed and r.startswith("chat:")]
        if chats:  # outside the session: it may ask WeCom for member counts
            allowed -= set(chats) - await self._under_corp_limits(chats, now)
        due = [r for r in free if r.recipient in allowed]
        probe_of: dict[int, DeliveryPause] = {}
        for head, pause in probes:
            if head.recipient not in allowed:
                continue
            async with self._sessions() as s, s.begin():
                if await self._pauses.claim_probe(s, pause, now):
                    probe_of[head.id] = pause
                    due.append(head)
        if not due:
            return 0
        claimed = await self._claim_many([r.id for r in due])  # one transaction for the whole batch
        sem = asyncio.Semaphore(self._cfg.concurrency)

        async def one(row: OutboxMessage) -> bool:
            async with sem:
                if self._give_way is not None:
                    await self._give_way()
                return await self._deliver(row, probe_of.get(row.id), active)

        results = await asyncio.gather(*(one(r) for r in claimed))
        return sum(results)

    async def _under_limits(self, s: AsyncSession, recipients: list[str], now: datetime) -> set[str]:
        limited = [r for r in recipients if r.split(":", 1)[0] in RATE_LIMITS]
        ok = set(recipients) - set(limited)
        if not limited:
            return ok
        longest = max(w for r in limited for w, _ in RATE_LIMITS[r.split(":", 1)[0]])
        windows = sorted({w for r in limited for w, _ in RATE_LIMITS[r.split(":", 1)[0]]})
        used_at = _used_at()
        cols = [func.sum(case((used_at > now - timedelta(seconds=w), 1), else_=0)) for w in windows]
        counts = {
            r[0]: dict(zip(windows, r[1:], strict=True))
            for r in (
                await s.execute(
                    select(OutboxMessage.recipient, *cols)
                    .where(
                        OutboxMessage.recipient.in_(limited),
                        or_(
                            OutboxMessage.sent_at > now - timedelta(seconds=longest),
                            OutboxMessage.attempted_at > now - timedelta(seconds=longest),
                        ),
                    )
                    .group_by(OutboxMessage.recipient)
                )
            ).all()
        }
        for r in limited:
            c = counts.get(r, {})
            if all((c.get(w) or 0) < n for w, n in RATE_LIMITS[r.split(":", 1)[0]]):
                ok.add(r)
        return ok

    async def _chat_sizes(self, chat_ids: Sequence[str], now: datetime) -> dict[str, int]:
        """Each app group's member count: appchat/get once, then cached for MEMBERS_TTL. A group
        WeCom will not describe counts 1 for a minute (its send will say what is wrong)."""
        missing = [c for c in dict.fromkeys(chat_ids) if c not in self._members or self._members[c][1] <= now]
        sem = asyncio.Semaphore(self._cfg.concurrency)

        async def one(chat_id: str) -> None:
            async with sem:
                try:
                    info = (await self._api.appchat_get(chat_id)).get("chat_info") or {}
                    self._members[chat_id] = (max(1, len(info.get("userlist") or [])), now + MEMBERS_TTL)
                except WeComError as exc:
                    log(logger, logging.WARNING, "appchat_size_unknown", chat=chat_id, errcode=exc.errcode)
                    self._members[chat_id] = (1, now + timedelta(minutes=1))

        await asyncio.gather(*(one(c) for c in missing))
        return {c: self._members[c][0] for c in chat_ids}

    async def _appchat_usage(self, now: datetime) -> list[tuple[str, datetime]]:
        """The appchat messages that count against the corp's limits now: (recipient, used at)."""
        used_at = _used_at()
        since = now - timedelta(seconds=max(w for w, _ in APPCHAT_CORP_LIMITS))
        async with self._sessions() as s:
            found = (
                await s.execute(
                    select(OutboxMessage.recipient, used_at).where(
                        OutboxMessage.kind == "appchat",
                        or_(OutboxMessage.sent_at > since, OutboxMessage.attempted_at > since),
                        used_at > since,
                    )
                )
            ).all()
        out = []
        for recipient, at in found:
            if isinstance(at, str):  # SQLite returns a CASE of datetimes as text
                at = datetime.fromisoformat(at)
            out.append((recipient, at if at.tzinfo else at.replace(tzinfo=UTC)))
        return out

    async def _appchat_held(self, now: datetime) -> bool:
        """Whether an appchat row waits out a 45009 (here or in another process): the others wait too."""
        if self._appchat_held_until is not None and self._appchat_held_until > now:
            return True
        async with self._sessions() as s:
            waiting = await s.execute(
                select(OutboxMessage.id)
                .where(
                    OutboxMessage.kind == "appchat",
                    OutboxMessage.status == OutboxStatus.PENDING,
                    OutboxMessage.errcode == FREQ_LIMITED,
                    OutboxMessage.next_attempt_at > now,
                )
                .limit(1)
            )
            return waiting.first() is not None

    async def _under_corp_limits(self, chats: Sequence[str], now: datetime) -> set[str]:
        """The app groups (heads, oldest first) whose messages fit the corp's person-message
        limits (APPCHAT_CORP_LIMITS) with what was sent before them; the first that does not fit
        and every later one wait, so a large group is not passed over by smaller ones."""
        if await self._appchat_held(now):
            return set()
        usage = await self._appchat_usage(now)
        sizes = await self._chat_sizes([c.split(":", 1)[1] for c in [*chats, *(r for r, _ in usage)]], now)
        used = {
            w: sum(sizes[r.split(":", 1)[1]] for r, at in usage if at > now - timedelta(seconds=w))
            for w, _ in APPCHAT_CORP_LIMITS
        }
        ok: set[str] = set()
        for chat in chats:
            n = sizes[chat.split(":", 1)[1]]
            if any(used[w] + n > cap for w, cap in APPCHAT_CORP_LIMITS):
                break
            for w, _ in APPCHAT_CORP_LIMITS:
                used[w] += n
            ok.add(chat)
        return ok

    async def _appchat_frees_at(self, now: datetime) -> datetime:
        """After a 45009 on appchat/send: when the corp's minute frees some room, i.e. when the
        oldest counted message of the last minute ages out (a minute on if none: someone else used
        it up). WeCom refused what the count let through, so it is at least a few seconds away."""
        recent = [at for _, at in await self._appchat_usage(now) if at > now - timedelta(seconds=60)]
        frees = min(recent) + timedelta(seconds=60) if recent else now + timedelta(seconds=60)
        return max(frees, now + timedelta(seconds=5))

    async def _claim_many(self, row_ids: list[int]) -> list[OutboxMessage]:
        """Lease the rows no other process holds; return those this process now owns."""
        if not row_ids:
            return []
        now = self._clock.now()
        lease = now + self._lease
        self._claims += 1
        token = f"{self.owner}:{self._claims}"  # unique per claim, even within one process
        async with self._sessions() as s, s.begin():
            await s.execute(_CLAIM, {"ids": row_ids, "now": now, "lease": lease, "token": token})
            # Rows another claim took a moment earlier carry its token, not ours.
            rows = (await s.execute(_CLAIMED, {"ids": row_ids, "token": token})).scalars().all()
            return list(rows)

    async def _claim(self, row_id: int) -> OutboxMessage | None:
        rows = await self._claim_many([row_id])
        return rows[0] if rows else None

    async def _deliver(
        self, row: OutboxMessage, probe: DeliveryPause | None = None, active: Sequence[DeliveryPause] = ()
    ) -> bool:
        # The pauses this attempt can end: those holding the row that began before it was claimed.
        holding = [
            p
            for p in active
            if covers(p.cause, row.recipient, row.kind) and row.attempted_at is not None and p.since <= row.attempted_at
        ]
        try:
            result = await self._call(row)
        except WeComError as exc:
            if not self._delivered_earlier(row, exc):
                cause = cause_of(exc.errcode, row.recipient, row.kind, self._pauses.members)
                if cause is not None:
                    await self._held(row, exc, cause, holding)
                else:
                    await self._failed(row, exc, holding, probe)
                return False
            # A card's task_id may be used once per app: after an attempt whose answer never came
            # back (crash, timeout), WeCom refusing the repeat means the first one got through.
            log(logger, logging.WARNING, "outbox_assumed_delivered", id=row.id, errcode=exc.errcode, error=exc.errmsg)
            result = {"assumed_delivered": True, "errcode_on_retry": exc.errcode}
        async with self._sessions() as s, s.begin():
            now = self._clock.now()
            await s.execute(
                _SENT,
                {
                    "row_id": row.id,
                    "owner": row.lease_owner,
                    "now": now,
                    "result": {k: v for k, v in result.items() if k not in ("errcode", "errmsg")},
                },
            )
            for p in holding:  # it went through: whatever held it is over
                await self._pauses.clear(s, p, now, row.id)
            settled(s, row, now, True, 0)
        log(
            logger,
            logging.INFO,
            "outbox_sent",
            id=row.id,
            kind=row.kind,
            recipient=row.recipient,
            attempts=row.attempts,
        )
        return True

    @staticmethod
    def _delivered_earlier(row: OutboxMessage, exc: WeComError) -> bool:
        """A repeat after an attempt whose outcome is unknown, refused for what the first used up:
        a card's task_id (42014), or a card update's response_code (single use, doc 94945; WeCom
        answers a spent code with 40058, invalid parameter)."""
        if not Dispatcher._maybe_delivered(row):
            return False
        if row.kind == "update_card":
            return exc.errcode == RESPONSE_CODE_SPENT
        return row.kind == "message" and row.payload.get("msgtype") == "template_card" and exc.errcode == TASK_ID_USED

    async def _call(self, row: OutboxMessage) -> dict[str, Any]:
        payload = dict(row.payload)
        if row.kind == "message":
            return await self._api.send_message(message_request(row))
        if row.kind == "update_card":
            if payload.get("response_code") is None and "card_outbox_id" in payload:
                payload["response_code"] = await self._send_code(int(payload.pop("card_outbox_id")))
            return await self._api.update_template_card(payload)
        if row.kind == "appchat":
            return await self._api.appchat_send(payload)
        if row.kind == "webhook":
            name = row.recipient.split(":", 1)[1]
            key = self._webhook_keys.get(name)
            if key is None:
                raise WeComError(93000, f"no webhook key configured for {name}", transient=False)
            return await self._api.webhook_send(key, payload)
        if row.kind == "robot_response":
            return await self._api.robot_response(payload["url"], payload["body"])
        if row.kind == "groupmsg":
            if row.attempts > 1 and outcome_unknown(row.errcode):
                found = await self._mass_send_made_earlier(row)
                if found is not None:
                    return found
            return await self._api.externalcontact("add_msg_template", payload)
        if row.kind in EXTERNAL_KINDS:
            return await self._api.externalcontact(EXTERNAL_KINDS[row.kind], payload)
        if row.kind == "media_fetch":
            return await self._fetch_media(row)
        if row.kind in MEDIA_KINDS:
            return await self._send_media(row)
        raise WeComError(-10, f"unknown outbox kind {row.kind}", transient=False)

    async def _fetch_media(self, row: OutboxMessage) -> dict[str, Any]:
        """Download a member's photo or file (media/get) into its `media_files` row.

        A permanent refusal (40007: the 3 days are over, or an id WeCom never gave) marks the row
        failed here, so a workflow never waits for it; a configuration error pauses instead.
        """
        media_file = int(row.payload["media_file"])
        try:
            got = await self._api.media_get(str(row.payload["media_id"]))
        except WeComError as exc:
            if not exc.transient and cause_of(exc.errcode, row.recipient, row.kind, self._pauses.members) is None:
                async with self._sessions() as s, s.begin():
                    await s.execute(
                        update(MediaFile)
                        .where(MediaFile.id == media_file, MediaFile.status == MediaStatus.PENDING)
                        .values(status=MediaStatus.FAILED, error=f"errcode {exc.errcode}: {exc.errmsg}"[:500])
                    )
            raise
        digest = hashlib.sha256(got.content).hexdigest()
        async with self._sessions() as s, s.begin():
            await s.execute(
                update(MediaFile)
                .where(MediaFile.id == media_file)
                .values(
                    status=MediaStatus.KEPT,
                    content=got.content,
                    sha256=digest,
                    size=len(got.content),
                    content_type=got.content_type[:100],
                    filename=case((MediaFile.filename == "", got.filename[:255]), else_=MediaFile.filename),
                    fetched_at=self._clock.now(),
                    error=None,
                )
            )
        return {"media_file": media_file, "size": len(got.content), "sha256": digest}

    async def _send_media(self, row: OutboxMessage) -> dict[str, Any]:
        """message/send of a kept file as an image or file message, uploading it first unless its
        last upload is recent. The request keeps the row's JSON (message_request) with the
        upload's media_id; retries reuse the cached upload, so they carry the same JSON."""
        media_file = int(row.payload["media_file"])
        async with self._sessions() as s:
            found = (
                await s.execute(
                    select(
                        MediaFile.status,
                        MediaFile.kind,
                        MediaFile.filename,
                        MediaFile.upload_media_id,
                        MediaFile.uploaded_at,
                    ).where(MediaFile.id == media_file)
                )
            ).one_or_none()
        if found is None or found.status != MediaStatus.KEPT:
            raise WeComError(-14, f"media file {media_file} is not kept", transient=False)
        media_id = found.upload_media_id
        now = self._clock.now()
        if media_id is None or found.uploaded_at is None or found.uploaded_at <= now - REUPLOAD_AFTER:
            async with self._sessions() as s:
                content = (await s.execute(select(MediaFile.content).where(MediaFile.id == media_file))).scalar_one()
            filename = found.filename or f"{media_file}.{'jpg' if found.kind == 'image' else 'bin'}"
            up = await self._api.media_upload(found.kind, filename, content or b"")
            media_id = str(up["media_id"])
            created = int(up.get("created_at") or 0)
            uploaded_at = datetime.fromtimestamp(created, UTC) if created else now
            async with self._sessions() as s, s.begin():
                await s.execute(
                    update(MediaFile)
                    .where(MediaFile.id == media_file)
                    .values(upload_media_id=media_id, uploaded_at=uploaded_at)
                )
            log(logger, logging.INFO, "media_uploaded", media_file=media_file, kind=found.kind)
        body = message_request(row)
        body.pop("media_file", None)
        body["msgtype"] = row.kind
        body[row.kind] = {"media_id": media_id}
        return await self._api.send_message(body)

    async def _mass_send_made_earlier(self, row: OutboxMessage) -> dict[str, Any] | None:
        """The task an earlier attempt created although its answer was lost, if WeCom lists one.

        add_msg_template has no duplicate check: calling it again would ask the owner to confirm
        the same message twice. WeCom's list of mass sends shows whether the first call got
        through (same sender, same text, created since the row was).
        """
        start = int(row.created_at.timestamp()) - 60
        body = {
            "chat_type": "group",
            "start_time": start,
            "end_time": max(start + 60, int(self._clock.now().timestamp()) + 60),
            "creator": row.payload.get("sender"),
            "filter_type": 0,
            "limit": 100,
        }
        listed = await self._api.externalcontact("get_groupmsg_list_v2", body)
        text = (row.payload.get("text") or {}).get("content")
        for m in listed.get("group_msg_list") or []:
            if m.get("creator") in (None, row.payload.get("sender")) and (m.get("text") or {}).get("content") == text:
                log(logger, logging.WARNING, "outbox_mass_send_recovered", id=row.id, msgid=m.get("msgid"))
                return {"msgid": m.get("msgid"), "fail_list": [], "recovered": True}
        return None

    async def _send_code(self, outbox_id: int) -> str:
        """The response_code WeCom returned when the card was sent (single use, 72 h)."""
        async with self._sessions() as s:
            sent = await s.get(OutboxMessage, outbox_id)
        if sent is not None and sent.status == OutboxStatus.PENDING:
            raise WeComError(-12, "card not sent yet", transient=True)
        code = (sent.result or {}).get("response_code") if sent is not None else None
        if not code:
            raise WeComError(-11, "the card has no response_code to update it with", transient=False)
        return str(code)

    @staticmethod
    def _maybe_delivered(row: OutboxMessage) -> bool:
        """Whether an earlier attempt may have delivered the row: its recorded errcode is an unknown
        outcome. That fact is sticky: a later attempt refused with a known error (-1, 45009, a
        pause) does not undo it, so its errcode is kept and a card's 42014 (or an update's 40058)
        on a still later attempt reads as delivered (_delivered_earlier)."""
        return row.attempts > 1 and outcome_unknown(row.errcode)

    async def _held(self, row: OutboxMessage, exc: WeComError, cause: str, holding: Sequence[DeliveryPause]) -> None:
        """A configuration error: the row stays pending (in its place) and the cause is paused."""
        now = self._clock.now()
        keep = self._maybe_delivered(row)  # see _maybe_delivered
        async with self._sessions() as s, s.begin():
            await s.execute(
                update(OutboxMessage)
                .where(and_(OutboxMessage.id == row.id, OutboxMessage.lease_owner == row.lease_owner))
                .values(
                    lease_until=None,
                    last_error=exc.errmsg[:500],
                    **({} if keep else {"errcode": exc.errcode}),
                )
            )
            for p in holding:  # e.g. 81013 after a 60020 pause: the app-wide checks passed
                if p.cause != cause and got_past(p.cause, exc.errcode):
                    await self._pauses.clear(s, p, now, row.id)
            await self._pauses.hold(s, cause, exc.errcode, exc.errmsg, now)
        log(
            logger,
            logging.INFO,
            "outbox_held",
            id=row.id,
            kind=row.kind,
            recipient=row.recipient,
            cause=cause,
            errcode=exc.errcode,
            attempts=row.attempts,
        )

    async def _failed(
        self,
        row: OutboxMessage,
        exc: WeComError,
        holding: Sequence[DeliveryPause] = (),
        probe: DeliveryPause | None = None,
    ) -> None:
        now = self._clock.now()
        if exc.transient:
            delay = backoff(row.attempts, self._cfg.max_backoff_seconds)
            if exc.errcode == FREQ_LIMITED and row.kind == "appchat":
                # The corp's person-message minute is full: this row retries when it frees room,
                # and every appchat row waits till then (_appchat_held).
                frees = await self._appchat_frees_at(now)
                self._appchat_held_until = max(self._appchat_held_until or now, frees)
                delay = (frees - now).total_seconds()
            elif exc.errcode == FREQ_LIMITED:
                delay = max(delay, 60.0)  # frequency blocks lift after a minute (doc 90312)
            values: dict[str, Any] = {"next_attempt_at": now + timedelta(seconds=delay), "errcode": exc.errcode}
            if self._maybe_delivered(row):
                del values["errcode"]  # the retry must still know the first may have got through
            level, event = logging.WARNING, "outbox_retry_later"
        else:
            values = {"status": OutboxStatus.FAILED, "errcode": exc.errcode}
            delay = 0.0
            level, event = logging.ERROR, "outbox_failed"
        async with self._sessions() as s, s.begin():
            await s.execute(
                update(OutboxMessage)
                .where(and_(OutboxMessage.id == row.id, OutboxMessage.lease_owner == row.lease_owner))
                .values(lease_until=None, last_error=exc.errmsg[:500], **values)
            )
            for p in holding:
                if got_past(p.cause, exc.errcode):
                    await self._pauses.clear(s, p, now, row.id)
                elif p is probe and not exc.transient:
                    await self._pauses.probe_again_now(s, p, now)  # the row's own fault shows nothing
            if not exc.transient:
                settled(s, row, now, False, exc.errcode)
        log(
            logger,
            level,
            event,
            id=row.id,
            kind=row.kind,
            recipient=row.recipient,
            errcode=exc.errcode,
            error=exc.errmsg,
            attempts=row.attempts,
            retry_in_s=round(delay, 1),
        )


async def outbox_health(s: AsyncSession, now: datetime) -> dict[str, Any]:
    """Backlog numbers and the latest permanent failures, for /healthz."""
    counts = dict((await s.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status))).all())
    oldest = (
        await s.execute(select(func.min(OutboxMessage.created_at)).where(OutboxMessage.status == OutboxStatus.PENDING))
    ).scalar()
    if isinstance(oldest, str):  # SQLite aggregate returns the raw text
        oldest = datetime.fromisoformat(oldest)
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    failures = (
        await s.execute(
            select(
                OutboxMessage.id,
                OutboxMessage.recipient,
                OutboxMessage.kind,
                OutboxMessage.errcode,
                OutboxMessage.last_error,
            )
            .where(OutboxMessage.status == OutboxStatus.FAILED)
            .order_by(OutboxMessage.id.desc())
            .limit(10)
        )
    ).all()
    return {
        "pending": counts.get(OutboxStatus.PENDING, 0),
        "sent": counts.get(OutboxStatus.SENT, 0),
        "failed": counts.get(OutboxStatus.FAILED, 0),
        "oldest_pending_age_s": round((now - oldest).total_seconds(), 1) if oldest else None,
        "recent_failures": [
            {"id": f.id, "recipient": f.recipient, "kind": f.kind, "errcode": f.errcode, "error": f.last_error}
            for f in failures
        ],
    }


async def purge_sent(sessions: async_sessionmaker[AsyncSession], now: datetime, keep_days: int) -> int:
    """Delete rows WeCom acknowledged more than `keep_days` ago (pending and failed rows stay)."""
    async with sessions() as s, s.begin():
        res = await s.execute(
            delete(OutboxMessage).where(
                OutboxMessage.status == OutboxStatus.SENT, OutboxMessage.sent_at < now - timedelta(days=keep_days)
            )
        )
    return int(getattr(res, "rowcount", 0) or 0)


# -- the operator's tools (`python -m bot outbox failed|resend`) --------------------------------
# Past these ages a row can never succeed: a card update's response_code lives 72 h (doc 94945),
# a smart robot's response_url 1 h (doc 101138).
EXPIRES_AFTER = {"update_card": timedelta(hours=71), "robot_response": timedelta(hours=1)}


@dataclass(frozen=True)
class Resent:
    """What `resend` did with one row."""

    id: int
    queued: bool
    note: str = ""


async def failed_rows(s: AsyncSession, limit: int | None = None) -> list[OutboxMessage]:
    """The failed rows, newest first."""
    q = select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.FAILED).order_by(OutboxMessage.id.desc())
    return list((await s.execute(q.limit(limit) if limit else q)).scalars())


def fresh_task_id(task_id: str) -> str:
    """The same card's next task_id: a task_id is single-use per app (42014 on a repeat)."""
    return f"{re.sub(r'_[0-9a-f]{12}$', '', task_id)[:100]}_{secrets.token_hex(6)}"


async def resend(s: AsyncSession, now: datetime, ids: Sequence[int] | None = None) -> list[Resent]:
    """Put failed rows (the given ids, or all) back in the queue with their attempts reset.

    An interactive card goes out under a fresh task_id (the old one may be used up: 42014), and
    its `cards` row moves with it so clicks on it are still recognised; a card the workflow has
    closed since, and a card update or robot reply whose code has expired, are not re-sent.
    """
    q = select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.FAILED)
    if ids is not None:
        q = q.where(OutboxMessage.id.in_(list(ids)))
    rows = list((await s.execute(q.order_by(OutboxMessage.id))).scalars())
    found = {r.id for r in rows}
    out: list[Resent] = []
    for missing in [i for i in dict.fromkeys(ids or ()) if i not in found]:
        status = (await s.execute(select(OutboxMessage.status).where(OutboxMessage.id == missing))).scalar()
        out.append(Resent(missing, False, f"is {status}, not failed" if status else "no such row"))
    for row in rows:
        payload = dict(row.payload)
        note = ""
        expiry = EXPIRES_AFTER.get(row.kind)
        if expiry is not None and now - row.created_at > expiry:
            out.append(Resent(row.id, False, f"{row.kind} older than {expiry}: its WeCom code has expired"))
            continue
        card_body = payload.get("template_card") if payload.get("msgtype") == "template_card" else None
        if row.kind == "message" and isinstance(card_body, dict) and card_body.get("task_id"):
            old = str(card_body["task_id"])
            card = await s.get(Card, old)
            if card is not None and not card.active:
                out.append(Resent(row.id, False, f"card {old} was closed since (its request moved on)"))
                continue
            new = fresh_task_id(old)
            payload["template_card"] = {**card_body, "task_id": new}
            if card is not None:
                await s.execute(update(Card).where(Card.task_id == old).values(task_id=new))
            note = f"card re-sent as task_id {new}"
        await s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row.id, OutboxMessage.status == OutboxStatus.FAILED)
            .values(
                status=OutboxStatus.PENDING,
                payload=payload,
                attempts=0,
                # Due at once on any process's clock (the operator's host may run behind the bot's).
                next_attempt_at=OutboxMessage.created_at,
                lease_until=None,
                lease_owner=None,
                attempted_at=None,
                errcode=None,
                last_error=None,
            )
            .execution_options(synchronize_session=False)
        )
        out.append(Resent(row.id, True, note))
    log(logger, logging.INFO, "outbox_resent", ids=[r.id for r in out if r.queued])
    return sorted(out, key=lambda r: r.id)
