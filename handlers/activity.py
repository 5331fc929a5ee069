"""活动服务 — photographing and filming activities (W9, register 活动服务登记表).

A unit asks the 微课视频编辑部 (role `video_editor`) to photograph or film an event or a visiting
delegation: what, where, when, 拍照/摄像, a contact. The bot assigns the member who is free then
(fewest services that day first): a member's assigned services never overlap. Nobody free → the
requester hears the nearest free slots and may take one, or insist: then the director gets a
card naming the team and assigns someone anyway (`指派 #n 姓名`). The assignee gets a card to
acknowledge, a reminder before the start ([activity] remind_minutes), and after the end is asked
where the material is archived (`交付 #n 存放:… 照片:… 视频:…`). Delivered records are listed in the
monthly archive task to 综合办公室 ([activity] archive_duty), each once.

A member's schedule is their assigned services and their stage duties: a member who is also a
stage technician on duty for an approved booking (handlers/stage_ops.py) is busy then too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bot.cardkeys import CardAction
from bot.cards import Button, close_cards, send_card
from bot.config_workflows import Duty
from bot.context import Ctx
from bot.conversation import start_form
from bot.router import Field, FieldError, Router
from bot.timeparse import local_now
from handlers.approval_commands import parse_required
from handlers.approval_engine import FlowStatus
from handlers.duties import task_feed
from handlers.labels import Labels, show_iso_day, show_span
from handlers.numbers import Kind, names_kind
from handlers.stage import YesNo, lock_venue, parse_day, parse_time, parse_yes_no, show_time
from storage.models import (
    ActivityBooking,
    ActivityService,
    ActivityStatus,
    Booking,
    Card,
    Request,
    StageCrew,
    Task,
    Timer,
)

router = Router("activity", templates=Path(__file__).with_name("templates") / "activity")
LABELS = Labels("labels_activity", service=ActivityService, status=ActivityStatus)

TEAM_ROLE = "video_editor"  # 微课视频编辑部
TEAM_LOCK = "activity:team"  # the venue_locks row that serialises assigning the team's time
HOLDING = (ActivityStatus.ASSIGNED, ActivityStatus.DELIVERED)  # what occupies the assignee's time
CARD_BUTTONS = 6  # at most six buttons on a card (doc 90236)

PHOTO_WORDS = ("拍照", "照相", "照片", "摄影", "相片", "photo", "picture")
VIDEO_WORDS = ("摄像", "录像", "视频", "录制", "拍视频", "video", "film")
BOTH_WORDS = ("都要", "都", "两者", "全部", "两样", "both", "all")


class ActivityButton(StrEnum):
    ACK = "ack"  # the assignee has seen the assignment
    DELIVER = "deliver"  # the assignee records where the material is (asks the 交付 form)
    ASSIGN = "assign"  # the director assigns `member`


@dataclass(frozen=True)
class ActivityClick(CardAction, prefix="act", subject="activity"):
    booking: int
    button: ActivityButton
    member: str  # the userid the director assigns; "-" on the other buttons


@router.example_context
def names(ctx: Ctx) -> dict[str, Any]:
    """The examples name a real member of the 微课视频编辑部."""
    members = team(ctx)
    return {"editor": ctx.org.name(members[0])} if members else {}


# -- parsing ----------------------------------------------------------------------------------
def parse_service(value: str, ctx: Ctx) -> str:
    low = value.strip().lower()
    photo = any(w in low for w in PHOTO_WORDS)
    video = any(w in low for w in VIDEO_WORDS)
    if (photo and video) or any(low.startswith(w) for w in BOTH_WORDS):
        return ActivityService.BOTH
    if photo:
        return ActivityService.PHOTO
    if video:
        return ActivityService.VIDEO
    raise FieldError("invalid_service")


def parse_phone(value: str, ctx: Ctx) -> str:
    digits = re.sub(r"[\s\-()（）]", "", value)
    if not re.fullmatch(r"\+?\d{3,15}", digits):
        raise FieldError("invalid_phone")
    return digits


def parse_count(value: str, ctx: Ctx) -> str:
    m = re.fullmatch(r"\s*(\d{1,6})\s*(张|張|段|个|個|条|條|部)?\s*", value)
    if m is None:
        raise FieldError("invalid_count")
    return m.group(1)


def parse_number(value: str, ctx: Ctx) -> str:
    m = re.fullmatch(r"\s*(?:活动服务|活动|activity)?\s*#?\s*h?\s*(\d{1,12})\s*", value, re.IGNORECASE)
    if m is None:
        raise FieldError("invalid_number")
    return m.group(1)


def take_number(text: str) -> tuple[str, str] | None:
    m = re.match(r"\s*(?:活动服务|活动)?\s*#?\s*[hH]?\s*\d{1,12}", text)
    if m is None or re.match(r"\w", text[m.end() :]):
        return None
    return text[: m.end()], text[m.end() :]


NUMBER = Field("number", ("编号", "編號", "number"), parse=parse_number, show=lambda v, c: f"#{v}", take=take_number)


def find_person(ctx: Ctx, value: str) -> str | None:
    text = value.strip().lstrip("@")
    if ctx.org.person(text) is not None:
        return text
    named = [p.userid for p in ctx.config.people if p.name == text]
    return named[0] if len(named) == 1 else None


def parse_member(value: str, ctx: Ctx) -> str:
    found = find_person(ctx, value)
    if found is None:
        raise FieldError("invalid_member", team=[ctx.org.name(u) for u in team(ctx)])
    return found


# -- time and the team's schedule ------------------------------------------------------------
def _tz(ctx: Ctx) -> ZoneInfo:
    return ZoneInfo(ctx.config.scheduler.timezone)


def _now_local(ctx: Ctx) -> datetime:
    return local_now(ctx.now(), ctx.config.scheduler.timezone)


def span_of(ctx: Ctx, values: dict[str, str]) -> tuple[datetime, datetime]:
    """The parsed 日期 + 时间 (or a 时间 with its own date) as aware local datetimes."""
    t = values["time"]
    day = t[:10] if re.match(r"\d{4}-\d{2}-\d{2} ", t) else values["date"]
    hhmm = t[-11:]
    start = datetime.strptime(f"{day} {hhmm[:5]}", "%Y-%m-%d %H:%M").replace(tzinfo=_tz(ctx))
    end = datetime.strptime(f"{day} {hhmm[6:]}", "%Y-%m-%d %H:%M").replace(tzinfo=_tz(ctx))
    return start, end


@dataclass(frozen=True)
class Engagement:
    """What occupies a member's time: an activity service (`activity`) or a stage duty (`stage`,
    numbered by the booking's request)."""

    kind: str
    number: int
    activity: str
    start_at: datetime
    end_at: datetime


