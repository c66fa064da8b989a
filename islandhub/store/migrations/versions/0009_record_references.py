"""Known cross-system ids: the records of other islands that a source record refers to.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-11
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Filled by landing from the mappings' `references:` sections; a store from before has
    # none until its islands are synced or remapped with such a mapping.
    op.create_table(
        "record_references",
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("source_id", sa.String(255), nullable=False),
        sa.Column("ref_system", sa.String(64), nullable=False),
        sa.Column("ref_stream", sa.String(64), nullable=False),
        sa.Column("ref_source_id", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint(
            "system",
            "stream",
            "source_id",
            "ref_system",
            "ref_stream",
            name="pk_record_references",
        ),
    )
    op.create_index(
        "ix_record_references_ref_system_ref_stream_ref_source_id",
        "record_references",
        ["ref_system", "ref_stream", "ref_source_id"],
    )


def downgrade() -> None:
    op.drop_index(
        "ix_record_references_ref_system_ref_stream_ref_source_id", table_name="record_references"
    )
    op.drop_table("record_references")
