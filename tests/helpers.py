"""Helpers shared by the integration tests: running the engine on a project, reading the store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from islandhub.config import Project, load_project
from islandhub.pipeline import StreamResult, sync
from islandhub.store import Store, open_store
from islandhub.store.tables import (
    landing,
    links,
    quarantine,
    resident_versions,
    residents,
    source_records,
    sync_state,
)

CHECKSUM = "0123456789ABCDEFHJKLMNPRSTUVWXY"


def hetu(day: int, month: int, year: int, individual: int, sign: str | None = None) -> str:
    """A valid HETU for a birth date and individual number (sign from the century if not given)."""
    if sign is None:
        sign = {18: "+", 19: "-", 20: "A"}[year // 100]
    digits = f"{day:02d}{month:02d}{year % 100:02d}"
    return f"{digits}{sign}{individual:03d}{CHECKSUM[int(f'{digits}{individual:03d}') % 31]}"


def load(root: Path, store_url: str, monkeypatch: Any) -> tuple[Project, Store]:
    """Load the project with its store pointed at `store_url`."""
    monkeypatch.setenv("ISLANDHUB_STORE_URL", store_url)
    project = load_project(root)
    return project, open_store(project.hub.store_url)


def run_all(project: Project, store: Store, **kwargs: Any) -> list[StreamResult]:
    """Sync every system of the project."""
    return sync(project, store, sorted(project.systems), **kwargs)


def assert_counts_add_up(results: list[StreamResult]) -> None:
    """pulled = unchanged + mapped + quarantined, for every run."""
    for r in results:
        assert r.pulled == r.unchanged + r.mapped + r.quarantined, r


def snapshot(store: Store) -> dict[str, Any]:
    """Everything a run leaves in the store, independent of minted ids and timestamps."""
    with store.connect() as conn:
        land = {
            (r.system, r.stream, r.source_id): (r.content_hash, r.status)
            for r in conn.execute(sa.select(landing))
        }
        mapped = {
            (r.system, r.stream, r.source_id): json.loads(r.fields)
            for r in conn.execute(sa.select(source_records))
        }
        quarantined = {
            (r.system, r.stream, r.source_id): json.loads(r.reasons)
            for r in conn.execute(sa.select(quarantine))
        }
        states = {
            (r.system, r.stream): json.loads(r.state) for r in conn.execute(sa.select(sync_state))
        }
        groups: dict[str, set[tuple[str, str, str]]] = {}
        for r in conn.execute(sa.select(links)):
            groups.setdefault(r.resident_id, set()).add((r.system, r.stream, r.source_id))
        golden = {}
        current = (
            sa.select(residents.c.resident_id, resident_versions.c.record)
            .join(
                resident_versions,
                sa.and_(
                    resident_versions.c.resident_id == residents.c.resident_id,
                    resident_versions.c.version == residents.c.version,
                ),
            )
            .where(residents.c.active.is_(True))
        )
        for r in conn.execute(current):
            record = json.loads(r.record)
            record.pop("resident_id")
            golden[frozenset(groups.get(r.resident_id, set()))] = record
        resident_count = conn.execute(
            sa.select(sa.func.count()).select_from(residents)
        ).scalar_one()
    return {
        "landing": land,
        "source_records": mapped,
        "quarantine": quarantined,
        "sync_state": states,
        "clusters": sorted(sorted(g) for g in groups.values()),
        "golden": golden,
        "residents": resident_count,
    }
