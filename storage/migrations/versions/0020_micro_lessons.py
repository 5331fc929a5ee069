"""micro_lessons, micro_lesson_clicks; drafts.kind (the review engine's draft kinds) (issue 13, W10)

Revision ID: f20f3c2d8a06
Revises: b16a5e0c1d27
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "f20f3c2d8a06"
down_revision = "b16a5e0c1d27"
branch_labels = None
depends_on = None


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    when = storage.models.UTCDateTime(timezone=True)
    # A defaulted column: plain ALTER TABLE on both engines (a batch rebuild of drafts would trip
    # over the foreign keys pointing at it on SQLite).
    op.add_column("drafts", sa.Column("kind", sa.String(length=16), nullable=False, server_default="news"))
    op.create_table(
        "micro_lessons",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("teacher", sa.String(length=64), nullable=False),
        sa.Column("teacher_name", sa.String(length=100), nullable=False),
        sa.Column("external", sa.Boolean(), nullable=False),
        sa.Column("course", sa.String(length=100), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("room", sa.String(length=100), nullable=False),
        sa.Column("start_at", when, nullable=True),
        sa.Column("end_at", when, nullable=True),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("planner", sa.String(length=64), nullable=False),
        sa.Column("acknowledged_at", when, nullable=True),
        sa.Column("draft_id", big_id, nullable=True),
        sa.Column("recorded_at", when, nullable=True),
        sa.Column("edited_at", when, nullable=True),
        sa.Column("converted_at", when, nullable=True),
        sa.Column("uploaded_at", when, nullable=True),
        sa.Column("category", sa.String(length=100), nullable=False),
        sa.Column("link", sa.String(length=500), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.Column("updated_at", when, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_micro_lessons_room_time", "micro_lessons", ["room", "start_at"])
    op.create_index("ix_micro_lessons_teacher_time", "micro_lessons", ["teacher", "start_at"])
    op.create_index("ix_micro_lessons_draft_id", "micro_lessons", ["draft_id"])
    op.create_table(
        "micro_lesson_clicks",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("lesson_id", big_id, nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("comments", sa.Text(), nullable=False),
        sa.Column("entered_by", sa.String(length=64), nullable=False),
        sa.Column("at", when, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_micro_lesson_clicks_lesson", "micro_lesson_clicks", ["lesson_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_micro_lesson_clicks_lesson", table_name="micro_lesson_clicks")
    op.drop_table("micro_lesson_clicks")
    op.drop_index("ix_micro_lessons_draft_id", table_name="micro_lessons")
    op.drop_index("ix_micro_lessons_teacher_time", table_name="micro_lessons")
    op.drop_index("ix_micro_lessons_room_time", table_name="micro_lessons")
    op.drop_table("micro_lessons")
    op.drop_column("drafts", "kind")  # ALTER TABLE … DROP COLUMN (SQLite 3.35+), no table rebuild
