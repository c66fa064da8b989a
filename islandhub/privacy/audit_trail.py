"""The audit log of one resident, as the data protection officer reads it: who, when, why.

Unlike the subject access export (dates and purposes only), this view names the actors:
it is for the controller's own supervision of use (Act 906/2019 section 17). Reading it is
itself audited.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from islandhub.privacy.masking import mask_text
from islandhub.residents import Reader, audit, merged_family
from islandhub.store.bulk import member_of
from islandhub.store.db import Store, as_utc
from islandhub.store.tables import audit_log


def trail(
    store: Store, reader: Reader, resident_id: str, *, limit: int = 200
) -> list[dict[str, Any]]:
    """The newest `limit` entries about the resident (and residents merged into them)."""
    with store.begin() as conn:
        family = merged_family(conn, resident_id)
        rows = conn.execute(
            sa.select(audit_log)
            .where(member_of(conn, audit_log.c.resident_id, family))
            .order_by(audit_log.c.at.desc(), audit_log.c.id.desc())
            .limit(limit)
        ).all()
        audit(conn, reader, "audit-read", resident_id, {"entries": len(rows)})
    return [
        {
            "at": as_utc(row.at).isoformat(),
            "actor": row.actor,
            "action": row.action,
            "purpose": row.purpose,
            "resident_id": row.resident_id,
            "detail": mask_text(row.detail or ""),
        }
        for row in rows
    ]
