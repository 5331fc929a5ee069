"""Accountability for damage (照价赔偿): what the stage's 赔偿 and the loans' 追责 share.

礼堂(舞台)设备管理制度 八: "当事人要对设备进行照价赔偿，若态度恶劣不予以赔偿的，中心上报校委会处理."
A technician or the director records who is liable and the amount; the liable person answers on a
card (接受 / 拒绝); a refusal goes to the 校委会 (the committee role) and the director; the payment
is recorded last. Each step changes the record (`stage_damages`, `loan_damages`), writes an audit
row on the request, closes the answer card and tells the people concerned — the same way for both,
in each workflow's own words (`Kind`: its reply templates, audit events and card labels).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from bot.context import Ctx
from handlers.approvals import audit, close_request_cards
from storage.models import DamageStatus, Request

PAID_WORDS = ("已付", "已赔", "已缴", "已交", "付清", "已支付", "paid")
AMOUNT_RE = re.compile(r"[¥￥]?\s*(\d{1,7})(?:\.(\d{1,2}))?\s*(?:元|块)?")
MAX_CENTS = 100_000_000  # 100 万元: anything above is a typo


def cents(text: str) -> int | None:
    """'300', '300元', '¥120.5' → cents; None unless more than 0 and below 100 万."""
    m = AMOUNT_RE.fullmatch(text.strip())
    if m is None:
        return None
    value = int(m.group(1)) * 100 + int((m.group(2) or "0").ljust(2, "0"))
    return value if 0 < value < MAX_CENTS else None


def yuan(amount: int) -> str:
    """Cents as 300 / 300.5 / 12.05 (元 is the template's)."""
    whole, part = divmod(amount, 100)
    return f"{whole}" if part == 0 else f"{whole}.{part:02d}".rstrip("0")


class Record(Protocol):
    """An accountability record: StageDamage or LoanDamage."""

    status: str
    answered_at: datetime | None
    answer_note: str
    paid_at: datetime | None
    recorded_by: str

    @property
    def amount_cents(self) -> int | None: ...


@dataclass(frozen=True)
class Kind:
    """How one workflow speaks of its accountability records: its reply templates, audit events
    (`<events>_accepted|_refused|_paid`) and the blocks of `cards` that label a closed card."""

    events: str
    cards: str
    accepted_label: str
    refused_label: str
    paid_label: str
    accepted_you: str  # to the liable person who accepted
    accepted: str  # to the recorder
    refused_you: str
    refused_committee: str  # to the 校委会, the director and the recorder (`committee` tells which)
    paid: str  # to the one who recorded the payment
    paid_tell: str  # to the liable person


Facts = Callable[[], dict[str, Any]]  # the record's facts for the templates, read after the change


async def accept(ctx: Ctx, kind: Kind, req: Request, d: Record, purpose: str, facts: Facts, **detail: Any) -> None:
    d.status, d.answered_at = DamageStatus.ACCEPTED, ctx.now()
    audit(ctx, req, f"{kind.events}_accepted", req.status, **detail)
    await close_request_cards(ctx, req, ctx.renderer.block(kind.cards, kind.accepted_label) or "", purpose=purpose)
    told = facts()
    ctx.reply(kind.accepted_you, **told)
    ctx.tell(d.recorded_by, kind.accepted, **told)


async def refuse(
    ctx: Ctx, kind: Kind, req: Request, d: Record, reason: str, purpose: str, facts: Facts, **detail: Any
) -> None:
    """Refused: recorded with the reason and reported to the 校委会 and the director (制度 八)."""
    d.status, d.answered_at, d.answer_note = DamageStatus.REFUSED, ctx.now(), reason
    committee = ctx.org.with_role("committee")
    audit(ctx, req, f"{kind.events}_refused", req.status, **detail, reason=reason, escalated_to=committee)
    await close_request_cards(ctx, req, ctx.renderer.block(kind.cards, kind.refused_label) or "", purpose=purpose)
    told = facts()
    ctx.reply(kind.refused_you, **told)
    for u in dict.fromkeys([*committee, *ctx.org.with_role("director"), d.recorded_by]):
        if u != ctx.user:
            ctx.tell(u, kind.refused_committee, committee=u in committee, **told)


async def paid(
    ctx: Ctx, kind: Kind, req: Request, d: Record, liable: str, purpose: str, facts: Facts, **detail: Any
) -> None:
    """The amount was paid: the open card (if any) closes and the liable person is told."""
    d.paid_at = ctx.now()
    audit(ctx, req, f"{kind.events}_paid", req.status, **detail, amount_cents=d.amount_cents)
    await close_request_cards(ctx, req, ctx.renderer.block(kind.cards, kind.paid_label) or "", purpose=purpose)
    told = facts()
    ctx.reply(kind.paid, **told)
    ctx.tell(liable, kind.paid_tell, **told)
