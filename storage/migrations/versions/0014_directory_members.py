"""directory_members: the organisation as WeCom's directory lists it

Revision ID: 9b4e2c7d1a58
Revises: 5d2b8f4a9c61
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "9b4e2c7d1a58"
down_revision = "5d2b8f4a9c61"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "directory_members",
        sa.Column("userid", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("departments", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("synced_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("left_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("userid"),
    )


def downgrade() -> None:
    op.drop_table("directory_members")
