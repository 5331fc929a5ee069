"""借舞台 — stage/venue bookings (W2, register 舞台设备使用登记表).

Every booking needs the director; outdoor use also the supervising VP; equipment leaving the
school also the principal. Pending and approved bookings hold their slot: a clash is answered
with the clashing booking and the three nearest free slots; the requester may still insist, and
then the director decides (the card shows the competitor). Two overlapping bookings can never
both end approved: every check and write for a venue happens under that venue's row lock.
A weekly rehearsal is one request with a series of occurrences (handlers/stage_series.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.cardkeys import CardAction
from bot.cards import Button
from bot.config_workflows import Venue
from bot.context import Ctx
from bot.conversation import start_form
from bot.router import Field, FieldError, Router
from bot.timeparse import WEEKDAYS, TimeParseError, find_date, local_now, parse_date, parse_span
from handlers.approval_commands import parse_required, visible_request
from handlers.approval_engine import SYSTEM, Action, Decision, FlowStatus
from handlers.approvals import (
    WorkflowSpec,
    audit,
    close_request_cards,
    decide,
    flow_of,
    request_of,
    send_request_cards,
    submit,
)
from handlers.faults import open_ticket
from handlers.labels import Labels, show_day, show_iso_day, show_span
from handlers.numbers import REQUEST_NUMBER as NUMBER
from storage.models import Booking, BookingCondition, Card, Request, Timer, VenueLock

router = Router("stage", templates=Path(__file__).with_name("templates") / "stage")
for _key, _label in (
    ("stage", "借舞台"),
    ("stage_outdoor", "借舞台 (户外)"),
    ("stage_offsite", "借舞台 (校外)"),
    ("stage_outdoor_offsite", "借舞台 (户外且校外)"),
):
    router.requires_chain(_key, _label)


class StageButton(StrEnum):
    CHECKED = "check"  # 重大活动: the technician has checked the equipment
    CONDITION_OK = "ok"  # after the event: the equipment ran normally
    CONDITION_BAD = "bad"  # … it did not (asks what went wrong, opens a ticket)
    CONDITION_DAMAGED = "damaged"  # … someone damaged it (as bad, and the liable party is to be recorded)


@dataclass(frozen=True)
class StageClick(CardAction, prefix="sg", subject="request"):
    request: int
    button: StageButton


class YesNo(StrEnum):
    """A 是/否 answer (户外, 校外, 重大活动, 仍要申请) as the form and `requests.fields` keep it."""

    YES = "yes"
    NO = "no"


class BookingStage(StrEnum):
    """`requests.stage` of a booking."""

    HELD = "held"  # pending: the slot is held for it
    BOOKED = "booked"  # approved
    CANCELLED = "cancelled"  # approved, then given back by the requester
    DONE = "done"  # the equipment's condition was reported after the event


LABELS = Labels("labels_stage", yes_no=YesNo, condition=BookingCondition, stage=BookingStage)

YES = ("是", "要", "需要", "对", "有", "yes", "y", "true", "户外", "校外")
NO = ("否", "不", "没有", "无", "no", "n", "false")
NORMAL_WORDS = ("正常", "好", "ok", "OK", "没问题", "normal")
ABNORMAL_WORDS = ("异常", "有问题", "坏", "bad", "abnormal")
DAMAGED_WORDS = ("人为损坏", "损坏", "弄坏", "摔坏", "damaged")


def parse_yes_no(value: str, ctx: Ctx) -> YesNo:
    low = value.strip().lower()
    if any(low.startswith(w) for w in NO):
        return YesNo.NO
    if any(low.startswith(w) for w in YES):
        return YesNo.YES
    raise FieldError("invalid_yes_no")


def condition_name(ctx: Ctx, value: str) -> str:
    return LABELS.name(ctx, "condition", value)


def find_venue(ctx: Ctx, text: str) -> Venue | None:
    text = text.strip()
    for v in ctx.config.venues:
        if text in (v.key, v.name):
            return v
    partial = [v for v in ctx.config.venues if text and (text in v.name or v.name in text)]
    if len(partial) > 1 and ctx.person is not None:  # '礼堂' → the one on my campus
        partial = [v for v in partial if v.campus == ctx.person.campus] or partial
    return partial[0] if len(partial) == 1 else None


def parse_venue(value: str, ctx: Ctx) -> str:
    venue = find_venue(ctx, value)
    if venue is None:
        raise FieldError("invalid_venue", choices=[v.name for v in ctx.config.venues])
    return venue.key


def _now_local(ctx: Ctx) -> datetime:
    return local_now(ctx.now(), ctx.config.scheduler.timezone)


def parse_day(value: str, ctx: Ctx) -> str:
    try:
        d = parse_date(value, _now_local(ctx).date(), prefer="future")
    except TimeParseError:
        raise FieldError("invalid_date") from None
    if d < _now_local(ctx).date():
        raise FieldError("invalid_past")
    return d.isoformat()


def parse_time(value: str, ctx: Ctx) -> str:
    """'14:00-16:00' (or with a date inside: '2026-12-01 14:00-16:00')."""
    now = _now_local(ctx)
    try:
        start, end = parse_span(value, now, prefer="future")
    except TimeParseError as exc:
        raise FieldError(f"invalid_time_{exc.code}") from None
    has_date = find_date(value, now.date(), prefer="future") is not None
    span = f"{start:%H:%M}-{end:%H:%M}"
    return f"{start:%Y-%m-%d} {span}" if has_date else span


def show_time(value: str, ctx: Ctx) -> str:
    """A parsed 时间 read back: 14:00-16:00, or with its date: 12月1日（周二）14:00-16:00."""
    if not re.match(r"\d{4}-\d{2}-\d{2} ", value):
        return value
    tz = ZoneInfo(ctx.config.scheduler.timezone)
    start = datetime.strptime(value[:16], "%Y-%m-%d %H:%M").replace(tzinfo=tz)
    end = datetime.strptime(f"{value[:10]} {value[-5:]}", "%Y-%m-%d %H:%M").replace(tzinfo=tz)
    return show_span(ctx, start, end)


# 时间:每周二 16:00-17:30 至 2026-12-29 / 每週二 … 共8次 / weekly tue 16:00-17:30 x8
WEEKLY_RE = re.compile(
    r"^\s*(?:每周|每週|每星期|每礼拜|每禮拜|weekly|every)\s*(?:on\s*)?"
    r"(?P<day>mon|tue|wed|thu|fri|sat|sun|[一二三四五六日天1-7])[a-z]*\s*(?P<rest>.*)$",
    re.IGNORECASE,
)
COUNT_RE = re.compile(
    r"(?:(?:共|一共|总共|總共)\s*)?(?P<n>\d{1,3})\s*(?:次|周|週|times|weeks)\s*$|[x×]\s*(?P<x>\d{1,3})\s*$",
    re.IGNORECASE,
)
UNTIL_RE = re.compile(r"(?:至|到|直到|截至|截止|until|till)\s*(?P<until>[^\s至到]+)\s*$", re.IGNORECASE)
EN_DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
SERIES = "weekly "  # how a parsed weekly 时间 starts: 'weekly 2026-12-01 16:00-17:30 x5'


def parse_booking_day(value: str, ctx: Ctx) -> str:
    """日期 of a booking; 每周二 there belongs in 时间 (else it would silently book one Tuesday)."""
    if WEEKLY_RE.match(value):
        raise FieldError("invalid_date_weekly")
    return parse_day(value, ctx)


def is_series(values: dict[str, str]) -> bool:
    return values.get("time", "").startswith(SERIES)


def parse_when(value: str, ctx: Ctx) -> str:
    """A 时间 (see parse_time), or a weekly one with an end date or a count (每周二 16:00-17:30 共8次)."""
    m = WEEKLY_RE.match(value)
    if m is None:
        return parse_time(value, ctx)
    day = m["day"].lower()
    weekday = EN_DAYS[day] if day in EN_DAYS else WEEKDAYS[day]
    rest = m["rest"].strip(" ,，;；")
    now = _now_local(ctx)
    until = None
    if (c := COUNT_RE.search(rest)) is not None:
        count = int(c["n"] or c["x"])
        rest = rest[: c.start()]
    elif (u := UNTIL_RE.search(rest)) is not None:
        try:
            until = parse_date(u["until"], now.date(), prefer="future")
        except TimeParseError:
            raise FieldError("invalid_series_end") from None
        rest = rest[: u.start()]
    else:
        raise FieldError("invalid_series_end")
    try:
        start, end = parse_span(rest.strip(" ,，"), now, prefer="future")
    except TimeParseError as exc:
        raise FieldError(f"invalid_time_{exc.code}") from None
    first = now.date() + timedelta(days=(weekday - now.weekday()) % 7)
    if first == now.date() and start.time() <= now.time():
        first += timedelta(days=7)  # today's has begun: the series starts next week
    if until is not None:
        count = (until - first).days // 7 + 1
    cap = ctx.config.stage.series_max
    if count < 2:
        raise FieldError("invalid_series_short")
    if count > cap:
        raise FieldError("invalid_series_long", max=cap)
    return f"{SERIES}{first:%Y-%m-%d} {start:%H:%M}-{end:%H:%M} x{count}"


def show_when(value: str, ctx: Ctx) -> str:
    """A parsed 时间 read back; a weekly one: 每周二 16:00-17:30，12月1日（周二）起共5次."""
    if not value.startswith(SERIES):
        return show_time(value, ctx)
    _, day, span, n = value.split()
    first = datetime.strptime(day, "%Y-%m-%d").date()
    last = first + timedelta(weeks=int(n[1:]) - 1)
    return LABELS(
        ctx,
        "series_rule",
        weekday=first.weekday(),
        span=span,
        count=int(n[1:]),
        first=show_day(ctx, first),
        last=show_day(ctx, last),
    )


def occurrences(ctx: Ctx, values: dict[str, str]) -> list[tuple[datetime, datetime]]:
    """Every (start, end) the 时间 names: one, or a weekly series (wall-clock times each week)."""
    t = values["time"]
    if not t.startswith(SERIES):
        return [_span(ctx, values)]
    _, day, span, n = t.split()
    start, end = _span(ctx, {"time": f"{day} {span}"})
    return [(start + timedelta(weeks=k), end + timedelta(weeks=k)) for k in range(int(n[1:]))]


def _span(ctx: Ctx, values: dict[str, str]) -> tuple[datetime, datetime]:
    tz = ZoneInfo(ctx.config.scheduler.timezone)
    t = values["time"]
    if t.startswith(SERIES):
        return occurrences(ctx, values)[0]
    day = t[:10] if re.match(r"\d{4}-\d{2}-\d{2} ", t) else values["date"]
    hhmm = t[-11:]
    start = datetime.strptime(f"{day} {hhmm[:5]}", "%Y-%m-%d %H:%M").replace(tzinfo=tz)
    end = datetime.strptime(f"{day} {hhmm[6:]}", "%Y-%m-%d %H:%M").replace(tzinfo=tz)
    return start, end


async def lock_venue(ctx: Ctx, venue: str) -> None:
    """Take the venue's row lock for the rest of the transaction (created on first use)."""
    dialect = ctx.session.bind.dialect.name  # type: ignore[union-attr]
    ins = pg_insert(VenueLock) if dialect == "postgresql" else sqlite_insert(VenueLock)
    await ctx.session.execute(ins.values(venue=venue).on_conflict_do_nothing(index_elements=["venue"]))
    await ctx.session.execute(select(VenueLock).where(VenueLock.venue == venue).with_for_update())


