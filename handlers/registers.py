"""The center's registers (第四篇 常用表格) as spreadsheets: the form's own columns, in its order.

`python -m bot export 设备维修登记表 --from 2026-11-01 --to 2026-11-30 [--campus 东湖] -o repairs.xlsx`
(or `-o repairs.csv`); in chat `导出 维修 上月` (handlers/register_commands.py).

A register is a view over stored records: `rows(ctx, start, end)` reads them. A row function
returns `Row(cells, id, campus)` — the record's id (for the ledger and corrections) and campus (for
`--campus`); a plain list still exports, unfiltered by campus and outside the ledger.

Tamper evidence: each register with `record` and `feeds` is a hash chain in `register_ledger`.
Whenever a transaction adds or changes a record that feeds a register (`feeds`: the models read,
and how each names the register's record), the commit appends — in the same transaction — an
entry with what the register now shows for that record; a change is a new entry correcting the
previous one, never an update. `verify` recomputes each chain and compares each record's latest
entry with what the live record yields: a row changed with SQL shows up as a mismatch.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import logging
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, event, func, or_, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import async_session as async_proxy
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.util import await_only

from bot.clock import Clock
from bot.config import Config
from bot.logs import log
from bot.org import Org
from bot.render import Renderer
from bot.router import Registry, normalise
from handlers.activity import LABELS as ACTIVITY
from handlers.approval_engine import Flow, FlowStatus
from handlers.approvals import APPROVAL_LABELS
from handlers.computers import LABELS as COMPUTERS
from handlers.computers import SPEC as COMPUTERS_SPEC
from handlers.computers import purpose_name
from handlers.faults import LABELS as FAULTS
from handlers.faults import category_name, pause_reasons, paused_hours, repair_hours
from handlers.footage import LABELS as FOOTAGE
from handlers.footage import SPEC as FOOTAGE_SPEC
from handlers.lab_registers import SEAT_FEEDS, USE_FEEDS, VIOLATION_FEEDS, seat_rows, use_rows, violation_rows
from handlers.labels import Labels
from handlers.loans import register_returns
from handlers.microlessons import LABELS as MICRO
from handlers.register_row import Row, only_ids
from handlers.stage import LABELS as STAGE
from handlers.stage import SPEC as STAGE_SPEC
from handlers.stage import YesNo
from handlers.stage_damage import register_row
from storage.models import (
    ActivityBooking,
    ActivityStatus,
    ApprovalAudit,
    Asset,
    Booking,
    ClickPlatform,
    ClickStat,
    ComputerIssue,
    DraftVersion,
    FootageLog,
    MicroLesson,
    MicroLessonClicks,
    MicroLessonStage,
    RegisterEntry,
    Request,
    StageCrew,
    StageDamage,
    Ticket,
    TicketStatus,
)

logger = logging.getLogger(__name__)
REGISTER_LABELS = Labels("labels_registers", platform=ClickPlatform)
# Bounds wide enough for every record: the ledger and `verify` read a register's rows by id.
SCHOOL = "*"  # a row's campus when it is the whole school's (Row.campus; kept by every --campus)
ALL_TIME = (datetime(1900, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))


@dataclass(frozen=True)
class Ctx:
    """What a register's rows are read with; the words in its cells come from the workflows' labels.

    `only`: the ids of the records to read (the ledger reads the ones a transaction touched),
    None for every record in the period."""

    session: AsyncSession
    org: Org
    config: Config
    renderer: Renderer
    only: frozenset[int] | None = None

    def local(self, t: datetime | None) -> str:
        if t is None:
            return ""
        return t.astimezone(ZoneInfo(self.config.scheduler.timezone)).strftime("%Y-%m-%d %H:%M")


Rows = Callable[[Ctx, datetime, datetime], Awaitable[Sequence[list[Any]]]]
# A model a register reads, and how one of its objects names the register's records: an id, ids,
# a query selecting ids (run at commit), or None when the object is not about this register.
Feed = tuple[type, Callable[[Any], "int | Iterable[int] | Select[Any] | None"]]


@dataclass(frozen=True)
class Register:
    key: str
    title: str
    columns: tuple[str, ...]
    rows: Rows
    numbered: bool = True  # the first column is the row's 序号
    aliases: tuple[str, ...] = ()  # short names for `导出 维修` and --register
    record: str = ""  # what a row is about, for the ledger's refs: "ticket" → ticket:12
    # A register that shows a second kind of record (微机室使用登记表: lessons and visitor/USB permits)
    # gives that kind's rows negative ids (permit 3 is row id -3, ref permit:3).
    other: str = ""
    feeds: tuple[Feed, ...] = ()  # what, when added or changed, changes a row (the ledger's hook)
    # The columns a record fills in or moves on as its workflow goes on (a repair's 是否处理, an
    # approver's signature): their changes are the record's progress, not corrections of it.
    goes_on: tuple[str, ...] = ("备注",)
    confidential: bool = False  # sent from chat with WeCom's safe = 1

    @property
    def chained(self) -> bool:
        return bool(self.record and self.feeds)

    def ref(self, id: int) -> str:
        return f"{self.other}:{-id}" if id < 0 and self.other else f"{self.record}:{id}"


def _only(ctx: Ctx, column: Any) -> ColumnElement[bool]:
    return only_ids(ctx.only, column)


def _campus_of(ctx: Ctx, userid: str | None) -> str:
    person = ctx.org.person(userid) if userid else None
    return person.campus if person else ""


def _venue_campus(ctx: Ctx, key: str) -> str:
    return next((v.campus for v in ctx.config.venues if v.key == key), "")


async def _repairs(ctx: Ctx, start: datetime, end: datetime) -> list[Row]:
    tickets = list(
        (
            await ctx.session.execute(
                select(Ticket)
                .where(Ticket.created_at >= start, Ticket.created_at < end, _only(ctx, Ticket.id))
                .order_by(Ticket.id)
            )
        ).scalars()
    )
    # The asset at fault has no column of its own in the form: its number goes into 备注.
    ids = {t.asset_id for t in tickets if t.asset_id is not None}
    numbers = dict((await ctx.session.execute(select(Asset.id, Asset.number).where(Asset.id.in_(ids)))).all())
    out = []
    for t in tickets:
        note = FAULTS(
            ctx,
            "register_note",
            resolution=t.resolution,
            damage=t.damage,
            number=t.id,
            location=t.location,
            asset=numbers.get(t.asset_id, "") if t.asset_id is not None else "",
        )
        out.append(
            Row(
                [
                    None,
                    ctx.local(t.created_at)[:10],
                    t.unit,
                    ctx.org.name(t.reporter),
                    FAULTS(ctx, "register_item", category=category_name(ctx, t.category), description=t.description),
                    FAULTS(ctx, "register_handled", done=t.status == TicketStatus.DONE),
                    FAULTS(
                        ctx,
                        "register_hours",
                        hours=repair_hours(t),
                        waited=paused_hours(t, t.resolved_at or t.created_at),
                        reasons=pause_reasons(t),
                    )
                    if t.resolved_at
                    else "",
                    ctx.org.name(t.owner) if t.owner else "",
                    note,
                ],
                t.id,
                t.campus,
            )
        )
    return out


async def _stage(ctx: Ctx, start: datetime, end: datetime) -> list[Row]:
    rows = (
        await ctx.session.execute(
            select(Booking, Request)
            .join(Request, Request.id == Booking.request_id)
            .where(
                Booking.start_at >= start,
                Booking.start_at < end,
                Request.status == FlowStatus.APPROVED,
                _only(ctx, Booking.id),
            )
            .order_by(Booking.start_at)
        )
    ).all()
    ids = [b.id for b, _ in rows]
    crews = {
        c.booking_id: c
        for c in (await ctx.session.execute(select(StageCrew).where(StageCrew.booking_id.in_(ids)))).scalars()
    }
    damages = {
        d.booking_id: d
        for d in (await ctx.session.execute(select(StageDamage).where(StageDamage.booking_id.in_(ids)))).scalars()
    }
    out = []
    for b, r in rows:
        unit = ctx.org.unit_of(r.requester)
        crew = crews.get(b.id)
        note = STAGE(
            ctx,
            "register_note",
            activity=b.activity,
            cancelled=b.cancelled_at is not None,
            offsite=b.offsite,
            condition_note=b.condition_note,
            ticket=b.ticket_id,
            technician=ctx.org.name(crew.technician) if crew and crew.technician else "",
            missed=crew.missed.get("items", []) if crew else [],
            damage=register_row(ctx, ctx.org, damages[b.id]) if b.id in damages else "",
        )
        out.append(
            Row(
                [
                    None,
                    ctx.local(b.start_at)[:10],
                    unit.name if unit else "",
                    ctx.org.name(r.requester),
                    f"{ctx.local(b.start_at)[11:]}-{ctx.local(b.end_at)[11:]}",
                    STAGE.name(ctx, "yes_no", YesNo.YES if b.outdoor else YesNo.NO),
                    STAGE.name(ctx, "condition", b.condition) if b.condition else "",
                    note,
                ],
                b.id,
                _venue_campus(ctx, b.venue) or _campus_of(ctx, r.requester),
            )
        )
    return out


async def _approvals(ctx: Ctx, req: Request) -> list[str]:
    """'姓名 (职务) 时间' for every approved step, in chain order."""
    audits = (
        await ctx.session.execute(
            select(ApprovalAudit)
            .where(ApprovalAudit.request_id == req.id, ApprovalAudit.action == "approve")
            .order_by(ApprovalAudit.id)
        )
    ).scalars()
    when = {a.actor: ctx.local(a.at) for a in audits}
    return [
        APPROVAL_LABELS(
            ctx, "register_step", signatures=[f"{ctx.org.name(u)} {when.get(u, '')}".strip() for u in s.approved_by]
        )
        for s in Flow.from_json(req.flow).steps
    ]


async def _footage_requests(ctx: Ctx, start: datetime, end: datetime) -> list[Row]:
    reqs = (
        await ctx.session.execute(
            select(Request)
            .where(
                Request.workflow == FOOTAGE_SPEC.key,
                Request.created_at >= start,
                Request.created_at < end,
                _only(ctx, Request.id),
            )
            .order_by(Request.id)
        )
    ).scalars()
    out = []
    for r in reqs:
        f = r.fields
        found = ctx.org.school_class(f["class"]) if f.get("class") else None
        klass = found.name if found else ""
        unit = ctx.org.unit_of(r.requester)
        out.append(
            Row(
                [
                    None,
                    ctx.local(r.created_at)[:10],
                    ctx.org.name(r.requester),
                    unit.name if unit else "",
                    f["location"],
                    f["time"],
                    f["reason"],
                    FOOTAGE.name(ctx, "kind", f["kind"]),
                    klass,
                    FOOTAGE(ctx, "register_signatures", signatures=await _approvals(ctx, r)),
                    FOOTAGE(ctx, "register_result", status=r.status),
                ],
                r.id,
                _campus_of(ctx, r.requester),
            )
        )
    return out


async def _footage_log(ctx: Ctx, start: datetime, end: datetime) -> list[Row]:
    logs = (
        await ctx.session.execute(
            select(FootageLog)
            .where(FootageLog.created_at >= start, FootageLog.created_at < end, _only(ctx, FootageLog.id))
            .order_by(FootageLog.id)
        )
    ).scalars()
    return [
        Row(
            [
                None,
                ctx.local(x.created_at)[:10],
                x.retriever,
                x.retrieved_at,
                x.content,
                x.delivery,
                ctx.org.name(x.operator),
                FOOTAGE(ctx, "register_log_note", police=x.police, reason=x.reason, number=x.request_id),
            ],
            x.id,
            _campus_of(ctx, x.operator),
        )
        for x in logs
    ]


UNIT_LEADS = ("office_lead", "dept_deputy", "dept_head")


async def _computer_requests(ctx: Ctx, start: datetime, end: datetime) -> list[Row]:
    reqs = (
        await ctx.session.execute(
            select(Request)
            .where(
                Request.workflow == COMPUTERS_SPEC.key,
                Request.created_at >= start,
                Request.created_at < end,
                _only(ctx, Request.id),
            )
            .order_by(Request.id)
        )
    ).scalars()
    out = []
    for r in reqs:
        signs = await _approvals(ctx, r)
        flow = Flow.from_json(r.flow)
        by_role = {s.role: signs[i] for i, s in enumerate(flow.steps)}
        # 直属领导签字: every signature of the unit's own part of the chain (a 系部: 系主管副主任
        # and 系主任); 信息中心主任签字: the director's step, the chain's last.
        unit_signs = [signs[i] for i, s in enumerate(flow.steps) if s.role in UNIT_LEADS and signs[i]]
        vp = by_role.get("vp_supervising") or by_role.get("vp_campus") or ""
        issue = (
            await ctx.session.execute(select(ComputerIssue).where(ComputerIssue.request_id == r.id))
        ).scalar_one_or_none()
        unit = ctx.org.unit_of(r.requester)
        out.append(
            Row(
                [
                    ctx.org.name(r.requester),
                    purpose_name(ctx, r.fields["purpose"]),
                    unit.name if unit else "",
                    "；".join(unit_signs),
                    vp,
                    by_role.get("principal", ""),
                    by_role.get("director", ""),
                    ctx.local(issue.confirmed_at)[:10] if issue and issue.confirmed_at else "",
                ],
                r.id,
                _campus_of(ctx, r.requester),
            )
        )
    return out


async def _computer_issues(ctx: Ctx, start: datetime, end: datetime) -> list[Row]:
    issues = (
        await ctx.session.execute(
            select(ComputerIssue)
            .where(ComputerIssue.issued_at >= start, ComputerIssue.issued_at < end, _only(ctx, ComputerIssue.id))
            .order_by(ComputerIssue.id)
        )
    ).scalars()
    return [
        Row(
            [
                None,
                ctx.local(i.issued_at),
                i.unit,
                purpose_name(ctx, i.purpose),
                COMPUTERS(ctx, "register_spec", kind=i.kind, spec=i.spec),
                f"{ctx.org.name(i.recipient)} {ctx.local(i.confirmed_at)}" if i.confirmed_at else "",
                # The form has no column of its own for the return (归还/收回): it is in 备注.
                COMPUTERS(
                    ctx,
                    "register_issue_note",
                    assets=i.assets.get("numbers", []),
                    due_back=i.due_back,
                    returned=ctx.local(i.returned_at) if i.returned_at else "",
                    returns=register_returns(ctx, i),
                    receipt=i.receipt,
                ),
            ],
            i.id,
            _campus_of(ctx, i.recipient),
        )
        for i in issues
    ]


async def _activity(ctx: Ctx, start: datetime, end: datetime) -> list[Row]:
    bookings = (
        await ctx.session.execute(
            select(ActivityBooking)
            .where(ActivityBooking.start_at >= start, ActivityBooking.start_at < end, _only(ctx, ActivityBooking.id))
            .order_by(ActivityBooking.start_at, ActivityBooking.id)
        )
    ).scalars()
    out = []
    for b in bookings:
        delivery = ACTIVITY(
            ctx,
            "register_delivery",
            delivered=b.status == ActivityStatus.DELIVERED,
            place=b.delivery_place,
            photos=b.photos,
            videos=b.videos,
            status=ACTIVITY.name(ctx, "status", b.status),
        )
        note = ACTIVITY(
            ctx,
            "register_note",
            time=f"{ctx.local(b.start_at)[11:]}-{ctx.local(b.end_at)[11:]}",
            by_director=b.assigned_by is not None,
            note=b.delivery_note,
            archived=b.archive_task_id,
        )
        out.append(
            Row(
                [
                    None,
                    ctx.local(b.start_at)[:10],
                    b.activity,
                    b.location,
                    b.unit or ctx.org.name(b.requester),
                    f"{b.contact} {b.phone}",
                    ACTIVITY.name(ctx, "service", b.service),
                    ctx.org.name(b.assignee) if b.assignee else "",
                    delivery,
                    note,
                ],
                b.id,
                _campus_of(ctx, b.requester),
            )
        )
    return out


async def _microlessons(ctx: Ctx, start: datetime, end: datetime) -> list[Row]:
    """A planned lesson by its slot; an external teacher's video by when it was registered."""
    lessons = (
        await ctx.session.execute(
            select(MicroLesson)
            .where(
                MicroLesson.stage != MicroLessonStage.CANCELLED,
                _only(ctx, MicroLesson.id),
                or_(
                    and_(MicroLesson.start_at >= start, MicroLesson.start_at < end),
                    and_(MicroLesson.start_at.is_(None), MicroLesson.created_at >= start, MicroLesson.created_at < end),
                ),
            )
            .order_by(func.coalesce(MicroLesson.start_at, MicroLesson.created_at), MicroLesson.id)
        )
    ).scalars()
    out = []
    for m in lessons:
        clicks = (
            await ctx.session.execute(
                select(MicroLessonClicks)
                .where(MicroLessonClicks.lesson_id == m.id)
                .order_by(MicroLessonClicks.at.desc(), MicroLessonClicks.id.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        versions = 0
        if m.draft_id is not None:
            versions = int(
                (
                    await ctx.session.execute(
                        select(func.count()).select_from(DraftVersion).where(DraftVersion.draft_id == m.draft_id)
                    )
                ).scalar_one()
            )
        recorded = (
            f"{ctx.local(m.start_at)}-{ctx.local(m.end_at)[11:]}"
            if m.start_at is not None
            else MICRO(ctx, "register_recorded", at=ctx.local(m.recorded_at), external=m.external)
        )
        before_recording = m.stage in (MicroLessonStage.PLANNED, MicroLessonStage.REVIEWING, MicroLessonStage.REDO)
        out.append(
            Row(
                [
                    None,
                    m.teacher_name,
                    m.course,
                    m.topic,
                    recorded,
                    m.room,
                    ctx.local(m.edited_at),
                    ctx.local(m.converted_at),
                    MICRO(ctx, "register_uploaded", at=ctx.local(m.uploaded_at), category=m.category)
                    if m.uploaded_at
                    else "",
                    clicks.clicks if clicks else "",
                    MICRO(
                        ctx,
                        "register_note",
                        external=m.external,
                        versions=versions,
                        stage=MICRO.name(ctx, "stage", m.stage) if before_recording else "",
                        comments=clicks.comments if clicks else "",
                        note=m.note if not m.external else "",
                    ),
                ],
                m.id,
                _campus_of(ctx, m.teacher or m.planner),
            )
        )
    return out


async def _clicks(ctx: Ctx, start: datetime, end: datetime) -> list[Row]:
    """微信/网站点击情况: one row per entry of a period starting in the range; corrections both ways."""
    tz = ZoneInfo(ctx.config.scheduler.timezone)
    first, last = start.astimezone(tz).date().isoformat(), (end.astimezone(tz) - timedelta(days=1)).date().isoformat()
    stats = list(
        (
            await ctx.session.execute(
                select(ClickStat)
                .where(ClickStat.start >= first, ClickStat.start <= last, _only(ctx, ClickStat.id))
                .order_by(ClickStat.start, ClickStat.platform, ClickStat.id)
            )
        ).scalars()
    )
    ids = [c.id for c in stats]
    later: dict[int, int] = {}
    for new, old in (
        await ctx.session.execute(
            select(ClickStat.id, ClickStat.corrects_id).where(ClickStat.corrects_id.in_(ids)).order_by(ClickStat.id)
        )
    ).all():
        if old is not None:
            later[int(old)] = int(new)
    return [
        Row(
            [
                None,
                REGISTER_LABELS.name(ctx, "platform", c.platform),
                REGISTER_LABELS(ctx, "click_period", period=c.period),
                f"{c.start} 至 {c.end}",
                c.views,
                c.visitors if c.visitors is not None else "",
                c.followers if c.followers is not None else "",
                ctx.org.name(c.recorded_by),
                ctx.local(c.recorded_at),
                REGISTER_LABELS(ctx, "click_note", number=c.id, corrects=c.corrects_id, corrected_by=later.get(c.id)),
            ],
            c.id,
            SCHOOL,  # the school's website and official account: in every campus's export
        )
        for c in stats
    ]


def _request_of(workflow: str) -> Callable[[Request], int | None]:
    return lambda r: r.id if r.workflow == workflow else None


REGISTERS: tuple[Register, ...] = (
    Register(
        "lab-seats",
        "上机情况登记表",
        ("序号", "机位", "班级", "使用人姓名", "课堂训练模块", "授课教师", "设备运转情况", "备注"),
        seat_rows,
        aliases=("上机情况", "上机登记", "机位登记"),
        record="seat",
        feeds=SEAT_FEEDS,
    ),
    Register(
        "lab-use",
        "微机室使用登记表",
        ("序号", "时间", "班级", "授课教师", "上课人数", "课堂情况", "设备运转情况", "备注"),
        use_rows,
        aliases=("微机室使用", "机房使用"),
        record="lesson",
        other="permit",
        goes_on=("设备运转情况", "备注"),
        feeds=USE_FEEDS,
    ),
    Register(
        "lab-violations",
        "微机室违纪情况登记表",
        ("序号", "时间", "班级", "授课教师", "学生姓名", "违纪原因", "量化结果及处理办法", "备注"),
        violation_rows,
        aliases=("违纪", "违纪登记", "微机室违纪"),
        record="violation",
        goes_on=("量化结果及处理办法", "备注"),
        feeds=VIOLATION_FEEDS,
    ),
    Register(
        "repairs",
        "设备维修登记表",
        ("序号", "日期", "部门", "申请人", "维修项目", "是否处理", "维修时长", "技术员", "备注"),
        _repairs,
        aliases=("维修", "维修登记", "维修登记表", "报修", "repair"),
        record="ticket",
        goes_on=("是否处理", "维修时长", "备注"),
        feeds=((Ticket, lambda t: t.id),),
    ),
    Register(
        "stage",
        "舞台设备使用登记表",
        ("序号", "日期", "使用部门", "使用人", "使用期限", "是否户外", "设备运转情况", "备注"),
        _stage,
        aliases=("舞台", "舞台设备", "舞台登记", "舞台使用"),
        record="booking",
        goes_on=("设备运转情况", "备注"),
        feeds=(
            (Booking, lambda b: b.id),
            (
                Request,
                lambda r: (
                    select(Booking.id).where(Booking.request_id == r.id) if r.workflow == STAGE_SPEC.key else None
                ),
            ),
            (StageCrew, lambda c: c.booking_id),
            (StageDamage, lambda d: d.booking_id),
        ),
    ),
    Register(
        "footage-requests",
        "监控调取申请表",
        ("序号", "申请日期", "申请人", "部门", "调取地点", "调取时段", "调取原因", "类型", "班级", "审批签字", "结果"),
        _footage_requests,
        aliases=("监控申请", "调监控申请", "监控调取申请"),
        record="request",
        goes_on=("审批签字", "结果"),
        feeds=((Request, _request_of(FOOTAGE_SPEC.key)), (ApprovalAudit, lambda a: a.request_id)),
        confidential=True,
    ),
    Register(
        "footage-log",
        "监控调取登记表",
        ("序号", "日期", "调取人", "时间", "内容", "交付方式", "经办人", "备注"),
        _footage_log,
        aliases=("监控登记", "调取登记", "监控调取登记"),
        record="footage",
        feeds=((FootageLog, lambda x: x.id),),
        confidential=True,
    ),
    Register(
        "computer-requests",
        "计算机领取申请表",
        (
            "领取人",
            "领取用途",
            "所属部门",
            "直属领导签字",
            "主管副校长签字",
            "校长签字",
            "信息中心主任签字",
            "领取日期",
        ),
        _computer_requests,
        numbered=False,
        aliases=("领电脑申请", "计算机申请", "电脑申请", "计算机领取申请"),
        record="request",
        goes_on=("直属领导签字", "主管副校长签字", "校长签字", "信息中心主任签字", "领取日期"),
        feeds=(
            (Request, _request_of(COMPUTERS_SPEC.key)),
            (ApprovalAudit, lambda a: a.request_id),
            (ComputerIssue, lambda i: i.request_id),
        ),
    ),
    Register(
        "computer-issues",
        "计算机领取/发放登记表",
        ("序号", "时间", "部门", "用途", "计算机配置", "使用人签字", "备注"),
        _computer_issues,
        aliases=("电脑发放", "计算机发放", "计算机领取发放", "领取发放登记", "发放登记"),
        record="issue",
        goes_on=("使用人签字", "备注"),
        feeds=((ComputerIssue, lambda i: i.id),),
    ),
    Register(
        "activity",
        "活动服务登记表",
        ("序号", "日期", "活动", "地点", "申请单位", "联系人", "服务类型", "负责人", "交付情况/存放位置", "备注"),
        _activity,
        aliases=("活动服务", "活动", "活动登记"),
        record="activity",
        goes_on=("负责人", "交付情况/存放位置", "备注"),
        feeds=((ActivityBooking, lambda b: b.id),),
    ),
    Register(
        "microlessons",
        "微课录制情况登记表",
        ("序号", "教师", "课程", "主题", "录制时间", "地点", "剪辑", "格式转换", "上传/网校分类", "点击量", "备注"),
        _microlessons,
        aliases=("微课", "微课录制", "微课登记"),
        record="lesson",
        goes_on=("剪辑", "格式转换", "上传/网校分类", "点击量", "备注"),
        feeds=(
            (MicroLesson, lambda m: m.id),
            (MicroLessonClicks, lambda c: c.lesson_id),
            (DraftVersion, lambda v: select(MicroLesson.id).where(MicroLesson.draft_id == v.draft_id)),
        ),
    ),
    Register(
        "clicks",
        "微信/网站点击情况登记(统计)表",
        (
            "序号",
            "平台",
            "统计周期",
            "起止日期",
            "浏览量/阅读量",
            "访客/阅读人数",
            "新增关注",
            "登记人",
            "登记时间",
            "备注",
        ),
        _clicks,
        aliases=("点击", "点击情况", "点击统计", "点击情况登记表", "点击情况统计表", "微信网站点击"),
        record="click",
        feeds=((ClickStat, lambda c: [c.id, *([c.corrects_id] if c.corrects_id else [])]),),
    ),
)


def _fold(name: str) -> str:
    """名字 as compared: Simplified, lower case, without brackets, slashes and spaces."""
    folded = normalise(name).lower()
    return "".join(ch for ch in folded if ch not in " /／()（）")


def find_register(name: str) -> Register | None:
    """By key (repairs), the form's title (设备维修登记表, 設備維修登記表) or a short name (维修)."""
    wanted = _fold(name)
    if not wanted:
        return None
    for r in REGISTERS:
        if wanted in {_fold(n) for n in (r.key, r.title, r.title.removesuffix("表"), *r.aliases)}:
            return r
    return None


def campus_key(config: Config, name: str) -> str | None:
    """东湖 / 东湖校区 / donghu → donghu; None when no campus is called that."""
    wanted = _fold(name)
    for c in config.campuses:
        if wanted in {_fold(c.key), _fold(c.name), _fold(c.name.removesuffix("校区"))}:
            return c.key
    return None


# -- the sheet --------------------------------------------------------------------------------
@dataclass
class Sheet:
    """A register for a period, as exported: numbered rows and the notes on corrected rows."""

    register: Register
    first: date
    last: date
    campus: str  # the campus's name, "" for all
    rows: list[list[Any]]
    notes: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        where = f" {self.campus}" if self.campus else ""
        return f"{self.register.title}（{self.first:%Y-%m-%d} 至 {self.last:%Y-%m-%d}{where}）"

    @property
    def filename(self) -> str:
        where = f"_{self.campus}" if self.campus else ""
        return f"{self.register.title.replace('/', '-')}_{self.first:%Y%m%d}-{self.last:%Y%m%d}{where}"


def _default_renderer() -> Renderer:
    from handlers import ROUTERS  # the workflows' templates; imported late (handlers imports this module)

    return Renderer(Registry(ROUTERS).template_dirs)


async def build(
    session: AsyncSession,
    config: Config,
    register: Register,
    first: date,
    last: date,
    campus: str | None = None,
    renderer: Renderer | None = None,
) -> Sheet:
    """The register's rows for first..last (inclusive, local dates), of one campus (a key) or all."""
    tz = ZoneInfo(config.scheduler.timezone)
    start = datetime.combine(first, time(0), tz)
    end = datetime.combine(last + timedelta(days=1), time(0), tz)
    ctx = Ctx(session, Org(config), config, renderer or _default_renderer())
    rows = list(await register.rows(ctx, start, end))
    if campus:
        # A row of the whole school (the click counts) belongs to every campus.
        rows = [r for r in rows if not isinstance(r, Row) or r.campus in (campus, SCHOOL)]
    notes = await _change_notes(ctx, register, rows) if register.chained else []
    for n, row in enumerate(rows, start=1):
        if register.numbered:
            row[0] = n
    name = next((c.name for c in config.campuses if c.key == campus), "") if campus else ""
    return Sheet(register, first, last, name, rows, notes)


MAX_CHANGES_SHOWN = 6  # per row in the notes; the rest are counted


def changed_cells(register: Register, before: Any, after: Any) -> list[tuple[str, Any, Any]]:
    """(column, recorded value, new value) for each cell that held a value and now reads otherwise.

    A cell filled in for the first time, and a change in a column the workflow moves on
    (`Register.goes_on`: a repair's 是否处理, an approver's signature), is the record going on, not
    a change of what was recorded: neither is listed."""
    if not isinstance(before, list) or not isinstance(after, list):
        return []
    columns = register.columns[1:] if register.numbered else register.columns
    out = []
    for column, old, new in zip(columns, before, after, strict=False):
        if old not in (None, "") and old != new and column not in register.goes_on:
            out.append((column, old, new))
    return out


async def _change_notes(ctx: Ctx, register: Register, rows: Sequence[list[Any]]) -> list[str]:
    """A note for each row whose recorded values were changed after they were registered: the old
    value, the new one and when (the ledger keeps every version; the row shows the latest)."""
    refs = {register.ref(r.id): n for n, r in enumerate(rows, start=1) if isinstance(r, Row)}
    if not refs:
        return []
    versions: dict[str, list[tuple[Any, datetime]]] = {}
    for ref, payload, at in await ctx.session.execute(
        select(RegisterEntry.ref, RegisterEntry.payload, RegisterEntry.created_at)
        .where(RegisterEntry.register == register.key, RegisterEntry.ref.in_(list(refs)))
        .order_by(RegisterEntry.seq)
    ):
        versions.setdefault(ref, []).append((json.loads(payload), at))
    notes = []
    for ref in sorted(versions, key=refs.__getitem__):
        changes = [
            {"column": column, "old": old, "new": new, "at": ctx.local(at)}
            for (before, _), (after, at) in itertools.pairwise(versions[ref])
            for column, old, new in changed_cells(register, before, after)
        ]
        if changes:
            notes.append(
                REGISTER_LABELS(
                    ctx,
                    "correction_note",
                    row=refs[ref],
                    ref=ref,
                    changes=changes[-MAX_CHANGES_SHOWN:],
                    more=max(0, len(changes) - MAX_CHANGES_SHOWN),
                )
            )
    return notes


def text_width(value: Any) -> int:
    """How many columns a cell's longest line needs: CJK (wide and full-width) characters count 2."""
    lines = str(value).splitlines() or [""]
    return max(sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line) for line in lines)


MAX_WIDTH = 50  # wider text wraps


def write_xlsx(sheet: Sheet, target: str | Path | io.BytesIO) -> None:
    """The form as the center prints it: title, header, numbered rows, notes; A4 landscape."""
    # openpyxl (~17 MB, ~0.3 s) loads with the first workbook, not at start
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, Side
    from openpyxl.utils import get_column_letter

    columns = sheet.register.columns
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = sheet.register.title.replace("/", "-")[:31]
    ws.append([sheet.title])
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(columns))
    ws["A1"].font = Font(bold=True, size=14)
    ws["A1"].alignment = Alignment(horizontal="center", vertical="center")
    ws.row_dimensions[1].height = 28
    ws.append(list(columns))
    thin = Side(style="thin")
    box = Border(left=thin, right=thin, top=thin, bottom=thin)
    for cell in ws[2]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        cell.border = box
    for row in sheet.rows:
        ws.append(list(row))
        for cell in ws[ws.max_row]:
            cell.alignment = Alignment(vertical="top", wrap_text=True)
            cell.border = box
    for note in sheet.notes:
        ws.append([note])
        ws.merge_cells(start_row=ws.max_row, start_column=1, end_row=ws.max_row, end_column=len(columns))
        ws.cell(row=ws.max_row, column=1).alignment = Alignment(wrap_text=True)
    for i, name in enumerate(columns, start=1):
        widest = max([text_width(name)] + [text_width(r[i - 1]) for r in sheet.rows if r[i - 1] is not None])
        ws.column_dimensions[get_column_letter(i)].width = min(MAX_WIDTH, widest + 2)
    ws.freeze_panes = "A3"
    ws.print_title_rows = "1:2"
    ws.page_setup.orientation = ws.ORIENTATION_LANDSCAPE
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.horizontalCentered = True
    ws.page_margins.left = ws.page_margins.right = 0.4
    wb.save(target)


def xlsx_bytes(sheet: Sheet) -> bytes:
    buffer = io.BytesIO()
    write_xlsx(sheet, buffer)
    return buffer.getvalue()


def write_csv(sheet: Sheet, path: str | Path) -> None:
    """The header, the rows and the notes on changed rows, UTF-8 with a BOM so Excel reads the Chinese."""
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        out = csv.writer(f)
        out.writerow(sheet.register.columns)
        out.writerows([["" if c is None else c for c in row] for row in sheet.rows])
        if sheet.notes:  # below the form, after an empty line, as on the printed sheet
            out.writerow([])
            out.writerows([[note] for note in sheet.notes])


async def export(
    session: AsyncSession,
    config: Config,
    register: Register,
    first: date,
    last: date,
    path: str | Path,
    renderer: Renderer | None = None,
    campus: str | None = None,
) -> int:
    """Write the register's rows for first..last to an .xlsx (or a .csv, by the suffix); return the count."""
    sheet = await build(session, config, register, first, last, campus, renderer)
    if str(path).lower().endswith(".csv"):
        write_csv(sheet, path)
    else:
        write_xlsx(sheet, path)
    return len(sheet.rows)


# -- the ledger -------------------------------------------------------------------------------
GENESIS = "0" * 64
LEDGER = "register_ledger"  # Session.info key: the LedgerEnv of a tracked session factory
TOUCHED = "register_touched"  # Session.info key: (register key, id | query) touched since the last commit


@dataclass(frozen=True)
class LedgerEnv:
    config: Config
    renderer: Renderer
    clock: Clock


def track(sessions: async_sessionmaker[AsyncSession], config: Config, renderer: Renderer, clock: Clock) -> None:
    """Every session `sessions` makes from now on appends to the registers' ledger at commit."""
    sessions.kw["info"] = {**sessions.kw.get("info", {}), LEDGER: LedgerEnv(config, renderer, clock)}


def canonical(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def _iso(t: datetime) -> str:
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(e: RegisterEntry, prev_hash: str) -> str:
    body = {
        "register": e.register,
        "seq": e.seq,
        "ref": e.ref,
        "row": json.loads(e.payload),
        "corrects": e.corrects_seq,
        "at": _iso(e.created_at),
    }
    return hashlib.sha256((prev_hash + canonical(body)).encode()).hexdigest()


def payload_of(register: Register, row: list[Any] | None) -> Any:
    """What the ledger keeps of a row: its cells without the 序号 (None: the record has no row now)."""
    if row is None:
        return None
    return list(row[1:] if register.numbered else row)


@event.listens_for(Session, "after_flush")
def _collect(session: Session, _flush_context: Any) -> None:
    if LEDGER not in session.info:
        return
    touched: list[tuple[str, Any]] = session.info.setdefault(TOUCHED, [])
    for obj in (*session.new, *session.dirty):
        for register in REGISTERS:
            for model, names in register.feeds:
                if isinstance(obj, model):
                    found = names(obj)
                    if found is not None:
                        touched.append((register.key, found))


@event.listens_for(Session, "do_orm_execute")
def _collect_bulk(state: ORMExecuteState) -> None:
    """An UPDATE statement (a conditional claim: `update(Ticket).where(…)`) bypasses the unit of
    work: read the rows it is about to change, so their registers' records are touched too."""
    if LEDGER not in state.session.info or not (state.is_update or state.is_delete) or state.bind_mapper is None:
        return
    model = state.bind_mapper.class_
    feeding = [(r.key, names) for r in REGISTERS for m, names in r.feeds if issubclass(model, m)]
    where = state.statement.whereclause  # type: ignore[attr-defined]
    if not feeding or where is None:
        return
    touched: list[tuple[str, Any]] = state.session.info.setdefault(TOUCHED, [])
    for obj in state.session.execute(select(model).where(where)).scalars():
        for key, names in feeding:
            found = names(obj)
            if found is not None:
                touched.append((key, found))


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(TOUCHED, None)  # what was touched never happened


@event.listens_for(Session, "before_commit")
def _append_at_commit(session: Session) -> None:
    env: LedgerEnv | None = session.info.get(LEDGER)
    if env is None:
        return
    session.flush()
    touched = session.info.pop(TOUCHED, [])
    if not touched:
        return
    proxy = async_proxy(session)
    assert proxy is not None, "a tracked session is an AsyncSession's"
    await_only(_append_or_log(proxy, env, touched))


async def _append_or_log(session: AsyncSession, env: LedgerEnv, touched: Sequence[tuple[str, Any]]) -> None:
    """A register that cannot read its row must not lose the workflow's commit: the miss is
    logged, and `verify` names the record until a later change records it."""
    try:
        await append(session, env, touched)
    except Exception as exc:
        if isinstance(exc, SQLAlchemyError):
            raise  # the transaction itself is broken: the commit fails as it would have
        log(logger, logging.ERROR, "register_ledger_failed", error=repr(exc))


async def append(session: AsyncSession, env: LedgerEnv, touched: Sequence[tuple[str, Any]]) -> int:
    """Append an entry for each touched record whose register row differs from its latest entry."""
    ids: dict[str, set[int]] = {}
    for key, found in touched:
        if isinstance(found, Select):
            found = (await session.execute(found)).scalars().all()
        ids.setdefault(key, set()).update([found] if isinstance(found, int) else [int(i) for i in found])
    ctx = Ctx(session, Org(env.config), env.config, env.renderer)
    now, added = env.clock.now(), 0
    for register in REGISTERS:
        wanted = ids.get(register.key)
        if not wanted:
            continue
        rows = await register.rows(Ctx(ctx.session, ctx.org, ctx.config, ctx.renderer, frozenset(wanted)), *ALL_TIME)
        by_id = {r.id: r for r in rows if isinstance(r, Row)}
        refs = [register.ref(i) for i in sorted(wanted)]
        if session.get_bind().dialect.name == "postgresql":  # one writer per register's chain at a time
            await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"ledger:{register.key}"})
        head = (
            await session.execute(
                select(RegisterEntry.seq, RegisterEntry.hash)
                .where(RegisterEntry.register == register.key)
                .order_by(RegisterEntry.seq.desc())
                .limit(1)
            )
        ).first()
        seq, prev = (int(head[0]), str(head[1])) if head else (0, GENESIS)
        latest = await _latest(session, register.key, refs)
        for i in sorted(wanted):
            ref = register.ref(i)
            payload = canonical(payload_of(register, by_id.get(i)))
            old = latest.get(ref)
            if (old is None and i not in by_id) or (old is not None and canonical(json.loads(old[1])) == payload):
                continue  # never in the register, or unchanged
            seq += 1
            e = RegisterEntry(
                register=register.key,
                seq=seq,
                ref=ref,
                payload=payload,
                corrects_seq=old[0] if old else None,
                prev_hash=prev,
                hash="",
                created_at=now,
            )
            e.hash = prev = entry_hash(e, e.prev_hash)
            session.add(e)
            added += 1
    if added:
        await session.flush()
        session.sync_session.info.pop(TOUCHED, None)  # the entries themselves touch nothing
    return added