def slot(ctx: Ctx, b: ActivityBooking | Engagement) -> str:
    return show_span(ctx, b.start_at.astimezone(_tz(ctx)), b.end_at.astimezone(_tz(ctx)))


def team(ctx: Ctx) -> list[str]:
    return ctx.org.with_role(TEAM_ROLE)


def _stage_duties(members: list[str], start: datetime, end: datetime) -> Any:
    """(technician, request number, activity, start, end) of approved bookings they are on duty for."""
    return (
        select(StageCrew.technician, Booking.request_id, Booking.activity, Booking.start_at, Booking.end_at)
        .join(Booking, Booking.id == StageCrew.booking_id)
        .join(Request, Request.id == Booking.request_id)
        .where(
            StageCrew.technician.in_(members),
            Booking.holds.is_(True),
            Request.status == FlowStatus.APPROVED,
            Booking.start_at < end,
            Booking.end_at > start,
        )
        .order_by(Booking.start_at)
    )


async def busy(ctx: Ctx, member: str, start: datetime, end: datetime, exclude: int | None = None) -> list[Engagement]:
    """The member's services and stage duties overlapping start..end."""
    q = (
        select(ActivityBooking)
        .where(
            ActivityBooking.assignee == member,
            ActivityBooking.status.in_(list(HOLDING)),
            ActivityBooking.start_at < end,
            ActivityBooking.end_at > start,
        )
        .order_by(ActivityBooking.start_at)
    )
    found = [
        Engagement("activity", b.id, b.activity, b.start_at, b.end_at)
        for b in (await ctx.session.execute(q)).scalars()
        if b.id != exclude
    ]
    stage = (await ctx.session.execute(_stage_duties([member], start, end))).all()
    found += [Engagement("stage", n, what, s, e) for _, n, what, s, e in stage]
    return sorted(found, key=lambda g: g.start_at)


