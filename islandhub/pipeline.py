"""One stream's run: extract -> land -> map -> (check) -> resolve -> publish.

Each batch is landed and mapped in one transaction together with the stream's new state,
so a crash loses nothing and doubles nothing: the next run resumes after the last committed
batch, first finishing what was landed but not yet published. Unchanged records (same
content hash) are skipped. Counts always add up: pulled = unchanged + mapped + quarantined.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from connectors.base import Batch, Connector, StreamSpec
from connectors.registry import connector_class
from islandhub import secrets
from islandhub.config import Project, StreamConfig, SystemConfig
from islandhub.errors import ConfigError, Problem, RunFailed, SourceError
from islandhub.ids import uuid7
from islandhub.mapping import Mapping
from islandhub.privacy.masking import mask_text
from islandhub.resolve.publish import Pending, pending_records, publish
from islandhub.store import lease
from islandhub.store.bulk import insert_rows, member_of, timestamp
from islandhub.store.db import Store, dumps, now
from islandhub.store.tables import (
    landing,
    quarantine,
    runs,
    source_records,
    sync_state,
    sync_state_history,
)

Progress = Callable[[str, dict[str, Any]], None]
SOURCE_KEY = ("system", "stream", "source_id")
LANDING_COLUMNS = (*SOURCE_KEY, "content_hash", "payload", "status", "seq", "run_id", "landed_at")
SOURCE_RECORD_COLUMNS = (*SOURCE_KEY, "fields", "warnings", "run_id", "observed_at")
QUARANTINE_COLUMNS = (*SOURCE_KEY, "reasons", "excerpt", "run_id", "quarantined_at")
EXCERPT_CHARS = 200


@dataclass
class StreamResult:
    """What one run of one stream did; the counts add up."""

    system: str
    stream: str
    run_id: str
    status: str = "running"
    pulled: int = 0
    unchanged: int = 0
    mapped: int = 0
    quarantined: int = 0
    published: int = 0
    deleted: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain data for --json output."""
        return asdict(self)


class StreamFailed(RunFailed):
    """A stream's run failed at its source; the result says how far it came."""

    def __init__(self, result: StreamResult) -> None:
        super().__init__(f"{result.system}.{result.stream}: {result.error}")
        self.result = result


def _quiet(_event: str, _data: dict[str, Any]) -> None:
    return None


def make_connector(
    project: Project, system: SystemConfig, lookup: secrets.Lookup = secrets.from_environment
) -> Connector:
    """Instantiate the system's connector kind, its secrets resolved."""
    cls = connector_class(system.connector)
    streams = {name: StreamSpec(name, s.options) for name, s in system.streams.items()}
    connection = secrets.resolve(system.connection, lookup)
    return cls(system.system, connection, streams, root=project.root)


def sync(
    project: Project,
    store: Store,
    systems: Sequence[str],
    *,
    stream: str | None = None,
    full_refresh: bool = False,
    progress: Progress = _quiet,
) -> list[StreamResult]:
    """Sync every stream of each named system.

    A failing island does not stop the others: its result says `failed` and the rest of its
    streams are left for the next run. Unknown systems or streams are bad input and fail
    before anything runs.
    """
    plan = _plan(project, systems, stream)
    results: list[StreamResult] = []
    for system, names in plan:
        connector = make_connector(project, system)
        for name in names:
            try:
                results.append(
                    sync_stream(
                        project,
                        store,
                        connector,
                        system,
                        system.streams[name],
                        full_refresh=full_refresh,
                        progress=progress,
                    )
                )
            except StreamFailed as exc:
                results.append(exc.result)
                break
    return results


def _plan(
    project: Project, systems: Sequence[str], stream: str | None
) -> list[tuple[SystemConfig, list[str]]]:
    plan, problems = [], []
    for system_id in systems:
        system = project.systems.get(system_id)
        if system is None:
            known = ", ".join(sorted(project.systems)) or "none"
            problems.append(f"unknown system {system_id!r}; configured systems: {known}")
            continue
        if stream and stream not in system.streams:
            problems.append(
                f"system {system_id!r} has no stream {stream!r}; "
                f"streams: {', '.join(system.streams)}"
            )
            continue
        plan.append((system, [stream] if stream else list(system.streams)))
    if problems:
        raise ConfigError([Problem(p) for p in problems])
    return plan