async def holding(ctx: Ctx, venue: str, start: datetime, end: datetime, exclude: int | None = None) -> list[Booking]:
    """Bookings of the venue that hold an overlapping slot (pending or approved, not cancelled),
    and the later occurrences a pending weekly request holds (unsaved Booking objects)."""
    q = (
        select(Booking)
        .where(Booking.venue == venue, Booking.holds.is_(True), Booking.start_at < end, Booking.end_at > start)
        .order_by(Booking.start_at)
    )
    rows = list((await ctx.session.execute(q)).scalars())
    rows += await stage_series.pending_holds(ctx, venue, start, end)
    return sorted((b for b in rows if b.id is None or b.id != exclude), key=lambda b: b.start_at)


async def free_slots(
    ctx: Ctx, venue: str, start: datetime, end: datetime, count: int = 3
) -> list[tuple[datetime, datetime]]:
    """The `count` free slots of the same length nearest to the asked start (30-minute grid)."""
    length = end - start
    cfg = ctx.config.stage
    now = _now_local(ctx)
    horizon = (start - timedelta(days=7), start + timedelta(days=7))
    taken: list[tuple[datetime, datetime]] = [
        (s, e)
        for s, e in (
            await ctx.session.execute(
                select(Booking.start_at, Booking.end_at).where(
                    Booking.venue == venue,
                    Booking.holds.is_(True),
                    Booking.end_at > horizon[0],
                    Booking.start_at < horizon[1] + length,
                )
            )
        ).all()
    ]
    held = await stage_series.pending_holds(ctx, venue, horizon[0], horizon[1] + length)
    taken += [(b.start_at, b.end_at) for b in held]
    found: list[tuple[datetime, datetime]] = []
    for k in range(1, 7 * 48):
        for sign in (-1, 1):
            s = start + sign * k * timedelta(minutes=30)
            e = s + length
            local_s = s.astimezone(start.tzinfo)
            local_e = e.astimezone(start.tzinfo)
            if (
                s < now
                or local_s.hour < cfg.open_hour
                or local_e.date() != local_s.date()
                or (local_e.hour, local_e.minute) > (cfg.close_hour, 0)
            ):
                continue
            if any(ts < e and te > s for ts, te in taken):
                continue
            found.append((local_s, local_e))
            if len(found) == count:
                return sorted(found)
    return sorted(found)


