"""Injectable time: production uses the system clock, tests move a fake one."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


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
