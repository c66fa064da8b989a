"""A resident's activities across the islands: bookings, cases, signups (streams with `activity:`).

Reads only the streams marked as activities (docs/privacy.md), through the resident and
everyone merged into them, and reads each record's date and title the way the subject
access export does, so the two never disagree.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from islandhub.config import Project
from islandhub.privacy.access import _activity as activity_of
from islandhub.residents import Reader, audit, follow_redirects, merged_family
from islandhub.store.bulk import member_of
from islandhub.store.db import Store, loads
from islandhub.store.tables import landing, links, residents, same_source


def resident_activities(
    project: Project, store: Store, reader: Reader, resident_id: str
) -> dict[str, Any] | None:
    """The resident's activities, newest first; None when no such resident (audited)."""
    streams = [
        (system_id, name)
        for system_id, system in sorted(project.systems.items())
        for name, stream in system.streams.items()
        if stream.activity
    ]
    with store.begin() as conn:
        rid = follow_redirects(conn, resident_id)
        active = (
            rid is not None
            and conn.execute(
                sa.select(residents.c.active).where(residents.c.resident_id == rid)
            ).scalar_one()
        )
        audit(conn, reader, "activities", rid, {"found": bool(active)})
        if not active or rid is None:
            return None  # unknown, or erased on the resident's request
        family = merged_family(conn, rid)
        rows = conn.execute(_query(conn, family, streams)).all() if streams else []
    found = [activity_of(project, _source(project, row)) for row in rows]
    activities = [a for a in found if a is not None]
    activities.sort(key=lambda a: a["date"] or "", reverse=True)
    return {"resident_id": rid, "activities": activities}


def _query(conn: sa.Connection, family: list[str], streams: list[tuple[str, str]]) -> sa.Select:
    of_activity_streams = sa.or_(
        *(sa.and_(links.c.system == s, links.c.stream == t) for s, t in streams)
    )
    return (
        sa.select(links.c.system, links.c.stream, links.c.source_id, landing.c.payload)
        .select_from(links.join(landing, same_source(links, landing)))
        .where(member_of(conn, links.c.resident_id, family), of_activity_streams)
        .order_by(links.c.system, links.c.stream, links.c.source_id)
    )


def _source(project: Project, row: Any) -> dict[str, Any]:
    config = project.systems.get(row.system)
    return {
        "system": row.system,
        "system_title": dict(config.title) if config else {},
        "stream": row.stream,
        "source_id": row.source_id,
        # Cleared by retention after its period: date and title are then unknown.
        "payload": loads(row.payload) if row.payload else None,
    }
