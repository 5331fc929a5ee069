"""财产盘查 — the inventory round (issue 14 point 3; the manual: a computer inventory twice a year).

`开始盘点 校区` snapshots the assets expected at that campus (not retired, not lent out) grouped by
room, and sends the campus's technicians the checklist: one card per room (a button per asset when
they fit, and 全部在位) and the same list as text. Technicians answer on the cards or by text:
`盘点 #n 在 编号…` (seen where expected), `盘点 #n 缺 编号…` (not found: a MISSING event),
`盘点 #n 移 编号 新地点` (found elsewhere: the asset moves, a MOVED event). A message with any
number that cannot be used records nothing. The round ends with `结束盘点 #n`, or by itself when
the last asset is checked; the director gets the discrepancy list (missing, found elsewhere,
unchecked) as text. Everything lives in the database, so a restart changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from itertools import groupby
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.cardkeys import CardAction
from bot.cards import Button, close_cards, send_cards
from bot.context import Ctx
from bot.router import Field, FieldError, Router
from handlers import asset_store
from handlers.asset_store import EventKind
from handlers.assets import LABELS as ASSET_LABELS
from handlers.assets import STAFF, campus_name, local, parse_campus
from handlers.labels import Labels
from storage.models import (
    Asset,
    AssetState,
    Card,
    InventoryItem,
    InventoryResult,
    InventoryRound,
    InventoryStatus,
)

router = Router("inventory", templates=Path(__file__).with_name("templates") / "inventory")
LABELS = Labels("labels_inventory", result=InventoryResult)
ROOM_CARDS = 8  # per technician, at most this many room cards; the rest of the rooms by text
CARD_BUTTONS = 6  # at most six buttons on a card (doc 90236): one per asset plus 全部在位
NOT_COUNTED = (AssetState.RETIRED, AssetState.LENT)  # not in a room to be counted

VERBS: dict[InventoryResult, tuple[str, ...]] = {
    InventoryResult.FOUND: ("在位", "在", "找到", "有", "found", "ok"),
    InventoryResult.MISSING: ("未找到", "缺失", "丢失", "缺", "没有", "missing"),
    InventoryResult.MOVED: ("移位", "移", "在别处", "moved"),
}
VERB_ORDER = sorted(((w, r) for r, ws in VERBS.items() for w in ws), key=lambda x: -len(x[0]))  # 在别处 before 在
ROUND_RE = re.compile(r"^\s*(?:盘点\s*)?(?:#\s*|no\.?\s*)?[pP]?(\d{1,9})(?=\s|$|[,，:])")


class InventoryButton(StrEnum):
    FOUND = "found"  # this asset is in the room
    ALL = "all"  # every unchecked asset of the room is in it


@dataclass(frozen=True)
class InventoryClick(CardAction, prefix="inv", subject="inventory"):
    round: int
    item: int
    button: InventoryButton


# -- reading ----------------------------------------------------------------------------------
async def items_of(ctx: Ctx, rnd: InventoryRound) -> list[InventoryItem]:
    rows = await ctx.session.execute(
        select(InventoryItem).where(InventoryItem.round_id == rnd.id).order_by(InventoryItem.location, InventoryItem.id)
    )
    return list(rows.scalars())


def rooms_of(items: list[InventoryItem]) -> list[tuple[str, list[InventoryItem]]]:
    """The items by the room they were expected in (rooms in order, assets in number order)."""
    expected = [i for i in items if not i.extra]
    return [
        (room, sorted(group, key=lambda i: i.number)) for room, group in groupby(expected, key=lambda i: i.location)
    ]


def room_purpose(room: list[InventoryItem]) -> str:
    """A room's cards are told apart by its first item's id (cards.purpose)."""
    return f"room{min(i.id for i in room)}"


async def assets_by_id(ctx: Ctx, items: list[InventoryItem]) -> dict[int, Asset]:
    ids = [i.asset_id for i in items]
    rows = await ctx.session.execute(select(Asset).where(Asset.id.in_(ids))) if ids else None
    return {a.id: a for a in rows.scalars()} if rows is not None else {}


def item_row(ctx: Ctx, item: InventoryItem, asset: Asset | None) -> dict[str, Any]:
    return {
        "number": item.number,
        "kind": ASSET_LABELS.name(ctx, "kind", asset.kind) if asset else "",
        "model": asset.model if asset else "",
        "location": item.location,
        "found_at": item.found_at,
        "result": LABELS.name(ctx, "result", item.result),
        "extra": item.extra,
        "by": ctx.org.name(item.checked_by) if item.checked_by else "",
    }


def counts(items: list[InventoryItem]) -> dict[str, int]:
    out = {str(r) or "unchecked": 0 for r in InventoryResult}
    for i in items:
        out[str(i.result) or "unchecked"] += 1
    out["total"] = len(items)
    return out


def round_facts(ctx: Ctx, rnd: InventoryRound, items: list[InventoryItem]) -> dict[str, Any]:
    return {
        "number": rnd.id,
        "campus": campus_name(ctx.config, rnd.campus),
        "started_by": ctx.org.name(rnd.started_by),
        "started_at": local(ctx, rnd.started_at),
        "open": rnd.status == InventoryStatus.OPEN,
        "counts": counts(items),
    }


def technicians_of(ctx: Ctx, campus: str) -> list[str]:
    """The technicians on the campus (all technicians when none is there)."""
    techs = ctx.org.with_role("technician")
    here = [u for u in techs if (p := ctx.org.person(u)) is not None and p.campus == campus]
    return here or techs


async def open_round(ctx: Ctx, campus: str) -> InventoryRound | None:
    return (
        await ctx.session.execute(
            select(InventoryRound).where(InventoryRound.campus == campus, InventoryRound.status == InventoryStatus.OPEN)
        )
    ).scalar_one_or_none()


# -- 开始盘点 -----------------------------------------------------------------------------------
@router.command(
    "start_inventory",
    aliases=("开始盘点", "開始盤點", "财产盘查", "財產盤查", "start inventory"),
    roles=STAFF,
    positional=True,
    fields=(Field("campus", ("校区", "校區", "campus"), parse=parse_campus),),
)
async def start_inventory(ctx: Ctx, values: dict[str, str]) -> None:
    """开始盘点 校区 — start an inventory round: each room's checklist goes to the campus's technicians."""
    campus = values["campus"]
    current = await open_round(ctx, campus)
    if current is not None:
        ctx.reply("inventory_already_open", **round_facts(ctx, current, await items_of(ctx, current)))
        return
    assets = list(
        (
            await ctx.session.execute(
                select(Asset).where(Asset.campus == campus).order_by(Asset.location, Asset.number)
            )
        ).scalars()
    )
    counted = [a for a in assets if a.state not in NOT_COUNTED]
    lent = [a for a in assets if a.state == AssetState.LENT]
    if not counted:
        ctx.reply("inventory_nothing", campus=campus_name(ctx.config, campus))
        return
    now = ctx.now()
    rnd = InventoryRound(campus=campus, started_by=ctx.user, started_at=now)
    ctx.session.add(rnd)
    await ctx.session.flush()
    for a in counted:
        ctx.session.add(InventoryItem(round_id=rnd.id, asset_id=a.id, number=a.number, location=a.location))
    await ctx.session.flush()
    items = await items_of(ctx, rnd)
    rooms = rooms_of(items)
    by_id = {a.id: a for a in counted}
    listing = [{"room": room, "items": [item_row(ctx, i, by_id.get(i.asset_id)) for i in its]} for room, its in rooms]
    techs = technicians_of(ctx, campus)
    facts = round_facts(ctx, rnd, items)
    for u in techs:
        ctx.tell(u, "inventory_checklist", rooms=listing, cards=min(len(rooms), ROOM_CARDS), **facts)
    for room, its in rooms[:ROOM_CARDS]:
        await send_room_card(ctx, rnd, room, its, techs)
    ctx.reply(
        "inventory_started",
        rooms=len(rooms),
        techs=[ctx.org.name(u) for u in techs],
        lent=[{"number": a.number, "holder": ctx.org.name(a.holder) if a.holder else ""} for a in lent],
        **facts,
    )


async def send_room_card(
    ctx: Ctx, rnd: InventoryRound, room: str, items: list[InventoryItem], users: list[str]
) -> None:
    """One room's checklist card: a button per asset when they fit, and 全部在位."""
    block = ctx.renderer.block
    buttons: list[Button] = []
    if len(items) < CARD_BUTTONS:
        for i in items:
            label = block("cards_inventory", "room_item", number=i.number) or i.number
            buttons.append(Button(label, InventoryClick(rnd.id, i.id, InventoryButton.FOUND), style=2))
    buttons.append(
        Button(block("cards_inventory", "room_all") or "", InventoryClick(rnd.id, items[0].id, InventoryButton.ALL))
    )
    await send_cards(
        ctx,
        users,
        subject_id=rnd.id,
        purpose=room_purpose(items),
        title=block("cards_inventory", "room_title", number=rnd.id, room=room or "") or "",
        desc=block("cards_inventory", "room_desc", campus=campus_name(ctx.config, rnd.campus), count=len(items)) or "",
        rows=[(str(n + 1), i.number) for n, i in enumerate(items[:6])],
        buttons=buttons,
    )


