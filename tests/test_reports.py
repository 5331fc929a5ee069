"""The director's reports (issue 15 point 5): figures checked against a known set of records, the
digest with its chart and sheet in chat over HTTP, the Monday report by the injected clock, and the
same report offline from the command line."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from openpyxl import load_workbook
from sqlalchemy.ext.asyncio import AsyncSession

from bot.appkeys import PIPELINE
from bot.clock import FakeClock
from handlers.reports import Span, digest, figures, period_of
from storage.models import (
    Booking,
    ClickStat,
    ComputerIssue,
    Draft,
    GroupSend,
    Publication,
    Request,
    Task,
    Ticket,
    TrainingScore,
)
from tests.scene import Scene
from tests.test_cli_outbox import config_file, run_cli

__all__ = ["config_file"]

TZ = ZoneInfo("Asia/Shanghai")
PNG = b"\x89PNG\r\n\x1a\n"


def at(month: int, day: int, hour: int = 9) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=TZ)


def _request(rid: int, workflow: str, status: str, when: datetime) -> Request:
    return Request(
        id=rid,
        workflow=workflow,
        chain="c",
        requester="zhaolei",
        fields={},
        flow={},
        status=status,
        stage="",
        confidential=False,
        created_at=when,
        updated_at=when,
        step_started_at=when,
    )


async def click(
    s: AsyncSession,
    platform: str,
    period: str,
    days: tuple[str, str],
    views: int,
    visitors: int | None = None,
    followers: int | None = None,
    corrects: ClickStat | None = None,
) -> ClickStat:
    """One 点击统计 entry as the command stores it; `corrects` the entry it supersedes."""
    stat = ClickStat(
        platform=platform,
        period=period,
        start=days[0],
        end=days[1],
        views=views,
        visitors=visitors,
        followers=followers,
        recorded_by="sunyue",
        recorded_at=at(11, 30),
        corrects_id=corrects.id if corrects else None,
    )
    s.add(stat)
    await s.flush()
    return stat


async def seed_week_48(s: AsyncSession) -> None:
    """What happened in the week of Monday 23 November 2026 (and a little around it)."""
    mon = at(11, 23)
    # Five tickets reported in the week; four repaired in it taking 1, 2, 3 and 10 hours, the last
    # past its 5-hour deadline; one older ticket still open.
    for i, (cat, campus, hours) in enumerate(
        [("computer", "main", 1), ("computer", "main", 2), ("computer", "donghu", 3), ("projector", "main", 10)]
    ):
        made = mon + timedelta(days=i)
        s.add(
            Ticket(
                reporter="zhaolei",
                location="302",
                category=cat,
                description="x",
                status="done",
                created_at=made,
                campus=campus,
                resolved_at=made + timedelta(hours=hours),
                deadline=made + timedelta(hours=5 if hours == 10 else 24),
            )
        )
    s.add(
        Ticket(
            reporter="zhaolei",
            location="A",
            category="projector",
            description="x",
            created_at=at(11, 27),
            campus="donghu",
        )
    )
    s.add(
        Ticket(
            reporter="zhaolei", location="B", category="network", description="x", created_at=at(11, 20), campus="main"
        )
    )
    # Duties due in the week: 3 done, 1 missed, 1 open; one due the week after.
    for n, status in enumerate(["done", "done", "done", "missed", "open"]):
        due = mon + timedelta(days=n, hours=1)
        s.add(
            Task(
                duty=f"d{n}",
                title="t",
                occurrence_at=due,
                assignees={},
                spec={},
                deadline=due,
                escalate_at=due,
                status=status,
                created_at=due,
            )
        )
    nxt = at(12, 1)
    s.add(
        Task(
            duty="later",
            title="t",
            occurrence_at=nxt,
            assignees={},
            spec={},
            deadline=nxt,
            escalate_at=nxt,
            status="done",
            created_at=nxt,
        )
    )
    # Stage: one approved booking in the week counts; a pending one and a cancelled one do not.
    for rid, status, cancelled in ((1, "approved", None), (2, "pending", None), (3, "approved", at(11, 24))):
        s.add(_request(rid, "stage", status, mon))
        await s.flush()
        s.add(
            Booking(
                request_id=rid,
                venue="礼堂",
                start_at=at(11, 25, 14),
                end_at=at(11, 25, 16),
                activity="a",
                cancelled_at=cancelled,
            )
        )
    # Footage: two requests in the week, one approved; one the week before.
    s.add_all([_request(4, "footage", "approved", at(11, 24)), _request(5, "footage", "rejected", at(11, 25))])
    s.add(_request(6, "footage", "approved", at(11, 18)))
    # Publishing: website posts on three days (two on Tuesday), four official-account posts.
    for n, (web_day, oa_day) in enumerate(((24, 23), (24, 24), (26, 25), (28, 29)), start=1):
        s.add(Draft(id=n, author="zhaolei", status="published", created_at=mon, updated_at=mon))
        await s.flush()
        s.add(Publication(draft_id=n, platform="website", link="l", editor="e", published_at=at(11, web_day)))
        s.add(Publication(draft_id=n, platform="oa", link="l", editor="e", published_at=at(11, oa_day, 20)))
    await s.flush()
    # Pushes into customer groups: one confirmed, one the owner never sent.
    s.add(GroupSend(chat_id="c1", owner="o", day="2026-11-24", slot="07:30", status="sent", items={}, created_at=mon))
    s.add(
        GroupSend(chat_id="c2", owner="o", day="2026-11-24", slot="07:30", status="not_sent", items={}, created_at=mon)
    )
    # Training: three results for one module, two passed.
    for who, ok in (("a", True), ("b", True), ("c", False)):
        s.add(
            TrainingScore(
                module="办公OA",
                userid=who,
                attempt=1,
                theory=80,
                practical=70 if ok else 40,
                passed=ok,
                entered_by="sunyue",
                entered_at=at(11, 26),
            )
        )
    # Clicks: the website's week entered, then corrected; its November as a month. The official
    # account's week 48 entered three times (two corrections), its week 47 once, no month.
    web = await click(s, "website", "2026-W48", ("2026-11-23", "2026-11-29"), 5000, 1200)
    await click(s, "website", "2026-W48", ("2026-11-23", "2026-11-29"), 5200, 1300, corrects=web)
    await click(s, "website", "2026-11", ("2026-11-01", "2026-11-30"), 21000, 6000)
    oa = await click(s, "official_account", "2026-W48", ("2026-11-23", "2026-11-29"), 3000, 900, 40)
    oa = await click(s, "official_account", "2026-W48", ("2026-11-23", "2026-11-29"), 3100, 920, 45, corrects=oa)
    await click(s, "official_account", "2026-W48", ("2026-11-23", "2026-11-29"), 3300, 950, 50, corrects=oa)
    await click(s, "official_account", "2026-W47", ("2026-11-16", "2026-11-22"), 2000, 700)
    # Assets: a loan of two computers issued earlier, due back 20 November, not returned.
    s.add(_request(7, "computer", "approved", at(11, 2)))
    await s.flush()
    s.add(
        ComputerIssue(
            request_id=7,
            recipient="huangli",
            unit="u",
            purpose="loan",
            spec="i5",
            assets={"numbers": ["PC-1", "PC-2"]},
            issued_by="lihua",
            issued_at=at(11, 3),
            due_back="2026-11-20",
        )
    )
    await s.commit()


async def test_figures_from_a_known_week(scene: Scene, clock: FakeClock, tmp_path: Path, config_file: Path) -> None:
    async with scene.bot.app[PIPELINE].sessions() as s:
        await seed_week_48(s)
    config = scene.bot.config
    period = period_of(Span.WEEK, date(2026, 11, 26), config)
    assert (period.first, period.last, period.name) == (date(2026, 11, 23), date(2026, 11, 29), "2026年第48周")
    async with scene.bot.app[PIPELINE].sessions() as s:
        f = await figures(s, config, scene.bot.app[PIPELINE].renderer, period)
    assert f.tickets == 5 and f.by_category == {"电脑": 3, "投影": 2} and f.by_campus == {"本部校区": 3, "东湖校区": 2}
    assert (f.resolved, f.sla_met, f.sla_counted, f.sla_percent) == (4, 3, 4, 75.0)
    assert (f.median_hours, f.p90_hours) == (2.5, 7.9)  # of 1, 2, 3, 10 hours
    assert f.open_at_end == 2
    assert (f.duties_done, f.duties_missed, f.duties_open) == (3, 1, 1)
    assert f.bookings == 1 and (f.footage_requests, f.footage_approved) == (2, 1)
    assert (f.website_posts, f.website_days, f.oa_posts, f.oa_weeks_met, f.oa_weeks) == (4, 3, 4, 1, 1)
    assert (f.pushes, f.pushes_confirmed) == (2, 1)
    assert f.training == {"办公OA": (2, 3)}
    assert (f.assets_out, f.loans_overdue) == (2, 1)
    # Clicks: the heads of the corrected chains only; November's month entry is not split into weeks.
    web, oa = f.clicks["website"], f.clicks["official_account"]
    assert (web.views, web.visitors, web.days, web.left_out) == (5200, 1300, 7, 1)
    assert (oa.views, oa.visitors, oa.followers, oa.days, oa.left_out) == (3300, 950, 50, 7, 0)

    # November: the website's month (its week 48 inside it is not counted again); the official
    # account has no month, so its two weeks, covering 14 of 30 days, one without followers.
    renderer = scene.bot.app[PIPELINE].renderer
    async with scene.bot.app[PIPELINE].sessions() as s:
        november = await figures(s, config, renderer, period_of(Span.MONTH, date(2026, 11, 26), config))
    text = digest(renderer, november)
    assert (
        "点击统计：网站 浏览量 21000，访客 6000；"
        "公众号（录入只覆盖 14/30 天）阅读量 5300，阅读人数 1650，新增关注 50（部分周期未录入）。" in text
    )
    # December: nothing entered says so, rather than 0.
    async with scene.bot.app[PIPELINE].sessions() as s:
        december = await figures(s, config, renderer, period_of(Span.MONTH, date(2026, 12, 1), config))
    assert "点击统计：网站 未录入；公众号 未录入。" in digest(renderer, december)

    # The same offline: the digest printed, the sheet and the chart written.
    out = tmp_path / "week.xlsx"
    code, printed = await run_cli(
        "report", "week", "--date", "2026-11-26", "-o", str(out), "--config", str(config_file)
    )
    assert code == 0, printed
    assert "【信息中心2026年第48周周报】2026-11-23 至 2026-11-29" in printed
    assert "按时修复率 75.0%（3/4），维修时长中位数 2.5 小时、90%分位 7.9 小时" in printed
    assert "公众号 4 篇，1 个整周中 1 周达到每周 4 篇" in printed
    assert (
        "点击统计：网站 浏览量 5200，访客 1300；公众号 阅读量 3300，阅读人数 950，新增关注 50"
        "（只计统计周期整个落在本期内的周、月数据，跨期的不拆分）。" in printed
    )
    ws = load_workbook(out).active
    assert ws is not None
    rows = [list(r[:3]) for r in ws.iter_rows(values_only=True)]
    assert rows[0][0] == "信息中心2026年第48周周报"
    assert rows[2] == ["类别", "项目", "数值"]
    assert ["设备报修", "按时修复率", "75.0%"] in rows and ["培训考核通过（通过/参加）", "办公OA", "2/3"] in rows
    clicks = [r[1:] for r in rows if r[0] == "点击统计"]
    assert clicks == [
        ["网站：录入覆盖天数", "7/7"],
        ["网站浏览量", 5200],
        ["网站访客", 1300],
        ["公众号：录入覆盖天数", "7/7"],
        ["公众号阅读量", 3300],
        ["公众号阅读人数", 950],
        ["公众号新增关注", 50],
    ]
    assert ws._images, "the chart is in the sheet"
    assert out.with_suffix(".png").read_bytes().startswith(PNG)
    # A term report needs a term around the date; a bad date is refused with the form.
    code, printed = await run_cli(
        "report", "term", "--date", "2026-08-01", "-o", str(out), "--config", str(config_file)
    )
    assert code == 2 and "no term" in printed
    code, printed = await run_cli("report", "week", "--date", "11/26", "-o", str(out), "--config", str(config_file))
    assert code == 2 and "2026-11-30" in printed


async def test_report_in_chat_and_every_monday(scene: Scene, clock: FakeClock) -> None:
    async with scene.bot.app[PIPELINE].sessions() as s:
        await seed_week_48(s)
    # Only the director asks for one; a period nobody can read gets the form's example.
    assert "只有信息中心主任可以使用" in await scene.say("zhaolei", "报告 上周")
    assert not [d for d in scene.emu.messages_to("zhaolei") if d.msgtype in ("image", "file")]
    assert "例如：报告 上月" in await scene.say("chenhao", "报告 明年")

    # 上周 on Wednesday 25 November is week 47: nothing in it but the open older ticket.
    answer = await scene.say("chenhao", "報告 上週")
    assert "【信息中心2026年第47周周报】2026-11-16 至 2026-11-22" in answer and "新报修 1 件" in answer
    kinds = [d.msgtype for d in scene.emu.messages_to("chenhao")]
    assert kinds[-2:] == ["image", "file"]  # the chart, then the sheet
    chart, sheet = scene.emu.messages_to("chenhao")[-2:]
    assert scene.emu.media[chart.body["image"]["media_id"]].startswith(PNG)
    ws = load_workbook(io.BytesIO(scene.emu.media[sheet.body["file"]["media_id"]])).active
    assert ws is not None and ws["A1"].value == "信息中心2026年第47周周报"
    assert "点击统计：网站 未录入；公众号 阅读量 2000，阅读人数 700，新增关注 未录入" in answer
    rows = [list(r[:3]) for r in ws.iter_rows(values_only=True)]
    assert ["点击统计", "网站浏览量", "未录入"] in rows and ["点击统计", "公众号阅读量", 2000] in rows

    # Monday 30 November 08:00: last week's report arrives by itself, once.
    before = len(scene.texts("chenhao"))
    clock.advance((at(11, 30, 8) - clock.now()).total_seconds())
    await scene.tick()
    await scene.tick()
    sent = [t for t in scene.texts("chenhao")[before:] if "周报" in t]
    assert len(sent) == 1 and "【信息中心2026年第48周周报】" in sent[0] and "按时修复率 75.0%（3/4）" in sent[0]
    assert not [t for t in scene.texts("zhaolei") if "周报" in t]

    # 1 December 08:30: November's report; 1 January 09:00: the year's; the day after the term's
    # last day (22 January 2027), 09:00: the term's. Each once, to the director only.
    for when, title in (
        (at(12, 1, 8) + timedelta(minutes=30), "【信息中心2026年11月月报】"),
        (datetime(2027, 1, 1, 9, tzinfo=TZ), "【信息中心2026年年度报告】"),
        (datetime(2027, 1, 23, 9, tzinfo=TZ), "【信息中心2026-2027学年第一学期学期报告】"),
    ):
        clock.advance((when - clock.now()).total_seconds())
        await scene.tick()
        await scene.tick()
        assert sum(title in t for t in scene.texts("chenhao")) == 1, (title, scene.texts("chenhao")[-3:])
    assert not [t for t in scene.texts("zhaolei") if any(w in t for w in ("月报", "年度报告", "学期报告"))]
