"""One stream's run: extract -> land -> map -> (check) -> resolve -> publish.

Each batch is landed and mapped in one transaction together with the stream's new state,
so a crash loses nothing and doubles nothing: the next run resumes after the last committed
batch, first finishing what was landed but not yet published. Unchanged records (same
content hash) are skipped. Counts always add up: pulled = unchanged + mapped + quarantined.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from connectors.base import Batch, Connector, StreamSpec
from connectors.registry import connector_class
from islandhub import secrets
from islandhub.config import Project, StreamConfig, SystemConfig
from islandhub.errors import ConfigError, Problem, RunFailed, SourceError
from islandhub.extract import prepared_batches, worth_a_worker
from islandhub.gcpause import cyclic_gc_paused
from islandhub.heap import keep_freed_memory
from islandhub.ids import uuid7
from islandhub.landing import Landed, counters, land, prepare, sequence
from islandhub.privacy.masking import mask_text
from islandhub.push.outbox import plan_for
from islandhub.quality.batch import GateTripped, StreamCheck
from islandhub.resolve.publish import Pending, pending_records, publish
from islandhub.store import lease
from islandhub.store.db import Store, loads, now
from islandhub.store.statistics import StatisticsKeeper
from islandhub.store.tables import landing, runs, sync_state

Progress = Callable[[str, dict[str, Any]], None]
REMAP_CHUNK = 5000


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
    publish: bool = True,
    progress: Progress = _quiet,
) -> StreamResult:
    """Run one stream end to end. Raises RunFailed (after recording it) if the source fails.

    With `publish=False` the run stops after landing and mapping (an orchestrator publishes
    in a task of its own with `publish_stream`).
    """
    result = StreamResult(system.system, stream.name, uuid7())
    options = _Options(full_refresh, publish, progress)
    return _leased_run(
        store,
        result,
        "sync",
        progress,
        lambda held: _run(project, store, connector, stream, result, held, options),
    )


def publish_stream(
    project: Project, store: Store, system: str, stream: str, *, progress: Progress = _quiet
) -> StreamResult:
    """Resolve and publish whatever a stream has landed but not yet published (its own run)."""
    result = StreamResult(system, stream, uuid7())
    return _leased_run(
        store,
        result,
        "publish",
        progress,
        lambda _held: _checked_publish(project, store, result, progress),
    )


def _checked_publish(
    project: Project, store: Store, result: StreamResult, progress: Progress
) -> None:
    """Publish what the stream landed once its quality check passed (islandhub/quality)."""
    StreamCheck.begin(project, store, result).finish()
    _publish_pending(project, store, result, progress)


def remap_stream(
    project: Project,
    store: Store,
    system: SystemConfig,
    stream: StreamConfig,
    *,
    progress: Progress = _quiet,
) -> StreamResult:
    """Map the stream's landed records again with its current mapping; publish what changed.

    The island is not asked: its last payloads are in the landing table. A record whose new
    outcome equals the stored one is unchanged and its resident untouched.
    """
    result = StreamResult(system.system, stream.name, uuid7())
    return _leased_run(
        store,
        result,
        "remap",
        progress,
        lambda held: _remap(project, store, stream, result, held, progress),
    )


def _leased_run(
    store: Store,
    result: StreamResult,
    kind: str,
    progress: Progress,
    body: Callable[[lease.Lease], None],
) -> StreamResult:
    """One run of one step of a stream: under the stream's lease, recorded in `runs`.

    A busy stream gives status "busy" and no run; a source failure is recorded and raised as
    StreamFailed; any other failure is recorded and raised as it is.
    """
    try:
        held = lease.acquire(store, result.system, result.stream, result.run_id)
    except lease.StreamBusy as exc:
        result.status, result.error = "busy", str(exc)
        return result
    try:
        _start_run(store, result, kind)
        progress(
            "start", {"system": result.system, "stream": result.stream, "run_id": result.run_id}
        )
        try:
            body(held)
        except BaseException as exc:
            result.status, result.error = "failed", mask_text(f"{type(exc).__name__}: {exc}")
            _finish_run(store, result)
            if isinstance(exc, SourceError | GateTripped):
                raise StreamFailed(result) from exc
            raise
        result.status = "succeeded"
        _finish_run(store, result)
        progress("done", result.as_dict())
        return result
    finally:
        lease.release(store, held)


def _remap(
    project: Project,
    store: Store,
    stream: StreamConfig,
    result: StreamResult,
    held: lease.Lease,
    progress: Progress,
) -> None:
    state = _load_state(store, result.system, stream.name) or {}
    check = StreamCheck.begin(project, store, result)  # a gated stream publishes after it
    if not check.holds:
        _publish_pending(project, store, result, progress)
    after = ""
    while True:
        rows = _landed_chunk(store, result.system, stream.name, after)
        if not rows:
            break
        records = [loads(payload) for _sid, payload in rows]
        moved = [
            sid
            for (sid, _p), r in zip(rows, records, strict=True)
            if stream.mapping.source_id(r) != sid
        ]
        if moved:
            raise ConfigError(
                f"{result.system}.{stream.name}: the mapping's `id` gives other source ids "
                f"than the landed records have (e.g. {mask_text(moved[0])}); a changed id "
                "needs a full re-sync into a new stream, not a remap"
            )
        prepared = prepare(Batch(records, state), stream.mapping)
        landed = land(store, result, prepared, held, remap=True)
        check.add(landed.pending)
        progress("landed", result.as_dict())
        if not check.holds:
            _publish_landed(project, store, result, landed)
        after = rows[-1][0]
    check.finish()
    _publish_pending(project, store, result, progress)


def _landed_chunk(store: Store, system: str, stream: str, after: str) -> list[tuple[str, str]]:
    query = (
        sa.select(landing.c.source_id, landing.c.payload)
        .where(landing.c.system == system, landing.c.stream == stream, landing.c.source_id > after)
        # Deleted and anonymised records have nothing to map; a payload cleared by retention
        # (empty) keeps the fields it was mapped to.
        .where(landing.c.status.not_in(("deleted", "anonymised")), landing.c.payload != "")
        .order_by(landing.c.source_id)
        .limit(REMAP_CHUNK)
    )
    with store.connect() as conn:
        return [(row.source_id, row.payload) for row in conn.execute(query)]


@dataclass(frozen=True)
class _Options:
    full_refresh: bool
    publish: bool
    progress: Progress


def _run(
    project: Project,
    store: Store,
    connector: Connector,
    stream: StreamConfig,
    result: StreamResult,
    held: lease.Lease,
    options: _Options,
) -> None:
    """Extract, land and map every batch; publish as it goes unless an orchestrator will."""
    system_id, progress = result.system, options.progress
    keep_freed_memory()  # before the worker and the validator fork: they inherit it
    # The quality hook (islandhub/quality/batch.py); without publishing, publish_stream checks.
    check = StreamCheck.begin(project, store, result) if options.publish else None
    publish_now = check is not None and not check.holds  # a gated stream publishes after it
    if publish_now:
        _publish_pending(project, store, result, progress)
    state = None if options.full_refresh else _load_state(store, system_id, stream.name)
    batches = prepared_batches(
        connector,
        stream.name,
        state,
        stream.mapping,
        parallel=worth_a_worker(),
        check_fields=check.fields if check is not None else None,
        # Founding texts only where this run publishes as it lands (else read back later).
        origin=(system_id, stream.name) if publish_now else None,
    )
    statistics = StatisticsKeeper(store)
    for prepared in batches:
        if prepared.empty and prepared.state == state:
            continue  # nothing new: no empty transaction, no state history row
        pulled = result.pulled
        with cyclic_gc_paused():
            landed = land(store, result, prepared, held)
        # Before publishing looks the batch's ids up (PostgreSQL plans from statistics).
        statistics.wrote(result.pulled - pulled)
        if check is not None:
            check.add(landed.pending, landed.check_rows)
        state = prepared.state
        # Landed: its payloads and texts are garbage. Let go before the next batch arrives, or
        # the writer would hold two batches at once (benchmarks/ingest.py measures the peak).
        del prepared
        progress("landed", result.as_dict())
        if publish_now:
            with cyclic_gc_paused():
                _publish_landed(project, store, result, landed)
            progress("published", result.as_dict())
        del landed
    if check is not None:
        check.finish()
        _publish_pending(project, store, result, progress)


def _start_run(store: Store, result: StreamResult, kind: str = "sync") -> None:
    with store.begin() as conn:
        conn.execute(
            runs.insert().values(
                run_id=result.run_id,
                system=result.system,
                stream=result.stream,
                kind=kind,
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


def _finish_run(store: Store, result: StreamResult) -> None:
    with store.begin() as conn:
        conn.execute(
            runs.update()
            .where(runs.c.run_id == result.run_id)
            .values(status=result.status, finished_at=now(), error=result.error, **counters(result))
        )


def _load_state(store: Store, system: str, stream: str) -> dict[str, Any] | None:
    with store.connect() as conn:
        text = conn.execute(
            sa.select(sync_state.c.state).where(
                sync_state.c.system == system, sync_state.c.stream == stream
            )
        ).scalar_one_or_none()
    return json.loads(text) if text else None


def _publish_landed(project: Project, store: Store, result: StreamResult, landed: Landed) -> None:
    """Publish the batch just landed from memory, without reading it back.

    Only when nothing else is pending: otherwise (a crash left records unpublished, or
    another process landed in between) the records are read from the store in order.
    """
    with store.begin() as conn:
        landed_seq, published_seq = sequence(conn, result.system, result.stream)
        in_step = (published_seq, landed_seq) == (landed.after_seq, landed.last_seq)
        if in_step:
            _publish_chunk(conn, project, result, landed.pending, landed.last_seq)
    if not in_step:
        _publish_pending(project, store, result, _quiet)


def _publish_pending(
    project: Project, store: Store, result: StreamResult, progress: Progress
) -> None:
    """Resolve and publish every landed record of the stream, a chunk per transaction."""
    while True:
        with store.begin() as conn, cyclic_gc_paused():
            landed_seq, published_seq = sequence(conn, result.system, result.stream)
            if published_seq >= landed_seq:
                return
            pending = pending_records(conn, result.system, result.stream, published_seq)
            # Done up to the last record read; quarantined records have nothing to publish.
            _publish_chunk(
                conn, project, result, pending, pending[-1].seq if pending else landed_seq
            )
        progress("published", result.as_dict())


def _publish_chunk(
    conn: Connection, project: Project, result: StreamResult, pending: list[Pending], up_to: int
) -> None:
    """Publish `pending` and move the stream's published_seq to `up_to`, in `conn`'s transaction."""
    if pending:
        priority, push = project.hub.priority, plan_for(project)
        publish(conn, result.system, result.stream, pending, priority, result.run_id, push)
        result.published += len(pending)
        conn.execute(runs.update().where(runs.c.run_id == result.run_id).values(**counters(result)))
    conn.execute(
        sync_state.update()
        .where(sync_state.c.system == result.system, sync_state.c.stream == result.stream)
        .values(published_seq=up_to)
    )
