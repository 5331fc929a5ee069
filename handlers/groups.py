"""Managed groups, the daily audio class and news links (W6, 微信族群).

Group admins or platform staff submit 音频课堂 entries and news links (推送链接); a school leader
approves each (a card). On the day, at each group's push time, the approved items go into the
groups; the admins are prompted beforehand. Nothing that is not approved is ever pushed: when
content is missing or still unapproved the admins are told instead.

Each group's channel decides how (bot/config.py, ManagedGroup):
- appchat (internal staff groups) and webhook (a group robot): one markdown message per item.
- customer_group (students, parents, graduates, the public: external contacts): one enterprise
  mass send per push (`add_msg_template`, the items as text plus link attachments) that WeCom asks
  the group owner to confirm. The bot follows it (`get_groupmsg_send_result`), has WeCom remind
  the owner (`remind_groupmsg_send`, at most 3 times), then reminds them one-to-one, and when it is
  still unconfirmed after `[mass_send] confirm_hours` cancels it and tells the director. A group's
  monthly receive limit is checked at config time (its schedule) and at every push (its record).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import func, select

from bot.config import Config, ManagedGroup
from bot.context import Ctx
from bot.outbox import enqueue
from bot.router import Field, FieldError, Job, Router
from bot.timeparse import TimeParseError, local_now, parse_date
from handlers.approval_commands import parse_required
from handlers.approval_engine import FlowStatus
from handlers.approvals import WorkflowSpec, flow_of, submit
from handlers.labels import Labels, show_iso_day
from handlers.numbers import Kind, parse_ref
from storage.models import (
    AudioClass,
    Draft,
    DraftVersion,
    GroupSend,
    GroupSendStatus,
    OutboxMessage,
    Platform,
    Publication,
    Request,
    Timer,
)

router = Router("groups", templates=Path(__file__).with_name("templates") / "groups")
router.requires_chain("audio_class", "音频课堂")


class AudioStage(StrEnum):
    """`requests.stage` of an audio class notice."""

    AWAITING_APPROVAL = "awaiting_approval"
    SCHEDULED = "scheduled"  # approved: pushed at the groups' push time


LABELS = Labels("labels_groups", stage=AudioStage)
NEWS_LABELS = Labels("labels_news", stage=AudioStage)
AUDIENCE_WORDS = {
    "教职工": "教职工",
    "老师": "教职工",
    "教師": "教职工",
    "staff": "教职工",
    "在校生": "在校生",
    "学生": "在校生",
    "學生": "在校生",
    "students": "在校生",
    "毕业生": "毕业生",
    "畢業生": "毕业生",
    "校友": "毕业生",
    "alumni": "毕业生",
    "家长": "家长",
    "家長": "家长",
    "parents": "家长",
    "社会人士": "社会人士",
    "社會人士": "社会人士",
    "public": "社会人士",
}


def parse_day(value: str, ctx: Ctx) -> str:
    today = local_now(ctx.now(), ctx.config.scheduler.timezone).date()
    try:
        d = parse_date(value, today, prefer="future")
    except TimeParseError:
        raise FieldError("invalid_date") from None
    if d < today:
        raise FieldError("invalid_past")
    return d.isoformat()


def parse_link(value: str, ctx: Ctx) -> str:
    value = value.strip()
    if not re.fullmatch(r"https?://\S{3,490}", value):
        raise FieldError("invalid_link")
    return value


def parse_groups(value: str, ctx: Ctx) -> str:
    """'全部', or group names / chat ids / audiences (家长, 毕业生 …) separated by 、 , or spaces →
    space-separated chat ids."""
    value = value.strip()
    if value in ("全部", "所有", "all"):
        return " ".join(g.chat_id for g in ctx.config.groups)
    chats: list[str] = []
    for part in (p for p in re.split(r"[\s,，、;；]+", value) if p):
        audience = AUDIENCE_WORDS.get(part.lower())
        if audience is not None and any(g.audience == audience for g in ctx.config.groups):
            chats.extend(g.chat_id for g in ctx.config.groups if g.audience == audience)
            continue
        match = [g for g in ctx.config.groups if part in (g.chat_id, g.name) or part in g.name]
        if len(match) != 1:
            raise FieldError("invalid_group", choices=[g.name for g in ctx.config.groups])
        chats.append(match[0].chat_id)
    return " ".join(dict.fromkeys(chats))


def group(ctx: Ctx, chat_id: str) -> ManagedGroup | None:
    return next((g for g in ctx.config.groups if g.chat_id == chat_id), None)


async def _audio(ctx: Ctx, req: Request) -> AudioClass:
    return (await ctx.session.execute(select(AudioClass).where(AudioClass.request_id == req.id))).scalar_one()


def facts(ctx: Ctx, req: Request) -> list[tuple[str, str]]:
    f = req.fields
    names = LABELS(ctx, "group_names", names=[g.name for c in f["groups"].split() if (g := group(ctx, c)) is not None])
    return [
        (LABELS(ctx, "row_day"), show_iso_day(ctx, f["day"])),
        (LABELS(ctx, "row_time"), f["class_time"]),
        (LABELS(ctx, "row_title"), f["title"]),
        (LABELS(ctx, "row_speaker"), f["speaker"]),
        (LABELS(ctx, "row_link"), f["link"]),
        (LABELS(ctx, "row_groups"), names),
    ]


async def on_approved(ctx: Ctx, req: Request) -> None:
    req.stage = AudioStage.SCHEDULED


SPEC = router.approval(
    WorkflowSpec(
        key="audio",
        labels=LABELS,
        confidential=False,
        facts=facts,
        on_approved=on_approved,
        viewers=lambda ctx, req: ctx.org.with_role("platform_editor"),
    )
)


def news_facts(ctx: Ctx, req: Request) -> list[tuple[str, str]]:
    f = req.fields
    names = NEWS_LABELS(
        ctx, "group_names", names=[g.name for c in f["groups"].split() if (g := group(ctx, c)) is not None]
    )
    return [
        (NEWS_LABELS(ctx, "row_day"), show_iso_day(ctx, f["day"])),
        (NEWS_LABELS(ctx, "row_title"), f["title"]),
        (NEWS_LABELS(ctx, "row_link"), f["link"]),
        (NEWS_LABELS(ctx, "row_groups"), names),
    ]


NEWS = router.approval(
    WorkflowSpec(
        key="news",
        labels=NEWS_LABELS,
        confidential=False,
        facts=news_facts,
        on_approved=on_approved,
        viewers=lambda ctx, req: ctx.org.with_role("platform_editor"),
    )
)


@router.command(
    "audio_class",
    aliases=("音频课堂", "音頻課堂", "audio class", "audio"),
    roles=("group_admin", "platform_editor"),
    fields=(
        Field("day", ("日期", "date"), parse=parse_day, show=lambda v, c: show_iso_day(c, v)),
        Field("class_time", ("时间", "時間", "time"), parse=parse_required),
        Field("title", ("标题", "標題", "title"), parse=parse_required),
        Field("speaker", ("主讲", "主講", "speaker"), parse=parse_required),
        Field("link", ("链接", "鏈接", "link", "url"), parse=parse_link),
        Field("groups", ("群", "推送群", "groups"), parse=parse_groups),
    ),
)
async def audio_class(ctx: Ctx, values: dict[str, str]) -> None:
    """Submit a daily audio-class notice for managed groups; a school leader approves it."""
    chats = values["groups"].split()
    if not _may_push_to(ctx, chats):
        ctx.reply("audio_not_admin")
        return
    fields = {k: values[k] for k in ("day", "class_time", "title", "speaker", "link", "groups")}
    ctx.reply("audio_submitted", **await _submit_push(ctx, SPEC, "audio", fields, chats))


async def _submit_push(
    ctx: Ctx, spec: WorkflowSpec, kind: str, fields: dict[str, str], chats: list[str]
) -> dict[str, Any]:
    """Submit an item for approval and record it for the groups' push; what the reply says."""
    req = await submit(ctx, spec, "audio_class", fields, stage=AudioStage.AWAITING_APPROVAL)
    ctx.session.add(
        AudioClass(
            request_id=req.id,
            kind=kind,
            day=fields["day"],
            class_time=fields.get("class_time", ""),
            title=fields["title"],
            speaker=fields.get("speaker", ""),
            link=fields["link"],
            groups={"chats": chats},
            pushed={},
        )
    )
    return {
        "number": req.id,
        "day": show_iso_day(ctx, fields["day"]),
        "next": [ctx.org.name(u) for u in flow_of(req).pending_approvers()],
        "groups": [g.name for c in chats if (g := group(ctx, c)) is not None],
    }


