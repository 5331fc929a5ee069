"""进度 / 我的申请 / 待办 — one way to find anything: tickets (报修), requests (申请), drafts (稿件),
tasks (任务), micro-lessons (微课) and activity services (活动服务).

Each kind keeps its own numbers (handlers/numbers.py); `进度 #12` without a kind looks among all
three for what the asker may see: one match shows its progress, several are listed with their
kind to pick from. 我的申请 lists the asker's tickets, requests and drafts; 待办 lists what waits
for them: approvals, tickets they may claim and own, drafts to review or publish, footage to log,
computers to issue or to confirm, equipment condition to report after an event.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.context import Ctx
from bot.router import Router
from bot.timeparse import local_now
from handlers import activity, approval_commands, duties, faults, microlessons, publishing
from handlers.approval_engine import FlowStatus
from handlers.approvals import APPROVAL_LABELS, can_see, flow_of, spec_for
from handlers.computers import SKILL_OF, ComputerStage, kind_of
from handlers.computers import kind_name as asset_kind_name
from handlers.footage import FootageStage
from handlers.labels import show_moment
from handlers.numbers import ANY_NUMBER, Kind, kind_name, parse_ref, show_ref
from handlers.stage import BookingStage
from storage.models import ActivityBooking, Booking, Draft, MicroLesson, Request, Task, Ticket

router = Router("find", templates=Path(__file__).with_name("templates") / "find")


@dataclass(frozen=True)
class Found:
    """Something a number names that the asker may see."""

    kind: Kind
    item: Ticket | Request | Draft | Task | MicroLesson | ActivityBooking


# -- one line per item, whatever its kind -----------------------------------------------------
def _line(ref: str, what: str, status: str) -> dict[str, Any]:
    """`text` is the kind, the number and what it is: 报修 #3 投影 · 302教室, 稿件 #1《标题》."""
    return {"ref": ref, "what": what, "status": status, "text": ref + ("" if what.startswith("《") else " ") + what}


def ticket_line(ctx: Ctx, t: Ticket) -> dict[str, Any]:
    r = faults.row(ctx, t)
    status = f"{r['status']}（{r['owner']}）" if r["owner"] and t.status != "open" else r["status"]
    return _line(show_ref(ctx, Kind.TICKET, t.id), f"{r['category']} · {r['location']}", status)


def request_status(ctx: Ctx, req: Request) -> str:
    """审批中，等待刘娜 / 已通过（等待发放）/ 已驳回 …"""
    status = APPROVAL_LABELS.name(ctx, "status", req.status)
    if req.status == FlowStatus.PENDING:
        waiting = [ctx.org.name(u) for u in flow_of(req).pending_approvers()]
        return ctx.render("request_status", status=status, waiting=waiting, stage="")
    stage = spec_for(ctx, req.workflow).stage_name(ctx, req.stage) if req.status == FlowStatus.APPROVED else ""
    return ctx.render("request_status", status=status, waiting=[], stage=stage)


def request_line(ctx: Ctx, req: Request) -> dict[str, Any]:
    return _line(show_ref(ctx, Kind.REQUEST, req.id), spec_for(ctx, req.workflow).title(ctx), request_status(ctx, req))


async def draft_line(ctx: Ctx, d: Draft) -> dict[str, Any]:
    r = await publishing.row(ctx, d)
    return _line(show_ref(ctx, Kind.DRAFT, d.id), f"《{r['title']}》", str(r["status"]))


async def line(ctx: Ctx, found: Found) -> dict[str, Any]:
    if isinstance(found.item, MicroLesson):
        m = found.item
        return _line(
            show_ref(ctx, Kind.MICROLESSON, m.id), f"{m.course}《{m.topic}》", microlessons.stage_name(ctx, m.stage)
        )
    if isinstance(found.item, ActivityBooking):
        b = found.item
        return _line(show_ref(ctx, Kind.ACTIVITY, b.id), b.activity, activity.LABELS.name(ctx, "status", b.status))
    if isinstance(found.item, Task):
        t = found.item
        return _line(show_ref(ctx, Kind.TASK, t.id), t.title, duties.status_name(ctx, t))
    if isinstance(found.item, Ticket):
        return ticket_line(ctx, found.item)
    if isinstance(found.item, Request):
        return request_line(ctx, found.item)
    return await draft_line(ctx, found.item)


