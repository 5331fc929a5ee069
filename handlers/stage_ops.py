"""舞台 after approval: the technician on duty and the closing checklist (礼堂(舞台)设备管理制度 三).

Only 专业人员 operate the stage equipment, so an approved booking goes to the stage technicians as
a claim card, like a fault ticket: the first to 接单 is on duty for it (a conditional update), the
others' cards turn to "已由…接单". The technician is reminded `crew_reminder_minutes` before the
start to come early and prepare the equipment; still unclaimed `unclaimed_hours_before` the start,
the director is told, with a card to assign one (`指派舞台 #n 姓名`, also to reassign). After the
event the technician gets the closing checklist (话筒电池取出, 电源关闭, …) as a card, ticks each
item and confirms; what was not done is recorded, shown to them, told to the director and kept in
the register. `舞台检查 #n 1 2 3` does the same by text.

Registered on the stage router (handlers/stage.py imports this module at its end).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update

from bot.cardkeys import CardAction
from bot.cards import Button
from bot.context import Ctx
from bot.router import Field, FieldError
from bot.timeparse import local_now
from handlers.approval_commands import resolve_person
from handlers.approval_engine import FlowStatus
from handlers.approvals import audit, close_request_cards, send_request_cards
from handlers.duties import pick_items
from handlers.labels import show_moment, show_span
from handlers.numbers import REQUEST_NUMBER
from handlers.stage import _booking, router, venue_name
from storage.models import Booking, Card, Request, StageCrew, Timer

CARD_BUTTONS = 6  # a button_interaction card holds at most 6 buttons (doc 90236)
NONE_WORDS = ("无", "没有", "都没有", "一项都没", "none")


class CrewButton(StrEnum):
    CLAIM = "claim"  # 接单: on duty for this booking
    ITEM = "item"  # one closing-checklist item done; `item` is its index
    CONFIRM = "confirm"  # 确认收场: the checklist as ticked is final


@dataclass(frozen=True)
class CrewClick(CardAction, prefix="sc", subject="request"):
    request: int
    button: CrewButton
    item: int


@dataclass(frozen=True)
class AssignClick(CardAction, prefix="sa", subject="request"):
    """The director's escalation card: a button per stage technician."""

    request: int
    member: str


def _is_stage_technician(ctx: Ctx, userid: str | None = None) -> bool:
    p = ctx.person if userid is None else ctx.org.person(userid)
    return p is not None and "technician" in p.roles and "stage" in p.skills


def _campus(ctx: Ctx, booking: Booking) -> str | None:
    return next((v.campus for v in ctx.config.venues if v.key == booking.venue), None)


def _facts(ctx: Ctx, req: Request, booking: Booking) -> dict[str, Any]:
    tz = ctx.config.scheduler.timezone
    return {
        "number": req.id,
        "venue": venue_name(ctx, booking.venue),
        "slot": show_span(ctx, local_now(booking.start_at, tz), local_now(booking.end_at, tz)),
        "activity": booking.activity,
        "requester": ctx.org.name(req.requester),
    }


def _rows(ctx: Ctx, req: Request, booking: Booking) -> list[tuple[str, str]]:
    block = ctx.renderer.block
    f = _facts(ctx, req, booking)
    return [
        (block("cards_stage", "crew_row_venue") or "", f["venue"]),
        (block("cards_stage", "crew_row_time") or "", f["slot"]),
        (block("cards_stage", "crew_row_activity") or "", f["activity"]),
        (block("cards_stage", "crew_row_requester") or "", f["requester"]),
    ]


async def crew_of(ctx: Ctx, booking: Booking, lock: bool = False) -> StageCrew | None:
    q = select(StageCrew).where(StageCrew.booking_id == booking.id)
    return (await ctx.session.execute(q.with_for_update() if lock else q)).scalar_one_or_none()


def _live(req: Request | None, booking: Booking | None) -> bool:
    """Still going ahead: approved and not given back."""
    return req is not None and booking is not None and req.status == FlowStatus.APPROVED and booking.holds


