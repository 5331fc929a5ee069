"""cards.click_at: when the kept click response_code was issued (it is valid for 72 h only)

Revision ID: 6f1b9c2e8d30
Revises: d41a7e05c3b9
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "6f1b9c2e8d30"
down_revision = "d41a7e05c3b9"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column: a plain ALTER TABLE on both engines (no table rebuild on SQLite).
    op.add_column("cards", sa.Column("click_at", storage.models.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cards") as batch_op:
        batch_op.drop_column("click_at")
