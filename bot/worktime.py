"""SLA clocks: wall-clock or working time, and pauses (暂停 待配件).

A repair deadline is `hours` of SLA time after the report. On a wall clock every second counts; on
a working clock only the center's working hours on workdays (the school calendar decides what a
workday is: weekends, holidays, 调休). A paused stretch never counts. Everything here is pure:
moments are aware datetimes, the answer is UTC.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

ClockKind = Literal["wall", "working"]


class Workdays(Protocol):
    def workday(self, d: date) -> bool: ...


@dataclass(frozen=True)
class Span:
    """A paused stretch; `end` is None while the pause lasts."""

    start: datetime
    end: datetime | None


@dataclass(frozen=True)
class WorkingTime:
    """The working windows of a workday (local time) and the calendar that says which days are."""

    windows: tuple[tuple[time, time], ...]
    calendar: Workdays
    tz: ZoneInfo

    def _windows_on(self, d: date) -> list[tuple[datetime, datetime]]:
        if not self.calendar.workday(d):
            return []
        return [
            (datetime.combine(d, a, self.tz).astimezone(UTC), datetime.combine(d, b, self.tz).astimezone(UTC))
            for a, b in self.windows
        ]

    def seconds_between(self, a: datetime, b: datetime) -> float:
        """Working seconds in [a, b)."""
        if b <= a:
            return 0.0
        total = 0.0
        day = a.astimezone(self.tz).date()
        last = b.astimezone(self.tz).date()
        while day <= last:
            for ws, we in self._windows_on(day):
                lo, hi = max(a, ws), min(b, we)
                if hi > lo:
                    total += (hi - lo).total_seconds()
            day += timedelta(days=1)
        return total

    def add(self, start: datetime, seconds: float) -> datetime:
        """The moment `seconds` of working time after `start` (a start outside working time waits
        for the next window). A calendar without a workday in two years stops the search."""
        left = seconds
        day = start.astimezone(self.tz).date()
        for _ in range(800):
            for ws, we in self._windows_on(day):
                lo = max(start, ws)
                if we <= lo:
                    continue
                room = (we - lo).total_seconds()
                if left <= room:
                    return lo + timedelta(seconds=left)
                left -= room
            day += timedelta(days=1)
        raise ValueError("no working time in the calendar")


def parse_windows(values: Sequence[str]) -> tuple[tuple[time, time], ...]:
    """["08:00-12:00", "14:00-17:30"] → ordered, non-overlapping windows; ValueError names the bad one."""
    out: list[tuple[time, time]] = []
    for v in values:
        first, sep, last = v.replace("–", "-").partition("-")
        try:
            a, b = time.fromisoformat(first.strip()), time.fromisoformat(last.strip())
        except ValueError:
            raise ValueError(v) from None
        if not sep or b <= a:
            raise ValueError(v)
        out.append((a, b))
    out.sort()
    for (_, b), (c, d) in itertools.pairwise(out):
        if c < b:
            raise ValueError(f"{c:%H:%M}-{d:%H:%M}")
    return tuple(out)


def deadline(
    created: datetime, hours: float, pauses: Sequence[Span], kind: ClockKind, working: WorkingTime
) -> datetime | None:
    """When `hours` of SLA time run out, not counting the pauses; None while a pause lasts and time
    is left (the clock is stopped, there is no deadline to show)."""
    left = hours * 3600
    cursor = created

    def between(a: datetime, b: datetime) -> float:
        return max(0.0, (b - a).total_seconds()) if kind == "wall" else working.seconds_between(a, b)

    def add(a: datetime, s: float) -> datetime:
        return a + timedelta(seconds=s) if kind == "wall" else working.add(a, s)

    for p in sorted(pauses, key=lambda p: p.start):
        used = between(cursor, p.start)
        if used >= left:
            break
        left -= used
        if p.end is None:
            return None
        cursor = max(cursor, p.end)
    return add(cursor, left)


def paused_seconds(pauses: Sequence[Span], now: datetime) -> float:
    """Wall time spent paused (an ongoing pause counts up to now)."""
    return sum(((p.end or now) - p.start).total_seconds() for p in pauses if (p.end or now) > p.start)
