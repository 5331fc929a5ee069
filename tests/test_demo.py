"""The README's first command: the scripted demo passes whatever day the machine's clock says."""

from __future__ import annotations

import asyncio
import tomllib
from datetime import date
from pathlib import Path

import openpyxl
import pytest

from bot.config import parse_config
from handlers.registers import REGISTERS
from infodesk.cli import main
from infodesk.demo import EXAMPLE, demo_day, run_demo


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
    ("today", "played"),
    [
        (date(2026, 11, 30), date(2026, 11, 30)),  # a Monday in term
        (date(2027, 1, 1), date(2027, 1, 4)),  # New Year's Day (a holiday) → the next school day
        (date(2026, 10, 2), date(2026, 10, 8)),  # National Day week → after it
        (date(2027, 1, 25), date(2027, 2, 22)),  # the winter vacation → the spring term's first day
    ],
)
def test_demo_day_follows_the_school_calendar(today: date, played: date) -> None:
    example = parse_config(tomllib.loads(EXAMPLE.read_text(encoding="utf-8")), environ={})
    assert demo_day(today, example.calendar) == played


# One whole run (the script takes over a minute), on a weekend's wall clock and with --keep; which
# weekday the demo plays for a Sunday or a holiday is checked above without running it.
def test_demo_passes_on_a_weekend_and_keeps_a_database_every_command_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`demo --keep DIR` on a Saturday: DIR/config.toml points every other command at what it did."""
    keep = tmp_path / "kept"
    assert asyncio.run(run_demo(today=date(2026, 11, 28), keep=keep)) == 0
    printed = capsys.readouterr().out
    assert "演示结束。" in printed
    assert "机房打扫" in printed  # the weekday duty the script expects did go out
    config = keep / "config.toml"
    assert config.is_file() and (keep / "demo.db").is_file()
    out = tmp_path / "repairs.xlsx"
    args = ["export", "设备维修登记表", "--from", "2000-01-01", "--to", "2100-01-01", "-o", str(out)]
    assert main([*args, "--config", str(config)]) == 0
    sheet = openpyxl.load_workbook(out).active
    assert sheet is not None and sheet.max_row > 3  # title, header and the demo's tickets
    empty = []
    for register in REGISTERS:  # every one of the twelve registers has the demo's rows
        out = tmp_path / f"{register.key}.csv"
        args = ["export", register.key, "--from", "2000-01-01", "--to", "2100-01-01", "-o", str(out)]
        assert main([*args, "--config", str(config)]) == 0
        if len(out.read_text(encoding="utf-8-sig").splitlines()) < 2:  # the header only
            empty.append(register.title)
    assert empty == []
    assert main(["outbox", "failed", "--config", str(config)]) == 0
    assert main(["verify-registers", "--config", str(config)]) == 0
    capsys.readouterr()
