"""Text fallbacks for everything an approval card does, plus 撤销 / 催办 / 评论 / 设置代理.

(待办 / 进度 / 我的申请, which cover tickets and drafts too, are in handlers/find.py.)
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path

from sqlalchemy import select

import bot.media as media_files
from bot.config import Config, Person
from bot.context import Ctx
from bot.router import Field, FieldError, Router
from bot.timeparse import TimeParseError, find_date, local_now
from handlers.approval_engine import Action, Decision, FlowStatus
from handlers.approvals import (
    ApprovalClick,
    approval_click,
    audit,
    can_see,
    card_for,
    decide,
    flow_of,
    load_for_update,
    refused_click,
    send_approval_cards,
    show_attachments,
    spec_for,
    sweep_idle,
)
from handlers.labels import example_names, show_day
from handlers.numbers import REQUEST_NUMBER
from storage.models import Away, MediaStatus, Request, Timer

router = Router("approvals", templates=Path(__file__).with_name("templates") / "approvals")
router.action(ApprovalClick)(approval_click)
router.on_refused_click("request")(refused_click)
router.every_tick(sweep_idle)


def parse_required(value: str, ctx: Ctx) -> str:
    if not value.strip():
        raise FieldError("invalid_empty")
    return value.strip()[:500]


NUMBER = REQUEST_NUMBER

# Who may decide approvals (同意, 驳回, 转审) and hand them to a substitute (设置代理): people holding a
# role an approval chain or an escalation resolves to, derived from the configuration (a school
# whose chains name other roles gates these commands, and lists them in 帮助, accordingly). A
# transfer or a substitute must hold one of them too.
APPROVER = "approver"


@router.derived_role(APPROVER)
def approver_roles(config: Config) -> set[str]:
    """Every role a configured chain step names, and every role those go up to (`[approval]
    next_level`) when a step would name the requester or sits idle and escalates."""
    roles: set[str] = set()
    todo = [step.role for chain in config.chains.values() for step in chain.steps]
    while todo:
        role = todo.pop()
        if role not in roles:
            roles.add(role)
            if (up := config.approval.next_level.get(role)) is not None:
                todo.append(up)
    return roles


def approves(ctx: Ctx, person: Person | None) -> bool:
    """Whether this person holds a role that decides approvals in this configuration."""
    return ctx.registry.may((APPROVER,), False, person, ctx.config)


async def visible_request(ctx: Ctx, number: str, lock: bool = True) -> Request | None:
    """The request if this member may see it; otherwise say it does not exist (no leak)."""
    req = await load_for_update(ctx, int(number)) if lock else await ctx.session.get(Request, int(number))
    if ctx.in_group and (req is None or req.confidential):
        ctx.go_private()  # whether it exists or not is itself nobody else's business
    if req is None or not can_see(ctx, req, ctx.user):
        ctx.reply("request_not_found", number=number)
        return None
    ctx.confidential = ctx.confidential or req.confidential  # what follows goes out as 保密消息
    return req


def example_approver(ctx: Ctx) -> str:
    """A real approver's name for the examples in replies (转审 #12 刘洋)."""
    return example_names(ctx.config, ctx.person)["approver"]


def resolve_person(ctx: Ctx, text: str) -> str | None:
    """A configured person by userid or by name."""
    text = text.strip().lstrip("@")
    if ctx.org.person(text):
        return text
    matches = [p.userid for p in ctx.config.people if p.name == text]
    return matches[0] if len(matches) == 1 else None


@router.command(
    "approve",
    aliases=("同意", "批准", "approve"),
    positional=True,
    roles=(APPROVER,),
    fields=(NUMBER, Field("comment", ("意见", "意見", "comment"), required=False)),
)
async def approve(ctx: Ctx, values: dict[str, str]) -> None:
    """同意 #编号 [意见]"""
    req = await visible_request(ctx, values["number"])
    if req is not None:
        await decide(
            ctx, req, Decision(ctx.user, Action.APPROVE, reason=values.get("comment", "")), await card_for(ctx, req)
        )


@router.command(
    "reject",
    aliases=("驳回", "駁回", "拒绝", "reject"),
    positional=True,
    roles=(APPROVER,),
    fields=(NUMBER, Field("reason", ("原因", "理由", "reason"), parse=parse_required)),
)
async def reject(ctx: Ctx, values: dict[str, str]) -> None:
    """驳回 #编号 原因"""
    req = await visible_request(ctx, values["number"])
    if req is not None:
        await decide(ctx, req, Decision(ctx.user, Action.REJECT, reason=values["reason"]), await card_for(ctx, req))


