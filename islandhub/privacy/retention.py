"""Retention: each island's data is kept only as long as its system file says.

`retention:` in config/systems/<system>.yaml (days):

- `raw_payload_days`: landed raw payloads older than this are cleared. The content hash
  stays, so an unchanged record is still recognised and not landed again; the mapped
  fields stay, so the golden record does not change. (Remap skips cleared records.)
- `quarantine_days`: quarantined records older than this are deleted with their payloads.
- `anonymise_after_days`: records observed longer ago than this are anonymised: unlinked
  from their resident (whose golden record is rebuilt without them), mapped fields (with
  the ids of other islands' records they held) and payload removed. The landing row keeps
  only its hash and the status `anonymised`, so the same record is not taken in again; a
  changed one is a new observation.

Run by `islandhub retention [--dry-run]` and daily by the `islandhub__retention` DAG.
Every step for one island is one transaction; each action is written to the audit log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from islandhub.config import Project
from islandhub.ids import uuid7
from islandhub.residents import Reader, audit
from islandhub.resolve import references as refs
from islandhub.resolve.publish import Pending, publish
from islandhub.store.bulk import member_of
from islandhub.store.db import Store, now
from islandhub.store.tables import (
    landing,
    quarantine,
    resolution_frame,
    resolution_keys,
    source_records,
)

CHUNK = 5000
RETENTION_READER = Reader("islandhub retention", "retention period of the island's data")


@dataclass
class RetentionResult:
    """What retention did (or, on a dry run, would do) to one island."""

    system: str
    payloads_cleared: int = 0
    quarantine_deleted: int = 0
    anonymised: int = 0
    residents_rebuilt: int = 0
    rules: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON."""
        return dict(self.__dict__)


def enforce(
    project: Project,
    store: Store,
    *,
    systems: Sequence[str] | None = None,
    dry_run: bool = False,
    at: datetime | None = None,
) -> list[RetentionResult]:
    """Apply every configured retention rule (of the named systems); returns what it did."""
    moment = at or now()
    results = []
    for name in sorted(systems or project.systems):
        config = project.systems[name]
        if not config.retention:
            continue
        result = RetentionResult(name, rules=dict(config.retention))
        try:
            with store.begin() as conn:
                _apply(conn, project, result, moment)
                if dry_run:
                    raise _DryRun  # counted by doing it; rolled back, nothing changes
                audit(conn, RETENTION_READER, "retention", None, result.as_dict())
        except _DryRun:
            pass
        results.append(result)
    return results


class _DryRun(Exception):
    """Raised inside a dry run's transaction to roll it back."""


def _apply(conn: Connection, project: Project, result: RetentionResult, moment: datetime) -> None:
    rules, system = result.rules, result.system
    if "anonymise_after_days" in rules:
        cutoff = moment - timedelta(days=int(rules["anonymise_after_days"]))
        result.anonymised, result.residents_rebuilt = _anonymise(conn, project, system, cutoff)
    if "quarantine_days" in rules:
        cutoff = moment - timedelta(days=int(rules["quarantine_days"]))
        result.quarantine_deleted = _expire_quarantine(conn, system, cutoff)
    if "raw_payload_days" in rules:
        cutoff = moment - timedelta(days=int(rules["raw_payload_days"]))
        cleared = conn.execute(
            landing.update()
            .where(landing.c.system == system, landing.c.landed_at < cutoff)
            .where(landing.c.payload != "")
            .values(payload="")
        )
        result.payloads_cleared = int(cleared.rowcount or 0)


def _expire_quarantine(conn: Connection, system: str, cutoff: datetime) -> int:
    expired = conn.execute(
        sa.select(quarantine.c.stream, quarantine.c.source_id).where(
            quarantine.c.system == system, quarantine.c.quarantined_at < cutoff
        )
    ).all()
    for stream in sorted({row.stream for row in expired}):
        ids = [row.source_id for row in expired if row.stream == stream]
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            for table in (quarantine, landing):
                statement = (
                    table.delete()
                    if table is quarantine
                    else table.update().values(payload="").where(table.c.status == "quarantined")
                )
                conn.execute(
                    statement.where(
                        table.c.system == system,
                        table.c.stream == stream,
                        member_of(conn, table.c.source_id, chunk),
                    )
                )
    return len(expired)


def _anonymise(
    conn: Connection, project: Project, system: str, cutoff: datetime
) -> tuple[int, int]:
    """Unlink and strip records observed before the cutoff; rebuild their residents."""
    old = conn.execute(
        sa.select(source_records.c.stream, source_records.c.source_id).where(
            source_records.c.system == system, source_records.c.observed_at < cutoff
        )
    ).all()
    if not old:
        return 0, 0
    run_id, stamp = uuid7(), cutoff.isoformat()
    rebuilt = 0
    for stream in sorted({row.stream for row in old}):
        ids = [row.source_id for row in old if row.stream == stream]
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            # As if the island had deleted them: links go, residents are rebuilt or retired.
            gone = [Pending(sid, None, stamp, run_id, 0) for sid in chunk]
            rebuilt += publish(conn, system, stream, gone, project.hub.priority, run_id)
            where = (
                source_records.c.system == system,
                source_records.c.stream == stream,
                member_of(conn, source_records.c.source_id, chunk),
            )
            conn.execute(source_records.delete().where(*where))
            refs.remove(conn, system, stream, chunk)  # the ids of others it held go with it
            # The matching frame keeps a standardised copy of each record and the hashes of
            # its values (its keys): they go too.
            for kept in (resolution_frame, resolution_keys):
                conn.execute(
                    kept.delete().where(
                        kept.c.system == system,
                        kept.c.stream == stream,
                        member_of(conn, kept.c.source_id, chunk),
                    )
                )
            conn.execute(
                landing.update()
                .where(
                    landing.c.system == system,
                    landing.c.stream == stream,
                    member_of(conn, landing.c.source_id, chunk),
                )
                .values(payload="", status="anonymised")
            )
    return len(old), rebuilt