# -- 盘点 (checking) ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    """One 盘点 message: the round (None: the one open round), what was found, the numbers."""

    round: int | None
    result: InventoryResult | None  # None: show the round's progress
    numbers: tuple[str, ...]
    where: str = ""  # 移: the new location


def parse_check(text: str) -> Check:
    """`#3 在 PC-0101 PC-0102`, `#3 缺 PC-0103`, `#3 移 TY-0201 203教室`, `#3`, or the same without #3."""
    text = text.strip()
    number: int | None = None
    m = ROUND_RE.match(text)
    if m is not None:
        number, text = int(m.group(1)), text[m.end() :].strip(" ,，:")
    if not text:
        return Check(number, None, ())
    for w, result in VERB_ORDER:
        if text.lower().startswith(w):
            rest = text[len(w) :].replace(",", " ").replace("，", " ").replace("、", " ").split()
            if not rest:
                raise FieldError("invalid_check")
            if result is InventoryResult.MOVED:
                if len(rest) < 2:
                    raise FieldError("invalid_move")
                return Check(number, result, (rest[0],), " ".join(rest[1:])[:200])
            return Check(number, result, tuple(rest))
    raise FieldError("invalid_check")


def parse_check_text(value: str, ctx: Ctx) -> str:
    parse_check(value)
    return value.strip()


