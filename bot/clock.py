"""Injectable time: production uses the system clock, tests move a fake one."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class FakeClock:
    """A clock that only moves when told; for tests and the official 2014 vectors."""

    def __init__(self, start: datetime | float) -> None:
        if isinstance(start, (int, float)):
            start = datetime.fromtimestamp(start, timezone.utc)
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
