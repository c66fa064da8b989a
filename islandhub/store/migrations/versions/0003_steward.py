"""Steward decisions: merges, splits and pins a data steward made, with who and why.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "steward_decisions",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("resident_id", sa.String(36), nullable=False),
        sa.Column("other_resident_id", sa.String(36), nullable=True),
        sa.Column("records", sa.Text, nullable=True),
        sa.Column("apart", sa.Text, nullable=True),
        sa.Column("field", sa.String(128), nullable=True),
        sa.Column("value", sa.Text, nullable=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_steward_decisions"),
    )
    op.create_index("ix_steward_decisions_resident_id", "steward_decisions", ["resident_id"])
    op.create_index("ix_steward_decisions_kind_active", "steward_decisions", ["kind", "active"])


def downgrade() -> None:
    op.drop_table("steward_decisions")
