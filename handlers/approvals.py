"""The approval service shared by every workflow: submit, decide, cards, audit.

Workflows declare a `WorkflowSpec` (title, card facts, what happens when approved) and call
`submit`; decisions arrive from card clicks or text commands and go through `decide`, which runs
the pure `advance` and turns its outcome into stored state, audit rows, cards and messages —
all in the caller's transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, select

import bot.media as media_files
from bot.cardkeys import CardAction
from bot.cards import Button, close_cards, refresh_card, send_card, send_cards
from bot.config_workflows import Chain
from bot.context import Ctx
from bot.conversation import start_form
from bot.logs import log
from handlers.approval_engine import (
    SYSTEM,
    Action,
    Decision,
    Flow,
    FlowStatus,
    NotAllowed,
    Outcome,
    Refusal,
    Step,
    advance,
    start,
)
from handlers.labels import Labels
from storage.models import ApprovalAudit, Away, Card, Request

logger = logging.getLogger(__name__)

# The approval service's own display words (not a workflow's: those are in each WorkflowSpec's labels).
APPROVAL_LABELS = Labels("labels_approvals", status=FlowStatus)


@dataclass(frozen=True)
class WorkflowSpec:
    """What a workflow tells the engine about itself.

    Its words are in its labels template: block `title` (监控调取申请, on cards and messages),
    `approved_note` (told to the requester with the approval) and `stage_<stage>` for each
    `requests.stage` value shown in 进度 once approved.
    """

    key: str  # stored in requests.workflow
    labels: Labels
    confidential: bool
    facts: Callable[[Ctx, Request], list[tuple[str, str]]]  # up to 6 card rows
    on_approved: Callable[[Ctx, Request], Awaitable[None]]
    viewers: Callable[[Ctx, Request], Sequence[str]] = lambda ctx, req: ()  # besides requester/approvers
    # Checked (in the deciding transaction) before a final approval; a text refuses it.
    guard: Callable[[Ctx, Request], Awaitable[str | None]] | None = None
    on_closed: Callable[[Ctx, Request], Awaitable[None]] | None = None  # rejected or withdrawn

    def title(self, ctx: Ctx) -> str:
        return self.labels(ctx, "title")

    def stage_name(self, ctx: Ctx, stage: str) -> str:
        """What an approved request's `stage` reads as ("" when it has none)."""
        return self.labels.name(ctx, "stage", stage) if stage else ""


def spec_for(ctx: Ctx, key: str) -> WorkflowSpec:
    """The registered workflow a request belongs to (`requests.workflow`)."""
    spec = ctx.registry.approval(key)
    assert isinstance(spec, WorkflowSpec)
    return spec


