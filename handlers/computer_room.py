"""微机室 — the computer rooms' three registers (issue 14 point 4; 微机室管理制度, 第四篇 一至三).

- `上机登记 微机室1 第3节 24级计算机应用1班 座位1-40 正常 12号异常 键盘失灵`: one lesson → a row of
  the 微机室使用登记表 and one 上机情况登记表 row per seat. A seat 异常 opens a fault ticket for the
  seat's computer: the asset on the room's campus whose location is "<room>-<seat>" ("微机室1-12").
- `违纪登记 微机室1 第3节 张三 15号 玩游戏 处理:…` → a row of the 微机室违纪情况登记表.
- The lesson defaults to the one going on now (the injected clock, `[lessons] periods`); 第N节
  names one of today's that has begun. Seats must be the room's, the class a known one (the
  config's [[classes]] or the room's timetable), and on the timetable the teacher must be the
  lesson's teacher (or a technician, the director, the room's administrator).
- A timetabled lesson with no 上机登记 `remind_after_minutes` after it ends: the teacher is
  reminded; `admin_after_minutes` later, the room's administrators are told.
- 外来人员 (管理制度 一: 外来人员进入机房须经管理员批准) and U盘 (五: 使用U盘的，在同意并确定无病毒后
  方可带入): the room's administrators get a card; the decision (who, when) is recorded and
  shows as a row of the 微机室使用登记表.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.config_labs import ComputerRoom, LabLesson
from bot.context import Ctx
from bot.router import Field, FieldError, Job, Router
from bot.timeparse import local_now
from handlers.faults import open_ticket
from handlers.lab_entries import EntryError, fold, read_lesson, read_violation
from handlers.labels import Labels
from storage.models import (
    Asset,
    LabLessonRecord,
    LabSeat,
    LabViolation,
    PermitKind,
    PermitStatus,
    SeatCondition,
    Timer,
)

router = Router("computer_room", templates=Path(__file__).with_name("templates") / "computer_room")
LABELS = Labels("labels_computer_room", condition=SeatCondition, permit=PermitKind, status=PermitStatus)
STAFF = ("technician", "director")  # besides the lesson's teacher and the room's administrators
ADMIN_TIMER = "lab_unregistered"


# -- the rooms, the bell schedule, the timetable ---------------------------------------------------
def tz(ctx: Ctx | Config) -> ZoneInfo:
    config = ctx if isinstance(ctx, Config) else ctx.config
    return ZoneInfo(config.scheduler.timezone)


def room_named(ctx: Ctx, word: str) -> ComputerRoom | None:
    return next((r for r in ctx.config.computer_rooms if fold(r.name) == fold(word)), None)


def seat_location(room: ComputerRoom, seat: int) -> str:
    """Where a seat's computer is registered (Asset.location on the room's campus): 微机室1-12."""
    return f"{room.name}-{seat}"


def class_name(config: Config, word: str) -> str | None:
    """The class a word names: a [[classes]] name or key, or a class of a room's timetable."""
    for k in config.classes:
        if fold(word) in (fold(k.name), fold(k.key)):
            return k.name
    for room in config.computer_rooms:
        for entry in room.timetable:
            if fold(word) == fold(entry.class_):
                return timetable_class(config, entry)
    return None


def timetable_class(config: Config, entry: LabLesson) -> str:
    return next((k.name for k in config.classes if entry.class_ in (k.key, k.name)), entry.class_)


def lesson_span(config: Config, day: date, period: int) -> tuple[datetime, datetime]:
    start, end = config.lessons.span(period)
    zone = tz(config)
    return datetime.combine(day, start, zone), datetime.combine(day, end, zone)


def scheduled(room: ComputerRoom, day: date, period: int) -> LabLesson | None:
    return next((e for e in room.timetable if e.weekday == day.isoweekday() and e.period == period), None)


def current_period(ctx: Ctx, now: datetime) -> int | None:
    t = now.time()
    for p in range(1, len(ctx.config.lessons.periods) + 1):
        start, end = ctx.config.lessons.span(p)
        if start <= t <= end:
            return p
    return None


def may_register(ctx: Ctx, room: ComputerRoom, entry: LabLesson | None) -> bool:
    """The timetable's teacher, the room's administrators, technicians and the director; a lesson
    not on the timetable (an extra one) any member of the school."""
    person = ctx.person
    if person is None:
        return False
    if entry is None or ctx.user in (entry.teacher, *room.administrators):
        return True
    return bool(set(STAFF) & set(person.roles))


