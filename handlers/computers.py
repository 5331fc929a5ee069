"""领电脑 / 领投影仪 / 领音响 — requisitions (W5; registers 计算机领取申请表, 计算机领取/发放登记表).

Office (科室): office lead → supervising VP → principal. Department (系部): deputy head →
department head → campus VP → principal (the director last, as the chains say). Then a technician
issues by asset number: each must be a registered asset of the right kind, in store; issuing moves
it to the recipient (借出 for a loan, 在用 otherwise) through `asset_store.change`. The recipient
confirms receipt with the check of hardware and software (领取时检查硬软件的完好性): 完好, or a
problem that opens a fault ticket for that asset. Returns, collections and damage are in
handlers/loans.py (registered on this router).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.cardkeys import CardAction
from bot.cards import Button
from bot.context import Ctx
from bot.conversation import start_form
from bot.router import Field, FieldError, Router
from bot.timeparse import TimeParseError, local_now, parse_date
from handlers import asset_store
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
from handlers.asset_store import EventKind
from handlers.faults import open_ticket
from handlers.labels import HasRenderer, Labels, show_iso_day
from handlers.numbers import REQUEST_NUMBER as NUMBER
from storage.models import Asset, AssetKind, AssetState, Card, ComputerIssue, ComputerPurpose, Request, Ticket, Timer

router = Router("computers", templates=Path(__file__).with_name("templates") / "computers")
router.requires_chain("computer_office", "领电脑 (科室)")
router.requires_chain("computer_department", "领电脑 (系部)")


class ComputerButton(StrEnum):
    ISSUE = "issue"
    RECEIVED_OK = "received_ok"  # the recipient: 完好
    RECEIVED_PROBLEM = "received_problem"  # the recipient: 有问题 (asks what)


@dataclass(frozen=True)
class ComputerClick(CardAction, prefix="pc", subject="request"):
    """A button on an approved requisition: the technician's 登记发放, the recipient's 完好 / 有问题."""

    request: int
    button: ComputerButton


class ComputerStage(StrEnum):
    """`requests.stage` of an approved requisition."""

    AWAITING_ISSUE = "awaiting_issue"  # a technician records the asset numbers
    AWAITING_RECEIPT = "awaiting_receipt"  # the recipient confirms (使用人签字)
    DONE = "done"


# What may be requisitioned, and the technicians' skill that looks after it.
LOAN_KINDS = (AssetKind.COMPUTER, AssetKind.PROJECTOR, AssetKind.SPEAKER)
SKILL_OF = {AssetKind.COMPUTER: "computer", AssetKind.PROJECTOR: "projector", AssetKind.SPEAKER: "stage"}

LABELS = Labels("labels_computers", purpose=ComputerPurpose, stage=ComputerStage, kind=LOAN_KINDS, state=AssetState)
OK_WORDS = ("完好", "都好", "正常", "没问题", "没有问题", "无问题", "好", "ok", "good")
SOFTWARE_WORDS = ("软件", "系统", "software", "系統")
HARDWARE_WORDS = ("硬件", "hardware")
PROBLEM_PREFIXES = ("有问题", "有故障", "问题", "故障", "problem")

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


def kind_of(req: Request) -> AssetKind:
    """What a requisition asks for (requests before projectors and speakers have no `kind`)."""
    return AssetKind(req.fields.get("kind", AssetKind.COMPUTER))


def kind_name(ctx: HasRenderer, kind: str) -> str:
    return LABELS.name(ctx, "kind", kind)


def facts(ctx: Ctx, req: Request) -> list[tuple[str, str]]:
    f = req.fields
    unit = ctx.org.unit_of(req.requester)
    rows = [
        (LABELS(ctx, "row_unit"), unit.name if unit else ""),
        (LABELS(ctx, "row_kind"), kind_name(ctx, kind_of(req))),
        (LABELS(ctx, "row_purpose"), purpose_name(ctx, f["purpose"])),
        (LABELS(ctx, "row_count"), LABELS(ctx, "count", count=f["count"], kind=kind_of(req))),
        (LABELS(ctx, "row_spec"), f["spec"]),
    ]
    if f.get("return_date"):
        rows.append((LABELS(ctx, "row_return_date"), show_iso_day(ctx, f["return_date"])))
    return rows


def viewers(ctx: Ctx, req: Request) -> list[str]:
    return ctx.org.technicians(SKILL_OF[kind_of(req)])


def issuers(ctx: Ctx, requester: str, kind: AssetKind) -> list[str]:
    """The technicians who issue and collect `kind` for `requester`: same campus first, else all."""
    person = ctx.org.person(requester)
    techs = ctx.org.technicians(SKILL_OF[kind], person.campus if person else None)
    local = [t for t in techs if person and ctx.org.person(t).campus == person.campus]  # type: ignore[union-attr]
    return local or techs


async def on_approved(ctx: Ctx, req: Request) -> None:
    """Approved at the chain's last step: the kind's technicians (same campus first) get an issue card."""
    req.stage = ComputerStage.AWAITING_ISSUE
    block = ctx.renderer.block
    kind = kind_name(ctx, kind_of(req))
    await send_request_cards(
        ctx,
        req,
        issuers(ctx, req.requester, kind_of(req)),
        title=block("cards_computers", "computer_issue_title", number=req.id, kind=kind) or "",
        desc=block(
            "cards_computers", "computer_issue_desc", number=req.id, requester=ctx.org.name(req.requester), kind=kind
        )
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


REQUEST_FIELDS = (
    Field("purpose", ("用途", "purpose"), parse=parse_purpose, show=LABELS.show("purpose")),
    Field("count", ("数量", "數量", "count"), parse=parse_count),
    Field("spec", ("配置", "要求", "型号", "spec"), parse=parse_required),
    Field(
        "return_date",
        ("归还日期", "歸還日期", "归还", "return"),
        parse=parse_return_date,
        required_if=lambda v: v.get("purpose") == ComputerPurpose.LOAN,
        show=lambda v, c: show_iso_day(c, v),
    ),
)


@router.command(
    "request_computer",
    aliases=("领电脑", "領電腦", "申请电脑", "领取电脑", "借电脑", "computer"),
    fields=REQUEST_FIELDS,
    members_only=True,
)
async def request_computer(ctx: Ctx, values: dict[str, str]) -> None:
    """Request computers; the chain depends on whether you are in an office or a department."""
    await _request(ctx, values, AssetKind.COMPUTER)


@router.command(
    "request_projector",
    aliases=("领投影仪", "領投影儀", "借投影仪", "借投影儀", "申请投影仪", "borrow projector"),
    fields=REQUEST_FIELDS,
    members_only=True,
)
async def request_projector(ctx: Ctx, values: dict[str, str]) -> None:
    """Request projectors, on the same chains as computers."""
    await _request(ctx, values, AssetKind.PROJECTOR)


@router.command(
    "request_speaker",
    aliases=("领音响", "領音響", "申请音响", "申請音響", "领取音响", "request speaker"),
    fields=REQUEST_FIELDS,
    members_only=True,
)
async def request_speaker(ctx: Ctx, values: dict[str, str]) -> None:
    """Request speakers (音响), on the same chains as computers."""
    await _request(ctx, values, AssetKind.SPEAKER)


async def _request(ctx: Ctx, values: dict[str, str], kind: AssetKind) -> None:
    unit = ctx.org.unit_of(ctx.user)
    if unit is None:
        ctx.reply("not_in_directory")
        return
    fields = {k: values[k] for k in ("purpose", "count", "spec")}
    if values.get("return_date") and values["purpose"] == ComputerPurpose.LOAN:
        fields["return_date"] = values["return_date"]
    if kind != AssetKind.COMPUTER:
        fields["kind"] = kind
    # Offices and departments have their own chains; each chain says whose requests it takes.
    office = ctx.config.chains["computer_office"].applies_to == unit.kind
    chain = "computer_office" if office else "computer_department"
    req = await submit(ctx, SPEC, chain, fields)
    flow = flow_of(req)
    ctx.reply(
        "computer_submitted",
        number=req.id,
        count=fields["count"],
        unit=LABELS(ctx, "unit", kind=kind),
        kind=kind_name(ctx, kind),
        purpose=purpose_name(ctx, fields["purpose"]),
        return_date=show_iso_day(ctx, fields["return_date"]) if fields.get("return_date") else "",
        next=[ctx.org.name(u) for u in flow.pending_approvers()],
        chain=[ctx.render("role_name", role=s.role) for s in flow.steps],
    )


@router.action(ComputerClick)
async def computer_click(ctx: Ctx, card: Card, click: ComputerClick) -> None:
    """A technician's 登记发放 (asks for the asset numbers); the recipient's 完好 / 有问题."""
    req = await request_of(ctx, card)
    if req is None:
        return
    if click.button is ComputerButton.RECEIVED_OK:
        await _receive(ctx, req, "")
        return
    if click.button is ComputerButton.RECEIVED_PROBLEM:
        if await _receivable(ctx, req) is not None:
            await start_form(ctx, "receipt_problem", {"number": str(req.id)})
        return
    if ctx.person is None or "technician" not in ctx.person.roles:
        ctx.reply("computer_issue_who")
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
    numbers = values["assets"].split()
    if len(numbers) != int(req.fields["count"]):
        ctx.reply("computer_count_mismatch", number=req.id, expected=req.fields["count"], got=len(numbers))
        return
    kind = kind_of(req)
    assets, problems = await _issuable(ctx, kind, numbers)
    if problems:
        ctx.reply("computer_assets_refused", number=req.id, kind=kind_name(ctx, kind), problems=problems)
        return
    unit = ctx.org.unit_of(req.requester)
    issue = ComputerIssue(
        request_id=req.id,
        recipient=req.requester,
        unit=unit.name if unit else "",
        purpose=req.fields["purpose"],
        spec=req.fields["spec"],
        kind=kind,
        assets={"numbers": [a.number for a in assets]},
        issued_by=ctx.user,
        issued_at=ctx.now(),
        due_back=req.fields.get("return_date"),
    )
    ctx.session.add(issue)
    await ctx.session.flush()
    state = AssetState.LENT if issue.purpose == ComputerPurpose.LOAN else AssetState.IN_USE
    for a in assets:
        asset_store.change(
            ctx.session,
            a,
            kind=EventKind.ISSUED,
            actor=ctx.user,
            at=ctx.now(),
            ref=f"request:{req.id}",
            note=values.get("note", ""),
            state=state,
            holder=req.requester,
            unit=issue.unit,
        )
    numbers = issue.assets["numbers"]
    req.stage = ComputerStage.AWAITING_RECEIPT
    audit(ctx, req, "computer_issued", req.status, assets=numbers, note=values.get("note", ""))
    block = ctx.renderer.block
    label = block("cards_computers", "computer_issued", name=ctx.org.name(ctx.user)) or ""
    await close_request_cards(ctx, req, label, purpose="fulfil")
    name = kind_name(ctx, kind)
    await send_request_cards(
        ctx,
        req,
        [req.requester],
        title=block("cards_computers", "receipt_title", number=req.id, kind=name) or "",
        desc=block("cards_computers", "receipt_desc", number=req.id, kind=name, tech=ctx.org.name(ctx.user)) or "",
        rows=[(LABELS(ctx, "row_assets"), "、".join(numbers)), *facts(ctx, req)[2:]],
        buttons=[
            Button(block("cards_computers", "receipt_ok") or "", ComputerClick(req.id, ComputerButton.RECEIVED_OK)),
            Button(
                block("cards_computers", "receipt_problem") or "",
                ComputerClick(req.id, ComputerButton.RECEIVED_PROBLEM),
                style=2,
            ),
        ],
        purpose="receipt",
    )
    ctx.reply("computer_issue_saved", number=req.id, assets=numbers, kind=name)
    _schedule_reminders(ctx, issue)


async def _issuable(ctx: Ctx, kind: AssetKind, numbers: list[str]) -> tuple[list[Asset], list[dict[str, str]]]:
    """The assets to issue, locked, or what is wrong with each number that cannot be issued."""
    assets: list[Asset] = []
    problems: list[dict[str, str]] = []
    seen: set[str] = set()
    for typed in numbers:
        number = asset_store.normalize_number(typed)
        if number in seen:
            problems.append({"number": typed, "why": "twice"})
            continue
        seen.add(number)
        a = await asset_store.find(ctx.session, number, for_update=True)
        if a is None:
            problems.append({"number": typed, "why": "unknown"})
        elif a.kind != kind:
            problems.append(
                {"number": a.number, "why": "kind", "kind": kind_name(ctx, a.kind) if a.kind in LOAN_KINDS else ""}
            )
        elif a.state != AssetState.IN_STORE:
            problems.append(
                {
                    "number": a.number,
                    "why": "state",
                    "state": LABELS.name(ctx, "state", a.state),
                    "holder": ctx.org.name(a.holder) if a.holder else "",
                }
            )
        else:
            assets.append(a)
    return assets, problems


def _at_hour(ctx: Ctx, day: date) -> datetime:
    tz = ZoneInfo(ctx.config.scheduler.timezone)
    return datetime.combine(day, time(ctx.config.computers.reminder_hour), tz)


def _schedule_reminders(ctx: Ctx, issue: ComputerIssue) -> None:
    """A loan's reminder on its return date; term-end and holiday collections are the daily
    collection job's (handlers/loans.py), which lists whatever is still out on those days."""
    if issue.due_back:
        ctx.session.add(
            Timer(
                kind="loan_return",
                ref=str(issue.id),
                due_at=_at_hour(ctx, date.fromisoformat(issue.due_back)),
                payload={"issue": issue.id},
            )
        )