def _chain(values: dict[str, str]) -> str:
    outdoor, offsite = values["outdoor"] == YesNo.YES, values["offsite"] == YesNo.YES
    return {
        (False, False): "stage",
        (True, False): "stage_outdoor",
        (False, True): "stage_offsite",
        (True, True): "stage_outdoor_offsite",
    }[(outdoor, offsite)]


def _slot_text(ctx: Ctx, s: datetime, e: datetime) -> str:
    return show_span(ctx, s, e)


async def check_booking(ctx: Ctx, values: dict[str, str]) -> tuple[str, str, dict[str, Any]] | None:
    """Before submitting: the slot must be in the future, and free unless the requester insists;
    a weekly series is shown whole, clashes marked, before the requester confirms it."""
    if is_series(values):
        return await stage_series.check(ctx, values)
    start, end = _span(ctx, values)
    if start <= _now_local(ctx):
        return ("time", "invalid_past", {})
    await lock_venue(ctx, values["venue"])
    clashes = await holding(ctx, values["venue"], start, end)
    if clashes and values.get("insist") != YesNo.YES:
        first = clashes[0]
        req = await ctx.session.get(Request, first.request_id)
        unit = ctx.org.unit_of(req.requester) if req else None
        slots = await free_slots(ctx, values["venue"], start, end)
        return (
            "insist",
            "clash",
            {
                "number": first.request_id,
                "activity": first.activity,
                "unit": unit.name if unit else "",
                "slot": _slot_text(ctx, first.start_at.astimezone(start.tzinfo), first.end_at.astimezone(start.tzinfo)),
                "status": req.status if req else "",
                "free": [_slot_text(ctx, s, e) for s, e in slots],
            },
        )
    return None


