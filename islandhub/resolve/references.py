"""Known cross-system ids: kept with each source record, and the residents they lead to.

Some islands hold another island's id for a person (billing keeps the resident portal's
customer number). A mapping's `references:` section reads it (mapping/engine.py); landing
keeps it in `record_references`, in the transaction that writes the record's
`source_records` row, and removes it wherever that row goes. A reference is deterministic
evidence that the two records are one person:

- publishing links a record new to the hub to the resident of a record it refers to, or of
  records that refer to it (rule `reference`, publish.py), unless that resident holds
  another permanent national id;
- the resolution pass keeps the two records together as if a steward had merged them before
  any decision was made (`must_links`), so a later split wins over a reference.

A HETU-shaped id is sealed like the source id it names (a register keys its records by
HETU), so the stored reference equals the referenced record's stored source id.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from islandhub.privacy.at_rest import seal_source_id
from islandhub.store.bulk import insert_rows, member_of, of_sources
from islandhub.store.tables import links, record_references

RULE = "reference"  # links.rule of a record linked by a reference
COLUMNS = ("system", "stream", "source_id", "ref_system", "ref_stream", "ref_source_id")
RecordKey = tuple[str, str, str]  # (system, stream, source_id)
Target = tuple[str, str, str]  # (ref_system, ref_stream, ref_source_id), as stored


def as_stored(references: Mapping[str, str]) -> tuple[Target, ...]:
    """A mapped record's references (`system.stream` -> source id) as the store keeps them."""
    targets = []
    for name, source_id in sorted(references.items()):
        system, stream = name.split(".", 1)
        targets.append((system, stream, seal_source_id(source_id)))
    return tuple(targets)


# --- landing: written and removed with the records --------------------------------------------


def any_of_stream(conn: Connection, system: str, stream: str) -> bool:
    """Whether any record of the stream holds a reference (one probe of the primary key)."""
    query = sa.select(record_references.c.source_id).where(
        record_references.c.system == system, record_references.c.stream == stream
    )
    return conn.execute(query.limit(1)).first() is not None


def stored(
    conn: Connection, system: str, stream: str, ids: Sequence[str]
) -> dict[str, tuple[Target, ...]]:
    """The references the store holds for `ids` of a stream, in `as_stored`'s order."""
    found: dict[str, list[Target]] = defaultdict(list)
    if not ids:
        return {}
    t = record_references.c
    query = (
        sa.select(t.source_id, t.ref_system, t.ref_stream, t.ref_source_id)
        .where(t.system == system, t.stream == stream, member_of(conn, t.source_id, ids))
        .order_by(t.source_id, t.ref_system, t.ref_stream)
    )
    for row in conn.execute(query):
        found[row.source_id].append((row.ref_system, row.ref_stream, row.ref_source_id))
    return {sid: tuple(targets) for sid, targets in found.items()}


def remove(conn: Connection, system: str, stream: str, ids: Sequence[str]) -> None:
    """Forget the references of `ids` (their records left, or are mapped again)."""
    if ids:
        conn.execute(
            record_references.delete().where(
                record_references.c.system == system,
                record_references.c.stream == stream,
                member_of(conn, record_references.c.source_id, ids),
            )
        )


def replace(
    conn: Connection,
    system: str,
    stream: str,
    ids: Sequence[str],
    found: Mapping[str, tuple[Target, ...]],
) -> None:
    """The references of `ids` become `found` (a record missing from it refers to nothing)."""
    remove(conn, system, stream, ids)
    rows = [(system, stream, sid, *target) for sid in ids for target in found.get(sid, ())]
    insert_rows(conn, record_references, COLUMNS, rows)


# --- publishing: the residents a new record's references lead to -------------------------------


@dataclass
class Neighbours:
    """The records a chunk's records refer to or are referred to by, and their residents."""

    of: dict[str, set[RecordKey]] = field(default_factory=dict)  # source id -> other records
    residents: dict[RecordKey, str] = field(default_factory=dict)  # as linked before the chunk

    def __bool__(self) -> bool:
        return bool(self.of)


def neighbours(conn: Connection, system: str, stream: str, ids: Sequence[str]) -> Neighbours:
    """Both directions for `ids` of a stream: what they refer to, and what refers to them.

    Two probes first: most streams neither hold references nor are referred to, and then
    publishing pays two indexed single-row reads per chunk, not a lookup of every id.
    """
    found = Neighbours()
    if not ids:
        return found
    t = record_references.c
    refers = any_of_stream(conn, system, stream)
    referred = (
        conn.execute(
            sa.select(t.source_id).where(t.ref_system == system, t.ref_stream == stream).limit(1)
        ).first()
        is not None
    )
    if refers:
        query = sa.select(t.source_id, t.ref_system, t.ref_stream, t.ref_source_id).where(
            t.system == system, t.stream == stream, member_of(conn, t.source_id, ids)
        )
        for r in conn.execute(query):
            other = (r.ref_system, r.ref_stream, r.ref_source_id)
            found.of.setdefault(r.source_id, set()).add(other)
    if referred:
        query = sa.select(t.system, t.stream, t.source_id, t.ref_source_id).where(
            t.ref_system == system, t.ref_stream == stream, member_of(conn, t.ref_source_id, ids)
        )
        for r in conn.execute(query):
            found.of.setdefault(r.ref_source_id, set()).add((r.system, r.stream, r.source_id))
    if found.of:
        found.residents = _residents_of(conn, {o for others in found.of.values() for o in others})
    return found


def _residents_of(conn: Connection, records: Iterable[RecordKey]) -> dict[RecordKey, str]:
    """The resident each of `records` is linked to (records not linked are left out)."""
    columns = (links.c.system, links.c.stream, links.c.source_id, links.c.resident_id)
    query = sa.select(*columns).where(of_sources(conn, links, records))
    return {(r.system, r.stream, r.source_id): r.resident_id for r in conn.execute(query)}


# --- the resolution pass: must-links ------------------------------------------------------------


def must_links(conn: Connection) -> list[frozenset[RecordKey]]:
    """Every reference between two linked records, as a must-link pair (oldest-first order).

    Only pairs whose both records are linked to a resident: a reference to a record the hub
    does not hold (yet) constrains nothing.
    """
    referring = links.alias("referring")
    referred = links.alias("referred")
    t = record_references.c
    join = record_references.join(
        referring,
        sa.and_(
            referring.c.system == t.system,
            referring.c.stream == t.stream,
            referring.c.source_id == t.source_id,
        ),
    ).join(
        referred,
        sa.and_(
            referred.c.system == t.ref_system,
            referred.c.stream == t.ref_stream,
            referred.c.source_id == t.ref_source_id,
        ),
    )
    query = (
        sa.select(t.system, t.stream, t.source_id, t.ref_system, t.ref_stream, t.ref_source_id)
        .select_from(join)
        .order_by(t.system, t.stream, t.source_id, t.ref_system, t.ref_stream)
    )
    rows = conn.execute(query)
    return [frozenset({tuple(r[:3]), tuple(r[3:])}) for r in rows]
