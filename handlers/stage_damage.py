"""赔偿 — stage equipment damaged by a person (礼堂(舞台)设备管理制度 八).

"当事人要对设备进行照价赔偿，若态度恶劣不予以赔偿的，中心上报校委会处理." A stage technician or the
director records who is liable (a person, or a unit whose head answers for it), the amount and
what happened: `赔偿 #n 宋涛 300 话筒摔坏`. The liable party gets a card to 接受 or 拒绝 (also
`接受赔偿 #n`, `拒绝赔偿 #n 原因`); a refusal goes to the 校委会 (the committee role) and the director.
`赔偿 #n 已付` records the payment. Every step is an audit row of the booking's request, never
edited: the history; `stage_damages` keeps where it stands now.

Registered on the stage router (handlers/stage.py imports this module at its end).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import select

from bot.cardkeys import CardAction
from bot.cards import Button
from bot.context import Ctx
from bot.conversation import start_form
from bot.org import Org
from bot.router import Field, FieldError
from handlers import liability
from handlers.approval_commands import parse_required, resolve_person
from handlers.approval_engine import FlowStatus
from handlers.approvals import audit, send_request_cards
from handlers.labels import HasRenderer, Labels
from handlers.liability import PAID_WORDS, cents, yuan
from handlers.numbers import REQUEST_NUMBER
from handlers.stage import router, venue_name
from handlers.stage_ops import ops_request
from storage.models import Booking, Card, DamageStatus, Request, StageDamage

LABELS = Labels("labels_stage_damage", status=DamageStatus)
PAID = "paid"
KIND = liability.Kind(
    events="damage",
    cards="cards_stage",
    accepted_label="damage_accepted",
    refused_label="damage_refused",
    paid_label="damage_paid",
    accepted_you="stage_damage_accepted_you",
    accepted="stage_damage_accepted",
    refused_you="stage_damage_refused_you",
    refused_committee="stage_damage_refused_committee",
    paid="stage_damage_paid",
    paid_tell="stage_damage_paid_liable",
)


class DamageButton(StrEnum):
    ACCEPT = "accept"
    REFUSE = "refuse"


@dataclass(frozen=True)
class DamageClick(CardAction, prefix="sd", subject="request"):
    request: int
    button: DamageButton


def parse_liable(value: str, ctx: Ctx) -> str:
    """A person (name or userid) → 'user:<userid>'; a unit (name or key) → 'unit:<key>'; 已付 → 'paid'."""
    text = value.strip().lstrip("@")
    if text.lower() in PAID_WORDS:
        return PAID
    userid = resolve_person(ctx, text)
    if userid is not None:
        return f"user:{userid}"
    units = [u for u in ctx.config.units if text in (u.key, u.name)]
    if len(units) == 1:
        return f"unit:{units[0].key}"
    raise FieldError("invalid_liable", text=text)


def show_liable(value: str, ctx: Ctx) -> str:
    kind, _, key = value.partition(":")
    if kind == "user":
        return ctx.org.name(key)
    unit = ctx.org.unit(key)
    return unit.name if unit else value


def parse_amount(value: str, ctx: Ctx) -> str:
    """'300', '300元', '¥120.5' → cents as a string; more than 0 and below 100 万."""
    amount = cents(value)
    if amount is None:
        raise FieldError("invalid_amount")
    return str(amount)


def _may_record(ctx: Ctx) -> bool:
    p = ctx.person
    return p is not None and ("director" in p.roles or ("technician" in p.roles and "stage" in p.skills))


def _liable_name(org: Org, d: StageDamage) -> str:
    if d.liable_user:
        return org.name(d.liable_user)
    unit = org.unit(d.liable_unit or "")
    return unit.name if unit else (d.liable_unit or "")


def _facts(ctx: Ctx, req: Request, booking: Booking, d: StageDamage) -> dict[str, Any]:
    return {
        "number": req.id,
        "venue": venue_name(ctx, booking.venue),
        "slot": req.fields.get("slot", ""),
        "activity": booking.activity,
        "liable": _liable_name(ctx.org, d),
        "unit": bool(d.liable_unit),
        "answerer": ctx.org.name(d.answerer),
        "amount": yuan(d.amount_cents),
        "note": d.note,
        "recorder": ctx.org.name(d.recorded_by),
        "status": LABELS.name(ctx, "status", d.status),
        "paid": d.paid_at is not None,
        "reason": d.answer_note,
    }


async def damage_of(ctx: Ctx, booking: Booking) -> StageDamage | None:
    q = select(StageDamage).where(StageDamage.booking_id == booking.id).with_for_update()
    return (await ctx.session.execute(q)).scalar_one_or_none()


def register_row(r: HasRenderer, org: Org, d: StageDamage) -> str:
    """The damage in the stage register's note: 赔偿 宋涛 300元 已付."""
    state = PAID if d.paid_at is not None else d.status
    return LABELS(r, "register", liable=_liable_name(org, d), amount=yuan(d.amount_cents), state=state)


