"""Dates and time ranges typed the way Chinese staff type them."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.timeparse import TimeParseError, parse_date, parse_moment, parse_span, with_dates

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=TZ)  # a Wednesday
TODAY = NOW.date()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("今天", date(2026, 11, 25)),
        ("明天", date(2026, 11, 26)),
        ("后天", date(2026, 11, 27)),
        ("昨天", date(2026, 11, 24)),
        ("前天", date(2026, 11, 23)),
        ("下周三", date(2026, 12, 2)),
        ("周五", date(2026, 11, 27)),
        ("上星期一", date(2026, 11, 16)),
        ("12月1日", date(2026, 12, 1)),
        ("十二月一号", date(2026, 12, 1)),
        ("2026-12-01", date(2026, 12, 1)),
        ("2027/1/5", date(2027, 1, 5)),
        ("12/1", date(2026, 12, 1)),
        ("2026年12月1日", date(2026, 12, 1)),
    ],
)
def test_dates(text: str, expected: date) -> None:
    assert parse_date(text, TODAY) == expected


def test_month_day_in_the_past_means_this_year_for_footage() -> None:
    assert parse_date("11月20日", TODAY, prefer="past") == date(2026, 11, 20)
    assert parse_date("12月20日", TODAY, prefer="past") == date(2025, 12, 20)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("11月20日 14:00-15:30", (2026, 11, 20, 14, 0), (2026, 11, 20, 15, 30)),
        ("昨天 下午2点到4点", (2026, 11, 24, 14, 0), (2026, 11, 24, 16, 0)),
        ("今天 8:00~9:00", (2026, 11, 25, 8, 0), (2026, 11, 25, 9, 0)),
        ("2026-11-23 晚上7点半至9点", (2026, 11, 23, 19, 30), (2026, 11, 23, 21, 0)),
        ("上午十点到十一点", (2026, 11, 25, 10, 0), (2026, 11, 25, 11, 0)),
        ("周一 07:30-08:10", (2026, 11, 23, 7, 30), (2026, 11, 23, 8, 10)),
    ],
)
def test_spans(text: str, start: tuple, end: tuple) -> None:
    s, e = parse_span(text, NOW, prefer="past")
    assert (s, e) == (datetime(*start, tzinfo=TZ), datetime(*end, tzinfo=TZ))


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("昨天 2点到4点", "ambiguous_hour"),
        ("昨天 下午", "no_range"),
        ("昨天 16:00-15:00", "end_before_start"),
        ("2月30日 10:00-11:00", "bad_date"),
        ("随便什么时候", "no_range"),
    ],
)
def test_refused(text: str, code: str) -> None:
    with pytest.raises(TimeParseError) as err:
        parse_span(text, NOW, prefer="past")
    assert err.value.code == code


SATURDAY = date(2026, 11, 28)


@pytest.mark.parametrize(
    ("text", "today", "prefer", "expected"),
    [
        ("周五", SATURDAY, "future", date(2026, 12, 4)),  # typed on a Saturday: the coming Friday
        ("星期五", TODAY, "future", date(2026, 11, 27)),  # Wednesday → this Friday
        ("周三", TODAY, "future", date(2026, 11, 25)),  # today is Wednesday: today
        ("周五", SATURDAY, "past", date(2026, 11, 27)),  # footage: the Friday just gone
        ("周一", TODAY, "past", date(2026, 11, 23)),
        ("这周五", SATURDAY, "future", date(2026, 11, 27)),  # this calendar week's Friday, even if gone
        ("本周五", TODAY, "future", date(2026, 11, 27)),
        ("下周五", TODAY, "future", date(2026, 12, 4)),
        ("下周五", SATURDAY, "future", date(2026, 12, 4)),
        ("下下周一", TODAY, "future", date(2026, 12, 7)),
        ("12/5", TODAY, "future", date(2026, 12, 5)),
        ("1/5", TODAY, "future", date(2027, 1, 5)),  # January is next year's
    ],
)
def test_weekdays_and_short_dates(text: str, today: date, prefer: str, expected: date) -> None:
    assert parse_date(text, today, prefer=prefer) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("明天下午三点", datetime(2026, 11, 26, 15, 0, tzinfo=TZ)),
        ("明天 15:00", datetime(2026, 11, 26, 15, 0, tzinfo=TZ)),
        ("周五上午九点半", datetime(2026, 11, 27, 9, 30, tzinfo=TZ)),
        ("周三 上午9点", datetime(2026, 12, 2, 9, 0, tzinfo=TZ)),  # today's 9:00 is gone: next Wednesday
        ("周三 下午2点", datetime(2026, 11, 25, 14, 0, tzinfo=TZ)),  # still ahead today
    ],
)
def test_moments(text: str, expected: datetime) -> None:
    assert parse_moment(text, NOW) == expected


def test_bare_weekday_range_today_only_while_ahead() -> None:
    assert parse_span("周三 8:00-9:00", NOW)[0] == datetime(2026, 12, 2, 8, 0, tzinfo=TZ)
    assert parse_span("周三 15:00-16:00", NOW)[0] == datetime(2026, 11, 25, 15, 0, tzinfo=TZ)
    assert parse_span("这周三 8:00-9:00", NOW)[0] == datetime(2026, 11, 25, 8, 0, tzinfo=TZ)


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("今天10点", "2026-11-25 10点"),
        ("昨天下午3点到4点", "2026-11-24 下午3点到4点"),
        ("周一 9:00-9:30", "2026-11-23 9:00-9:30"),  # a bare weekday in a log: the last one
        ("11月24日 8:00至今天9:00", "2026-11-24 8:00至2026-11-25 9:00"),
        ("10:00-10:30", "10:00-10:30"),  # no date: the register's 日期 column says the day
        ("2月30日", "2月30日"),  # not a date: kept as typed
    ],
)
def test_a_logged_time_keeps_its_date_after_the_day(text: str, kept: str) -> None:
    assert with_dates(text, TODAY) == kept
