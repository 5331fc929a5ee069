"""The director's reports (第一篇 主任 九: 每周、每月、每学期、每年向学校汇报中心工作).

Every Monday (last week), on the 1st (last month), the day after a term's last day (that term)
and on 1 January (last year) the director receives a digest of the center's work: tickets by
category and campus, SLA met, median and p90 repair time, duties done and missed, stage bookings,
footage requests, drafts published against the targets (website daily, official account ≥4 a
week), the website's and the official account's click counts as platform staff entered them
(点击统计), pushes into customer groups sent and confirmed, training pass rates and assets still out;
with a chart (an image) and the figures as an .xlsx. `报告 上周|本月|本学期|今年…` asks for one in
chat; `python -m bot report week|month|term|year --date D -o FILE.xlsx` writes the same offline.

A period is a half-open range of local days [first, last]; the figures count what happened in it
(tickets reported, repairs finished, duties due, bookings held, …) and what stands at its end
(tickets still open, assets still out).
"""

from __future__ import annotations

import io
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.context import Ctx
from bot.media import made, send_kept
from bot.render import Renderer
from bot.router import Field, FieldError, Job, Router
from handlers.approval_engine import FlowStatus
from handlers.faults import category_name, repair_hours
from handlers.labels import Labels
from storage.models import (
    Booking,
    ClickPlatform,
    ClickStat,
    ComputerIssue,
    GroupSend,
    GroupSendStatus,
    Platform,
    Publication,
    Request,
    Task,
    TaskStatus,
    Ticket,
    TicketStatus,
    TrainingScore,
)

router = Router("reports", templates=Path(__file__).with_name("templates") / "reports")


class Span(StrEnum):
    WEEK = "week"
    MONTH = "month"
    TERM = "term"
    YEAR = "year"


LABELS = Labels("labels_reports", span=Span)
OA_WEEKLY_TARGET = 4  # 公众号每周不少于4篇 (W4)
# The counts each platform has (the website has no followers: 点击统计 refuses them), in the digest's order.
CLICK_METRICS: dict[ClickPlatform, tuple[str, ...]] = {
    ClickPlatform.WEBSITE: ("views", "visitors"),
    ClickPlatform.OFFICIAL_ACCOUNT: ("views", "visitors", "followers"),
}


class NoTerm(ValueError):
    """The day is in no term of the school calendar."""


@dataclass(frozen=True)
class Period:
    span: Span
    first: date
    last: date  # inclusive
    name: str  # 2026年第48周 / 2026年11月 / the term's name / 2026年

    def bounds(self, zone: str) -> tuple[datetime, datetime]:
        tz = ZoneInfo(zone)
        return datetime.combine(self.first, time(0), tz), datetime.combine(self.last + timedelta(days=1), time(0), tz)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


def period_of(span: Span, day: date, config: Config) -> Period:
    """The week (Monday-Sunday), month, term or calendar year that contains `day`."""
    if span is Span.WEEK:
        first = day - timedelta(days=day.weekday())
        iso = first.isocalendar()
        return Period(span, first, first + timedelta(days=6), f"{iso.year}年第{iso.week}周")
    if span is Span.MONTH:
        first = day.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        return Period(span, first, following - timedelta(days=1), f"{day.year}年{day.month}月")
    if span is Span.TERM:
        for term in config.calendar.terms:
            if term.start <= day <= term.end:
                return Period(span, term.start, term.end, term.name)
        raise NoTerm(day.isoformat())
    return Period(span, date(day.year, 1, 1), date(day.year, 12, 31), f"{day.year}年")


def previous(span: Span, today: date, config: Config) -> Period:
    """The period a report sent on `today` covers: the one that ended most recently."""
    if span is Span.TERM:
        ended = [t for t in config.calendar.terms if t.end < today]
        if not ended:
            raise NoTerm(today.isoformat())
        term = max(ended, key=lambda t: t.end)
        return Period(span, term.start, term.end, term.name)
    current = period_of(span, today, config)
    return period_of(span, current.first - timedelta(days=1), config)


# -- the figures -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Words:
    """A renderer where a workflow's label helpers expect a context (they only read `.renderer`)."""

    renderer: Renderer


