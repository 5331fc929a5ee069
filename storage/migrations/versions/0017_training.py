"""training: digital-campus training sessions, attendance, exam scores, the list for 人资部, usage

Revision ID: e19e7a1b9c05
Revises: c17cc7f0a2d3
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "e19e7a1b9c05"
down_revision = "c17cc7f0a2d3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    when = storage.models.UTCDateTime(timezone=True)
    op.create_table(
        "training_sessions",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("module", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("starts_at", when, nullable=False),
        sa.Column("place", sa.String(length=200), nullable=False),
        sa.Column("trainees", sa.JSON(), nullable=False),
        sa.Column("published_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_training_sessions_module", "training_sessions", ["module"])
    op.create_table(
        "training_attendance",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("session_id", big_id, nullable=False),
        sa.Column("userid", sa.String(length=64), nullable=False),
        sa.Column("reply", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("replied_at", when, nullable=True),
        sa.Column("present", sa.Boolean(), nullable=False),
        sa.Column("signed_by", sa.String(length=64), nullable=True),
        sa.Column("signed_at", when, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("uq_training_attendance_session_user", "training_attendance", ["session_id", "userid"], unique=True)
    op.create_table(
        "training_scores",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("module", sa.String(length=100), nullable=False),
        sa.Column("userid", sa.String(length=64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("theory", sa.Float(), nullable=False),
        sa.Column("practical", sa.Float(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("entered_by", sa.String(length=64), nullable=False),
        sa.Column("entered_at", when, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "uq_training_scores_module_user_attempt", "training_scores", ["module", "userid", "attempt"], unique=True
    )
    op.create_table(
        "training_reports",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("module", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("listed", sa.JSON(), nullable=False),
        sa.Column("media_file_id", big_id, nullable=True),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", when, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "platform_usage",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("module", sa.String(length=100), nullable=False),
        sa.Column("unit", sa.String(length=64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", when, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("platform_usage")
    op.drop_table("training_reports")
    op.drop_index("uq_training_scores_module_user_attempt", table_name="training_scores")
    op.drop_table("training_scores")
    op.drop_index("uq_training_attendance_session_user", table_name="training_attendance")
    op.drop_table("training_attendance")
    op.drop_index("ix_training_sessions_module", table_name="training_sessions")
    op.drop_table("training_sessions")