# -- record, pay ------------------------------------------------------------------------------------
@router.command(
    "stage_damage",
    aliases=("赔偿", "賠償", "照价赔偿", "照價賠償", "damage"),
    positional=True,
    roles=("technician", "director"),
    fields=(
        REQUEST_NUMBER,
        Field("liable", ("责任人", "責任人", "责任方", "liable"), parse=parse_liable, show=show_liable),
        Field(
            "amount",
            ("金额", "金額", "amount"),
            parse=parse_amount,
            show=lambda v, c: yuan(int(v)),
            required_if=lambda v: v.get("liable") != PAID,
        ),
        Field("note", ("说明", "說明", "note"), required=False),
    ),
)
async def stage_damage(ctx: Ctx, values: dict[str, str]) -> None:
    """赔偿 #编号 责任人 金额 [说明] — record who pays for damaged stage equipment; 赔偿 #编号 已付 — paid."""
    if not _may_record(ctx):
        ctx.reply("stage_damage_who")
        return
    found = await ops_request(ctx, values["number"])
    if found is None:
        return
    req, booking = found
    if values["liable"] == PAID:
        await _paid(ctx, req, booking)
        return
    if req.status != FlowStatus.APPROVED:
        ctx.reply("stage_damage_not_booked", number=req.id)
        return
    existing = await damage_of(ctx, booking)
    if existing is not None:
        ctx.reply("stage_damage_exists", **_facts(ctx, req, booking, existing))
        return
    kind, _, key = values["liable"].partition(":")
    if kind == "user":
        answerer = key
    else:
        unit = ctx.org.unit(key)
        answerer = unit.head if unit is not None and unit.head else ""
    if not answerer:
        ctx.reply("stage_damage_no_head", unit=show_liable(values["liable"], ctx))
        return
    d = StageDamage(
        booking_id=booking.id,
        liable_user=key if kind == "user" else None,
        liable_unit=key if kind == "unit" else None,
        answerer=answerer,
        amount_cents=int(values["amount"]),
        note=values.get("note", "").strip()[:500],
        status=DamageStatus.OPEN,
        answer_note="",
        recorded_by=ctx.user,
        created_at=ctx.now(),
    )
    ctx.session.add(d)
    await ctx.session.flush()
    audit(ctx, req, "damage_recorded", req.status, liable=values["liable"], amount_cents=d.amount_cents, note=d.note)
    facts = _facts(ctx, req, booking, d)
    block = ctx.renderer.block
    await send_request_cards(
        ctx,
        req,
        [answerer],
        title=block("cards_stage", "damage_title", number=req.id) or "",
        desc=block("cards_stage", "damage_desc", **facts) or "",
        rows=[
            (block("cards_stage", "crew_row_venue") or "", facts["venue"]),
            (block("cards_stage", "crew_row_activity") or "", facts["activity"]),
            (block("cards_stage", "damage_row_liable") or "", facts["liable"]),
            (block("cards_stage", "damage_row_amount") or "", block("cards_stage", "damage_amount", **facts) or ""),
            (block("cards_stage", "damage_row_note") or "", d.note),
        ],
        buttons=[
            Button(block("cards_stage", "damage_accept") or "", DamageClick(req.id, DamageButton.ACCEPT)),
            Button(block("cards_stage", "damage_refuse") or "", DamageClick(req.id, DamageButton.REFUSE), style=2),
        ],
        purpose="damage",
    )
    ctx.reply("stage_damage_recorded", **facts)
    for u in ctx.org.with_role("director"):
        if u != ctx.user:
            ctx.tell(u, "stage_damage_for_director", **facts)


