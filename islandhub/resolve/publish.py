"""Resolve and publish: links mapped source records to residents, rebuilds their golden records.

Rules, deterministic only (the probabilistic pass is reconcile.py), in this order:
- the same permanent national id is the same resident;
- a record keeps the resident it was linked to before (so a steward's split stands);
- a known cross-system id (references.py): a record joins the resident of a record it
  refers to, or of records that refer to it, the oldest such resident first;
- otherwise it founds a new resident.
Two different permanent national ids are never one resident: a reference that would join
them is not followed (a warning names both, masked). A temporary id (900-999) is weak
evidence and links nothing on its own.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from islandhub.ids import uuid7_batch
from islandhub.privacy.crypto import PREFIX, try_unseal, unseal_text
from islandhub.privacy.masking import mask_text
from islandhub.push import outbox
from islandhub.resolve import references
from islandhub.resolve.golden import Founding, Observation, build_golden, filled
from islandhub.resolve.keys import NATIONAL_ID, national_id_key
from islandhub.resolve.steward import apply_pins, load_pins
from islandhub.store.bulk import insert_rows, member_of, timestamp
from islandhub.store.db import as_utc, dumps, loads, lock_residents, now
from islandhub.store.tables import (
    landing,
    lineage,
    links,
    resident_keys,
    resident_versions,
    residents,
    resolution_queue,
    same_source,
    source_records,
)

PUBLISH_CHUNK = 5000
log = logging.getLogger(__name__)


class ClearValues(NamedTuple):
    """What the writer would open again of a record just mapped, handed over in memory only.

    The extract worker sealed the record's national ids moments before; opening them again
    in the writer (the quality check, the national-id lookup key) took about a tenth of the
    writer's time, and the writer is the slower of the two (benchmarks/ingest.py).
    Never stored, never logged: its repr shows nothing, and the records that carry it keep
    it out of theirs. A record read back from the store has none and opens what it needs.
    """

    source_id: str  # the source id in clear (`try_unseal` of the stored one)
    # The stored fields that are sealed, opened (`unsealed_fields`): the national id's value
    # alone when it is the only one (most records; no dict per record to build and pickle),
    # else a dict of them all (empty: none).
    fields: str | dict[str, str]
    national_id_key: str | None  # `keys.national_id_key` of the stored national id

    def opened(self) -> dict[str, str]:
        """The sealed fields, opened, by name."""
        return {"national_id": self.fields} if isinstance(self.fields, str) else self.fields

    def __repr__(self) -> str:
        return "ClearValues(<not shown>)"


class Pending:
    """A mapped source record waiting to be resolved and published (fields None: deleted).

    A record landed in this run (`landed`) keeps its fields as the stored JSON and parses
    them when first read: most records of a first load found a resident from the texts the
    extract worker made (golden.founding) and are never read, and parsing each took the
    writer about 5 µs. Compared and shown by source id, fields, time, run and sequence,
    like the frozen dataclass it was; `clear` and `founding` take no part.
    """

    __slots__ = (
        "_fields",
        "_text",
        "clear",
        "founding",
        "observed_at",
        "run_id",
        "seq",
        "source_id",
    )

    def __init__(
        self,
        source_id: str,
        fields: dict[str, Any] | None,
        observed_at: str,
        run_id: str,
        seq: int,
        clear: ClearValues | None = None,
        founding: Founding | None = None,
    ) -> None:
        self.source_id = source_id
        self._fields = fields
        self._text: str | None = None
        self.observed_at = observed_at
        self.run_id = run_id
        self.seq = seq
        # Set only for a record mapped in this run (landing.prepare), in memory only.
        self.clear = clear
        # Its texts as the founder of a resident, when the extract worker made them.
        self.founding = founding

    @classmethod
    def landed(
        cls,
        source_id: str,
        text: str,
        observed_at: str,
        run_id: str,
        seq: int,
        clear: ClearValues | None,
        founding: Founding | None,
    ) -> Pending:
        """A mapped record just landed: its stored fields (`text`) parsed when first read."""
        record = cls(source_id, None, observed_at, run_id, seq, clear, founding)
        record._text = text
        return record

    @property
    def fields(self) -> dict[str, Any] | None:
        """The mapped fields as stored (None: the record was deleted)."""
        if self._text is not None:
            self._fields, self._text = loads(self._text), None
        return self._fields

    @property
    def deleted(self) -> bool:
        """Whether the island deleted the record (without parsing its fields)."""
        return self._fields is None and self._text is None

    def _compared(self) -> tuple[Any, ...]:
        return (self.source_id, self.fields, self.observed_at, self.run_id, self.seq)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pending):
            return NotImplemented
        return self._compared() == other._compared()

    def __hash__(self) -> int:
        # As the frozen dataclass's: a deleted record hashes, one with fields (a dict) raises.
        return hash(self._compared())

    def __repr__(self) -> str:
        source_id, fields, observed_at, run_id, seq = self._compared()
        return (
            f"Pending(source_id={source_id!r}, fields={fields!r}, observed_at={observed_at!r}, "
            f"run_id={run_id!r}, seq={seq!r})"
        )

    def clear_source_id(self) -> str:
        """The source id in clear (a HETU-shaped one is stored sealed)."""
        return self.clear.source_id if self.clear is not None else try_unseal(self.source_id)

    def opened_fields(self) -> dict[str, Any]:
        """The mapped fields whose stored values are sealed, opened ({}: none is).

        Over the stored fields they give the record in clear (the quality check's columns).
        """
        if self.clear is not None:
            return self.clear.opened()
        return {
            name: try_unseal(value)
            for name, value in (self.fields or {}).items()
            if isinstance(value, str) and value.startswith(PREFIX)
        }

    def lookup_key(self) -> str | None:
        """The national-id lookup key (None: no national id, or a temporary one)."""
        if self.clear is not None:
            return self.clear.national_id_key
        return national_id_key((self.fields or {}).get("national_id"))


def pending_records(
    conn: Connection, system: str, stream: str, after_seq: int, limit: int = PUBLISH_CHUNK
) -> list[Pending]:
    """The next mapped or deleted records landed after `after_seq`, in landing order."""
    join = landing.outerjoin(
        source_records,
        same_source(landing, source_records),
    )
    query = (
        sa.select(
            landing.c.source_id,
            landing.c.seq,
            landing.c.status,
            landing.c.run_id.label("landing_run"),
            landing.c.landed_at,
            source_records.c.fields,
            source_records.c.observed_at,
            source_records.c.run_id,
        )
        .select_from(join)
        .where(landing.c.system == system, landing.c.stream == stream, landing.c.seq > after_seq)
        .where(landing.c.status.in_(("mapped", "deleted")))
        .order_by(landing.c.seq)
        .limit(limit)
    )
    pending = []
    for row in conn.execute(query):
        if row.status == "deleted":
            pending.append(
                Pending(row.source_id, None, _iso(row.landed_at), row.landing_run, row.seq)
            )
        else:
            pending.append(
                Pending(
                    row.source_id, loads(row.fields), _iso(row.observed_at), row.run_id, row.seq
                )
            )
    return pending


def publish(
    conn: Connection,
    system: str,
    stream: str,
    records: Sequence[Pending],
    priority: Sequence[str],
    run_id: str,
    push: outbox.Plan | None = None,
) -> int:
    """Link `records` to residents and publish the golden records they touch. Returns touched.

    A record whose `fields` is None was deleted in its island: its link goes, and its
    resident is rebuilt from what remains (or retired when nothing does).
    """
    lock_residents(conn)
    ids = [r.source_id for r in records]
    previous = _existing_links(conn, system, stream, ids)
    present = [r for r in records if not r.deleted]
    gone = [r.source_id for r in records if r.deleted]
    assigned, founded = _assign(conn, system, stream, present, previous)
    stamp = now()
    at = timestamp(conn, stamp)
    insert_rows(
        conn,
        links,
        ("system", "stream", "source_id", "resident_id", "rule", "run_id", "linked_at"),
        [(system, stream, r.source_id, *assigned[r.source_id], run_id, at) for r in present],
        upsert_on=("system", "stream", "source_id"),
    )
    # The next resolution pass matches these against the existing residents (reconcile.py).
    insert_rows(
        conn,
        resolution_queue,
        ("system", "stream", "source_id", "run_id", "queued_at"),
        [(system, stream, r.source_id, run_id, at) for r in present],
        upsert_on=("system", "stream", "source_id"),
    )
    if gone:
        conn.execute(
            links.delete().where(
                links.c.system == system,
                links.c.stream == stream,
                member_of(conn, links.c.source_id, gone),
            )
        )
    touched = {rid for rid, _ in assigned.values()} | set(previous.values())
    founders: dict[str, list[Pending]] = defaultdict(list)
    for r in present:
        rid = assigned[r.source_id][0]
        if rid in founded:
            founders[rid].append(r)
    # A resident founded from one record whose texts the extract worker made: filled in here.
    # Subscribed islands need the record itself (outbox): then it is built as any other.
    ready = {
        rid: filled(rs[0].founding, rid, rs[0].run_id, rs[0].observed_at)
        for rid, rs in founders.items()
        if len(rs) == 1 and rs[0].founding is not None and not push
    }
    observations: dict[str, list[Observation]] = {
        rid: [
            Observation(system, stream, r.source_id, r.fields or {}, r.observed_at, r.run_id)
            for r in rs
        ]
        for rid, rs in founders.items()
        if rid not in ready
    }
    existing = sorted(touched - founded)
    observations.update(_observations_of(conn, existing))
    _write_golden(conn, founded, existing, observations, priority, run_id, stamp, push, ready)
    return len(touched)


def _existing_links(
    conn: Connection, system: str, stream: str, ids: Sequence[str]
) -> dict[str, str]:
    query = sa.select(links.c.source_id, links.c.resident_id).where(
        links.c.system == system, links.c.stream == stream, member_of(conn, links.c.source_id, ids)
    )
    return {row.source_id: row.resident_id for row in conn.execute(query)}


def _key_owners(conn: Connection, keys: Sequence[str]) -> dict[str, str]:
    if not keys:
        return {}
    query = sa.select(resident_keys.c.key, resident_keys.c.resident_id).where(
        resident_keys.c.kind == NATIONAL_ID, member_of(conn, resident_keys.c.key, keys)
    )
    return {row.key: row.resident_id for row in conn.execute(query)}


def _keys_of_residents(conn: Connection, resident_ids: Sequence[str]) -> dict[str, set[str]]:
    held: dict[str, set[str]] = defaultdict(set)
    if not resident_ids:
        return held
    query = sa.select(resident_keys.c.resident_id, resident_keys.c.key).where(
        resident_keys.c.kind == NATIONAL_ID,
        member_of(conn, resident_keys.c.resident_id, resident_ids),
    )
    for row in conn.execute(query):
        held[row.resident_id].add(row.key)
    return held


def _assign(
    conn: Connection,
    system: str,
    stream: str,
    records: Sequence[Pending],
    previous: dict[str, str],
) -> tuple[dict[str, tuple[str, str]], set[str]]:
    """Decide each record's resident: (resident id, rule). Also returns the residents founded."""
    keys = {r.source_id: r.lookup_key() for r in records}
    owners = _key_owners(conn, sorted({k for k in keys.values() if k}))
    # Residents this chunk would give a national id they lack; they may already hold another.
    candidates = {previous[s] for s, k in keys.items() if k and k not in owners and s in previous}
    held = _keys_of_residents(conn, sorted(candidates))
    # Records neither national id nor earlier link places: their references may.
    unplaced = [
        sid
        for sid, k in keys.items()
        if not (k and k in owners)
        and (sid not in previous or bool(k and held.get(previous[sid], set()) - {k}))
    ]
    near = references.neighbours(conn, system, stream, unplaced)
    if near:
        for rid, kept in _keys_of_residents(conn, sorted(set(near.residents.values()))).items():
            held.setdefault(rid, set()).update(kept)
    assigned: dict[str, tuple[str, str]] = {}
    founded: set[str] = set()
    new_keys: list[tuple[str, str, str]] = []
    fresh_ids = iter(uuid7_batch(len(records)))
    for r in records:
        key, before = keys[r.source_id], previous.get(r.source_id)
        if key and key in owners:
            assigned[r.source_id] = (owners[key], "national_id")
            # A later record of the chunk may name this one: its resident holds this id.
            held.setdefault(owners[key], set()).add(key)
            continue
        if before and not (key and held.get(before, set()) - {key}):
            rid, rule = before, "kept"
        elif joined := _referenced(conn, (system, stream), r, key, near, assigned, held):
            rid, rule = joined, references.RULE
        else:
            rid, rule = next(fresh_ids), "new"
            founded.add(rid)
        if key:
            owners[key] = rid
            held.setdefault(rid, set()).add(key)
            new_keys.append((NATIONAL_ID, key, rid))
            rule = "national_id" if rule == "new" else rule
        assigned[r.source_id] = (rid, rule)
    # In key order: the keys are hashes, so a batch's keys land all over the index; sorted,
    # each index page is visited once per batch (a quarter less time on the ingest benchmark).
    insert_rows(conn, resident_keys, ("kind", "key", "resident_id"), sorted(new_keys))
    return assigned, founded


def _referenced(
    conn: Connection,
    where: tuple[str, str],
    record: Pending,
    key: str | None,
    near: references.Neighbours,
    assigned: dict[str, tuple[str, str]],
    held: dict[str, set[str]],
) -> str | None:
    """The resident a record's known cross-system ids lead to, or None.

    The records it refers to and those that refer to it may belong to several residents
    (the resolution pass joins them later): the oldest is taken (ids are time-ordered), as
    a cluster keeps its oldest id, skipping any that holds another permanent national id.
    """
    others = near.of.get(record.source_id)
    if not others:
        return None
    options: dict[str, tuple[str, str, str]] = {}
    for other in sorted(others):
        if other[:2] == where and other[2] in assigned:
            rid: str | None = assigned[other[2]][0]  # placed earlier in this chunk
        else:
            rid = near.residents.get(other)
        if rid:
            options.setdefault(rid, other)
    for rid in sorted(options):
        if key and held.get(rid, set()) - {key}:
            _warn_refused(conn, where, record, options[rid], rid)
            continue
        return rid
    return None


def _warn_refused(
    conn: Connection, where: tuple[str, str], record: Pending, other: tuple[str, str, str], rid: str
) -> None:
    """Say (masked) why a reference was not followed: it would give a resident two ids."""
    theirs = "of its own"  # founded in this chunk: no golden record to read it from yet
    current = _current_records(conn, [rid]).get(rid)
    if current is not None:
        sealed = loads(current[1]).get("national_id")
        theirs = _shown(sealed) if isinstance(sealed, str) else theirs
    ours = (record.fields or {}).get("national_id")
    log.warning(
        "a known cross-system id links %s.%s %s (national id %s) with %s.%s %s, whose "
        "resident %s holds national id %s: not linked, two national ids are two residents",
        *where,
        _shown(record.source_id),
        _shown(ours) if isinstance(ours, str) else "none",
        other[0],
        other[1],
        _shown(other[2]),
        rid,
        theirs,
    )


def _shown(text: str) -> str:
    """A stored id as logs show it: opened if sealed, then masked."""
    return mask_text(unseal_text(text))


def _observations_of(conn: Connection, resident_ids: Sequence[str]) -> dict[str, list[Observation]]:
    found: dict[str, list[Observation]] = defaultdict(list)
    if not resident_ids:
        return found
    join = links.join(
        source_records,
        same_source(links, source_records),
    )
    query = (
        sa.select(
            links.c.resident_id,
            links.c.system,
            links.c.stream,
            links.c.source_id,
            source_records.c.fields,
            source_records.c.observed_at,
            source_records.c.run_id,
        )
        .select_from(join)
        .where(member_of(conn, links.c.resident_id, resident_ids))
    )
    for row in conn.execute(query):
        found[row.resident_id].append(
            Observation(
                row.system,
                row.stream,
                row.source_id,
                loads(row.fields),
                _iso(row.observed_at),
                row.run_id,
            )
        )
    return found


def _current_records(conn: Connection, resident_ids: Sequence[str]) -> dict[str, tuple[int, str]]:
    if not resident_ids:
        return {}
    join = residents.join(
        resident_versions,
        sa.and_(
            residents.c.resident_id == resident_versions.c.resident_id,
            residents.c.version == resident_versions.c.version,
        ),
    )
    query = (
        sa.select(residents.c.resident_id, residents.c.version, resident_versions.c.record)
        .select_from(join)
        .where(member_of(conn, residents.c.resident_id, resident_ids))
    )
    return {row.resident_id: (row.version, row.record) for row in conn.execute(query)}


def _write_golden(
    conn: Connection,
    founded: set[str],
    existing: Sequence[str],
    observations: dict[str, list[Observation]],
    priority: Sequence[str],
    run_id: str,
    stamp: datetime,
    push: outbox.Plan | None = None,
    ready: dict[str, tuple[str, str]] | None = None,
) -> None:
    """Write the new golden record versions; `ready`: founded residents' texts, made already."""
    ready = ready or {}
    current = _current_records(conn, existing)
    pins = load_pins(conn, existing)  # a steward's pins survive every rebuild
    at = timestamp(conn, stamp)
    new_rows, version_rows, lineage_rows, updates, retired = [], [], [], [], []
    fresh: list[outbox.NewVersion] = []  # what subscribed islands may need to hear about
    for rid in sorted(founded) + list(existing):
        made = ready.get(rid)
        if made is not None:  # founded: version 1, no pins, nobody subscribed
            new_rows.append((rid, 1, True, at, at))
            version_rows.append((rid, 1, made[0], run_id, at))
            lineage_rows.append((rid, 1, made[1]))
            continue
        obs = observations.get(rid, [])
        if not obs:
            retired.append(rid)
            continue
        record, fields = build_golden(rid, obs, priority)
        if rid in pins:
            apply_pins(record, fields, pins[rid])
        text = dumps(record)
        version, old_text = current.get(rid, (0, None))
        if text == old_text:
            continue
        version += 1
        if rid in founded:
            new_rows.append((rid, version, True, at, at))
        else:
            updates.append({"rid": rid, "v": version, "at": stamp})
        version_rows.append((rid, version, text, run_id, at))
        lineage_rows.append((rid, version, dumps(fields)))
        fresh.append(outbox.NewVersion(rid, version, record, fields, obs))
    insert_rows(
        conn, residents, ("resident_id", "version", "active", "created_at", "updated_at"), new_rows
    )
    if updates:
        conn.execute(
            residents.update()
            .where(residents.c.resident_id == sa.bindparam("rid"))
            .values(version=sa.bindparam("v"), updated_at=sa.bindparam("at"), active=True),
            updates,
        )
    insert_rows(
        conn,
        resident_versions,
        ("resident_id", "version", "record", "run_id", "created_at"),
        version_rows,
    )
    insert_rows(conn, lineage, ("resident_id", "version", "fields"), lineage_rows)
    outbox.enqueue(conn, push, fresh, run_id)  # same transaction: both or neither
    if retired:
        # No source record describes them any more; the record stays for history and lineage.
        conn.execute(
            residents.update()
            .where(member_of(conn, residents.c.resident_id, retired))
            .values(active=False, updated_at=stamp)
        )


def _iso(value: datetime | str) -> str:
    return value if isinstance(value, str) else as_utc(value).isoformat()