async def _latest(session: AsyncSession, key: str, refs: list[str]) -> dict[str, tuple[int, str]]:
    """ref → (seq, payload) of its latest entry."""
    out: dict[str, tuple[int, str]] = {}
    for ref, seq, payload in await session.execute(
        select(RegisterEntry.ref, RegisterEntry.seq, RegisterEntry.payload)
        .where(RegisterEntry.register == key, RegisterEntry.ref.in_(refs))
        .order_by(RegisterEntry.seq)
    ):
        out[ref] = (int(seq), payload)
    return out


async def adopt(session: AsyncSession, env: LedgerEnv) -> int:
    """Append a first entry for every record a register shows but its chain never recorded (written
    before the ledger existed, migration 0026); return how many. Run once, knowingly: a row inserted
    with SQL would be adopted too."""
    ctx = Ctx(session, Org(env.config), env.config, env.renderer)
    missing: list[tuple[str, Any]] = []
    for register in REGISTERS:
        if not register.chained:
            continue
        seen = set(
            (await session.execute(select(RegisterEntry.ref).where(RegisterEntry.register == register.key))).scalars()
        )
        rows = [r for r in await register.rows(ctx, *ALL_TIME) if isinstance(r, Row)]
        ids = [r.id for r in rows if register.ref(r.id) not in seen]
        if ids:
            missing.append((register.key, ids))
    return await append(session, env, missing)


