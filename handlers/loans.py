"""归还 / 回收 / 追责 — returns and collections of issued computers, projectors and speakers.

The holder announces a return (`归还 #n`); the technician checks and collects (`回收 #n 完好`,
`回收 #n 损坏 屏幕碎裂`, per asset when several were issued: `回收 #n PJ-01 完好 PJ-02 损坏 镜头划伤`).
Each asset goes back in store with no holder (RETURNED); when all are back the issue is returned.
Damage on return opens a fault ticket flagged 人为损坏 for that asset and an accountability record
(`loan_damages`): the holder gets a card to 接受 or 拒绝; a refusal goes to the 校委会 and the
director, like the stage's 赔偿 (handlers/stage_damage.py). `追责 #n [资产号] 300` sets the amount,
`追责 #n 已付` records the payment.

Collections follow the school calendar (`[calendar]`, `[computers]`): a few workdays before each
term's end and each holiday, technicians and the director get the list of what is still out and
each holder a reminder. A loan's return date reminds the holder; days later, the technician.

Registered on the computers router (handlers/computers.py imports this module at its end).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select

from bot.cardkeys import CardAction
from bot.cards import Button
from bot.config import Config
from bot.context import Ctx
from bot.conversation import start_form
from bot.router import Field, FieldError, Job
from bot.timeparse import local_now
from handlers import asset_store, liability
from handlers.approval_commands import parse_required, visible_request
from handlers.approvals import audit, close_request_cards, send_request_cards
from handlers.asset_store import EventKind
from handlers.computers import LABELS, SKILL_OF, SPEC, ComputerStage, _at_hour, issuers, kind_name, router
from handlers.faults import open_ticket
from handlers.labels import Labels, show_iso_day, show_moment
from handlers.liability import PAID_WORDS, cents, yuan
from handlers.numbers import REQUEST_NUMBER as NUMBER
from storage.models import (
    Asset,
    AssetKind,
    AssetState,
    Card,
    ComputerIssue,
    DamageStatus,
    LoanDamage,
    Request,
    Timer,
)

DAMAGE_LABELS = Labels("labels_loans", status=DamageStatus)
KIND = liability.Kind(
    events="loan_damage",
    cards="cards_loans",
    accepted_label="accepted",
    refused_label="refused",
    paid_label="paid",
    accepted_you="loan_damage_accepted_you",
    accepted="loan_damage_accepted",
    refused_you="loan_damage_refused_you",
    refused_committee="loan_damage_refused_committee",
    paid="loan_damage_paid",
    paid_tell="loan_damage_paid_holder",
)
OK_WORDS = ("完好无损", "完好", "正常", "无损", "没问题", "好", "ok", "good", "intact")
DAMAGED_WORDS = ("人为损坏", "损坏", "损毁", "坏了", "坏", "破损", "damaged", "broken")


class LoanDamageButton(StrEnum):
    ACCEPT = "accept"
    REFUSE = "refuse"


@dataclass(frozen=True)
class LoanDamageClick(CardAction, prefix="ld", subject="request"):
    """The holder's answer to a damage record (接受 / 拒绝)."""

    request: int
    damage: int
    button: LoanDamageButton


def _local(ctx: Ctx, t: datetime) -> datetime:
    return local_now(t, ctx.config.scheduler.timezone)


# -- what is out ---------------------------------------------------------------------------------
def returned_numbers(issue: ComputerIssue) -> set[str]:
    return {str(i["number"]) for i in (issue.returns or {}).get("items", [])}


def out_numbers(issue: ComputerIssue) -> list[str]:
    back = returned_numbers(issue)
    return [n for n in issue.assets["numbers"] if n not in back]


async def outstanding(ctx: Ctx) -> list[ComputerIssue]:
    """Every issue with something still out, oldest first."""
    q = select(ComputerIssue).where(ComputerIssue.returned_at.is_(None)).order_by(ComputerIssue.issued_at)
    return [i for i in (await ctx.session.execute(q)).scalars() if out_numbers(i)]


def out_row(ctx: Ctx, issue: ComputerIssue) -> dict[str, Any]:
    """One line of a collection list: 申请 #3 投影仪 PJ-01 · 赵磊（信息工程系）· 11月25日起."""
    return {
        "number": issue.request_id,
        "kind": kind_name(ctx, issue.kind),
        "assets": out_numbers(issue),
        "holder": ctx.org.name(issue.recipient),
        "unit": issue.unit,
        "since": show_iso_day(ctx, _local(ctx, issue.issued_at).date().isoformat()),
        "due_back": show_iso_day(ctx, issue.due_back) if issue.due_back else "",
    }


