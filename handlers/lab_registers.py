"""The computer rooms' three registers as rows for handlers/registers.py, in the forms' own columns.

- 上机情况登记表: one row per seat per registered lesson (机位 is "<room> <seat>号"; the form has no
  time column, so 备注 starts with the lesson's day and 第N节).
- 微机室使用登记表: one row per registered lesson (备注 names the room), and one per visitor / USB
  request the room's administrator was asked (微机室管理制度 一、五: the decision, who and when).
- 微机室违纪情况登记表: one row per violation.

Each row is a `Row` with its record's id and campus (so `--campus` filters it and the register
ledger chains it); a permit's row in 微机室使用登记表 has the permit's id negated (Register.other).
The *_FEEDS say which stored records, when added or changed, change which rows.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.org import Org
from bot.render import Renderer
from handlers.computer_room import LABELS, tz
from handlers.register_row import Row, only_ids
from storage.models import LabLessonRecord, LabPermit, LabSeat, LabViolation, SeatCondition


class RegisterCtx(Protocol):
    """What handlers/registers.py reads a register with."""

    @property
    def session(self) -> AsyncSession: ...
    @property
    def org(self) -> Org: ...
    @property
    def config(self) -> Config: ...
    @property
    def renderer(self) -> Renderer: ...

    @property
    def only(self) -> frozenset[int] | None: ...

    def local(self, t: datetime | None) -> str: ...


SEAT_FEEDS: tuple[tuple[type, Callable[[Any], Any]], ...] = (
    (LabSeat, lambda s: s.id),
    (LabLessonRecord, lambda lesson: select(LabSeat.id).where(LabSeat.lesson_id == lesson.id)),
)
USE_FEEDS: tuple[tuple[type, Callable[[Any], Any]], ...] = (
    (LabLessonRecord, lambda lesson: lesson.id),
    (LabSeat, lambda s: s.lesson_id),  # a seat's condition shows in its lesson's 设备运转情况
    (LabPermit, lambda p: -p.id),
)
VIOLATION_FEEDS: tuple[tuple[type, Callable[[Any], Any]], ...] = ((LabViolation, lambda v: v.id),)


def _when(ctx: RegisterCtx, period: int, start: datetime) -> str:
    """2026-11-25 第3节 (10:00)"""
    local = start.astimezone(tz(ctx.config))
    return LABELS(ctx.renderer, "register_time", day=local.date().isoformat(), period=period, start=local)


def _lessons_in(start: datetime, end: datetime) -> Select[LabLessonRecord]:
    q = select(LabLessonRecord).where(LabLessonRecord.starts_at >= start, LabLessonRecord.starts_at < end)
    return q.order_by(LabLessonRecord.starts_at, LabLessonRecord.room)


async def seat_rows(ctx: RegisterCtx, start: datetime, end: datetime) -> list[Row]:
    """上机情况登记表: 序号 机位 班级 使用人姓名 课堂训练模块 授课教师 设备运转情况 备注."""
    q = _lessons_in(start, end)
    if ctx.only is not None:  # the ledger asks for a few seats: read only their lessons
        q = q.where(LabLessonRecord.id.in_(select(LabSeat.lesson_id).where(only_ids(ctx.only, LabSeat.id))))
    lessons = {lesson.id: lesson for lesson in (await ctx.session.execute(q)).scalars()}
    if not lessons:
        return []
    seats = (
        await ctx.session.execute(
            select(LabSeat)
            .where(LabSeat.lesson_id.in_(list(lessons)), only_ids(ctx.only, LabSeat.id))
            .order_by(LabSeat.lesson_id, LabSeat.seat)
        )
    ).scalars()
    order = {lid: i for i, lid in enumerate(lessons)}
    out = []
    for s in sorted(seats, key=lambda s: (order[s.lesson_id], s.seat)):
        lesson = lessons[s.lesson_id]
        out.append(
            Row(
                [
                    None,
                    LABELS(ctx.renderer, "register_seat", room=lesson.room, seat=s.seat),
                    lesson.class_name,
                    s.user_name,
                    lesson.module,
                    ctx.org.name(lesson.teacher),
                    LABELS.name(ctx.renderer, "condition", s.condition),
                    LABELS(
                        ctx.renderer,
                        "register_seat_note",
                        when=_when(ctx, lesson.period, lesson.starts_at),
                        problem=s.problem,
                        ticket=s.ticket_id,
                    ),
                ],
                s.id,
                lesson.campus,
            )
        )
    return out


async def use_rows(ctx: RegisterCtx, start: datetime, end: datetime) -> list[Row]:
    """微机室使用登记表: 序号 时间 班级 授课教师 上课人数 课堂情况 设备运转情况 备注 — one row per lesson,
    and one per visitor / USB request the administrator was asked (管理制度 一、五)."""
    rows: list[tuple[datetime, Row]] = []
    lessons = _lessons_in(start, end).where(only_ids(ctx.only, LabLessonRecord.id))
    for lesson in (await ctx.session.execute(lessons)).scalars():
        bad = (
            await ctx.session.execute(
                select(LabSeat)
                .where(LabSeat.lesson_id == lesson.id, LabSeat.condition == SeatCondition.ABNORMAL)
                .order_by(LabSeat.seat)
            )
        ).scalars()
        rows.append(
            (
                lesson.starts_at,
                Row(
                    [
                        None,
                        _when(ctx, lesson.period, lesson.starts_at),
                        lesson.class_name,
                        ctx.org.name(lesson.teacher),
                        lesson.headcount,
                        lesson.situation,
                        LABELS(
                            ctx.renderer,
                            "register_condition",
                            condition=LABELS.name(ctx.renderer, "condition", lesson.condition),
                            seats=[{"seat": s.seat, "problem": s.problem, "ticket": s.ticket_id} for s in bad],
                        ),
                        LABELS(
                            ctx.renderer,
                            "register_use_note",
                            room=lesson.room,
                            extra=not lesson.scheduled,
                            recorded_by=ctx.org.name(lesson.recorded_by)
                            if lesson.recorded_by != lesson.teacher
                            else "",
                            note=lesson.note,
                        ),
                    ],
                    lesson.id,
                    lesson.campus,
                ),
            )
        )
    permits = (
        await ctx.session.execute(
            select(LabPermit)
            .where(
                LabPermit.created_at >= start,
                LabPermit.created_at < end,
                only_ids(ctx.only, LabPermit.id, other=True),
            )
            .order_by(LabPermit.id)
        )
    ).scalars()
    for p in permits:
        rows.append(
            (
                p.created_at,
                Row(
                    [
                        None,
                        ctx.local(p.created_at),
                        "",
                        ctx.org.name(p.applicant),
                        "",
                        LABELS(
                            ctx.renderer,
                            "register_permit",
                            kind=LABELS.name(ctx.renderer, "permit", p.kind),
                            visitor=p.visitor,
                            reason=p.reason,
                        ),
                        "",
                        LABELS(
                            ctx.renderer,
                            "register_permit_note",
                            room=p.room,
                            status=LABELS.name(ctx.renderer, "status", p.status),
                            name=ctx.org.name(p.decided_by) if p.decided_by else "",
                            at=ctx.local(p.decided_at),
                        ),
                    ],
                    -p.id,
                    p.campus,
                ),
            )
        )
    return [r for _, r in sorted(rows, key=lambda r: r[0])]


async def violation_rows(ctx: RegisterCtx, start: datetime, end: datetime) -> list[Row]:
    """微机室违纪情况登记表: 序号 时间 班级 授课教师 学生姓名 违纪原因 量化结果及处理办法 备注."""
    rows = (
        await ctx.session.execute(
            select(LabViolation)
            .where(LabViolation.starts_at >= start, LabViolation.starts_at < end, only_ids(ctx.only, LabViolation.id))
            .order_by(LabViolation.starts_at, LabViolation.id)
        )
    ).scalars()
    return [
        Row(
            [
                None,
                _when(ctx, v.period, v.starts_at),
                v.class_name,
                ctx.org.name(v.teacher),
                v.student,
                v.reason,
                v.outcome,
                LABELS(ctx.renderer, "register_violation_note", room=v.room, seat=v.seat, note=v.note),
            ],
            v.id,
            v.campus,
        )
        for v in rows
    ]
