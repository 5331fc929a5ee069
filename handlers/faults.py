"""报修 — fault tickets with an SLA (W1, register 设备维修登记表).

A report becomes a numbered ticket; technicians of the category (same campus first) get a card
with 接单; the first claim wins; the owner transfers (转交) or resolves (完成, optionally flagging
人为损坏 for 追责). The reporter hears at claim and at completion. SLA timers are database rows:
at 75% the owner (or, unclaimed, every technician of the category) is warned; at the deadline
the director gets a card. Photos sent within 10 minutes of a report attach to it.

Category 其他 (other: fits none of the skills) goes to the computer technicians, the generalists who
can claim it at once or 改类别 it. What the center does not repair at all (`[[faults.not_ours]]`:
air conditioning, printers, water, …) gets a reply naming the office that does, and no ticket.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update

from bot import media as media_files
from bot import worktime
from bot.cardkeys import CardAction
from bot.cards import Button, close_cards, send_cards
from bot.config_workflows import CATEGORIES, NotOurs
from bot.context import Ctx
from bot.router import Field, FieldError, Router
from bot.timeparse import local_now
from handlers import asset_store
from handlers.approval_commands import resolve_person
from handlers.asset_store import EventKind
from handlers.assets import LABELS as ASSET_LABELS
from handlers.assets import parse_number as parse_asset_number
from handlers.assets import repairs_within_year
from handlers.labels import HasRenderer, Labels, example_names, show_moment
from handlers.numbers import TICKET_NUMBER, Kind, names_kind
from storage.models import Asset, AssetState, Card, MediaFile, MediaStatus, Ticket, TicketStatus, Timer

router = Router("faults", templates=Path(__file__).with_name("templates") / "faults")
LABELS = Labels("labels_faults", category=CATEGORIES, status=TicketStatus)
NUMBER = TICKET_NUMBER


class TicketButton(StrEnum):
    CLAIM = "claim"
    PROGRESS = "progress"


@dataclass(frozen=True)
class TicketClick(CardAction, prefix="tk", subject="ticket"):
    ticket: int
    button: TicketButton


# Equipment categories (technician skills) and the words staff use for them.
CATEGORY_WORDS: dict[str, tuple[str, ...]] = {
    "computer": ("电脑", "计算机", "主机", "显示器", "键盘", "鼠标", "笔记本", "一体机", "computer", "pc", "laptop"),
    "projector": ("投影", "幕布", "白板", "projector"),
    "stage": ("音响", "话筒", "麦克风", "舞台", "灯光", "调音台", "功放", "音箱", "stage", "audio", "mic"),
    "cctv": ("监控", "摄像头", "录像", "cctv", "camera"),
    "network": ("网络", "网线", "wifi", "无线", "路由", "交换机", "断网", "上网", "network"),
}
# The answer when it fits none of them (asked for the category, not read from a description).
OTHER_WORDS = ("其他", "其它", "别的", "都不是", "不确定", "不清楚", "不知道", "other")
DAMAGE_WORDS = ("人为损坏", "人为", "damage")
# A category value the form keeps (never stored) for something another office handles:
# "not_ours:<index in [[faults.not_ours]]>:<the word that matched>".
NOT_OURS = "not_ours:"


def category_of(text: str) -> str | None:
    """The category named or implied by a phrase, if exactly one matches."""
    low = text.lower()
    found = {cat for cat, words in CATEGORY_WORDS.items() if any(w in low for w in words)}
    return found.pop() if len(found) == 1 else None


def skill_of(category: str) -> str:
    """The technician skill that handles a category (其他 goes to the computer technicians)."""
    return "computer" if category == "other" else category


def not_ours(ctx: Ctx, text: str) -> tuple[int, NotOurs, str] | None:
    """The `[[faults.not_ours]]` entry (index, entry, the word) for text that names something another
    office handles and none of the center's own equipment."""
    low = text.lower()
    if any(w in low for words in CATEGORY_WORDS.values() for w in words):
        return None
    hits = [(len(w), i, e, w) for i, e in enumerate(ctx.config.faults.not_ours) for w in e.words if w.lower() in low]
    if not hits:
        return None
    _, i, entry, word = max(hits, key=lambda h: h[0])  # the longest word: 热水器 before 热水
    return i, entry, word