@dataclass(frozen=True)
class Clicks:
    """One platform's click counts over a report's period, summed from the entries counted (点击统计)."""

    days: int = 0  # days of the period those entries cover; 0: nothing entered (未录入)
    views: int | None = None  # 浏览量 / 阅读量
    visitors: int | None = None  # 访客 / 阅读人数; None: no counted entry gave it
    followers: int | None = None  # 新增关注 (the official account only)
    incomplete: tuple[str, ...] = ()  # metrics some counted entries left blank ("visitors", "followers")
    left_out: int = 0  # entries crossing the period's first or last day, not counted


@dataclass
class Figures:
    period: Period
    tickets: int = 0
    by_category: dict[str, int] = field(default_factory=dict)  # display name → count
    by_campus: dict[str, int] = field(default_factory=dict)
    resolved: int = 0
    sla_met: int = 0  # of the resolved ones with a deadline
    sla_counted: int = 0
    median_hours: float | None = None
    p90_hours: float | None = None
    open_at_end: int = 0
    duties_done: int = 0
    duties_missed: int = 0
    duties_open: int = 0
    bookings: int = 0
    footage_requests: int = 0
    footage_approved: int = 0
    website_posts: int = 0
    website_days: int = 0  # days with at least one new website post
    oa_posts: int = 0
    oa_weeks_met: int = 0  # whole weeks of the period with ≥4 official-account posts
    oa_weeks: int = 0
    pushes: int = 0  # customer-group mass sends created
    pushes_confirmed: int = 0  # … confirmed by the owner and delivered
    training: dict[str, tuple[int, int]] = field(default_factory=dict)  # module → (passed, sat)
    assets_out: int = 0  # computers issued and not returned at the period's end
    loans_overdue: int = 0
    clicks: dict[ClickPlatform, Clicks] = field(default_factory=lambda: {p: Clicks() for p in ClickPlatform})

    @property
    def sla_percent(self) -> float | None:
        return round(100 * self.sla_met / self.sla_counted, 1) if self.sla_counted else None

    @property
    def website_percent(self) -> float:
        return round(100 * self.website_days / self.period.days, 1)


