"""tasks: each occurrence of a duty is a task to confirm by a deadline (issue 12)

Revision ID: 5d2b8f4a9c61
Revises: 3c7e9a1d5b24
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "5d2b8f4a9c61"
down_revision = "3c7e9a1d5b24"
branch_labels = None
depends_on = None


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "tasks",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("duty", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("occurrence_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("assignees", sa.JSON(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("deadline", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("escalate_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("checklist", sa.JSON(), nullable=False),
        sa.Column("done_by", sa.String(length=64), nullable=True),
        sa.Column("done_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ticket_id", big_id, nullable=True),
        sa.Column("created_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("uq_tasks_duty_occurrence", "tasks", ["duty", "occurrence_at"], unique=True)
    op.create_index("ix_tasks_status", "tasks", ["status"])


def downgrade() -> None:
    op.drop_index("ix_tasks_status", table_name="tasks")
    op.drop_index("uq_tasks_duty_occurrence", table_name="tasks")
    op.drop_table("tasks")