async def _issue_of(ctx: Ctx, req: Request) -> ComputerIssue | None:
    if req.workflow != SPEC.key:
        return None
    q = select(ComputerIssue).where(ComputerIssue.request_id == req.id).with_for_update()
    return (await ctx.session.execute(q)).scalar_one_or_none()


# -- the holder announces a return -----------------------------------------------------------------
@router.command(
    "return_loan",
    aliases=("归还", "歸還", "还设备", "還設備", "return loan", "give back"),
    positional=True,
    fields=(NUMBER,),
    members_only=True,
)
async def return_loan(ctx: Ctx, values: dict[str, str]) -> None:
    """归还 #编号 — tell the center you are bringing back what you received; a technician checks it."""
    req = await visible_request(ctx, values["number"])
    if req is None:
        return
    issue = await _issue_of(ctx, req)
    if issue is None or issue.recipient != ctx.user:
        ctx.reply("loan_not_yours", number=req.id)
        return
    if issue.returned_at is not None:
        ctx.reply("loan_all_back", number=req.id, at=show_moment(ctx, _local(ctx, issue.returned_at)))
        return
    issue.return_announced_at = ctx.now()
    audit(ctx, req, "loan_return_announced", req.status, assets=out_numbers(issue))
    facts = out_row(ctx, issue)
    techs = list(dict.fromkeys([issue.issued_by, *issuers(ctx, issue.recipient, AssetKind(issue.kind))]))
    ctx.reply("loan_return_announced", tech=ctx.org.name(issue.issued_by), **facts)
    for t in techs[:2]:  # who issued it, and a colleague on the campus if they are away
        if t != ctx.user:
            ctx.tell(t, "loan_return_to_check", **facts)


# -- the technician collects ---------------------------------------------------------------------
def _condition(word: str) -> tuple[bool, str] | None:
    """'损坏' / '损坏:屏幕碎裂' / '完好' → (damaged, what follows the word in it)."""
    low = word.lower()
    for damaged, words in ((True, DAMAGED_WORDS), (False, OK_WORDS)):
        for w in words:
            if low.startswith(w):
                return damaged, word[len(w) :].lstrip(":：,，")
    return None


@dataclass
class Collected:
    numbers: list[str]
    damaged: bool
    note: str


def parse_collection(text: str, issued: list[str]) -> list[Collected] | str:
    """`完好` / `损坏 屏幕碎裂` (everything still out) or `PJ-01 完好 PJ-02 损坏 镜头划伤` (by number);
    "how" (no condition) or "what_damage" (damaged, not said how) otherwise."""
    groups: list[tuple[list[str], list[str]]] = [([], [])]
    for word in text.split():
        n = asset_store.normalize_number(word)
        if n in issued:
            if groups[-1][1]:  # words after a number and its condition: the next group begins
                groups.append(([], []))
            groups[-1][0].append(n)
        else:
            groups[-1][1].append(word)
    out: list[Collected] = []
    for i, (numbers, words) in enumerate(groups):
        if not words:
            return "how"
        cond = _condition(words[0])
        if cond is None or (i > 0 and not numbers):
            return "how"
        damaged, rest = cond
        note = " ".join([rest, *words[1:]]).strip()
        if damaged and not note:
            return "what_damage"
        out.append(Collected(numbers, damaged, note))
    return out