def venue_name(ctx: Ctx, key: str) -> str:
    return next((v.name for v in ctx.config.venues if v.key == key), key)


async def _booking(ctx: Ctx, req: Request) -> Booking:
    return (await ctx.session.execute(select(Booking).where(Booking.request_id == req.id))).scalar_one()


def facts(ctx: Ctx, req: Request) -> list[tuple[str, str]]:
    f = req.fields
    flags = LABELS(ctx, "flags", **{key: f.get(key) == YesNo.YES for key in ("outdoor", "offsite", "major")})
    rows = [
        (LABELS(ctx, "row_venue"), venue_name(ctx, f["venue"])),
        (LABELS(ctx, "row_time"), f["slot"]),
        (LABELS(ctx, "row_activity"), f["activity"]),
        (LABELS(ctx, "row_flags"), flags),
    ]
    if f.get("series"):
        rows.append((LABELS(ctx, "row_series"), stage_series.summary(ctx, req)))
    competing = f.get("competing")
    if competing:
        rows.append((LABELS(ctx, "row_competing"), competing))
    return rows


async def _competitors(ctx: Ctx, booking: Booking) -> list[Booking]:
    return await holding(ctx, booking.venue, booking.start_at, booking.end_at, exclude=booking.id)


async def guard(ctx: Ctx, req: Request) -> str | None:
    """No final approval while an approved booking holds an overlapping slot."""
    booking = await _booking(ctx, req)
    await lock_venue(ctx, booking.venue)
    for other in await _competitors(ctx, booking):
        other_req = await ctx.session.get(Request, other.request_id)
        if other_req is not None and other_req.status == FlowStatus.APPROVED:
            return "stage_slot_taken"
    return None