class ApprovalChoice(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    TRANSFER = "transfer"


@dataclass(frozen=True)
class ApprovalClick(CardAction, prefix="ap", subject="request"):
    """A button on an approver's card: the request, the step it was sent for, the choice."""

    request: int
    step: int
    choice: ApprovalChoice


def flow_of(req: Request) -> Flow:
    return Flow.from_json(req.flow)


async def away_now(ctx: Ctx) -> dict[str, str]:
    """Who is away right now, and their substitute."""
    now = ctx.now()
    rows = (
        await ctx.session.execute(select(Away).where(Away.start_at <= now, Away.end_at > now).order_by(Away.id))
    ).scalars()
    return {r.userid: r.substitute for r in rows}


def audit(
    ctx: Ctx,
    req: Request,
    action: str,
    prev: str,
    step: int | None = None,
    source: str | None = None,
    actor: str | None = None,
    **detail: Any,
) -> None:
    """Write one audit row in the current transaction."""
    ctx.session.add(
        ApprovalAudit(
            request_id=req.id,
            actor=actor or ctx.user,
            action=action,
            step=step,
            prev_status=prev,
            new_status=req.status,
            detail=detail,
            source=source or _source(ctx),
            at=ctx.now(),
        )
    )


def _source(ctx: Ctx) -> str:
    ib = ctx.inbound
    if ib.kind == "card_click":
        return f"card:{ib.task_id}"
    if ib.msg_id:
        return f"msg:{ib.msg_id}"
    return f"event:{ib.dedupe_key}"[:200]


# -- cards -----------------------------------------------------------------------------------
def _block(ctx: Ctx, name: str, /, **kw: Any) -> str:
    text = ctx.renderer.block("cards_approvals", name, **kw)
    assert text is not None, name
    return text


async def send_approval_cards(ctx: Ctx, req: Request, userids: Sequence[str], *, with_attachments: bool = True) -> None:
    """A fresh card (new task_id) to each approver of the current step, with the request's kept
    photos (not again when the card is only re-sent, `with_attachments=False`)."""
    spec = spec_for(ctx, req.workflow)
    flow = flow_of(req)
    step = flow.step
    assert step is not None or not userids
    requester = ctx.org.person(req.requester)
    unit = ctx.org.unit_of(req.requester)
    facts = spec.facts(ctx, req)[:6]
    for u in userids:
        assert step is not None
        on_behalf = step.on_behalf.get(u)
        await send_card(
            ctx,
            u,
            subject_id=req.id,
            purpose="approve",
            step=flow.current,
            title=_block(ctx, "title", title=spec.title(ctx), number=req.id),
            desc=_block(
                ctx, "desc", requester=requester.name if requester else req.requester, unit=unit.name if unit else ""
            ),
            sub_title=_block(
                ctx,
                "step",
                no=flow.current + 1,
                total=len(flow.steps),
                role=ctx.render("role_name", role=step.role),
                on_behalf=ctx.org.name(on_behalf) if on_behalf else None,
            ),
            rows=facts,
            buttons=[
                Button(_block(ctx, c.value), ApprovalClick(req.id, flow.current, c), style)
                for c, style in ((ApprovalChoice.APPROVE, 1), (ApprovalChoice.REJECT, 2), (ApprovalChoice.TRANSFER, 3))
            ],
        )
    if with_attachments:
        await show_attachments(ctx, req, userids)


async def show_attachments(ctx: Ctx, req: Request, userids: Sequence[str]) -> None:
    """The request's kept photos to approvers who have not had them for this step."""
    files = await media_files.kept_for(ctx, f"request:{req.id}")
    if not files or not userids:
        return
    ctx.confidential = ctx.confidential or req.confidential
    step = flow_of(req).current
    for u in dict.fromkeys(userids):  # per approver: one added later (转审, a substitute) gets them too
        intro = ctx.render(
            "request_photos_for_approver", number=req.id, title=spec_for(ctx, req.workflow).title(ctx), count=len(files)
        )
        media_files.show_once(ctx, [u], files, f"step:{step}:{u}", intro=intro)


async def send_request_cards(
    ctx: Ctx,
    req: Request,
    userids: Sequence[str],
    *,
    title: str,
    desc: str,
    rows: Sequence[tuple[str, str]],
    buttons: Sequence[Button],
    purpose: str = "fulfil",
) -> None:
    """A workflow's own card about a request (retrieve, issue, check, condition) to each person."""
    await send_cards(
        ctx, userids, subject_id=req.id, purpose=purpose, title=title, desc=desc, rows=rows, buttons=buttons
    )


async def close_request_cards(
    ctx: Ctx, req: Request, label: str, userids: Sequence[str] | None = None, purpose: str = "approve"
) -> None:
    """Grey out the active cards of a request (for some people) with `label` on the button."""
    await close_cards(ctx, "request", req.id, label, purpose=purpose, userids=userids)


# -- submit and decide -----------------------------------------------------------------------
async def submit(
    ctx: Ctx, spec: WorkflowSpec, chain_key: str, fields: dict[str, Any], class_key: str | None = None, stage: str = ""
) -> Request:
    """Create a request, resolve its chain to people now, and send the first cards."""
    ctx.confidential = ctx.confidential or spec.confidential  # its texts go out as 保密消息 (safe = 1)
    chain = ctx.config.chains[chain_key]
    resolved = ctx.org.resolve_chain(chain, ctx.user, class_key)
    steps = tuple(Step(s.role, s.mode, s.approvers) for s in resolved)
    outcome = start(ctx.user, steps, await away_now(ctx))
    now = ctx.now()
    req = Request(
        workflow=spec.key,
        chain=chain_key,
        requester=ctx.user,
        fields=fields,
        flow=outcome.flow.to_json(),
        status=outcome.flow.status.value,
        stage=stage,
        confidential=spec.confidential,
        created_at=now,
        updated_at=now,
        step_started_at=now,
    )
    cc = resolve_cc(ctx, chain, ctx.user, class_key)
    if cc["submit"] or cc["approved"]:
        req.fields = {**fields, CC_FIELD: cc}
    ctx.session.add(req)
    await ctx.session.flush()
    audit(
        ctx,
        req,
        "submit",
        prev="",
        step=0,
        chain=chain_key,
        steps=[{"role": s.role, "approvers": list(s.approvers)} for s in outcome.flow.steps],
    )
    await send_approval_cards(ctx, req, outcome.new_approvers)
    tell_cc(ctx, req, "submit")
    if outcome.flow.status is FlowStatus.APPROVED:
        tell_cc(ctx, req, "approved")
        await spec.on_approved(ctx, req)
    return req


# -- 抄送: people told about a request who do not decide it ----------------------------------
CC_FIELD = "_cc"  # in requests.fields: {"submit": [userid…], "approved": [userid…]}, resolved at submit


def resolve_cc(ctx: Ctx, chain: Chain, requester: str, class_key: str | None) -> dict[str, list[str]]:
    """The chain's cc entries resolved to people now (never the requester; unknown users skipped)."""
    out: dict[str, list[str]] = {"submit": [], "approved": []}
    for entry in chain.cc:
        if entry.user is not None:
            people = [entry.user] if ctx.org.person(entry.user) is not None else []
        elif entry.role == "technician" and entry.skill is not None:
            unit = ctx.org.unit_of(requester)
            people = ctx.org.technicians(entry.skill, unit.campus if unit else None)
        else:
            assert entry.role is not None
            people = list(ctx.org.resolve_role(entry.role, requester, class_key))
        for when in ("submit", "approved") if entry.when == "both" else (entry.when,):
            out[when] += [u for u in people if u != requester and u not in out[when]]
    return out


def cc_of(req: Request, when: str | None = None) -> list[str]:
    cc = (req.fields or {}).get(CC_FIELD) or {}
    if when is not None:
        return list(cc.get(when, []))
    return list(dict.fromkeys([*cc.get("submit", []), *cc.get("approved", [])]))


def tell_cc(ctx: Ctx, req: Request, when: str) -> None:
    """Tell the request's cc people (submitted, or approved), as a safe message when confidential."""
    people = cc_of(req, when)
    if not people:
        return
    ctx.confidential = ctx.confidential or req.confidential
    spec = spec_for(ctx, req.workflow)
    requester = ctx.org.person(req.requester)
    for u in people:
        ctx.tell(
            u,
            "cc_notice",
            when=when,
            title=spec.title(ctx),
            number=req.id,
            requester=requester.name if requester else req.requester,
            facts=spec.facts(ctx, req)[:6],
        )


async def load_for_update(ctx: Ctx, request_id: int) -> Request | None:
    """The request, locked for this transaction (PostgreSQL row lock; SQLite is serialised)."""
    return (
        await ctx.session.execute(select(Request).where(Request.id == request_id).with_for_update())
    ).scalar_one_or_none()


def can_see(ctx: Ctx, req: Request, userid: str) -> bool:
    """Requester, anyone on the chain (or on whose behalf), and the workflow's own viewers."""
    if userid == req.requester:
        return True
    flow = flow_of(req)
    for s in flow.steps:
        if userid in s.approvers or userid in s.on_behalf.values():
            return True
    return userid in cc_of(req) or userid in spec_for(ctx, req.workflow).viewers(ctx, req)


# Refusals that mean the card no longer shows something its holder can act on.
STALE_REFUSALS = frozenset({Refusal.NOT_PENDING, Refusal.STALE_STEP, Refusal.NOT_APPROVER})


async def decide(ctx: Ctx, req: Request, decision: Decision, card: Card | None = None) -> bool:
    """Apply a decision; on refusal tell the actor why, audit it, refresh the card. True if applied."""
    spec = spec_for(ctx, req.workflow)
    ctx.confidential = ctx.confidential or req.confidential
    flow = flow_of(req)
    prev = req.status
    try:
        outcome = advance(flow, decision, await away_now(ctx))
    except NotAllowed as exc:
        audit(ctx, req, f"refused_{decision.action.value}", prev, step=flow.current, refusal=exc.refusal.value)
        ctx.reply(
            "approval_refused", refusal=exc.refusal.value, title=spec.title(ctx), number=req.id, status=req.status
        )
        if card is not None and exc.refusal in STALE_REFUSALS:
            refresh_card(ctx, card, _block(ctx, f"state_{_card_state(req, card)}"))
            card.active = False
        return False
    if "approved" in outcome.events and spec.guard is not None:
        problem = await spec.guard(ctx, req)
        if problem is not None:
            audit(ctx, req, f"refused_{decision.action.value}", prev, step=flow.current, refusal=problem)
            ctx.reply(problem, title=spec.title(ctx), number=req.id)
            return False
    await _apply(ctx, req, spec, flow, outcome, decision, prev)
    return True


def _card_state(req: Request, card: Card) -> str:
    if req.status != FlowStatus.PENDING:
        return req.status
    return "moved_on" if card.step != flow_of(req).current else "not_yours"


async def _apply(
    ctx: Ctx, req: Request, spec: WorkflowSpec, before: Flow, outcome: Outcome, decision: Decision, prev: str
) -> None:
    flow = outcome.flow
    req.flow = flow.to_json()
    req.status = flow.status.value
    req.updated_at = ctx.now()
    if flow.current != before.current or "escalated" in outcome.events:
        req.step_started_at = ctx.now()
        req.reminded_at = None
    audit(
        ctx,
        req,
        decision.action.value,
        prev,
        step=before.current,
        actor=decision.actor,
        reason=decision.reason,
        target=decision.target,
        targets=list(decision.targets),
        events=list(outcome.events),
    )
    actor_name = ctx.org.name(decision.actor)
    label_ctx = {"name": actor_name}
    if decision.action is Action.APPROVE:
        await close_request_cards(ctx, req, _block(ctx, "done_approved", **label_ctx), outcome.retired)
    elif decision.action is Action.REJECT:
        await close_request_cards(ctx, req, _block(ctx, "done_rejected", **label_ctx), outcome.retired)
    elif decision.action is Action.CLOSE:
        await close_request_cards(ctx, req, _block(ctx, "state_rejected"), outcome.retired)
    elif decision.action is Action.TRANSFER:
        await close_request_cards(
            ctx, req, _block(ctx, "done_transferred", to=ctx.org.name(decision.target or "")), outcome.retired
        )
    elif decision.action is Action.WITHDRAW:
        await close_request_cards(ctx, req, _block(ctx, "state_withdrawn"))
    await send_approval_cards(ctx, req, outcome.new_approvers)
    info = {
        "title": spec.title(ctx),
        "workflow": req.workflow,
        "number": req.id,
        "actor": actor_name,
        "reason": decision.reason,
        "role": ctx.render("role_name", role=before.steps[before.current].role),
        "next": [ctx.org.name(u) for u in flow.pending_approvers()],
        "target": ctx.org.name(decision.target) if decision.target else "",
    }
    if "approved" in outcome.events:
        ctx.tell(req.requester, "request_approved", **info, note=spec.labels(ctx, "approved_note", number=req.id))
        tell_cc(ctx, req, "approved")
        await spec.on_approved(ctx, req)
    elif "rejected" in outcome.events:
        if spec.on_closed is not None:
            await spec.on_closed(ctx, req)
        ctx.tell(req.requester, "request_rejected" if decision.actor != SYSTEM else "request_closed", **info)
        for u in before.steps[before.current].approvers:
            if u != decision.actor:
                ctx.tell(u, "request_closed_for_approver", **info, status="rejected")
    elif "advanced" in outcome.events:
        ctx.tell(req.requester, "request_advanced", **info)
    elif "withdrawn" in outcome.events:
        if spec.on_closed is not None:
            await spec.on_closed(ctx, req)
        ctx.reply("request_withdrawn", **info)
        for u in before.pending_approvers():
            ctx.tell(u, "request_closed_for_approver", **info, status="withdrawn")
    elif "transferred" in outcome.events:
        ctx.tell(req.requester, "request_transferred", **info)
    elif "escalated" in outcome.events:
        for u in outcome.new_approvers:
            ctx.tell(u, "escalated_to_you", **info)
    if decision.actor != req.requester and decision.action in (Action.APPROVE, Action.REJECT, Action.TRANSFER):
        ctx.reply("decision_recorded", action=decision.action.value, **info)


# -- card clicks -----------------------------------------------------------------------------
async def request_of(ctx: Ctx, card: Card) -> Request | None:
    """The clicked card's request, locked (lock order everywhere: the request row, then cards)."""
    req = await load_for_update(ctx, card.request_id)
    if req is None:
        ctx.reply("card_unknown")
    elif req.confidential:
        ctx.confidential = True  # everything this click causes goes out as 保密消息
    return req


async def refused_click(ctx: Ctx, card: Card, reason: str) -> None:
    """Audit a refused click on a request's card (someone else's card, a forged key, …)."""
    req = await ctx.session.get(Request, card.request_id)
    if req is not None:
        audit(
            ctx,
            req,
            "refused_click",
            req.status,
            refusal=Refusal.NOT_APPROVER.value,
            reason=reason,
            key=(ctx.inbound.event_key or "")[:100],
        )


async def approval_click(ctx: Ctx, card: Card, click: ApprovalClick) -> None:
    """同意 decides at once; 驳回 and 转审 ask for the reason / the new approver in a conversation."""
    req = await request_of(ctx, card)
    if req is None:
        return
    if click.choice is ApprovalChoice.APPROVE:
        await decide(ctx, req, Decision(ctx.user, Action.APPROVE, step=click.step), card)
        return
    flow = flow_of(req)
    action = Action.REJECT if click.choice is ApprovalChoice.REJECT else Action.TRANSFER
    if flow.status is not FlowStatus.PENDING or click.step != flow.current or ctx.user not in flow.pending_approvers():
        await decide(ctx, req, Decision(ctx.user, action, reason="-", target="-", step=click.step), card)
        return
    # A button cannot carry text: ask for the reason / the new approver in a conversation.
    await start_form(ctx, "reject" if action is Action.REJECT else "transfer", {"number": str(req.id)})


async def card_for(ctx: Ctx, req: Request) -> Card | None:
    """The actor's latest active approval card for the request's current step (text commands)."""
    flow = flow_of(req)
    return (
        (
            await ctx.session.execute(
                select(Card)
                .where(
                    and_(
                        Card.request_id == req.id,
                        Card.userid == ctx.user,
                        Card.active.is_(True),
                        Card.purpose == "approve",
                        Card.step == flow.current,
                    )
                )
                .order_by(Card.created_at.desc())
            )
        )
        .scalars()
        .first()
    )


def step_age(req: Request, now: datetime) -> float:
    return (now - req.step_started_at).total_seconds() / 3600


async def sweep_idle(ctx: Ctx) -> int:
    """Remind the approvers of idle steps, and escalate steps idle for longer (system actor)."""
    cfg = ctx.config.approval
    now = ctx.now()
    rows = list(
        (
            await ctx.session.execute(select(Request).where(Request.status == FlowStatus.PENDING).order_by(Request.id))
        ).scalars()
    )
    acted = 0
    for row in rows:
        try:
            pending = flow_of(row).pending_approvers()
        except (KeyError, TypeError, ValueError) as exc:
            # A request whose stored flow cannot be read (changed by hand, or by a bug) is named in
            # the log and skipped: it must not stop every other request's reminders.
            log(logger, logging.ERROR, "request_flow_unreadable", request=row.id, error=repr(exc))
            continue
        left = bool(pending) and all(ctx.org.person(u) is None for u in pending)
        if step_age(row, now) < cfg.remind_after_hours and not left:
            continue
        req = await load_for_update(ctx, row.id)  # re-read under the lock: a decision may have won
        if req is None or req.status != FlowStatus.PENDING:
            continue
        flow = flow_of(req)
        step = flow.step
        if step is None:
            continue
        age = step_age(req, now)
        # Approvers who all left WeCom (bot/directory.py) are no persons any more: up a level at once.
        gone = bool(flow.pending_approvers()) and all(ctx.org.person(u) is None for u in flow.pending_approvers())
        if (gone or age >= cfg.escalate_after_hours) and not step.escalated:
            level = ctx.org.next_level(step.role)
            targets: tuple[str, ...] = ()
            if level:
                try:
                    targets = ctx.org.resolve_step(level, "any", req.requester, req.fields.get("class")).approvers
                except Exception:
                    targets = ()
            await decide(ctx, req, Decision(ctx.user, Action.ESCALATE, targets=targets))
            acted += 1
        elif age >= cfg.remind_after_hours and req.reminded_at is None:
            req.reminded_at = now
            pending = flow.pending_approvers()
            audit(ctx, req, "auto_remind", req.status, step=flow.current, to=list(pending))
            await send_approval_cards(ctx, req, pending)
            spec = spec_for(ctx, req.workflow)
            for u in pending:
                ctx.tell(u, "auto_reminder", title=spec.title(ctx), number=req.id, hours=int(age))
            acted += 1
    return acted