@router.command(
    "confirm_computer",
    aliases=("确认领取", "確認領取", "confirm"),
    positional=True,
    fields=(NUMBER, Field("check", ("检查", "檢查", "情况", "check"), required=False)),
)
async def confirm_computer(ctx: Ctx, values: dict[str, str]) -> None:
    """确认领取 #编号 [完好 | 有问题 资产号 硬件/软件 说明] — the recipient confirms receipt (使用人签字)
    with the check of hardware and software; without a word after the number: 完好."""
    req = await visible_request(ctx, values["number"])
    if req is None:
        return
    check = values.get("check", "").strip()
    low = check.lower()
    if any(low.startswith(w) for w in OK_WORDS) and not any(low.startswith(w) for w in PROBLEM_PREFIXES):
        check = ""
    await _receive(ctx, req, check)


@router.command(
    "receipt_problem",
    aliases=("领取有问题", "領取有問題", "receipt problem"),
    positional=True,
    fields=(NUMBER, Field("problem", ("问题", "問題", "说明", "problem"), parse=parse_required)),
    in_help=False,  # the 有问题 button of the receipt card asks it; 确认领取 #n 有问题 … also works
)
async def receipt_problem(ctx: Ctx, values: dict[str, str]) -> None:
    """领取有问题 #编号 资产号 硬件/软件 说明 — received, with a problem: a fault ticket is opened."""
    req = await visible_request(ctx, values["number"])
    if req is not None:
        await _receive(ctx, req, values["problem"])