# -- 进度 -------------------------------------------------------------------------------------
async def visible(ctx: Ctx, kinds: tuple[Kind, ...], number: int) -> tuple[list[Found], bool]:
    """What `number` names among `kinds` that the asker may see; and whether a confidential
    request has that number (asked in a group, even its existence moves to a private chat)."""
    found: list[Found] = []
    confidential = False
    if Kind.TICKET in kinds:
        t = await ctx.session.get(Ticket, number)
        if t is not None and faults.can_see(ctx, t):
            found.append(Found(Kind.TICKET, t))
    if Kind.REQUEST in kinds:
        req = await ctx.session.get(Request, number)
        confidential = req is not None and req.confidential
        if req is not None and can_see(ctx, req, ctx.user):
            found.append(Found(Kind.REQUEST, req))
    if Kind.DRAFT in kinds:
        d = await ctx.session.get(Draft, number)
        if d is not None and publishing.can_see(ctx, d):
            found.append(Found(Kind.DRAFT, d))
    if Kind.TASK in kinds:
        task = await ctx.session.get(Task, number)
        if task is not None and duties.may_see(ctx, task):
            found.append(Found(Kind.TASK, task))
    if Kind.MICROLESSON in kinds:
        lesson = await ctx.session.get(MicroLesson, number)
        if lesson is not None and microlessons.may_see(ctx, lesson):
            found.append(Found(Kind.MICROLESSON, lesson))
    if Kind.ACTIVITY in kinds:
        b = await ctx.session.get(ActivityBooking, number)
        if b is not None and activity.may_see(ctx, b):
            found.append(Found(Kind.ACTIVITY, b))
    return found, confidential


async def show(ctx: Ctx, found: Found) -> None:
    if isinstance(found.item, MicroLesson):
        microlessons.show_progress(ctx, found.item)
    elif isinstance(found.item, ActivityBooking):
        activity.show_progress(ctx, found.item)
    elif isinstance(found.item, Task):
        duties.show_task(ctx, found.item)
    elif isinstance(found.item, Ticket):
        await faults.show_progress(ctx, found.item)
    elif isinstance(found.item, Request):
        await approval_commands.show_progress(ctx, found.item)
    else:
        await publishing.show_progress(ctx, found.item)


@router.command("progress", aliases=("进度", "進度", "status", "progress"), positional=True, fields=(ANY_NUMBER,))
async def progress(ctx: Ctx, values: dict[str, str]) -> None:
    """进度 [#编号] — where a ticket, request, draft, task, 微课 or 活动服务 stands; without a number, 我的申请."""
    if not values.get("number"):
        await my_requests(ctx, values)
        return
    ref = parse_ref(values["number"])  # as the field kept it: B12, 12
    kinds = (ref.kind,) if ref.kind else tuple(Kind)
    found, confidential = await visible(ctx, kinds, ref.number)
    if ctx.in_group and (not found or confidential):
        ctx.go_private()  # whether it exists or not is itself nobody else's business
    if not found:
        ctx.reply("nothing_found", number=ref.number, kind=kind_name(ctx, ref.kind) if ref.kind else "")
    elif len(found) == 1:
        await show(ctx, found[0])
    else:
        ctx.reply(
            "progress_choices",
            number=ref.number,
            items=[await line(ctx, f) for f in found],
            letters=[(kind_name(ctx, f.kind), f.kind.value) for f in found],
        )


# -- 我的申请 ----------------------------------------------------------------------------------
@router.command("my_requests", aliases=("我的申请", "我的申請", "mine", "my requests"))
async def my_requests(ctx: Ctx, values: dict[str, str]) -> None:
    """我的申请 — my tickets, requests and drafts, newest first, with where each stands."""
    tickets = await faults.reported_by_me(ctx)
    requests = list(
        (
            await ctx.session.execute(
                select(Request).where(Request.requester == ctx.user).order_by(Request.id.desc()).limit(20)
            )
        ).scalars()
    )
    drafts = await publishing.mine(ctx)
    ctx.reply(
        "mine",
        tickets=[ticket_line(ctx, t) for t in tickets],
        requests=[request_line(ctx, r) for r in requests],
        drafts=[await draft_line(ctx, d) for d in drafts],
    )