def parse_news_link(value: str, ctx: Ctx) -> str:
    """A link, or a published draft's number (`稿件 #G3`, `#G3`) → `draft:3` (its link is looked up)."""
    try:
        ref = parse_ref(value)
    except FieldError:
        return parse_link(value, ctx)
    if ref.kind not in (None, Kind.DRAFT):
        raise FieldError("invalid_link")
    return f"draft:{ref.number}"


@router.command(
    "group_news",
    aliases=("推送链接", "推送鏈接", "群推送", "推送新闻", "推送新聞", "push link", "news link"),
    roles=("group_admin", "platform_editor"),
    fields=(
        Field("day", ("日期", "date"), parse=parse_day, show=lambda v, c: show_iso_day(c, v)),
        Field("link", ("链接", "鏈接", "稿件", "link", "url", "draft"), parse=parse_news_link),
        # A published draft brings its own title.
        Field(
            "title",
            ("标题", "標題", "title"),
            parse=parse_required,
            required_if=lambda v: not v.get("link", "").startswith("draft:"),
        ),
        Field("groups", ("受众", "受眾", "推送群", "群", "audience", "groups"), parse=parse_groups),
    ),
)
async def group_news(ctx: Ctx, values: dict[str, str]) -> None:
    """Submit a news link (a published 投稿, a school notice) for managed groups; a school leader
    approves it like an audio class, and it goes out at the groups' push time."""
    chats = values["groups"].split()
    if not _may_push_to(ctx, chats):
        ctx.reply("audio_not_admin")
        return
    values = dict(values)
    if values["link"].startswith("draft:"):
        number = int(values["link"].removeprefix("draft:"))
        published = await _published(ctx, number)
        if published is None:
            ctx.reply("news_draft_unpublished", number=number)
            return
        values["link"], title = published
        values["title"] = values.get("title") or title
    fields = {k: values[k] for k in ("day", "title", "link", "groups")}
    ctx.reply("news_submitted", **await _submit_push(ctx, NEWS, "news", fields, chats))


