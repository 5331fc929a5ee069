"""领电脑 — computer requisitions (W5; registers 计算机领取申请表, 计算机领取/发放登记表).

Office (科室): office lead → supervising VP → principal. Department (系部): deputy head →
department head → campus VP → principal. Then a technician records the asset numbers issued,
the recipient confirms receipt, and loans get a return reminder; every issued computer gets the
term-end / holiday collection reminders (dates from `[computers] collection_dates`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.cardkeys import CardAction
from bot.cards import Button
from bot.context import Ctx
from bot.conversation import start_form
from bot.router import Field, FieldError, Router
from bot.timeparse import TimeParseError, local_now, parse_date
from handlers.approval_commands import parse_required, visible_request
from handlers.approvals import (
    WorkflowSpec,
    audit,
    close_request_cards,
    flow_of,
    request_of,
    send_request_cards,
    submit,
)
from handlers.labels import HasRenderer, Labels, show_iso_day
from handlers.numbers import REQUEST_NUMBER as NUMBER
from storage.models import Card, ComputerIssue, ComputerPurpose, Request, Timer

router = Router("computers", templates=Path(__file__).with_name("templates") / "computers")
router.requires_chain("computer_office", "领电脑 (科室)")
router.requires_chain("computer_department", "领电脑 (系部)")


class ComputerButton(StrEnum):
    ISSUE = "issue"


@dataclass(frozen=True)
class ComputerClick(CardAction, prefix="pc", subject="request"):
    """A technician's button on an approved computer requisition."""

    request: int
    button: ComputerButton


class ComputerStage(StrEnum):
    """`requests.stage` of an approved requisition."""

    AWAITING_ISSUE = "awaiting_issue"  # a technician records the asset numbers
    AWAITING_RECEIPT = "awaiting_receipt"  # the recipient confirms (使用人签字)
    DONE = "done"


LABELS = Labels("labels_computers", purpose=ComputerPurpose, stage=ComputerStage)

PURPOSES = {
    ComputerPurpose.OFFICE: ("科室办公", "办公", "office"),
    ComputerPurpose.TEACHING: ("系部备课", "备课", "lesson", "teaching"),
    ComputerPurpose.LOAN: ("临时借用", "借用", "临时", "借", "loan", "borrow"),
}


def purpose_name(ctx: HasRenderer, purpose: str) -> str:
    return LABELS.name(ctx, "purpose", purpose)


def parse_purpose(value: str, ctx: Ctx) -> ComputerPurpose:
    low = value.strip().lower()
    for purpose, words in PURPOSES.items():
        if any(w in low for w in words):
            return purpose
    raise FieldError("invalid_purpose")


def parse_count(value: str, ctx: Ctx) -> str:
    m = re.fullmatch(r"(\d{1,3})\s*(台|部|个)?", value.strip())
    if not m or not 1 <= int(m.group(1)) <= 50:
        raise FieldError("invalid_count")
    return str(int(m.group(1)))


def parse_return_date(value: str, ctx: Ctx) -> str:
    today = local_now(ctx.now(), ctx.config.scheduler.timezone).date()
    try:
        d = parse_date(value, today, prefer="future")
    except TimeParseError:
        raise FieldError("invalid_return_date") from None
    if d <= today:
        raise FieldError("invalid_return_date_past")
    return d.isoformat()


def facts(ctx: Ctx, req: Request) -> list[tuple[str, str]]:
    f = req.fields
    unit = ctx.org.unit_of(req.requester)
    rows = [
        (LABELS(ctx, "row_unit"), unit.name if unit else ""),
        (LABELS(ctx, "row_purpose"), purpose_name(ctx, f["purpose"])),
        (LABELS(ctx, "row_count"), LABELS(ctx, "count", count=f["count"])),
        (LABELS(ctx, "row_spec"), f["spec"]),
    ]
    if f.get("return_date"):
        rows.append((LABELS(ctx, "row_return_date"), show_iso_day(ctx, f["return_date"])))
    return rows


def viewers(ctx: Ctx, req: Request) -> list[str]:
    return ctx.org.technicians("computer")