def _not_ours_value(ctx: Ctx, value: str) -> tuple[NotOurs, str] | None:
    """The entry and word a `not_ours:` category value stands for."""
    if not value.startswith(NOT_OURS):
        return None
    index, _, word = value.removeprefix(NOT_OURS).partition(":")
    entries = ctx.config.faults.not_ours
    return (entries[int(index)], word) if index.isdigit() and int(index) < len(entries) else None


def parse_category(value: str, ctx: Ctx) -> str:
    cat = category_of(value)
    if cat is not None:
        return cat
    low = value.strip().lower()
    if any(w in low for w in OTHER_WORDS):
        return "other"
    hit = not_ours(ctx, value)
    if hit is not None:
        return f"{NOT_OURS}{hit[0]}:{hit[2]}"
    raise FieldError("invalid_category", choices=[category_name(ctx, c) for c in CATEGORIES])


def category_name(ctx: HasRenderer, category: str) -> str:
    """The category's display name (电脑, 舞台音响, 其他 …)."""
    return LABELS.name(ctx, "category", category)


def show_category(value: str, ctx: Ctx) -> str:
    office = _not_ours_value(ctx, value)
    return office[1] if office else category_name(ctx, value)


def infer_category(values: dict[str, str], ctx: Ctx) -> str | None:
    """The category a description implies: one of ours, or the office that handles it instead."""
    text = values.get("description", "")
    hit = not_ours(ctx, text)
    return f"{NOT_OURS}{hit[0]}:{hit[2]}" if hit else category_of(text)


def ours(values: dict[str, str]) -> bool:
    """Whether the report is about something the center repairs (else nothing more is asked)."""
    return not values.get("category", "").startswith(NOT_OURS)


def parse_text(limit: int):  # type: ignore[no-untyped-def]
    def parse(value: str, ctx: Ctx) -> str:
        value = value.strip()
        if not value:
            raise FieldError("invalid_empty")
        if len(value) > limit:
            raise FieldError("invalid_too_long", limit=limit)
        return value

    return parse


def deadline_text(ctx: Ctx, t: Ticket) -> str:
    """The repair deadline as every text shows a moment: 11月26日（周四）09:00."""
    return show_moment(ctx, local_now(t.deadline, ctx.config.scheduler.timezone)) if t.deadline else ""


def _facts(ctx: Ctx, t: Ticket) -> list[tuple[str, str]]:
    deadline = deadline_text(ctx, t)
    return [
        (LABELS(ctx, "row_location"), t.location),
        (LABELS(ctx, "row_category"), category_name(ctx, t.category)),
        (LABELS(ctx, "row_description"), t.description),
        (LABELS(ctx, "row_reporter"), f"{ctx.org.name(t.reporter)} {t.unit}".strip()),
        (LABELS(ctx, "row_deadline"), deadline),
    ]


async def _send_claim_cards(ctx: Ctx, t: Ticket) -> list[str]:
    """接单 cards to the category's technicians, those on the reporter's campus only if any."""
    techs = ctx.org.technicians(skill_of(t.category), t.campus)
    local = [u for u in techs if (p := ctx.org.person(u)) is not None and p.campus == t.campus]
    # Nobody is asked to claim their own report, unless nobody else could.
    targets = [u for u in local if u != t.reporter] or [u for u in techs if u != t.reporter] or techs
    block = ctx.renderer.block
    rows = _facts(ctx, t)
    asset = await asset_facts(ctx, t)
    if asset is not None:
        rows.append((LABELS(ctx, "row_asset"), LABELS(ctx, "row_asset_value", **asset)))
    await send_cards(
        ctx,
        targets,
        subject_id=t.id,
        purpose="claim",
        rows=rows,
        title=block("cards_faults", "ticket_title", number=t.id, category=category_name(ctx, t.category)) or "",
        buttons=[Button(block("cards_faults", "ticket_claim") or "", TicketClick(t.id, TicketButton.CLAIM))],
    )
    return targets


async def _close_ticket_cards(ctx: Ctx, t: Ticket, label: str) -> None:
    await close_cards(ctx, "ticket", t.id, label)


def pauses_of(t: Ticket) -> list[dict[str, Any]]:
    """The ticket's waits (暂停), oldest first: {"from", "to" (None while paused), "reason", "by"}."""
    return list((t.pauses or {}).get("items", []))


def paused_now(t: Ticket) -> dict[str, Any] | None:
    """The wait going on now, if the ticket is paused."""
    items = pauses_of(t)
    return items[-1] if items and items[-1]["to"] is None else None