def _examples(ctx: Ctx) -> dict[str, Any]:
    room = ctx.config.computer_rooms[0] if ctx.config.computer_rooms else None
    klass = ctx.config.classes[0].name if ctx.config.classes else "24级计算机应用1班"
    if room is not None and room.timetable:
        klass = timetable_class(ctx.config, room.timetable[0])
    low, high = room.seat_range if room else (1, 40)
    return {"room": room.name if room else "微机室1", "klass": klass, "low": low, "high": high}


@router.example_context
def names(ctx: Ctx) -> dict[str, Any]:
    """The examples name a real computer room and a class of its timetable."""
    return {"lab": _examples(ctx)}


# -- reading a lesson (上机登记) -------------------------------------------------------------------
@dataclass(frozen=True)
class Slot:
    room: ComputerRoom
    day: date
    period: int
    entry: LabLesson | None


def fail(ctx: Ctx, block: str, **context: Any) -> FieldError:
    """A FieldError whose text shows the expected form with an example of this organisation."""
    return FieldError(block, lab=_examples(ctx), **context)


def _slot(ctx: Ctx, room_word: str, period: int | None) -> Slot:
    """The room and lesson a registration is about: named, or the lesson going on now."""
    now = local_now(ctx.now(), ctx.config.scheduler.timezone)
    room = room_named(ctx, room_word) if room_word else None
    if room is None:
        raise fail(ctx, "invalid_room" if room_word else "invalid_no_room", rooms=room_names(ctx), word=room_word)
    periods = len(ctx.config.lessons.periods)
    if period is None:
        period = current_period(ctx, now)
        if period is None:
            raise fail(ctx, "invalid_not_in_lesson", now=now, periods=_periods(ctx))
    elif not 1 <= period <= periods:
        raise fail(ctx, "invalid_period", period=period, count=periods, periods=_periods(ctx))
    start, _ = lesson_span(ctx.config, now.date(), period)
    if start > now:
        raise fail(ctx, "invalid_lesson_not_started", period=period, start=start)
    return Slot(room, now.date(), period, scheduled(room, now.date(), period))


def room_names(ctx: Ctx) -> list[str]:
    return [r.name for r in ctx.config.computer_rooms]


def _periods(ctx: Ctx) -> list[str]:
    return list(ctx.config.lessons.periods)


def _pick(ctx: Ctx, others: list[str]) -> tuple[str, str, list[str]]:
    """From the unrecognised words: the room, the class, and what is left."""
    room = klass = ""
    rest: list[str] = []
    for word in others:
        if not room and room_named(ctx, word) is not None:
            room = word
        elif not klass and class_name(ctx.config, word) is not None:
            klass = word
        else:
            rest.append(word)
    return room, klass, rest


def _class_of(ctx: Ctx, slot: Slot, klass: str, rest: list[str]) -> str:
    if klass:
        name = class_name(ctx.config, klass)
        assert name is not None
        return name
    unknown = next((w for w in rest if w.endswith("班")), None)
    if unknown is not None:
        raise fail(ctx, "invalid_class", klass=unknown)
    if slot.entry is not None:
        return timetable_class(ctx.config, slot.entry)
    raise fail(ctx, "invalid_no_class")


