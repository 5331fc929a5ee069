"""The center's registers (第四篇 常用表格) as spreadsheets: the form's own columns, in its order.

`python -m bot export 设备维修登记表 --from 2026-11-01 --to 2026-11-30 -o repairs.xlsx`
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.org import Org
from bot.render import Renderer
from bot.router import Registry
from handlers import ROUTERS
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
from handlers.lab_registers import seat_rows, use_rows, violation_rows
from handlers.loans import register_returns
from handlers.microlessons import LABELS as MICRO
from handlers.stage import LABELS as STAGE
from handlers.stage import YesNo
from handlers.stage_damage import register_row
from storage.models import (
    ActivityBooking,
    ActivityStatus,
    ApprovalAudit,
    Asset,
    Booking,
    ComputerIssue,
    DraftVersion,
    FootageLog,
    MicroLesson,
    MicroLessonClicks,
    MicroLessonStage,
    Request,
    StageCrew,
    StageDamage,
    Ticket,
    TicketStatus,
)

Rows = Callable[["Ctx", datetime, datetime], Awaitable[list[list[Any]]]]


@dataclass(frozen=True)
class Ctx:
    """What a register's rows are read with; the words in its cells come from the workflows' labels."""

    session: AsyncSession
    org: Org
    config: Config
    renderer: Renderer

    def local(self, t: datetime | None) -> str:
        if t is None:
            return ""
        return t.astimezone(ZoneInfo(self.config.scheduler.timezone)).strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class Register:
    key: str
    title: str
    columns: tuple[str, ...]
    rows: Rows
    numbered: bool = True  # the first column is the row's 序号


async def _repairs(ctx: Ctx, start: datetime, end: datetime) -> list[list[Any]]:
    tickets = list(
        (
            await ctx.session.execute(
                select(Ticket).where(Ticket.created_at >= start, Ticket.created_at < end).order_by(Ticket.id)
            )
        ).scalars()
    )
    # The asset at fault has no column of its own in the form: its number goes into 备注.
    ids = {t.asset_id for t in tickets if t.asset_id is not None}
    numbers = dict((await ctx.session.execute(select(Asset.id, Asset.number).where(Asset.id.in_(ids)))).tuples().all())
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
            ]
        )
    return out


async def _stage(ctx: Ctx, start: datetime, end: datetime) -> list[list[Any]]:
    rows = (
        await ctx.session.execute(
            select(Booking, Request)
            .join(Request, Request.id == Booking.request_id)
            .where(Booking.start_at >= start, Booking.start_at < end, Request.status == FlowStatus.APPROVED)
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
            [
                None,
                ctx.local(b.start_at)[:10],
                unit.name if unit else "",
                ctx.org.name(r.requester),
                f"{ctx.local(b.start_at)[11:]}-{ctx.local(b.end_at)[11:]}",
                STAGE.name(ctx, "yes_no", YesNo.YES if b.outdoor else YesNo.NO),
                STAGE.name(ctx, "condition", b.condition) if b.condition else "",
                note,
            ]
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


async def _footage_requests(ctx: Ctx, start: datetime, end: datetime) -> list[list[Any]]:
    reqs = (
        await ctx.session.execute(
            select(Request)
            .where(Request.workflow == FOOTAGE_SPEC.key, Request.created_at >= start, Request.created_at < end)
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
            ]
        )
    return out


async def _footage_log(ctx: Ctx, start: datetime, end: datetime) -> list[list[Any]]:
    logs = (
        await ctx.session.execute(
            select(FootageLog)
            .where(FootageLog.created_at >= start, FootageLog.created_at < end)
            .order_by(FootageLog.id)
        )
    ).scalars()
    return [
        [
            None,
            ctx.local(x.created_at)[:10],
            x.retriever,
            x.retrieved_at,
            x.content,
            x.delivery,
            ctx.org.name(x.operator),
            FOOTAGE(ctx, "register_log_note", police=x.police, reason=x.reason, number=x.request_id),
        ]
        for x in logs
    ]


UNIT_LEADS = ("office_lead", "dept_deputy", "dept_head")


async def _computer_requests(ctx: Ctx, start: datetime, end: datetime) -> list[list[Any]]:
    reqs = (
        await ctx.session.execute(
            select(Request)
            .where(Request.workflow == COMPUTERS_SPEC.key, Request.created_at >= start, Request.created_at < end)
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
            [
                ctx.org.name(r.requester),
                purpose_name(ctx, r.fields["purpose"]),
                unit.name if unit else "",
                "；".join(unit_signs),
                vp,
                by_role.get("principal", ""),
                by_role.get("director", ""),
                ctx.local(issue.confirmed_at)[:10] if issue and issue.confirmed_at else "",
            ]
        )
    return out


async def _computer_issues(ctx: Ctx, start: datetime, end: datetime) -> list[list[Any]]:
    issues = (
        await ctx.session.execute(
            select(ComputerIssue)
            .where(ComputerIssue.issued_at >= start, ComputerIssue.issued_at < end)
            .order_by(ComputerIssue.id)
        )
    ).scalars()
    return [
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
        ]
        for i in issues
    ]


async def _activity(ctx: Ctx, start: datetime, end: datetime) -> list[list[Any]]:
    bookings = (
        await ctx.session.execute(
            select(ActivityBooking)
            .where(ActivityBooking.start_at >= start, ActivityBooking.start_at < end)
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
            ]
        )
    return out


async def _microlessons(ctx: Ctx, start: datetime, end: datetime) -> list[list[Any]]:
    """A planned lesson by its slot; an external teacher's video by when it was registered."""
    lessons = (
        await ctx.session.execute(
            select(MicroLesson)
            .where(
                MicroLesson.stage != MicroLessonStage.CANCELLED,
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
            ]
        )
    return out


REGISTERS: tuple[Register, ...] = (
    Register(
        "lab-seats",
        "上机情况登记表",
        ("序号", "机位", "班级", "使用人姓名", "课堂训练模块", "授课教师", "设备运转情况", "备注"),
        seat_rows,
    ),
    Register(
        "lab-use",
        "微机室使用登记表",
        ("序号", "时间", "班级", "授课教师", "上课人数", "课堂情况", "设备运转情况", "备注"),
        use_rows,
    ),
    Register(
        "lab-violations",
        "微机室违纪情况登记表",
        ("序号", "时间", "班级", "授课教师", "学生姓名", "违纪原因", "量化结果及处理办法", "备注"),
        violation_rows,
    ),
    Register(
        "repairs",
        "设备维修登记表",
        ("序号", "日期", "部门", "申请人", "维修项目", "是否处理", "维修时长", "技术员", "备注"),
        _repairs,
    ),
    Register(
        "stage",
        "舞台设备使用登记表",
        ("序号", "日期", "使用部门", "使用人", "使用期限", "是否户外", "设备运转情况", "备注"),
        _stage,
    ),
    Register(
        "footage-requests",
        "监控调取申请表",
        ("序号", "申请日期", "申请人", "部门", "调取地点", "调取时段", "调取原因", "类型", "班级", "审批签字", "结果"),
        _footage_requests,
    ),
    Register(
        "footage-log",
        "监控调取登记表",
        ("序号", "日期", "调取人", "时间", "内容", "交付方式", "经办人", "备注"),
        _footage_log,
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
    ),
    Register(
        "computer-issues",
        "计算机领取/发放登记表",
        ("序号", "时间", "部门", "用途", "计算机配置", "使用人签字", "备注"),
        _computer_issues,
    ),
    Register(
        "activity",
        "活动服务登记表",
        ("序号", "日期", "活动", "地点", "申请单位", "联系人", "服务类型", "负责人", "交付情况/存放位置", "备注"),
        _activity,
    ),
    Register(
        "microlessons",
        "微课录制情况登记表",
        ("序号", "教师", "课程", "主题", "录制时间", "地点", "剪辑", "格式转换", "上传/网校分类", "点击量", "备注"),
        _microlessons,
    ),
)


def find_register(name: str) -> Register | None:
    """By key (repairs) or by the form's Chinese title (设备维修登记表)."""
    return next((r for r in REGISTERS if name in (r.key, r.title)), None)


async def export(
    session: AsyncSession,
    config: Config,
    register: Register,
    first: date,
    last: date,
    path: str | Path,
    renderer: Renderer | None = None,
) -> int:
    """Write the register's rows for first..last (inclusive, local dates) to an .xlsx; return the count."""
    tz = ZoneInfo(config.scheduler.timezone)
    start = datetime.combine(first, time(0), tz)
    end = datetime.combine(last + timedelta(days=1), time(0), tz)
    renderer = renderer or Renderer(Registry(ROUTERS).template_dirs)
    rows = await register.rows(Ctx(session, Org(config), config, renderer), start, end)
    wb = Workbook()
    ws = wb.active
    ws.title = register.title.replace("/", "-")[:31]
    ws.append([f"{register.title}（{first:%Y-%m-%d} 至 {last:%Y-%m-%d}）"])
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(register.columns))
    ws["A1"].font = Font(bold=True, size=14)
    ws["A1"].alignment = Alignment(horizontal="center")
    ws.append(list(register.columns))
    for cell in ws[2]:
        cell.font = Font(bold=True)
    for n, row in enumerate(rows, start=1):
        if register.numbered:
            row[0] = n
        ws.append(row)
    for i, name in enumerate(register.columns, start=1):
        width = max([len(str(name)) * 2 + 2] + [min(40, len(str(r[i - 1])) * 2) for r in rows])
        ws.column_dimensions[ws.cell(row=2, column=i).column_letter].width = width
    ws.freeze_panes = "A3"
    wb.save(path)
    return len(rows)
