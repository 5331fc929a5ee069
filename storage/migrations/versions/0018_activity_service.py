"""activity_bookings: 活动服务 (W9), photographing and filming activities

Revision ID: d18ac71e5b04
Revises: e19e7a1b9c05
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "d18ac71e5b04"
down_revision = "e19e7a1b9c05"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "activity_bookings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("requester", sa.String(length=64), nullable=False),
        sa.Column("unit", sa.String(length=100), nullable=False),
        sa.Column("activity", sa.String(length=200), nullable=False),
        sa.Column("location", sa.String(length=200), nullable=False),
        sa.Column("start_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("service", sa.String(length=16), nullable=False),
        sa.Column("contact", sa.String(length=100), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("assignee", sa.String(length=64), nullable=True),
        sa.Column("assigned_by", sa.String(length=64), nullable=True),
        sa.Column("assigned_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivery_place", sa.Text(), nullable=False),
        sa.Column("photos", sa.Integer(), nullable=True),
        sa.Column("videos", sa.Integer(), nullable=True),
        sa.Column("delivery_note", sa.Text(), nullable=False),
        sa.Column("delivered_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("archive_task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_activity_bookings_assignee_time", "activity_bookings", ["assignee", "status", "start_at"], unique=False
    )
    op.create_index("ix_activity_bookings_start", "activity_bookings", ["start_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_activity_bookings_start", table_name="activity_bookings")
    op.drop_index("ix_activity_bookings_assignee_time", table_name="activity_bookings")
    op.drop_table("activity_bookings")
