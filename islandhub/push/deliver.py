"""Delivery: due outbox rows go to their islands, idempotently, with retries and dead letters.

Each row is sent with its idempotency key (one per resident, version and target), so a row
sent again after a lost answer changes nothing in the island: the REST kind sends the key as
a header, the sql kind upserts on the stream's key, Graph looks a new record's key up first.

- Only the newest due row of a resident and target is sent: every payload carries all the
  fields it sets, so an older one (or one older than a delivered one) is `superseded`.
- An island that answers "try later" (429, 5xx, timeout) fails the rows of that request;
  each waits `backoff * 2**(attempts-1)` (up to `max_backoff`) and the rest of that island's
  rows wait for the next run. After `max_attempts` a row is `dead`, with the reason.
- A refusal (4xx, a record the island cannot take) makes the row `dead` at once: sending it
  again unchanged will not help. `replay` makes dead rows pending again once that is fixed.

Nothing is sent inside a store transaction: the island is asked between transactions, and
one lease per target keeps two deliverers (a CLI run beside Airflow) apart.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from connectors.base import IDEMPOTENCY_KEY, Connector
from islandhub import secrets
from islandhub.config import Project
from islandhub.errors import RetriableSourceError, SourceError
from islandhub.ids import uuid7
from islandhub.privacy.at_rest import unseal_tree
from islandhub.privacy.masking import mask_text
from islandhub.push.diff import field_diff, flatten
from islandhub.push.outbox import DEAD, DELIVERED, PENDING, SUPERSEDED, Plan, plan_for
from islandhub.push.reverse import Retry
from islandhub.residents import Reader, audit
from islandhub.store import lease
from islandhub.store.bulk import member_of
from islandhub.store.db import Store, loads, now
from islandhub.store.tables import outbox

log = logging.getLogger(__name__)
LEASE_STREAM = "@push"  # the lease of a target's delivery; no stream can have this name
CHUNK = 50  # rows per push call: Graph's $batch takes 20, a sql upsert is one transaction
ROUND = 2000  # due rows read at a time
ERROR_CHARS = 1000
MAX_ERRORS = 5  # error texts a report keeps


@dataclass
class TargetReport:
    """What one delivery run did for one target."""

    target: str
    delivered: int = 0
    retrying: int = 0  # failed this time; will be tried again after its backoff
    dead: int = 0  # gave up or refused this time (see last_error; `push replay`)
    superseded: int = 0
    waiting: int = 0  # pending, not due yet (or left for later after the island failed)
    busy: bool = False
    errors: list[str] = field(default_factory=list)  # masked, the first few

    @property
    def ok(self) -> bool:
        """Everything due went through."""
        return not (self.retrying or self.dead or self.busy)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for --json."""
        return {**asdict(self), "ok": self.ok}


@dataclass(frozen=True)
class _Row:
    id: int
    stream: str
    resident_id: str
    version: int
    idempotency_key: str
    payload: str
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class _Outcome:
    row: _Row
    status: str  # DELIVERED, PENDING (retry) or DEAD
    error: str | None = None


# --- delivering ----------------------------------------------------------------------------


def deliver(
    project: Project,
    store: Store,
    targets: Sequence[str] | None = None,
    *,
    lookup: secrets.Lookup = secrets.from_environment,
    at: datetime | None = None,
    actor: str | None = None,
) -> list[TargetReport]:
    """Send every due row of `targets` (default: every target with pending rows).

    Each delivered row is written to the audit log as a disclosure to its island (who:
    `actor`, else ISLANDHUB_ACTOR, else the OS user).
    """
    at = at or now()
    plan = plan_for(project)
    names = list(targets) if targets is not None else pending_targets(store)
    reports = []
    for name in names:
        reader = Reader.from_environment(f"write-back of resident data to {name}", actor)
        reports.append(_Delivery(store, plan, name, at, reader).run(project, lookup))
    return reports