async def free_members(ctx: Ctx, start: datetime, end: datetime) -> list[str]:
    """Team members free for start..end, the one with the fewest services that day first."""
    members = team(ctx)
    free = [m for m in members if not await busy(ctx, m, start, end)]
    day = start.astimezone(_tz(ctx)).replace(hour=0, minute=0, second=0, microsecond=0)
    q = (
        select(ActivityBooking.assignee, func.count())
        .where(
            ActivityBooking.status.in_(list(HOLDING)),
            ActivityBooking.start_at >= day,
            ActivityBooking.start_at < day + timedelta(days=1),
        )
        .group_by(ActivityBooking.assignee)
    )
    load = {u: n for u, n in (await ctx.session.execute(q)).all()}
    return sorted(free, key=lambda m: (load.get(m, 0), members.index(m)))


async def free_slots(ctx: Ctx, start: datetime, end: datetime, count: int = 3) -> list[tuple[datetime, datetime]]:
    """The `count` slots of the same length nearest to the asked one in which someone is free."""
    members = team(ctx)
    if not members:
        return []
    cfg = ctx.config.activity
    length = end - start
    now = _now_local(ctx)
    rows = (
        await ctx.session.execute(
            select(ActivityBooking.assignee, ActivityBooking.start_at, ActivityBooking.end_at).where(
                ActivityBooking.assignee.in_(members),
                ActivityBooking.status.in_(list(HOLDING)),
                ActivityBooking.end_at > start - timedelta(days=7),
                ActivityBooking.start_at < end + timedelta(days=7),
            )
        )
    ).all()
    duties = (
        await ctx.session.execute(_stage_duties(members, start - timedelta(days=7), end + timedelta(days=7)))
    ).all()
    taken: dict[str, list[tuple[datetime, datetime]]] = {m: [] for m in members}
    for who, s, e in [*rows, *((who, s, e) for who, _, _, s, e in duties)]:
        if who is not None:
            taken.setdefault(who, []).append((s, e))
    found: list[tuple[datetime, datetime]] = []
    for k in range(1, 7 * 48):
        for sign in (-1, 1):
            s = start + sign * k * timedelta(minutes=30)
            e = s + length
            ls, le = s.astimezone(start.tzinfo), e.astimezone(start.tzinfo)
            if (
                s < now
                or ls.hour < cfg.open_hour
                or le.date() != ls.date()
                or (le.hour, le.minute) > (cfg.close_hour, 0)
            ):
                continue
            if all(any(ts < e and te > s for ts, te in taken[m]) for m in members):
                continue
            found.append((ls, le))
            if len(found) == count:
                return sorted(found)
    return sorted(found)


# -- facts shown in texts and cards ------------------------------------------------------------
def _engaged(ctx: Ctx, g: Engagement) -> dict[str, Any]:
    return {"kind": g.kind, "number": g.number, "activity": g.activity, "slot": slot(ctx, g)}


