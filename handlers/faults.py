"""报修 — fault reports (W1, register 设备维修登记表).

This slice records a numbered ticket and confirms it to the reporter; routing to technicians,
claiming and the SLA belong to the fault/stage issue.
"""

from __future__ import annotations

from bot.context import Ctx
from bot.router import Field, FieldError, Router
from storage.models import Ticket, TicketStatus

router = Router("faults")

# Equipment categories (technician skills) and the words staff use for them.
CATEGORY_WORDS: dict[str, tuple[str, ...]] = {
    "computer": ("电脑", "计算机", "主机", "显示器", "键盘", "鼠标", "笔记本", "一体机", "computer", "pc", "laptop"),
    "projector": ("投影", "幕布", "白板", "projector"),
    "stage": ("音响", "话筒", "麦克风", "舞台", "灯光", "调音台", "功放", "音箱", "stage", "audio", "mic"),
    "cctv": ("监控", "摄像头", "录像", "cctv", "camera"),
    "network": ("网络", "网线", "wifi", "无线", "路由", "交换机", "断网", "上网", "network"),
}
CATEGORY_NAMES = {"computer": "电脑", "projector": "投影", "stage": "舞台音响", "cctv": "监控", "network": "网络"}


def category_of(text: str) -> str | None:
    """The category named or implied by a phrase, if exactly one matches."""
    low = text.lower()
    found = {cat for cat, words in CATEGORY_WORDS.items() if any(w in low for w in words)}
    return found.pop() if len(found) == 1 else None


def parse_category(value: str, ctx: Ctx) -> str:
    cat = category_of(value)
    if cat is None:
        raise FieldError("invalid_category", choices=list(CATEGORY_NAMES.values()))
    return cat


def parse_text(limit: int):  # type: ignore[no-untyped-def]
    def parse(value: str, ctx: Ctx) -> str:
        value = value.strip()
        if not value:
            raise FieldError("invalid_empty")
        if len(value) > limit:
            raise FieldError("invalid_too_long", limit=limit)
        return value

    return parse


@router.command(
    "report_fault",
    aliases=("报修", "報修", "repair", "report"),
    fields=(
        Field("location", ("地点", "地點", "位置", "location", "where"), parse=parse_text(100)),
        Field("category", ("设备", "設備", "类别", "equipment", "device"), parse=parse_category,
              infer=lambda v: category_of(v.get("description", "")), show=CATEGORY_NAMES.get),
        Field("description", ("描述", "问题", "問題", "故障", "description", "problem"), parse=parse_text(500)),
    ),
    default_field="description",
)
async def report_fault(ctx: Ctx, values: dict[str, str]) -> None:
    """Record a fault ticket and confirm its number to the reporter."""
    ticket = Ticket(
        reporter=ctx.user,
        location=values["location"],
        category=values["category"],
        description=values["description"],
        status=TicketStatus.OPEN,
        created_at=ctx.now(),
        source_event=ctx.event_id,
    )
    ctx.session.add(ticket)
    await ctx.session.flush()
    ctx.reply(
        "fault_recorded",
        number=ticket.id,
        location=ticket.location,
        category=CATEGORY_NAMES[ticket.category],
        description=ticket.description,
    )