def percentile(values: list[float], q: float) -> float:
    """The q-quantile by linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (pos - low), 1)


def _entry_days(c: ClickStat) -> int:
    return (date.fromisoformat(c.end) - date.fromisoformat(c.start)).days + 1


def _summed(counted: list[ClickStat], left_out: int) -> Clicks:
    given = {
        "visitors": [c.visitors for c in counted if c.visitors is not None],
        "followers": [c.followers for c in counted if c.followers is not None],
    }
    return Clicks(
        days=sum(_entry_days(c) for c in counted),
        views=sum(c.views for c in counted) if counted else None,
        visitors=sum(given["visitors"]) if given["visitors"] else None,
        followers=sum(given["followers"]) if given["followers"] else None,
        incomplete=tuple(m for m, values in given.items() if 0 < len(values) < len(counted)),
        left_out=left_out,
    )


async def click_totals(session: AsyncSession, period: Period) -> dict[ClickPlatform, Clicks]:
    """Per platform, the click counts of the entries whose week or month lies wholly within `period`.

    Counts are entered per ISO week or per calendar month and are never split: a weekly report
    counts that week's entry and never a month's (the month shows in the monthly report); a
    monthly report counts the month's entry, or, when the platform has none, the weeks wholly
    inside the month; a term or a year counts its whole months and the whole weeks no counted
    month covers. Of overlapping entries the longer one counts (a month entered as a month and also
    week by week is counted once, as the month). Only the head of a correction chain counts: a
    re-entry supersedes the entry its `corrects_id` names. Readers (访客/阅读人数) are the sum of
    the entries' own counts, so a reader in two weeks counts twice.
    """
    first, last = period.first.isoformat(), period.last.isoformat()
    near = select(ClickStat).where(ClickStat.start <= last, ClickStat.end >= first).order_by(ClickStat.id)
    stats = list((await session.execute(near)).scalars())
    ids = [c.id for c in stats]
    fixes = select(ClickStat.corrects_id).where(ClickStat.corrects_id.in_(ids))
    superseded = set((await session.execute(fixes)).scalars()) if ids else set()
    heads = [c for c in stats if c.id not in superseded]
    totals: dict[ClickPlatform, Clicks] = {}
    for platform in ClickPlatform:
        mine = [c for c in heads if c.platform == platform]
        inside = [c for c in mine if first <= c.start and c.end <= last]
        counted: list[ClickStat] = []
        # Longest first, then newest: months before the weeks they hold; of two heads for one period
        # (entered at the same moment, neither naming the other) the later one.
        for c in sorted(inside, key=lambda c: (_entry_days(c), c.id), reverse=True):
            if all(c.end < k.start or k.end < c.start for k in counted):
                counted.append(c)
        totals[platform] = _summed(counted, left_out=len(mine) - len(inside))
    return totals


async def figures(session: AsyncSession, config: Config, renderer: Renderer, period: Period) -> Figures:
    zone = config.scheduler.timezone
    start, end = period.bounds(zone)
    f = Figures(period)

    reported = list(
        (await session.execute(select(Ticket).where(Ticket.created_at >= start, Ticket.created_at < end))).scalars()
    )
    f.tickets = len(reported)
    words = _Words(renderer)
    f.by_category = dict(Counter(category_name(words, t.category) for t in reported).most_common())
    campuses = {c.key: c.name for c in config.campuses}
    f.by_campus = dict(Counter(campuses.get(t.campus, t.campus) or "—" for t in reported).most_common())

    fixed = select(Ticket).where(
        Ticket.status == TicketStatus.DONE, Ticket.resolved_at >= start, Ticket.resolved_at < end
    )
    done = list((await session.execute(fixed)).scalars())
    f.resolved = len(done)
    timed = [t for t in done if t.deadline is not None and t.resolved_at is not None]
    f.sla_counted = len(timed)
    f.sla_met = sum(
        1 for t in timed if t.resolved_at is not None and t.deadline is not None and t.resolved_at <= t.deadline
    )
    hours = [repair_hours(t) for t in done]
    if hours:
        f.median_hours = round(statistics.median(hours), 1)
        f.p90_hours = percentile(hours, 0.9)
    still_open = select(Ticket.id).where(
        Ticket.created_at < end, or_(Ticket.resolved_at.is_(None), Ticket.resolved_at >= end)
    )
    f.open_at_end = len(list((await session.execute(still_open)).scalars()))

    tasks = list((await session.execute(select(Task).where(Task.deadline >= start, Task.deadline < end))).scalars())
    status = Counter(t.status for t in tasks)
    f.duties_done, f.duties_missed, f.duties_open = (
        status[TaskStatus.DONE],
        status[TaskStatus.MISSED],
        status[TaskStatus.OPEN],
    )

    held = (
        select(Booking.id)
        .join(Request, Request.id == Booking.request_id)
        .where(Booking.start_at >= start, Booking.start_at < end, Booking.cancelled_at.is_(None))
        .where(Request.status == FlowStatus.APPROVED)
    )
    f.bookings = len(list((await session.execute(held)).scalars()))

    asked = select(Request.status).where(
        Request.workflow == "footage", Request.created_at >= start, Request.created_at < end
    )
    footage = list((await session.execute(asked)).scalars())
    f.footage_requests = len(footage)
    f.footage_approved = sum(1 for s in footage if s == FlowStatus.APPROVED)

    published = select(Publication).where(Publication.published_at >= start, Publication.published_at < end)
    posts = list((await session.execute(published)).scalars())
    tz = ZoneInfo(zone)
    website = [p for p in posts if p.platform == Platform.WEBSITE]
    oa = [p for p in posts if p.platform == Platform.OA]
    f.website_posts, f.oa_posts = len(website), len(oa)
    f.website_days = len({p.published_at.astimezone(tz).date() for p in website})
    per_week = Counter(p.published_at.astimezone(tz).date().isocalendar()[:2] for p in oa)
    monday = period.first + timedelta(days=(7 - period.first.weekday()) % 7)
    while monday + timedelta(days=6) <= period.last:
        f.oa_weeks += 1
        f.oa_weeks_met += int(per_week[monday.isocalendar()[:2]] >= OA_WEEKLY_TARGET)
        monday += timedelta(days=7)
    f.clicks = await click_totals(session, period)

    q = select(GroupSend.status).where(
        GroupSend.day >= period.first.isoformat(), GroupSend.day <= period.last.isoformat()
    )
    sends = list((await session.execute(q)).scalars())
    f.pushes = len(sends)
    f.pushes_confirmed = sum(1 for s in sends if s == GroupSendStatus.SENT)

    scored = select(TrainingScore).where(TrainingScore.entered_at >= start, TrainingScore.entered_at < end)
    passed: Counter[str] = Counter()
    sat: Counter[str] = Counter()
    for score in (await session.execute(scored)).scalars():
        sat[score.module] += 1
        passed[score.module] += int(score.passed)
    f.training = {m: (passed[m], sat[m]) for m in sorted(sat)}

    lent = select(ComputerIssue).where(
        ComputerIssue.issued_at < end, or_(ComputerIssue.returned_at.is_(None), ComputerIssue.returned_at >= end)
    )
    out = list((await session.execute(lent)).scalars())
    f.assets_out = sum(len(i.assets.get("numbers", [])) or 1 for i in out)
    f.loans_overdue = sum(1 for i in out if i.due_back is not None and i.due_back < period.last.isoformat())
    return f


# -- what the director receives --------------------------------------------------------------------
def digest(renderer: Renderer, f: Figures) -> str:
    return renderer.text("report_digest", f=f, span=LABELS.name(renderer, "span", f.period.span))


def _rows(renderer: Renderer, f: Figures) -> list[tuple[str, str, object]]:
    """(section, item, value) for the sheet, in the digest's order."""

    def label(block: str, **kw: object) -> str:
        return LABELS(renderer, block, **kw).strip()

    rows: list[tuple[str, str, object]] = [(label("sec_tickets"), label("item_reported"), f.tickets)]
    rows += [(label("sec_by_category"), name, n) for name, n in f.by_category.items()]
    rows += [(label("sec_by_campus"), name, n) for name, n in f.by_campus.items()]
    rows += [
        (label("sec_tickets"), label("item_resolved"), f.resolved),
        (label("sec_tickets"), label("item_sla"), "" if f.sla_percent is None else f"{f.sla_percent}%"),
        (label("sec_tickets"), label("item_median"), "" if f.median_hours is None else f.median_hours),
        (label("sec_tickets"), label("item_p90"), "" if f.p90_hours is None else f.p90_hours),
        (label("sec_tickets"), label("item_open"), f.open_at_end),
        (label("sec_duties"), label("item_done"), f.duties_done),
        (label("sec_duties"), label("item_missed"), f.duties_missed),
        (label("sec_duties"), label("item_pending"), f.duties_open),
        (label("sec_services"), label("item_bookings"), f.bookings),
        (label("sec_services"), label("item_footage"), f.footage_requests),
        (label("sec_services"), label("item_footage_approved"), f.footage_approved),
        (label("sec_publishing"), label("item_website_posts"), f.website_posts),
        (label("sec_publishing"), label("item_website_days"), f"{f.website_days}/{f.period.days}"),
        (label("sec_publishing"), label("item_oa_posts"), f.oa_posts),
        (label("sec_publishing"), label("item_oa_weeks"), f"{f.oa_weeks_met}/{f.oa_weeks}"),
    ]
    for platform, metrics in CLICK_METRICS.items():
        c = f.clicks[platform]
        rows.append((label("sec_clicks"), label(f"click_days_{platform}"), f"{c.days}/{f.period.days}"))
        for metric in metrics:
            value = getattr(c, metric)
            shown: object = value
            if value is None:
                shown = label("not_entered")
            elif metric in c.incomplete:
                shown = label("partly_entered", value=value)
            rows.append((label("sec_clicks"), label(f"click_{metric}_{platform}"), shown))
    rows += [
        (label("sec_pushes"), label("item_pushes"), f.pushes),
        (label("sec_pushes"), label("item_pushes_confirmed"), f.pushes_confirmed),
    ]
    rows += [(label("sec_training"), module, f"{p}/{n}") for module, (p, n) in f.training.items()]
    rows += [
        (label("sec_assets"), label("item_assets_out"), f.assets_out),
        (label("sec_assets"), label("item_loans_overdue"), f.loans_overdue),
    ]
    return rows