def facts(ctx: Ctx, b: ActivityBooking) -> dict[str, Any]:
    return {
        "number": b.id,
        "activity": b.activity,
        "location": b.location,
        "slot": slot(ctx, b),
        "service": LABELS.name(ctx, "service", b.service),
        "contact": b.contact,
        "phone": b.phone,
        "unit": b.unit,
        "requester": ctx.org.name(b.requester),
        "assignee": ctx.org.name(b.assignee) if b.assignee else "",
        "status": LABELS.name(ctx, "status", b.status),
    }


def rows(ctx: Ctx, b: ActivityBooking) -> list[tuple[str, str]]:
    f = facts(ctx, b)
    return [
        (LABELS(ctx, "row_time"), f["slot"]),
        (LABELS(ctx, "row_location"), b.location),
        (LABELS(ctx, "row_service"), f["service"]),
        (LABELS(ctx, "row_unit"), b.unit or f["requester"]),
        (LABELS(ctx, "row_contact"), f"{b.contact} {b.phone}"),
    ]


# -- requesting ---------------------------------------------------------------------------------
async def check_request(ctx: Ctx, values: dict[str, str]) -> tuple[str, str, dict[str, Any]] | None:
    """Before storing: the time is in the future; someone is free, unless the requester insists."""
    start, end = span_of(ctx, values)
    if start <= _now_local(ctx):
        return ("time", "invalid_past", {})
    await lock_venue(ctx, TEAM_LOCK)
    if await free_members(ctx, start, end) or values.get("insist") == YesNo.YES:
        return None
    slots = await free_slots(ctx, start, end)
    busy_with = []
    for m in team(ctx):
        for b in await busy(ctx, m, start, end):
            busy_with.append({"name": ctx.org.name(m), **_engaged(ctx, b)})
    return (
        "insist",
        "clash",
        {
            "busy": busy_with,
            "free": [show_span(ctx, s, e) for s, e in slots],
            "times": [f"{s:%H:%M}-{e:%H:%M}" for s, e in slots],
        },
    )


@router.command(
    "request_activity",
    aliases=(
        "活动服务",
        "活動服務",
        "约拍摄",
        "約拍攝",
        "预约拍摄",
        "預約拍攝",
        "拍照摄像",
        "拍照攝像",
        "activity service",
        "photo service",
    ),
    fields=(
        Field("activity", ("活动", "活動", "事由", "activity"), parse=parse_required),
        Field("location", ("地点", "地點", "场地", "場地", "location", "where"), parse=parse_required),
        Field(
            "date",
            ("日期", "date"),
            parse=parse_day,
            required_if=lambda v: not re.match(r"\d{4}-", v.get("time", "")),
            show=lambda v, c: show_iso_day(c, v),
        ),
        Field("time", ("时间", "時間", "时段", "time"), parse=parse_time, show=show_time),
        Field(
            "service",
            ("类型", "類型", "服务类型", "拍摄", "type", "service"),
            parse=parse_service,
            show=LABELS.show("service"),
        ),
        Field("contact", ("联系人", "聯繫人", "联络人", "contact"), parse=parse_required),
        Field("phone", ("电话", "電話", "手机", "手機", "phone", "tel"), parse=parse_phone),
        Field("insist", ("仍要申请", "坚持", "insist"), parse=parse_yes_no, required=False),
    ),
    validate=check_request,
    members_only=True,
)
async def request_activity(ctx: Ctx, values: dict[str, str]) -> None:
    """Ask the 微课视频编辑部 to photograph or film an activity; a free member is assigned."""
    if values.get("insist") == YesNo.NO:
        ctx.reply("activity_not_insisting")
        return
    start, end = span_of(ctx, values)
    await lock_venue(ctx, TEAM_LOCK)
    unit = ctx.org.unit_of(ctx.user)
    booking = ActivityBooking(
        requester=ctx.user,
        unit=unit.name if unit else "",
        activity=values["activity"][:200],
        location=values["location"][:200],
        start_at=start,
        end_at=end,
        service=values["service"],
        contact=values["contact"][:100],
        phone=values["phone"],
        status=ActivityStatus.WAITING,
        delivery_place="",
        delivery_note="",
        created_at=ctx.now(),
    )
    ctx.session.add(booking)
    await ctx.session.flush()
    free = await free_members(ctx, start, end)
    if free:
        await assign(ctx, booking, free[0], by=None)
        ctx.reply("activity_submitted", **facts(ctx, booking))
        return
    ctx.reply("activity_waiting", **facts(ctx, booking))
    await ask_director(ctx, booking)