async def find_round(ctx: Ctx, number: int | None) -> InventoryRound | None:
    """The round by its number, or the one open round (the sender's campus first); None: said why."""
    if number is not None:
        rnd = await ctx.session.get(InventoryRound, number, with_for_update=True)
        if rnd is None:
            ctx.reply("inventory_not_found", number=number)
        return rnd
    rounds = list(
        (
            await ctx.session.execute(select(InventoryRound).where(InventoryRound.status == InventoryStatus.OPEN))
        ).scalars()
    )
    person = ctx.person
    mine = [r for r in rounds if person is not None and r.campus == person.campus]
    if len(mine) == 1 or len(rounds) == 1:
        rnd = (mine or rounds)[0]
        await ctx.session.refresh(rnd, with_for_update=True)  # two last checks at once: one ends the round
        return rnd
    ctx.reply(
        "inventory_which",
        rounds=[{"number": r.id, "campus": campus_name(ctx.config, r.campus)} for r in rounds],
    )
    return None


@router.command(
    "check_inventory",
    aliases=("盘点", "盤點", "inventory"),
    roles=STAFF,
    default_field="text",
    fields=(Field("text", ("内容", "text"), required=False, parse=parse_check_text),),
)
async def check_inventory(ctx: Ctx, values: dict[str, str]) -> None:
    """盘点 #编号 在 编号… ／ 缺 编号… ／ 移 编号 新地点 — record what you found; 盘点 #编号: what is left."""
    check = parse_check(values.get("text", ""))
    rnd = await find_round(ctx, check.round)
    if rnd is None:
        return
    items = await items_of(ctx, rnd)
    if check.result is None:
        await show_progress(ctx, rnd, items)
        return
    if rnd.status != InventoryStatus.OPEN:
        ctx.reply("inventory_closed", **round_facts(ctx, rnd, items))
        return
    by_number = {i.number: i for i in items}
    wanted = [asset_store.normalize_number(n).lstrip("#") for n in check.numbers]
    unknown, elsewhere, picked, extra = [], [], [], None
    for n in wanted:
        if n in by_number:
            picked.append(by_number[n])
            continue
        asset = await asset_store.find(ctx.session, n)
        if asset is None:
            unknown.append(n)
        elif check.result is InventoryResult.MOVED and asset.state != AssetState.RETIRED:
            extra = asset  # counted at another campus (or lent, or new): found here, it joins this round
        else:
            elsewhere.append({"number": n, "campus": campus_name(ctx.config, asset.campus), "location": asset.location})
    if unknown or elsewhere:  # nothing is recorded from a message with a number that cannot be used
        ctx.reply("inventory_bad_numbers", number=rnd.id, unknown=unknown, elsewhere=elsewhere)
        return
    if extra is not None:
        item = InventoryItem(
            round_id=rnd.id, asset_id=extra.id, number=extra.number, location=extra.location, extra=True
        )
        ctx.session.add(item)
        await ctx.session.flush()
        picked, items = [item], [*items, item]
    done = await record(ctx, rnd, picked, check.result, check.where)
    await after_check(ctx, rnd, items, done)