def sync_stream(
    project: Project,
    store: Store,
    connector: Connector,
    system: SystemConfig,
    stream: StreamConfig,
    *,
    full_refresh: bool = False,
    progress: Progress = _quiet,
) -> StreamResult:
    """Run one stream end to end. Raises RunFailed (after recording it) if the source fails."""
    result = StreamResult(system.system, stream.name, uuid7())
    try:
        held = lease.acquire(store, system.system, stream.name, result.run_id)
    except lease.StreamBusy as exc:
        result.status, result.error = "busy", str(exc)
        return result
    try:
        return _run(project, store, connector, stream, result, held, full_refresh, progress)
    finally:
        lease.release(store, held)


def _run(
    project: Project,
    store: Store,
    connector: Connector,
    stream: StreamConfig,
    result: StreamResult,
    held: lease.Lease,
    full_refresh: bool,
    progress: Progress,
) -> StreamResult:
    system_id = result.system
    _start_run(store, result)
    progress("start", {"system": system_id, "stream": stream.name, "run_id": result.run_id})
    try:
        _publish_pending(project, store, result, progress)
        state = None if full_refresh else _load_state(store, system_id, stream.name)
        for batch in connector.pull(stream.name, state):
            if not (batch.records or batch.rejected or batch.deleted) and batch.state == state:
                continue  # nothing new: no empty transaction, no state history row
            landed = _land_batch(store, stream.mapping, result, batch, held)
            state = batch.state
            progress("landed", result.as_dict())
            _publish_landed(project, store, result, landed)
            progress("published", result.as_dict())
        _publish_pending(project, store, result, progress)
    except SourceError as exc:
        result.status, result.error = "failed", mask_text(f"{type(exc).__name__}: {exc}")
        _finish_run(store, result)
        raise StreamFailed(result) from exc
    except BaseException as exc:
        result.status, result.error = "failed", mask_text(f"{type(exc).__name__}: {exc}")
        _finish_run(store, result)
        raise
    result.status = "succeeded"
    _finish_run(store, result)
    progress("done", result.as_dict())
    return result


def _start_run(store: Store, result: StreamResult) -> None:
    with store.begin() as conn:
        conn.execute(
            runs.insert().values(
                run_id=result.run_id,
                system=result.system,
                stream=result.stream,
                kind="sync",
                status="running",
                started_at=now(),
                pulled=0,
                unchanged=0,
                mapped=0,
                quarantined=0,
                published=0,
                deleted=0,
            )
        )


def _counts(result: StreamResult) -> dict[str, Any]:
    return {
        "pulled": result.pulled,
        "unchanged": result.unchanged,
        "mapped": result.mapped,
        "quarantined": result.quarantined,
        "published": result.published,
        "deleted": result.deleted,
    }


def _finish_run(store: Store, result: StreamResult) -> None:
    with store.begin() as conn:
        conn.execute(
            runs.update()
            .where(runs.c.run_id == result.run_id)
            .values(status=result.status, finished_at=now(), error=result.error, **_counts(result))
        )


def _load_state(store: Store, system: str, stream: str) -> dict[str, Any] | None:
    with store.connect() as conn:
        text = conn.execute(
            sa.select(sync_state.c.state).where(
                sync_state.c.system == system, sync_state.c.stream == stream
            )
        ).scalar_one_or_none()
    return json.loads(text) if text else None


def _hash(payload: str) -> str:
    return hashlib.blake2b(payload.encode(), digest_size=16).hexdigest()


@dataclass(frozen=True)
class Landed:
    """What one batch landed: sequence numbers after_seq < seq <= last_seq, to publish."""

    after_seq: int
    last_seq: int
    mapped: list[Pending]