# -- on duty --------------------------------------------------------------------------------------
async def open_crew(ctx: Ctx, req: Request, booking: Booking, claim_cards: bool = True) -> None:
    """Approved: the claim card to every stage technician, the reminder and the unclaimed check.
    A weekly series' later occurrences get no card of their own: claiming the first claims them."""
    now = ctx.now()
    cfg = ctx.config.stage
    ctx.session.add(
        StageCrew(
            booking_id=booking.id,
            checklist={"items": list(cfg.closing_checklist)},
            ticked={"ticked": {}},
            missed={},
            created_at=now,
        )
    )
    if claim_cards:
        await send_claim_cards(ctx, req, booking)
    remind_at = booking.start_at - timedelta(minutes=cfg.crew_reminder_minutes)
    if remind_at > now:
        ctx.session.add(Timer(kind="stage_crew_remind", ref=str(booking.id), due_at=remind_at, payload={}))
    # Approved later than the check would be: the technicians get half the time left to claim.
    unclaimed_at = booking.start_at - timedelta(hours=cfg.unclaimed_hours_before)
    if unclaimed_at <= now:
        unclaimed_at = now + (booking.start_at - now) / 2
    ctx.session.add(Timer(kind="stage_crew_unclaimed", ref=str(booking.id), due_at=unclaimed_at, payload={}))


async def send_claim_cards(ctx: Ctx, req: Request, booking: Booking) -> None:
    """Every stage technician, the venue's campus first: they are few, and the event is known
    ahead, so whoever is free that day takes it."""
    block = ctx.renderer.block
    techs = ctx.org.technicians("stage", _campus(ctx, booking))
    await send_request_cards(
        ctx,
        req,
        techs,
        title=block("cards_stage", "crew_claim_title", number=req.id) or "",
        desc=block(
            "cards_stage",
            "crew_claim_desc",
            minutes=ctx.config.stage.crew_reminder_minutes,
            series=len(req.fields.get("occurrences", [])),
        )
        or "",
        rows=_rows(ctx, req, booking),
        buttons=[Button(block("cards_stage", "crew_claim_button") or "", CrewClick(req.id, CrewButton.CLAIM, 0))],
        purpose="claim",
    )


async def claim(ctx: Ctx, req: Request, booking: Booking) -> None:
    """First claim wins: a conditional update, so two simultaneous claims give one technician."""
    if not _is_stage_technician(ctx):
        ctx.reply("stage_crew_technicians_only")
        return
    crew = await crew_of(ctx, booking)
    if crew is None or not _live(req, booking) or booking.end_at <= ctx.now():
        ctx.reply("stage_crew_closed", number=req.id)
        return
    won = await ctx.session.execute(
        update(StageCrew)
        .where(StageCrew.id == crew.id, StageCrew.technician.is_(None))
        .values(technician=ctx.user, claimed_at=ctx.now())
        .execution_options(synchronize_session=False)
    )
    await ctx.session.refresh(crew)
    facts = _facts(ctx, req, booking)
    if getattr(won, "rowcount", 0) != 1:
        taken_by = crew.technician or ""
        ctx.reply("stage_crew_taken", name=ctx.org.name(taken_by), mine=taken_by == ctx.user, **facts)
        return
    label = ctx.renderer.block("cards_stage", "crew_claimed", name=ctx.org.name(ctx.user)) or ""
    await close_request_cards(ctx, req, label, purpose="claim")
    await close_request_cards(ctx, req, label, purpose="assign")  # claimed after the escalation
    audit(ctx, req, "stage_crew_claimed", req.status)
    also = await _claim_series(ctx, req, ctx.user)
    ctx.reply("stage_crew_claimed_you", minutes=ctx.config.stage.crew_reminder_minutes, series=also, **facts)
    ctx.tell(req.requester, "stage_crew_for_requester", name=ctx.org.name(ctx.user), **facts)


async def _claim_series(ctx: Ctx, req: Request, technician: str) -> int:
    """The first occurrence of a weekly series claimed (or assigned): the later ones nobody is on
    duty for go along."""
    later = [int(n) for n in req.fields.get("occurrences", [])]
    if not later:
        return 0
    ids = select(Booking.id).where(Booking.request_id.in_(later), Booking.holds.is_(True))
    done = await ctx.session.execute(
        update(StageCrew)
        .where(StageCrew.booking_id.in_(ids), StageCrew.technician.is_(None), StageCrew.closed_at.is_(None))
        .values(technician=technician, claimed_at=ctx.now())
        .execution_options(synchronize_session=False)
    )
    return int(getattr(done, "rowcount", 0) or 0)


