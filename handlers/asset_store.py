"""The one place that changes an asset: every change writes its `AssetEvent` in the same transaction.

Workflows (loans, returns, repairs, inventories, computer rooms) call `change`; nothing else
assigns to an `Asset`'s columns. `find` looks an asset up by its number as staff type it
(full-width digits and letters, stray spaces, lower case all match the printed label).
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Asset, AssetEvent, AssetKind, AssetState

# The facts of an asset that a change may set; an event records each one's old and new value.
FACTS = ("kind", "model", "campus", "location", "unit", "holder", "state", "note")


class EventKind(StrEnum):
    """What happened to an asset (asset_events.kind)."""

    REGISTERED = "registered"  # 登记 (one by one or imported)
    UPDATED = "updated"  # 信息更正 (a re-import or an edit)
    ISSUED = "issued"  # 发放 against a requisition
    RECEIVED = "received"  # 使用人确认领取 (hardware and software checked)
    RETURNED = "returned"  # 归还 / 回收
    REPAIR_OPENED = "repair_opened"  # a fault ticket names it
    REPAIR_CLOSED = "repair_closed"
    MOVED = "moved"  # found elsewhere, relocated
    INVENTORIED = "inventoried"  # 盘点: seen where expected
    MISSING = "missing"  # 盘点: not found
    RETIRED = "retired"  # 报废


def normalize_number(text: str) -> str:
    """An asset number as printed: NFKC (full-width → ASCII), no spaces, upper case."""
    return "".join(unicodedata.normalize("NFKC", text).split()).upper()


async def find(session: AsyncSession, number: str, *, for_update: bool = False) -> Asset | None:
    query = select(Asset).where(Asset.number == normalize_number(number))
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def register(
    session: AsyncSession,
    *,
    number: str,
    kind: AssetKind | str,
    actor: str,
    at: datetime,
    ref: str = "",
    note: str = "",
    **facts: Any,
) -> Asset:
    """A new asset with its first event (REGISTERED); the caller checked the number is free."""
    unknown = set(facts) - set(FACTS)
    if unknown:
        raise TypeError(f"not an asset fact: {sorted(unknown)}")
    asset = Asset(
        number=normalize_number(number),
        kind=str(kind),
        model=facts.get("model", ""),
        campus=facts.get("campus", ""),
        location=facts.get("location", ""),
        unit=facts.get("unit", ""),
        holder=facts.get("holder"),
        state=str(facts.get("state", AssetState.IN_STORE)),
        note=facts.get("note", ""),
        created_at=at,
        updated_at=at,
    )
    session.add(asset)
    await session.flush()  # its id, for the event
    after = {k: getattr(asset, k) for k in FACTS}
    session.add(
        AssetEvent(
            asset_id=asset.id, kind=EventKind.REGISTERED, actor=actor, at=at, before={}, after=after, note=note, ref=ref
        )
    )
    return asset


def change(
    session: AsyncSession,
    asset: Asset,
    *,
    kind: EventKind,
    actor: str,
    at: datetime,
    ref: str = "",
    note: str = "",
    **facts: Any,
) -> AssetEvent:
    """Set some of the asset's facts and record the event (also when no fact changes: a check)."""
    unknown = set(facts) - set(FACTS)
    if unknown:
        raise TypeError(f"not an asset fact: {sorted(unknown)}")
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for key, value in facts.items():
        value = str(value) if isinstance(value, StrEnum) else value
        if getattr(asset, key) != value:
            before[key] = getattr(asset, key)
            after[key] = value
            setattr(asset, key, value)
    asset.updated_at = at
    entry = AssetEvent(asset_id=asset.id, kind=kind, actor=actor, at=at, before=before, after=after, note=note, ref=ref)
    session.add(entry)
    return entry


def change_facts(
    session: AsyncSession,
    asset: Asset,
    facts: dict[str, Any],
    *,
    event: EventKind,
    actor: str,
    at: datetime,
    ref: str = "",
    note: str = "",
) -> AssetEvent:
    """`change` with the facts as a dict: the one way to correct an asset's `kind` (a keyword
    argument `kind` of `change` is the event's kind)."""
    unknown = set(facts) - set(FACTS)
    if unknown:
        raise TypeError(f"not an asset fact: {sorted(unknown)}")
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for key, value in facts.items():
        value = str(value) if isinstance(value, StrEnum) else value
        if getattr(asset, key) != value:
            before[key] = getattr(asset, key)
            after[key] = value
            setattr(asset, key, value)
    asset.updated_at = at
    entry = AssetEvent(
        asset_id=asset.id, kind=event, actor=actor, at=at, before=before, after=after, note=note, ref=ref
    )
    session.add(entry)
    return entry


async def history(session: AsyncSession, asset: Asset) -> list[AssetEvent]:
    """The asset's events, oldest first."""
    rows = await session.execute(
        select(AssetEvent).where(AssetEvent.asset_id == asset.id).order_by(AssetEvent.at, AssetEvent.id)
    )
    return list(rows.scalars())