async def _published(ctx: Ctx, draft_id: int) -> tuple[str, str] | None:
    """A published draft's link (the website's first, else the official account's) and title."""
    pubs = (await ctx.session.execute(select(Publication).where(Publication.draft_id == draft_id))).scalars().all()
    if not pubs:
        return None
    pub = min(pubs, key=lambda p: (p.platform != Platform.WEBSITE, p.id))
    draft = await ctx.session.get(Draft, draft_id)
    title = ""
    if draft is not None:
        version = (
            await ctx.session.execute(
                select(DraftVersion).where(DraftVersion.draft_id == draft_id, DraftVersion.version == draft.version)
            )
        ).scalar_one_or_none()
        title = version.title if version is not None else ""
    return pub.link, title or f"#G{draft_id}"


def _may_push_to(ctx: Ctx, chats: Sequence[str]) -> bool:
    person = ctx.person
    admins_of = [g.admins if (g := group(ctx, c)) is not None else () for c in chats]
    return person is not None and ("platform_editor" in person.roles or all(ctx.user in a for a in admins_of))


async def _for_group_on(ctx: Ctx, chat_id: str, day: str) -> list[tuple[AudioClass, Request]]:
    rows = (
        await ctx.session.execute(
            select(AudioClass, Request)
            .join(Request, Request.id == AudioClass.request_id)
            .where(AudioClass.day == day)
            .order_by(AudioClass.id)
        )
    ).all()
    return [(a, r) for a, r in rows if chat_id in a.groups.get("chats", [])]