async def _receivable(ctx: Ctx, req: Request) -> ComputerIssue | None:
    if req.workflow != SPEC.key or req.requester != ctx.user or req.stage != ComputerStage.AWAITING_RECEIPT:
        ctx.reply("computer_confirm_refused", number=req.id, stage=req.stage)
        return None
    q = select(ComputerIssue).where(ComputerIssue.request_id == req.id).with_for_update()
    issue = (await ctx.session.execute(q)).scalar_one()
    if issue.returned_at is not None:  # collected before anyone confirmed: nothing left to receive
        ctx.reply("computer_confirm_refused", number=req.id, stage=req.stage)
        return None
    return issue


def parse_problem(text: str, numbers: list[str]) -> tuple[list[str], bool, bool, str] | None:
    """'PC-01 软件 没装Office' → (["PC-01"], hardware ok, software ok, note); None when it names no
    issued asset and more than one was issued."""
    for p in PROBLEM_PREFIXES:
        if text.lower().startswith(p):
            text = text[len(p) :].strip(" :：,，")
            break
    named: list[str] = []
    rest: list[str] = []
    for word in text.split():
        n = asset_store.normalize_number(word)
        (named if n in numbers else rest).append(n if n in numbers else word)
    if not named:
        if len(numbers) != 1:
            return None
        named = list(numbers)
    said = " ".join(rest).lower()
    software = any(w in said for w in SOFTWARE_WORDS)
    hardware = any(w in said for w in HARDWARE_WORDS) or not software
    # The note is what is wrong: a leading 硬件/软件 (its own word or not) only says which.
    words = [w for w in rest if w.lower() not in (*SOFTWARE_WORDS, *HARDWARE_WORDS)]
    note = " ".join(words)
    for w in (*SOFTWARE_WORDS, *HARDWARE_WORDS):
        if note.lower().startswith(w):
            note = note[len(w) :].lstrip(":：,， ")
    return list(dict.fromkeys(named)), not hardware, not software, note