async def on_approved(ctx: Ctx, req: Request) -> None:
    """Approved: close the competitors, schedule the 重大活动 check and the condition question;
    a weekly request books its other occurrences (each a request of its own) first."""
    booking = await _booking(ctx, req)
    if req.fields.get("series"):
        await stage_series.approved(ctx, req, booking)
    await booked(ctx, req, booking)


async def booked(ctx: Ctx, req: Request, booking: Booking, claim_cards: bool = True) -> None:
    """One approved booking: competitors closed, its timers, its technician on duty."""
    req.stage = BookingStage.BOOKED
    for other in await _competitors(ctx, booking):
        other_req = await ctx.session.get(Request, other.request_id)
        if other_req is not None and other_req.status == FlowStatus.PENDING and other.id is None:
            await stage_series.drop_hold(ctx, other_req, other, req.id)  # a later occurrence of a series
        elif other_req is not None and other_req.status == FlowStatus.PENDING:
            lost = ctx.render("stage_lost_reason", number=req.id)
            await decide(ctx, other_req, Decision(SYSTEM, Action.CLOSE, reason=lost))
    if booking.major:
        check_at = booking.start_at - timedelta(days=ctx.config.stage.check_days_before)
        if check_at <= ctx.now():
            await send_check_cards(ctx, req, booking)
        else:
            ctx.session.add(Timer(kind="stage_check", ref=str(booking.id), due_at=check_at, payload={}))
    ask_at = booking.end_at + timedelta(minutes=ctx.config.stage.condition_delay_minutes)
    ctx.session.add(Timer(kind="stage_condition", ref=str(booking.id), due_at=ask_at, payload={}))
    await stage_ops.open_crew(ctx, req, booking, claim_cards=claim_cards)


async def on_closed(ctx: Ctx, req: Request) -> None:
    booking = await _booking(ctx, req)
    booking.holds = False  # a rejected or withdrawn request frees its slot


def viewers(ctx: Ctx, req: Request) -> list[str]:
    return ctx.org.technicians("stage")


SPEC = router.approval(
    WorkflowSpec(
        key="stage",
        labels=LABELS,
        confidential=False,
        facts=facts,
        on_approved=on_approved,
        viewers=viewers,
        guard=guard,
        on_closed=on_closed,
    )
)


# The booking form; 借音响 asks the same without the venue (it is the kit).
BOOKING_FIELDS = (
    Field("venue", ("场地", "場地", "地点", "venue"), parse=parse_venue, show=lambda v, c: venue_name(c, v)),
    Field(
        "date",
        ("日期", "date"),
        parse=parse_booking_day,
        required_if=lambda v: not re.match(r"\d{4}-|weekly ", v.get("time", "")),
        show=lambda v, c: show_iso_day(c, v),
    ),
    Field("time", ("时间", "時間", "时段", "time"), parse=parse_when, show=show_when),
    Field("activity", ("活动", "活動", "事由", "activity"), parse=parse_required),
    Field("outdoor", ("户外", "戶外", "outdoor"), parse=parse_yes_no, show=LABELS.show("yes_no")),
    Field("offsite", ("校外", "外借", "offsite"), parse=parse_yes_no, show=LABELS.show("yes_no")),
    Field("major", ("重大活动", "重大活動", "major"), parse=parse_yes_no, show=LABELS.show("yes_no")),
    Field("insist", ("仍要申请", "坚持", "insist"), parse=parse_yes_no, required=False, show=LABELS.show("yes_no")),
    # A weekly series: asked after every occurrence was shown (是: book the free ones).
    Field("confirm", ("确认", "確認", "confirm"), parse=parse_yes_no, required=False, show=LABELS.show("yes_no")),
)