def _land_batch(
    store: Store, mapping: Mapping, result: StreamResult, batch: Batch, held: lease.Lease
) -> Landed:
    """Land, map and quarantine one batch, and save the state after it: one transaction."""
    system, stream, stamp = result.system, result.stream, now()
    latest: dict[str, tuple[dict[str, Any], str, str]] = {}
    no_id: list[tuple[dict[str, Any], str]] = []
    for record in batch.records:
        payload = dumps(record)
        source_id = mapping.source_id(record)
        if source_id is None:
            no_id.append((record, payload))
        else:
            # The latest payload of a source id wins; an earlier one in the same batch is
            # counted as mapped or quarantined, as if it had come in its own batch.
            if source_id in latest:
                _count_superseded(mapping, latest[source_id][0], result)
            latest[source_id] = (record, payload, _hash(payload))
    with store.begin() as conn:
        lease.renew(conn, held)
        at = timestamp(conn, stamp)
        key = (system, stream)
        before = _landed(conn, system, stream, list(latest))
        changed = {
            sid: item for sid, item in latest.items() if before.get(sid, ("",))[0] != item[2]
        }
        landed_seq = _sequence(conn, system, stream)[0]
        result.pulled += len(batch.records) + len(batch.rejected)
        result.unchanged += len(latest) - len(changed)
        outcome = mapping.apply([item[0] for item in changed.values()])
        mapped_ids = {m.source_id for m in outcome.mapped}
        result.mapped += len(outcome.mapped)
        quarantine_rows = [
            (
                *key,
                q.source_id,
                dumps(q.reasons),
                _excerpt(changed[q.source_id][1]),
                result.run_id,
                at,
            )
            for q in outcome.quarantined
            if q.source_id is not None
        ]
        quarantine_rows += _unlandable(key, result.run_id, at, no_id, batch)
        result.quarantined += len(quarantine_rows)
        landing_rows = []
        for seq, (sid, (_record, payload, digest)) in enumerate(
            changed.items(), start=landed_seq + 1
        ):
            status = "mapped" if sid in mapped_ids else "quarantined"
            landing_rows.append((*key, sid, digest, payload, status, seq, result.run_id, at))
        insert_rows(conn, landing, LANDING_COLUMNS, landing_rows, upsert_on=SOURCE_KEY)
        mapped_rows = [
            (
                *key,
                m.source_id,
                dumps(m.values),
                dumps(m.warnings) if m.warnings else None,
                result.run_id,
                at,
            )
            for m in outcome.mapped
        ]
        insert_rows(conn, source_records, SOURCE_RECORD_COLUMNS, mapped_rows, upsert_on=SOURCE_KEY)
        insert_rows(conn, quarantine, QUARANTINE_COLUMNS, quarantine_rows, upsert_on=SOURCE_KEY)
        cleared = [sid for sid in mapped_ids if before.get(sid, ("", ""))[1] == "quarantined"]
        if cleared:
            conn.execute(
                quarantine.delete().where(
                    quarantine.c.system == system,
                    quarantine.c.stream == stream,
                    member_of(conn, quarantine.c.source_id, cleared),
                )
            )
        last_seq = landed_seq + len(landing_rows)
        deleted = _land_deletes(conn, result, batch.deleted, last_seq, at)
        last_seq += len(deleted)
        _save_state(conn, result, batch.state, stamp, last_seq)
        conn.execute(runs.update().where(runs.c.run_id == result.run_id).values(**_counts(result)))
    seqs = {row[2]: row[6] for row in landing_rows}
    observed = stamp.isoformat()
    pending = [
        Pending(m.source_id, m.values, observed, result.run_id, seqs[m.source_id])
        for m in outcome.mapped
    ]
    pending += [Pending(sid, None, observed, result.run_id, seq) for sid, seq in deleted]
    return Landed(landed_seq, last_seq, pending)


def _land_deletes(
    conn: Connection, result: StreamResult, ids: list[str], after_seq: int, at: Any
) -> list[tuple[str, int]]:
    """Mark records the island deleted; their residents are rebuilt when published."""
    known = _landed(conn, result.system, result.stream, sorted(set(ids)))
    gone = [sid for sid in sorted(known) if known[sid][1] != "deleted"]
    if not gone:
        return []
    numbered = list(zip(gone, range(after_seq + 1, after_seq + 1 + len(gone)), strict=True))
    where = sa.and_(
        landing.c.system == result.system,
        landing.c.stream == result.stream,
        landing.c.source_id == sa.bindparam("sid"),
    )
    conn.execute(
        landing.update()
        .where(where)
        .values(status="deleted", seq=sa.bindparam("seq"), run_id=result.run_id),
        [{"sid": sid, "seq": seq} for sid, seq in numbered],
    )
    for table in (source_records, quarantine):
        conn.execute(
            table.delete().where(
                table.c.system == result.system,
                table.c.stream == result.stream,
                member_of(conn, table.c.source_id, gone),
            )
        )
    result.deleted += len(gone)
    return numbered


def _excerpt(payload: str) -> str:
    return mask_text(payload)[:EXCERPT_CHARS]


def _count_superseded(mapping: Mapping, record: dict[str, Any], result: StreamResult) -> None:
    outcome = mapping.apply([record])
    result.mapped += len(outcome.mapped)
    result.quarantined += len(outcome.quarantined)