def _renamed(value: Any, renames: Sequence[tuple[str, str]]) -> Any:
    if isinstance(value, str):
        for old, new in renames:
            value = value.replace(old, new)
        return value
    if isinstance(value, list):
        return [_renamed(v, renames) for v in value]
    return value


async def restate(session: AsyncSession, env: LedgerEnv, renames: Sequence[tuple[str, str]]) -> int:
    """After names were changed in the configuration (old → new), append an entry for each record
    whose row now differs from its latest entry by exactly those renames, and by nothing else;
    return how many. A row that differs in any other way is left for `verify` to name."""
    ctx = Ctx(session, Org(env.config), env.config, env.renderer)
    touched: list[tuple[str, Any]] = []
    for register in REGISTERS:
        if not register.chained:
            continue
        latest: dict[str, str] = {}
        for ref, payload in await session.execute(
            select(RegisterEntry.ref, RegisterEntry.payload)
            .where(RegisterEntry.register == register.key)
            .order_by(RegisterEntry.seq)
        ):
            latest[ref] = payload
        ids = []
        for row in await register.rows(ctx, *ALL_TIME):
            if not isinstance(row, Row) or register.ref(row.id) not in latest:
                continue
            recorded, now = json.loads(latest[register.ref(row.id)]), canonical(payload_of(register, row))
            if canonical(recorded) != now and canonical(_renamed(recorded, renames)) == now:
                ids.append(row.id)
        if ids:
            touched.append((register.key, ids))
    return await append(session, env, touched)


