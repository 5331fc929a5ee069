"""outbox.attempted_at: when a row was last handed to WeCom (per-member limits count unknown outcomes)

Revision ID: 0c5e2d7a9b41
Revises: 579b9876c1c7
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0c5e2d7a9b41"
down_revision = "579b9876c1c7"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column: a plain ALTER TABLE on both engines (no table rebuild on SQLite).
    op.add_column("outbox", sa.Column("attempted_at", storage.models.UTCDateTime(), nullable=True))
    op.create_index("ix_outbox_recipient_attempted", "outbox", ["recipient", "attempted_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_recipient_attempted", table_name="outbox")
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.drop_column("attempted_at")