async def ask_director(ctx: Ctx, b: ActivityBooking) -> None:
    """Nobody is free: the director picks someone (a button per team member, or 指派 #n 姓名)."""
    block = ctx.renderer.block
    members = team(ctx)[:CARD_BUTTONS]
    busy_with = []
    for m in members:
        for other in await busy(ctx, m, b.start_at, b.end_at, exclude=b.id):
            busy_with.append({"name": ctx.org.name(m), **_engaged(ctx, other)})
    for d in ctx.org.with_role("director"):
        ctx.tell(d, "activity_director", busy=busy_with, team=[ctx.org.name(m) for m in members], **facts(ctx, b))
        await send_card(
            ctx,
            d,
            subject_id=b.id,
            purpose="decide",
            title=block("cards_activity", "decide_title", number=b.id) or "",
            desc=block("cards_activity", "decide_desc", activity=b.activity) or "",
            rows=rows(ctx, b),
            buttons=[Button(ctx.org.name(m), ActivityClick(b.id, ActivityButton.ASSIGN, m), style=2) for m in members],
        )


async def assign(ctx: Ctx, b: ActivityBooking, member: str, by: str | None) -> None:
    """Give the service to `member`: their card, the reminder before and the delivery question
    after (scheduled once; they read the current assignee when they fire)."""
    previous = b.assignee
    first = b.status == ActivityStatus.WAITING and previous is None
    b.assignee, b.assigned_by, b.assigned_at = member, by, ctx.now()
    b.status = ActivityStatus.ASSIGNED
    if previous and previous != member:
        await close_cards(
            ctx, "activity", b.id, ctx.renderer.block("cards_activity", "reassigned") or "", userids=[previous]
        )
        ctx.tell(previous, "activity_unassigned", name=ctx.org.name(member), **facts(ctx, b))
    block = ctx.renderer.block
    await send_card(
        ctx,
        member,
        subject_id=b.id,
        purpose="ack",
        title=block("cards_activity", "assigned_title", number=b.id, activity=b.activity) or "",
        desc=block("cards_activity", "assigned_desc", number=b.id, minutes=ctx.config.activity.remind_minutes) or "",
        rows=rows(ctx, b),
        buttons=[Button(block("cards_activity", "ack_button") or "", ActivityClick(b.id, ActivityButton.ACK, "-"))],
    )
    cfg = ctx.config.activity
    if not first:
        if ctx.now() >= b.end_at + timedelta(minutes=cfg.delivery_delay_minutes):
            await ask_delivery(ctx, b)  # reassigned after the question went out: the new assignee is asked
        return
    remind_at = b.start_at - timedelta(minutes=cfg.remind_minutes)
    if remind_at > ctx.now():
        ctx.session.add(Timer(kind="activity_remind", ref=str(b.id), due_at=remind_at, payload={}))
    ask_at = b.end_at + timedelta(minutes=cfg.delivery_delay_minutes)
    ctx.session.add(Timer(kind="activity_delivery", ref=str(b.id), due_at=ask_at, payload={}))


# -- the director assigns -------------------------------------------------------------------------
async def _booking(ctx: Ctx, number: str | int) -> ActivityBooking | None:
    q = select(ActivityBooking).where(ActivityBooking.id == int(number)).with_for_update()
    return (await ctx.session.execute(q)).scalar_one_or_none()


