"""National ids sealed at rest: the key's fingerprint, and every stored national id sealed.

A store written before this revision holds national ids in clear (payloads, mapped fields,
golden records, lineage, pushes, steward decisions, HETU-shaped source ids) and indexes
them by an unkeyed hash. Upgrading seals them all with the process's national-id key
(ISLANDHUB_NATIONAL_ID_KEY, or the project's development key), rebuilds the index with the
keyed hash, and records the key's fingerprint; it reads and may rewrite every row, once.
The downgrade puts everything back in clear (with the same key) and drops the fingerprint.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    from islandhub.store import sealing

    op.create_table(
        "sealing_keys",
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("sealed_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("purpose", name="pk_sealing_keys"),
    )
    sealing.seal_clear_store(op.get_bind())


def downgrade() -> None:
    from islandhub.store import sealing

    bind = op.get_bind()
    sealing.open_sealed_store(bind, bind.engine.url.render_as_string(hide_password=True))
    op.drop_table("sealing_keys")
