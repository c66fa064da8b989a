"""Erasure on a resident's request: ask every island first, delete only if none refuses.

The pattern of Helsinki's open-city-profile GDPR API: a dry run against every island that
can delete; a refusal (an open case, an unpaid invoice, an upcoming signup: GDPR art.
17(3)(b)) stops the whole erasure before anything is deleted anywhere. When all allow, the
islands delete, then the hub deletes everything it holds on the person in one transaction
and leaves a tombstone for each record its island still holds (no deletion interface, or
the delete failed), so the next sync does not bring the person back.

The audit log keeps the request (who, when, why, what was deleted where): the law on
information management (906/2019) requires the log to outlive the data.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from connectors.base import Connector, ErasureAnswer
from islandhub.config import Project, SystemConfig
from islandhub.errors import HubError, SourceError
from islandhub.ids import uuid7
from islandhub.privacy.crypto import try_unseal
from islandhub.residents import (
    Reader,
    audit,
    find_by_national_id,
    follow_redirects,
    merged_family,
)
from islandhub.store.bulk import insert_rows, member_of, timestamp
from islandhub.store.db import Store, now
from islandhub.store.tables import (
    landing,
    lineage,
    links,
    outbox,
    quarantine,
    record_references,
    resident_keys,
    resident_versions,
    residents,
    resolution_frame,
    resolution_keys,
    resolution_queue,
    source_records,
    steward_decisions,
    tombstones,
)

UNREACHABLE = "UNREACHABLE"


@dataclass
class IslandOutcome:
    """One island stream's part in an erasure: its records and what it answered."""

    system: str
    stream: str
    source_ids: list[str]
    supported: bool = True
    allowed: bool = True
    errors: list[dict[str, Any]] = field(default_factory=list)
    erased: int = 0
    tombstoned: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The outcome as JSON (the CLI's --json and the audit log's detail)."""
        return {
            "system": self.system,
            "stream": self.stream,
            "records": len(self.source_ids),
            "supported": self.supported,
            "allowed": self.allowed,
            "errors": self.errors,
            "erased_in_island": self.erased,
            "tombstoned": self.tombstoned,
        }


@dataclass
class ErasureReport:
    """What an erasure (or its dry run) found and did."""

    erasure_id: str
    resident_id: str | None
    dry_run: bool
    islands: list[IslandOutcome]
    erased_in_hub: dict[str, int] = field(default_factory=dict)

    @property
    def refused(self) -> bool:
        """Whether any island refused (then nothing is deleted anywhere)."""
        return any(not island.allowed for island in self.islands)

    @property
    def done(self) -> bool:
        """Whether the hub erased its copy."""
        return bool(self.erased_in_hub)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON."""
        return {
            "erasure_id": self.erasure_id,
            "resident_id": self.resident_id,
            "dry_run": self.dry_run,
            "found": self.resident_id is not None,
            "allowed": not self.refused,
            "erased": self.done,
            "islands": [island.as_dict() for island in self.islands],
            "erased_in_hub": self.erased_in_hub,
        }


def erase(
    project: Project,
    store: Store,
    reader: Reader,
    *,
    national_id: str | None = None,
    resident_id: str | None = None,
    dry_run: bool,
    connect: Callable[[SystemConfig], Connector] | None = None,
) -> ErasureReport:
    """Erase one resident everywhere, or (dry_run) tell whether every island would allow it.

    `connect` makes a system's connector (default: from the project, secrets from the
    environment); the demo passes its running islands' connections.
    """
    erasure_id = uuid7()
    with store.begin() as conn:
        rid = (
            find_by_national_id(conn, national_id)
            if national_id
            else follow_redirects(conn, str(resident_id))
        )
        action = "erase-dry-run" if dry_run else "erase-request"
        audit(conn, reader, action, rid, {"erasure_id": erasure_id, "found": rid is not None})
        family = merged_family(conn, rid) if rid else []
        records = _records_of(conn, family)
    report = ErasureReport(erasure_id, rid, dry_run, [])
    if rid is None:
        return report
    report.islands = [IslandOutcome(s, t, ids) for (s, t), ids in sorted(records.items())]
    connect = connect or (lambda config: _connector(project, config))
    for island in report.islands:
        _ask(project, connect, island, dry_run=True)
    if dry_run or report.refused:
        return report
    for island in report.islands:
        if island.supported:
            _ask(project, connect, island, dry_run=False)
    with store.begin() as conn:
        report.erased_in_hub = _erase_in_hub(conn, family, report)
        audit(conn, reader, "erase", rid, report.as_dict())
    return report


