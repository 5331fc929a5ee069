"""登记表 from chat: `导出` sends a register as an .xlsx file message; `点击统计` enters the click counts.

导出 <登记表> [本周|上周|本月|上月|YYYY-MM|日期 至 日期] [校区] — for the director and the
information center's staff (everyone else is refused before any question); the two footage registers
only for the director and the CCTV operators (anyone else is refused before the sheet is built, so
nothing is read, uploaded or sent). The sheet is built in
the handler and kept as a `media_files` row in the same transaction as the reply; the dispatcher
uploads it (media/upload, type=file) when it delivers the `file` message (bot/media.py), so a crash
before the upload still delivers it, once.

点击统计 <网站|公众号> <周期> <数值…> — platform staff enter a week's or a month's counts:
`点击统计 网站 2026-11 浏览量12000 访客3400`, `点击统计 公众号 第48周 阅读8000 阅读人数2100 新增关注120`.
Re-entering the same platform and period writes a new row superseding the old (append-only).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select

from bot.context import Ctx
from bot.logs import log
from bot.media import made, send_kept
from bot.router import Field as FormField
from bot.router import FieldError, Router, allowed, normalise
from bot.timeparse import TimeParseError, local_now, parse_date
from handlers.registers import REGISTER_LABELS, Register, build, campus_key, find_register, xlsx_bytes
from storage.models import ClickPlatform, ClickStat

logger = logging.getLogger(__name__)
router = Router("registers", templates=Path(__file__).with_name("templates") / "registers")

# The director and the information center's own staff.
EXPORT_ROLES = (
    "director",
    "technician",
    "sysadmin",
    "cctv_operator",
    "platform_editor",
    "video_editor",
    "photo_reviewer",
    "digital_campus",
)
# A confidential register (the footage ones, W3: a request is seen only by its requester, its
# approvers and the CCTV operators) holds every request and retrieval, police ones included: only
# the director and the operators get it. The footage approvers (class teacher, department head,
# vp_info_center) are left out on purpose: each may see only the requests they approve, and the
# register would show them the others too. `python -m bot export` on the server stays unrestricted.
CONFIDENTIAL_EXPORT_ROLES = ("director", "cctv_operator")
# Who keeps the website and the official account (数字化校园建设部 / 平台编辑), and the director.
CLICK_ROLES = ("platform_editor", "digital_campus", "director")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _today(ctx: Ctx) -> date:
    return local_now(ctx.now(), ctx.config.scheduler.timezone).date()


def _month(year: int, month: int) -> tuple[date, date]:
    first = date(year, month, 1)
    nxt = date(year + month // 12, month % 12 + 1, 1)
    return first, nxt - timedelta(days=1)


WEEK_WORDS = {"本周": 0, "这周": 0, "本星期": 0, "this week": 0, "上周": -1, "上星期": -1, "last week": -1}
MONTH_WORDS = {"本月": 0, "这个月": 0, "this month": 0, "上月": -1, "上个月": -1, "last month": -1}
MONTH_RE = re.compile(r"^(?:(\d{4})\s*[-/.年]\s*)?(\d{1,2})\s*月?$")
WEEK_RE = re.compile(r"^(?:(\d{4})\s*(?:-?w|年\s*第?))?\s*第?\s*(\d{1,2})\s*周$|^(\d{4})-?w(\d{1,2})$")
RANGE_RE = re.compile(r"\s*(?:至|到|~|～|—|--)\s*")


def _shift_month(d: date, months: int) -> tuple[date, date]:
    n = d.year * 12 + d.month - 1 + months
    return _month(n // 12, n % 12 + 1)


def parse_span(text: str, today: date) -> tuple[date, date]:
    """本周 / 上周 / 本月 / 上月 / 2026-11 / 11月 / 11月1日 至 11月15日 / one day → (first, last)."""
    low = text.strip().lower()
    if not low:
        return _shift_month(today, 0)
    if low in WEEK_WORDS:
        monday = today - timedelta(days=today.weekday()) + timedelta(weeks=WEEK_WORDS[low])
        return monday, monday + timedelta(days=6)
    if low in MONTH_WORDS:
        return _shift_month(today, MONTH_WORDS[low])
    m = MONTH_RE.match(low)
    if m and (m.group(1) or "月" in low):
        year, month = int(m.group(1) or today.year), int(m.group(2))
        if not 1 <= month <= 12:
            raise FieldError("invalid_period")
        if not m.group(1) and month > today.month:
            year -= 1  # 12月, said in January: last year's
        return _month(year, month)
    parts = RANGE_RE.split(low)
    try:
        if len(parts) == 2:
            first, last = parse_date(parts[0], today, prefer="past"), parse_date(parts[1], today, prefer="past")
            if last < first:
                raise FieldError("invalid_period_order")
            return first, last
        if len(parts) == 1:
            day = parse_date(low, today, prefer="past")
            return day, day
    except TimeParseError:
        pass
    raise FieldError("invalid_period")


@dataclass(frozen=True)
class ExportAsk:
    key: str
    first: date
    last: date
    campus: str

    def __str__(self) -> str:
        return f"{self.key}|{self.first}|{self.last}|{self.campus}"

    @classmethod
    def of(cls, value: str) -> ExportAsk:
        key, first, last, campus = value.split("|")
        return cls(key, date.fromisoformat(first), date.fromisoformat(last), campus)


def parse_export(value: str, ctx: Ctx) -> str:
    """维修 上月 东湖 → the register, the period (this month when none) and the campus (all when none)."""
    words = normalise(value).split(" ")
    register = find_register(words[0]) if words and words[0] else None
    if register is None:
        raise FieldError("invalid_register")
    rest = words[1:]
    campus = ""
    if rest and (found := campus_key(ctx.config, rest[-1])) is not None:
        campus, rest = found, rest[:-1]
    first, last = parse_span(" ".join(rest), _today(ctx))
    if first > _today(ctx):
        raise FieldError("invalid_period_future")
    return str(ExportAsk(register.key, first, last, campus))


def show_export(value: str, ctx: Ctx) -> str:
    ask = ExportAsk.of(value)
    register = find_register(ask.key)
    assert register is not None
    where = next((c.name for c in ctx.config.campuses if c.key == ask.campus), "")
    return ctx.render("export_what", title=register.title, first=ask.first, last=ask.last, campus=where)


def may_export(ctx: Ctx, register: Register) -> bool:
    """Whether the sender may have `register` from chat (a confidential one: CONFIDENTIAL_EXPORT_ROLES only)."""
    return not register.confidential or allowed(CONFIDENTIAL_EXPORT_ROLES, False, ctx.person)


@router.command(
    "export_register",
    aliases=("导出", "导出登记表", "導出", "導出登記表", "export", "export register"),
    roles=EXPORT_ROLES,
    default_field="what",
    fields=(FormField("what", ("登记表", "登記表", "表", "register"), parse=parse_export, show=show_export),),
)
async def export_register(ctx: Ctx, values: dict[str, str]) -> None:
    """导出 <登记表> [本周|上月|YYYY-MM|日期 至 日期] [校区] — the register as an .xlsx file message."""
    ask = ExportAsk.of(values["what"])
    register = find_register(ask.key)
    assert register is not None
    if not may_export(ctx, register):
        # Refused before the sheet is built: nothing read, kept as media, uploaded or sent.
        log(logger, logging.WARNING, "register_export_refused", register=register.key, from_user=ctx.user)
        ctx.reply("export_confidential_refused", title=register.title)  # names CONFIDENTIAL_EXPORT_ROLES
        return
    sheet = await build(ctx.session, ctx.config, register, ask.first, ask.last, ask.campus or None, ctx.renderer)
    data = xlsx_bytes(sheet)
    media = made(ctx, "file", f"export:{register.key}", f"{sheet.filename}.xlsx", data, XLSX)
    await ctx.session.flush()
    ctx.reply("export_sent", title=sheet.title, rows=len(sheet.rows), corrected=len(sheet.notes))
    if register.confidential:
        ctx.confidential = True  # footage: no forwarding, a watermark (safe = 1)
    send_kept(ctx, [ctx.user], media)


# -- 点击统计 -----------------------------------------------------------------------------------
PLATFORM_WORDS: dict[ClickPlatform, tuple[str, ...]] = {
    ClickPlatform.WEBSITE: ("网站", "学校网站", "官网", "门户网站", "website", "web"),
    ClickPlatform.OFFICIAL_ACCOUNT: ("公众号", "微信公众号", "微信", "服务号", "official account", "wechat"),
}
# What each count is called; the longest names first (阅读人数 before 阅读).
METRIC_WORDS: dict[str, tuple[str, ...]] = {
    "views": ("浏览量", "浏览", "访问量", "访问", "阅读量", "阅读数", "阅读次数", "阅读", "pv", "views"),
    "visitors": ("访客数", "访客", "独立访客", "阅读人数", "读者", "uv", "visitors", "readers"),
    "followers": ("新增关注", "新增粉丝", "关注", "涨粉", "followers"),
}
METRIC_RE = re.compile(
    "("
    + "|".join(re.escape(w) for w in sorted((w for ws in METRIC_WORDS.values() for w in ws), key=len, reverse=True))
    + r")\s*[:=]?\s*(-?\d[\d,]*)"
)


@dataclass(frozen=True)
class ClickEntry:
    platform: ClickPlatform
    period: str  # 2026-11 | 2026-W48
    first: date
    last: date
    views: int
    visitors: int | None
    followers: int | None

    def __str__(self) -> str:
        extra = [str(v) if v is not None else "" for v in (self.visitors, self.followers)]
        return "|".join([self.platform, self.period, str(self.first), str(self.last), str(self.views), *extra])

    @classmethod
    def of(cls, value: str) -> ClickEntry:
        p, period, first, last, views, visitors, followers = value.split("|")
        return cls(
            ClickPlatform(p),
            period,
            date.fromisoformat(first),
            date.fromisoformat(last),
            int(views),
            int(visitors) if visitors else None,
            int(followers) if followers else None,
        )


def click_period(text: str, today: date) -> tuple[str, date, date]:
    """2026-11 / 11月 / 本月 / 上月 → a month; 第48周 / 2026-W48 / 本周 / 上周 → an ISO week."""
    low = text.strip().lower().replace(" ", "")
    m = WEEK_RE.match(low)
    if low in WEEK_WORDS or m:
        if m is None:
            monday = today - timedelta(days=today.weekday()) + timedelta(weeks=WEEK_WORDS[low])
        else:
            year = int(m.group(1) or m.group(3) or today.isocalendar().year)
            week = int(m.group(2) or m.group(4))
            try:
                monday = date.fromisocalendar(year, week, 1)
            except ValueError:
                raise FieldError("invalid_click_period") from None
            if not (m.group(1) or m.group(3)) and monday > today:
                monday = date.fromisocalendar(year - 1, week, 1) if week <= 52 else monday
        iso = monday.isocalendar()
        return f"{iso.year}-W{iso.week:02d}", monday, monday + timedelta(days=6)
    if low in MONTH_WORDS:
        first, last = _shift_month(today, MONTH_WORDS[low])
        return f"{first:%Y-%m}", first, last
    m2 = MONTH_RE.match(low)
    if m2 and (m2.group(1) or "月" in low) and 1 <= int(m2.group(2)) <= 12:
        year = int(m2.group(1) or today.year)
        if not m2.group(1) and int(m2.group(2)) > today.month:
            year -= 1
        first, last = _month(year, int(m2.group(2)))
        return f"{first:%Y-%m}", first, last
    raise FieldError("invalid_click_period")


def parse_clicks(value: str, ctx: Ctx) -> str:
    """网站 2026-11 浏览量12000 访客3400 → a ClickEntry (as text, for the form)."""
    text = normalise(value).lower()
    platform = next(
        (p for p, words in PLATFORM_WORDS.items() for w in sorted(words, key=len, reverse=True) if text.startswith(w)),
        None,
    )
    if platform is None:
        raise FieldError("invalid_platform")
    word = max((w for w in PLATFORM_WORDS[platform] if text.startswith(w)), key=len)
    rest = text[len(word) :].strip()
    metrics_at = METRIC_RE.search(rest)
    period_text = rest[: metrics_at.start()] if metrics_at else rest
    if not period_text.strip():
        raise FieldError("invalid_click_period")
    period, first, last = click_period(period_text, _today(ctx))
    if first > _today(ctx):
        raise FieldError("invalid_click_future")
    counts: dict[str, int] = {}
    tail = rest[len(period_text) :]
    for label, number in METRIC_RE.findall(tail):
        metric = next((k for k, words in METRIC_WORDS.items() if label in words), None)
        if metric is None:
            raise FieldError("invalid_metric", label=label)
        if metric in counts:
            raise FieldError("invalid_metric_twice", label=label)
        amount = int(number.replace(",", ""))
        if amount < 0:
            raise FieldError("invalid_count", label=label)
        counts[metric] = amount
    leftover = METRIC_RE.sub("", tail).strip(" ,，、;；")
    if leftover:
        raise FieldError("invalid_metric", label=leftover)
    if "views" not in counts:
        raise FieldError("invalid_no_views")
    if platform == ClickPlatform.WEBSITE and "followers" in counts:
        raise FieldError("invalid_followers_website")
    entry = ClickEntry(platform, period, first, last, counts["views"], counts.get("visitors"), counts.get("followers"))
    return str(entry)


def show_clicks(value: str, ctx: Ctx) -> str:
    e = ClickEntry.of(value)
    return ctx.render(
        "click_what",
        platform=REGISTER_LABELS.name(ctx, "platform", e.platform),
        period=REGISTER_LABELS(ctx, "click_period", period=e.period),
        website=e.platform == ClickPlatform.WEBSITE,
        views=e.views,
        visitors=e.visitors,
        followers=e.followers,
    )


@router.command(
    "click_stats",
    aliases=("点击统计", "點擊統計", "点击情况", "點擊情況", "click stats"),
    roles=CLICK_ROLES,
    default_field="entry",
    fields=(FormField("entry", ("数据", "數據", "统计", "entry"), parse=parse_clicks, show=show_clicks),),
)
async def click_stats(ctx: Ctx, values: dict[str, str]) -> None:
    """点击统计 <网站|公众号> <周期> <数值…> — a week's or a month's counts; again for a correction."""
    e = ClickEntry.of(values["entry"])
    old = (
        await ctx.session.execute(
            select(ClickStat)
            .where(ClickStat.platform == e.platform, ClickStat.period == e.period)
            .order_by(ClickStat.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    stat = ClickStat(
        platform=e.platform,
        period=e.period,
        start=e.first.isoformat(),
        end=e.last.isoformat(),
        views=e.views,
        visitors=e.visitors,
        followers=e.followers,
        campus=ctx.person.campus if ctx.person else "",
        recorded_by=ctx.user,
        recorded_at=ctx.now(),
        corrects_id=old.id if old else None,
    )
    ctx.session.add(stat)
    await ctx.session.flush()
    ctx.reply(
        "clicks_recorded",
        number=stat.id,
        what=show_clicks(values["entry"], ctx),
        corrects=old.id if old else None,
        old_views=old.views if old else None,
        old_visitors=old.visitors if old else None,
        old_followers=old.followers if old else None,
        website=e.platform == ClickPlatform.WEBSITE,
    )
