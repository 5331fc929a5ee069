"""assets, asset_events; tickets.asset_id (issue 14: the asset register)

Revision ID: a21c7e3f9b14
Revises: f20f3c2d8a06
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "a21c7e3f9b14"
down_revision = "f20f3c2d8a06"
branch_labels = None
depends_on = None


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    when = storage.models.UTCDateTime(timezone=True)
    op.create_table(
        "assets",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("campus", sa.String(length=32), nullable=False),
        sa.Column("location", sa.String(length=200), nullable=False),
        sa.Column("unit", sa.String(length=100), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.Column("updated_at", when, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("number"),
    )
    op.create_index("ix_assets_campus_location", "assets", ["campus", "location"])
    op.create_index("ix_assets_holder", "assets", ["holder"])
    op.create_table(
        "asset_events",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("asset_id", big_id, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("at", when, nullable=False),
        sa.Column("before", sa.JSON(), nullable=False),
        sa.Column("after", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.id"], name="fk_asset_events_asset_id_assets", ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_asset_events_asset_at", "asset_events", ["asset_id", "at"])
    op.create_index("ix_asset_events_ref", "asset_events", ["ref"])
    # No foreign key (see Ticket.asset_id): a plain ALTER TABLE … ADD COLUMN on both engines.
    op.add_column("tickets", sa.Column("asset_id", big_id, nullable=True))
    op.create_index("ix_tickets_asset_id", "tickets", ["asset_id"])


def downgrade() -> None:
    op.drop_index("ix_tickets_asset_id", table_name="tickets")
    op.drop_column("tickets", "asset_id")  # ALTER TABLE … DROP COLUMN (SQLite 3.35+), no table rebuild
    op.drop_index("ix_asset_events_ref", table_name="asset_events")
    op.drop_index("ix_asset_events_asset_at", table_name="asset_events")
    op.drop_table("asset_events")
    op.drop_index("ix_assets_holder", table_name="assets")
    op.drop_index("ix_assets_campus_location", table_name="assets")
    op.drop_table("assets")