async def booking_cancelled(ctx: Ctx, req: Request, booking: Booking) -> None:
    """The requester gave the slot back: the claim cards close, the technician on duty is told."""
    crew = await crew_of(ctx, booking)
    if crew is None:
        return
    await close_request_cards(ctx, req, ctx.renderer.block("cards_stage", "crew_cancelled") or "", purpose="claim")
    if crew.technician:
        ctx.tell(crew.technician, "stage_crew_cancelled", **_facts(ctx, req, booking))


async def _live_booking(ctx: Ctx, timer: Timer) -> tuple[Request, Booking, StageCrew] | None:
    booking = await ctx.session.get(Booking, int(timer.ref))
    req = await ctx.session.get(Request, booking.request_id) if booking is not None else None
    if req is None or booking is None or not _live(req, booking):
        return None
    crew = await crew_of(ctx, booking)
    return (req, booking, crew) if crew is not None else None


@router.timer("stage_crew_remind")
async def remind_crew(ctx: Ctx, timer: Timer) -> None:
    """Shortly before the start: the technician on duty comes early to prepare the equipment."""
    found = await _live_booking(ctx, timer)
    if found is None:
        return
    req, booking, crew = found
    if crew.technician:
        minutes = ctx.config.stage.crew_reminder_minutes
        ctx.tell(crew.technician, "stage_crew_reminder", minutes=minutes, **_facts(ctx, req, booking))


@router.timer("stage_crew_unclaimed")
async def unclaimed(ctx: Ctx, timer: Timer) -> None:
    """Nobody on duty yet: the director arranges someone (a button per technician, 指派舞台 #n 姓名)."""
    found = await _live_booking(ctx, timer)
    if found is None or found[2].technician:
        return
    req, booking, _ = found
    techs = ctx.org.technicians("stage", _campus(ctx, booking))
    names = [ctx.org.name(u) for u in techs]
    block = ctx.renderer.block
    for d in ctx.org.with_role("director"):
        ctx.tell(d, "stage_crew_unclaimed_director", technicians=names, **_facts(ctx, req, booking))
    await send_request_cards(
        ctx,
        req,
        ctx.org.with_role("director"),
        title=block("cards_stage", "crew_assign_title", number=req.id) or "",
        desc=block("cards_stage", "crew_assign_desc") or "",
        rows=_rows(ctx, req, booking),
        buttons=[Button(ctx.org.name(u), AssignClick(req.id, u), style=2) for u in techs[:CARD_BUTTONS]],
        purpose="assign",
    )


# -- the director assigns ---------------------------------------------------------------------------
def parse_technician(value: str, ctx: Ctx) -> str:
    """A stage technician by name or userid."""
    userid = resolve_person(ctx, value)
    if userid is None or not _is_stage_technician(ctx, userid):
        raise FieldError("invalid_technician", technicians=[ctx.org.name(u) for u in ctx.org.technicians("stage")])
    return userid


async def assign(ctx: Ctx, req: Request, booking: Booking, member: str) -> None:
    """The director puts `member` on duty (nobody claimed it, or someone else must go instead)."""
    crew = await crew_of(ctx, booking, lock=True)
    if crew is None or crew.closed_at is not None or not _live(req, booking) or booking.end_at <= ctx.now():
        ctx.reply("stage_crew_closed", number=req.id)
        return
    facts = _facts(ctx, req, booking)
    name = ctx.org.name(member)
    if crew.technician == member:
        ctx.reply("stage_crew_taken", name=name, mine=False, **facts)
        return
    previous = crew.technician
    crew.technician, crew.claimed_at = member, ctx.now()
    label = ctx.renderer.block("cards_stage", "crew_assigned", name=name) or ""
    await close_request_cards(ctx, req, label, purpose="claim")
    await close_request_cards(ctx, req, label, purpose="assign")
    audit(ctx, req, "stage_crew_assigned", req.status, technician=member, previous=previous)
    minutes = ctx.config.stage.crew_reminder_minutes
    also = await _claim_series(ctx, req, member)
    ctx.tell(member, "stage_crew_assigned_you", by=ctx.org.name(ctx.user), minutes=minutes, series=also, **facts)
    if previous:
        ctx.tell(previous, "stage_crew_unassigned", name=name, **facts)
    ctx.reply("stage_crew_assigned_director", name=name, previous=ctx.org.name(previous or ""), **facts)
    if req.requester != ctx.user:
        ctx.tell(req.requester, "stage_crew_for_requester", name=name, **facts)