@router.command(
    "transfer",
    aliases=("转审", "轉審", "转交审批", "transfer"),
    positional=True,
    roles=(APPROVER,),
    fields=(NUMBER, Field("target", ("转给", "對象", "对象", "to"), parse=parse_required)),
)
async def transfer(ctx: Ctx, values: dict[str, str]) -> None:
    """转审 #编号 姓名 — to someone who approves (they can then 同意 or 驳回 too)."""
    req = await visible_request(ctx, values["number"])
    if req is None:
        return
    target = resolve_person(ctx, values["target"])
    if target is None:
        ctx.reply("person_unknown", text=values["target"], example=example_approver(ctx))
        return
    if not approves(ctx, ctx.org.person(target)):
        ctx.reply("not_an_approver", name=ctx.org.name(target), action="transfer", example=example_approver(ctx))
        return
    await decide(ctx, req, Decision(ctx.user, Action.TRANSFER, target=target), await card_for(ctx, req))


@router.command("withdraw", aliases=("撤销", "撤銷", "撤回", "withdraw"), positional=True, fields=(NUMBER,))
async def withdraw(ctx: Ctx, values: dict[str, str]) -> None:
    """撤销 #编号"""
    req = await visible_request(ctx, values["number"])
    if req is not None:
        await decide(ctx, req, Decision(ctx.user, Action.WITHDRAW))