def _day(ctx: Ctx, when: datetime) -> str:
    return local_now(when, ctx.config.scheduler.timezone).date().isoformat()


def prompt_admins(g: ManagedGroup, slot: str) -> Callable[[Ctx, datetime], Awaitable[None]]:
    """Before the push: tell the group's admins what will go out, or what is missing."""

    async def action(ctx: Ctx, when: datetime) -> None:
        # What goes out at the push this prompt announces: a 23:30 prompt for a 00:10 push is
        # about tomorrow's notices.
        day = _day(ctx, when + timedelta(minutes=g.prompt_minutes_before))
        items = await _for_group_on(ctx, g.chat_id, day)
        approved = [a for a, r in items if r.status == FlowStatus.APPROVED and g.chat_id not in a.pushed]
        waiting = [(a, r) for a, r in items if r.status == FlowStatus.PENDING]
        if slot != g.push_time[0] and not approved and not waiting:
            return  # a later push of the day with nothing for it: the first prompt said enough
        for admin in g.admins:
            ctx.tell(
                admin,
                "audio_prompt",
                group=g.name,
                time=slot,
                approved=[a.title for a in approved],
                waiting=[
                    {
                        "number": r.id,
                        "title": a.title,
                        "approvers": [ctx.org.name(u) for u in flow_of(r).pending_approvers()],
                    }
                    for a, r in waiting
                ],
                owner=ctx.org.name(g.owner) if g.channel == "customer_group" and g.owner else None,
            )

    return action


def push(g: ManagedGroup, slot: str) -> Callable[[Ctx, datetime], Awaitable[None]]:
    """At the push time: the approved items into the group; admins told if nothing can go."""

    async def action(ctx: Ctx, when: datetime) -> None:
        day = _day(ctx, when)
        items = await _for_group_on(ctx, g.chat_id, day)
        approved = [a for a, r in items if r.status == FlowStatus.APPROVED and g.chat_id not in a.pushed]
        if approved:
            if g.channel == "customer_group":
                if not await mass_send(ctx, g, day, slot, approved):
                    return
            else:
                for a in approved:
                    send_to_group(ctx, g, notice(ctx, g, a))
            for a in approved:
                a.pushed = {**a.pushed, g.chat_id: ctx.now().isoformat()}
        elif slot == g.push_time[0] and not any(r.status == FlowStatus.APPROVED for _, r in items):
            waiting = [(a, r) for a, r in items if r.status == FlowStatus.PENDING]
            for admin in g.admins:
                ctx.tell(
                    admin,
                    "audio_missing",
                    group=g.name,
                    day=show_iso_day(ctx, day),
                    waiting=[{"number": r.id, "title": a.title} for a, r in waiting],
                )

    return action


def notice(ctx: Ctx, g: ManagedGroup, a: AudioClass) -> str:
    """The markdown of one item for an app group or a group robot."""
    if a.kind == "news":
        return ctx.render("news_notice", title=a.title, link=a.link, group=g.name)
    return ctx.render("audio_notice", title=a.title, speaker=a.speaker, time=a.class_time, link=a.link, group=g.name)