@router.command(
    "book_stage",
    aliases=("借舞台", "預約舞台", "预约舞台", "借礼堂", "借禮堂", "stage", "book"),
    fields=BOOKING_FIELDS,
    validate=check_booking,
    members_only=True,
)
async def book_stage(ctx: Ctx, values: dict[str, str]) -> None:
    """Book a stage or hall; the director approves (plus VP / principal for outdoor / off-campus)."""
    if values.get("insist") == YesNo.NO:
        ctx.reply("stage_not_insisting")
        return
    if is_series(values):
        await stage_series.book(ctx, values, _chain(values))
        return
    start, end = _span(ctx, values)
    await lock_venue(ctx, values["venue"])
    clashes = await holding(ctx, values["venue"], start, end)
    competing = LABELS(ctx, "competing", clashes=[{"number": b.request_id, "activity": b.activity} for b in clashes])
    fields = {k: values[k] for k in ("venue", "activity", "outdoor", "offsite", "major")}
    fields.update(slot=_slot_text(ctx, start, end), competing=competing)
    req = await submit(ctx, SPEC, _chain(values), fields, stage=BookingStage.HELD)
    booking = Booking(
        request_id=req.id,
        venue=values["venue"],
        start_at=start,
        end_at=end,
        activity=values["activity"],
        outdoor=values["outdoor"] == YesNo.YES,
        offsite=values["offsite"] == YesNo.YES,
        major=values["major"] == YesNo.YES,
        holds=True,
    )
    ctx.session.add(booking)
    flow = flow_of(req)
    ctx.reply(
        "stage_submitted",
        number=req.id,
        venue=venue_name(ctx, values["venue"]),
        slot=fields["slot"],
        chain=[ctx.render("role_name", role=s.role) for s in flow.steps],
        next=[ctx.org.name(u) for u in flow.pending_approvers()],
        competing=competing,
    )


def speaker_kit(ctx: Ctx) -> Venue | None:
    """The mobile speaker kit (移动音响), if the school configured one (`kind = "kit"`)."""
    return next((v for v in ctx.config.venues if v.kind == "kit"), None)


async def check_kit(ctx: Ctx, values: dict[str, str]) -> tuple[str, str, dict[str, Any]] | None:
    kit = speaker_kit(ctx)
    if kit is None:
        return None  # the handler says there is none
    values["venue"] = kit.key
    return await check_booking(ctx, values)


@router.command(
    "book_kit",
    aliases=("借音响", "借音響", "借移动音响", "借移動音響", "speaker kit", "book speaker"),
    fields=BOOKING_FIELDS[1:],
    validate=check_kit,
    members_only=True,
)
async def book_kit(ctx: Ctx, values: dict[str, str]) -> None:
    """Book the mobile speaker kit: the same approval and clash check as a venue."""
    kit = speaker_kit(ctx)
    if kit is None:
        ctx.reply("stage_no_kit")
        return
    await book_stage(ctx, {**values, "venue": kit.key})


SERIES_WORDS = ("全部", "整个系列", "系列", "所有", "都", "all", "series")


def parse_scope(value: str, ctx: Ctx) -> str:
    if value.strip().lower() not in SERIES_WORDS:
        raise FieldError("invalid_scope")
    return "all"


@router.command(
    "cancel_booking",
    aliases=("取消预约", "取消預約", "cancel booking"),
    positional=True,
    fields=(NUMBER, Field("scope", ("范围", "範圍", "scope"), parse=parse_scope, required=False)),
)
async def cancel_booking(ctx: Ctx, values: dict[str, str]) -> None:
    """取消预约 #编号 [全部] — give the slot back (pending requests are withdrawn); 全部: a weekly
    series from now on."""
    req = await visible_request(ctx, values["number"])
    if req is None:
        return
    if req.workflow != SPEC.key or req.requester != ctx.user:
        ctx.reply("stage_cancel_refused", number=req.id)
        return
    if values.get("scope"):
        await stage_series.cancel(ctx, req)
        return
    booking = await _booking(ctx, req)
    if req.status == FlowStatus.PENDING:
        await decide(ctx, req, Decision(ctx.user, Action.WITHDRAW))
        return
    if req.status != FlowStatus.APPROVED or not booking.holds or booking.start_at <= ctx.now():
        ctx.reply("stage_cancel_refused", number=req.id)
        return
    await give_back(ctx, req, booking)
    ctx.reply("stage_cancelled", number=req.id, slot=req.fields["slot"])
    for d in ctx.org.with_role("director"):
        ctx.tell(
            d,
            "stage_cancelled_director",
            number=req.id,
            name=ctx.org.name(ctx.user),
            slot=req.fields["slot"],
            venue=venue_name(ctx, booking.venue),
        )


