"""Injectable time: production uses the system clock, tests move a fake one."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ShiftedClock:
    """The system clock moved by a fixed number of seconds.

    `python -m bot serve` runs on it when INFODESK_CLOCK_OFFSET_SECONDS is set (see
    `clock_from_env`): a drill, or a test that starts real processes, runs them at a chosen instant
    (a push time, a weekday) whatever the date, and every process given the same offset agrees on
    the time, as replicas on one database must.
    """

    def __init__(self, offset_seconds: float) -> None:
        self.offset = timedelta(seconds=offset_seconds)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


CLOCK_OFFSET_ENV = "INFODESK_CLOCK_OFFSET_SECONDS"


def clock_from_env(environ: Mapping[str, str]) -> Clock:
    """The system clock, or a ShiftedClock when INFODESK_CLOCK_OFFSET_SECONDS is set (a number)."""
    value = environ.get(CLOCK_OFFSET_ENV, "").strip()
    if not value:
        return SystemClock()
    try:
        offset = float(value)
    except ValueError:
        raise ValueError(f"{CLOCK_OFFSET_ENV} must be a number of seconds, not {value!r}") from None
    if not math.isfinite(offset):
        raise ValueError(f"{CLOCK_OFFSET_ENV} must be a finite number of seconds, not {value!r}")
    return ShiftedClock(offset)


class FakeClock:
    """A clock that only moves when told; for tests and the official 2014 vectors."""

    def __init__(self, start: datetime | float) -> None:
        if isinstance(start, (int, float)):
            start = datetime.fromtimestamp(start, UTC)
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


class RunningClock:
    """A clock that starts at a fixed instant and then moves with real elapsed time.

    For tests that need time to flow (outbox backoff, leases, timeouts) but must not
    depend on the real date or weekday: the date is always `start`'s, whatever day the
    machine thinks it is (CI runs on weekends too). Elapsed time is measured with
    time.monotonic, so a wall-clock jump (NTP, faketime) does not move it either.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("RunningClock needs a timezone-aware start")
        self._start = start.astimezone(UTC)
        self._origin = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._origin)