@dataclass(frozen=True)
class Verified:
    register: Register
    entries: int
    records: int
    broken: str = ""  # what is wrong first: "seq 3 (ticket:12): …"
    head: str = GENESIS  # the last entry's hash: noted elsewhere, it shows a chain cut short or replaced


async def verify(session: AsyncSession, config: Config, renderer: Renderer | None = None) -> list[Verified]:
    """Each chained register: the chain recomputed, and each record's latest entry against what
    the live record yields now."""
    ctx = Ctx(session, Org(config), config, renderer or _default_renderer())
    out = []
    for register in REGISTERS:
        if not register.chained:
            continue
        entries = list(
            (
                await session.execute(
                    select(RegisterEntry).where(RegisterEntry.register == register.key).order_by(RegisterEntry.seq)
                )
            ).scalars()
        )
        broken, prev = "", GENESIS
        latest: dict[str, RegisterEntry] = {}
        for n, e in enumerate(entries, start=1):
            if e.seq != n:
                broken = f"seq {n} ({e.ref}): missing, the chain jumps to {e.seq}"
            elif e.prev_hash != prev or entry_hash(e, prev) != e.hash:
                broken = f"seq {e.seq} ({e.ref}): the entry does not match its hash"
            if broken:
                break
            prev, latest[e.ref] = e.hash, e
        rows, unreadable = await _readable_rows(ctx, register, latest)
        if not broken and unreadable:
            broken = unreadable
        if not broken:
            live = {register.ref(r.id): canonical(payload_of(register, r)) for r in rows}
            for ref, e in sorted(latest.items(), key=lambda kv: kv[1].seq):
                if canonical(json.loads(e.payload)) != live.get(ref, "null"):
                    broken = f"seq {e.seq} ({ref}): the record no longer reads as the register recorded it"
                    break
            else:
                missing = [ref for ref in live if ref not in latest]
                if missing:
                    broken = f"{missing[0]}: a row the register never recorded"
        out.append(Verified(register, len(entries), len(rows), broken, prev))
    return out


