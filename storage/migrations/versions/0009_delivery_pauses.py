"""delivery_pauses: configuration errors pause delivery for their cause instead of failing rows

Revision ID: d41a7e05c3b9
Revises: 0c5e2d7a9b41
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "d41a7e05c3b9"
down_revision = "0c5e2d7a9b41"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_pauses",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("cause", sa.String(length=200), nullable=False),
        sa.Column("errcode", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("since", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("probes", sa.Integer(), nullable=False),
        sa.Column("last_probe_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("next_probe_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("notified", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("uq_delivery_pauses_cause", "delivery_pauses", ["cause"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_delivery_pauses_cause", table_name="delivery_pauses")
    op.drop_table("delivery_pauses")