def _spans(t: Ticket) -> list[worktime.Span]:
    return [
        worktime.Span(datetime.fromisoformat(p["from"]), datetime.fromisoformat(p["to"]) if p["to"] else None)
        for p in pauses_of(t)
    ]


def sla_deadline(ctx: Ctx, t: Ticket, share: float = 1.0) -> datetime | None:
    """When `share` of the category's SLA runs out on its clock (wall or working time), the
    ticket's pauses not counting; None while paused."""
    faults = ctx.config.faults
    working = worktime.WorkingTime(faults.windows(), ctx.config.calendar, ZoneInfo(ctx.config.scheduler.timezone))
    hours = faults.sla_hours.get(t.category, 24) * share
    return worktime.deadline(t.created_at, hours, _spans(t), faults.sla_clock.get(t.category, "wall"), working)


async def _set_timer(ctx: Ctx, kind: str, t: Ticket, due_at: datetime, deadline: datetime) -> None:
    """A timer for this deadline; one left at the same moment (a pause resumed at once) is reused."""
    payload = {"deadline": deadline.isoformat()}
    q = select(Timer).where(Timer.kind == kind, Timer.ref == str(t.id), Timer.due_at == due_at)
    existing = (await ctx.session.execute(q)).scalar_one_or_none()
    if existing is None:
        ctx.session.add(Timer(kind=kind, ref=str(t.id), due_at=due_at, payload=payload))
    elif existing.fired_at is None:
        existing.payload = payload


async def _schedule_sla(ctx: Ctx, t: Ticket) -> None:
    """Set the deadline and its two timers. A new category with the same SLA keeps the deadline
    and the timers it already has (they fire for it; adding them again would clash). While the
    ticket is paused there is no deadline and the old timers stay silent; after a pause, a warning
    whose moment has passed is not given again."""
    deadline = sla_deadline(ctx, t)
    if t.deadline is not None and deadline == t.deadline:
        return
    t.deadline = deadline
    if deadline is None:
        return
    warn_at = sla_deadline(ctx, t, ctx.config.faults.warn_fraction) or deadline
    if not (t.pauses and warn_at <= ctx.now()):
        await _set_timer(ctx, "ticket_sla_warn", t, warn_at, deadline)
    await _set_timer(ctx, "ticket_sla_due", t, deadline, deadline)


async def open_ticket(
    ctx: Ctx,
    location: str,
    category: str,
    description: str,
    booking_id: int | None = None,
    asset: Asset | None = None,
) -> Ticket:
    """Record a ticket, route it and start its SLA clock (also used by stage bookings); a named
    asset goes under repair until the ticket is done."""
    person = ctx.person
    unit = ctx.org.unit_of(ctx.user)
    t = Ticket(
        reporter=ctx.user,
        location=location,
        category=category,
        description=description,
        status=TicketStatus.OPEN,
        created_at=ctx.now(),
        source_event=ctx.event_id,
        campus=person.campus if person else "",
        unit=unit.name if unit else "",
        photos={"items": []},
        booking_id=booking_id,
        asset_id=asset.id if asset is not None else None,
    )
    ctx.session.add(t)
    await ctx.session.flush()
    if asset is not None:
        _repair_opened(ctx, t, asset)
    await _schedule_sla(ctx, t)
    await _send_claim_cards(ctx, t)
    return t


@router.command(
    "report_fault",
    aliases=("报修", "報修", "repair", "report"),
    fields=(
        Field("location", ("地点", "地點", "位置", "location", "where"), parse=parse_text(100), required_if=ours),
        Field(
            "category",
            ("设备", "設備", "类别", "equipment", "device"),
            parse=parse_category,
            infer=infer_category,
            show=show_category,
        ),
        Field(
            "description",
            ("描述", "问题", "問題", "故障", "description", "problem"),
            parse=parse_text(500),
            required_if=ours,
        ),
        Field("asset", ("资产编号", "資產編號", "资产号", "asset"), required=False, parse=parse_asset_number),
    ),
    default_field="description",
)
async def report_fault(ctx: Ctx, values: dict[str, str]) -> None:
    """Record a fault ticket, send it to the technicians, and confirm its number — or, for what
    another office handles, say which office."""
    office = _not_ours_value(ctx, values["category"])
    if office is not None:
        entry, word = office
        ctx.reply("not_ours", word=word, office=entry.office, contact=entry.contact)
        return
    named = values.get("asset")
    asset = await asset_store.find(ctx.session, named) if named else await asset_in_text(ctx, values)
    t = await open_ticket(ctx, values["location"], values["category"], values["description"], asset=asset)
    ctx.reply(
        "fault_recorded",
        asset=await asset_facts(ctx, t),
        unknown_asset=named if named and asset is None else "",
        number=t.id,
        location=t.location,
        category=category_name(ctx, t.category),
        description=t.description,
        deadline=deadline_text(ctx, t),
        hours=ctx.config.faults.sla_hours.get(t.category, 24),
    )


