"""foreign keys between tables

Every id that points at another table's row gets a named foreign key (named so downgrade can
drop it on both engines). Not here: `cards.request_id` (its table depends on `cards.subject`),
`cards.outbox_id` (the cards table is left alone; sent outbox rows are purged) and `timers.ref`
(a string).

ondelete: SET NULL where the referring row outlives its parent; RESTRICT on the NOT NULL
columns (nothing official is cascade-deleted).

Existing rows: a nullable reference to a row that is gone is set to NULL first (what SET NULL
would have done); a NOT NULL one makes the upgrade fail, on purpose.

SQLite cannot add a constraint to a table, so batch mode copies each table into a new one and
drops the old. storage.db turns `PRAGMA foreign_keys` on and migrates inside a transaction
(where the pragma cannot be switched off), so dropping a table that other tables reference
runs their ON DELETE actions: referring columns would be set to NULL (and RESTRICT referrers
would refuse). Tables are therefore rebuilt parents first, and the one cycle
(tickets.booking_id <-> bookings.ticket_id) is handled by saving the referring values before
the rebuild and writing them back after it (`_rebuild`).

Revision ID: 8a49a97a31d3
Revises: 63b51f392664
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "8a49a97a31d3"
down_revision = "63b51f392664"
branch_labels = None
depends_on = None

# (table, constraint name, column, referred table, ondelete), in the order tables are rebuilt on
# upgrade: a table is rebuilt before any foreign key points at it, except across the cycle.
FOREIGN_KEYS = [
    ("outbox", "fk_outbox_caused_by_inbound_events", "caused_by", "inbound_events", "SET NULL"),
    ("approval_audit", "fk_approval_audit_request_id_requests", "request_id", "requests", "RESTRICT"),
    ("footage_log", "fk_footage_log_request_id_requests", "request_id", "requests", "SET NULL"),
    ("computer_issues", "fk_computer_issues_request_id_requests", "request_id", "requests", "RESTRICT"),
    ("audio_classes", "fk_audio_classes_request_id_requests", "request_id", "requests", "RESTRICT"),
    ("drafts", "fk_drafts_committee_request_requests", "committee_request", "requests", "SET NULL"),
    ("draft_versions", "fk_draft_versions_draft_id_drafts", "draft_id", "drafts", "RESTRICT"),
    ("publications", "fk_publications_draft_id_drafts", "draft_id", "drafts", "RESTRICT"),
    ("bookings", "fk_bookings_request_id_requests", "request_id", "requests", "RESTRICT"),
    ("bookings", "fk_bookings_ticket_id_tickets", "ticket_id", "tickets", "SET NULL"),
    ("tickets", "fk_tickets_source_event_inbound_events", "source_event", "inbound_events", "SET NULL"),
    ("tickets", "fk_tickets_booking_id_bookings", "booking_id", "bookings", "SET NULL"),
]


def _tables() -> list[str]:
    """Tables in upgrade order, each once."""
    return list(dict.fromkeys(t for t, *_ in FOREIGN_KEYS))


def _referrers(bind: sa.engine.Connection, table: str) -> list[tuple[str, str]]:
    """(table, column) of every foreign key in another table that points at `table`."""
    insp = sa.inspect(bind)
    return [
        (other, fk["constrained_columns"][0])
        for other in insp.get_table_names()
        if other != table
        for fk in insp.get_foreign_keys(other)
        if fk["referred_table"] == table
    ]


def _rebuild(table: str, alter) -> None:  # type: ignore[no-untyped-def]
    """Run `alter(batch_op)` on `table`; on SQLite keep the references other tables hold to it."""
    bind = op.get_bind()
    saved: list[tuple[str, str, list[tuple[int, int]]]] = []
    if bind.dialect.name == "sqlite":
        for other, column in _referrers(bind, table):
            found = bind.execute(sa.text(f"SELECT id, {column} FROM {other} WHERE {column} IS NOT NULL")).all()
            saved.append((other, column, [(r[0], r[1]) for r in found]))
    with op.batch_alter_table(table, schema=None) as batch_op:
        alter(batch_op)
    for other, column, rows in saved:
        for row_id, value in rows:
            bind.execute(sa.text(f"UPDATE {other} SET {column} = :v WHERE id = :id"), {"v": value, "id": row_id})


def upgrade() -> None:
    for table, _name, column, referred, ondelete in FOREIGN_KEYS:
        if ondelete == "SET NULL":
            op.execute(
                f"UPDATE {table} SET {column} = NULL WHERE {column} IS NOT NULL"
                f" AND NOT EXISTS (SELECT 1 FROM {referred} WHERE {referred}.id = {table}.{column})"
            )
    for table in _tables():
        keys = [fk for fk in FOREIGN_KEYS if fk[0] == table]

        def add(batch_op, keys=keys):  # type: ignore[no-untyped-def]
            for _table, name, column, referred, ondelete in keys:
                batch_op.create_foreign_key(name, referred, [column], ["id"], ondelete=ondelete)

        _rebuild(table, add)


def downgrade() -> None:
    for table in reversed(_tables()):
        names = [fk[1] for fk in FOREIGN_KEYS if fk[0] == table]

        def drop(batch_op, names=names):  # type: ignore[no-untyped-def]
            for name in names:
                batch_op.drop_constraint(name, type_="foreignkey")

        _rebuild(table, drop)