@router.command(
    "collect_loan",
    aliases=("回收", "收回", "回收设备", "collect"),
    positional=True,
    roles=("technician",),
    fields=(NUMBER, Field("detail", ("情况", "状况", "detail"), parse=parse_required)),
)
async def collect_loan(ctx: Ctx, values: dict[str, str]) -> None:
    """回收 #编号 完好 | 回收 #编号 [资产号] 损坏 说明 — check and take back what was issued."""
    req = await visible_request(ctx, values["number"])
    if req is None:
        return
    issue = await _issue_of(ctx, req)
    if issue is None:
        ctx.reply("loan_not_issued", number=req.id)
        return
    out = out_numbers(issue)
    if not out:
        at = show_moment(ctx, _local(ctx, issue.returned_at)) if issue.returned_at else ""
        ctx.reply("loan_all_back", number=req.id, at=at)
        return
    parsed = parse_collection(values["detail"], issue.assets["numbers"])
    if parsed == "what_damage":
        ctx.reply("loan_collect_what_damage", number=req.id, assets=out, example=out[-1])
        return
    if isinstance(parsed, str):
        ctx.reply("loan_collect_how", number=req.id, assets=out, example=out[-1])
        return
    plan: list[tuple[str, Collected]] = []
    for group in parsed:
        for n in group.numbers or out:
            if n not in out or any(n == p for p, _ in plan):
                ctx.reply("loan_collect_not_out", number=req.id, asset=n, assets=out)
                return
            plan.append((n, group))
    items = list((issue.returns or {}).get("items", []))
    damaged: list[dict[str, Any]] = []
    for n, group in plan:
        asset = await asset_store.find(ctx.session, n, for_update=True)
        if asset is None:  # issued from the register, never deleted
            continue
        asset_store.change(
            ctx.session,
            asset,
            kind=EventKind.RETURNED,
            actor=ctx.user,
            at=ctx.now(),
            ref=f"request:{req.id}",
            note=group.note,
            state=AssetState.IN_STORE,
            holder=None,
            unit="",
        )
        item: dict[str, Any] = {
            "number": n,
            "at": ctx.now().isoformat(),
            "by": ctx.user,
            "damaged": group.damaged,
            "note": group.note,
        }
        if group.damaged:
            d = await _record_damage(ctx, req, issue, asset, group.note)
            item["ticket"], item["damage"] = d.ticket_id, d.id
            damaged.append({"asset": n, "note": group.note, "ticket": d.ticket_id})
        items.append(item)
    issue.returns = {"items": items}  # a new dict: the JSON column sees the change
    left = out_numbers(issue)
    if not left:
        issue.returned_at = ctx.now()
        if req.stage == ComputerStage.AWAITING_RECEIPT:  # back before the receipt was confirmed
            req.stage = ComputerStage.DONE
            await close_request_cards(ctx, req, ctx.renderer.block("cards_loans", "returned") or "", purpose="receipt")
    audit(ctx, req, "loan_collected", req.status, assets=[n for n, _ in plan], damaged=damaged, left=left)
    facts = {
        **out_row(ctx, issue),
        "collected": [n for n, _ in plan],
        "damaged": damaged,
        "left": left,
        "tech": ctx.org.name(ctx.user),
    }
    ctx.reply("loan_collected", **facts)
    ctx.tell(issue.recipient, "loan_collected_holder", **facts)


async def _record_damage(ctx: Ctx, req: Request, issue: ComputerIssue, asset: Asset, note: str) -> LoanDamage:
    """人为损坏 on return: a ticket for the asset (flagged for 追责) and the accountability record."""
    kind = AssetKind(issue.kind)
    holder = ctx.org.name(issue.recipient)
    ticket = await open_ticket(
        ctx,
        LABELS(ctx, "ticket_location_store", asset=asset.number),
        SKILL_OF[kind],
        LABELS(
            ctx, "ticket_damage", number=req.id, asset=asset.number, kind=kind_name(ctx, kind), holder=holder, note=note
        ),
        asset=asset,
    )
    ticket.damage = True
    d = LoanDamage(
        issue_id=issue.id,
        asset_id=asset.id,
        ticket_id=ticket.id,
        liable_user=issue.recipient,
        amount_cents=None,
        note=note[:500],
        status=DamageStatus.OPEN,
        answer_note="",
        recorded_by=ctx.user,
        created_at=ctx.now(),
    )
    ctx.session.add(d)
    await ctx.session.flush()
    audit(ctx, req, "loan_damage_recorded", req.status, asset=asset.number, note=d.note, ticket=ticket.id)
    facts = _damage_facts(ctx, req, asset.number, d)
    await _damage_card(ctx, req, d, facts)
    for u in ctx.org.with_role("director"):
        if u != ctx.user:
            ctx.tell(u, "loan_damage_for_director", **facts)
    return d


def _damage_facts(ctx: Ctx, req: Request, asset: str, d: LoanDamage) -> dict[str, Any]:
    return {
        "number": req.id,
        "asset": asset,
        "holder": ctx.org.name(d.liable_user),
        "note": d.note,
        "ticket": d.ticket_id,
        "amount": yuan(d.amount_cents) if d.amount_cents is not None else "",
        "status": DAMAGE_LABELS.name(ctx, "status", d.status),
        "paid": d.paid_at is not None,
        "recorder": ctx.org.name(d.recorded_by),
        "reason": d.answer_note,
    }