def send_to_group(ctx: Ctx, g: ManagedGroup, markdown: str) -> None:
    """One markdown message into an app group or through a group robot, via the outbox."""
    if g.channel == "appchat":
        enqueue(
            ctx.session,
            ctx.now(),
            f"chat:{g.chat_id}",
            "appchat",
            {"chatid": g.chat_id, "msgtype": "markdown", "markdown": {"content": markdown}},
            caused_by=ctx.event_id,
        )
    elif g.channel == "webhook":
        enqueue(
            ctx.session,
            ctx.now(),
            f"webhook:{g.chat_id}",
            "webhook",
            {"msgtype": "markdown", "markdown": {"content": markdown}},
            caused_by=ctx.event_id,
        )
    else:
        raise ValueError(f"group {g.name}: a customer group is reached by mass sending, not messages")


# -- customer groups: enterprise mass sending -------------------------------------------------
MAX_ATTACHMENTS = 9  # doc 92135
COUNTED = (GroupSendStatus.CREATING, GroupSendStatus.WAITING, GroupSendStatus.SENT)


def receive_period(g: ManagedGroup, day: str) -> tuple[str, str, int]:
    """The first and last day (inclusive) of the receive-limit period holding `day`, and its limit."""
    d = date.fromisoformat(day)
    if g.receive_limit == "day":
        return day, day, 1
    if g.receive_limit == "week":
        monday = d - timedelta(days=d.weekday())
        return monday.isoformat(), (monday + timedelta(days=6)).isoformat(), 7
    days = calendar.monthrange(d.year, d.month)[1]
    return d.replace(day=1).isoformat(), d.replace(day=days).isoformat(), days


async def mass_send(ctx: Ctx, g: ManagedGroup, day: str, slot: str, items: Sequence[AudioClass]) -> bool:
    """Ask WeCom for a mass-send task into customer group `g`; False when its limit is reached."""
    assert g.owner is not None
    first, last, limit = receive_period(g, day)
    used = (
        await ctx.session.execute(
            select(func.count())
            .select_from(GroupSend)
            .where(
                GroupSend.chat_id == g.chat_id,
                GroupSend.day >= first,
                GroupSend.day <= last,
                GroupSend.status.in_(COUNTED),
            )
        )
    ).scalar_one()
    titles = [a.title for a in items]
    if used >= limit:
        for who in _director_and_admins(ctx, g):
            ctx.tell(
                who,
                "cgroup_over_limit",
                group=g.name,
                day=show_iso_day(ctx, day),
                used=used,
                limit=limit,
                period=g.receive_limit,
                titles=titles,
            )
        return False
    text = ctx.render("cgroup_notice", group=g.name, items=items)
    attachments = [
        {"msgtype": "link", "link": {"title": a.title[:40], "url": a.link, "desc": _desc(ctx, a)}}
        for a in items[:MAX_ATTACHMENTS]
    ]
    send = GroupSend(
        chat_id=g.chat_id,
        owner=g.owner,
        day=day,
        slot=slot,
        status=GroupSendStatus.CREATING,
        items={"ids": [a.id for a in items]},
        created_at=ctx.now(),
    )
    ctx.session.add(send)
    row = enqueue(
        ctx.session,
        ctx.now(),
        f"cgroup:{g.chat_id}",
        "groupmsg",
        {
            "chat_type": "group",
            "sender": g.owner,
            "chat_id_list": [g.chat_id],
            "text": {"content": text},
            "attachments": attachments,
        },
        caused_by=ctx.event_id,
        then="cgroup_created",
    )
    await ctx.session.flush()
    send.call_id = row.id
    return True


def _desc(ctx: Ctx, a: AudioClass) -> str:
    return ctx.render("cgroup_link_desc", kind=a.kind, speaker=a.speaker, time=a.class_time)


async def _send_by_call(ctx: Ctx, timer: Timer) -> tuple[GroupSend | None, dict[str, Any]]:
    """The mass send a settled outbox row was about, and WeCom's answer."""
    outbox_id = int(timer.payload["outbox_id"])
    send = (await ctx.session.execute(select(GroupSend).where(GroupSend.call_id == outbox_id))).scalar_one_or_none()
    row = await ctx.session.get(OutboxMessage, outbox_id)
    return send, dict((row.result if row is not None else None) or {})


