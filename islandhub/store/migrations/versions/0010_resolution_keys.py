"""The kept frame's keys and marks, so an incremental pass reads by key what changed.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Empty until the next resolution pass: the frame's rows of older stores carry an
    # older stamp, so that pass standardises every record again and writes their keys.
    op.create_table(
        "resolution_keys",
        sa.Column("key", sa.BigInteger(), nullable=False),
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("source_id", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("key", "system", "stream", "source_id", name="pk_resolution_keys"),
    )
    op.create_index(
        "ix_resolution_keys_system_stream_source_id",
        "resolution_keys",
        ["system", "stream", "source_id"],
    )
    op.create_table(
        "resolution_marks",
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("stamp", sa.String(120), nullable=False),
        sa.PrimaryKeyConstraint("system", "stream", name="pk_resolution_marks"),
    )


def downgrade() -> None:
    op.drop_table("resolution_marks")
    op.drop_index("ix_resolution_keys_system_stream_source_id", table_name="resolution_keys")
    op.drop_table("resolution_keys")
