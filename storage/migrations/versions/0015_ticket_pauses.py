"""tickets.pauses: stretches a repair waited (待配件) with its SLA clock stopped

Revision ID: a15e5a0c1d27
Revises: 9b4e2c7d1a58
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "a15e5a0c1d27"
down_revision = "9b4e2c7d1a58"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column: a plain ALTER TABLE on both engines (no table rebuild on SQLite).
    op.add_column("tickets", sa.Column("pauses", sa.JSON(), nullable=True))


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35+): rebuilding tickets would null bookings.ticket_id.
    op.drop_column("tickets", "pauses")