def parse_lesson(value: str, ctx: Ctx) -> str:
    """The whole registration, checked; kept as JSON for the form (a form value is text)."""
    try:
        words = read_lesson(value)
    except EntryError as err:
        raise fail(ctx, f"invalid_{err.block}", **err.context) from None
    room_word, klass, rest = _pick(ctx, words.others)
    guess = next((w for w in rest if not w.endswith("班")), "")
    if not room_word and guess:
        raise fail(ctx, "invalid_room", rooms=room_names(ctx), word=guess)
    slot = _slot(ctx, room_word, words.period)
    class_ = _class_of(ctx, slot, klass, rest)
    if rest:
        raise fail(ctx, "invalid_words", words=[w for w in rest if not w.endswith("班")] or rest)
    if not may_register(ctx, slot.room, slot.entry):
        assert slot.entry is not None
        raise fail(
            ctx,
            "invalid_not_your_lesson",
            room=slot.room.name,
            period=slot.period,
            teacher=ctx.org.name(slot.entry.teacher),
        )
    low, high = slot.room.seat_range
    if not words.seats:
        raise fail(ctx, "invalid_no_seats", room=slot.room.name, low=low, high=high)
    seats: set[int] = set()
    for a, b in words.seats:
        if a > b:
            raise fail(ctx, "invalid_seat_order", a=a, b=b)
        seats |= set(range(a, b + 1))
    seats |= set(words.problems) | set(words.names)
    outside = sorted(s for s in seats if not low <= s <= high)
    if outside:
        raise fail(ctx, "invalid_seat_range", seats=outside, room=slot.room.name, low=low, high=high)
    if words.condition == "abnormal" and not words.problems:
        raise fail(ctx, "invalid_abnormal_without_seat")
    return json.dumps(
        {
            "room": slot.room.name,
            "day": slot.day.isoformat(),
            "period": slot.period,
            "class": class_,
            "seats": sorted(seats),
            "problems": {str(k): v for k, v in sorted(words.problems.items())},
            "names": {str(k): v for k, v in sorted(words.names.items())},
            "module": words.module,
            "situation": words.situation,
            "note": words.note,
        },
        ensure_ascii=False,
    )


def show_lesson(value: str, ctx: Ctx) -> str:
    v = json.loads(value)
    return LABELS(ctx, "entry_summary", v=v, count=len(v["seats"]))


async def _registered(session: AsyncSession, room: str, start: datetime) -> LabLessonRecord | None:
    return (
        await session.execute(
            select(LabLessonRecord).where(LabLessonRecord.room == room, LabLessonRecord.starts_at == start)
        )
    ).scalar_one_or_none()


@router.command(
    "lab_lesson",
    aliases=(
        "上机登记",
        "上機登記",
        "上机情况登记",
        "上機情況登記",
        "微机室登记",
        "微機室登記",
        "lab lesson",
        "lab register",
    ),
    fields=(Field("entry", ("登记内容", "entry"), parse=parse_lesson, show=show_lesson),),
    default_field="entry",
    members_only=True,
)
async def lab_lesson(ctx: Ctx, values: dict[str, str]) -> None:
    """上机登记 微机室 第N节 班级 座位1-40 正常 [12号异常 说明] — register a lab lesson."""
    v = json.loads(values["entry"])
    room = room_named(ctx, v["room"])
    assert room is not None
    day = date.fromisoformat(v["day"])
    start, end = lesson_span(ctx.config, day, v["period"])
    done = await _registered(ctx.session, room.name, start)
    if done is not None:  # a lesson is registered once: a second 上机登记 says who did it
        ctx.reply(
            "lesson_already_registered",
            room=room.name,
            period=v["period"],
            name=ctx.org.name(done.recorded_by),
            lab=_examples(ctx),
        )
        return
    entry = scheduled(room, day, v["period"])
    problems = {int(k): text for k, text in v["problems"].items()}
    lesson = LabLessonRecord(
        room=room.name,
        campus=room.campus,
        period=v["period"],
        starts_at=start,
        ends_at=end,
        class_name=v["class"],
        teacher=entry.teacher if entry is not None else ctx.user,
        recorded_by=ctx.user,
        headcount=len(v["seats"]),
        module=v["module"],
        situation=v["situation"],
        condition=SeatCondition.ABNORMAL if problems else SeatCondition.NORMAL,
        scheduled=entry is not None,
        note=v["note"],
        created_at=ctx.now(),
    )
    ctx.session.add(lesson)
    await ctx.session.flush()  # a second registration of the lesson at the same moment: the unique index refuses it
    tickets = []
    for seat in v["seats"]:
        row = LabSeat(
            lesson_id=lesson.id,
            seat=seat,
            user_name=v["names"].get(str(seat), ""),
            condition=SeatCondition.ABNORMAL if seat in problems else SeatCondition.NORMAL,
            problem=problems.get(seat, ""),
        )
        if seat in problems:
            ticket, asset = await _report_seat(ctx, room, seat, problems[seat], lesson)
            row.ticket_id = ticket
            tickets.append({"seat": seat, "number": ticket, "asset": asset, "problem": problems[seat]})
        ctx.session.add(row)
    ctx.reply(
        "lesson_registered",
        number=lesson.id,
        room=room.name,
        start=local_now(start, ctx.config.scheduler.timezone),
        end=local_now(end, ctx.config.scheduler.timezone),
        period=lesson.period,
        klass=lesson.class_name,
        teacher=ctx.org.name(lesson.teacher),
        count=lesson.headcount,
        tickets=tickets,
        extra=not lesson.scheduled,
    )


