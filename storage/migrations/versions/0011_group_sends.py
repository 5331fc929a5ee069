"""group_sends (customer-group mass sends), outbox.then (continue after a call), audio_classes.kind

Revision ID: 8a3d5c1f7e92
Revises: 6f1b9c2e8d30
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "8a3d5c1f7e92"
down_revision = "6f1b9c2e8d30"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable or defaulted columns: plain ALTER TABLE on both engines.
    op.add_column("outbox", sa.Column("then", sa.String(length=32), nullable=True))
    op.add_column("audio_classes", sa.Column("kind", sa.String(length=16), nullable=False, server_default="audio"))
    op.create_table(
        "group_sends",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("slot", sa.String(length=5), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("msgid", sa.String(length=64), nullable=True),
        sa.Column("call_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("reminders", sa.Integer(), nullable=False),
        sa.Column("reminded_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("owner_told", sa.Boolean(), nullable=False),
        sa.Column("created_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("settled_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("uq_group_sends_chat_day_slot", "group_sends", ["chat_id", "day", "slot"], unique=True)
    op.create_index("ix_group_sends_status", "group_sends", ["status"])
    op.create_index("ix_group_sends_call_id", "group_sends", ["call_id"])


def downgrade() -> None:
    op.drop_index("ix_group_sends_call_id", table_name="group_sends")
    op.drop_index("ix_group_sends_status", table_name="group_sends")
    op.drop_index("uq_group_sends_chat_day_slot", table_name="group_sends")
    op.drop_table("group_sends")
    with op.batch_alter_table("audio_classes") as batch_op:
        batch_op.drop_column("kind")
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.drop_column("then")