# -- the asset at fault -------------------------------------------------------------------------
ASSET_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-/]{2,31}")


async def asset_in_text(ctx: Ctx, values: dict[str, str]) -> Asset | None:
    """The registered asset whose number the report's text mentions, if exactly one is."""
    text = unicodedata.normalize("NFKC", f"{values.get('location', '')} {values.get('description', '')}")
    tokens = {asset_store.normalize_number(m) for m in ASSET_TOKEN.findall(text)}
    if not tokens:
        return None
    found = list((await ctx.session.execute(select(Asset).where(Asset.number.in_(tokens)))).scalars())
    return found[0] if len(found) == 1 else None


def _repair_opened(ctx: Ctx, t: Ticket, asset: Asset) -> None:
    """The asset goes under repair (a retired one is only linked: nothing to repair)."""
    state = asset.state if asset.state == AssetState.RETIRED else AssetState.REPAIR
    asset_store.change(
        ctx.session,
        asset,
        kind=EventKind.REPAIR_OPENED,
        actor=ctx.user,
        at=ctx.now(),
        ref=f"ticket:{t.id}",
        note=t.description,
        state=state,
    )


async def _repair_closed(ctx: Ctx, t: Ticket) -> None:
    """The ticket is done: the asset goes back to the state it had before its repair began, unless
    another open ticket still names it."""
    asset = await ctx.session.get(Asset, t.asset_id) if t.asset_id else None
    if asset is None:
        return
    others = await ctx.session.scalar(
        select(func.count(Ticket.id)).where(
            Ticket.asset_id == asset.id, Ticket.id != t.id, Ticket.status != TicketStatus.DONE
        )
    )
    facts: dict[str, Any] = {}
    if asset.state == AssetState.REPAIR and not others:
        before = AssetState.IN_USE
        for e in reversed(await asset_store.history(ctx.session, asset)):  # the repair's first event
            if e.after.get("state") == AssetState.REPAIR:
                before = e.before.get("state", before)
                break
        facts["state"] = before
    asset_store.change(
        ctx.session,
        asset,
        kind=EventKind.REPAIR_CLOSED,
        actor=ctx.user,
        at=ctx.now(),
        ref=f"ticket:{t.id}",
        note=t.resolution or "",
        **facts,
    )


async def asset_facts(ctx: Ctx, t: Ticket) -> dict[str, Any] | None:
    """What a ticket's texts show of its asset: number, kind, model, state, and which repair in
    the year up to the ticket this is (该资产近一年第N次报修)."""
    asset = await ctx.session.get(Asset, t.asset_id) if t.asset_id else None
    if asset is None:
        return None
    return {
        "number": asset.number,
        "kind": ASSET_LABELS.name(ctx, "kind", asset.kind),
        "model": asset.model,
        "state": ASSET_LABELS.name(ctx, "state", asset.state),
        "nth": await repairs_within_year(ctx, asset.id, t.created_at, t.id),
    }


def can_see(ctx: Ctx, t: Ticket) -> bool:
    """The reporter, the owner, the director, and the technicians who could claim it."""
    if ctx.user in (t.reporter, t.owner):
        return True
    p = ctx.person
    if p is None:
        return False
    return "director" in p.roles or ("technician" in p.roles and skill_of(t.category) in p.skills)


async def _ticket(ctx: Ctx, number: str, lock: bool = True) -> Ticket | None:
    q = select(Ticket).where(Ticket.id == int(number))
    t = (await ctx.session.execute(q.with_for_update() if lock else q)).scalar_one_or_none()
    if t is None:
        ctx.reply("ticket_not_found", number=number)
    return t


def _is_technician(ctx: Ctx, skill: str | None = None) -> bool:
    p = ctx.person
    return p is not None and "technician" in p.roles and (skill is None or skill in p.skills)


