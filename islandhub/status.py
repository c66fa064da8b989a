"""The hub at a glance for ICT staff: every island's streams, last runs, quarantine, residents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from islandhub.config import Project
from islandhub.store.db import Store, as_utc
from islandhub.store.tables import is_current, landing, quarantine, residents, runs


def _iso(value: datetime | None) -> str | None:
    return as_utc(value).isoformat() if value else None


def hub_status(project: Project, store: Store) -> dict[str, Any]:
    """Plain data: per system and stream the last run and what sits in the store."""
    with store.connect() as conn:
        last_runs = _last_runs(conn)
        landed = _count_by_stream(conn, landing)
        quarantined = _count_by_stream(conn, quarantine)
        active = conn.execute(
            sa.select(sa.func.count()).select_from(residents).where(is_current())
        ).scalar_one()
    systems = []
    for system_id, system in sorted(project.systems.items()):
        streams = []
        for name in system.streams:
            key = (system_id, name)
            streams.append(
                {
                    "stream": name,
                    "last_run": last_runs.get(key),
                    "records": landed.get(key, 0),
                    "quarantined": quarantined.get(key, 0),
                }
            )
        systems.append(
            {
                "system": system_id,
                "title": system.title,
                "owner": system.owner,
                "connector": system.connector,
                "schedule": system.schedule,
                "streams": streams,
            }
        )
    return {"systems": systems, "residents": {"active": active}}


def _last_runs(conn: sa.Connection) -> dict[tuple[str, str], dict[str, Any]]:
    newest = (
        sa.select(runs.c.system, runs.c.stream, sa.func.max(runs.c.started_at).label("started_at"))
        .group_by(runs.c.system, runs.c.stream)
        .subquery()
    )
    query = sa.select(runs).join(
        newest,
        sa.and_(
            runs.c.system == newest.c.system,
            runs.c.stream == newest.c.stream,
            runs.c.started_at == newest.c.started_at,
        ),
    )
    found = {}
    for row in conn.execute(query):
        found[(row.system, row.stream)] = {
            "run_id": row.run_id,
            "status": row.status,
            "started_at": _iso(row.started_at),
            "finished_at": _iso(row.finished_at),
            "pulled": row.pulled,
            "unchanged": row.unchanged,
            "mapped": row.mapped,
            "quarantined": row.quarantined,
            "published": row.published,
            "deleted": row.deleted,
            "error": row.error,
        }
    return found


def _count_by_stream(conn: sa.Connection, table: sa.Table) -> dict[tuple[str, str], int]:
    query = sa.select(table.c.system, table.c.stream, sa.func.count()).group_by(
        table.c.system, table.c.stream
    )
    return {(system, stream): count for system, stream, count in conn.execute(query)}
