"""inventory_rounds, inventory_items (issue 14 point 3: 财产盘查)

Revision ID: b19428077ee6
Revises: 4deba65a9f2a
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "b19428077ee6"
down_revision = "4deba65a9f2a"
branch_labels = None
depends_on = None


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    when = storage.models.UTCDateTime(timezone=True)
    op.create_table(
        "inventory_rounds",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("campus", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_by", sa.String(length=64), nullable=False),
        sa.Column("started_at", when, nullable=False),
        sa.Column("ended_by", sa.String(length=64), nullable=True),
        sa.Column("ended_at", when, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_inventory_rounds_campus_status", "inventory_rounds", ["campus", "status"])
    op.create_table(
        "inventory_items",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("round_id", big_id, nullable=False),
        sa.Column("asset_id", big_id, nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("location", sa.String(length=200), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("found_at", sa.String(length=200), nullable=False),
        sa.Column("extra", sa.Boolean(), nullable=False),
        sa.Column("checked_by", sa.String(length=64), nullable=True),
        sa.Column("checked_at", when, nullable=True),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["inventory_rounds.id"],
            name="fk_inventory_items_round_id_inventory_rounds",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.id"], name="fk_inventory_items_asset_id_assets", ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_inventory_items_round_location", "inventory_items", ["round_id", "location"])
    op.create_index("uq_inventory_items_round_asset", "inventory_items", ["round_id", "asset_id"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_inventory_items_round_asset", table_name="inventory_items")
    op.drop_index("ix_inventory_items_round_location", table_name="inventory_items")
    op.drop_table("inventory_items")
    op.drop_index("ix_inventory_rounds_campus_status", table_name="inventory_rounds")
    op.drop_table("inventory_rounds")
