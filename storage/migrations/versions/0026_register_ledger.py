"""click_stats, register_ledger (issue 15: click statistics; each register a hash chain)

Revision ID: 97162d8c0da2
Revises: 93877f575f32
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "97162d8c0da2"
down_revision = "93877f575f32"
branch_labels = None
depends_on = None


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    when = storage.models.UTCDateTime(timezone=True)
    op.create_table(
        "click_stats",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("start", sa.String(length=10), nullable=False),
        sa.Column("end", sa.String(length=10), nullable=False),
        sa.Column("views", sa.Integer(), nullable=False),
        sa.Column("visitors", sa.Integer(), nullable=True),
        sa.Column("followers", sa.Integer(), nullable=True),
        sa.Column("campus", sa.String(length=32), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", when, nullable=False),
        sa.Column("corrects_id", big_id, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_click_stats_platform_period", "click_stats", ["platform", "period"])
    op.create_table(
        "register_ledger",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("register", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("corrects_seq", sa.Integer(), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("register", "seq", name="uq_register_ledger_register_seq"),
    )
    op.create_index("ix_register_ledger_ref", "register_ledger", ["register", "ref"])


def downgrade() -> None:
    op.drop_index("ix_register_ledger_ref", table_name="register_ledger")
    op.drop_table("register_ledger")
    op.drop_index("ix_click_stats_platform_period", table_name="click_stats")
    op.drop_table("click_stats")
