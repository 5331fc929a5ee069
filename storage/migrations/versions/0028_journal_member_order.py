"""inbound_journal (from_user, id) index: a member's oldest waiting message is found by index, so a
replica never applies a member's later message while another replica applies an earlier one

Revision ID: 8c3f1a67e2b9
Revises: 5b7e2c91d4a0
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "8c3f1a67e2b9"
down_revision = "5b7e2c91d4a0"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_inbound_journal_member", "inbound_journal", ["from_user", "id"])


def downgrade() -> None:
    op.drop_index("ix_inbound_journal_member", table_name="inbound_journal")
