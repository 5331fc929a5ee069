"""外来人员 / U盘申请 in a computer room: the room's administrator decides (微机室管理制度 一、五).

一: 外来人员进入机房须经管理员批准，由本室指定人员安排或陪同参观. 五: 教学人员因教学或竞赛等情况使用
U盘的，在同意并确定无病毒及其它问题后方可带入使用. The request goes to the room's administrators as a
card (批准 / 拒绝); the first decision counts, the others' cards close, the applicant is told, and
the request with its decision (who, when) is a row of the 微机室使用登记表 (handlers/lab_registers.py).
Registered on the computer_room router (handlers/computer_room.py imports this module at its end).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import select

from bot.cardkeys import CardAction
from bot.cards import Button, close_cards, send_cards
from bot.config_labs import ComputerRoom
from bot.context import Ctx
from bot.router import Field, FieldError
from handlers.computer_room import LABELS, fail, room_named, room_names, router
from storage.models import Card, LabPermit, PermitKind, PermitStatus


class PermitButton(StrEnum):
    APPROVE = "approve"
    REFUSE = "refuse"


@dataclass(frozen=True)
class PermitClick(CardAction, prefix="labp", subject="lab_permit"):
    permit: int
    button: PermitButton


def parse_room(value: str, ctx: Ctx) -> str:
    room = room_named(ctx, value)
    if room is None:
        raise fail(ctx, "invalid_room", rooms=room_names(ctx), word=value.strip())
    return room.name


def parse_short(limit: int) -> Callable[[str, Ctx], str]:
    def parse(value: str, ctx: Ctx) -> str:
        value = value.strip()
        if not value:
            raise FieldError("invalid_empty")
        if len(value) > limit:
            raise FieldError("invalid_too_long", limit=limit)
        return value

    return parse


def deciders(ctx: Ctx, room: ComputerRoom) -> list[str]:
    """The room's administrators, never the applicant; an administrator asking: the director."""
    admins = [a for a in room.administrators if a != ctx.user]
    return admins or [d for d in ctx.org.with_role("director") if d != ctx.user]


async def _ask_permit(ctx: Ctx, kind: PermitKind, values: dict[str, str]) -> None:
    room = room_named(ctx, values["room"])
    assert room is not None
    permit = LabPermit(
        kind=kind,
        room=room.name,
        campus=room.campus,
        applicant=ctx.user,
        visitor=values.get("visitor", ""),
        reason=values["reason"],
        created_at=ctx.now(),
    )
    ctx.session.add(permit)
    await ctx.session.flush()
    who = deciders(ctx, room)
    facts = _permit_facts(ctx, permit)
    await send_cards(
        ctx,
        who,
        subject_id=permit.id,
        purpose="permit",
        title=LABELS(ctx, "card_title", kind=LABELS.name(ctx, "permit", kind), number=permit.id),
        desc=LABELS(ctx, "card_desc", **facts),
        rows=[(LABELS(ctx, "row_room"), room.name), (LABELS(ctx, "row_applicant"), facts["applicant"])],
        buttons=[
            Button(LABELS(ctx, "button_approve"), PermitClick(permit.id, PermitButton.APPROVE)),
            Button(LABELS(ctx, "button_refuse"), PermitClick(permit.id, PermitButton.REFUSE), style=2),
        ],
    )
    ctx.reply("permit_asked", names=[ctx.org.name(u) for u in who], **facts)


def _permit_facts(ctx: Ctx, p: LabPermit) -> dict[str, Any]:
    return {
        "number": p.id,
        "kind": LABELS.name(ctx, "permit", p.kind),
        "usb": p.kind == PermitKind.USB,
        "room": p.room,
        "applicant": ctx.org.name(p.applicant),
        "visitor": p.visitor,
        "reason": p.reason,
    }


@router.command(
    "lab_visitor",
    aliases=("外来人员", "外來人員", "外来人员上机", "外來人員上機", "lab visitor"),
    fields=(
        Field("room", ("微机室", "机房", "room"), parse=parse_room),
        Field("visitor", ("姓名", "name"), parse=parse_short(30)),
        Field("reason", ("事由", "原因", "reason"), parse=parse_short(200)),
    ),
    positional=True,
    members_only=True,
)
async def lab_visitor(ctx: Ctx, values: dict[str, str]) -> None:
    """外来人员 微机室 姓名 事由 — ask the room's administrator to let a visitor in."""
    await _ask_permit(ctx, PermitKind.VISITOR, values)


@router.command(
    "lab_usb",
    aliases=("U盘申请", "U盤申請", "优盘申请", "優盤申請", "usb request"),
    fields=(
        Field("room", ("微机室", "机房", "room"), parse=parse_room),
        Field("reason", ("事由", "原因", "reason"), parse=parse_short(200)),
    ),
    positional=True,
    members_only=True,
)
async def lab_usb(ctx: Ctx, values: dict[str, str]) -> None:
    """U盘申请 微机室 事由 — ask the room's administrator before bringing a USB drive in."""
    await _ask_permit(ctx, PermitKind.USB, values)


@router.action(PermitClick)
async def permit_clicked(ctx: Ctx, card: Card, click: PermitClick) -> None:
    """The first administrator to decide wins; the others' cards close, the applicant is told."""
    permit = (
        await ctx.session.execute(select(LabPermit).where(LabPermit.id == click.permit).with_for_update())
    ).scalar_one_or_none()
    if permit is None:
        ctx.reply("card_unknown")
        return
    facts = _permit_facts(ctx, permit)
    if permit.status != PermitStatus.PENDING:
        ctx.reply(
            "permit_already_decided",
            status=LABELS.name(ctx, "status", permit.status),
            name=ctx.org.name(permit.decided_by or ""),
            **facts,
        )
        return
    permit.status = PermitStatus.APPROVED if click.button == PermitButton.APPROVE else PermitStatus.REFUSED
    permit.decided_by, permit.decided_at = ctx.user, ctx.now()
    status = LABELS.name(ctx, "status", permit.status)
    await close_cards(
        ctx, "lab_permit", permit.id, LABELS(ctx, "card_closed", name=ctx.org.name(ctx.user), status=status)
    )
    approved = permit.status == PermitStatus.APPROVED
    ctx.reply("permit_decided", status=status, approved=approved, **facts)
    ctx.tell(
        permit.applicant, "permit_decision", status=status, approved=approved, name=ctx.org.name(ctx.user), **facts
    )