async def seat_asset(session: AsyncSession, room: ComputerRoom, seat: int) -> Asset | None:
    """The computer registered at the seat: campus = the room's, location = "<room>-<seat>"."""
    return (
        await session.execute(
            select(Asset)
            .where(Asset.campus == room.campus, Asset.location == seat_location(room, seat))
            .order_by(Asset.id)
            .limit(1)
        )
    ).scalar_one_or_none()


async def _report_seat(
    ctx: Ctx, room: ComputerRoom, seat: int, problem: str, lesson: LabLessonRecord
) -> tuple[int, str]:
    """A fault ticket for the seat's computer (its asset named on the ticket, and marked 维修中).

    faults.open_ticket takes no asset, so the asset is set on the ticket it returns, in the same
    transaction, before anything is sent (the claim cards are outbox rows of this transaction)."""
    asset = await seat_asset(ctx.session, room, seat)
    description = LABELS(
        ctx,
        "ticket_description",
        room=room.name,
        seat=seat,
        problem=problem,
        klass=lesson.class_name,
        period=lesson.period,
    )
    location = LABELS(ctx, "ticket_location", room=room.name, seat=seat)
    ticket = await open_ticket(ctx, location, "computer", description, asset=asset)
    return ticket.id, asset.number if asset is not None else ""


# -- 违纪登记 ------------------------------------------------------------------------------------
def parse_violation(value: str, ctx: Ctx) -> str:
    try:
        words = read_violation(value)
    except EntryError as err:
        raise fail(ctx, f"invalid_{err.block}", **err.context) from None
    room_word, klass, rest = _pick(ctx, words.others)
    slot = _slot(ctx, room_word, words.period)
    if words.klass:
        klass = words.klass
        if class_name(ctx.config, klass) is None:
            raise fail(ctx, "invalid_class", klass=klass)
    if klass:
        class_ = class_name(ctx.config, klass) or klass
    elif slot.entry is not None:
        class_ = timetable_class(ctx.config, slot.entry)
    else:
        class_ = ""  # the lesson's registration may name it (the handler looks)
    if not may_register(ctx, slot.room, slot.entry):
        assert slot.entry is not None
        raise fail(
            ctx,
            "invalid_not_your_lesson",
            room=slot.room.name,
            period=slot.period,
            teacher=ctx.org.name(slot.entry.teacher),
        )
    unknown = next((w for w in rest[:1] if w.endswith("班")), None)
    if unknown is not None:  # 高三(9)班 where the student's name should be: a class we do not know
        raise fail(ctx, "invalid_class", klass=unknown)
    if len(rest) < 2:
        raise fail(ctx, "invalid_violation_words")
    student, reason = rest[0], " ".join(rest[1:])
    if len(student) > 20:
        raise fail(ctx, "invalid_student", student=student)
    low, high = slot.room.seat_range
    if words.seat is not None and not low <= words.seat <= high:
        raise fail(ctx, "invalid_seat_range", seats=[words.seat], room=slot.room.name, low=low, high=high)
    return json.dumps(
        {
            "room": slot.room.name,
            "day": slot.day.isoformat(),
            "period": slot.period,
            "class": class_,
            "seat": words.seat,
            "student": student,
            "reason": reason,
            "outcome": words.outcome,
            "note": words.note,
        },
        ensure_ascii=False,
    )


def show_violation(value: str, ctx: Ctx) -> str:
    return LABELS(ctx, "violation_summary", v=json.loads(value))


