"""Data quality: the result of every validated batch and cross-system check (dq_results).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "dq_results",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(36), nullable=True),
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("stream", sa.String(64), nullable=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("suite", sa.String(128), nullable=False),
        sa.Column("validated_at", TS, nullable=False),
        sa.Column("batch_size", sa.Integer, nullable=False),
        sa.Column("success", sa.Boolean, nullable=False),
        sa.Column("scores", sa.Text, nullable=False),
        sa.Column("results", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dq_results"),
    )
    op.create_index("ix_dq_results_system_validated_at", "dq_results", ["system", "validated_at"])


def downgrade() -> None:
    op.drop_table("dq_results")