async def claim(ctx: Ctx, t: Ticket) -> None:
    """First claim wins: a conditional update, so two simultaneous claims give one owner."""
    if not _is_technician(ctx):
        ctx.reply("technicians_only")
        return
    claimed = await ctx.session.execute(
        update(Ticket)
        .where(Ticket.id == t.id, Ticket.status == TicketStatus.OPEN)
        .values(status=TicketStatus.CLAIMED, owner=ctx.user, claimed_at=ctx.now())
        .execution_options(synchronize_session=False)
    )
    won = getattr(claimed, "rowcount", 0) == 1
    await ctx.session.refresh(t)
    if not won:
        ctx.reply("ticket_taken", number=t.id, owner=ctx.org.name(t.owner or ""), status=t.status)
        return
    await _close_ticket_cards(
        ctx, t, ctx.renderer.block("cards_faults", "ticket_claimed", name=ctx.org.name(ctx.user)) or ""
    )
    ctx.reply("ticket_claimed_you", number=t.id, location=t.location, description=t.description)
    ctx.tell(t.reporter, "ticket_claimed_reporter", number=t.id, name=ctx.org.name(ctx.user))


@router.action(TicketClick)
async def ticket_click(ctx: Ctx, card: Card, click: TicketClick) -> None:
    t = await _ticket(ctx, str(click.ticket))
    if t is None:
        return
    if click.button is TicketButton.CLAIM:
        await claim(ctx, t)
    else:
        await show_progress(ctx, t)


@router.command(
    "claim_ticket", aliases=("接单", "接單", "claim"), positional=True, fields=(NUMBER,), roles=("technician",)
)
async def claim_ticket(ctx: Ctx, values: dict[str, str]) -> None:
    """接单 #编号"""
    t = await _ticket(ctx, values["number"])
    if t is not None:
        await claim(ctx, t)


@router.command(
    "hand_over",
    aliases=("转交", "轉交", "handover"),
    positional=True,
    roles=("technician",),
    fields=(NUMBER, Field("target", ("转给", "技术员", "to"), parse=parse_text(64))),
)
async def hand_over(ctx: Ctx, values: dict[str, str]) -> None:
    """转交 #编号 userid或姓名 — hand your ticket to another technician."""
    t = await _ticket(ctx, values["number"])
    if t is None:
        return
    target = resolve_person(ctx, values["target"])
    person = ctx.org.person(target) if target else None
    if t.owner != ctx.user or t.status != TicketStatus.CLAIMED:
        ctx.reply("ticket_not_yours", number=t.id, owner=ctx.org.name(t.owner or ""))
        return
    if target is None or person is None or "technician" not in person.roles or target == ctx.user:
        ctx.reply("ticket_bad_target", text=values["target"], example=example_names(ctx.config, ctx.person)["tech"])
        return
    t.owner = target
    ctx.reply("ticket_handed_over", number=t.id, name=person.name)
    ctx.tell(
        target,
        "ticket_handed_to_you",
        number=t.id,
        name=ctx.org.name(ctx.user),
        location=t.location,
        description=t.description,
    )
    _show_photos(ctx, t, [target], await media_files.kept_for(ctx, f"ticket:{t.id}"), f"ticket:{target}")
    ctx.tell(t.reporter, "ticket_claimed_reporter", number=t.id, name=person.name)


@router.command(
    "complete_ticket",
    aliases=("完成", "完工", "done"),
    positional=True,
    roles=("technician",),
    redirect=lambda rest: "complete_task" if names_kind(rest, Kind.TASK) else None,
    fields=(NUMBER, Field("note", ("处理说明", "說明", "说明", "note"), parse=parse_text(500))),
)
async def complete_ticket(ctx: Ctx, values: dict[str, str]) -> None:
    """完成 #编号 处理说明 [人为损坏]"""
    t = await _ticket(ctx, values["number"])
    if t is None:
        return
    if t.owner != ctx.user or t.status != TicketStatus.CLAIMED:
        ctx.reply("ticket_not_yours", number=t.id, owner=ctx.org.name(t.owner or ""))
        return
    note = values["note"]
    _end_pause(ctx, t)  # done while waiting: the wait ends with it
    t.damage = any(w in note.lower() for w in DAMAGE_WORDS)
    t.resolution = note
    t.resolved_at = ctx.now()
    t.status = TicketStatus.DONE
    await _repair_closed(ctx, t)
    hours = repair_hours(t)
    ctx.reply("ticket_done_you", number=t.id, hours=hours, damage=t.damage, asset=await asset_facts(ctx, t))
    ctx.tell(
        t.reporter,
        "ticket_done_reporter",
        number=t.id,
        name=ctx.org.name(ctx.user),
        note=note,
        hours=hours,
        damage=t.damage,
    )
    if t.damage:
        for d in ctx.org.with_role("director"):
            ctx.tell(
                d,
                "ticket_damage_director",
                number=t.id,
                location=t.location,
                note=note,
                reporter=ctx.org.name(t.reporter),
            )