async def record(
    ctx: Ctx, rnd: InventoryRound, items: list[InventoryItem], result: InventoryResult, where: str = ""
) -> list[dict[str, Any]]:
    """Mark the items and write each asset's event (in place, missing, or moved to `where`)."""
    now, ref = ctx.now(), f"inventory:{rnd.id}"
    out = []
    for item in items:
        asset = await ctx.session.get(Asset, item.asset_id, with_for_update=True)
        if asset is None:
            continue
        item.result, item.checked_by, item.checked_at = result, ctx.user, now
        note = LABELS(ctx, f"event_note_{result}", number=rnd.id, location=item.location, where=where)
        if result is InventoryResult.MOVED:
            item.found_at = where
            asset_store.change(
                ctx.session,
                asset,
                kind=EventKind.MOVED,
                actor=ctx.user,
                at=now,
                ref=ref,
                note=note,
                campus=rnd.campus,
                location=where,
            )
        else:
            item.found_at = ""
            kind = EventKind.INVENTORIED if result is InventoryResult.FOUND else EventKind.MISSING
            asset_store.change(ctx.session, asset, kind=kind, actor=ctx.user, at=now, ref=ref, note=note)
        out.append(item_row(ctx, item, asset))
    return out


async def after_check(ctx: Ctx, rnd: InventoryRound, items: list[InventoryItem], done: list[dict[str, Any]]) -> None:
    """Say what was recorded; grey out the cards of rooms now complete; end the round when the
    last item is checked."""
    for _room, its in rooms_of(items):
        if all(i.result for i in its):
            label = ctx.renderer.block("cards_inventory", "room_done") or ""
            await close_cards(ctx, "inventory", rnd.id, label, purpose=room_purpose(its))
    left = [i for i in items if not i.result]
    ctx.reply("inventory_recorded", rows=done, left=len(left), **round_facts(ctx, rnd, items))
    if not left:
        await end_round(ctx, rnd, items)