@router.command("nudge", aliases=("催办", "催辦", "remind"), positional=True, fields=(NUMBER,))
async def nudge(ctx: Ctx, values: dict[str, str]) -> None:
    """催办 #编号 — remind the current approvers (once per few hours)."""
    req = await visible_request(ctx, values["number"])
    if req is None:
        return
    spec = spec_for(ctx, req.workflow)
    if req.requester != ctx.user or req.status != FlowStatus.PENDING:
        ctx.reply("nudge_refused", title=spec.title(ctx), number=req.id, status=req.status)
        audit(ctx, req, "refused_nudge", req.status)
        return
    cooldown = timedelta(hours=ctx.config.approval.nudge_cooldown_hours)
    if req.nudged_at is not None and ctx.now() - req.nudged_at < cooldown:
        wait = req.nudged_at + cooldown - ctx.now()
        ctx.reply("nudge_too_soon", number=req.id, minutes=int(wait.total_seconds() // 60) + 1)
        return
    req.nudged_at = ctx.now()
    pending = flow_of(req).pending_approvers()
    audit(ctx, req, "nudge", req.status, step=flow_of(req).current, to=list(pending))
    # A fresh card: the old one may have scrolled away (the photos they already have).
    await send_approval_cards(ctx, req, pending, with_attachments=False)
    for u in pending:
        ctx.tell(u, "nudged", title=spec.title(ctx), number=req.id, requester=ctx.org.name(req.requester))
    ctx.reply("nudge_sent", number=req.id, names=[ctx.org.name(u) for u in pending])


@router.command(
    "comment",
    aliases=("评论", "評論", "备注", "comment"),
    positional=True,
    fields=(NUMBER, Field("text", ("内容", "內容", "text"), parse=parse_required)),
)
async def comment(ctx: Ctx, values: dict[str, str]) -> None:
    """评论 #编号 内容"""
    req = await visible_request(ctx, values["number"])
    if req is None:
        return
    flow = flow_of(req)
    audit(ctx, req, "comment", req.status, step=flow.current, text=values["text"])
    others = {req.requester, *flow.pending_approvers()} - {ctx.user}
    spec = spec_for(ctx, req.workflow)
    for u in sorted(others):
        ctx.tell(
            u, "comment_added", title=spec.title(ctx), number=req.id, author=ctx.org.name(ctx.user), text=values["text"]
        )
    ctx.reply("comment_saved", number=req.id)


async def show_progress(ctx: Ctx, req: Request) -> None:
    """Where a request is and who approves next (进度)."""
    flow = flow_of(req)
    steps = [
        {
            "role": ctx.render("role_name", role=s.role),
            "names": [ctx.org.name(a) for a in s.approvers],
            "status": s.status.value,
            "by": [ctx.org.name(a) for a in s.approved_by],
        }
        for s in flow.steps
    ]
    spec = spec_for(ctx, req.workflow)
    ctx.reply(
        "progress",
        title=spec.title(ctx),
        number=req.id,
        status=req.status,
        stage=spec.stage_name(ctx, req.stage),
        steps=steps,
        current=flow.current,
        next=[ctx.org.name(u) for u in flow.pending_approvers()],
    )


def _parse_day(ctx: Ctx, text: str, end: bool) -> datetime:
    now = local_now(ctx.now(), ctx.config.scheduler.timezone)
    found = find_date(text, now.date(), prefer="future")
    if found is None:
        raise TimeParseError("no_date")
    day = found[0] + timedelta(days=1) if end else found[0]
    return datetime.combine(day, time(0, 0), now.tzinfo)


@router.command(
    "delegate",
    aliases=("设置代理", "設置代理", "代理", "delegate"),
    positional=True,
    roles=(APPROVER,),
    fields=(
        Field("target", ("代理人", "target"), parse=parse_required),
        Field("start", ("从", "從", "from"), parse=parse_required),
        Field("end", ("到", "to"), parse=parse_required),
    ),
)
async def delegate(ctx: Ctx, values: dict[str, str]) -> None:
    """设置代理 姓名 从 到 — while I am away, my approval steps go to this person."""
    target = resolve_person(ctx, values["target"])
    if target is None or target == ctx.user:
        ctx.reply("person_unknown", text=values["target"], example=example_approver(ctx))
        return
    if not approves(ctx, ctx.org.person(target)):
        ctx.reply("not_an_approver", name=ctx.org.name(target), action="delegate", example=example_approver(ctx))
        return
    try:
        start_at = _parse_day(ctx, values["start"], end=False)
        end_at = _parse_day(ctx, values["end"], end=True)
    except TimeParseError:
        ctx.reply("delegate_bad_dates", example=example_approver(ctx))
        return
    if end_at <= start_at:
        ctx.reply("delegate_bad_dates", example=example_approver(ctx))
        return
    ctx.session.add(Away(userid=ctx.user, substitute=target, start_at=start_at, end_at=end_at, created_at=ctx.now()))
    first, last = start_at.date(), (end_at - timedelta(days=1)).date()
    ctx.reply("delegate_set", name=ctx.org.name(target), start=show_day(ctx, first), end=show_day(ctx, last))
    ctx.tell(
        target, "delegate_notice", name=ctx.org.name(ctx.user), start=show_day(ctx, first), end=show_day(ctx, last)
    )


# -- attachments: a photo sent just after submitting goes with the request -------------------
# A self-built app receives text, image, voice, video, location and link messages, no files
# (doc 90239 / 96467): a police letter or a signed paper form arrives as its photo. Sent within
# the same window as a fault ticket's photos (`[faults] photo_window_minutes`) after the member
# submitted a request still awaiting approval, it is kept (bot/media.py) and shown to the
# approvers deciding it now and to each later step's approvers with their card.


@router.attachment(order=30)  # after a draft being written (10) and a fresh fault ticket (20)
async def on_request_photo(ctx: Ctx) -> bool:
    window = timedelta(minutes=ctx.config.faults.photo_window_minutes)
    req = (
        await ctx.session.execute(
            select(Request)
            .where(
                Request.requester == ctx.user,
                Request.status == FlowStatus.PENDING,
                Request.created_at >= ctx.now() - window,
            )
            .order_by(Request.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if req is None:
        return False
    ctx.confidential = ctx.confidential or req.confidential
    await media_files.keep(ctx, f"request:{req.id}", then="request_photo_kept")
    count = len(await media_files.of_subject(ctx, f"request:{req.id}"))
    ctx.reply("request_photo_attached", number=req.id, title=spec_for(ctx, req.workflow).title(ctx), count=count)
    return True


@router.timer("request_photo_kept")
async def request_photo_kept(ctx: Ctx, timer: Timer) -> None:
    """Kept: to the approvers deciding the request now. Not kept: the sender is told."""
    media = await media_files.fetched(ctx, timer)
    number = media_files.subject_id(media, "request") if media is not None else None
    req = await ctx.session.get(Request, number) if number is not None else None
    if media is None or req is None:
        return
    ctx.confidential = req.confidential
    if media.status != MediaStatus.KEPT:
        ctx.tell(media.owner, "request_photo_lost", number=req.id)
        return
    if req.status == FlowStatus.PENDING:
        await show_attachments(ctx, req, flow_of(req).pending_approvers())