async def _damage_card(ctx: Ctx, req: Request, d: LoanDamage, facts: dict[str, Any]) -> None:
    block = ctx.renderer.block
    purpose = f"damage:{d.id}"
    await close_request_cards(ctx, req, block("cards_loans", "damage_updated") or "", purpose=purpose)
    await send_request_cards(
        ctx,
        req,
        [d.liable_user],
        title=block("cards_loans", "damage_title", **facts) or "",
        desc=block("cards_loans", "damage_desc", **facts) or "",
        rows=[
            (block("cards_loans", "row_asset") or "", facts["asset"]),
            (block("cards_loans", "row_note") or "", facts["note"]),
            (block("cards_loans", "row_amount") or "", block("cards_loans", "amount", **facts) or ""),
        ],
        buttons=[
            Button(block("cards_loans", "accept") or "", LoanDamageClick(req.id, d.id, LoanDamageButton.ACCEPT)),
            Button(
                block("cards_loans", "refuse") or "", LoanDamageClick(req.id, d.id, LoanDamageButton.REFUSE), style=2
            ),
        ],
        purpose=purpose,
    )


# -- accountability: amount, paid, accepted or refused ----------------------------------------------
async def _damages(ctx: Ctx, req: Request) -> list[tuple[LoanDamage, str]]:
    q = (
        select(LoanDamage, Asset.number)
        .join(ComputerIssue, ComputerIssue.id == LoanDamage.issue_id)
        .join(Asset, Asset.id == LoanDamage.asset_id)
        .where(ComputerIssue.request_id == req.id)
        .order_by(LoanDamage.id)
        .with_for_update(of=LoanDamage)
    )
    return [(d, n) for d, n in (await ctx.session.execute(q)).all()]


def parse_amount_or_paid(value: str, ctx: Ctx) -> str:
    """[资产号] 300 | [资产号] 已付 → 'PJ-01 30000' / ' paid' (the number may be left out)."""
    words = value.split()
    if not words:
        raise FieldError("invalid_liability")
    last = words[-1]
    asset = asset_store.normalize_number(words[0]) if len(words) == 2 else ""
    if len(words) > 2:
        raise FieldError("invalid_liability")
    if last.lower() in PAID_WORDS:
        return f"{asset} paid"
    amount = cents(last)
    if amount is None:
        raise FieldError("invalid_liability")
    return f"{asset} {amount}"


@router.command(
    "loan_damage",
    aliases=("追责", "追責", "损坏赔偿", "損壞賠償", "liability"),
    positional=True,
    roles=("technician", "director"),
    fields=(NUMBER, Field("what", ("金额", "金額", "amount"), parse=parse_amount_or_paid)),
)
async def loan_damage(ctx: Ctx, values: dict[str, str]) -> None:
    """追责 #编号 [资产号] 金额 | 追责 #编号 [资产号] 已付 — the amount to pay for a damaged loan, or paid."""
    req = await visible_request(ctx, values["number"])
    if req is None:
        return
    asset, _, what = values["what"].partition(" ")
    found = [(d, n) for d, n in await _damages(ctx, req) if not asset or n == asset]
    if len(found) != 1:
        ctx.reply("loan_damage_which", number=req.id, assets=[n for _, n in await _damages(ctx, req)])
        return
    d, number = found[0]
    if what == "paid":
        if d.paid_at is not None:
            ctx.reply("loan_damage_paid_already", **_damage_facts(ctx, req, number, d))
            return
        told = partial(_damage_facts, ctx, req, number, d)
        await liability.paid(ctx, KIND, req, d, d.liable_user, f"damage:{d.id}", told, asset=number)
        return
    if d.paid_at is not None:
        ctx.reply("loan_damage_paid_already", **_damage_facts(ctx, req, number, d))
        return
    d.amount_cents, d.status, d.answered_at, d.answer_note = int(what), DamageStatus.OPEN, None, ""
    audit(ctx, req, "loan_damage_amount", req.status, asset=number, amount_cents=d.amount_cents)
    facts = _damage_facts(ctx, req, number, d)
    await _damage_card(ctx, req, d, facts)  # asked again, with the amount
    ctx.reply("loan_damage_amount_set", **facts)


