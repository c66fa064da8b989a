"""Identity resolution: trained Splink models (resolution_models).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "resolution_models",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("trained_at", TS, nullable=False),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("record_count", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_resolution_models"),
    )


def downgrade() -> None:
    op.drop_table("resolution_models")
