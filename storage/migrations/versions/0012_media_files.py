"""media_files: photos and files kept past WeCom's 3-day temporary media

Revision ID: 3c7e9a1d5b24
Revises: 8a3d5c1f7e92
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "3c7e9a1d5b24"
down_revision = "8a3d5c1f7e92"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "media_files",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("media_id", sa.String(length=256), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("created_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("fetched_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("fetch_call_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("upload_media_id", sa.String(length=256), nullable=True),
        sa.Column("uploaded_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("shown", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_media_files_subject", "media_files", ["subject"])
    op.create_index("ix_media_files_fetch_call_id", "media_files", ["fetch_call_id"])


def downgrade() -> None:
    op.drop_index("ix_media_files_fetch_call_id", table_name="media_files")
    op.drop_index("ix_media_files_subject", table_name="media_files")
    op.drop_table("media_files")