async def give_back(ctx: Ctx, req: Request, booking: Booking) -> None:
    """An approved booking is cancelled before its start: the slot is free, the technician told."""
    booking.holds = False
    booking.cancelled_at = ctx.now()
    req.stage = BookingStage.CANCELLED
    audit(ctx, req, "booking_cancelled", req.status)
    await stage_ops.booking_cancelled(ctx, req, booking)


async def send_check_cards(ctx: Ctx, req: Request, booking: Booking) -> None:
    """重大活动: stage technicians (venue's campus first) get a checklist card to confirm."""
    campus = next((v.campus for v in ctx.config.venues if v.key == booking.venue), None)
    techs = ctx.org.technicians("stage", campus)
    local = [u for u in techs if (p := ctx.org.person(u)) is not None and p.campus == campus]
    block = ctx.renderer.block
    await send_request_cards(
        ctx,
        req,
        local or techs,
        title=block("cards_stage", "stage_check_title", number=req.id) or "",
        desc=block("cards_stage", "stage_check_desc") or "",
        rows=facts(ctx, req)[:4],
        buttons=[Button(block("cards_stage", "stage_check_button") or "", StageClick(req.id, StageButton.CHECKED))],
    )


async def ask_condition(ctx: Ctx, req: Request, booking: Booking) -> None:
    """After the event: the user reports 设备运转情况 (normal / abnormal)."""
    block = ctx.renderer.block
    await send_request_cards(
        ctx,
        req,
        [req.requester],
        title=block("cards_stage", "stage_condition_title", number=req.id) or "",
        desc=block("cards_stage", "stage_condition_desc", number=req.id, activity=booking.activity) or "",
        rows=[],
        purpose="condition",
        buttons=[
            Button(block("cards_stage", "stage_condition_ok") or "", StageClick(req.id, StageButton.CONDITION_OK)),
            Button(
                block("cards_stage", "stage_condition_bad") or "",
                StageClick(req.id, StageButton.CONDITION_BAD),
                style=2,
            ),
            Button(
                block("cards_stage", "stage_condition_damaged") or "",
                StageClick(req.id, StageButton.CONDITION_DAMAGED),
                style=2,
            ),
        ],
    )


@router.action(StageClick)
async def fulfil_click(ctx: Ctx, card: Card, click: StageClick) -> None:
    req = await request_of(ctx, card)
    if req is None:
        return
    booking = await _booking(ctx, req)
    if click.button is StageButton.CHECKED:
        if booking.checked_by:
            ctx.reply("stage_check_done_already", number=req.id, name=ctx.org.name(booking.checked_by))
            return
        booking.checked_by = ctx.user
        audit(ctx, req, "stage_checked", req.status)
        await close_request_cards(
            ctx,
            req,
            ctx.renderer.block("cards_stage", "stage_checked", name=ctx.org.name(ctx.user)) or "",
            purpose="fulfil",
        )
        ctx.reply("stage_check_saved", number=req.id)
        ctx.tell(req.requester, "stage_check_requester", number=req.id, name=ctx.org.name(ctx.user))
    elif click.button is StageButton.CONDITION_OK:
        await record_condition(ctx, req, booking, BookingCondition.NORMAL, "")
    else:
        state = BookingCondition.DAMAGED if click.button is StageButton.CONDITION_DAMAGED else BookingCondition.ABNORMAL
        await start_form(ctx, "stage_condition", {"number": str(req.id), "state": state})