def report_xlsx(renderer: Renderer, f: Figures, chart: bytes | None = None) -> bytes:
    """The figures as a sheet (section, item, value) with the chart beside them."""

    def label(block: str, **kw: object) -> str:
        return LABELS(renderer, block, **kw).strip()

    from openpyxl import Workbook  # openpyxl (~17 MB, ~0.3 s) loads with the first workbook, not at start
    from openpyxl.drawing.image import Image as SheetImage
    from openpyxl.styles import Alignment, Font

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = label("sheet_title")
    ws.append([label("title", period=f.period.name, span=LABELS.name(renderer, "span", f.period.span))])
    ws["A1"].font = Font(bold=True, size=14)
    ws.merge_cells("A1:C1")
    ws.append([label("range", first=f.period.first, last=f.period.last)])
    ws.merge_cells("A2:C2")
    ws.append([label("col_section"), label("col_item"), label("col_value")])
    for cell in ws[3]:
        cell.font = Font(bold=True)
    for row in _rows(renderer, f):
        ws.append(list(row))
    for col, width in (("A", 14), ("B", 30), ("C", 12)):
        ws.column_dimensions[col].width = width
    for row in ws.iter_rows(min_row=4, min_col=3, max_col=3):
        row[0].alignment = Alignment(horizontal="right")
    ws.freeze_panes = "A4"
    ws.page_setup.orientation = "portrait"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    if chart is not None:
        ws.add_image(SheetImage(io.BytesIO(chart)), "E3")
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# The chart's font: `[reports] chart_font`, else the bundled subset of Noto Sans CJK SC (the GB 2312
# characters and ASCII, 1.5 MB, SIL OFL: handlers/fonts/OFL.txt), so the labels are Chinese on any
# machine, fonts installed or not.
BUNDLED_FONT = Path(__file__).with_name("fonts") / "NotoSansSC-GB2312.otf"