@router.action(AssignClick)
async def assign_click(ctx: Ctx, card: Card, click: AssignClick) -> None:
    if ctx.person is None or "director" not in ctx.person.roles:
        ctx.reply("stage_crew_directors_only")
        return
    found = await ops_request(ctx, str(click.request))
    if found is not None:
        await assign(ctx, *found, click.member)


@router.command(
    "assign_stage",
    aliases=("指派舞台", "舞台指派", "指派舞台技术员", "指派舞台技術員", "assign stage"),
    positional=True,
    roles=("director",),
    fields=(REQUEST_NUMBER, Field("member", ("技术员", "技術員", "给", "給", "to"), parse=parse_technician)),
)
async def assign_stage(ctx: Ctx, values: dict[str, str]) -> None:
    """指派舞台 #编号 姓名 — the director puts a stage technician on duty for an approved booking."""
    found = await ops_request(ctx, values["number"])
    if found is not None:
        await assign(ctx, *found, values["member"])


# -- the closing checklist -------------------------------------------------------------------------
def _closers(ctx: Ctx, booking: Booking, crew: StageCrew) -> list[str]:
    """The technician on duty; nobody claimed it: any stage technician (the first to confirm)."""
    return [crew.technician] if crew.technician else ctx.org.technicians("stage", _campus(ctx, booking))


async def send_closing_cards(ctx: Ctx, req: Request, booking: Booking) -> None:
    """After the event: a button per checklist item (when they fit) and 确认收场."""
    crew = await crew_of(ctx, booking)
    if crew is None or crew.closed_at is not None:
        return
    block = ctx.renderer.block
    items: list[str] = crew.checklist.get("items", [])
    buttons = []
    if len(items) < CARD_BUTTONS:
        for i, item in enumerate(items):
            label = block("cards_stage", "closing_item", n=i + 1, item=item) or item
            buttons.append(Button(label, CrewClick(req.id, CrewButton.ITEM, i), style=2))
    buttons.append(Button(block("cards_stage", "closing_confirm") or "", CrewClick(req.id, CrewButton.CONFIRM, 0)))
    await send_request_cards(
        ctx,
        req,
        _closers(ctx, booking, crew),
        title=block("cards_stage", "closing_title", number=req.id) or "",
        desc=block("cards_stage", "closing_desc", number=req.id, activity=booking.activity) or "",
        rows=[(str(i + 1), item) for i, item in enumerate(items)][:6],
        buttons=buttons,
        purpose="closing",
    )


def _may_close(ctx: Ctx, crew: StageCrew) -> bool:
    return ctx.user == crew.technician if crew.technician else _is_stage_technician(ctx)


def _left(crew: StageCrew) -> list[str]:
    ticked = crew.ticked.get("ticked", {})
    return [item for i, item in enumerate(crew.checklist.get("items", [])) if str(i) not in ticked]


async def _closable(ctx: Ctx, req: Request, booking: Booking) -> StageCrew | None:
    """The booking's checklist, if the sender may still tick it (else they are told why)."""
    crew = await crew_of(ctx, booking, lock=True)
    if crew is None or req.status != FlowStatus.APPROVED or booking.cancelled_at is not None:
        ctx.reply("stage_crew_closed", number=req.id)
        return None
    if not _may_close(ctx, crew):
        ctx.reply("stage_closing_not_yours", number=req.id, name=ctx.org.name(crew.technician or ""))
        return None
    if crew.closed_at is not None:
        ctx.reply(
            "stage_closing_already",
            number=req.id,
            name=ctx.org.name(crew.closed_by or ""),
            missed=crew.missed.get("items", []),
        )
        return None
    return crew


def tick(ctx: Ctx, crew: StageCrew, picked: list[int]) -> None:
    ticked = dict(crew.ticked.get("ticked", {}))
    for i in picked:
        ticked.setdefault(str(i), ctx.user)
    crew.ticked = {"ticked": ticked}


