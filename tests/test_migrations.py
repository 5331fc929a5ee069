"""Migrations build exactly the schema the models describe, on both engines."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import JSON, insert, inspect, select, text, update
from sqlalchemy.exc import IntegrityError

from storage.db import HEAD_REVISION, alembic_config, make_engine, migrate
from storage.models import Base, UTCDateTime

pytestmark = pytest.mark.empty_db  # they migrate the database themselves


def _diff(conn):  # type: ignore[no-untyped-def]
    return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)


async def test_migrations_match_models_and_are_idempotent(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        await migrate(engine)
        await migrate(engine)  # a second start changes nothing

        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()


def test_head_revision_is_alembics_head() -> None:
    """A start that finds the database at HEAD_REVISION skips Alembic: a new migration updates it."""
    from alembic.script import ScriptDirectory

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION


async def test_a_database_at_head_is_not_migrated_again_and_one_behind_is(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        await migrate(engine)
        async with engine.begin() as conn:  # a change migrate would not make: it is left alone
            await conn.execute(text("CREATE TABLE marker (id INTEGER)"))
        await migrate(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(lambda c: inspect(c).has_table("marker"))
            await conn.run_sync(lambda c: command.downgrade(_cfg(c), "-1"))
            await conn.commit()
        await migrate(engine)  # one revision behind: Alembic upgrades it
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar() == HEAD_REVISION
            assert [d[0] for d in await conn.run_sync(_diff)] == ["remove_table"]  # the marker only
    finally:
        await engine.dispose()


def _cfg(conn):  # type: ignore[no-untyped-def]
    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    return cfg


async def test_replicas_starting_together_migrate_once(db_url: str) -> None:
    import asyncio

    engines = [make_engine(db_url) for _ in range(3)]
    try:
        await asyncio.wait_for(asyncio.gather(*(migrate(e) for e in engines)), 60)  # none trips on the others
    finally:
        for e in engines:
            await e.dispose()


# Every reference between tables (migration 0006): (table, constraint, column, referred table, ondelete).
# None on cards.request_id (its table depends on cards.subject) nor on timers.ref (a string).
FOREIGN_KEYS = {
    ("outbox", "fk_outbox_caused_by_inbound_events", "caused_by", "inbound_events", "SET NULL"),
    ("tickets", "fk_tickets_source_event_inbound_events", "source_event", "inbound_events", "SET NULL"),
    ("tickets", "fk_tickets_booking_id_bookings", "booking_id", "bookings", "SET NULL"),
    ("bookings", "fk_bookings_ticket_id_tickets", "ticket_id", "tickets", "SET NULL"),
    ("bookings", "fk_bookings_request_id_requests", "request_id", "requests", "RESTRICT"),
    ("approval_audit", "fk_approval_audit_request_id_requests", "request_id", "requests", "RESTRICT"),
    ("footage_log", "fk_footage_log_request_id_requests", "request_id", "requests", "SET NULL"),
    ("computer_issues", "fk_computer_issues_request_id_requests", "request_id", "requests", "RESTRICT"),
    ("audio_classes", "fk_audio_classes_request_id_requests", "request_id", "requests", "RESTRICT"),
    ("drafts", "fk_drafts_committee_request_requests", "committee_request", "requests", "SET NULL"),
    ("draft_versions", "fk_draft_versions_draft_id_drafts", "draft_id", "drafts", "RESTRICT"),
    ("publications", "fk_publications_draft_id_drafts", "draft_id", "drafts", "RESTRICT"),
}
# Keys of tables created after 0006, each in its table's own migration.
LATER_FOREIGN_KEYS = {
    ("stage_crews", "fk_stage_crews_booking_id_bookings", "booking_id", "bookings", "RESTRICT"),
    ("stage_damages", "fk_stage_damages_booking_id_bookings", "booking_id", "bookings", "RESTRICT"),
    ("asset_events", "fk_asset_events_asset_id_assets", "asset_id", "assets", "RESTRICT"),
    ("inventory_items", "fk_inventory_items_round_id_inventory_rounds", "round_id", "inventory_rounds", "RESTRICT"),
    ("inventory_items", "fk_inventory_items_asset_id_assets", "asset_id", "assets", "RESTRICT"),
    ("loan_damages", "fk_loan_damages_issue_id_computer_issues", "issue_id", "computer_issues", "RESTRICT"),
    ("loan_damages", "fk_loan_damages_asset_id_assets", "asset_id", "assets", "RESTRICT"),
    ("lab_seats", "fk_lab_seats_lesson_id_lab_lessons", "lesson_id", "lab_lessons", "RESTRICT"),
}
# The value each seeded row holds in each of those columns (_seed).
LINKS = {(t, c): 2 if (t, c) == ("drafts", "committee_request") else 1 for t, _n, c, _r, _o in FOREIGN_KEYS}
BEFORE_FOREIGN_KEYS = "63b51f392664"  # 0005
AT = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def _foreign_keys(conn):  # type: ignore[no-untyped-def]
    """The foreign keys the database has, in FOREIGN_KEYS' shape (all of them reference `id`)."""
    insp = inspect(conn)
    found = set()
    for table in insp.get_table_names():
        for fk in insp.get_foreign_keys(table):
            assert fk["referred_columns"] == ["id"] and len(fk["constrained_columns"]) == 1, fk
            found.add(
                (
                    table,
                    fk["name"],
                    fk["constrained_columns"][0],
                    fk["referred_table"],
                    (fk.get("options") or {}).get("ondelete", "").upper(),
                )
            )
    return found


