"""Dates and time ranges as Chinese staff type them, in the configured time zone.

今天 明天 后天 昨天 前天, 周三 / 下周三 / 上星期五, 12月1日, 2026-12-01, 12/1; times 14:00, 下午2点,
2点半, 晚上8点; ranges with - ~ 到 至. A bare hour from 1 to 6 (2点, 3:00) could be night or
afternoon, so it is refused as ambiguous rather than guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


class TimeParseError(Exception):
    """Unusable date/time text; `code` names why (for the reply template)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
WEEKDAYS = {
    "一": 0,
    "二": 1,
    "三": 2,
    "四": 3,
    "五": 4,
    "六": 5,
    "日": 6,
    "天": 6,
    "1": 0,
    "2": 1,
    "3": 2,
    "4": 3,
    "5": 4,
    "6": 5,
    "7": 6,
}
RELATIVE_DAYS = {
    "大前天": -3,
    "前天": -2,
    "昨天": -1,
    "昨日": -1,
    "今天": 0,
    "今日": 0,
    "明天": 1,
    "明日": 1,
    "后天": 2,
    "大后天": 3,
}
PERIODS = {
    "凌晨": "am",
    "早上": "am",
    "早晨": "am",
    "上午": "am",
    "中午": "noon",
    "下午": "pm",
    "傍晚": "pm",
    "晚上": "pm",
    "夜里": "pm",
    "晚": "pm",
}


def cn_number(text: str) -> int:
    """'12', '十二', '二十三', '十' → int."""
    if text.isdigit():
        return int(text)
    if "十" in text:
        tens, _, ones = text.partition("十")
        return (CN_DIGITS.get(tens, 1) if tens else 1) * 10 + (CN_DIGITS.get(ones, 0) if ones else 0)
    if len(text) == 1 and text in CN_DIGITS:
        return CN_DIGITS[text]
    raise TimeParseError("unrecognised")


_NUM = r"(?:\d{1,2}|[一二两三四五六七八九十]{1,3})"
_DATE_RES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?"), "ymd"),
    (re.compile(rf"({_NUM})\s*月\s*({_NUM})\s*[日号]?"), "md"),
    (re.compile(r"(?<![\d:])(\d{1,2})/(\d{1,2})(?![\d:])"), "md"),
    (re.compile(r"(上上|上|下下|下|本|这)?\s*(?:周|星期|礼拜)([一二三四五六日天1-7])"), "weekday"),
    (re.compile("|".join(sorted(RELATIVE_DAYS, key=len, reverse=True))), "relative"),
]
_TIME_RE = re.compile(
    rf"(凌晨|早上|早晨|上午|中午|下午|傍晚|晚上|夜里|晚)?\s*"
    rf"(?:(\d{{1,2}})\s*[:：]\s*(\d{{2}})|({_NUM})\s*点\s*(?:(半)|({_NUM})\s*分?)?)"
)
_RANGE_SEP = re.compile(r"\s*(?:-|~|～|—|–|到|至)\s*")


def _year_for(month: int, day: int, today: date, prefer: str) -> date:
    d = date(today.year, month, day)
    if prefer == "past" and d > today:
        d = date(today.year - 1, month, day)
    elif prefer == "future" and d < today - timedelta(days=180):
        d = date(today.year + 1, month, day)
    return d


def find_date(text: str, today: date, prefer: str = "future") -> tuple[date, tuple[int, int]] | None:
    """The first date mentioned in `text` and where it stands, or None."""
    best: tuple[date, tuple[int, int]] | None = None
    for pattern, kind in _DATE_RES:
        m = pattern.search(text)
        if not m or (best is not None and m.start() >= best[1][0]):
            continue
        try:
            if kind == "ymd":
                d = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            elif kind == "md":
                d = _year_for(cn_number(m.group(1)), cn_number(m.group(2)), today, prefer)
            elif kind == "weekday":
                wd = WEEKDAYS[m.group(2)]
                if m.group(1) is None:  # a bare 周五: the next one (the last one, for past events)
                    if prefer == "past":
                        d = today - timedelta(days=(today.weekday() - wd) % 7)
                    else:
                        d = today + timedelta(days=(wd - today.weekday()) % 7)
                else:  # 这周五 / 本周五 / 下周五 / 上周五: by calendar week (Monday first)
                    shift = {"上上": -2, "上": -1, "下下": 2, "下": 1}.get(m.group(1), 0)
                    monday = today - timedelta(days=today.weekday())
                    d = monday + timedelta(weeks=shift, days=wd)
            else:
                d = today + timedelta(days=RELATIVE_DAYS[m.group(0)])
        except ValueError:
            raise TimeParseError("bad_date") from None
        best = (d, m.span())
    return best


