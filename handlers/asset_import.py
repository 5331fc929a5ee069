"""The asset register from a spreadsheet and back (`python -m bot import-assets` / `export-assets`).

Columns (the header row names them, in any order): 编号, 类别, 型号/配置, 校区, 存放地点, 使用部门,
使用人, 状态, 备注. Every row is checked before anything is stored; any problem refuses the whole
file, each problem naming its row and column. A number twice in the file is a problem. A number
already registered is compared fact by fact: the same facts are a no-op, changed facts are stored
as one UPDATED event with the old and new values (so a corrected sheet can be imported again).
The export writes the same columns, so an exported register imports back unchanged.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from bot.context import Ctx
from handlers import asset_store
from handlers.asset_store import EventKind
from handlers.assets import LABELS, campus_key, campus_name, kind_of, state_of, unit_key, unit_name
from handlers.training import read_table
from storage.models import Asset, AssetState

ACTOR = "import"
# Each column: its key (an asset fact) and the headers it may carry.
COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("number", ("编号", "资产编号", "編號", "number")),
    ("kind", ("类别", "類別", "资产类别", "kind")),
    ("model", ("型号/配置", "型号", "配置", "型號", "model")),
    ("campus", ("校区", "校區", "campus")),
    ("location", ("存放地点", "地点", "存放地點", "location")),
    ("unit", ("使用部门", "部门", "使用部門", "unit")),
    ("holder", ("使用人", "holder")),
    ("state", ("状态", "狀態", "state")),
    ("note", ("备注", "備註", "note")),
)
HEADERS = {h.lower(): key for key, hs in COLUMNS for h in hs}
REQUIRED = ("number", "kind", "campus")
WORKFLOW_STATES = (AssetState.LENT, AssetState.REPAIR)


@dataclass(frozen=True)
class RowProblem:
    line: int  # the row as the spreadsheet numbers it (0: the file as a whole)
    column: str  # the header as the file writes it
    block: str  # what is wrong (a case of import_problems.j2)
    value: str


class AssetImportRejected(Exception):
    """Rows that cannot be imported; nothing was."""

    def __init__(self, problems: list[RowProblem]) -> None:
        super().__init__(f"{len(problems)} problems")
        self.problems = problems


def _header(cells: list[str]) -> dict[str, int]:
    """Column key → its index, from the header row."""
    found: dict[str, int] = {}
    for i, cell in enumerate(cells):
        key = HEADERS.get(cell.strip().lower())
        if key is not None and key not in found:
            found[key] = i
    return found


def read_rows(ctx: Ctx, filename: str, content: bytes) -> list[tuple[int, dict[str, Any]]]:
    """Every data row as asset facts (parsed), or AssetImportRejected naming each bad cell."""
    table = [(n, cells) for n, cells in read_table(filename, content) if any(cells)]
    if not table:
        raise AssetImportRejected([RowProblem(0, "", "empty", "")])
    head_line, head = table[0]
    columns = _header(head)
    missing = [hs[0] for key, hs in COLUMNS if key in REQUIRED and key not in columns]
    if missing:
        raise AssetImportRejected([RowProblem(head_line, "、".join(missing), "bad_header", " ".join(head))])
    names = {key: head[i] for key, i in columns.items()}
    problems: list[RowProblem] = []
    rows: list[tuple[int, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    for line, cells in table[1:]:
        raw = {key: (cells[i].strip() if i < len(cells) else "") for key, i in columns.items()}
        row: dict[str, Any] = {}

        def bad(key: str, block: str, value: str, line: int = line) -> None:
            problems.append(RowProblem(line, names.get(key, key), block, value))

        number = asset_store.normalize_number(raw.get("number", ""))
        if not number:
            bad("number", "required", "")
        elif len(number) > 32:
            bad("number", "too_long", raw["number"])
        elif number in seen:
            bad("number", "duplicate", f"{raw['number']}:{seen[number]}")
        else:
            seen[number] = line
        row["number"] = number
        kind = kind_of(raw.get("kind", ""))
        if kind is None:
            bad("kind", "unknown_kind" if raw.get("kind") else "required", raw.get("kind", ""))
        row["kind"] = str(kind) if kind else ""
        campus = campus_key(ctx.config, raw.get("campus", ""))
        if campus is None:
            bad("campus", "unknown_campus" if raw.get("campus") else "required", raw.get("campus", ""))
        row["campus"] = campus or ""
        row["unit"] = ""
        if raw.get("unit"):
            unit = unit_key(ctx.config, raw["unit"])
            if unit is None:
                bad("unit", "unknown_unit", raw["unit"])
            row["unit"] = unit or ""
        row["holder"] = None
        if raw.get("holder"):
            holders = [p.userid for p in ctx.config.people if raw["holder"] in (p.userid, p.name)]
            if len(holders) != 1:
                bad("holder", "unknown_person" if not holders else "ambiguous_person", raw["holder"])
            else:
                row["holder"] = holders[0]
        state = state_of(raw["state"]) if raw.get("state") else AssetState.IN_USE
        if state is None:
            bad("state", "unknown_state", raw["state"])
        row["state"] = str(state or "")
        for key, limit in (("model", 200), ("location", 200), ("note", 2000)):
            row[key] = raw.get(key, "")
            if len(row[key]) > limit:
                bad(key, "too_long", row[key][:20])
        rows.append((line, row))
    if not rows and not problems:
        problems.append(RowProblem(0, "", "empty", ""))
    if problems:
        raise AssetImportRejected(problems)
    return rows


async def import_assets(ctx: Ctx, filename: str, content: bytes, at: datetime) -> dict[str, int]:
    """Check every row, then register the new assets and update the changed ones (one transaction:
    the caller's). Raises AssetImportRejected with nothing stored."""
    rows = read_rows(ctx, filename, content)
    problems: list[RowProblem] = []
    column = next((c for c in read_table(filename, content)[0][1] if HEADERS.get(c.strip().lower()) == "state"), "状态")
    for line, row in rows:  # 借出 and 维修中 belong to loans and repairs: a sheet neither starts nor ends them
        asset = await asset_store.find(ctx.session, row["number"])
        now = asset.state if asset is not None else None
        if row["state"] != now and (row["state"] in WORKFLOW_STATES or now in WORKFLOW_STATES):
            shown = LABELS.name(ctx, "state", now) if now else ""
            problems.append(
                RowProblem(line, column, "workflow_state", f"{LABELS.name(ctx, 'state', row['state'])}:{shown}")
            )
    if problems:
        raise AssetImportRejected(problems)
    counts = {"new": 0, "updated": 0, "same": 0}
    for _line, row in rows:
        asset = await asset_store.find(ctx.session, row["number"], for_update=True)
        facts = {k: v for k, v in row.items() if k != "number"}
        if asset is None:
            kind = facts.pop("kind")
            await asset_store.register(
                ctx.session, number=row["number"], kind=kind, actor=ACTOR, at=at, ref=f"import:{filename}"[:64], **facts
            )
            counts["new"] += 1
        elif all(getattr(asset, k) == v for k, v in facts.items()):
            counts["same"] += 1
        else:
            asset_store.change_facts(
                ctx.session, asset, facts, event=EventKind.UPDATED, actor=ACTOR, at=at, ref=f"import:{filename}"[:64]
            )
            counts["updated"] += 1
    return counts


def problems_text(ctx: Ctx, problems: list[RowProblem]) -> str:
    return ctx.render("asset_import_problems", problems=problems)


async def export_assets(ctx: Ctx) -> bytes:
    """The register as an .xlsx with the import's columns (display names, so it imports back)."""
    from openpyxl import Workbook  # openpyxl (~17 MB, ~0.3 s) loads with the first workbook, not at start

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "资产"
    sheet.append([hs[0] for _key, hs in COLUMNS])
    for a in (await ctx.session.execute(select(Asset).order_by(Asset.campus, Asset.location, Asset.number))).scalars():
        holder = ctx.org.person(a.holder) if a.holder else None
        sheet.append(
            [
                a.number,
                LABELS.name(ctx, "kind", a.kind),
                a.model,
                campus_name(ctx.config, a.campus),
                a.location,
                unit_name(ctx.config, a.unit) if a.unit else "",
                holder.name if holder else (a.holder or ""),
                LABELS.name(ctx, "state", a.state),
                a.note,
            ]
        )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