def _column(conn, table: str, column: str) -> list[object]:  # type: ignore[no-untyped-def]
    t = Base.metadata.tables[table]
    return list(conn.execute(select(t.c[column]).order_by(t.c.id)).scalars())


def _links(conn):  # type: ignore[no-untyped-def]
    return {(t, c): _column(conn, t, c)[0] for t, c in LINKS}


def _filler(column):  # type: ignore[no-untyped-def]
    """Some value of the column's type, for a row whose other columns do not matter."""
    if isinstance(column.type, UTCDateTime):
        return AT
    if isinstance(column.type, JSON):
        return {}
    return {str: "x", int: 1, bool: False}[column.type.python_type]


def _seed(conn) -> None:  # type: ignore[no-untyped-def]
    """One row (id 1) in every table that has a foreign key, and what they point at, all linked."""
    m = Base.metadata.tables
    conn.execute(
        insert(m["inbound_events"]).values(
            id=1, dedupe_key="k1", channel="app", msg_type="text", from_user="u", received_at=AT
        )
    )
    for rid in (1, 2):
        conn.execute(
            insert(m["requests"]).values(
                id=rid,
                workflow="footage",
                chain="c",
                requester="u",
                fields={},
                flow={},
                status="approved",
                stage="",
                confidential=False,
                created_at=AT,
                updated_at=AT,
                step_started_at=AT,
            )
        )
    conn.execute(
        insert(m["outbox"]).values(
            id=1,
            recipient="user:u",
            kind="message",
            payload={},
            status="sent",
            attempts=1,
            created_at=AT,
            next_attempt_at=AT,
            caused_by=1,
        )
    )
    conn.execute(
        insert(m["tickets"]).values(
            id=1,
            reporter="u",
            location="l",
            category="stage",
            description="d",
            status="open",
            created_at=AT,
            source_event=1,
            campus="",
            unit="",
            resolution="",
            damage=False,
            photos={},
        )
    )
    conn.execute(
        insert(m["bookings"]).values(
            id=1,
            request_id=1,
            venue="hall",
            start_at=AT,
            end_at=AT,
            activity="a",
            outdoor=False,
            offsite=False,
            major=False,
            holds=True,
            condition_note="",
            ticket_id=1,
        )
    )
    conn.execute(update(m["tickets"]).where(m["tickets"].c.id == 1).values(booking_id=1))
    conn.execute(
        insert(m["approval_audit"]).values(
            id=1,
            request_id=1,
            actor="u",
            action="approve",
            prev_status="pending",
            new_status="approved",
            detail={},
            source="msg:1",
            at=AT,
        )
    )
    conn.execute(
        insert(m["footage_log"]).values(
            id=1,
            request_id=1,
            police=False,
            operator="u",
            retriever="r",
            retrieved_at="t",
            content="c",
            delivery="usb",
            location="",
            reason="",
            created_at=AT,
        )
    )
    conn.execute(
        insert(m["computer_issues"]).values(
            id=1,
            request_id=1,
            recipient="u",
            unit="x",
            purpose="loan",
            spec="s",
            assets={"numbers": []},
            issued_by="u",
            issued_at=AT,
        )
    )
    conn.execute(
        insert(m["audio_classes"]).values(
            id=1, request_id=1, day="2026-11-25", class_time="t", title="t", speaker="s", link="l", groups={}, pushed={}
        )
    )
    conn.execute(
        insert(m["drafts"]).values(
            id=1,
            author="u",
            status="committee",
            version=1,
            phone=True,
            committee_request=2,
            created_at=AT,
            updated_at=AT,
        )
    )
    conn.execute(
        insert(m["draft_versions"]).values(
            id=1, draft_id=1, version=1, title="t", body="b", photos={}, text_review={}, photo_review={}, created_at=AT
        )
    )
    conn.execute(
        insert(m["publications"]).values(id=1, draft_id=1, platform="website", link="l", editor="u", published_at=AT)
    )


