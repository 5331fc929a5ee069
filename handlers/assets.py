"""资产 — the asset register (issue 14 point 1): every computer, projector, speaker and other asset
of the center has a number, a kind, a model/configuration, a campus and a room or a holder, a state,
and a history of every change (handlers/asset_store.py writes both).

`资产 编号` answers what it is, where it is, who holds it and what happened to it lately (repairs
included). The information center's staff (director, technicians, system administrators) list the
register (`资产列表 [类别] [校区] [状态]`), register one asset (`资产登记 …`) and retire one (`报废`);
the whole register comes in from a spreadsheet with `python -m bot import-assets` (handlers/
asset_import.py). Anyone else may look up only an asset they hold themselves.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot.config import Config
from bot.context import Ctx
from bot.router import Field, FieldError, Router
from bot.timeparse import local_now
from handlers import asset_store
from handlers.approval_commands import resolve_person
from handlers.asset_store import EventKind
from handlers.labels import Labels, show_moment
from storage.models import Asset, AssetEvent, AssetKind, AssetState, Ticket

router = Router("assets", templates=Path(__file__).with_name("templates") / "assets")

# 信息中心: the director, the technicians (设备管理部) and the system administrators keep the register.
STAFF = ("director", "technician", "sysadmin")
LABELS = Labels("labels_assets", kind=AssetKind, state=AssetState, event=EventKind)
HISTORY = 5  # 资产: the latest this many events
LIST_CAP = 30  # 资产列表: at most this many lines; the rest is in the export

KIND_WORDS: dict[AssetKind, tuple[str, ...]] = {
    AssetKind.COMPUTER: ("计算机", "电脑", "主机", "笔记本", "一体机", "computer", "pc", "laptop"),
    AssetKind.PROJECTOR: ("投影仪", "投影机", "投影", "projector"),
    AssetKind.SPEAKER: ("音响", "音箱", "扩音器", "speaker", "audio"),
    AssetKind.OTHER: ("其它", "其他", "other"),
}
STATE_WORDS: dict[AssetState, tuple[str, ...]] = {
    AssetState.IN_USE: ("在用", "使用中", "使用", "in use", "in_use"),
    AssetState.IN_STORE: ("在库", "库存", "入库", "闲置", "in store", "in_store"),
    AssetState.LENT: ("借出", "外借", "lent"),
    AssetState.REPAIR: ("维修中", "维修", "repair"),
    AssetState.RETIRED: ("报废", "已报废", "retired"),
}


# -- words ------------------------------------------------------------------------------------
def _word(value: str, table: dict[Any, tuple[str, ...]]) -> Any | None:
    low = value.strip().lower()
    for member, words in table.items():
        if low == str(member) or low in words:
            return member
    return None


def kind_of(value: str) -> AssetKind | None:
    """计算机 / 电脑 / 投影 / 音响 / 其它 (or the stored value) → an AssetKind."""
    found: AssetKind | None = _word(value, KIND_WORDS)
    return found


def state_of(value: str) -> AssetState | None:
    """在用 / 在库 / 借出 / 维修中 / 报废 (or the stored value) → an AssetState."""
    found: AssetState | None = _word(value, STATE_WORDS)
    return found


def campus_key(config: Config, value: str) -> str | None:
    """A campus by key or name, with or without 校区: main, 本部校区, 本部."""
    text = value.strip()
    for c in config.campuses:
        if text.lower() == c.key.lower() or text in (c.name, c.name.removesuffix("校区")):
            return c.key
    return None


def unit_key(config: Config, value: str) -> str | None:
    """A unit (系部/科室) by key or name."""
    text = value.strip()
    return next((u.key for u in config.units if text.lower() == u.key.lower() or text == u.name), None)


def campus_name(config: Config, key: str) -> str:
    return next((c.name for c in config.campuses if c.key == key), key)


def unit_name(config: Config, key: str) -> str:
    return next((u.name for u in config.units if u.key == key), key)


def is_staff(ctx: Ctx) -> bool:
    person = ctx.person
    return person is not None and bool(set(STAFF) & set(person.roles))


# -- fields -----------------------------------------------------------------------------------
def parse_number(value: str, ctx: Ctx) -> str:
    number = asset_store.normalize_number(value).lstrip("#")
    if not number or len(number) > 32:
        raise FieldError("invalid_asset_number")
    return number


def parse_kind(value: str, ctx: Ctx) -> str:
    kind = kind_of(value)
    if kind is None:
        raise FieldError("invalid_kind")
    return str(kind)


def parse_state(value: str, ctx: Ctx) -> str:
    state = state_of(value)
    if state not in (AssetState.IN_USE, AssetState.IN_STORE):  # 借出/维修/报废 come from their workflows
        raise FieldError("invalid_state")
    return str(state)


def parse_campus(value: str, ctx: Ctx) -> str:
    key = campus_key(ctx.config, value)
    if key is None:
        raise FieldError("invalid_campus", choices=[c.name for c in ctx.config.campuses])
    return key


def parse_unit(value: str, ctx: Ctx) -> str:
    key = unit_key(ctx.config, value)
    if key is None:
        raise FieldError("invalid_unit")
    return key


def parse_holder(value: str, ctx: Ctx) -> str:
    userid = resolve_person(ctx, value)
    if userid is None:
        raise FieldError("invalid_holder")
    return userid


def parse_text(limit: int):  # type: ignore[no-untyped-def]
    def parse(value: str, ctx: Ctx) -> str:
        value = value.strip()
        if not value:
            raise FieldError("invalid_empty")
        if len(value) > limit:
            raise FieldError("invalid_too_long", limit=limit)
        return value

    return parse


NUMBER = Field("number", ("编号", "編號", "资产编号", "資產編號", "number"), parse=parse_number)


# -- what an asset reads as -------------------------------------------------------------------
def local(ctx: Ctx, t: datetime) -> str:
    return show_moment(ctx, local_now(t, ctx.config.scheduler.timezone))


def facts(ctx: Ctx, a: Asset) -> dict[str, Any]:
    """What every text shows of an asset."""
    return {
        "number": a.number,
        "kind": LABELS.name(ctx, "kind", a.kind),
        "model": a.model,
        "campus": campus_name(ctx.config, a.campus),
        "location": a.location,
        "unit": unit_name(ctx.config, a.unit) if a.unit else "",
        "holder": ctx.org.name(a.holder) if a.holder else "",
        "state": LABELS.name(ctx, "state", a.state),
        "note": a.note,
    }


def show_fact(ctx: Ctx, key: str, value: Any) -> str:
    """One changed fact of an event as it reads (a state's name, a person's name …)."""
    if value in (None, ""):
        return LABELS(ctx, "empty")
    if key == "state":
        return LABELS.name(ctx, "state", value)
    if key == "kind":
        return LABELS.name(ctx, "kind", value)
    if key == "holder":
        return ctx.org.name(value)
    if key == "campus":
        return campus_name(ctx.config, value)
    if key == "unit":
        return unit_name(ctx.config, value)
    return str(value)


def event_row(ctx: Ctx, e: AssetEvent) -> dict[str, Any]:
    changes = [
        {"what": LABELS(ctx, f"fact_{k}"), "before": show_fact(ctx, k, e.before.get(k)), "after": show_fact(ctx, k, v)}
        for k, v in e.after.items()
        if e.kind != EventKind.REGISTERED
    ]
    return {
        "kind": LABELS.name(ctx, "event", e.kind),
        "at": local(ctx, e.at),
        "actor": LABELS(ctx, "actor_import") if e.actor == "import" else ctx.org.name(e.actor),
        "note": e.note,
        "ref": e.ref,
        "changes": changes,
    }


async def repairs_within_year(ctx: Ctx, asset_id: int, until: datetime, upto: int | None = None) -> int:
    """How many fault tickets named the asset in the year up to `until` (and up to ticket `upto`):
    该资产近一年第N次报修."""
    query = select(func.count(Ticket.id)).where(
        Ticket.asset_id == asset_id, Ticket.created_at > until - timedelta(days=365), Ticket.created_at <= until
    )
    if upto is not None:
        query = query.where(Ticket.id <= upto)
    count = await ctx.session.scalar(query)
    return int(count or 0)


# -- 资产 ---------------------------------------------------------------------------------------
@router.command(
    "asset_info",
    aliases=("资产", "資產", "asset", "查资产"),
    positional=True,
    members_only=True,
    help_roles=STAFF,  # a teacher may look up what she holds; 帮助 lists it for the staff
    fields=(NUMBER,),
)
async def asset_info(ctx: Ctx, values: dict[str, str]) -> None:
    """资产 编号 — what it is, where it is, who holds it, and what happened to it lately."""
    asset = await asset_store.find(ctx.session, values["number"])
    if asset is None or not (is_staff(ctx) or asset.holder == ctx.user):
        ctx.reply("asset_not_found", number=values["number"], staff=is_staff(ctx))
        return
    events = await asset_store.history(ctx.session, asset)
    repairs = [e for e in events if e.kind == EventKind.REPAIR_OPENED]
    ctx.reply(
        "asset_card",
        a=facts(ctx, asset),
        history=[event_row(ctx, e) for e in events[-HISTORY:]][::-1],
        more=max(0, len(events) - HISTORY),
        repairs=len(repairs),
        repairs_year=await repairs_within_year(ctx, asset.id, ctx.now()),
    )


# -- 资产列表 -----------------------------------------------------------------------------------
def parse_filters(value: str, ctx: Ctx) -> str:
    """Words in any order: a kind, a campus, a state (类别 校区 状态); each at most once."""
    found: dict[str, str] = {}
    for word in value.replace("，", " ").replace(",", " ").split():
        if (kind := kind_of(word)) is not None:
            key, got = "kind", str(kind)
        elif (campus := campus_key(ctx.config, word)) is not None:
            key, got = "campus", campus
        elif (state := state_of(word)) is not None:
            key, got = "state", str(state)
        else:
            raise FieldError("invalid_filter", word=word, campuses=[c.name for c in ctx.config.campuses])
        found[key] = got
    return " ".join(f"{k}={v}" for k, v in found.items())


def _filters(value: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in value.split())


@router.command(
    "asset_list",
    aliases=("资产列表", "資產列表", "资产清单", "assets", "asset list"),
    roles=STAFF,
    default_field="filters",
    fields=(Field("filters", ("筛选", "条件", "filter"), required=False, parse=parse_filters),),
)
async def asset_list(ctx: Ctx, values: dict[str, str]) -> None:
    """资产列表 [类别] [校区] [状态] — the register, filtered; the first few, the rest in the export."""
    wanted = _filters(values.get("filters", ""))
    query = select(Asset)
    for key, value in wanted.items():
        query = query.where(getattr(Asset, key) == value)
    total = int(await ctx.session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    rows = (
        await ctx.session.execute(query.order_by(Asset.campus, Asset.location, Asset.number).limit(LIST_CAP))
    ).scalars()
    ctx.reply(
        "asset_list",
        rows=[facts(ctx, a) for a in rows],
        total=total,
        cap=LIST_CAP,
        kind=LABELS.name(ctx, "kind", wanted["kind"]) if "kind" in wanted else "",
        campus=campus_name(ctx.config, wanted["campus"]) if "campus" in wanted else "",
        state=LABELS.name(ctx, "state", wanted["state"]) if "state" in wanted else "",
    )


# -- 资产登记 -----------------------------------------------------------------------------------
@router.command(
    "register_asset",
    aliases=("资产登记", "資產登記", "登记资产", "register asset"),
    roles=STAFF,
    positional=True,
    fields=(
        NUMBER,
        Field("kind", ("类别", "類別", "kind"), parse=parse_kind, show=LABELS.show("kind")),
        Field("model", ("型号", "型號", "配置", "型号/配置", "model"), parse=parse_text(200)),
        Field("location", ("地点", "地點", "存放地点", "location"), parse=parse_text(200)),
        Field("campus", ("校区", "校區", "campus"), required=False, parse=parse_campus),
        Field("unit", ("部门", "部門", "使用部门", "unit"), required=False, parse=parse_unit),
        Field("holder", ("使用人", "holder"), required=False, parse=parse_holder),
        Field("state", ("状态", "狀態", "state"), required=False, parse=parse_state, show=LABELS.show("state")),
        Field("note", ("备注", "備註", "note"), required=False, parse=parse_text(300)),
    ),
)
async def register_asset(ctx: Ctx, values: dict[str, str]) -> None:
    """资产登记 编号 类别 型号 地点 [校区:… 部门:… 使用人:… 状态:在用|在库 备注:…] — a new asset."""
    existing = await asset_store.find(ctx.session, values["number"])
    if existing is not None:
        ctx.reply("asset_exists", a=facts(ctx, existing))
        return
    person = ctx.person
    asset = await asset_store.register(
        ctx.session,
        number=values["number"],
        kind=values["kind"],
        actor=ctx.user,
        at=ctx.now(),
        model=values["model"],
        location=values["location"],
        campus=values.get("campus") or (person.campus if person else ""),
        unit=values.get("unit", ""),
        holder=values.get("holder"),
        state=values.get("state", AssetState.IN_USE),
        note=values.get("note", ""),
    )
    ctx.reply("asset_registered", a=facts(ctx, asset))


# -- 报废 ---------------------------------------------------------------------------------------
@router.command(
    "retire_asset",
    aliases=("报废", "報廢", "资产报废", "retire"),
    roles=STAFF,
    positional=True,
    fields=(NUMBER, Field("reason", ("原因", "reason"), parse=parse_text(300))),
)
async def retire_asset(ctx: Ctx, values: dict[str, str]) -> None:
    """报废 编号 原因 — retire an asset (it stays in the register with its history)."""
    asset = await asset_store.find(ctx.session, values["number"], for_update=True)
    if asset is None:
        ctx.reply("asset_not_found", number=values["number"], staff=True)
        return
    if asset.state in (AssetState.RETIRED, AssetState.LENT, AssetState.REPAIR):
        ctx.reply("asset_not_retirable", a=facts(ctx, asset))
        return
    asset_store.change(
        ctx.session,
        asset,
        kind=EventKind.RETIRED,
        actor=ctx.user,
        at=ctx.now(),
        note=values["reason"],
        state=AssetState.RETIRED,
        holder=None,
    )
    ctx.reply("asset_retired", reason=values["reason"], a=facts(ctx, asset))