def _settle(ctx: Ctx, send: GroupSend, status: GroupSendStatus, detail: str | None = None) -> None:
    send.status = status
    send.settled_at = ctx.now()
    send.detail = detail


def _tell_director(ctx: Ctx, send: GroupSend, text: Callable[..., str], **extra: Any) -> None:
    """`text` renders the message (from the send's group, day and owner, and `extra`), told to the
    director and the group's admins."""
    g = group(ctx, send.chat_id)
    rendered = text(
        group=g.name if g else send.chat_id, day=show_iso_day(ctx, send.day), owner=ctx.org.name(send.owner), **extra
    )
    for who in _director_and_admins(ctx, g):
        ctx.send_text(who, rendered)


def _director_and_admins(ctx: Ctx, g: ManagedGroup | None) -> list[str]:
    """Who hears that a group's push did not go out: the director, then the group's admins."""
    return list(dict.fromkeys([*ctx.org.with_role("director"), *(g.admins if g else ())]))


def _poll_later(ctx: Ctx, send: GroupSend) -> None:
    due = ctx.now() + timedelta(minutes=ctx.config.mass_send.poll_minutes)
    ctx.session.add(Timer(kind="cgroup_poll", ref=str(send.id), due_at=due, payload={}))


@router.timer("cgroup_created")
async def cgroup_created(ctx: Ctx, timer: Timer) -> None:
    """WeCom answered add_msg_template: the task waits for the owner, or it was refused."""
    send, result = await _send_by_call(ctx, timer)
    if send is None or send.status != GroupSendStatus.CREATING:
        return
    if not timer.payload.get("ok") or not result.get("msgid") or send.chat_id in (result.get("fail_list") or []):
        reason = f"errcode {timer.payload.get('errcode')}" if not timer.payload.get("ok") else "fail_list"
        _settle(ctx, send, GroupSendStatus.FAILED, reason)
        _tell_director(
            ctx, send, lambda **kw: ctx.render("cgroup_failed", **kw), refused=timer.payload.get("ok") is True
        )
        return
    send.msgid = str(result["msgid"])
    send.status = GroupSendStatus.WAITING
    _poll_later(ctx, send)


@router.timer("cgroup_poll")
async def cgroup_poll(ctx: Ctx, timer: Timer) -> None:
    """Ask WeCom whether the owner has sent it yet (the answer comes back as `cgroup_result`)."""
    send = await ctx.session.get(GroupSend, int(timer.ref))
    if send is None or send.status != GroupSendStatus.WAITING:
        return
    row = enqueue(
        ctx.session,
        ctx.now(),
        f"cgroup:{send.chat_id}",
        "groupmsg_result",
        {"msgid": send.msgid, "userid": send.owner, "limit": 1000},
        then="cgroup_result",
    )
    await ctx.session.flush()
    send.call_id = row.id


@router.timer("cgroup_result")
async def cgroup_result(ctx: Ctx, timer: Timer) -> None:
    """Sent, refused, or still waiting: remind the owner, and give up at the deadline."""
    send, result = await _send_by_call(ctx, timer)
    if send is None or send.status != GroupSendStatus.WAITING:
        return
    if not timer.payload.get("ok"):
        _settle(ctx, send, GroupSendStatus.FAILED, f"result errcode {timer.payload.get('errcode')}")
        _tell_director(ctx, send, lambda **kw: ctx.render("cgroup_failed", **kw), refused=False)
        return
    mine: dict[str, Any] = next((r for r in result.get("send_list") or [] if r.get("chat_id") == send.chat_id), {})
    status = int(mine.get("status", 0))
    if status == 1:
        _settle(ctx, send, GroupSendStatus.SENT)
        return
    if status == 3:  # the group already had its share of mass messages
        _settle(ctx, send, GroupSendStatus.OVER_LIMIT)
        _tell_director(ctx, send, lambda **kw: ctx.render("cgroup_refused_limit", **kw))
        return
    if status != 0:
        _settle(ctx, send, GroupSendStatus.FAILED, f"send status {status}")
        _tell_director(ctx, send, lambda **kw: ctx.render("cgroup_failed", **kw), refused=True)
        return
    await _still_waiting(ctx, send)


