"""Incremental resolution: the records published since the last pass, and the standardised frame.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "resolution_queue",
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("source_id", sa.String(255), nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("queued_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("system", "stream", "source_id", name="pk_resolution_queue"),
    )

    op.create_table(
        "resolution_frame",
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("source_id", sa.String(255), nullable=False),
        sa.Column("stamp", sa.String(120), nullable=False),
        sa.Column("row", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("system", "stream", "source_id", name="pk_resolution_frame"),
    )


def downgrade() -> None:
    op.drop_table("resolution_frame")
    op.drop_table("resolution_queue")
