"""微课 — micro-lessons (W10, register 微课录制情况登记表; the manual's 微课视频编辑部 一、微课).

The 微课视频编辑部 (role video_editor) plans a recording (`微课计划`: teacher, course, topic, slot,
room); a room or a teacher already booked at that time is refused with the clash. The plan is
published (公示) to the teacher as a card to confirm (收到), and the teacher is reminded the day
before and shortly before the slot. After the slot the planner gets a card for the next step,
and each step is registered in order (`微课进度 #n 已录制 / 已剪辑 / 已转换 / 已上传 分类`); the teacher
is told when it is online. An external teacher's video (`微课投稿`) is reviewed with the draft
review engine of 投稿 (handlers/publishing.py, a `DraftKind`): 通过, or 重新录制 with a comment and a
new version (`微课重交`). Click counts and comments (`微课点击`) are summarised every month for the
head of 教学教研中心.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import func, or_, select

from bot.cardkeys import CardAction
from bot.cards import Button, close_cards, send_card
from bot.config import Config
from bot.context import Ctx
from bot.conversation import example, start_form
from bot.router import Field, FieldError, Job, MalformedFields, Router, parse_fields
from bot.timeparse import TimeParseError, find_date, local_now, parse_moment, parse_span
from handlers import publishing
from handlers.approval_commands import parse_required
from handlers.labels import HasRenderer, Labels, show_span
from handlers.publishing import DraftKind, DraftPart, Verdict
from handlers.stage import lock_venue
from storage.models import (
    Card,
    Draft,
    DraftStatus,
    DraftVersion,
    MicroLesson,
    MicroLessonClicks,
    MicroLessonStage,
    Timer,
)

router = Router("microlessons", templates=Path(__file__).with_name("templates") / "microlessons")
LABELS = Labels("labels_microlessons", stage=MicroLessonStage)
EDITORS = ("video_editor",)
KIND = "microlesson"  # drafts.kind of an external teacher's video

# The production steps in order; each may be registered once the one before it is.
STEPS = (MicroLessonStage.RECORDED, MicroLessonStage.EDITED, MicroLessonStage.CONVERTED, MicroLessonStage.UPLOADED)
STEP_WORDS: dict[MicroLessonStage, tuple[str, ...]] = {
    MicroLessonStage.RECORDED: ("已录制", "录制完成", "录完", "已录", "录制", "recorded"),
    MicroLessonStage.EDITED: ("已剪辑", "剪辑完成", "剪完", "剪辑", "edited"),
    MicroLessonStage.CONVERTED: ("已转换", "格式转换", "已转码", "转码", "转换", "converted"),
    MicroLessonStage.UPLOADED: ("已上传", "上传完成", "上传", "uploaded"),
}
STAMP = {
    MicroLessonStage.RECORDED: "recorded_at",
    MicroLessonStage.EDITED: "edited_at",
    MicroLessonStage.CONVERTED: "converted_at",
    MicroLessonStage.UPLOADED: "uploaded_at",
}
MAX_CLICKS = 100_000_000


class MicroButton(StrEnum):
    ACK = "ack"  # the teacher: 收到 the published plan
    STEP = "step"  # the editor: the next production step is done (`step` names it)


@dataclass(frozen=True)
class MicroClick(CardAction, prefix="ml", subject="microlesson"):
    lesson: int
    button: MicroButton
    step: MicroLessonStage


@router.example_context
def names(ctx: Ctx) -> dict[str, Any]:
    """What the examples name: a teacher of the school and the recording rooms."""
    cfg = ctx.config
    teacher = next((p for p in cfg.people if "class_teacher" in p.roles), None)
    rooms = list(cfg.microlessons.rooms)
    return {
        "ml": {
            "teacher": teacher.name if teacher else "张伟",
            "room": rooms[0] if rooms else "录播室",
            "rooms": rooms,
            "slot_minutes": cfg.microlessons.slot_minutes,
        }
    }


# -- reading what people type -------------------------------------------------------------------
def _tz(ctx: Ctx) -> ZoneInfo:
    return ZoneInfo(ctx.config.scheduler.timezone)


def parse_number(value: str, ctx: Ctx) -> str:
    """`#3`, `3`, `微课 #3` → "3"."""
    m = re.fullmatch(r"(?:微课|微課)?\s*(?:编号)?\s*#?\s*[wW]?\s*(\d{1,9})", value.strip())
    if m is None:
        raise FieldError("invalid_number")
    return m.group(1)


NUMBER = Field("number", ("编号", "編號", "number"), parse=parse_number, show=lambda v, c: f"#{v}")


def parse_teacher(value: str, ctx: Ctx) -> str:
    """A teacher of the school, by name or userid (external teachers' videos go through 微课投稿)."""
    text = value.strip().removesuffix("老师").strip()
    found = [p for p in ctx.config.people if text in (p.userid, p.name)]
    if len(found) != 1:
        raise FieldError("invalid_teacher")
    return found[0].userid


def parse_slot(value: str, ctx: Ctx) -> str:
    """A date and a time range, or a start (the slot then lasts `slot_minutes`) → 'start/end' ISO."""
    now = local_now(ctx.now(), ctx.config.scheduler.timezone)
    if find_date(value, now.date()) is None:
        raise FieldError("invalid_time_no_date")
    try:
        start, end = parse_span(value, now)
    except TimeParseError as exc:
        if exc.code != "no_range":
            raise FieldError(f"invalid_time_{exc.code}") from None
        try:
            start = parse_moment(value, now)
        except TimeParseError as again:
            code = "no_range" if again.code == "no_time" else again.code
            raise FieldError(f"invalid_time_{code}") from None
        end = start + timedelta(minutes=ctx.config.microlessons.slot_minutes)
    if start <= now:
        raise FieldError("invalid_past")
    return f"{start.isoformat()}/{end.isoformat()}"


def slot_of(value: str) -> tuple[datetime, datetime]:
    start, end = value.split("/")
    return datetime.fromisoformat(start), datetime.fromisoformat(end)


def show_slot(value: str, ctx: Ctx) -> str:
    return show_span(ctx, *slot_of(value))


def parse_room(value: str, ctx: Ctx) -> str:
    rooms = ctx.config.microlessons.rooms
    text = value.strip()
    if not rooms:
        return parse_required(text, ctx)
    if text in rooms:
        return text
    partial = [r for r in rooms if text and (text in r or r in text)]
    if len(partial) != 1:
        raise FieldError("invalid_room", choices=list(rooms))
    return partial[0]


def parse_step(value: str, ctx: Ctx) -> str:
    low = value.strip().lower()
    for step, words in STEP_WORDS.items():
        if any(low.startswith(w) for w in words):
            return step.value
    raise FieldError("invalid_step")


def parse_clicks(value: str, ctx: Ctx) -> str:
    text = value.strip().replace(",", "").removesuffix("次")
    if not re.fullmatch(r"\d{1,9}", text) or int(text) > MAX_CLICKS:
        raise FieldError("invalid_clicks")
    return str(int(text))


def parse_link(value: str, ctx: Ctx) -> str:
    if not re.fullmatch(r"https?://\S{3,490}", value.strip()):
        raise FieldError("invalid_link")
    return value.strip()


def stage_name(ctx: HasRenderer, stage: str) -> str:
    return LABELS.name(ctx, "stage", stage)


def slot_text(ctx: Ctx, lesson: MicroLesson) -> str:
    if lesson.start_at is None or lesson.end_at is None:
        return ""
    return show_span(ctx, lesson.start_at.astimezone(_tz(ctx)), lesson.end_at.astimezone(_tz(ctx)))


def facts(ctx: Ctx, lesson: MicroLesson) -> dict[str, Any]:
    """What every text about a lesson may show."""
    return {
        "number": lesson.id,
        "teacher": lesson.teacher_name,
        "external": lesson.external,
        "course": lesson.course,
        "topic": lesson.topic,
        "slot": slot_text(ctx, lesson),
        "room": lesson.room,
        "stage": stage_name(ctx, lesson.stage),
        "category": lesson.category,
    }


async def _lesson(ctx: Ctx, number: str | int) -> MicroLesson | None:
    q = select(MicroLesson).where(MicroLesson.id == int(number)).with_for_update()
    lesson = (await ctx.session.execute(q)).scalar_one_or_none()
    if lesson is None:
        ctx.reply("microlesson_not_found", number=number)
    return lesson


# -- the recording plan -------------------------------------------------------------------------
async def clashes(ctx: Ctx, teacher: str, room: str, start: datetime, end: datetime) -> list[MicroLesson]:
    """Planned lessons overlapping the slot in the same room or with the same teacher."""
    q = (
        select(MicroLesson)
        .where(
            MicroLesson.stage == MicroLessonStage.PLANNED,
            MicroLesson.start_at < end,
            MicroLesson.end_at > start,
            or_(MicroLesson.room == room, MicroLesson.teacher == teacher),
        )
        .order_by(MicroLesson.start_at)
    )
    return list((await ctx.session.execute(q)).scalars())


async def check_plan(ctx: Ctx, values: dict[str, str]) -> tuple[str, str, dict[str, Any]] | None:
    """The room and the teacher must both be free for the slot (checked under their locks)."""
    start, end = slot_of(values["time"])
    # Two editors planning at once: the room's and the teacher's locks, always in this order.
    for key in sorted((f"ml-room:{values['room']}"[:64], f"ml-teacher:{values['teacher']}"[:64])):
        await lock_venue(ctx, key)
    found = await clashes(ctx, values["teacher"], values["room"], start, end)
    if not found:
        return None
    items = [
        {**facts(ctx, c), "same_room": c.room == values["room"], "same_teacher": c.teacher == values["teacher"]}
        for c in found
    ]
    return ("time", "clash", {"items": items, "teacher": ctx.org.name(values["teacher"]), "room": values["room"]})


def _several(rest: str) -> str | None:
    """`微课计划` followed by one entry per line: the batch form takes the text."""
    lines = [line for line in rest.splitlines() if line.strip()]
    return "plan_microlessons" if len(lines) > 1 else None


@router.command(
    "plan_microlesson",
    aliases=("微课计划", "微課計劃", "微课录制", "微課錄製", "microlesson plan"),
    fields=(
        Field(
            "teacher", ("教师", "教師", "老师", "老師", "teacher"), parse=parse_teacher, show=lambda v, c: c.org.name(v)
        ),
        Field("course", ("课程", "課程", "course"), parse=parse_required),
        Field("topic", ("主题", "主題", "课题", "課題", "topic"), parse=parse_required),
        Field("time", ("时间", "時間", "time"), parse=parse_slot, show=show_slot),
        Field("room", ("地点", "地點", "教室", "room"), parse=parse_room),
    ),
    validate=check_plan,
    roles=EDITORS,
    redirect=_several,
)
async def plan_microlesson(ctx: Ctx, values: dict[str, str]) -> None:
    """微课计划 — plan a recording and publish it to the teacher (reminded before the slot)."""
    lesson, reminders = await _plan(ctx, values)
    ctx.reply("microlesson_planned", **facts(ctx, lesson), reminders=reminders)


async def _plan(ctx: Ctx, values: dict[str, str]) -> tuple[MicroLesson, list[str]]:
    """Store one checked plan entry, publish it to the teacher and set its timers."""
    start, end = slot_of(values["time"])
    now = ctx.now()
    lesson = MicroLesson(
        teacher=values["teacher"],
        teacher_name=ctx.org.name(values["teacher"]),
        course=values["course"],
        topic=values["topic"],
        room=values["room"],
        start_at=start,
        end_at=end,
        stage=MicroLessonStage.PLANNED,
        planner=ctx.user,
        created_at=now,
        updated_at=now,
    )
    ctx.session.add(lesson)
    await ctx.session.flush()
    await _publish(ctx, lesson)
    return lesson, _schedule(ctx, lesson)


@router.command(
    "plan_microlessons",
    aliases=("微课计划表", "微課計劃表", "microlesson plans"),
    fields=(Field("lines", ("内容", "內容", "lines")),),
    positional=True,  # the whole text, labels and all, is the one field
    roles=EDITORS,
    in_help=False,
)
async def plan_microlessons(ctx: Ctx, values: dict[str, str]) -> None:
    """微课计划 with one entry per line: every line is checked first; one bad line plans none."""
    plan = ctx.registry.get("plan_microlesson")
    assert plan is not None
    entries: list[dict[str, str]] = []
    lines = [line.strip() for line in values["lines"].splitlines() if line.strip()]
    for n, line in enumerate(lines, start=1):
        try:
            raw = parse_fields(plan, line)
        except MalformedFields:
            raw = {}
        missing = [f.label for f in plan.fields if not raw.get(f.key)]
        if missing:
            ctx.reply("microlesson_batch_line", line=n, text=line, missing=missing, why="", example=example(ctx, plan))
            return
        entry: dict[str, str] = {}
        for key, value in raw.items():
            field = plan.field(key)
            try:
                entry[key] = field.parse(value, ctx) if field.parse else value
            except FieldError as err:
                why = (
                    ctx.renderer.block(plan.template, err.block, value=value, **err.context)
                    or ctx.renderer.block("forms/_common", err.block, value=value, **err.context)
                    or ""
                )
                ctx.reply("microlesson_batch_line", line=n, text=line, missing=[], why=why, example="")
                return
        for m, earlier in enumerate(entries, start=1):
            (s1, e1), (s2, e2) = slot_of(earlier["time"]), slot_of(entry["time"])
            same = earlier["room"] == entry["room"] or earlier["teacher"] == entry["teacher"]
            if same and s1 < e2 and s2 < e1:
                ctx.reply("microlesson_batch_clash", line=n, text=line, other=m, items=[])
                return
        refusal = await check_plan(ctx, entry)
        if refusal is not None:
            ctx.reply("microlesson_batch_clash", line=n, text=line, other=0, **refusal[2])
            return
        entries.append(entry)
    planned = [await _plan(ctx, entry) for entry in entries]
    ctx.reply("microlesson_batch_planned", items=[facts(ctx, lesson) for lesson, _ in planned])


async def _publish(ctx: Ctx, lesson: MicroLesson) -> None:
    """公示: the teacher gets the plan as a text and a card to confirm it."""
    ctx.tell(lesson.teacher, "microlesson_notice", **facts(ctx, lesson), planner=ctx.org.name(lesson.planner))
    block = ctx.renderer.block
    await send_card(
        ctx,
        lesson.teacher,
        subject_id=lesson.id,
        purpose="notice",
        title=block("cards_microlessons", "notice_title", number=lesson.id) or "",
        desc=block("cards_microlessons", "notice_desc") or "",
        rows=[
            (LABELS(ctx, "row_course"), lesson.course),
            (LABELS(ctx, "row_topic"), lesson.topic),
            (LABELS(ctx, "row_time"), slot_text(ctx, lesson)),
            (LABELS(ctx, "row_room"), lesson.room),
        ],
        buttons=[
            Button(
                block("cards_microlessons", "notice_ack") or "",
                MicroClick(lesson.id, MicroButton.ACK, MicroLessonStage.PLANNED),
            )
        ],
    )


def _schedule(ctx: Ctx, lesson: MicroLesson) -> list[str]:
    """The teacher's reminders (the day before, shortly before) and the planner's next-step card
    after the slot, as timers carrying the slot they were set for; returns when each goes out."""
    assert lesson.start_at is not None and lesson.end_at is not None
    cfg, tz, now = ctx.config.microlessons, _tz(ctx), ctx.now()
    start = lesson.start_at.astimezone(tz)
    slot = {"start": start.isoformat()}
    due: list[tuple[datetime, str]] = []
    if cfg.remind_day_before:
        hh, mm = map(int, cfg.remind_day_before.split(":"))
        due.append((datetime.combine(start.date() - timedelta(days=1), time(hh, mm), tz), "day"))
    if cfg.remind_minutes_before:
        due.append((start - timedelta(minutes=cfg.remind_minutes_before), "soon"))
    shown = []
    for at, which in due:
        if at > now:
            ctx.session.add(
                Timer(kind="microlesson_remind", ref=str(lesson.id), due_at=at, payload={**slot, "which": which})
            )
            shown.append(LABELS(ctx, f"reminder_{which}", at=at, minutes=cfg.remind_minutes_before))
    ctx.session.add(Timer(kind="microlesson_next", ref=str(lesson.id), due_at=lesson.end_at, payload=slot))
    return shown


def _same_slot(lesson: MicroLesson | None, timer: Timer) -> bool:
    """The lesson is still planned for the slot the timer was set for."""
    return (
        lesson is not None
        and lesson.stage == MicroLessonStage.PLANNED
        and lesson.start_at is not None
        and lesson.start_at == datetime.fromisoformat(str(timer.payload.get("start")))
    )


@router.timer("microlesson_remind")
async def remind(ctx: Ctx, timer: Timer) -> None:
    lesson = await ctx.session.get(MicroLesson, int(timer.ref))
    if lesson is None or not _same_slot(lesson, timer):
        return
    soon = timer.payload.get("which") == "soon"
    ctx.tell(lesson.teacher, "microlesson_reminder", **facts(ctx, lesson), soon=soon)
    if soon and lesson.planner != lesson.teacher:
        ctx.tell(lesson.planner, "microlesson_reminder_planner", **facts(ctx, lesson))


@router.timer("microlesson_next")
async def slot_over(ctx: Ctx, timer: Timer) -> None:
    """The slot is over: the planner registers the recording (one tap)."""
    lesson = await ctx.session.get(MicroLesson, int(timer.ref))
    if lesson is not None and _same_slot(lesson, timer):
        await _next_step_card(ctx, lesson, lesson.planner)


@router.command(
    "cancel_microlesson",
    aliases=("取消微课", "取消微課", "microlesson cancel"),
    positional=True,
    fields=(NUMBER,),
    roles=EDITORS,
)
async def cancel_microlesson(ctx: Ctx, values: dict[str, str]) -> None:
    """取消微课 #编号 — a planned recording will not happen: the slot is freed, the teacher told."""
    lesson = await _lesson(ctx, values["number"])
    if lesson is None:
        return
    if lesson.stage != MicroLessonStage.PLANNED:
        ctx.reply("microlesson_cancel_refused", **facts(ctx, lesson))
        return
    lesson.stage, lesson.updated_at = MicroLessonStage.CANCELLED, ctx.now()  # its timers find it so
    await close_cards(ctx, "microlesson", lesson.id, stage_name(ctx, lesson.stage))
    ctx.reply("microlesson_cancelled", **facts(ctx, lesson))
    ctx.tell(lesson.teacher, "microlesson_cancelled_teacher", **facts(ctx, lesson), name=ctx.org.name(ctx.user))


# -- production steps ---------------------------------------------------------------------------
def next_step(lesson: MicroLesson) -> MicroLessonStage | None:
    if lesson.stage == MicroLessonStage.PLANNED:
        return MicroLessonStage.RECORDED
    if lesson.stage in STEPS and lesson.stage != MicroLessonStage.UPLOADED:
        return STEPS[STEPS.index(MicroLessonStage(lesson.stage)) + 1]
    return None


async def _next_step_card(ctx: Ctx, lesson: MicroLesson, userid: str) -> None:
    step = next_step(lesson)
    if step is None:
        return
    await close_cards(ctx, "microlesson", lesson.id, LABELS(ctx, "card_moved_on"), purpose="step")
    block = ctx.renderer.block
    await send_card(
        ctx,
        userid,
        subject_id=lesson.id,
        purpose="step",
        title=block("cards_microlessons", "step_title", number=lesson.id, topic=lesson.topic) or "",
        desc=block("cards_microlessons", "step_desc", stage=stage_name(ctx, lesson.stage)) or "",
        rows=[
            (LABELS(ctx, "row_teacher"), lesson.teacher_name),
            (LABELS(ctx, "row_course"), lesson.course),
            (LABELS(ctx, "row_topic"), lesson.topic),
        ],
        buttons=[Button(stage_name(ctx, step), MicroClick(lesson.id, MicroButton.STEP, step))],
    )


async def record_step(ctx: Ctx, lesson: MicroLesson, step: MicroLessonStage, category: str = "") -> None:
    """Register one production step, in order; the upload needs its 网校 category."""
    if lesson.stage in (MicroLessonStage.REVIEWING, MicroLessonStage.REDO, MicroLessonStage.CANCELLED):
        ctx.reply("microlesson_step_not_now", **facts(ctx, lesson))
        return
    expected = next_step(lesson)
    if expected != step:
        done = lesson.stage in STEPS and STEPS.index(MicroLessonStage(lesson.stage)) >= STEPS.index(step)
        ctx.reply(
            "microlesson_step_order",
            **facts(ctx, lesson),
            step=stage_name(ctx, step),
            done=done,
            expected=stage_name(ctx, expected) if expected else "",
        )
        return
    now = ctx.now()
    lesson.stage, lesson.updated_at = step, now
    setattr(lesson, STAMP[step], now)
    if step is MicroLessonStage.UPLOADED:
        lesson.category = category
    await close_cards(ctx, "microlesson", lesson.id, stage_name(ctx, step), purpose="step")
    nxt = next_step(lesson)
    ctx.reply("microlesson_step_saved", **facts(ctx, lesson), next=stage_name(ctx, nxt) if nxt else "")
    if nxt is not None:
        await _next_step_card(ctx, lesson, ctx.user)
    elif lesson.teacher:
        ctx.tell(lesson.teacher, "microlesson_uploaded", **facts(ctx, lesson))


@router.command(
    "microlesson_progress",
    aliases=("微课进度", "微課進度", "microlesson step"),
    positional=True,
    fields=(
        NUMBER,
        Field("step", ("进度", "進度", "step"), parse=parse_step, show=lambda v, c: stage_name(c, v)),
        Field(
            "category",
            ("分类", "分類", "网校分类", "網校分類", "category"),
            parse=parse_required,
            required_if=lambda v: v.get("step") == MicroLessonStage.UPLOADED,
        ),
    ),
    roles=EDITORS,
)
async def microlesson_progress(ctx: Ctx, values: dict[str, str]) -> None:
    """微课进度 #编号 已录制|已剪辑|已转换|已上传 [网校分类] — register a production step."""
    lesson = await _lesson(ctx, values["number"])
    if lesson is not None:
        await record_step(ctx, lesson, MicroLessonStage(values["step"]), values.get("category", ""))


@router.action(MicroClick)
async def microlesson_click(ctx: Ctx, card: Card, click: MicroClick) -> None:
    lesson = await _lesson(ctx, click.lesson)
    if lesson is None:
        return
    if click.button is MicroButton.ACK:
        if lesson.acknowledged_at is None:
            lesson.acknowledged_at = ctx.now()
        await close_cards(ctx, "microlesson", lesson.id, LABELS(ctx, "card_acknowledged"), purpose="notice")
        ctx.reply("microlesson_acknowledged", **facts(ctx, lesson))
    elif not ctx.person or not set(EDITORS) & set(ctx.person.roles):
        ctx.reply("card_unknown")
    elif click.step is MicroLessonStage.UPLOADED:
        await start_form(ctx, "microlesson_progress", {"number": str(lesson.id), "step": click.step.value})
    else:
        await record_step(ctx, lesson, click.step)


# -- external teachers' videos: the draft review engine -----------------------------------------
async def _lesson_of_draft(ctx: Ctx, d: Draft) -> MicroLesson:
    q = select(MicroLesson).where(MicroLesson.draft_id == d.id).with_for_update()
    return (await ctx.session.execute(q)).scalar_one()


async def _video_returned(ctx: Ctx, d: Draft, v: DraftVersion, part: DraftPart, comment: str) -> None:
    lesson = await _lesson_of_draft(ctx, d)
    lesson.stage, lesson.updated_at = MicroLessonStage.REDO, ctx.now()
    lesson.note = comment
    ctx.reply("microlesson_review_saved", **facts(ctx, lesson), passed=False)
    ctx.tell(
        d.author,
        "microlesson_redo",
        **facts(ctx, lesson),
        name=ctx.org.name(ctx.user),
        comment=comment,
        version=v.version,
    )


async def _video_passed(ctx: Ctx, d: Draft, v: DraftVersion) -> None:
    lesson = await _lesson_of_draft(ctx, d)
    d.status, d.updated_at = DraftStatus.ACCEPTED, ctx.now()
    now = ctx.now()
    lesson.stage, lesson.recorded_at, lesson.updated_at = MicroLessonStage.RECORDED, now, now
    ctx.reply("microlesson_review_saved", **facts(ctx, lesson), passed=True)
    if d.author != ctx.user:
        ctx.tell(d.author, "microlesson_video_passed", **facts(ctx, lesson), version=v.version)
    await _next_step_card(ctx, lesson, d.author)


async def _video_rows(ctx: Ctx, d: Draft, v: DraftVersion) -> list[tuple[str, str]]:
    lesson = await _lesson_of_draft(ctx, d)
    return [
        (LABELS(ctx, "row_number"), f"#{lesson.id}"),
        (LABELS(ctx, "row_version"), LABELS(ctx, "version", version=v.version)),
        (LABELS(ctx, "row_teacher"), lesson.teacher_name),
        (LABELS(ctx, "row_course"), lesson.course),
        (LABELS(ctx, "row_topic"), lesson.topic),
        (LABELS(ctx, "row_video"), lesson.link),  # a link: the card shows it as a tappable row
    ]


async def _video_return_click(ctx: Ctx, d: Draft, part: DraftPart) -> None:
    lesson = await _lesson_of_draft(ctx, d)
    await start_form(ctx, "redo_microlesson", {"number": str(lesson.id)})


VIDEO = publishing.draft_kind(
    DraftKind(
        key=KIND,
        reviewers={DraftPart.TEXT: "video_editor"},
        cards="cards_microlessons",
        on_returned=_video_returned,
        on_passed=_video_passed,
        on_return_click=_video_return_click,
        rows=_video_rows,
    )
)


def _video_body(ctx: Ctx, course: str, link: str, note: str) -> str:
    return LABELS(ctx, "video_body", course=course, link=link, note=note)


@router.command(
    "submit_microlesson",
    aliases=("微课投稿", "微課投稿", "校外微课", "校外微課", "microlesson video"),
    fields=(
        Field("teacher", ("教师", "教師", "老师", "老師", "teacher"), parse=parse_required),
        Field("course", ("课程", "課程", "course"), parse=parse_required),
        Field("topic", ("主题", "主題", "课题", "課題", "topic"), parse=parse_required),
        Field("link", ("视频", "視頻", "链接", "鏈接", "video"), parse=parse_link),
        Field("note", ("备注", "備註", "note"), required=False),
    ),
    roles=EDITORS,
)
async def submit_microlesson(ctx: Ctx, values: dict[str, str]) -> None:
    """微课投稿 — register an external teacher's video; the 微课视频编辑部 reviews it (通过 / 重录)."""
    now = ctx.now()
    d = Draft(author=ctx.user, status=DraftStatus.COLLECTING, version=1, created_at=now, updated_at=now, kind=KIND)
    ctx.session.add(d)
    await ctx.session.flush()
    body = _video_body(ctx, values["course"], values["link"], values.get("note", ""))
    ctx.session.add(
        DraftVersion(draft_id=d.id, version=1, title=values["topic"], body=body, photos={"items": []}, created_at=now)
    )
    lesson = MicroLesson(
        teacher="",
        teacher_name=values["teacher"],
        external=True,
        course=values["course"],
        topic=values["topic"],
        stage=MicroLessonStage.REVIEWING,
        planner=ctx.user,
        draft_id=d.id,
        link=values["link"],
        note=values.get("note", ""),
        created_at=now,
        updated_at=now,
    )
    ctx.session.add(lesson)
    await ctx.session.flush()
    reviewers = await publishing.send_for_review(ctx, d)
    ctx.reply("microlesson_submitted", **facts(ctx, lesson), reviewers=[ctx.org.name(u) for u in reviewers])


async def _draft_of(ctx: Ctx, lesson: MicroLesson) -> Draft | None:
    if lesson.draft_id is None:
        ctx.reply("microlesson_not_external", **facts(ctx, lesson))
        return None
    q = select(Draft).where(Draft.id == lesson.draft_id).with_for_update()
    return (await ctx.session.execute(q)).scalar_one()


async def _under_review(ctx: Ctx, lesson: MicroLesson) -> Draft | None:
    """The draft of an external video waiting for its review (else a reply saying why not)."""
    d = await _draft_of(ctx, lesson)
    if d is not None and lesson.stage != MicroLessonStage.REVIEWING:
        ctx.reply("microlesson_not_reviewing", **facts(ctx, lesson))
        return None
    return d


@router.command(
    "pass_microlesson",
    aliases=("微课通过", "微課通過", "microlesson pass"),
    positional=True,
    fields=(NUMBER,),
    roles=EDITORS,
)
async def pass_microlesson(ctx: Ctx, values: dict[str, str]) -> None:
    """微课通过 #编号 — an external teacher's video meets the standard."""
    lesson = await _lesson(ctx, values["number"])
    d = await _under_review(ctx, lesson) if lesson is not None else None
    if d is not None:
        await publishing.review(ctx, d, DraftPart.TEXT, Verdict.PASS, "")


@router.command(
    "redo_microlesson",
    aliases=("微课重录", "微課重錄", "microlesson redo"),
    positional=True,
    fields=(NUMBER, Field("comment", ("意见", "意見", "comment"), parse=parse_required)),
    roles=EDITORS,
)
async def redo_microlesson(ctx: Ctx, values: dict[str, str]) -> None:
    """微课重录 #编号 意见 — below standard: returned to be recorded and edited again."""
    lesson = await _lesson(ctx, values["number"])
    d = await _under_review(ctx, lesson) if lesson is not None else None
    if d is not None:
        await publishing.review(ctx, d, DraftPart.TEXT, Verdict.RETURN, values["comment"])


@router.command(
    "resubmit_microlesson",
    aliases=("微课重交", "微課重交", "microlesson resubmit"),
    default_field="number",
    fields=(
        NUMBER,
        Field("link", ("视频", "視頻", "链接", "鏈接", "video"), parse=parse_link),
        Field("note", ("备注", "備註", "note"), required=False),
    ),
    roles=EDITORS,
)
async def resubmit_microlesson(ctx: Ctx, values: dict[str, str]) -> None:
    """微课重交 #编号 视频:链接 — the re-recorded video, reviewed again as a new version."""
    lesson = await _lesson(ctx, values["number"])
    d = await _draft_of(ctx, lesson) if lesson is not None else None
    if lesson is None or d is None:
        return
    if lesson.stage != MicroLessonStage.REDO or d.status != DraftStatus.REVISING:
        ctx.reply("microlesson_not_redo", **facts(ctx, lesson))
        return
    body = _video_body(ctx, lesson.course, values["link"], values.get("note", ""))
    v = await publishing.add_version(ctx, d, None, body)
    lesson.stage, lesson.link, lesson.updated_at = MicroLessonStage.REVIEWING, values["link"], ctx.now()
    lesson.note = values.get("note", "")
    reviewers = await publishing.send_for_review(ctx, d)
    ctx.reply(
        "microlesson_submitted", **facts(ctx, lesson), reviewers=[ctx.org.name(u) for u in reviewers], version=v.version
    )


# -- clicks and comments; the monthly summary ---------------------------------------------------
@router.command(
    "microlesson_clicks",
    aliases=("微课点击", "微課點擊", "microlesson clicks"),
    default_field="number",
    fields=(
        NUMBER,
        Field("clicks", ("次数", "次數", "点击量", "點擊量", "点击", "點擊", "clicks"), parse=parse_clicks),
        Field("comments", ("评论", "評論", "comments"), required=False),
    ),
    roles=EDITORS,
)
async def microlesson_clicks(ctx: Ctx, values: dict[str, str]) -> None:
    """微课点击 #编号 次数:累计点击量 评论:… — what the 网校 shows for an uploaded lesson."""
    lesson = await _lesson(ctx, values["number"])
    if lesson is None:
        return
    if lesson.stage != MicroLessonStage.UPLOADED:
        ctx.reply("microlesson_clicks_not_online", **facts(ctx, lesson))
        return
    clicks = int(values["clicks"])
    last = await _latest(ctx, lesson.id, ctx.now())
    if last is not None and clicks < last.clicks:
        ctx.reply("microlesson_clicks_lower", **facts(ctx, lesson), clicks=clicks, last=last.clicks)
        return
    comments = values.get("comments", "").strip()
    ctx.session.add(
        MicroLessonClicks(lesson_id=lesson.id, clicks=clicks, comments=comments, entered_by=ctx.user, at=ctx.now())
    )
    ctx.reply(
        "microlesson_clicks_saved",
        **facts(ctx, lesson),
        clicks=clicks,
        added=clicks - (last.clicks if last else 0),
        comments=comments,
    )


async def _latest(ctx: Ctx, lesson_id: int, before: datetime) -> MicroLessonClicks | None:
    q = (
        select(MicroLessonClicks)
        .where(MicroLessonClicks.lesson_id == lesson_id, MicroLessonClicks.at <= before)
        .order_by(MicroLessonClicks.at.desc(), MicroLessonClicks.id.desc())
        .limit(1)
    )
    return (await ctx.session.execute(q)).scalar_one_or_none()


def _month(when: datetime, zone: str) -> tuple[datetime, datetime]:
    """The calendar month before `when` (local): its first instant and the next month's."""
    local = local_now(when, zone)
    end = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = (end - timedelta(days=1)).replace(day=1)
    return start, end


async def summary(ctx: Ctx, start: datetime, end: datetime) -> dict[str, Any]:
    """The month's numbers: lessons recorded and uploaded, and each online lesson's clicks."""
    lessons = list(
        (
            await ctx.session.execute(
                select(MicroLesson).where(MicroLesson.uploaded_at.is_not(None), MicroLesson.uploaded_at < end)
            )
        ).scalars()
    )
    items = []
    for lesson in sorted(lessons, key=lambda x: x.id):
        last = await _latest(ctx, lesson.id, end)
        before = await _latest(ctx, lesson.id, start)
        q = select(MicroLessonClicks.comments).where(
            MicroLessonClicks.lesson_id == lesson.id,
            MicroLessonClicks.at >= start,
            MicroLessonClicks.at < end,
            MicroLessonClicks.comments != "",
        )
        comments = [c for (c,) in (await ctx.session.execute(q.order_by(MicroLessonClicks.at))).all()]
        total = last.clicks if last else 0
        items.append(
            {
                **facts(ctx, lesson),
                "clicks": total,
                "added": total - (before.clicks if before else 0),
                "comments": comments,
            }
        )

    async def count(column: Any) -> int:
        q = select(func.count()).select_from(MicroLesson).where(column >= start, column < end)
        return int((await ctx.session.execute(q)).scalar_one())

    return {
        "month": start,
        "recorded": await count(MicroLesson.recorded_at),
        "uploaded": await count(MicroLesson.uploaded_at),
        "items": sorted(items, key=lambda i: -int(i["added"])),
    }


async def send_summary(ctx: Ctx, when: datetime) -> None:
    """Last month's summary to the head of 教学教研中心 (the manual: 反馈给教学教研中心)."""
    unit = next((u for u in ctx.config.units if u.key == ctx.config.microlessons.research_unit), None)
    if unit is None:
        return
    start, end = _month(when, ctx.config.scheduler.timezone)
    ctx.tell(unit.head, "microlesson_summary", unit=unit.name, **await summary(ctx, start, end))


@router.jobs_from
def summary_jobs(config: Config) -> Iterable[Job]:
    """The monthly click-and-comment summary for 教学教研中心."""
    if config.microlessons.research_unit:
        tz = ZoneInfo(config.scheduler.timezone)
        yield Job(
            "microlessons:summary",
            CronTrigger.from_crontab(config.microlessons.summary_cron, timezone=tz),
            send_summary,
        )


# -- 进度 and 我的任务 (handlers/find.py, handlers/duties.py) -------------------------------------
def may_see(ctx: Ctx, lesson: MicroLesson) -> bool:
    """The teacher, the planner, the 微课视频编辑部 and the director."""
    p = ctx.person
    mine = ctx.user in (lesson.teacher, lesson.planner)
    return mine or (p is not None and bool({"director", *EDITORS} & set(p.roles)))


def show_progress(ctx: Ctx, lesson: MicroLesson) -> None:
    """进度 #W3: where a lesson stands and what comes next."""
    step = next_step(lesson)
    ctx.reply(
        "microlesson_status",
        **facts(ctx, lesson),
        next=stage_name(ctx, step) if step else "",
        planner=ctx.org.name(lesson.planner),
        link=lesson.link if lesson.stage == MicroLessonStage.UPLOADED else "",
    )


async def work_of(ctx: Ctx, userid: str) -> list[str]:
    """我的任务: lessons `userid` planned that are not online yet, and recordings they are to teach."""
    done = (MicroLessonStage.UPLOADED, MicroLessonStage.CANCELLED)
    q = (
        select(MicroLesson)
        .where(or_(MicroLesson.planner == userid, MicroLesson.teacher == userid), MicroLesson.stage.not_in(done))
        .order_by(MicroLesson.id)
    )
    out = []
    for lesson in (await ctx.session.execute(q)).scalars():
        teaching = lesson.teacher == userid and lesson.stage == MicroLessonStage.PLANNED
        if teaching and lesson.end_at is not None and lesson.end_at <= ctx.now() and lesson.planner != userid:
            continue  # recorded: the rest is the editors' work
        if not teaching and lesson.planner != userid:
            continue
        step = next_step(lesson) if lesson.planner == userid else None
        out.append(
            LABELS(
                ctx, "work_line", **facts(ctx, lesson), teaching=teaching, next=stage_name(ctx, step) if step else ""
            )
        )
    return out


# -- the list -----------------------------------------------------------------------------------
@router.command("list_microlessons", aliases=("微课列表", "微課列表", "microlessons"), roles=EDITORS)
async def list_microlessons(ctx: Ctx, values: dict[str, str]) -> None:
    """微课列表 — the lessons in the plan and in production, and the latest online ones."""
    q = select(MicroLesson).where(MicroLesson.stage != MicroLessonStage.CANCELLED).order_by(MicroLesson.id.desc())
    lessons = list((await ctx.session.execute(q.limit(20))).scalars())
    ctx.reply("microlesson_list", items=[facts(ctx, x) for x in reversed(lessons)])