async def director_assigns(ctx: Ctx, number: str | int, member: str) -> None:
    await lock_venue(ctx, TEAM_LOCK)
    b = await _booking(ctx, number)
    if b is None:
        ctx.reply("activity_not_found", number=number)
        return
    if b.status in (ActivityStatus.DELIVERED, ActivityStatus.CANCELLED):
        ctx.reply("activity_closed", **facts(ctx, b))
        return
    if b.assignee == member:
        ctx.reply("activity_assigned_already", **facts(ctx, b))
        return
    clashes = await busy(ctx, member, b.start_at, b.end_at, exclude=b.id)
    await assign(ctx, b, member, by=ctx.user)
    name = ctx.org.name(member)
    await close_cards(
        ctx, "activity", b.id, ctx.renderer.block("cards_activity", "assigned_to", name=name) or "", purpose="decide"
    )
    clash = [_engaged(ctx, c) for c in clashes]
    ctx.reply("activity_assigned_director", clash=clash, **facts(ctx, b))
    if b.requester != ctx.user:
        ctx.tell(b.requester, "activity_assigned_requester", **facts(ctx, b))


@router.command(
    "assign_activity",
    aliases=("指派", "指派拍摄", "指派拍攝", "assign activity"),
    positional=True,
    # `指派 申请 #12 许强`: a stage booking's request number puts a stage technician on duty.
    redirect=lambda rest: "assign_stage" if names_kind(rest, Kind.REQUEST) else None,
    roles=("director",),
    fields=(NUMBER, Field("member", ("给", "給", "负责人", "負責人", "to"), parse=parse_member)),
)
async def assign_activity(ctx: Ctx, values: dict[str, str]) -> None:
    """指派 #编号 姓名 — the director assigns an activity service to someone, even if they are busy."""
    await director_assigns(ctx, values["number"], values["member"])


# -- the assignee ---------------------------------------------------------------------------------
@router.action(ActivityClick)
async def activity_click(ctx: Ctx, card: Card, click: ActivityClick) -> None:
    if click.button is ActivityButton.ASSIGN:
        if "director" not in (ctx.person.roles if ctx.person else ()) or find_person(ctx, click.member) is None:
            ctx.reply("card_unknown")
            return
        decided = await _booking(ctx, click.booking)
        if not card.active and decided is not None and decided.status == ActivityStatus.ASSIGNED:
            ctx.reply("activity_assigned_already", **facts(ctx, decided))  # a second click, or 指派 came first
            return
        await director_assigns(ctx, click.booking, click.member)
        return
    b = await _booking(ctx, click.booking)
    if b is None or b.assignee != ctx.user:
        ctx.reply("activity_not_yours", number=click.booking)
        return
    if click.button is ActivityButton.ACK:
        await close_cards(ctx, "activity", b.id, ctx.renderer.block("cards_activity", "acked") or "", purpose="ack")
        ctx.reply("activity_acked", **facts(ctx, b))
        if b.requester != ctx.user:
            ctx.tell(b.requester, "activity_acked_requester", **facts(ctx, b))
    elif b.status != ActivityStatus.ASSIGNED:
        ctx.reply("activity_closed", **facts(ctx, b))
    else:
        await start_form(ctx, "deliver_activity", {"number": str(b.id)})


async def check_delivery(ctx: Ctx, values: dict[str, str]) -> tuple[str, str, dict[str, Any]] | None:
    """The counts the service calls for: photos for 拍照, videos for 摄像."""
    b = await ctx.session.get(ActivityBooking, int(values["number"]))
    if b is None or b.assignee != ctx.user or b.status != ActivityStatus.ASSIGNED:
        return None  # the handler says why
    if b.service in (ActivityService.PHOTO, ActivityService.BOTH) and not values.get("photos"):
        return ("photos", "ask_photos", {"number": b.id})
    if b.service in (ActivityService.VIDEO, ActivityService.BOTH) and not values.get("videos"):
        return ("videos", "ask_videos", {"number": b.id})
    return None


