"""stored states and flags as ASCII enum values, not Chinese words

Values the workflows stored as the Chinese words users typed become the values of their enums
(the words are now only the templates' display names):

- `requests.fields` — 借舞台 (`workflow = 'stage'`) `outdoor`/`offsite`/`major`: 是/否 → yes/no;
  调监控 (`footage`) `kind`: 学生/教职工 → student/staff; 领电脑 (`computer`) `purpose`:
  科室办公/系部备课/临时借用 → office/teaching/loan.
- `conversations.values` — the same fields of half-filled forms (and 设备情况 `state`, and
  借舞台 `insist`).
- `bookings.condition` — 正常/异常 → normal/abnormal; `computer_issues.purpose` as above;
  `approval_audit.detail.state` of `stage_condition` rows as `bookings.condition`.

No schema change. Rows are read, converted in Python and written back (the tables are small),
the same way on SQLite and PostgreSQL; a value that is not one of the old words is left as it
is, so running either direction twice changes nothing. Downgrade writes the words back.

Revision ID: 579b9876c1c7
Revises: 8a49a97a31d3
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "579b9876c1c7"
down_revision = "8a49a97a31d3"
branch_labels = None
depends_on = None

# The mappings as they were when this revision was written (the code's enums may change later).
YES_NO = {"是": "yes", "否": "no"}
KIND = {"学生": "student", "教职工": "staff"}
PURPOSE = {"科室办公": "office", "系部备课": "teaching", "临时借用": "loan"}
CONDITION = {"正常": "normal", "异常": "abnormal"}

# requests.workflow → {field: mapping}
REQUEST_FIELDS: dict[str, dict[str, dict[str, str]]] = {
    "stage": {"outdoor": YES_NO, "offsite": YES_NO, "major": YES_NO},
    "footage": {"kind": KIND},
    "computer": {"purpose": PURPOSE},
}
# conversations.command → {field: mapping}
FORM_FIELDS: dict[str, dict[str, dict[str, str]]] = {
    "book_stage": {"outdoor": YES_NO, "offsite": YES_NO, "major": YES_NO, "insist": YES_NO},
    "request_footage": {"kind": KIND},
    "request_computer": {"purpose": PURPOSE},
    "stage_condition": {"state": CONDITION},
}

requests = sa.table(
    "requests", sa.column("id", sa.Integer), sa.column("workflow", sa.String), sa.column("fields", sa.JSON)
)
conversations = sa.table(
    "conversations", sa.column("userid", sa.String), sa.column("command", sa.String), sa.column("values", sa.JSON)
)
bookings = sa.table("bookings", sa.column("id", sa.Integer), sa.column("condition", sa.String))
computer_issues = sa.table("computer_issues", sa.column("id", sa.Integer), sa.column("purpose", sa.String))
approval_audit = sa.table(
    "approval_audit", sa.column("id", sa.Integer), sa.column("action", sa.String), sa.column("detail", sa.JSON)
)


def _inverse(fields: Mapping[str, Mapping[str, Mapping[str, str]]]) -> dict[str, dict[str, dict[str, str]]]:
    return {k: {f: {new: old for old, new in m.items()} for f, m in fs.items()} for k, fs in fields.items()}


def _convert(values: Mapping[str, Any] | None, mappings: Mapping[str, Mapping[str, str]]) -> dict[str, Any] | None:
    """The values with each mapped field converted; None when nothing changes."""
    if not isinstance(values, Mapping):
        return None
    out = dict(values)
    for field, mapping in mappings.items():
        value = out.get(field)
        if isinstance(value, str) and value in mapping:
            out[field] = mapping[value]
    return out if out != dict(values) else None


def _json_column(
    conn: sa.Connection,
    table: sa.TableClause,
    key: str,
    kind: str,
    column: str,
    by_kind: Mapping[str, Mapping[str, Mapping[str, str]]],
) -> None:
    """Convert a JSON column's fields, choosing the mappings by another column (workflow, command)."""
    k, t, c = table.c[key], table.c[kind], table.c[column]
    for row in conn.execute(sa.select(k, t, c).where(t.in_(list(by_kind)))).all():
        new = _convert(row[2], by_kind[row[1]])
        if new is not None:
            conn.execute(table.update().where(k == row[0]).values({column: new}))


def _text_column(conn: sa.Connection, table: sa.TableClause, column: str, mapping: Mapping[str, str]) -> None:
    for old, new in mapping.items():
        conn.execute(table.update().where(table.c[column] == old).values({column: new}))


def _audit(conn: sa.Connection, mapping: Mapping[str, str]) -> None:
    t = approval_audit
    for row in conn.execute(sa.select(t.c.id, t.c.detail).where(t.c.action == "stage_condition")).all():
        new = _convert(row[1], {"state": mapping})
        if new is not None:
            conn.execute(t.update().where(t.c.id == row[0]).values(detail=new))


def _run(
    request_fields: Mapping[str, Mapping[str, Mapping[str, str]]],
    form_fields: Mapping[str, Mapping[str, Mapping[str, str]]],
    condition: Mapping[str, str],
    purpose: Mapping[str, str],
) -> None:
    conn = op.get_bind()
    _json_column(conn, requests, "id", "workflow", "fields", request_fields)
    _json_column(conn, conversations, "userid", "command", "values", form_fields)
    _text_column(conn, bookings, "condition", condition)
    _text_column(conn, computer_issues, "purpose", purpose)
    _audit(conn, condition)


def upgrade() -> None:
    _run(REQUEST_FIELDS, FORM_FIELDS, CONDITION, PURPOSE)


def downgrade() -> None:
    _run(
        _inverse(REQUEST_FIELDS),
        _inverse(FORM_FIELDS),
        {v: k for k, v in CONDITION.items()},
        {v: k for k, v in PURPOSE.items()},
    )
