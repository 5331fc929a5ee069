"""cctv_shift_entries, kept_footage: the CCTV room's append-only shift log and preserved footage

Revision ID: c17cc7f0a2d3
Revises: a15e5a0c1d27
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "c17cc7f0a2d3"
down_revision = "a15e5a0c1d27"
branch_labels = None
depends_on = None


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "cctv_shift_entries",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("campus", sa.String(length=32), nullable=False),
        sa.Column("operator", sa.String(length=64), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("shift_id", big_id, nullable=True),
        sa.Column("corrects_id", big_id, nullable=True),
        sa.Column("created_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_cctv_shift_entries_campus_at", "cctv_shift_entries", ["campus", "at"])
    op.create_index("ix_cctv_shift_entries_shift_id", "cctv_shift_entries", ["shift_id"])
    op.create_index("ix_cctv_shift_entries_corrects_id", "cctv_shift_entries", ["corrects_id"])
    op.create_table(
        "kept_footage",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("what", sa.Text(), nullable=False),
        sa.Column("location", sa.String(length=200), nullable=False),
        sa.Column("start_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("storage", sa.String(length=300), nullable=False),
        sa.Column("campus", sa.String(length=32), nullable=False),
        sa.Column("operator", sa.String(length=64), nullable=False),
        sa.Column("corrects_id", big_id, nullable=True),
        sa.Column("created_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_kept_footage_created_at", "kept_footage", ["created_at"])
    op.create_index("ix_kept_footage_corrects_id", "kept_footage", ["corrects_id"])


def downgrade() -> None:
    op.drop_index("ix_kept_footage_corrects_id", table_name="kept_footage")
    op.drop_index("ix_kept_footage_created_at", table_name="kept_footage")
    op.drop_table("kept_footage")
    op.drop_index("ix_cctv_shift_entries_corrects_id", table_name="cctv_shift_entries")
    op.drop_index("ix_cctv_shift_entries_shift_id", table_name="cctv_shift_entries")
    op.drop_index("ix_cctv_shift_entries_campus_at", table_name="cctv_shift_entries")
    op.drop_table("cctv_shift_entries")