async def show_progress(ctx: Ctx, rnd: InventoryRound, items: list[InventoryItem]) -> None:
    by_id = await assets_by_id(ctx, items)
    rooms = [
        {
            "room": room,
            "left": [item_row(ctx, i, by_id.get(i.asset_id)) for i in its if not i.result],
            "total": len(its),
        }
        for room, its in rooms_of(items)
    ]
    ctx.reply("inventory_progress", rooms=rooms, **round_facts(ctx, rnd, items))


@router.action(InventoryClick, roles=STAFF)
async def inventory_click(ctx: Ctx, card: Card, click: InventoryClick) -> None:
    rnd = await ctx.session.get(InventoryRound, click.round, with_for_update=True)
    if rnd is None:
        ctx.reply("card_unknown")
        return
    items = await items_of(ctx, rnd)
    if rnd.status != InventoryStatus.OPEN:
        ctx.reply("inventory_closed", **round_facts(ctx, rnd, items))
        return
    item = next((i for i in items if i.id == click.item), None)
    if item is None:
        ctx.reply("card_unknown")
        return
    if click.button is InventoryButton.ALL:
        room = next(its for _room, its in rooms_of(items) if item in its)
        picked = [i for i in room if not i.result]
    else:
        picked = [] if item.result else [item]
    done = await record(ctx, rnd, picked, InventoryResult.FOUND)
    await after_check(ctx, rnd, items, done)


# -- 结束盘点 -----------------------------------------------------------------------------------
def parse_round_number(value: str, ctx: Ctx) -> str:
    m = ROUND_RE.match(value)
    if m is None or value[m.end() :].strip():
        raise FieldError("invalid_round")
    return m.group(1)


@router.command(
    "end_inventory",
    aliases=("结束盘点", "結束盤點", "end inventory"),
    roles=STAFF,
    positional=True,
    fields=(Field("number", ("编号", "编號", "number"), required=False, parse=parse_round_number),),
)
async def end_inventory(ctx: Ctx, values: dict[str, str]) -> None:
    """结束盘点 #编号 — end the round; the director gets the list of what is missing, moved or unchecked."""
    rnd = await find_round(ctx, int(values["number"]) if values.get("number") else None)
    if rnd is None:
        return
    items = await items_of(ctx, rnd)
    if rnd.status != InventoryStatus.OPEN:
        ctx.reply("inventory_closed", **round_facts(ctx, rnd, items))
        return
    await end_round(ctx, rnd, items)


async def end_round(ctx: Ctx, rnd: InventoryRound, items: list[InventoryItem]) -> None:
    """Close the round and its cards; the discrepancy list goes to the director(s) and the sender."""
    rnd.status, rnd.ended_by, rnd.ended_at = InventoryStatus.CLOSED, ctx.user, ctx.now()
    await close_cards(ctx, "inventory", rnd.id, ctx.renderer.block("cards_inventory", "round_closed") or "")
    by_id = await assets_by_id(ctx, items)
    rows: dict[str, list[dict[str, Any]]] = {str(r) or "unchecked": [] for r in InventoryResult}
    for i in sorted(items, key=lambda i: (i.location, i.number)):
        rows[str(i.result) or "unchecked"].append(item_row(ctx, i, by_id.get(i.asset_id)))
    report = {
        "missing": rows["missing"],
        "moved": rows["moved"],
        "unchecked": rows["unchecked"],
        "ended_by": ctx.org.name(ctx.user),
        "ended_at": local(ctx, rnd.ended_at),
        **round_facts(ctx, rnd, items),
    }
    for director in ctx.org.with_role("director"):
        if director != ctx.user:
            ctx.tell(director, "inventory_report", for_director=True, **report)
    ctx.reply("inventory_report", for_director=False, **report)