def with_dates(text: str, today: date, prefer: str = "past") -> str:
    """`text` with each date it mentions written out (今天10点 → 2026-11-25 10点), the rest as typed:
    what is kept in a register must still read right after the day it was written. Text whose
    date cannot be read is kept as it is."""
    out, rest = "", text
    while rest:
        try:
            found = find_date(rest, today, prefer)
        except TimeParseError:
            found = None
        if found is None:
            return out + rest
        day, (start, end) = found
        gap = " " if end < len(rest) and not rest[end].isspace() else ""
        out, rest = out + rest[:start] + day.isoformat() + gap, rest[end:]
    return out


def parse_date(text: str, today: date, prefer: str = "future") -> date:
    """A single date; raise TimeParseError when there is none."""
    found = find_date(text, today, prefer)
    if found is None:
        raise TimeParseError("no_date")
    return found[0]


@dataclass(frozen=True)
class _Clock:
    hour: int
    minute: int
    period: str | None
    explicit_24h: bool  # written as 13:00-23:59 or with a leading zero (08:00)


def _clock(m: re.Match[str]) -> _Clock:
    period = PERIODS.get(m.group(1) or "")
    if m.group(2) is not None:
        raw = m.group(2)
        hour, minute = int(raw), int(m.group(3))
        explicit = hour >= 13 or hour == 0 or raw.startswith("0")
    else:
        hour = cn_number(m.group(4))
        minute = 30 if m.group(5) else (cn_number(m.group(6)) if m.group(6) else 0)
        explicit = hour >= 13 or hour == 0
    if hour > 24 or minute > 59:
        raise TimeParseError("bad_time")
    return _Clock(hour, minute, period, explicit)


def _to_time(c: _Clock, period: str | None) -> time:
    hour = c.hour
    if c.explicit_24h or period is None:
        if not c.explicit_24h and 1 <= hour <= 6:
            raise TimeParseError("ambiguous_hour")
        return time(hour % 24, c.minute)
    if period == "pm" and hour < 12:
        hour += 12
    elif period == "am" and hour == 12:
        hour = 0
    elif period == "noon" and hour < 6:
        hour += 12
    return time(hour % 24, c.minute)


def _bare_weekday(text: str, found: tuple[date, tuple[int, int]] | None) -> bool:
    if found is None:
        return False
    m = _DATE_RES[3][0].fullmatch(text[found[1][0] : found[1][1]])
    return m is not None and m.group(1) is None


def parse_moment(text: str, now: datetime, prefer: str = "future") -> datetime:
    """One date (default today) and one time: '明天下午三点', '周五 14:30' → a datetime in now's zone.

    A bare weekday that is today means today only while that time is still ahead.
    """
    found = find_date(text, now.date(), prefer)
    day = found[0] if found else now.date()
    rest = text if found is None else text[: found[1][0]] + " " + text[found[1][1] :]
    times = list(_TIME_RE.finditer(rest))
    if len(times) != 1:
        raise TimeParseError("no_time")
    c = _clock(times[0])
    moment = datetime.combine(day, _to_time(c, c.period), now.tzinfo)
    if prefer == "future" and _bare_weekday(text, found) and moment <= now:
        moment += timedelta(days=7)
    return moment


def parse_span(text: str, now: datetime, prefer: str = "future") -> tuple[datetime, datetime]:
    """A date (default today) and a time range 'HH:MM-HH:MM' → (start, end) in now's zone.

    A bare weekday that is today means today only while the range is still ahead (future).
    """
    tz = now.tzinfo
    today = now.date()
    found = find_date(text, today, prefer)
    day = found[0] if found else today
    rest = text if found is None else text[: found[1][0]] + " " + text[found[1][1] :]
    times = list(_TIME_RE.finditer(rest))
    if len(times) != 2 or not _RANGE_SEP.fullmatch(rest[times[0].end() : times[1].start()]):
        raise TimeParseError("no_range")
    first, second = _clock(times[0]), _clock(times[1])
    start = _to_time(first, first.period)
    end = _to_time(second, second.period or first.period)
    start_dt = datetime.combine(day, start, tz)
    end_dt = datetime.combine(day, end, tz)
    if end_dt <= start_dt:
        raise TimeParseError("end_before_start")
    if prefer == "future" and _bare_weekday(text, found) and start_dt <= now:
        start_dt, end_dt = start_dt + timedelta(days=7), end_dt + timedelta(days=7)
    return start_dt, end_dt


def local_now(now_utc: datetime, zone: str) -> datetime:
    return now_utc.astimezone(ZoneInfo(zone))