async def _paid(ctx: Ctx, req: Request, booking: Booking) -> None:
    d = await damage_of(ctx, booking)
    if d is None:
        ctx.reply("stage_damage_none", number=req.id)
        return
    if d.paid_at is not None:
        ctx.reply("stage_damage_paid_already", **_facts(ctx, req, booking, d))
        return
    await liability.paid(ctx, KIND, req, d, d.answerer, "damage", lambda: _facts(ctx, req, booking, d))


# -- accept or refuse ------------------------------------------------------------------------------
async def _answerable(ctx: Ctx, number: str) -> tuple[Request, Booking, StageDamage] | None:
    found = await ops_request(ctx, number)
    if found is None:
        return None
    req, booking = found
    d = await damage_of(ctx, booking)
    if d is None or d.answerer != ctx.user:
        ctx.reply("stage_damage_none", number=req.id)
        return None
    if d.status != DamageStatus.OPEN or d.paid_at is not None:
        ctx.reply("stage_damage_answered", **_facts(ctx, req, booking, d))
        return None
    return req, booking, d


async def accept(ctx: Ctx, req: Request, booking: Booking, d: StageDamage) -> None:
    await liability.accept(ctx, KIND, req, d, "damage", lambda: _facts(ctx, req, booking, d))


async def refuse(ctx: Ctx, req: Request, booking: Booking, d: StageDamage, reason: str) -> None:
    await liability.refuse(ctx, KIND, req, d, reason, "damage", lambda: _facts(ctx, req, booking, d))


@router.action(DamageClick)
async def damage_click(ctx: Ctx, card: Card, click: DamageClick) -> None:
    found = await _answerable(ctx, str(click.request))
    if found is None:
        return
    if click.button is DamageButton.ACCEPT:
        await accept(ctx, *found)
    else:
        await start_form(ctx, "refuse_damage", {"number": str(click.request)})


@router.command(
    "accept_damage",
    aliases=("接受赔偿", "接受賠償", "accept damage"),
    positional=True,
    fields=(REQUEST_NUMBER,),
    in_help=False,  # an answer to the 赔偿通知 card, which names it
)
async def accept_damage(ctx: Ctx, values: dict[str, str]) -> None:
    """接受赔偿 #编号 — accept to pay for the damaged stage equipment."""
    found = await _answerable(ctx, values["number"])
    if found is not None:
        await accept(ctx, *found)


@router.command(
    "refuse_damage",
    aliases=("拒绝赔偿", "拒絕賠償", "refuse damage"),
    positional=True,
    in_help=False,  # an answer to the 赔偿通知 card, which names it
    fields=(REQUEST_NUMBER, Field("reason", ("原因", "理由", "reason"), parse=parse_required)),
)
async def refuse_damage(ctx: Ctx, values: dict[str, str]) -> None:
    """拒绝赔偿 #编号 原因 — refuse; the center reports it to the 校委会."""
    found = await _answerable(ctx, values["number"])
    if found is not None:
        await refuse(ctx, *found, values["reason"])
