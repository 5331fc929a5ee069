"""调监控 — CCTV footage requests (W3; registers 监控调取申请表, 监控调取登记表).

Student-related: class teacher → department head → VP in charge of the information center;
staff-related: department head → that VP. Then the CCTV operators retrieve and log the handover.
Police requests are logged by an operator directly (the manual exempts 公安). Confidential:
only the requester, the approvers and the operators ever see a request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.cardkeys import CardAction
from bot.cards import Button
from bot.context import Ctx
from bot.conversation import start_form
from bot.router import Field, FieldError, Router
from bot.timeparse import TimeParseError, local_now, parse_span, with_dates
from handlers.approval_commands import parse_required, visible_request
from handlers.approvals import (
    WorkflowSpec,
    audit,
    close_request_cards,
    flow_of,
    request_of,
    send_request_cards,
    submit,
)
from handlers.labels import HasRenderer, Labels, show_span
from handlers.numbers import REQUEST_NUMBER as NUMBER
from storage.models import Card, FootageLog, Request

router = Router("footage", templates=Path(__file__).with_name("templates") / "footage")
router.requires_chain("footage_student", "调监控 (学生)")
router.requires_chain("footage_staff", "调监控 (教职工)")


class FootageButton(StrEnum):
    LOG = "log"


@dataclass(frozen=True)
class FootageClick(CardAction, prefix="ft", subject="request"):
    """An operator's button on an approved footage request."""

    request: int
    button: FootageButton


class FootageKind(StrEnum):
    """Whom the footage is about (类型): it picks the approval chain."""

    STUDENT = "student"
    STAFF = "staff"


class FootageStage(StrEnum):
    """`requests.stage` of an approved footage request."""

    AWAITING_RETRIEVAL = "awaiting_retrieval"  # the operators retrieve and log the handover
    DONE = "done"


LABELS = Labels("labels_footage", kind=FootageKind, stage=FootageStage)

KIND_WORDS = {
    FootageKind.STUDENT: ("学生", "student", "学员"),
    FootageKind.STAFF: ("教职工", "教师", "老师", "员工", "职工", "staff", "teacher"),
}


def parse_kind(value: str, ctx: Ctx) -> FootageKind:
    low = value.strip().lower()
    for kind, words in KIND_WORDS.items():
        if any(w in low for w in words):
            return kind
    raise FieldError("invalid_kind")


def parse_class(value: str, ctx: Ctx) -> str:
    klass = ctx.org.find_class(value)
    if klass is None:
        raise FieldError("invalid_class", choices=[c.name for c in ctx.config.classes])
    return klass.key


def parse_time(value: str, ctx: Ctx) -> str:
    now = local_now(ctx.now(), ctx.config.scheduler.timezone)
    try:
        start, end = parse_span(value, now, prefer="past")
    except TimeParseError as exc:
        raise FieldError(f"invalid_time_{exc.code}") from None
    if start > now:
        raise FieldError("invalid_time_future")
    return f"{start:%Y-%m-%d %H:%M}-{end:%H:%M}"


def footage_start(fields: dict[str, str], tz: str) -> datetime:
    return datetime.strptime(fields["time"][:16], "%Y-%m-%d %H:%M").replace(tzinfo=ZoneInfo(tz))


def show_time(value: str, ctx: Ctx) -> str:
    """A parsed span ('2026-11-20 14:00-15:00') read back: 11月20日（周五）14:00-15:00."""
    tz = ZoneInfo(ctx.config.scheduler.timezone)
    try:
        start = datetime.strptime(value[:16], "%Y-%m-%d %H:%M").replace(tzinfo=tz)
        end = datetime.strptime(f"{value[:10]} {value[-5:]}", "%Y-%m-%d %H:%M").replace(tzinfo=tz)
    except ValueError:
        return value
    return show_span(ctx, start, end)