def _font(config: Config) -> Path:
    return Path(config.reports.chart_font) if config.reports.chart_font else BUNDLED_FONT


def chart_png(renderer: Renderer, config: Config, f: Figures) -> bytes:
    """Three panels: tickets by category, tickets by campus, duties; headless (Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import font_manager
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    props = font_manager.FontProperties(fname=str(_font(config)))

    def label(block: str) -> str:
        return LABELS(renderer, block).strip()

    fig = Figure(figsize=(10, 3.6), dpi=100)
    panels = (
        (label("sec_by_category"), f.by_category, "#4C72B0"),
        (label("sec_by_campus"), f.by_campus, "#55A868"),
        (
            label("sec_duties"),
            {
                label("item_done"): f.duties_done,
                label("item_missed"): f.duties_missed,
                label("item_pending"): f.duties_open,
            },
            "#C44E52",
        ),
    )
    for i, (title, counts, colour) in enumerate(panels, start=1):
        ax = fig.add_subplot(1, 3, i)
        names, values = list(counts) or ["—"], list(counts.values()) or [0]
        ax.bar(range(len(values)), values, color=colour)
        ax.set_xticks(range(len(names)), names, fontproperties=props, rotation=30 if len(names) > 3 else 0)
        ax.set_title(title, fontproperties=props)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        for x, v in enumerate(values):
            ax.annotate(str(v), (x, v), ha="center", va="bottom")
    fig.suptitle(
        LABELS(renderer, "title", period=f.period.name, span=LABELS.name(renderer, "span", f.period.span)).strip(),
        fontproperties=props,
    )
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


@dataclass(frozen=True)
class Built:
    text: str
    chart: bytes
    sheet: bytes
    filename: str


async def build(session: AsyncSession, config: Config, renderer: Renderer, period: Period) -> Built:
    f = await figures(session, config, renderer, period)
    chart = chart_png(renderer, config, f)
    name = LABELS(renderer, "filename", period=period.name).strip()
    return Built(digest(renderer, f), chart, report_xlsx(renderer, f, chart), name)


async def deliver(ctx: Ctx, period: Period, to: Iterable[str]) -> None:
    """The digest, the chart and the sheet to each recipient, through the outbox in this transaction."""
    users = list(dict.fromkeys(to))
    if not users:
        return
    built = await build(ctx.session, ctx.config, ctx.renderer, period)
    subject = f"report:{period.span}:{period.first.isoformat()}"
    chart = made(ctx, "image", subject, built.filename.removesuffix(".xlsx") + ".png", built.chart)
    sheet = made(ctx, "file", subject, built.filename, built.sheet)
    await ctx.session.flush()
    for u in users:
        ctx.tell(u, "report_text", text=built.text)
    send_kept(ctx, users, chart)
    send_kept(ctx, users, sheet)


def recipients(ctx: Ctx) -> list[str]:
    return [u for role in ctx.config.reports.to_roles for u in ctx.org.with_role(role)]


async def scheduled(ctx: Ctx, when: datetime, span: Span) -> None:
    today = when.astimezone(ZoneInfo(ctx.config.scheduler.timezone)).date()
    try:
        period = previous(span, today, ctx.config)
    except NoTerm:
        return
    await deliver(ctx, period, recipients(ctx))


@router.jobs_from
def report_jobs(config: Config) -> Iterable[Job]:
    """Weekly, monthly, yearly by cron; each term's report the day after its last day."""
    r = config.reports
    if not r.enabled:
        return
    tz = ZoneInfo(config.scheduler.timezone)
    for span, cron in ((Span.WEEK, r.weekly_cron), (Span.MONTH, r.monthly_cron), (Span.YEAR, r.yearly_cron)):

        async def run(ctx: Ctx, when: datetime, span: Span = span) -> None:
            await scheduled(ctx, when, span)

        yield Job(f"reports:{span}", CronTrigger.from_crontab(cron, timezone=tz), run)
    hour, minute = (int(x) for x in r.term_report_time.split(":"))
    for term in config.calendar.terms:
        after = term.end + timedelta(days=1)

        async def run_term(ctx: Ctx, when: datetime) -> None:
            await scheduled(ctx, when, Span.TERM)

        trigger = CronTrigger(year=after.year, month=after.month, day=after.day, hour=hour, minute=minute, timezone=tz)
        yield Job(f"reports:term:{term.start.isoformat()}", trigger, run_term)


