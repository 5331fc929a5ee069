"""The README's first command: the scripted demo passes whatever day the machine's clock says."""

from __future__ import annotations

from datetime import date

import pytest

from infodesk.demo import demo_day, run_demo


@pytest.mark.parametrize(
    ("today", "played"),
    [
        (date(2026, 11, 23), date(2026, 11, 23)),  # Monday
        (date(2026, 11, 27), date(2026, 11, 27)),  # Friday
        (date(2026, 11, 28), date(2026, 11, 30)),  # Saturday → Monday
        (date(2026, 11, 29), date(2026, 11, 30)),  # Sunday → Monday
        (date(2026, 12, 31), date(2026, 12, 31)),  # Thursday at the year's end
    ],
)
def test_demo_plays_a_school_weekday(today: date, played: date) -> None:
    assert demo_day(today) == played


@pytest.mark.parametrize(
    "today", [date(2026, 11, 28), date(2026, 11, 29), date(2027, 1, 1)], ids=["saturday", "sunday", "friday-new-year"]
)
async def test_demo_script_passes_on_a_weekend_wall_clock(today: date, capsys: pytest.CaptureFixture[str]) -> None:
    assert await run_demo(today=today) == 0
    out = capsys.readouterr().out
    assert "演示结束。" in out
    assert "机房打扫" in out  # the weekday duty the script expects did go out