async def record_condition(ctx: Ctx, req: Request, booking: Booking, state: BookingCondition, note: str) -> None:
    if booking.condition is not None:
        ctx.reply("stage_condition_already", number=req.id, state=condition_name(ctx, booking.condition))
        return
    booking.condition, booking.condition_note = state, note
    req.stage = BookingStage.DONE
    await close_request_cards(
        ctx,
        req,
        ctx.renderer.block("cards_stage", "stage_condition_recorded", state=condition_name(ctx, state)) or "",
        purpose="condition",
    )
    if state in (BookingCondition.ABNORMAL, BookingCondition.DAMAGED):
        damaged = state is BookingCondition.DAMAGED
        ticket = await open_ticket(
            ctx,
            venue_name(ctx, booking.venue),
            "stage",
            ctx.render("stage_fault_description", number=req.id, note=note, damaged=damaged),
            booking_id=booking.id,
        )
        ticket.damage = damaged  # 人为损坏: flagged for 追责 like a ticket completed as such
        booking.ticket_id = ticket.id
        ctx.reply("stage_condition_ticket", number=req.id, ticket=ticket.id)
        if damaged:
            crew = await stage_ops.crew_of(ctx, booking)
            told = [*ctx.org.with_role("director"), *([crew.technician] if crew and crew.technician else [])]
            for u in dict.fromkeys(told):
                ctx.tell(u, "stage_damage_reported", number=req.id, venue=venue_name(ctx, booking.venue), note=note)
    else:
        ctx.reply("stage_condition_ok", number=req.id)
    audit(ctx, req, "stage_condition", req.status, state=state, note=note)


@router.command(
    "stage_condition",
    aliases=("设备情况", "設備情況", "condition"),
    positional=True,
    fields=(
        NUMBER,
        Field("state", ("情况", "情況", "state"), parse=lambda v, c: _state(v), show=LABELS.show("condition")),
        Field(
            "note",
            ("说明", "說明", "note"),
            parse=parse_required,
            required_if=lambda v: v.get("state") in (BookingCondition.ABNORMAL, BookingCondition.DAMAGED),
        ),
    ),
)
async def stage_condition(ctx: Ctx, values: dict[str, str]) -> None:
    """设备情况 #编号 正常|异常 [说明] — after the event, how the equipment ran."""
    req = await visible_request(ctx, values["number"])
    if req is None:
        return
    if req.workflow != SPEC.key or req.requester != ctx.user or req.status != FlowStatus.APPROVED:
        ctx.reply("stage_cancel_refused", number=req.id)
        return
    booking = await _booking(ctx, req)
    await record_condition(ctx, req, booking, BookingCondition(values["state"]), values.get("note", ""))


def _state(value: str) -> BookingCondition:
    low = value.strip()
    if low.startswith(DAMAGED_WORDS):
        return BookingCondition.DAMAGED
    if low.startswith(NORMAL_WORDS):
        return BookingCondition.NORMAL
    if low.startswith(ABNORMAL_WORDS):
        return BookingCondition.ABNORMAL
    raise FieldError("invalid_state")


@router.timer("stage_check")
async def fire_check(ctx: Ctx, timer: Timer) -> None:
    booking = await ctx.session.get(Booking, int(timer.ref))
    if booking is None or not booking.holds or booking.checked_by:
        return
    req = await ctx.session.get(Request, booking.request_id)
    if req is not None and req.status == FlowStatus.APPROVED:
        await send_check_cards(ctx, req, booking)


@router.timer("stage_condition")
async def fire_condition(ctx: Ctx, timer: Timer) -> None:
    """After the event: the user reports how the equipment ran, the technician closes up."""
    booking = await ctx.session.get(Booking, int(timer.ref))
    if booking is None or not booking.holds:
        return
    req = await ctx.session.get(Request, booking.request_id)
    if req is None or req.status != FlowStatus.APPROVED:
        return
    if booking.condition is None:
        await ask_condition(ctx, req, booking)
    await stage_ops.send_closing_cards(ctx, req, booking)


# The operations after approval (technician on duty, closing checklist) register on this router;
# imported last, as they build on what is defined above.
from handlers import stage_damage, stage_ops, stage_series  # noqa: E402, F401