@router.command(
    "deliver_activity",
    aliases=("交付", "交付素材", "素材交付", "deliver"),
    default_field="number",
    fields=(
        NUMBER,
        Field(
            "place", ("存放", "存放位置", "位置", "网盘", "網盤", "链接", "鏈接", "place", "link"), parse=parse_required
        ),
        Field("photos", ("照片", "照片数", "photos"), parse=parse_count, required=False),
        Field("videos", ("视频", "視頻", "视频数", "videos"), parse=parse_count, required=False),
        Field("note", ("备注", "備註", "说明", "說明", "note"), required=False),
    ),
    validate=check_delivery,
)
async def deliver_activity(ctx: Ctx, values: dict[str, str]) -> None:
    """交付 #编号 存放:位置或网盘链接 照片:张数 视频:段数 — where the material is archived."""
    b = await _booking(ctx, values["number"])
    if b is None:
        ctx.reply("activity_not_found", number=values["number"])
        return
    if b.assignee != ctx.user:
        ctx.reply("activity_not_yours", number=b.id)
        return
    if b.status != ActivityStatus.ASSIGNED:
        ctx.reply("activity_closed", **facts(ctx, b))
        return
    b.delivery_place = values["place"]
    b.photos = int(values["photos"]) if values.get("photos") else None
    b.videos = int(values["videos"]) if values.get("videos") else None
    b.delivery_note = values.get("note", "").strip()[:500]
    b.delivered_at = ctx.now()
    b.status = ActivityStatus.DELIVERED
    await close_cards(ctx, "activity", b.id, ctx.renderer.block("cards_activity", "delivered") or "")
    counts = {"photos": b.photos, "videos": b.videos, "place": b.delivery_place}
    ctx.reply("activity_delivered", **counts, **facts(ctx, b))
    if b.requester != ctx.user:
        ctx.tell(b.requester, "activity_delivered_requester", **counts, **facts(ctx, b))


@router.command(
    "cancel_activity",
    aliases=("取消活动服务", "取消活動服務", "取消拍摄", "取消拍攝", "cancel activity"),
    positional=True,
    fields=(NUMBER,),
)
async def cancel_activity(ctx: Ctx, values: dict[str, str]) -> None:
    """取消活动服务 #编号 — the requester no longer needs it (before the start)."""
    b = await _booking(ctx, values["number"])
    if b is None or b.requester != ctx.user:
        ctx.reply("activity_not_found", number=values["number"])
        return
    if b.status not in (ActivityStatus.WAITING, ActivityStatus.ASSIGNED) or b.start_at <= ctx.now():
        ctx.reply("activity_closed", **facts(ctx, b))
        return
    b.status = ActivityStatus.CANCELLED
    await close_cards(ctx, "activity", b.id, ctx.renderer.block("cards_activity", "cancelled") or "")
    ctx.reply("activity_cancelled", **facts(ctx, b))
    if b.assignee:
        ctx.tell(b.assignee, "activity_cancelled_assignee", **facts(ctx, b))


@router.command("activity_schedule", aliases=("活动安排", "活動安排", "拍摄安排", "拍攝安排", "activity schedule"))
async def activity_schedule(ctx: Ctx, values: dict[str, str]) -> None:
    """活动安排 — upcoming activity services: mine to do, mine requested (the director: all)."""
    director = ctx.person is not None and "director" in ctx.person.roles
    q = (
        select(ActivityBooking)
        .where(
            ActivityBooking.end_at > ctx.now(),
            ActivityBooking.status.in_([ActivityStatus.WAITING, ActivityStatus.ASSIGNED]),
        )
        .order_by(ActivityBooking.start_at)
    )
    found = [b for b in (await ctx.session.execute(q)).scalars() if director or ctx.user in (b.assignee, b.requester)]
    ctx.reply("activity_schedule", items=[facts(ctx, b) for b in found[:20]], more=max(0, len(found) - 20))


