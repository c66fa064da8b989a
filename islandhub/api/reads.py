"""The API's hottest read, a resident by id: `residents.show` with its statements built once.

`show` builds its SQLAlchemy statements on every call; at hundreds of reads a second that
construction (and its cache-key walk) was half of a read's CPU in benchmarks/api_load.py. This
is the same read: same redirects, same audit row, same `present`, same answer, with prepared
statements. tests/api/test_reads.py holds the two to each other, so they cannot drift apart.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from islandhub.residents import MAX_REDIRECTS, Reader, present
from islandhub.resolve.golden import expand_lineage
from islandhub.store.db import Store, as_utc, dumps, loads, now
from islandhub.store.tables import audit_log, lineage, resident_versions, residents

_RID: sa.BindParameter[str] = sa.bindparam("rid")
# The resident row with its current version and lineage in one statement (outer joins: an id
# erased on request, or merged away, has a row and no current version here).
_CURRENT = (
    sa.select(residents, resident_versions.c.record, lineage.c.fields)
    .select_from(
        residents.outerjoin(
            resident_versions,
            sa.and_(
                residents.c.resident_id == resident_versions.c.resident_id,
                residents.c.version == resident_versions.c.version,
            ),
        ).outerjoin(
            lineage,
            sa.and_(
                lineage.c.resident_id == residents.c.resident_id,
                lineage.c.version == residents.c.version,
            ),
        )
    )
    .where(residents.c.resident_id == _RID)
)
_MERGED_INTO = sa.select(residents.c.merged_into).where(residents.c.resident_id == _RID)
_AUDIT = audit_log.insert()


def read_resident(store: Store, reader: Reader, resident_id: str) -> dict[str, Any] | None:
    """What `show(store, reader, resident_id=...)` answers, audited the same way.

    The usual case (an id that was never merged) is two statements and a commit: the row
    with its record, and the audit row; round trips are most of a read on PostgreSQL.
    """
    with store.begin() as conn:
        row = conn.execute(_CURRENT, {"rid": resident_id}).one_or_none()
        rid = resident_id if row is not None else None
        if row is not None and row.merged_into is not None:
            # The first hop is taken; show() allows MAX_REDIRECTS in all.
            rid = _follow_redirects(conn, row.merged_into, MAX_REDIRECTS - 1)
            row = conn.execute(_CURRENT, {"rid": rid}).one_or_none() if rid else None
        conn.execute(
            _AUDIT,
            {
                "at": now(),
                "actor": reader.actor,
                "action": "read",
                "purpose": reader.purpose,
                "resident_id": rid,
                "detail": dumps({"by": "resident_id", "found": rid is not None}),
            },
        )
    if rid is None or row is None or row.record is None:
        return None  # unknown; or erased on the resident's request (the id remains)
    return {
        "resident_id": rid,
        "requested_id": resident_id if resident_id != rid else None,
        "version": row.version,
        "active": row.active,
        "updated_at": as_utc(row.updated_at).isoformat(),
        "record": present(loads(row.record)),
        "lineage": expand_lineage(loads(row.fields)),
    }


def _follow_redirects(conn: sa.Connection, resident_id: str, hops: int) -> str | None:
    current: str | None = resident_id
    for _ in range(hops):
        found = conn.execute(_MERGED_INTO, {"rid": current}).one_or_none()
        if found is None:
            return None
        if found.merged_into is None:
            return current
        current = found.merged_into
    return current