def repair_hours(t: Ticket) -> float:
    """维修时长: resolved − reported, in hours (one decimal); waits included (shown beside it)."""
    end = t.resolved_at or t.created_at
    return round((end - t.created_at).total_seconds() / 3600, 1)


def paused_hours(t: Ticket, now: datetime) -> float:
    """How long the ticket waited (暂停), in hours (one decimal); an ongoing wait counts up to now."""
    return round(worktime.paused_seconds(_spans(t), t.resolved_at or now) / 3600, 1)


def pause_reasons(t: Ticket) -> list[str]:
    return list(dict.fromkeys(p["reason"] for p in pauses_of(t)))


async def _ticket_at_hand(ctx: Ctx, number: str) -> Ticket | None:
    """A ticket its owner (or the director) may pause or resume; anyone else is told whose it is."""
    t = await _ticket(ctx, number)
    if t is None:
        return None
    p = ctx.person
    director = p is not None and "director" in p.roles
    if t.status != TicketStatus.CLAIMED or (t.owner != ctx.user and not director):
        ctx.reply("ticket_not_yours", number=t.id, owner=ctx.org.name(t.owner or ""))
        return None
    return t


@router.command(
    "pause_ticket",
    aliases=("暂停", "暫停", "待配件", "pause"),
    positional=True,
    roles=("technician", "director"),
    fields=(NUMBER, Field("reason", ("原因", "等待", "reason"), parse=parse_text(100))),
)
async def pause_ticket(ctx: Ctx, values: dict[str, str]) -> None:
    """暂停 #编号 原因 — the repair waits (parts on order, a supplier, the room locked): its SLA clock
    stops until 恢复 #编号; the wait shows in the register's 维修时长."""
    t = await _ticket_at_hand(ctx, values["number"])
    if t is None:
        return
    current = paused_now(t)
    if current is not None:
        since = show_moment(ctx, local_now(datetime.fromisoformat(current["from"]), ctx.config.scheduler.timezone))
        ctx.reply("ticket_already_paused", number=t.id, reason=current["reason"], since=since)
        return
    item = {"from": ctx.now().isoformat(), "to": None, "reason": values["reason"], "by": ctx.user}
    t.pauses = {"items": [*pauses_of(t), item]}
    overdue = t.deadline is not None and t.deadline <= ctx.now()
    await _schedule_sla(ctx, t)
    ctx.reply("ticket_paused_you", number=t.id, reason=values["reason"], overdue=overdue)
    ctx.tell(t.reporter, "ticket_paused_reporter", number=t.id, reason=values["reason"], name=ctx.org.name(ctx.user))


@router.command(
    "resume_ticket",
    aliases=("恢复", "恢復", "继续维修", "繼續維修", "resume"),
    positional=True,
    roles=("technician", "director"),
    fields=(NUMBER,),
)
async def resume_ticket(ctx: Ctx, values: dict[str, str]) -> None:
    """恢复 #编号 — the wait is over: the SLA clock runs again from where it stopped."""
    t = await _ticket_at_hand(ctx, values["number"])
    if t is None:
        return
    current = paused_now(t)
    if current is None:
        ctx.reply("ticket_not_paused", number=t.id, deadline=deadline_text(ctx, t))
        return
    _end_pause(ctx, t)
    await _schedule_sla(ctx, t)
    waited = paused_hours(t, ctx.now())
    ctx.reply("ticket_resumed_you", number=t.id, deadline=deadline_text(ctx, t), hours=waited)
    ctx.tell(t.reporter, "ticket_resumed_reporter", number=t.id, deadline=deadline_text(ctx, t))


def _end_pause(ctx: Ctx, t: Ticket) -> None:
    items = pauses_of(t)
    if items and items[-1]["to"] is None:
        items[-1] = {**items[-1], "to": ctx.now().isoformat()}
        t.pauses = {"items": items}