async def _receive(ctx: Ctx, req: Request, problem: str) -> None:
    """Receipt confirmed; `problem` ("" when all is well) is recorded, and opens a ticket per asset."""
    issue = await _receivable(ctx, req)
    if issue is None:
        return
    numbers: list[str] = issue.assets["numbers"]
    kind = AssetKind(issue.kind)
    named: list[str] = []
    hardware_ok = software_ok = True
    note = ""
    if problem:
        parsed = parse_problem(problem, numbers)
        if parsed is None or not parsed[3]:
            ctx.reply("computer_receipt_which", number=req.id, assets=numbers, kind=kind_name(ctx, kind))
            return
        named, hardware_ok, software_ok, note = parsed
    issue.confirmed_at = ctx.now()
    req.stage = ComputerStage.DONE
    items: list[dict[str, Any]] = []
    for number in numbers:
        asset = await asset_store.find(ctx.session, number, for_update=True)
        if asset is None:  # issued from the register, never deleted
            continue
        bad = number in named
        check = LABELS(
            ctx,
            "receipt_check",
            hardware=hardware_ok or not bad,
            software=software_ok or not bad,
            note=note if bad else "",
        )
        asset_store.change(
            ctx.session,
            asset,
            kind=EventKind.RECEIVED,
            actor=ctx.user,
            at=ctx.now(),
            ref=f"request:{req.id}",
            note=check,
        )
        if bad:
            ticket = await open_receipt_ticket(ctx, issue, asset, note, hardware_ok)
            items.append(
                {"number": number, "hardware": hardware_ok, "software": software_ok, "note": note, "ticket": ticket.id}
            )
    issue.receipt = {"ok": not items, "items": items}
    audit(ctx, req, "computer_received", req.status, receipt=issue.receipt)
    block = ctx.renderer.block
    await close_request_cards(
        ctx,
        req,
        block("cards_computers", "receipt_done_problem" if items else "receipt_done_ok") or "",
        purpose="receipt",
    )
    due_back = show_iso_day(ctx, issue.due_back) if issue.due_back else None
    facts = {"number": req.id, "assets": numbers, "kind": kind_name(ctx, kind), "problems": items}
    ctx.reply("computer_confirmed", due_back=due_back, **facts)
    ctx.tell(issue.issued_by, "computer_receipt_notice", name=ctx.org.name(ctx.user), **facts)


async def open_receipt_ticket(ctx: Ctx, issue: ComputerIssue, asset: Asset, note: str, hardware_ok: bool) -> Ticket:
    """A problem found at receipt: a fault ticket for that asset, reported by the recipient."""
    ticket = await open_ticket(
        ctx,
        LABELS(ctx, "ticket_location", unit=issue.unit, holder=ctx.org.name(issue.recipient)),
        SKILL_OF[AssetKind(issue.kind)],
        LABELS(
            ctx,
            "ticket_receipt",
            number=issue.request_id,
            asset=asset.number,
            kind=kind_name(ctx, issue.kind),
            hardware=hardware_ok,
            note=note,
        ),
        asset=asset,
    )
    return ticket


# Returns, collections and damage register on this router; imported last, as they build on what
# is defined above.
from handlers import loans  # noqa: E402, F401