# -- 待办 -------------------------------------------------------------------------------------
async def _approvals(ctx: Ctx) -> list[dict[str, Any]]:
    rows = (
        await ctx.session.execute(select(Request).where(Request.status == FlowStatus.PENDING).order_by(Request.id))
    ).scalars()
    tz = ctx.config.scheduler.timezone
    return [
        {
            "text": show_ref(ctx, Kind.REQUEST, r.id),
            "number": r.id,
            "title": spec_for(ctx, r.workflow).title(ctx),
            "requester": ctx.org.name(r.requester),
            "since": show_moment(ctx, local_now(r.step_started_at, tz)),
        }
        for r in rows
        if ctx.user in flow_of(r).pending_approvers()
    ]


async def _requests_at(ctx: Ctx, workflow: str, stage: str, requester: str | None = None) -> list[Request]:
    q = select(Request).where(
        Request.workflow == workflow, Request.status == FlowStatus.APPROVED, Request.stage == stage
    )
    if requester is not None:
        q = q.where(Request.requester == requester)
    return list((await ctx.session.execute(q.order_by(Request.id))).scalars())


def _has(ctx: Ctx, role: str, skill: str | None = None) -> bool:
    p = ctx.person
    return p is not None and role in p.roles and (skill is None or skill in p.skills)


async def _conditions_due(ctx: Ctx) -> list[Request]:
    """My approved bookings that have ended without a report of how the equipment ran."""
    rows = (
        await ctx.session.execute(
            select(Request)
            .join(Booking, Booking.request_id == Request.id)
            .where(
                Request.requester == ctx.user,
                Request.status == FlowStatus.APPROVED,
                Request.stage == BookingStage.BOOKED,
                Booking.holds.is_(True),
                Booking.condition.is_(None),
                Booking.end_at <= ctx.now(),
            )
            .order_by(Request.id)
        )
    ).scalars()
    return list(rows)


@router.command("pending", aliases=("待办", "待辦", "todo", "pending"))
async def pending(ctx: Ctx, values: dict[str, str]) -> None:
    """待办 — everything waiting for me, each with the command that does it."""
    claimable, claimable_total = await faults.claimable(ctx)
    me = ctx.person
    review = [
        {**await draft_line(ctx, d), "number": d.id, "part": publishing.LABELS.name(ctx, "part", part)}
        for d, part in await publishing.to_review(ctx)
    ]
    sections = {
        "approvals": await _approvals(ctx),
        "claimable": [
            {**ticket_line(ctx, t), "number": t.id, "elsewhere": me is not None and t.campus != me.campus}
            for t in claimable
        ],
        "claimable_more": claimable_total - len(claimable),
        "owned": [{**ticket_line(ctx, t), "number": t.id} for t in await faults.owned_by_me(ctx)],
        "review": review,
        "publish": [{**await draft_line(ctx, d), "number": d.id} for d in await publishing.to_publish(ctx)],
        "footage": [
            {**request_line(ctx, r), "number": r.id}
            for r in (
                await _requests_at(ctx, "footage", FootageStage.AWAITING_RETRIEVAL)
                if _has(ctx, "cctv_operator")
                else []
            )
        ],
        "issue": [  # a projector to the projector technicians, a speaker to the stage's
            {**request_line(ctx, r), "number": r.id, "kind": asset_kind_name(ctx, kind_of(r))}
            for r in await _requests_at(ctx, "computer", ComputerStage.AWAITING_ISSUE)
            if _has(ctx, "technician", SKILL_OF[kind_of(r)])
        ],
        "receipt": [
            {**request_line(ctx, r), "number": r.id, "kind": asset_kind_name(ctx, kind_of(r))}
            for r in await _requests_at(ctx, "computer", ComputerStage.AWAITING_RECEIPT, requester=ctx.user)
        ],
        "condition": [{**request_line(ctx, r), "number": r.id} for r in await _conditions_due(ctx)],
    }
    total = sum(len(v) for v in sections.values() if isinstance(v, list))
    ctx.reply("todo", total=total, **sections)