@router.command(
    "recategorise",
    aliases=("改类别", "改類別", "更正设备", "recategorise"),
    positional=True,
    fields=(
        NUMBER,
        Field("category", ("设备", "類別", "类别", "category"), parse=parse_category, show=show_category),
    ),
)
async def recategorise(ctx: Ctx, values: dict[str, str]) -> None:
    """改类别 #编号 类别 — correct a ticket's equipment category (re-routes it)."""
    t = await _ticket(ctx, values["number"])
    if t is None:
        return
    if ctx.user != t.reporter and not _is_technician(ctx):
        ctx.reply("ticket_not_found", number=t.id)
        return
    if t.status != TicketStatus.OPEN:
        ctx.reply("ticket_taken", number=t.id, owner=ctx.org.name(t.owner or ""), status=t.status)
        return
    office = _not_ours_value(ctx, values["category"])
    if office is not None:
        entry, word = office
        ctx.reply("not_ours", word=word, office=entry.office, contact=entry.contact, number=t.id)
        return
    if values["category"] == t.category:
        ctx.reply("ticket_recategorised", number=t.id, category=category_name(ctx, t.category), names=[])
        return
    await _close_ticket_cards(ctx, t, ctx.renderer.block("cards_faults", "ticket_rerouted") or "")
    t.category = values["category"]
    await _schedule_sla(ctx, t)  # old timers see a different deadline and stay silent
    names = [ctx.org.name(u) for u in await _send_claim_cards(ctx, t)]
    ctx.reply("ticket_recategorised", number=t.id, category=category_name(ctx, t.category), names=names)


def status_name(ctx: HasRenderer, status: str) -> str:
    """待接单 / 处理中 / 已完成"""
    return LABELS.name(ctx, "status", status)


async def show_progress(ctx: Ctx, t: Ticket) -> None:
    """A ticket's state, owner and deadline (进度, the overdue card's 查看进度)."""
    ctx.reply(
        "ticket_progress",
        number=t.id,
        status=status_name(ctx, t.status),
        owner=ctx.org.name(t.owner or ""),
        location=t.location,
        category=category_name(ctx, t.category),
        description=t.description,
        deadline=deadline_text(ctx, t),
        hours=repair_hours(t) if t.resolved_at else None,
        paused=paused_now(t),
        waited=paused_hours(t, ctx.now()),
        reasons=pause_reasons(t),
        asset=await asset_facts(ctx, t),
    )


def row(ctx: Ctx, t: Ticket) -> dict[str, Any]:
    """One ticket in a list (我的申请, 待办, 我的报修, 进度 with several matches)."""
    return {
        "number": t.id,
        "category": category_name(ctx, t.category),
        "location": t.location,
        "status": status_name(ctx, t.status),
        "owner": ctx.org.name(t.owner) if t.owner else "",
        "campus": t.campus,
    }


async def reported_by_me(ctx: Ctx, limit: int = 10) -> list[Ticket]:
    q = select(Ticket).where(Ticket.reporter == ctx.user).order_by(Ticket.id.desc()).limit(limit)
    return list((await ctx.session.execute(q)).scalars())


async def owned_by_me(ctx: Ctx) -> list[Ticket]:
    q = select(Ticket).where(Ticket.owner == ctx.user, Ticket.status == TicketStatus.CLAIMED).order_by(Ticket.id)
    return list((await ctx.session.execute(q)).scalars())


async def claimable(ctx: Ctx, limit: int = 10) -> tuple[list[Ticket], int]:
    """Open tickets a technician may claim (their skills; their campus first, then oldest first),
    and how many there are in all."""
    p = ctx.person
    if p is None or "technician" not in p.roles:
        return [], 0
    categories = [c for c in CATEGORIES if skill_of(c) in p.skills]
    q = select(Ticket).where(Ticket.status == TicketStatus.OPEN, Ticket.category.in_(categories))
    rows = sorted((await ctx.session.execute(q)).scalars(), key=lambda t: (t.campus != p.campus, t.id))
    return rows[:limit], len(rows)


@router.command("my_tickets", aliases=("我的报修", "我的報修", "my tickets", "tickets"), in_help=False)
async def my_tickets(ctx: Ctx, values: dict[str, str]) -> None:
    """我的报修 — tickets I reported, and (technicians) tickets I own (我的申请 and 待办 show these too)."""
    reported, owned = await reported_by_me(ctx), await owned_by_me(ctx)
    ctx.reply("my_tickets", reported=[row(ctx, t) for t in reported], owned=[row(ctx, t) for t in owned])