def _landed(
    conn: Connection, system: str, stream: str, ids: list[str]
) -> dict[str, tuple[str, str]]:
    if not ids:
        return {}
    query = sa.select(landing.c.source_id, landing.c.content_hash, landing.c.status).where(
        landing.c.system == system,
        landing.c.stream == stream,
        member_of(conn, landing.c.source_id, ids),
    )
    return {row.source_id: (row.content_hash, row.status) for row in conn.execute(query)}


def _unlandable(
    key: tuple[str, str],
    run_id: str,
    at: Any,
    no_id: list[tuple[dict[str, Any], str]],
    batch: Batch,
) -> list[tuple[Any, ...]]:
    """Quarantine rows for records without a source id and records the connector rejected."""
    rows: list[tuple[Any, ...]] = []
    for _record, payload in no_id:
        reasons = dumps(["the record has no source id"])
        rows.append(
            (
                *key,
                f"@hash:{_hash(payload)}",
                reasons,
                mask_text(payload)[:EXCERPT_CHARS],
                run_id,
                at,
            )
        )
    for rejected in batch.rejected:
        excerpt = mask_text(rejected.excerpt)[:EXCERPT_CHARS]
        rows.append((*key, f"@{rejected.position}", dumps([rejected.reason]), excerpt, run_id, at))
    return rows


def _sequence(conn: Connection, system: str, stream: str) -> tuple[int, int]:
    """(landed_seq, published_seq) of a stream; (0, 0) before its first batch."""
    row = conn.execute(
        sa.select(sync_state.c.landed_seq, sync_state.c.published_seq).where(
            sync_state.c.system == system, sync_state.c.stream == stream
        )
    ).one_or_none()
    return (row.landed_seq, row.published_seq) if row else (0, 0)


def _save_state(
    conn: Connection, result: StreamResult, state: dict[str, Any], stamp: Any, landed_seq: int
) -> None:
    text = dumps(state)
    key = {"system": result.system, "stream": result.stream}
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    insert = dialect.insert(sync_state).values(
        **key,
        state=text,
        run_id=result.run_id,
        updated_at=stamp,
        landed_seq=landed_seq,
        published_seq=0,
    )
    # published_seq is the publish step's to move, never the landing's.
    updates = {c: insert.excluded[c] for c in ("state", "run_id", "updated_at", "landed_seq")}
    conn.execute(insert.on_conflict_do_update(index_elements=["system", "stream"], set_=updates))
    conn.execute(
        sync_state_history.insert().values(
            **key, state=text, run_id=result.run_id, recorded_at=stamp
        )
    )


def _publish_landed(project: Project, store: Store, result: StreamResult, landed: Landed) -> None:
    """Publish the batch just landed from memory, without reading it back.

    Only when nothing else is pending: otherwise (a crash left records unpublished, or
    another process landed in between) the records are read from the store in order.
    """
    with store.begin() as conn:
        landed_seq, published_seq = _sequence(conn, result.system, result.stream)
        in_step = (published_seq, landed_seq) == (landed.after_seq, landed.last_seq)
        if in_step:
            if landed.mapped:
                priority = project.hub.priority
                publish(conn, result.system, result.stream, landed.mapped, priority, result.run_id)
                result.published += len(landed.mapped)
                conn.execute(
                    runs.update().where(runs.c.run_id == result.run_id).values(**_counts(result))
                )
            _set_published(conn, result, landed.last_seq)
    if not in_step:
        _publish_pending(project, store, result, _quiet)


def _set_published(conn: Connection, result: StreamResult, seq: int) -> None:
    conn.execute(
        sync_state.update()
        .where(sync_state.c.system == result.system, sync_state.c.stream == result.stream)
        .values(published_seq=seq)
    )


def _publish_pending(
    project: Project, store: Store, result: StreamResult, progress: Progress
) -> None:
    """Resolve and publish every mapped record of the stream, a chunk per transaction."""
    priority = project.hub.priority
    while True:
        with store.begin() as conn:
            landed_seq, published_seq = _sequence(conn, result.system, result.stream)
            if published_seq >= landed_seq:
                return
            pending = pending_records(conn, result.system, result.stream, published_seq)
            if pending:
                publish(conn, result.system, result.stream, pending, priority, result.run_id)
                result.published += len(pending)
                conn.execute(
                    runs.update().where(runs.c.run_id == result.run_id).values(**_counts(result))
                )
            # Done up to the last record read; quarantined records have nothing to publish.
            _set_published(conn, result, pending[-1].seq if pending else landed_seq)
        progress("published", result.as_dict())
