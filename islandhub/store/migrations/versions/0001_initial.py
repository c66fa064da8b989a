"""The first tables: runs, state, landing, source records, residents, lineage, quarantine, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("stream", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("pulled", sa.Integer, nullable=False),
        sa.Column("unchanged", sa.Integer, nullable=False),
        sa.Column("mapped", sa.Integer, nullable=False),
        sa.Column("quarantined", sa.Integer, nullable=False),
        sa.Column("published", sa.Integer, nullable=False),
        sa.Column("deleted", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("run_id", name="pk_runs"),
    )
    op.create_index("ix_runs_system_stream_started_at", "runs", ["system", "stream", "started_at"])
    op.create_table(
        "sync_state",
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("landed_seq", sa.BigInteger, nullable=False),
        sa.Column("published_seq", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("system", "stream", name="pk_sync_state"),
    )
    op.create_table(
        "sync_state_history",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sync_state_history"),
    )
    op.create_index(
        "ix_sync_state_history_system_stream_id", "sync_state_history", ["system", "stream", "id"]
    )
    op.create_table(
        "landing",
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("source_id", sa.String(255), nullable=False),
        sa.Column("content_hash", sa.String(32), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("landed_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("system", "stream", "source_id", name="pk_landing"),
    )
    op.create_index("ix_landing_system_stream_seq", "landing", ["system", "stream", "seq"])
    op.create_table(
        "source_records",
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("source_id", sa.String(255), nullable=False),
        sa.Column("fields", sa.Text, nullable=False),
        sa.Column("warnings", sa.Text, nullable=True),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("observed_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("system", "stream", "source_id", name="pk_source_records"),
    )
    op.create_table(
        "links",
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("source_id", sa.String(255), nullable=False),
        sa.Column("resident_id", sa.String(36), nullable=False),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("linked_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("system", "stream", "source_id", name="pk_links"),
    )
    op.create_index("ix_links_resident_id", "links", ["resident_id"])
    op.create_table(
        "resident_keys",
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("resident_id", sa.String(36), nullable=False),
        sa.PrimaryKeyConstraint("kind", "key", name="pk_resident_keys"),
    )
    op.create_index("ix_resident_keys_resident_id", "resident_keys", ["resident_id"])
    op.create_table(
        "residents",
        sa.Column("resident_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("merged_into", sa.String(36), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("resident_id", name="pk_residents"),
    )
    op.create_table(
        "resident_versions",
        sa.Column("resident_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("resident_id", "version", name="pk_resident_versions"),
    )
    op.create_table(
        "lineage",
        sa.Column("resident_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("fields", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("resident_id", "version", name="pk_lineage"),
    )
    op.create_table(
        "quarantine",
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("source_id", sa.String(255), nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("excerpt", sa.Text, nullable=True),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("quarantined_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("system", "stream", "source_id", name="pk_quarantine"),
    )
    op.create_table(
        "leases",
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("system", "stream", name="pk_leases"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("purpose", sa.String(255), nullable=False),
        sa.Column("resident_id", sa.String(36), nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_resident_id", "audit_log", ["resident_id"])


def downgrade() -> None:
    for table in (
        "audit_log",
        "leases",
        "quarantine",
        "lineage",
        "resident_versions",
        "residents",
        "resident_keys",
        "links",
        "source_records",
        "landing",
        "sync_state_history",
        "sync_state",
        "runs",
    ):
        op.drop_table(table)