@router.attachment(order=20)  # after a draft being written (publishing, order 10)
async def attach_photo(ctx: Ctx) -> bool:
    """An image soon after the member's latest report attaches to that ticket; the bot keeps it and
    shows it to the technicians (`ticket_photo_kept`)."""
    window = timedelta(minutes=ctx.config.faults.photo_window_minutes)
    t = (
        await ctx.session.execute(
            select(Ticket)
            .where(Ticket.reporter == ctx.user, Ticket.created_at >= ctx.now() - window)
            .order_by(Ticket.id.desc())
            .limit(1)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if t is None:
        return False
    media = await media_files.keep(ctx, f"ticket:{t.id}", then="ticket_photo_kept")
    items = list((t.photos or {}).get("items", []))
    items.append(
        {
            "media_id": ctx.inbound.media_id,
            "pic_url": ctx.inbound.pic_url,
            "at": ctx.now().isoformat(),
            "media_file": media.id,
        }
    )
    t.photos = {"items": items}
    ctx.reply("ticket_photo_attached", number=t.id, count=len(items))
    return True


async def photo_judges(ctx: Ctx, t: Ticket) -> list[str]:
    """Who looks at a ticket's photos: its owner, or while unclaimed the technicians holding its
    接单 card; nobody once it is done."""
    if t.status == TicketStatus.DONE:
        return []
    if t.owner:
        return [t.owner]
    q = select(Card.userid).where(
        Card.subject == "ticket", Card.request_id == t.id, Card.purpose == "claim", Card.active.is_(True)
    )
    return list(dict.fromkeys((await ctx.session.execute(q.order_by(Card.created_at))).scalars()))


def _show_photos(ctx: Ctx, t: Ticket, userids: list[str], files: list[MediaFile], stage: str) -> None:
    intro = ctx.render(
        "ticket_photo_for_owner",
        number=t.id,
        location=t.location,
        reporter=ctx.org.name(t.reporter),
        count=len([m for m in files if m.shown != stage]),
    )
    media_files.show_once(ctx, userids, files, stage, intro=intro)


@router.timer("ticket_photo_kept")
async def photo_kept(ctx: Ctx, timer: Timer) -> None:
    """A ticket's photo was downloaded (to the technicians), or WeCom no longer had it (to the reporter)."""
    media = await media_files.fetched(ctx, timer)
    number = media_files.subject_id(media, "ticket") if media is not None else None
    t = await ctx.session.get(Ticket, number) if number is not None else None
    if media is None or t is None:
        return
    if media.status != MediaStatus.KEPT:
        ctx.tell(media.owner, "ticket_photo_lost", number=t.id, minutes=ctx.config.faults.photo_window_minutes)
        return
    _show_photos(ctx, t, await photo_judges(ctx, t), [media], f"ticket:{t.owner or ''}")


@router.timer("ticket_sla_warn")
async def fire_sla_warn(ctx: Ctx, timer: Timer) -> None:
    t = await ctx.session.get(Ticket, int(timer.ref))
    if (
        t is None
        or t.status == TicketStatus.DONE
        or t.deadline is None
        or t.deadline.isoformat() != timer.payload.get("deadline")
    ):
        return
    info = {
        "number": t.id,
        "location": t.location,
        "category": category_name(ctx, t.category),
        "deadline": deadline_text(ctx, t),
        "claimed": bool(t.owner),
    }
    for u in [t.owner] if t.owner else ctx.org.technicians(skill_of(t.category)):
        ctx.tell(u, "ticket_sla_warning", **info)


@router.timer("ticket_sla_due")
async def fire_sla_due(ctx: Ctx, timer: Timer) -> None:
    t = await ctx.session.get(Ticket, int(timer.ref))
    if (
        t is None
        or t.status == TicketStatus.DONE
        or t.deadline is None
        or t.deadline.isoformat() != timer.payload.get("deadline")
    ):
        return
    block = ctx.renderer.block
    await send_cards(
        ctx,
        ctx.org.with_role("director"),
        subject_id=t.id,
        purpose="escalation",
        rows=_facts(ctx, t),
        title=block("cards_faults", "ticket_overdue_title", number=t.id) or "",
        desc=block(
            "cards_faults",
            "ticket_overdue_desc",
            owner=ctx.org.name(t.owner) if t.owner else "",
            hours=ctx.config.faults.sla_hours.get(t.category, 24),
        )
        or "",
        buttons=[
            Button(block("cards_faults", "ticket_progress_button") or "", TicketClick(t.id, TicketButton.PROGRESS))
        ],
    )
    if t.owner:
        ctx.tell(t.owner, "ticket_overdue_owner", number=t.id)