# -- on demand in chat -----------------------------------------------------------------------------
# Which period a word names: (span, how many periods back: 0 this one, 1 the previous one).
WORDS: dict[str, tuple[Span, int]] = {
    **dict.fromkeys(("本周", "本週", "这周", "這週", "this week"), (Span.WEEK, 0)),
    **dict.fromkeys(("上周", "上週", "last week"), (Span.WEEK, 1)),
    **dict.fromkeys(("本月", "这个月", "這個月", "this month"), (Span.MONTH, 0)),
    **dict.fromkeys(("上月", "上个月", "上個月", "last month"), (Span.MONTH, 1)),
    **dict.fromkeys(("本学期", "本學期", "this term"), (Span.TERM, 0)),
    **dict.fromkeys(("上学期", "上學期", "last term"), (Span.TERM, 1)),
    **dict.fromkeys(("今年", "本年", "this year"), (Span.YEAR, 0)),
    **dict.fromkeys(("去年", "上年", "last year"), (Span.YEAR, 1)),
}


def parse_period_word(value: str, ctx: Ctx) -> str:
    key = " ".join(value.lower().split())
    if key not in WORDS:
        raise FieldError("invalid_period")
    span, back = WORDS[key]
    return f"{span}:{back}"


PERIOD = Field("period", labels=("时段", "時段", "period"), parse=parse_period_word)


@router.command(
    "report",
    aliases=("报告", "報告", "工作报告", "工作報告", "work report"),
    positional=True,
    fields=(PERIOD,),
    roles=("director",),
)
async def report_command(ctx: Ctx, values: dict[str, str]) -> None:
    """报告 上周 — the director's digest for a period, now, with its chart and sheet."""
    span_name, _, back = values["period"].partition(":")
    span = Span(span_name)
    today = ctx.now().astimezone(ZoneInfo(ctx.config.scheduler.timezone)).date()
    try:
        period = period_of(span, today, ctx.config) if back == "0" else previous(span, today, ctx.config)
    except NoTerm:
        ctx.reply("report_no_term")
        return
    await deliver(ctx, period, [ctx.user])
