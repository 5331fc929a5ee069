"""computer_issues: kind, receipt check, returns; loan_damages (issue 14: loans and returns)

Revision ID: 4deba65a9f2a
Revises: a21c7e3f9b14
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "4deba65a9f2a"
down_revision = "a21c7e3f9b14"
branch_labels = None
depends_on = None


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    when = storage.models.UTCDateTime(timezone=True)
    # Plain ALTER TABLE … ADD COLUMN on both engines: computer_issues is referenced (loan_damages).
    op.add_column("computer_issues", sa.Column("kind", sa.String(length=16), server_default="computer", nullable=False))
    op.add_column("computer_issues", sa.Column("receipt", sa.JSON(), nullable=True))
    op.add_column("computer_issues", sa.Column("returns", sa.JSON(), nullable=True))
    op.add_column("computer_issues", sa.Column("return_announced_at", when, nullable=True))
    op.create_table(
        "loan_damages",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("issue_id", big_id, nullable=False),
        sa.Column("asset_id", big_id, nullable=False),
        sa.Column("ticket_id", big_id, nullable=True),
        sa.Column("liable_user", sa.String(length=64), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("answer_note", sa.Text(), nullable=False),
        sa.Column("answered_at", when, nullable=True),
        sa.Column("paid_at", when, nullable=True),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.ForeignKeyConstraint(
            ["issue_id"], ["computer_issues.id"], name="fk_loan_damages_issue_id_computer_issues", ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.id"], name="fk_loan_damages_asset_id_assets", ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_loan_damages_issue", "loan_damages", ["issue_id"])


def downgrade() -> None:
    op.drop_index("ix_loan_damages_issue", table_name="loan_damages")
    op.drop_table("loan_damages")
    op.drop_column("computer_issues", "return_announced_at")  # ALTER TABLE … DROP COLUMN, no rebuild
    op.drop_column("computer_issues", "returns")
    op.drop_column("computer_issues", "receipt")
    op.drop_column("computer_issues", "kind")