async def _alembic(engine, action: str, revision: str) -> None:  # type: ignore[no-untyped-def]
    """`alembic upgrade|downgrade revision` on one transaction, as storage.db.migrate runs it."""

    def run(conn):  # type: ignore[no-untyped-def]
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        getattr(command, action)(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def test_foreign_keys_exist_and_refuse_orphans(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        await migrate(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_foreign_keys) == FOREIGN_KEYS | LATER_FOREIGN_KEYS

        # A row pointing at nothing is refused, on insert and on update, by every key
        # (on SQLite too: storage.db turns PRAGMA foreign_keys on).
        async with engine.connect() as conn:
            with pytest.raises(IntegrityError):
                await conn.execute(
                    insert(Base.metadata.tables["approval_audit"]).values(
                        request_id=424_242,
                        actor="u",
                        action="approve",
                        prev_status="pending",
                        new_status="approved",
                        detail={},
                        source="msg:1",
                        at=AT,
                    )
                )
            await conn.rollback()
        async with engine.begin() as conn:
            await conn.run_sync(_seed)
        for table, _name, column, _referred, _ondelete in sorted(FOREIGN_KEYS):
            t = Base.metadata.tables[table]
            async with engine.connect() as conn:
                with pytest.raises(IntegrityError):
                    await conn.execute(update(t).where(t.c.id == 1).values({column: 424_242}))
                await conn.rollback()

        # ondelete: the event goes and what it caused stays; a request with records cannot go.
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM inbound_events WHERE id = 1"))
            assert await conn.run_sync(_column, "outbox", "caused_by") == [None]
            assert await conn.run_sync(_column, "tickets", "source_event") == [None]
        for table in ("requests", "drafts"):
            async with engine.connect() as conn:
                with pytest.raises(IntegrityError):
                    await conn.execute(text(f"DELETE FROM {table} WHERE id = 1"))
                await conn.rollback()
        # The later tables' keys refuse a booking that does not exist.
        for table, _name, column, _referred, _ondelete in sorted(LATER_FOREIGN_KEYS):
            t = Base.metadata.tables[table]
            row = {c.name: _filler(c) for c in t.columns if not c.nullable and c.name != "id"}
            async with engine.connect() as conn:
                with pytest.raises(IntegrityError):
                    await conn.execute(insert(t).values({**row, column: 424_242}))
                await conn.rollback()
    finally:
        await engine.dispose()


async def test_foreign_key_migration_keeps_rows_both_ways(db_url: str) -> None:
    """Rows written before 0006 keep their references through upgrade and downgrade.

    On SQLite each table is rebuilt with PRAGMA foreign_keys on: rebuilding tickets once
    bookings.ticket_id points at it sets that column to NULL unless the migration keeps it.
    """
    engine = make_engine(db_url)
    try:
        await _alembic(engine, "upgrade", BEFORE_FOREIGN_KEYS)
        async with engine.begin() as conn:
            await conn.run_sync(_seed)
            await conn.execute(
                insert(Base.metadata.tables["outbox"]).values(  # its event was deleted by hand
                    id=2,
                    recipient="user:u",
                    kind="message",
                    payload={},
                    status="sent",
                    attempts=1,
                    created_at=AT,
                    next_attempt_at=AT,
                    caused_by=77,
                )
            )

        await migrate(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_links) == LINKS
            assert await conn.run_sync(_column, "outbox", "caused_by") == [1, None]  # as SET NULL would have
            assert await conn.run_sync(_foreign_keys) == FOREIGN_KEYS | LATER_FOREIGN_KEYS

        await _alembic(engine, "downgrade", BEFORE_FOREIGN_KEYS)
        async with engine.connect() as conn:
            assert await conn.run_sync(_links) == LINKS
            assert await conn.run_sync(_foreign_keys) == set()

        await migrate(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_links) == LINKS
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()