def days_left(ctx: Ctx, fields: dict[str, str]) -> int:
    """Days before the footage is overwritten (negative: probably gone already)."""
    tz = ctx.config.scheduler.timezone
    age = (local_now(ctx.now(), tz).date() - footage_start(fields, tz).date()).days
    return ctx.config.footage.retention_days - age


def kind_name(ctx: HasRenderer, kind: str) -> str:
    return LABELS.name(ctx, "kind", kind)


def class_name(ctx: Ctx, key: str) -> str:
    klass = ctx.org.school_class(key)
    return klass.name if klass else key


def facts(ctx: Ctx, req: Request) -> list[tuple[str, str]]:
    f = req.fields
    who = LABELS(
        ctx, "subject", kind=kind_name(ctx, f["kind"]), klass=class_name(ctx, f["class"]) if f.get("class") else ""
    )
    left = days_left(ctx, f)
    return [
        (LABELS(ctx, "row_location"), f["location"]),
        (LABELS(ctx, "row_time"), show_time(f["time"], ctx)),
        (LABELS(ctx, "row_subject"), who),
        (LABELS(ctx, "row_reason"), f["reason"]),
        (LABELS(ctx, "row_retention"), ctx.render("footage_days_left", days=left)),
    ]


def viewers(ctx: Ctx, req: Request) -> list[str]:
    return ctx.org.with_role("cctv_operator")


async def on_approved(ctx: Ctx, req: Request) -> None:
    """Approved: every CCTV operator gets a card to retrieve the footage and log the handover."""
    req.stage = FootageStage.AWAITING_RETRIEVAL
    block = ctx.renderer.block
    await send_request_cards(
        ctx,
        req,
        ctx.org.with_role("cctv_operator"),
        title=block("cards_footage", "footage_retrieve_title", number=req.id) or "",
        desc=block("cards_footage", "footage_retrieve_desc", number=req.id, requester=ctx.org.name(req.requester))
        or "",
        rows=facts(ctx, req),
        buttons=[Button(block("cards_footage", "footage_log_button") or "", FootageClick(req.id, FootageButton.LOG))],
    )


SPEC = router.approval(
    WorkflowSpec(key="footage", labels=LABELS, confidential=True, facts=facts, on_approved=on_approved, viewers=viewers)
)


@router.command(
    "request_footage",
    aliases=("调监控", "調監控", "调取监控", "查监控", "footage", "cctv"),
    confidential=True,
    members_only=True,
    fields=(
        Field("location", ("地点", "地點", "位置", "摄像头", "location", "camera"), parse=parse_required),
        Field("time", ("时间", "時間", "时段", "time"), parse=parse_time, show=show_time),
        Field("reason", ("原因", "理由", "事由", "reason"), parse=parse_required),
        Field("kind", ("类型", "類型", "对象", "type"), parse=parse_kind, show=LABELS.show("kind")),
        Field(
            "class",
            ("班级", "班級", "class"),
            parse=parse_class,
            required_if=lambda v: v.get("kind") == FootageKind.STUDENT,
            show=lambda v, c: class_name(c, v),
        ),
    ),
)
async def request_footage(ctx: Ctx, values: dict[str, str]) -> None:
    """Ask for CCTV footage; it goes through the footage approval chain."""
    student = values["kind"] == FootageKind.STUDENT
    fields = {k: values[k] for k in ("location", "time", "reason", "kind")}
    if student:
        fields["class"] = values["class"]
    req = await submit(
        ctx,
        SPEC,
        "footage_student" if student else "footage_staff",
        fields,
        class_key=values.get("class") if student else None,
    )
    ctx.reply(
        "footage_submitted",
        number=req.id,
        location=fields["location"],
        time=show_time(fields["time"], ctx),
        days_left=days_left(ctx, fields),
        next=[ctx.org.name(u) for u in flow_of(req).pending_approvers()],
        chain=[ctx.render("role_name", role=s.role) for s in flow_of(req).steps],
    )