async def confirm(ctx: Ctx, req: Request, booking: Booking, crew: StageCrew) -> None:
    """The checklist as ticked is final: what is left is recorded as not done."""
    missed = _left(crew)
    crew.closed_by, crew.closed_at, crew.missed = ctx.user, ctx.now(), {"items": missed}
    label = ctx.renderer.block("cards_stage", "closing_closed", name=ctx.org.name(ctx.user), missed=len(missed)) or ""
    await close_request_cards(ctx, req, label, purpose="closing")
    audit(ctx, req, "stage_closing", req.status, missed=missed)
    facts = _facts(ctx, req, booking)
    ctx.reply("stage_closing_done", missed=missed, **facts)
    if missed:
        for d in ctx.org.with_role("director"):
            ctx.tell(d, "stage_closing_missed_director", name=ctx.org.name(ctx.user), missed=missed, **facts)


async def ops_request(ctx: Ctx, number: str) -> tuple[Request, Booking] | None:
    """A stage booking by its request number (locked), or the sender is told there is none."""
    req = (
        await ctx.session.execute(select(Request).where(Request.id == int(number)).with_for_update())
    ).scalar_one_or_none()
    if req is None or req.workflow != "stage":
        ctx.reply("stage_ops_not_found", number=number)
        return None
    return req, await _booking(ctx, req)


@router.action(CrewClick)
async def crew_click(ctx: Ctx, card: Card, click: CrewClick) -> None:
    found = await ops_request(ctx, str(click.request))
    if found is None:
        return
    req, booking = found
    if click.button is CrewButton.CLAIM:
        await claim(ctx, req, booking)
        return
    crew = await _closable(ctx, req, booking)
    if crew is None:
        return
    if click.button is CrewButton.ITEM and click.item < len(crew.checklist.get("items", [])):
        tick(ctx, crew, [click.item])
        items = crew.checklist.get("items", [])
        left = _left(crew)
        ctx.reply("stage_closing_ticked", number=req.id, left=left, done=len(items) - len(left), total=len(items))
    elif click.button is CrewButton.CONFIRM:
        await confirm(ctx, req, booking, crew)
    else:
        ctx.reply("card_unknown")


# -- text fallbacks --------------------------------------------------------------------------------
@router.command(
    "claim_stage",
    aliases=("接舞台", "舞台接单", "舞台接單", "claim stage"),
    positional=True,
    roles=("technician",),
    fields=(REQUEST_NUMBER,),
)
async def claim_stage(ctx: Ctx, values: dict[str, str]) -> None:
    """接舞台 #编号 — be the stage technician on duty for an approved booking."""
    found = await ops_request(ctx, values["number"])
    if found is not None:
        await claim(ctx, *found)


def _picked(items: list[str], text: str) -> list[int] | None:
    """Checklist items named by number or name, 全部, or 无 (none done); None if a word is no item."""
    if re.sub(r"\s", "", text) in NONE_WORDS:
        return []
    return pick_items(items, text)


async def check_closing(ctx: Ctx, values: dict[str, str]) -> tuple[str, str, dict[str, Any]] | None:
    """Before 舞台检查 runs: every word names an item of this booking's checklist."""
    req = await ctx.session.get(Request, int(values["number"]))
    booking = await _booking(ctx, req) if req is not None and req.workflow == "stage" else None
    crew = await crew_of(ctx, booking) if booking is not None else None
    if crew is None:
        return None  # the handler says there is no such booking
    items = crew.checklist.get("items", [])
    if _picked(items, values.get("items", "")) is None:
        return "items", "invalid_items", {"items": items, "number": values["number"]}
    return None


@router.command(
    "stage_closing",
    aliases=("舞台检查", "收场检查", "舞台檢查", "收場檢查", "closing check", "stage check"),
    positional=True,
    roles=("technician",),
    fields=(REQUEST_NUMBER, Field("items", ("已完成", "完成项", "items", "done"))),
    validate=check_closing,
)
async def stage_closing(ctx: Ctx, values: dict[str, str]) -> None:
    """舞台检查 #编号 已完成的项（序号或名称，或 全部 / 无）— confirm the closing checklist."""
    found = await ops_request(ctx, values["number"])
    if found is None:
        return
    req, booking = found
    crew = await _closable(ctx, req, booking)
    if crew is None:
        return
    if booking.end_at > ctx.now():
        ctx.reply("stage_closing_too_early", number=req.id, end=show_moment(ctx, _local(ctx, booking.end_at)))
        return
    tick(ctx, crew, _picked(crew.checklist.get("items", []), values["items"]) or [])
    await confirm(ctx, req, booking, crew)


def _local(ctx: Ctx, t: datetime) -> datetime:
    return local_now(t, ctx.config.scheduler.timezone)
