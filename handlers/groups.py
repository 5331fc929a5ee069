"""Managed groups and the daily audio class (W6, 微信族群).

Group admins or platform staff submit 音频课堂 entries; a school leader approves each (a card).
On the day, at each group's push time, the approved notices go into the groups (app group chat
or group-robot webhook); the admins are prompted beforehand. Nothing that is not approved is ever
pushed: when content is missing or still unapproved the admins are told instead.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select

from bot.config import Config, ManagedGroup
from bot.context import Ctx
from bot.outbox import enqueue
from bot.router import Field, FieldError, Job, Router
from bot.timeparse import TimeParseError, local_now, parse_date
from handlers.approval_commands import parse_required
from handlers.approval_engine import FlowStatus
from handlers.approvals import WorkflowSpec, flow_of, submit
from handlers.labels import Labels, show_iso_day
from storage.models import AudioClass, Request

router = Router("groups", templates=Path(__file__).with_name("templates") / "groups")
router.requires_chain("audio_class", "音频课堂")


class AudioStage(StrEnum):
    """`requests.stage` of an audio class notice."""

    AWAITING_APPROVAL = "awaiting_approval"
    SCHEDULED = "scheduled"  # approved: pushed at the groups' push time


LABELS = Labels("labels_groups", stage=AudioStage)


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
    """'全部', or group names / chat ids separated by 、 , or spaces → space-separated chat ids."""
    value = value.strip()
    if value in ("全部", "所有", "all"):
        return " ".join(g.chat_id for g in ctx.config.groups)
    chats: list[str] = []
    for part in (p for p in re.split(r"[\s,，、;；]+", value) if p):
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
    person = ctx.person
    chats = values["groups"].split()
    admins_of = [g.admins if (g := group(ctx, c)) is not None else () for c in chats]
    allowed = person is not None and ("platform_editor" in person.roles or all(ctx.user in a for a in admins_of))
    if not allowed:
        ctx.reply("audio_not_admin")
        return
    fields = {k: values[k] for k in ("day", "class_time", "title", "speaker", "link", "groups")}
    req = await submit(ctx, SPEC, "audio_class", fields, stage=AudioStage.AWAITING_APPROVAL)
    ctx.session.add(
        AudioClass(
            request_id=req.id,
            day=values["day"],
            class_time=values["class_time"],
            title=values["title"],
            speaker=values["speaker"],
            link=values["link"],
            groups={"chats": chats},
            pushed={},
        )
    )
    ctx.reply(
        "audio_submitted",
        number=req.id,
        day=show_iso_day(ctx, values["day"]),
        next=[ctx.org.name(u) for u in flow_of(req).pending_approvers()],
        groups=[g.name for c in chats if (g := group(ctx, c)) is not None],
    )


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


def prompt_admins(g: ManagedGroup) -> Callable[[Ctx, datetime], Awaitable[None]]:
    """Before the push: tell the group's admins what will go out, or what is missing."""

    async def action(ctx: Ctx, when: datetime) -> None:
        # What goes out at the push this prompt announces: a 23:30 prompt for a 00:10 push is
        # about tomorrow's notices.
        day = _day(ctx, when + timedelta(minutes=g.prompt_minutes_before))
        items = await _for_group_on(ctx, g.chat_id, day)
        approved = [a for a, r in items if r.status == FlowStatus.APPROVED]
        waiting = [(a, r) for a, r in items if r.status == FlowStatus.PENDING]
        for admin in g.admins:
            ctx.tell(
                admin,
                "audio_prompt",
                group=g.name,
                time=g.push_time,
                approved=[a.title for a in approved],
                waiting=[
                    {
                        "number": r.id,
                        "title": a.title,
                        "approvers": [ctx.org.name(u) for u in flow_of(r).pending_approvers()],
                    }
                    for a, r in waiting
                ],
            )

    return action


def push(g: ManagedGroup) -> Callable[[Ctx, datetime], Awaitable[None]]:
    """At the push time: the approved notices into the group; admins told if nothing can go."""

    async def action(ctx: Ctx, when: datetime) -> None:
        day = _day(ctx, when)
        items = await _for_group_on(ctx, g.chat_id, day)
        approved = [a for a, r in items if r.status == FlowStatus.APPROVED and g.chat_id not in a.pushed]
        for a in approved:
            text = ctx.render(
                "audio_notice", title=a.title, speaker=a.speaker, time=a.class_time, link=a.link, group=g.name
            )
            send_to_group(ctx, g, text)
            a.pushed = {**a.pushed, g.chat_id: ctx.now().isoformat()}
        if not approved:
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


def send_to_group(ctx: Ctx, g: ManagedGroup, markdown: str) -> None:
    """One markdown message into a managed group, through its channel, via the outbox."""
    if g.channel == "appchat":
        enqueue(
            ctx.session,
            ctx.now(),
            f"chat:{g.chat_id}",
            "appchat",
            {"chatid": g.chat_id, "msgtype": "markdown", "markdown": {"content": markdown}},
            caused_by=ctx.event_id,
        )
    else:
        enqueue(
            ctx.session,
            ctx.now(),
            f"webhook:{g.chat_id}",
            "webhook",
            {"msgtype": "markdown", "markdown": {"content": markdown}},
            caused_by=ctx.event_id,
        )


@router.jobs_from
def audio_jobs(config: Config) -> Iterable[Job]:
    """Per managed group: the admins' prompt before the push time, and the push itself."""
    tz = ZoneInfo(config.scheduler.timezone)
    for g in config.groups:
        hh, mm = (int(x) for x in g.push_time.split(":"))
        prompt = datetime(2000, 1, 1, hh, mm) - timedelta(minutes=g.prompt_minutes_before)
        yield Job(
            f"audio_prompt:{g.chat_id}",
            CronTrigger(hour=prompt.hour, minute=prompt.minute, timezone=tz),
            prompt_admins(g),
        )
        yield Job(f"audio_push:{g.chat_id}", CronTrigger(hour=hh, minute=mm, timezone=tz), push(g))