@router.action(FootageClick, roles=("cctv_operator",))
async def fulfil_click(ctx: Ctx, card: Card, click: FootageClick) -> None:
    """An operator's 登记 button: ask for the handover details."""
    req = await request_of(ctx, card)
    if req is None:
        return
    if req.stage != FootageStage.AWAITING_RETRIEVAL:
        ctx.reply("footage_already_logged", number=req.id)
        return
    await start_form(ctx, "log_footage", {"number": str(req.id)})


def _today(ctx: Ctx) -> date:
    return local_now(ctx.now(), ctx.config.scheduler.timezone).date()


LOG_FIELDS = (
    Field("retriever", ("调取人", "調取人", "retriever"), parse=parse_required),
    Field("retrieved_at", ("调取时间", "時間", "时间", "when"), parse=parse_required),
    Field("content", ("内容", "內容", "content"), parse=parse_required),
    Field("delivery", ("交付方式", "交付", "delivery"), parse=parse_required),
)


@router.command(
    "log_footage",
    aliases=("登记", "登記", "log"),
    fields=(NUMBER, *LOG_FIELDS),
    default_field="number",
    roles=("cctv_operator",),
    confidential=True,
)
async def log_footage(ctx: Ctx, values: dict[str, str]) -> None:
    """登记 #编号 调取人:… 时间:… 内容:… 交付方式:… (CCTV operators)"""
    req = await visible_request(ctx, values["number"])
    if req is None:
        return
    if req.workflow != SPEC.key or req.stage != FootageStage.AWAITING_RETRIEVAL:
        ctx.reply("footage_already_logged", number=req.id)
        return
    ctx.session.add(
        FootageLog(
            request_id=req.id,
            police=False,
            operator=ctx.user,
            retriever=values["retriever"],
            retrieved_at=with_dates(values["retrieved_at"], _today(ctx)),
            content=values["content"],
            delivery=values["delivery"],
            location=req.fields["location"],
            reason=req.fields["reason"],
            created_at=ctx.now(),
        )
    )
    req.stage = FootageStage.DONE
    audit(ctx, req, "footage_logged", req.status, retriever=values["retriever"], delivery=values["delivery"])
    label = ctx.renderer.block("cards_footage", "footage_logged", name=ctx.org.name(ctx.user)) or ""
    await close_request_cards(ctx, req, label, purpose="fulfil")
    ctx.tell(
        req.requester, "footage_ready", number=req.id, delivery=values["delivery"], operator=ctx.org.name(ctx.user)
    )
    ctx.reply("footage_log_saved", number=req.id)


@router.command(
    "police_footage",
    aliases=("公安调取", "公安調取", "police"),
    roles=("cctv_operator",),
    confidential=True,
    fields=(
        Field("location", ("地点", "地點", "位置", "location"), parse=parse_required),
        Field("time", ("时间", "時間", "时段", "time"), parse=parse_required),
        Field("unit", ("单位", "單位", "警官", "unit"), parse=parse_required),
        Field("reason", ("案由", "原因", "reason"), parse=parse_required),
        Field("content", ("内容", "內容", "content"), parse=parse_required),
        Field("delivery", ("交付方式", "交付", "delivery"), parse=parse_required),
    ),
)
async def police_footage(ctx: Ctx, values: dict[str, str]) -> None:
    """公安调取 — a police retrieval, logged by a CCTV operator without the approval chain."""
    row = FootageLog(
        request_id=None,
        police=True,
        operator=ctx.user,
        retriever=values["unit"],
        retrieved_at=with_dates(values["time"], _today(ctx)),
        content=values["content"],
        delivery=values["delivery"],
        location=values["location"],
        reason=values["reason"],
        created_at=ctx.now(),
    )
    ctx.session.add(row)
    await ctx.session.flush()
    ctx.reply("police_logged", number=row.id, unit=values["unit"])