# -- 进度 and 我的任务 (handlers/find.py, handlers/duties.py) -------------------------------------
def may_see(ctx: Ctx, b: ActivityBooking) -> bool:
    """The requester, the assignee, the team and the director."""
    p = ctx.person
    return ctx.user in (b.requester, b.assignee) or (p is not None and bool({"director", TEAM_ROLE} & set(p.roles)))


def show_progress(ctx: Ctx, b: ActivityBooking) -> None:
    """进度 #H3: where a service stands."""
    awaiting = b.status == ActivityStatus.ASSIGNED and b.end_at <= ctx.now()
    ctx.reply("activity_progress", **facts(ctx, b), place=b.delivery_place, awaiting=awaiting)


async def work_of(ctx: Ctx, userid: str) -> list[str]:
    """我的任务: the services assigned to `userid` whose material is not delivered yet."""
    q = (
        select(ActivityBooking)
        .where(ActivityBooking.assignee == userid, ActivityBooking.status == ActivityStatus.ASSIGNED)
        .order_by(ActivityBooking.start_at)
    )
    return [
        LABELS(ctx, "work_line", **facts(ctx, b), overdue=b.end_at <= ctx.now())
        for b in (await ctx.session.execute(q)).scalars()
    ]


# -- timers -----------------------------------------------------------------------------------------
@router.timer("activity_remind")
async def fire_remind(ctx: Ctx, timer: Timer) -> None:
    b = await ctx.session.get(ActivityBooking, int(timer.ref))
    if b is None or b.status != ActivityStatus.ASSIGNED or not b.assignee or ctx.now() >= b.start_at:
        return  # the bot was down past the start: a reminder now would be stale
    ctx.tell(b.assignee, "activity_reminder", **facts(ctx, b))


@router.timer("activity_delivery")
async def fire_delivery(ctx: Ctx, timer: Timer) -> None:
    b = await ctx.session.get(ActivityBooking, int(timer.ref))
    if b is None or b.status != ActivityStatus.ASSIGNED or not b.assignee:
        return
    await ask_delivery(ctx, b)


async def ask_delivery(ctx: Ctx, b: ActivityBooking) -> None:
    """After the event: the assignee is asked where the material is (text and a card)."""
    assert b.assignee is not None
    photo, video = b.service != ActivityService.VIDEO, b.service != ActivityService.PHOTO
    ctx.tell(b.assignee, "activity_delivery_ask", photo=photo, video=video, **facts(ctx, b))
    block = ctx.renderer.block
    await send_card(
        ctx,
        b.assignee,
        subject_id=b.id,
        purpose="deliver",
        title=block("cards_activity", "deliver_title", number=b.id) or "",
        desc=block("cards_activity", "deliver_desc", activity=b.activity) or "",
        rows=rows(ctx, b)[:3],
        buttons=[
            Button(block("cards_activity", "deliver_button") or "", ActivityClick(b.id, ActivityButton.DELIVER, "-"))
        ],
    )


# -- the monthly archive to 综合办公室 ---------------------------------------------------------------
@task_feed
async def archive_listing(ctx: Ctx, duty: Duty, task: Task) -> list[str]:
    """The archive duty's task lists every delivered service not listed by an earlier archive."""
    if not ctx.config.activity.archive_duty or duty.key != ctx.config.activity.archive_duty:
        return []
    q = (
        select(ActivityBooking)
        .where(ActivityBooking.status == ActivityStatus.DELIVERED, ActivityBooking.archive_task_id.is_(None))
        .order_by(ActivityBooking.start_at, ActivityBooking.id)
    )
    lines = []
    for b in (await ctx.session.execute(q)).scalars():
        b.archive_task_id = task.id
        lines.append(
            LABELS(ctx, "archive_line", photos=b.photos, videos=b.videos, place=b.delivery_place, **facts(ctx, b))
        )
    return lines