async def _answerable(ctx: Ctx, number: str, damage: int | None = None) -> tuple[Request, LoanDamage, str] | None:
    req = await visible_request(ctx, number)
    if req is None:
        return None
    mine = [(d, n) for d, n in await _damages(ctx, req) if d.liable_user == ctx.user]
    if damage is not None:
        mine = [(d, n) for d, n in mine if d.id == damage]
    open_ = [(d, n) for d, n in mine if d.status == DamageStatus.OPEN and d.paid_at is None]
    if not mine:
        ctx.reply("loan_damage_none", number=req.id)
        return None
    if not open_:
        d, n = mine[-1]
        ctx.reply("loan_damage_answered", **_damage_facts(ctx, req, n, d))
        return None
    d, n = open_[0]
    return req, d, n


async def accept(ctx: Ctx, req: Request, d: LoanDamage, number: str) -> None:
    facts = partial(_damage_facts, ctx, req, number, d)
    await liability.accept(ctx, KIND, req, d, f"damage:{d.id}", facts, asset=number)


async def refuse(ctx: Ctx, req: Request, d: LoanDamage, number: str, reason: str) -> None:
    facts = partial(_damage_facts, ctx, req, number, d)
    await liability.refuse(ctx, KIND, req, d, reason, f"damage:{d.id}", facts, asset=number)


@router.action(LoanDamageClick)
async def damage_click(ctx: Ctx, card: Card, click: LoanDamageClick) -> None:
    found = await _answerable(ctx, str(click.request), click.damage)
    if found is None:
        return
    if click.button is LoanDamageButton.ACCEPT:
        await accept(ctx, *found)
    else:
        await start_form(ctx, "refuse_loan_damage", {"number": str(click.request)})


@router.command(
    "accept_loan_damage",
    aliases=("接受追责", "接受追責", "accept liability"),
    positional=True,
    fields=(NUMBER,),
    in_help=False,  # an answer to the 损坏追责 card, which names it
)
async def accept_loan_damage(ctx: Ctx, values: dict[str, str]) -> None:
    """接受追责 #编号 — accept to pay for what was damaged."""
    found = await _answerable(ctx, values["number"])
    if found is not None:
        await accept(ctx, *found)


@router.command(
    "refuse_loan_damage",
    aliases=("拒绝追责", "拒絕追責", "refuse liability"),
    positional=True,
    in_help=False,  # an answer to the 损坏追责 card, which names it
    fields=(NUMBER, Field("reason", ("原因", "理由", "reason"), parse=parse_required)),
)
async def refuse_loan_damage(ctx: Ctx, values: dict[str, str]) -> None:
    """拒绝追责 #编号 原因 — refuse; the center reports it to the 校委会."""
    found = await _answerable(ctx, values["number"])
    if found is not None:
        await refuse(ctx, *found, values["reason"])


# -- what is out, on demand and on the calendar's collection days ---------------------------------
@router.command(
    "loans_out", aliases=("借出清单", "借出清單", "在外设备", "loans out"), roles=("technician", "director")
)
async def loans_out(ctx: Ctx, values: dict[str, str]) -> None:
    """借出清单 — what is issued and not yet back: asset, holder, unit, since when."""
    ctx.reply("loans_out", items=[out_row(ctx, i) for i in await outstanding(ctx)])


def _holiday_spans(config: Config) -> list[tuple[date, date]]:
    spans = []
    for item in config.calendar.holidays:
        first, _, last = item.partition("..")
        spans.append((date.fromisoformat(first.strip()), date.fromisoformat((last or first).strip())))
    return spans


def _workdays_before(config: Config, boundary: date, n: int) -> date:
    """The n-th workday before `boundary` (1: the last workday before it)."""
    d, left = boundary, max(n, 1)
    while left:
        d -= timedelta(days=1)
        if config.calendar.workday(d):
            left -= 1
    return d


def collection_reasons(config: Config, day: date) -> list[dict[str, str]]:
    """Why `day` is a collection day: a term ends, a holiday begins, or it is a listed date."""
    c, out = config.computers, []
    for t in config.calendar.terms:
        if _workdays_before(config, t.end + timedelta(days=1), c.collection_lead_days) == day:
            out.append({"why": "term_end", "name": t.name, "date": t.end.isoformat()})
    for first, last in _holiday_spans(config):
        long_enough = (last - first).days + 1 >= c.collection_min_holiday_days
        in_term = config.calendar.in_term(first - timedelta(days=1))  # not a holiday within a break
        if long_enough and in_term and _workdays_before(config, first, c.collection_lead_days) == day:
            out.append({"why": "holiday", "name": "", "date": first.isoformat()})
    if day in c.collection_dates:
        out.append({"why": "date", "name": "", "date": day.isoformat()})
    return out