@router.command(
    "lab_violation",
    aliases=("违纪登记", "違紀登記", "微机室违纪", "微機室違紀", "lab violation"),
    fields=(Field("entry", ("登记内容", "entry"), parse=parse_violation, show=show_violation),),
    default_field="entry",
    members_only=True,
)
async def lab_violation(ctx: Ctx, values: dict[str, str]) -> None:
    """违纪登记 微机室 第N节 学生 N号 原因 [处理:…] — record a violation in a lab lesson."""
    v = json.loads(values["entry"])
    room = room_named(ctx, v["room"])
    assert room is not None
    day = date.fromisoformat(v["day"])
    start, _ = lesson_span(ctx.config, day, v["period"])
    entry = scheduled(room, day, v["period"])
    if not v["class"]:  # off the timetable: the class the lesson was registered with
        lesson = await _registered(ctx.session, room.name, start)
        if lesson is None:
            ctx.reply("violation_needs_class", v=v, lab=_examples(ctx))
            return
        v["class"] = lesson.class_name
    row = LabViolation(
        room=room.name,
        campus=room.campus,
        period=v["period"],
        starts_at=start,
        class_name=v["class"],
        teacher=entry.teacher if entry is not None else ctx.user,
        student=v["student"],
        seat=v["seat"],
        reason=v["reason"],
        outcome=v["outcome"],
        note=v["note"],
        recorded_by=ctx.user,
        created_at=ctx.now(),
    )
    ctx.session.add(row)
    await ctx.session.flush()
    ctx.reply("violation_recorded", number=row.id, v=v, teacher=ctx.org.name(row.teacher))


# -- reminders: a timetabled lesson nobody registered ------------------------------------------
def _remind(room: ComputerRoom, entry: LabLesson) -> Callable[[Ctx, datetime], Awaitable[None]]:
    async def action(ctx: Ctx, when: datetime) -> None:
        day = local_now(when, ctx.config.scheduler.timezone).date()
        if not ctx.config.calendar.runs_on("school_days", day):
            return  # a holiday: no lesson
        start, _ = lesson_span(ctx.config, day, entry.period)
        if await _registered(ctx.session, room.name, start) is not None:
            return
        ctx.tell(entry.teacher, "lesson_reminder", **_reminder(ctx, room, entry, start))
        if room.admin_after_minutes:
            ctx.session.add(
                Timer(
                    kind=ADMIN_TIMER,
                    ref=f"{room.name}@{start.isoformat()}"[:100],
                    due_at=when + timedelta(minutes=room.admin_after_minutes),
                    payload={"room": room.name, "day": day.isoformat(), "period": entry.period},
                )
            )

    return action


def _reminder(ctx: Ctx, room: ComputerRoom, entry: LabLesson, start: datetime) -> dict[str, Any]:
    _, end = lesson_span(ctx.config, start.date(), entry.period)
    return {
        "room": room.name,
        "period": entry.period,
        "klass": timetable_class(ctx.config, entry),
        "teacher": ctx.org.name(entry.teacher),
        "start": local_now(start, ctx.config.scheduler.timezone),
        "end": local_now(end, ctx.config.scheduler.timezone),
        "lab": _examples(ctx),
    }


@router.timer(ADMIN_TIMER)
async def tell_administrators(ctx: Ctx, timer: Timer) -> None:
    """Still not registered: the room's administrators are told."""
    room = room_named(ctx, str(timer.payload.get("room", "")))
    day = date.fromisoformat(str(timer.payload["day"]))
    period = int(timer.payload["period"])
    if room is None or period > len(ctx.config.lessons.periods):
        return
    entry = scheduled(room, day, period)
    start, _ = lesson_span(ctx.config, day, period)
    if entry is None or await _registered(ctx.session, room.name, start) is not None:
        return
    for admin in room.administrators:
        ctx.tell(admin, "lesson_unregistered_for_admin", **_reminder(ctx, room, entry, start))


@router.jobs_from
def reminder_jobs(config: Config) -> Iterable[Job]:
    """Per timetabled lab lesson: a check `remind_after_minutes` after it ends, on its weekday."""
    names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    for room in config.computer_rooms:
        for entry in room.timetable:
            _, end = config.lessons.span(entry.period)
            at = datetime.combine(date(2026, 1, 5), end) + timedelta(minutes=room.remind_after_minutes)
            weekday = names[(entry.weekday - 1 + (at.date() - date(2026, 1, 5)).days) % 7]
            yield Job(
                f"lab_remind:{room.name}:{entry.weekday}:{entry.period}",
                CronTrigger(day_of_week=weekday, hour=at.hour, minute=at.minute, timezone=tz(config)),
                _remind(room, entry),
            )


from handlers import lab_permits  # noqa: E402, F401  (registers 外来人员 / U盘申请 on this router)