async def on_approved(ctx: Ctx, req: Request) -> None:
    """Approved by the principal: computer technicians (same campus first) get an issue card."""
    req.stage = ComputerStage.AWAITING_ISSUE
    person = ctx.org.person(req.requester)
    techs = ctx.org.technicians("computer", person.campus if person else None)
    local = [t for t in techs if person and ctx.org.person(t).campus == person.campus]  # type: ignore[union-attr]
    block = ctx.renderer.block
    await send_request_cards(
        ctx,
        req,
        local or techs,
        title=block("cards_computers", "computer_issue_title", number=req.id) or "",
        desc=block("cards_computers", "computer_issue_desc", number=req.id, requester=ctx.org.name(req.requester))
        or "",
        rows=facts(ctx, req),
        buttons=[
            Button(block("cards_computers", "computer_issue_button") or "", ComputerClick(req.id, ComputerButton.ISSUE))
        ],
    )


SPEC = router.approval(
    WorkflowSpec(
        key="computer", labels=LABELS, confidential=False, facts=facts, on_approved=on_approved, viewers=viewers
    )
)


@router.command(
    "request_computer",
    aliases=("领电脑", "領電腦", "申请电脑", "领取电脑", "computer"),
    fields=(
        Field("purpose", ("用途", "purpose"), parse=parse_purpose, show=LABELS.show("purpose")),
        Field("count", ("数量", "數量", "count"), parse=parse_count),
        Field("spec", ("配置", "要求", "spec"), parse=parse_required),
        Field(
            "return_date",
            ("归还日期", "歸還日期", "归还", "return"),
            parse=parse_return_date,
            required_if=lambda v: v.get("purpose") == ComputerPurpose.LOAN,
            show=lambda v, c: show_iso_day(c, v),
        ),
    ),
    members_only=True,
)
async def request_computer(ctx: Ctx, values: dict[str, str]) -> None:
    """Request computers; the chain depends on whether you are in an office or a department."""
    unit = ctx.org.unit_of(ctx.user)
    if unit is None:
        ctx.reply("not_in_directory")
        return
    fields = {k: values[k] for k in ("purpose", "count", "spec")}
    if values.get("return_date") and values["purpose"] == ComputerPurpose.LOAN:
        fields["return_date"] = values["return_date"]
    # Offices and departments have their own chains; each chain says whose requests it takes.
    office = ctx.config.chains["computer_office"].applies_to == unit.kind
    chain = "computer_office" if office else "computer_department"
    req = await submit(ctx, SPEC, chain, fields)
    flow = flow_of(req)
    ctx.reply(
        "computer_submitted",
        number=req.id,
        count=fields["count"],
        purpose=purpose_name(ctx, fields["purpose"]),
        return_date=show_iso_day(ctx, fields["return_date"]) if fields.get("return_date") else "",
        next=[ctx.org.name(u) for u in flow.pending_approvers()],
        chain=[ctx.render("role_name", role=s.role) for s in flow.steps],
    )


@router.action(ComputerClick, roles=("technician",))
async def fulfil_click(ctx: Ctx, card: Card, click: ComputerClick) -> None:
    """A technician's 登记发放 button: ask for the asset numbers."""
    req = await request_of(ctx, card)
    if req is None:
        return
    if req.stage != ComputerStage.AWAITING_ISSUE:
        ctx.reply("computer_already_issued", number=req.id)
        return
    await start_form(ctx, "issue_computer", {"number": str(req.id)})


def parse_assets(value: str, ctx: Ctx) -> str:
    numbers = [n for n in re.split(r"[\s,，、;；]+", value.strip()) if n]
    if not numbers or any(len(n) > 40 for n in numbers):
        raise FieldError("invalid_assets")
    return " ".join(numbers)