def _id_of(register: Register, ref: str) -> int:
    kind, _, number = ref.partition(":")
    return -int(number) if register.other and kind == register.other else int(number)


async def _readable_rows(ctx: Ctx, register: Register, latest: dict[str, RegisterEntry]) -> tuple[list[Row], str]:
    """Every row of the register, or, when a record changed with SQL into something the register
    cannot show (a state no workflow writes, a form field gone), why and which record: the first
    recorded one that fails on its own."""
    try:
        return [r for r in await register.rows(ctx, *ALL_TIME) if isinstance(r, Row)], ""
    except Exception as exc:
        failure = exc
        if isinstance(exc, SQLAlchemyError):  # PostgreSQL: the transaction is aborted until then
            await ctx.session.rollback()
    # Plain values: a rollback expires the entries.
    recorded = sorted((e.seq, ref) for ref, e in latest.items())
    for seq, ref in recorded:
        try:
            await register.rows(replace(ctx, only=frozenset({_id_of(register, ref)})), *ALL_TIME)
        except Exception as exc:
            if isinstance(exc, SQLAlchemyError):
                await ctx.session.rollback()
            return [], f"seq {seq} ({ref}): the record can no longer be read as a row ({type(exc).__name__}: {exc})"
    return [], f"the register cannot be read ({type(failure).__name__}: {failure})"