def _connector(project: Project, config: SystemConfig) -> Connector:
    from islandhub.pipeline import make_connector

    return make_connector(project, config)


def _ask(
    project: Project,
    connect: Callable[[SystemConfig], Connector],
    island: IslandOutcome,
    *,
    dry_run: bool,
) -> None:
    """Put the question to the island; an island that cannot answer refuses (for now)."""
    config = project.systems.get(island.system)
    if config is None or island.stream not in config.streams:
        island.supported = False  # no longer configured: nothing to ask, the tombstone guards
        return
    # The store keys a register record by its sealed HETU; the island knows it in clear.
    ids = [try_unseal(sid) for sid in island.source_ids]
    try:
        answer = connect(config).erase(island.stream, ids, dry_run=dry_run)
    except (SourceError, HubError) as exc:
        answer = ErasureAnswer(
            allowed=False, errors=({"code": UNREACHABLE, "message": _same(str(exc))},)
        )
    island.supported = answer.supported
    island.allowed = answer.allowed
    island.errors = list(answer.errors)
    island.erased = answer.erased


def _same(text: str) -> dict[str, str]:
    return {"fi": text, "sv": text, "en": text}


def _records_of(conn: Connection, family: list[str]) -> dict[tuple[str, str], list[str]]:
    grouped: dict[tuple[str, str], list[str]] = defaultdict(list)
    if not family:
        return grouped
    query = (
        sa.select(links.c.system, links.c.stream, links.c.source_id)
        .where(member_of(conn, links.c.resident_id, family))
        .order_by(links.c.system, links.c.stream, links.c.source_id)
    )
    for row in conn.execute(query):
        grouped[(row.system, row.stream)].append(row.source_id)
    return grouped


def _erase_in_hub(conn: Connection, family: list[str], report: ErasureReport) -> dict[str, int]:
    """Delete everything the hub holds on the person; tombstone what islands still hold."""
    counts: dict[str, int] = {}
    stamp = now()
    held_elsewhere = []
    for island in report.islands:
        # The queue and the matching frame name the records too (the frame holds their data),
        # and so do the ids of other islands' records the person's records held.
        for table in (
            landing,
            source_records,
            record_references,
            quarantine,
            links,
            resolution_queue,
            resolution_frame,
            resolution_keys,
        ):
            where = sa.and_(
                table.c.system == island.system,
                table.c.stream == island.stream,
                member_of(conn, table.c.source_id, island.source_ids),
            )
            deleted = conn.execute(table.delete().where(where)).rowcount
            counts[table.name] = counts.get(table.name, 0) + int(deleted or 0)
        if not (island.supported and island.erased >= len(island.source_ids)):
            held_elsewhere += [(island.system, island.stream, sid) for sid in island.source_ids]
            island.tombstoned = len(island.source_ids)
    at = timestamp(conn, stamp)
    insert_rows(
        conn,
        tombstones,
        ("system", "stream", "source_id", "erasure_id", "erased_at"),
        [(*row, report.erasure_id, at) for row in held_elsewhere],
        upsert_on=("system", "stream", "source_id"),
    )
    counts["tombstones"] = len(held_elsewhere)
    for table in (resident_versions, lineage, resident_keys, outbox, steward_decisions):
        deleted = conn.execute(
            table.delete().where(member_of(conn, table.c.resident_id, family))
        ).rowcount
        counts[table.name] = int(deleted or 0)
    # The resident ids stay (inactive, no record): redirects and the audit log refer to them.
    conn.execute(
        residents.update()
        .where(member_of(conn, residents.c.resident_id, family))
        .values(active=False, updated_at=stamp)
    )
    counts["residents"] = len(family)
    return counts