@dataclass
class _Delivery:
    """One run of delivery to one target."""

    store: Store
    plan: Plan
    target: str
    at: datetime
    reader: Reader
    held: lease.Lease | None = None

    def run(self, project: Project, lookup: secrets.Lookup) -> TargetReport:
        report = TargetReport(self.target)
        try:
            held = self.held = lease.acquire(self.store, self.target, LEASE_STREAM, uuid7())
        except lease.StreamBusy as exc:
            report.busy = True
            report.errors.append(str(exc))
            return report
        try:
            connector = _connector(project, self.target, lookup)
            seen: set[int] = set()
            while rows := self._next_round(report, seen):
                if not self._send_round(connector, rows, report):
                    break  # the island is down: its other rows wait for the next run
        finally:
            lease.release(self.store, held)
        report.waiting = _count(self.store, self.target, PENDING)
        return report

    def _next_round(self, report: TargetReport, seen: set[int]) -> list[_Row]:
        """The next due rows to send, after marking those a newer row makes pointless."""
        with self.store.begin() as conn:
            due = _due(conn, self.target, self.at, seen)
            keep, superseded = _newest(conn, self.target, due)
            _mark_superseded(conn, superseded)
        report.superseded += len(superseded)
        seen.update(r.id for r in due)
        return keep

    def _send_round(
        self, connector: Connector | None, rows: list[_Row], report: TargetReport
    ) -> bool:
        """Send stream by stream, chunk by chunk; False when the island asks to wait."""
        by_stream: dict[str, list[_Row]] = defaultdict(list)
        for row in rows:
            by_stream[row.stream].append(row)
        for stream, stream_rows in sorted(by_stream.items()):
            subscription = self.plan.get(self.target, stream)
            retry = subscription.reverse.retry if subscription else Retry()
            for start in range(0, len(stream_rows), CHUNK):
                chunk = stream_rows[start : start + CHUNK]
                outcomes = _send(connector, self.target, stream, chunk)
                self._record(outcomes, retry, report)
                if any(o.status == PENDING for o in outcomes):
                    return False
        return True

    def _record(self, outcomes: list[_Outcome], retry: Retry, report: TargetReport) -> None:
        """Write the outcomes of one push, and the disclosures, in one transaction."""
        changes = [_change(o, retry, self.at, report) for o in outcomes]
        sent = [o.row for o in outcomes if o.status == DELIVERED]
        o = outbox.c
        with self.store.begin() as conn:
            if self.held is not None:
                lease.renew(conn, self.held)  # a long delivery keeps its island to itself
            conn.execute(
                outbox.update()
                .where(o.id == sa.bindparam("row_id"), o.status == PENDING)
                .values(
                    status=sa.bindparam("s"),
                    attempts=sa.bindparam("n"),
                    next_attempt_at=sa.bindparam("at"),
                    last_error=sa.bindparam("e"),
                    delivered_at=sa.bindparam("d"),
                ),
                changes,
            )
            for row in sent:
                # Act 906/2019 section 17: a disclosure to another system is logged.
                fields = sorted(flatten(loads(row.payload)))
                detail = {"target": self.target, "stream": row.stream, "version": row.version}
                audit(conn, self.reader, "push", row.resident_id, {**detail, "fields": fields})


def _change(outcome: _Outcome, retry: Retry, at: datetime, report: TargetReport) -> dict[str, Any]:
    """The row's new state after an attempt; counts it in the report."""
    row, attempts = outcome.row, outcome.row.attempts + 1
    error = mask_text(outcome.error)[:ERROR_CHARS] if outcome.error else None
    status, next_at, delivered_at = outcome.status, at, None
    if status == DELIVERED:
        report.delivered += 1
        delivered_at = at
    elif status == PENDING and attempts >= retry.max_attempts:
        status, error = DEAD, f"gave up after {attempts} attempts: {error}"
    elif status == PENDING:
        next_at = at + retry.delay(attempts)
        report.retrying += 1
    else:
        error = f"refused: {error}"
    if status == DEAD:
        report.dead += 1
        log.warning("outbox row %d (%s) is dead: %s", row.id, row.stream, error)
    if error and len(report.errors) < MAX_ERRORS:
        report.errors.append(f"{row.stream}: {error}")
    return {
        "row_id": row.id,
        "s": status,
        "n": attempts,
        "at": next_at,
        "e": error,
        "d": delivered_at,
    }


def _connector(project: Project, target: str, lookup: secrets.Lookup) -> Connector | None:
    from islandhub.pipeline import make_connector

    system = project.systems.get(target)
    return None if system is None else make_connector(project, system, lookup)


def _send(
    connector: Connector | None, target: str, stream: str, rows: list[_Row]
) -> list[_Outcome]:
    """Push rows; on a refusal of several, push them one by one to find the refused ones."""
    if connector is None:
        return [_Outcome(r, DEAD, f"{target} is not a configured system") for r in rows]
    if stream not in connector.stream_specs:
        return [_Outcome(r, DEAD, f"{target} has no stream {stream!r}") for r in rows]
    # Stored sealed (national ids, register source ids): opened as they leave for the island.
    records = [{**unseal_tree(loads(r.payload)), IDEMPOTENCY_KEY: r.idempotency_key} for r in rows]
    try:
        connector.push(stream, records)
    except RetriableSourceError as exc:
        return [_Outcome(r, PENDING, str(exc)) for r in rows]
    except SourceError as exc:
        if len(rows) == 1:
            return [_Outcome(rows[0], DEAD, str(exc))]
        outcomes: list[_Outcome] = []
        for row in rows:
            outcomes += _send(connector, target, stream, [row])
            if outcomes[-1].status == PENDING:
                break  # the island is down after all: the rest wait, untried
        return outcomes
    return [_Outcome(r, DELIVERED) for r in rows]


# --- choosing rows ---------------------------------------------------------------------------


def pending_targets(store: Store) -> list[str]:
    """The targets with rows waiting to be sent (due now or later)."""
    with store.connect() as conn:
        query = sa.select(outbox.c.target).where(outbox.c.status == PENDING).distinct()
        return sorted(conn.execute(query).scalars())


