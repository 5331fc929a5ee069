"""lab_lessons, lab_seats, lab_violations, lab_permits (issue 14 point 4: the computer-room registers)

Revision ID: 93877f575f32
Revises: b19428077ee6
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "93877f575f32"
down_revision = "b19428077ee6"
branch_labels = None
depends_on = None


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    when = storage.models.UTCDateTime(timezone=True)
    op.create_table(
        "lab_lessons",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("room", sa.String(length=40), nullable=False),
        sa.Column("campus", sa.String(length=32), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("starts_at", when, nullable=False),
        sa.Column("ends_at", when, nullable=False),
        sa.Column("class_name", sa.String(length=60), nullable=False),
        sa.Column("teacher", sa.String(length=64), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("headcount", sa.Integer(), nullable=False),
        sa.Column("module", sa.String(length=200), nullable=False),
        sa.Column("situation", sa.Text(), nullable=False),
        sa.Column("condition", sa.String(length=16), nullable=False),
        sa.Column("scheduled", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("uq_lab_lessons_room_start", "lab_lessons", ["room", "starts_at"], unique=True)
    op.create_index("ix_lab_lessons_starts_at", "lab_lessons", ["starts_at"])
    op.create_table(
        "lab_seats",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("lesson_id", big_id, nullable=False),
        sa.Column("seat", sa.Integer(), nullable=False),
        sa.Column("user_name", sa.String(length=60), nullable=False),
        sa.Column("condition", sa.String(length=16), nullable=False),
        sa.Column("problem", sa.Text(), nullable=False),
        sa.Column("ticket_id", big_id, nullable=True),
        sa.ForeignKeyConstraint(
            ["lesson_id"], ["lab_lessons.id"], name="fk_lab_seats_lesson_id_lab_lessons", ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("uq_lab_seats_lesson_seat", "lab_seats", ["lesson_id", "seat"], unique=True)
    op.create_table(
        "lab_violations",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("room", sa.String(length=40), nullable=False),
        sa.Column("campus", sa.String(length=32), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("starts_at", when, nullable=False),
        sa.Column("class_name", sa.String(length=60), nullable=False),
        sa.Column("teacher", sa.String(length=64), nullable=False),
        sa.Column("student", sa.String(length=60), nullable=False),
        sa.Column("seat", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_lab_violations_starts_at", "lab_violations", ["starts_at"])
    op.create_table(
        "lab_permits",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("room", sa.String(length=40), nullable=False),
        sa.Column("campus", sa.String(length=32), nullable=False),
        sa.Column("applicant", sa.String(length=64), nullable=False),
        sa.Column("visitor", sa.String(length=60), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", when, nullable=True),
        sa.Column("created_at", when, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_lab_permits_created_at", "lab_permits", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_lab_permits_created_at", table_name="lab_permits")
    op.drop_table("lab_permits")
    op.drop_index("ix_lab_violations_starts_at", table_name="lab_violations")
    op.drop_table("lab_violations")
    op.drop_index("uq_lab_seats_lesson_seat", table_name="lab_seats")
    op.drop_table("lab_seats")
    op.drop_index("ix_lab_lessons_starts_at", table_name="lab_lessons")
    op.drop_index("uq_lab_lessons_room_start", table_name="lab_lessons")
    op.drop_table("lab_lessons")