async def run_collection(ctx: Ctx, when: datetime) -> None:
    """On a collection day: the list of what is out to technicians and the director, a reminder to
    each holder."""
    day = local_now(when, ctx.config.scheduler.timezone).date()
    reasons = collection_reasons(ctx.config, day)
    if not reasons:
        return
    reason = reasons[0]
    context = {"why": reason["why"], "name": reason["name"], "date": show_iso_day(ctx, reason["date"])}
    issues = await outstanding(ctx)
    if not issues:
        return
    lists: dict[str, list[dict[str, Any]]] = {}
    for u in ctx.org.with_role("director"):
        lists[u] = [out_row(ctx, i) for i in issues]
    for i in issues:
        for t in dict.fromkeys([*issuers(ctx, i.recipient, AssetKind(i.kind))[:1], i.issued_by]):
            if t not in ctx.org.with_role("director"):
                lists.setdefault(t, []).append(out_row(ctx, i))
    for u, items in lists.items():
        ctx.tell(u, "loan_collection_list", items=items, **context)
    holders: dict[str, list[dict[str, Any]]] = {}
    for i in issues:
        holders.setdefault(i.recipient, []).append(out_row(ctx, i))
    for u, items in holders.items():
        ctx.tell(u, "loan_collection_due", items=items, **context)


@router.jobs_from
def collection_jobs(config: Config) -> Iterable[Job]:
    """Every day at the reminder hour: is it a collection day?"""
    tz = ZoneInfo(config.scheduler.timezone)
    trigger = CronTrigger(hour=config.computers.reminder_hour, minute=0, timezone=tz)
    yield Job("computers:collection", trigger, run_collection)


# -- a loan's return date ---------------------------------------------------------------------------
@router.timer("loan_return")
async def fire_loan_return(ctx: Ctx, timer: Timer) -> None:
    """The return date: the holder is reminded; `overdue_days` later, if not back, the technician."""
    issue = await ctx.session.get(ComputerIssue, int(timer.payload["issue"]))
    if issue is None or issue.returned_at is not None:
        return
    facts = out_row(ctx, issue)
    ctx.tell(issue.recipient, "loan_return_due", **facts)
    due = date.fromisoformat(issue.due_back or local_now(ctx.now(), ctx.config.scheduler.timezone).date().isoformat())
    ctx.session.add(
        Timer(
            kind="loan_overdue",
            ref=str(issue.id),
            due_at=_at_hour(ctx, due + timedelta(days=ctx.config.computers.overdue_days)),
            payload={"issue": issue.id},
        )
    )


@router.timer("loan_overdue")
async def fire_loan_overdue(ctx: Ctx, timer: Timer) -> None:
    issue = await ctx.session.get(ComputerIssue, int(timer.payload["issue"]))
    if issue is None or issue.returned_at is not None:
        return
    facts = out_row(ctx, issue)
    ctx.tell(issue.recipient, "loan_overdue", **facts)
    for t in dict.fromkeys([issue.issued_by, *issuers(ctx, issue.recipient, AssetKind(issue.kind))[:1]]):
        ctx.tell(t, "loan_overdue_tech", **facts)


@router.timer("computer_collection")
async def fire_collection(ctx: Ctx, timer: Timer) -> None:
    """A collection reminder scheduled per issue before collections followed the calendar."""
    issue = await ctx.session.get(ComputerIssue, int(timer.payload["issue"]))
    if issue is None or issue.returned_at is not None:
        return
    context = {"why": "date", "name": "", "date": show_iso_day(ctx, timer.payload["date"])}
    ctx.tell(issue.recipient, "loan_collection_due", items=[out_row(ctx, issue)], **context)


def register_returns(ctx: Any, issue: ComputerIssue) -> list[dict[str, Any]]:
    """The returns of an issue for the register's 备注: number, when, damaged and what."""
    return [
        {
            "number": i["number"],
            "at": ctx.local(datetime.fromisoformat(i["at"])),
            "damaged": bool(i.get("damaged")),
            "note": i.get("note", ""),
        }
        for i in (issue.returns or {}).get("items", [])
    ]
