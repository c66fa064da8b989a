"""The outbox hook: golden versions published in a transaction become outbox rows in it too.

`enqueue` is called by publish with the batch of new golden versions, on the publish's own
connection, so a crash leaves both or neither. For each subscribed target stream (a mapping
file with a `push:` section) it reverse-maps each version, keeps what the target may receive
(rules.py) and writes one row where that payload differs from the last one written for the
same resident and target. It reads the store once per batch.

Golden records hold national ids sealed: a version's values are opened for the reverse
mapping's transforms, and the payload is sealed again before it is stored (the same rule as
everywhere: privacy/at_rest.py); delivery opens it when it sends it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from islandhub.mapping import TransformError
from islandhub.privacy.at_rest import SEALED_FIELDS, seal_tree, unseal_tree
from islandhub.privacy.crypto import try_unseal
from islandhub.privacy.masking import mask_text
from islandhub.push import rules
from islandhub.push.diff import changed_fields, flatten, nest
from islandhub.push.reverse import SOURCE_ID, ReverseMapping, resident_values
from islandhub.resolve.golden import Observation
from islandhub.store.bulk import insert_rows, member_of, timestamp
from islandhub.store.db import dumps, loads, now
from islandhub.store.tables import outbox

if TYPE_CHECKING:
    from islandhub.config import Project

log = logging.getLogger(__name__)
PENDING, DELIVERED, DEAD, SUPERSEDED = "pending", "delivered", "dead", "superseded"
ROW_COLUMNS = (
    "target",
    "stream",
    "resident_id",
    "version",
    "idempotency_key",
    "payload",
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
    "run_id",
    "created_at",
    "delivered_at",
)


@dataclass(frozen=True)
class NewVersion:
    """A golden record version just written, with what it was built from."""

    resident_id: str
    version: int
    record: dict[str, Any]
    lineage: dict[str, Any]  # compact lineage (golden.py)
    observations: Sequence[Observation]


@dataclass(frozen=True)
class Subscription:
    """A target stream that receives residents' changes, and how it wants them."""

    target: str  # the system
    stream: str
    reverse: ReverseMapping
    owned: frozenset[str]  # resident fields the stream's own mapping reads

    def payload(self, version: NewVersion) -> dict[str, Any] | None:
        """The island's fields for this version (flat), or None when nothing may be sent."""
        own = rules.own_record(version.observations, self.target, self.stream)
        if own is None and self.reverse.residents == "linked":
            return None
        values = unseal_tree(resident_values(version.record))
        values[SOURCE_ID] = try_unseal(own.source_id) if own else None
        protected = rules.is_protected(version.record)
        fields: dict[str, Any] = {}
        for field in self.reverse.fields:
            reason = rules.withheld(
                field, owned=self.owned, own=own, lineage=version.lineage, protected=protected
            )
            if reason is None:
                value = self._value(field, values, version.resident_id)
                if value is not None:
                    fields[field.target] = value
        if not set(fields) - self.reverse.identifying_targets:
            return None
        return seal_tree(fields, self._national_id_targets())

    def _national_id_targets(self) -> frozenset[str]:
        """The island's fields that carry the national id: sealed whatever they hold."""
        return frozenset(f.target for f in self.reverse.fields if SEALED_FIELDS & set(f.sources))

    def _value(self, field: Any, values: dict[str, Any], resident_id: str) -> Any:
        try:
            return field.value(values)
        except TransformError as err:
            # The message never repeats the value; the field is left out, the rest goes.
            log.warning(
                "%s.%s: %s not pushed for resident %s: %s",
                self.target,
                self.stream,
                field.target,
                resident_id,
                mask_text(str(err)),
            )
            return None


@dataclass(frozen=True)
class Plan:
    """Every subscription of a project: what publish hands to `enqueue`."""

    subscriptions: tuple[Subscription, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.subscriptions)

    def get(self, target: str, stream: str) -> Subscription | None:
        """The subscription of one target stream, if it has one."""
        return next(
            (s for s in self.subscriptions if (s.target, s.stream) == (target, stream)), None
        )


def plan_for(project: Project) -> Plan:
    """The project's subscriptions: every stream whose mapping has a `push:` section."""
    subscriptions = [
        Subscription(
            system.system, name, stream.mapping.push, frozenset(stream.mapping.target_paths)
        )
        for system in project.systems.values()
        for name, stream in system.streams.items()
        if stream.mapping.push is not None
    ]
    return Plan(tuple(sorted(subscriptions, key=lambda s: (s.target, s.stream))))


def idempotency_key(target: str, stream: str, resident_id: str, version: int) -> str:
    """The key of one delivery: the same resident, version and target always give the same."""
    text = f"{target}\x1f{stream}\x1f{resident_id}\x1f{version}"
    return hashlib.sha256(text.encode()).hexdigest()


def enqueue(
    conn: Connection, plan: Plan | None, versions: Sequence[NewVersion], run_id: str
) -> int:
    """Write an outbox row per target whose payload changed; in `conn`'s transaction. Rows."""
    if not plan or not versions:
        return 0
    payloads = [
        (sub, v, payload)
        for v in versions
        for sub in plan.subscriptions
        if (payload := sub.payload(v)) is not None
    ]
    if not payloads:
        return 0
    last = _last_payloads(conn, sorted({v.resident_id for _, v, _ in payloads}))
    stamp = timestamp(conn, now())
    rows = []
    for sub, v, payload in payloads:
        before = last.get((sub.target, sub.stream, v.resident_id))
        if not changed_fields(before, payload, sub.reverse.identifying_targets):
            continue
        key = idempotency_key(sub.target, sub.stream, v.resident_id, v.version)
        document = dumps(nest(payload))
        where = (sub.target, sub.stream, v.resident_id, v.version)
        rows.append((*where, key, document, PENDING, 0, stamp, None, run_id, stamp, None))
    insert_rows(conn, outbox, ROW_COLUMNS, rows)
    return len(rows)


def _last_payloads(
    conn: Connection, resident_ids: Sequence[str]
) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The newest payload written per (target, stream, resident) for these residents (flat)."""
    o = outbox.c
    newest = (
        sa.select(sa.func.max(o.id).label("id"))
        .where(member_of(conn, o.resident_id, resident_ids))
        .group_by(o.target, o.stream, o.resident_id)
        .subquery()
    )
    query = sa.select(o.target, o.stream, o.resident_id, o.payload).join(
        newest, o.id == newest.c.id
    )
    return {
        (row.target, row.stream, row.resident_id): flatten(loads(row.payload))
        for row in conn.execute(query)
    }


def forget(conn: Connection, resident_ids: Sequence[str]) -> int:
    """Delete every outbox row of these residents (erasure: the payloads are personal data).

    Call it in the erasure's transaction; rows not yet sent are dropped with the rest.
    """
    if not resident_ids:
        return 0
    deleted = conn.execute(
        outbox.delete().where(member_of(conn, outbox.c.resident_id, resident_ids))
    )
    return int(deleted.rowcount or 0)