@router.command(
    "issue_computer",
    aliases=("发放", "發放", "issue"),
    default_field="number",
    roles=("technician",),
    fields=(
        NUMBER,
        Field("assets", ("资产号", "資產號", "编号列表", "assets"), parse=parse_assets),
        Field("note", ("备注", "備註", "note"), required=False),
    ),
)
async def issue_computer(ctx: Ctx, values: dict[str, str]) -> None:
    """发放 #编号 资产号:A001 A002 (technicians)"""
    req = await visible_request(ctx, values["number"])
    if req is None:
        return
    if req.workflow != SPEC.key or req.stage != ComputerStage.AWAITING_ISSUE:
        ctx.reply("computer_already_issued", number=req.id)
        return
    assets = values["assets"].split()
    if len(assets) != int(req.fields["count"]):
        ctx.reply("computer_count_mismatch", number=req.id, expected=req.fields["count"], got=len(assets))
        return
    unit = ctx.org.unit_of(req.requester)
    issue = ComputerIssue(
        request_id=req.id,
        recipient=req.requester,
        unit=unit.name if unit else "",
        purpose=req.fields["purpose"],
        spec=req.fields["spec"],
        assets={"numbers": assets},
        issued_by=ctx.user,
        issued_at=ctx.now(),
        due_back=req.fields.get("return_date"),
    )
    ctx.session.add(issue)
    await ctx.session.flush()
    req.stage = ComputerStage.AWAITING_RECEIPT
    audit(ctx, req, "computer_issued", req.status, assets=assets, note=values.get("note", ""))
    label = ctx.renderer.block("cards_computers", "computer_issued", name=ctx.org.name(ctx.user)) or ""
    await close_request_cards(ctx, req, label, purpose="fulfil")
    ctx.tell(req.requester, "computer_ready", number=req.id, assets=assets, tech=ctx.org.name(ctx.user))
    ctx.reply("computer_issue_saved", number=req.id, assets=assets)
    _schedule_reminders(ctx, issue)


def _at_hour(ctx: Ctx, day: date) -> datetime:
    tz = ZoneInfo(ctx.config.scheduler.timezone)
    return datetime.combine(day, time(ctx.config.computers.reminder_hour), tz)


def _schedule_reminders(ctx: Ctx, issue: ComputerIssue) -> None:
    now = ctx.now()
    if issue.due_back:
        ctx.session.add(
            Timer(
                kind="loan_return",
                ref=str(issue.id),
                due_at=_at_hour(ctx, date.fromisoformat(issue.due_back)),
                payload={"issue": issue.id},
            )
        )
    for day in ctx.config.computers.collection_dates:
        due = _at_hour(ctx, day)
        if due > now:
            ctx.session.add(
                Timer(
                    kind="computer_collection",
                    ref=str(issue.id),
                    due_at=due,
                    payload={"issue": issue.id, "date": day.isoformat()},
                )
            )


@router.command("confirm_computer", aliases=("确认领取", "確認領取", "confirm"), positional=True, fields=(NUMBER,))
async def confirm_computer(ctx: Ctx, values: dict[str, str]) -> None:
    """确认领取 #编号 — the recipient confirms the computers arrived (使用人签字)."""
    req = await visible_request(ctx, values["number"])
    if req is None:
        return
    if req.requester != ctx.user or req.stage != ComputerStage.AWAITING_RECEIPT:
        ctx.reply("computer_confirm_refused", number=req.id, stage=req.stage)
        return
    issue = (await ctx.session.execute(select(ComputerIssue).where(ComputerIssue.request_id == req.id))).scalar_one()
    issue.confirmed_at = ctx.now()
    req.stage = ComputerStage.DONE
    audit(ctx, req, "computer_received", req.status)
    due_back = show_iso_day(ctx, issue.due_back) if issue.due_back else None
    ctx.reply("computer_confirmed", number=req.id, assets=issue.assets["numbers"], due_back=due_back)
    ctx.tell(issue.issued_by, "computer_receipt_notice", number=req.id, name=ctx.org.name(ctx.user))


@router.timer("loan_return")
async def fire_loan_return(ctx: Ctx, timer: Timer) -> None:
    issue = await ctx.session.get(ComputerIssue, int(timer.payload["issue"]))
    if issue is None or issue.returned_at is not None:
        return
    ctx.tell(
        issue.recipient,
        "loan_return_due",
        number=issue.request_id,
        assets=issue.assets["numbers"],
        due_back=show_iso_day(ctx, issue.due_back or ""),
    )
    ctx.tell(
        issue.issued_by,
        "loan_return_due_tech",
        number=issue.request_id,
        name=ctx.org.name(issue.recipient),
        assets=issue.assets["numbers"],
        due_back=show_iso_day(ctx, issue.due_back or ""),
    )


@router.timer("computer_collection")
async def fire_collection(ctx: Ctx, timer: Timer) -> None:
    issue = await ctx.session.get(ComputerIssue, int(timer.payload["issue"]))
    if issue is None or issue.returned_at is not None:
        return
    ctx.tell(
        issue.recipient,
        "computer_collection_due",
        number=issue.request_id,
        assets=issue.assets["numbers"],
        date=show_iso_day(ctx, timer.payload["date"]),
    )