async def _still_waiting(ctx: Ctx, send: GroupSend) -> None:
    cfg, now = ctx.config.mass_send, ctx.now()
    deadline = send.created_at + timedelta(hours=cfg.confirm_hours)
    titles = await _titles(ctx, send)
    if now >= deadline:
        _settle(ctx, send, GroupSendStatus.NOT_SENT, "the owner did not confirm")
        enqueue(ctx.session, now, f"cgroup:{send.chat_id}", "groupmsg_cancel", {"msgid": send.msgid})
        _tell_director(ctx, send, lambda **kw: ctx.render("cgroup_not_sent", **kw), titles=titles)
        return
    since = send.reminded_at or send.created_at
    every = timedelta(minutes=cfg.first_reminder_minutes if send.reminded_at is None else cfg.remind_every_minutes)
    if now - since >= every:
        if send.reminders < 3:  # WeCom's own reminder: at most three in 24 h (doc 97610)
            enqueue(ctx.session, now, f"cgroup:{send.chat_id}", "groupmsg_remind", {"msgid": send.msgid})
            send.reminders += 1
            send.reminded_at = now
        elif not send.owner_told:
            g = group(ctx, send.chat_id)
            ctx.tell(
                send.owner,
                "cgroup_owner_reminder",
                group=g.name if g else send.chat_id,
                day=show_iso_day(ctx, send.day),
                titles=titles,
                deadline=local_now(deadline, ctx.config.scheduler.timezone).strftime("%H:%M"),
            )
            send.owner_told = True
            send.reminded_at = now
    _poll_later(ctx, send)


async def _titles(ctx: Ctx, send: GroupSend) -> list[str]:
    ids = list(send.items.get("ids", []))
    if not ids:
        return []
    rows = (await ctx.session.execute(select(AudioClass.title).where(AudioClass.id.in_(ids)))).scalars().all()
    return list(rows)


@cache
def _cron(days: str, hour: int, minute: int, tz: ZoneInfo) -> CronTrigger:
    """One trigger per distinct time (a trigger keeps no state): a thousand groups pushing at
    07:30 share it, instead of building two thousand at start."""
    return CronTrigger(day_of_week=days, hour=hour, minute=minute, timezone=tz)


@router.jobs_from
def audio_jobs(config: Config) -> Iterable[Job]:
    """Per managed group and push time: the admins' prompt before it, and the push itself."""
    tz = ZoneInfo(config.scheduler.timezone)
    for g in config.groups:
        days = ",".join(("mon", "tue", "wed", "thu", "fri", "sat", "sun")[d - 1] for d in g.push_weekdays)
        for slot in g.push_time:
            hh, mm = (int(x) for x in slot.split(":"))
            prompt = datetime(2000, 1, 3, hh, mm) - timedelta(minutes=g.prompt_minutes_before)
            # The prompt may fall on the day before (a 00:10 push prompted at 23:30).
            prompt_days = days if prompt.day == 3 else _day_before(g.push_weekdays)
            suffix = "" if slot == g.push_time[0] else f"@{slot}"  # the first keeps its old job id
            yield Job(
                f"audio_prompt:{g.chat_id}{suffix}",
                _cron(prompt_days, prompt.hour, prompt.minute, tz),
                prompt_admins(g, slot),
            )
            yield Job(
                f"audio_push:{g.chat_id}{suffix}",
                _cron(days, hh, mm, tz),
                push(g, slot),
            )


def _day_before(weekdays: Sequence[int]) -> str:
    names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    return ",".join(names[(d - 2) % 7] for d in weekdays)