def _due(conn: sa.Connection, target: str, at: datetime, seen: Iterable[int]) -> list[_Row]:
    o = outbox.c
    query = (
        sa.select(
            o.id,
            o.stream,
            o.resident_id,
            o.version,
            o.idempotency_key,
            o.payload,
            o.attempts,
            o.last_error,
        )
        .where(o.target == target, o.status == PENDING, o.next_attempt_at <= at)
        .order_by(o.id)
        .limit(ROUND)
    )
    skip = set(seen)
    return [_Row(*row) for row in conn.execute(query) if row.id not in skip]


def _newest(conn: sa.Connection, target: str, due: list[_Row]) -> tuple[list[_Row], list[_Row]]:
    """The due rows worth sending, and those a newer row (due or delivered) supersedes."""
    delivered = _delivered_versions(conn, target, sorted({r.resident_id for r in due}))
    newest: dict[tuple[str, str], _Row] = {}
    for row in due:
        key = (row.stream, row.resident_id)
        if key not in newest or row.version > newest[key].version:
            newest[key] = row
    keep = [r for r in newest.values() if r.version > delivered.get((r.stream, r.resident_id), 0)]
    kept = {r.id for r in keep}
    return sorted(keep, key=lambda r: r.id), [r for r in due if r.id not in kept]


def _delivered_versions(
    conn: sa.Connection, target: str, resident_ids: Sequence[str]
) -> dict[tuple[str, str], int]:
    if not resident_ids:
        return {}
    o = outbox.c
    query = (
        sa.select(o.stream, o.resident_id, sa.func.max(o.version))
        .where(o.target == target, o.status == DELIVERED)
        .where(member_of(conn, o.resident_id, resident_ids))
        .group_by(o.stream, o.resident_id)
    )
    return {(row[0], row[1]): row[2] for row in conn.execute(query)}


def _mark_superseded(conn: sa.Connection, rows: list[_Row]) -> None:
    if rows:
        ids = [r.id for r in rows]
        conn.execute(
            outbox.update()
            .where(outbox.c.id.in_(ids), outbox.c.status == PENDING)
            .values(status=SUPERSEDED)
        )


def _count(store: Store, target: str, status: str) -> int:
    with store.connect() as conn:
        query = sa.select(sa.func.count()).where(
            outbox.c.target == target, outbox.c.status == status
        )
        return int(conn.execute(query).scalar_one())


# --- replay and dry run ----------------------------------------------------------------------


def replay(store: Store, target: str | None = None, *, at: datetime | None = None) -> int:
    """Make dead rows (of one target, or all) pending again, due now. Returns how many.

    Their attempts start again from zero; the last error stays until they are delivered.
    """
    o = outbox.c
    statement = outbox.update().where(o.status == DEAD)
    if target is not None:
        statement = statement.where(o.target == target)
    with store.begin() as conn:
        moved = conn.execute(
            statement.values(status=PENDING, attempts=0, next_attempt_at=at or now())
        ).rowcount
    return int(moved or 0)


def preview(
    store: Store, target: str, reader: Reader, *, at: datetime | None = None
) -> dict[str, Any]:
    """What `deliver` would send to `target` now, as field-level diffs; sends nothing.

    Each field shows the value the island last got from the hub for that resident (null:
    never sent) and the one it would get. Showing them is a read of personal data: each
    resident shown is written to the audit log with `reader`'s purpose.
    """
    at = at or now()
    with store.begin() as conn:
        due = _due(conn, target, at, ())
        keep, superseded = _newest(conn, target, due)
        before = _last_delivered(conn, target, sorted({r.resident_id for r in keep}))
        for row in keep:
            audit(conn, reader, "push-preview", row.resident_id, {"target": target})
    sends = []
    for row in keep:
        after = unseal_tree(flatten(loads(row.payload)))
        sends.append(
            {
                "stream": row.stream,
                "resident_id": row.resident_id,
                "version": row.version,
                "idempotency_key": row.idempotency_key,
                "attempts": row.attempts,
                "last_error": row.last_error,
                "fields": field_diff(before.get((row.stream, row.resident_id)), after),
            }
        )
    return {
        "target": target,
        "would_send": sends,
        "would_supersede": len(superseded),
        "waiting": _count(store, target, PENDING) - len(due),
        "dead": _count(store, target, DEAD),
    }


def _last_delivered(
    conn: sa.Connection, target: str, resident_ids: Sequence[str]
) -> dict[tuple[str, str], dict[str, Any]]:
    if not resident_ids:
        return {}
    o = outbox.c
    newest = (
        sa.select(sa.func.max(o.id).label("id"))
        .where(o.target == target, o.status == DELIVERED)
        .where(member_of(conn, o.resident_id, resident_ids))
        .group_by(o.stream, o.resident_id)
        .subquery()
    )
    query = sa.select(o.stream, o.resident_id, o.payload).join(newest, o.id == newest.c.id)
    return {
        (r.stream, r.resident_id): unseal_tree(flatten(loads(r.payload)))
        for r in conn.execute(query)
    }
