"""每周排练 — a weekly stage booking as one request (W2; issue 12 point 5).

`借舞台 … 时间:每周二 16:00-17:30 至 2026-12-29` (or `共8次`, `weekly tue 16:00-17:30 x8`) names a
series. Before anything is stored, every occurrence is checked for clashes under the venue lock and
all of them are shown, clashes marked; the requester books the free ones (是) or gives up (否).

One request carries the approval. Its own booking is the first free occurrence; while it is
pending, the others are held through `requests.fields["series"]` (`pending_holds`, which every
clash check of the venue reads). Approved, each later occurrence becomes a request and booking of
its own, approved by the same chain (`fields["series_of"]` names the first), so every occurrence
has the stage operations that exist: the technician on duty (claiming the first claims the rest),
the reminder before the start, the condition card, the closing checklist, and `取消预约 #n` for one
of them; `取消预约 #n 全部` cancels what is left of the series.

Why requests and not several bookings on one request: `bookings.request_id` is unique, and on
SQLite dropping that constraint rebuilds a table that tickets, stage_crews and stage_damages
reference (their RESTRICT keys refuse it, their SET NULL keys would be emptied).

Registered on the stage router (handlers/stage.py imports this module at its end).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.context import Ctx
from handlers.approval_engine import Action, Decision, FlowStatus
from handlers.approvals import audit, decide, flow_of, load_for_update, submit
from handlers.labels import show_day
from handlers.stage import (
    LABELS,
    SPEC,
    BookingStage,
    YesNo,
    _booking,
    _now_local,
    _slot_text,
    booked,
    give_back,
    holding,
    lock_venue,
    occurrences,
    show_when,
    venue_name,
)
from storage.models import Booking, Request

COPIED = ("venue", "activity", "outdoor", "offsite", "major")  # what each occurrence's request repeats


def _tz(ctx: Ctx) -> ZoneInfo:
    return ZoneInfo(ctx.config.scheduler.timezone)


def _slots(req: Request) -> list[tuple[datetime, datetime]]:
    return [(datetime.fromisoformat(s), datetime.fromisoformat(e)) for s, e in req.fields.get("series", [])]


def _text(ctx: Ctx, s: datetime, e: datetime) -> str:
    return _slot_text(ctx, s.astimezone(_tz(ctx)), e.astimezone(_tz(ctx)))


# -- holding the slots of a pending series ---------------------------------------------------------
async def pending_holds(ctx: Ctx, venue: str, start: datetime, end: datetime) -> list[Booking]:
    """The later occurrences pending weekly requests hold at the venue in start..end, as unsaved
    Booking objects (their request, activity and slot), for the clash checks."""
    q = select(Request).where(Request.workflow == SPEC.key, Request.status == FlowStatus.PENDING)
    found = []
    for r in (await ctx.session.execute(q)).scalars():
        if r.fields.get("venue") != venue:
            continue
        for s, e in _slots(r)[1:]:  # the first is the request's own booking row
            if s < end and e > start:
                found.append(
                    Booking(
                        request_id=r.id, venue=venue, start_at=s, end_at=e, activity=r.fields["activity"], holds=True
                    )
                )
    return found


async def drop_hold(ctx: Ctx, req: Request, hold: Booking, winner: int) -> None:
    """Another booking of that slot was approved: the pending series loses that occurrence only."""
    kept = [[s, e] for s, e in req.fields.get("series", []) if datetime.fromisoformat(s) != hold.start_at]
    lost = _text(ctx, hold.start_at, hold.end_at)
    req.fields = {**req.fields, "series": kept, "skipped": [*req.fields.get("skipped", []), lost]}
    audit(ctx, req, "series_slot_lost", req.status, slot=lost, to=winner)
    ctx.tell(req.requester, "stage_series_slot_lost", number=req.id, slot=lost, winner=winner)


# -- before submitting: every occurrence, clashes marked --------------------------------------------
async def _marked(ctx: Ctx, venue: str, slots: list[tuple[datetime, datetime]]) -> list[dict[str, Any]]:
    rows = []
    for s, e in slots:
        clash = None
        others = await holding(ctx, venue, s, e)
        if others:
            other = others[0]
            other_req = await ctx.session.get(Request, other.request_id)
            unit = ctx.org.unit_of(other_req.requester) if other_req else None
            clash = {
                "number": other.request_id,
                "activity": other.activity,
                "unit": unit.name if unit else "",
                "approved": other_req is not None and other_req.status == FlowStatus.APPROVED,
            }
        rows.append({"slot": _text(ctx, s, e), "start": s, "end": e, "clash": clash})
    return rows


async def check(ctx: Ctx, values: dict[str, str]) -> tuple[str, str, dict[str, Any]] | None:
    """Every occurrence shown, clashes marked, before the requester confirms (确认)."""
    slots = occurrences(ctx, values)
    if slots[0][0] <= _now_local(ctx):
        return ("time", "invalid_past", {})
    if values.get("confirm"):
        return None  # 是: the handler books what is free now; 否: nothing
    await lock_venue(ctx, values["venue"])
    rows = await _marked(ctx, values["venue"], slots)
    return (
        "confirm",
        "series_preview",
        {
            "rows": rows,
            "free": sum(1 for r in rows if r["clash"] is None),
            "venue": venue_name(ctx, values["venue"]),
            "rule": show_when(values["time"], ctx),
        },
    )


async def book(ctx: Ctx, values: dict[str, str], chain: str) -> None:
    """Confirmed: one request for the free occurrences (checked again under the lock)."""
    if values.get("confirm") == YesNo.NO:
        ctx.reply("stage_series_not_booked")
        return
    venue = values["venue"]
    await lock_venue(ctx, venue)
    now = ctx.now()
    rows = await _marked(ctx, venue, [(s, e) for s, e in occurrences(ctx, values) if s > now])
    free = [r for r in rows if r["clash"] is None]
    skipped = [r for r in rows if r["clash"] is not None]
    if not free:
        ctx.reply("stage_series_none_free", rows=rows)
        return
    first = free[0]
    fields: dict[str, Any] = {k: values[k] for k in COPIED}
    fields.update(
        slot=first["slot"],
        competing="",
        rule=show_when(values["time"], ctx),
        series=[[r["start"].astimezone(UTC).isoformat(), r["end"].astimezone(UTC).isoformat()] for r in free],
        skipped=[r["slot"] for r in skipped],
    )
    req = await submit(ctx, SPEC, chain, fields, stage=BookingStage.HELD)
    ctx.session.add(
        Booking(
            request_id=req.id,
            venue=venue,
            start_at=first["start"],
            end_at=first["end"],
            activity=values["activity"],
            outdoor=values["outdoor"] == YesNo.YES,
            offsite=values["offsite"] == YesNo.YES,
            major=values["major"] == YesNo.YES,
            holds=True,
        )
    )
    flow = flow_of(req)
    listing = {"slots": [r["slot"] for r in free], "skipped": skipped, "rule": fields["rule"]}
    ctx.reply(
        "stage_series_submitted",
        number=req.id,
        venue=venue_name(ctx, venue),
        chain=[ctx.render("role_name", role=s.role) for s in flow.steps],
        next=[ctx.org.name(u) for u in flow.pending_approvers()],
        **listing,
    )
    for u in flow.pending_approvers():  # the card has room for the rule only: the dates as a text
        ctx.tell(
            u,
            "stage_series_for_approver",
            number=req.id,
            name=ctx.org.name(ctx.user),
            venue=venue_name(ctx, venue),
            activity=values["activity"],
            **listing,
        )


def summary(ctx: Ctx, req: Request) -> str:
    """The card row of a weekly request: 每周二 共5次 (the first is the 时间 row)."""
    slots = _slots(req)
    weekday = slots[0][0].astimezone(_tz(ctx)).weekday() if slots else 0
    last = show_day(ctx, slots[-1][0].astimezone(_tz(ctx)).date()) if slots else ""
    return LABELS(
        ctx, "series_row", weekday=weekday, count=len(slots), last=last, skipped=len(req.fields.get("skipped", []))
    )


# -- approved: each later occurrence a request of its own ---------------------------------------------
async def approved(ctx: Ctx, req: Request, booking: Booking) -> None:
    """The series approved: each later occurrence still free becomes an approved request and
    booking (one already taken by an approved booking, or begun, is left out and named)."""
    await lock_venue(ctx, booking.venue)
    now = ctx.now()
    made: list[tuple[Request, Booking]] = []
    lost: list[str] = []
    listing = [{"number": req.id, "slot": req.fields["slot"]}]
    for s, e in _slots(req)[1:]:
        text = _text(ctx, s, e)
        taken = False
        for other in await holding(ctx, booking.venue, s, e):
            other_req = await ctx.session.get(Request, other.request_id)
            taken = taken or (other_req is not None and other_req.status == FlowStatus.APPROVED)
        if taken or s <= now:
            lost.append(text)
            continue
        child = Request(
            workflow=req.workflow,
            chain=req.chain,
            requester=req.requester,
            fields={**{k: req.fields[k] for k in COPIED}, "slot": text, "competing": "", "series_of": req.id},
            flow=dict(req.flow),
            status=FlowStatus.APPROVED,
            stage=BookingStage.BOOKED,
            confidential=False,
            created_at=now,
            updated_at=now,
            step_started_at=now,
        )
        ctx.session.add(child)
        await ctx.session.flush()
        audit(ctx, child, "series_occurrence", prev="", series_of=req.id)
        b = Booking(
            request_id=child.id,
            venue=booking.venue,
            start_at=s,
            end_at=e,
            activity=booking.activity,
            outdoor=booking.outdoor,
            offsite=booking.offsite,
            major=booking.major,
            holds=True,
        )
        ctx.session.add(b)
        await ctx.session.flush()
        made.append((child, b))
        listing.append({"number": child.id, "slot": text})
    req.fields = {**req.fields, "occurrences": [c.id for c, _ in made], "booked": listing, "lost": lost}
    for child, b in made:
        await booked(ctx, child, b, claim_cards=False)
    ctx.tell(req.requester, "stage_series_booked", number=req.id, items=listing, lost=lost)


# -- 取消预约 #n 全部 -----------------------------------------------------------------------------
async def cancel(ctx: Ctx, req: Request) -> None:
    """The whole series from now on: pending, the request is withdrawn; approved, every occurrence
    not begun yet is given back (one message to the requester and to the director)."""
    root_id = int(req.fields.get("series_of", req.id))
    root = req if root_id == req.id else await load_for_update(ctx, root_id)
    if root is None or not root.fields.get("series"):
        ctx.reply("stage_series_not_series", number=req.id)
        return
    if root.status == FlowStatus.PENDING:
        await decide(ctx, root, Decision(ctx.user, Action.WITHDRAW))
        return
    if root.status != FlowStatus.APPROVED:
        ctx.reply("stage_cancel_refused", number=root.id)
        return
    now = ctx.now()
    cancelled = []
    venue = root.fields["venue"]
    for number in [root.id, *root.fields.get("occurrences", [])]:
        r = root if number == root.id else await load_for_update(ctx, int(number))
        if r is None or r.status != FlowStatus.APPROVED:
            continue
        b = await _booking(ctx, r)
        if not b.holds or b.start_at <= now:
            continue
        await give_back(ctx, r, b)
        cancelled.append({"number": r.id, "slot": r.fields["slot"]})
    if not cancelled:
        ctx.reply("stage_series_nothing_left", number=root.id)
        return
    ctx.reply("stage_series_cancelled", number=root.id, items=cancelled)
    for d in ctx.org.with_role("director"):
        ctx.tell(
            d,
            "stage_series_cancelled_director",
            number=root.id,
            name=ctx.org.name(ctx.user),
            venue=venue_name(ctx, venue),
            items=cancelled,
        )
