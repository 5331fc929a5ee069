"""Configuration of the computer rooms (微机室): the bell schedule and each room's seats, administrators
and lab timetable (issue 14 point 4).

    [lessons]
    periods = ["08:00-08:45", "08:55-09:40", …]     # 第1节, 第2节, … (local time)

    [[computer_rooms]]
    name = "微机室1"            # as teachers type it: 上机登记 微机室1 …
    campus = "main"
    seats = "1-40"             # 机位 numbers
    administrators = ["lihua"] # 管理员: approve visitors (外来人员) and USB drives (U盘), get reminders
    timetable = [{ weekday = 3, period = 3, class = "it2401", teacher = "zhaolei" }]

A seat's computer is the asset (资产) on the room's campus whose location is "<room name>-<seat>",
e.g. "微机室1-12": a 设备运转情况 of 异常 at that seat opens a fault ticket naming that asset.
"""

from __future__ import annotations

import re
from datetime import time

from pydantic import Field, field_validator, model_validator

from bot.config_base import _Strict
from bot.config_messages import Text, msg, of

PERIOD_RE = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)")
SEATS_RE = re.compile(r"(\d{1,3})-(\d{1,3})")


def _hhmm(h: str, m: str) -> time:
    return time(int(h), int(m))


class LessonsConfig(_Strict):
    """The bell schedule (作息时间): lesson periods of a school day, in order (第1节 first)."""

    periods: tuple[str, ...] = ()

    @field_validator("periods")
    @classmethod
    def _periods(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        last: time | None = None
        for i, p in enumerate(v, start=1):
            m = PERIOD_RE.fullmatch(p.strip())
            if m is None:
                raise ValueError(f'period {i} "{p}" must be HH:MM-HH:MM in 24-hour time, e.g. "08:00-08:45"')
            start, end = _hhmm(m[1], m[2]), _hhmm(m[3], m[4])
            if end <= start:
                raise ValueError(f'period {i} "{p}" ends before it starts')
            if last is not None and start < last:
                raise ValueError(f'period {i} "{p}" starts before period {i - 1} ends; list the periods in order')
            last = end
        return tuple(p.strip() for p in v)

    def span(self, period: int) -> tuple[time, time]:
        """Start and end (local) of 第`period`节 (1-based)."""
        m = PERIOD_RE.fullmatch(self.periods[period - 1])
        assert m is not None
        return _hhmm(m[1], m[2]), _hhmm(m[3], m[4])


class LabLesson(_Strict):
    """One weekly lesson in a computer room: weekday (1 = Monday … 7 = Sunday), 第几节, class, teacher."""

    weekday: int = Field(ge=1, le=7)
    period: int = Field(ge=1)
    # A [[classes]] key or name, or a class written as the timetable knows it (高一(2)班).
    class_: str = Field(alias="class", min_length=1, max_length=60)
    teacher: str


class ComputerRoom(_Strict):
    """A computer room (微机室) and its lab timetable."""

    name: str = Field(min_length=1, max_length=40)
    campus: str
    seats: str  # "1-40"
    administrators: tuple[str, ...] = Field(min_length=1)
    timetable: tuple[LabLesson, ...] = ()
    remind_after_minutes: int = Field(default=15, ge=0)  # no 上机登记 this long after the lesson: teacher
    admin_after_minutes: int = Field(default=60, ge=0)  # and this long after that: administrators (0: never)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        v = v.strip()
        if not v or any(c.isspace() for c in v) or "-" in v:
            raise ValueError('must be one word without spaces or "-" (teachers type it), e.g. "微机室1"')
        return v

    @field_validator("seats")
    @classmethod
    def _seats(cls, v: str) -> str:
        m = SEATS_RE.fullmatch(v.strip())
        if m is None or not 1 <= int(m[1]) <= int(m[2]):
            raise ValueError('must be a range of seat numbers, e.g. "1-40"')
        return v.strip()

    @property
    def seat_range(self) -> tuple[int, int]:
        m = SEATS_RE.fullmatch(self.seats)
        assert m is not None
        return int(m[1]), int(m[2])

    @model_validator(mode="after")
    def _one_lesson_per_slot(self) -> ComputerRoom:
        seen: set[tuple[int, int]] = set()
        for entry in self.timetable:
            slot = (entry.weekday, entry.period)
            if slot in seen:
                raise ValueError(
                    f"timetable: two lessons on weekday {entry.weekday} period {entry.period}; keep one per slot"
                )
            seen.add(slot)
        return self


def check_rooms(
    rooms: tuple[ComputerRoom, ...],
    lessons: LessonsConfig,
    users: set[str],
    campuses: set[str],
) -> list[Text]:
    """What the rooms name that the rest of the configuration must have (people, campuses, periods)."""
    errors: list[Text] = []
    names: set[str] = set()
    for room in rooms:
        where = msg("computer_room", name=room.name)
        if room.name in names:
            errors.append(
                Text(
                    f"{where.zh} 出现了两次：每个微机室的 name 只能用一次",
                    f"{where.en} appears twice; names must differ",
                )
            )
        names.add(room.name)
        if room.campus not in campuses:
            errors.append(msg("unknown_campus", where=of(where, "campus"), campus=room.campus))
        for userid in room.administrators:
            if userid not in users:
                errors.append(msg("unknown_user", where=of(where, "administrators"), userid=userid))
        for i, entry in enumerate(room.timetable, start=1):
            at = Text(f"{where.zh} 的 timetable 第 {i} 项", f"{where.en} timetable entry {i}")
            if entry.teacher not in users:
                errors.append(msg("unknown_user", where=of(at, "teacher"), userid=entry.teacher))
            if entry.period > len(lessons.periods):
                errors.append(
                    Text(
                        f"{at.zh}的 period = {entry.period}：[lessons] periods 只有 {len(lessons.periods)} 节",
                        f"{at.en} period = {entry.period}: [lessons] periods lists {len(lessons.periods)}",
                    )
                )
    if rooms and not lessons.periods:
        errors.append(
            Text(
                '[[computer_rooms]] 需要 [lessons] periods（作息时间），例如 periods = ["08:00-08:45", "08:55-09:40"]',
                '[[computer_rooms]] needs [lessons] periods, e.g. periods = ["08:00-08:45", "08:55-09:40"]',
            )
        )
    return errors
