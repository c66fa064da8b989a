"""The kept resolution frame: standardised rows and their keys, read whole or by key.

Every current source record has a standardised row in `resolution_frame` (see
`matching.standardise`), reused while its stamp holds, and in `resolution_keys` the 64-bit
hashes of what a pass looks it up by: each blocking rule's values (its candidates) and each
term-frequency column's value (how common that value is). Both are written together, in
one transaction, whenever a record's row is (re)standardised, and deleted together.

A full pass reads the frame whole. An incremental pass reads only the changed records, the
records sharing a blocking key with them and the region it clusters; the frequencies it
weighs pairs with are counted from the keys: the same figures as from the whole frame.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import orjson
import pandas as pd
import sqlalchemy as sa

from islandhub.resolve.settings import ResolutionSettings, Rule
from islandhub.store.bulk import insert_rows, of_sources
from islandhub.store.db import Store, dumps, loads
from islandhub.store.tables import (
    landing,
    resolution_frame,
    resolution_keys,
    resolution_marks,
    same_source,
    source_records,
    sync_state,
)

SOURCE = ("system", "stream", "source_id")
_FRAME_COLUMNS = (*SOURCE, "stamp", "row")
_KEY_COLUMNS = ("key", *SOURCE)
_MARK_KEY = ("system", "stream")
_MARK_COLUMNS = (*_MARK_KEY, "seq", "stamp")
_CHUNK = 5_000  # records per statement when rows and keys are written

Source = tuple[str, str, str]  # system, stream, source_id
Standardiser = Callable[[str, str, str, str], list[Any]]


@dataclass(frozen=True)
class KeySpec:
    """What the keys of a row are made of: the blocking rules and the tf columns."""

    columns: tuple[str, ...]  # the frame's columns, in row order
    rules: tuple[Rule, ...]
    tf: tuple[str, ...]

    @cached_property
    def digest(self) -> str:
        """Short and stable: part of each row's stamp, so other rules mean other keys."""
        text = orjson.dumps([self.columns, self.rules, self.tf])
        return hashlib.blake2b(text, digest_size=6).hexdigest()

    @cached_property
    def _at(self) -> dict[str, int]:
        return {column: i for i, column in enumerate(self.columns)}

    def rule_keys(self, row: Sequence[Any]) -> list[int]:
        """One key per blocking rule whose every column has a value in `row`.

        Two rows share a rule's key exactly when Splink's blocking on that rule pairs them
        (equal values in every column; a missing value pairs with nothing).
        """
        keys = []
        for rule in self.rules:
            values = [row[self._at[column]] for column in rule]
            if all(value is not None for value in values):
                keys.append(_hash("rule", rule, values))
        return keys

    def keys(self, row: Sequence[Any]) -> list[int]:
        """The row's rule keys, and per tf column with a value: the value's and the column's."""
        keys = self.rule_keys(row)
        for column in self.tf:
            value = row[self._at[column]]
            if value is not None:
                keys += [_hash("tf", column, value), _hash("tf rows", column)]
        return keys


def key_spec(columns: Sequence[str], settings: ResolutionSettings) -> KeySpec:
    """The keys `settings` need: their blocking rules and their term-frequency columns."""
    tf = sorted(name for name, options in settings.comparisons.items() if options.term_frequency)
    return KeySpec(tuple(columns), tuple(settings.blocking), tuple(tf))


def _hash(*parts: Any) -> int:
    digest = hashlib.blake2b(orjson.dumps(parts), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)  # a BIGINT on both backends


# --- keeping the frame current -----------------------------------------------------------


def refresh(
    store: Store,
    stamp: str,
    spec: KeySpec | None,
    standardised: Standardiser,
    *,
    whole: bool = False,
    queued: Iterable[Source] = (),
) -> int:
    """Standardise the records whose kept row is missing or stale; drop rows of records gone.

    `stamp`: what a row must carry to be reused (the frame version, the sealing key's
    fingerprint, the key spec's digest), followed by the run that wrote its source record.
    Keys are kept only with a `spec`. Only the records landed since each stream's mark are
    looked at (landing's sequence moves with every change); with `whole`, or without marks
    made with this stamp, every record is (a full pass: it reads every row anyway, and so
    mends whatever changed past landing). The `queued` records (an incremental pass's) are
    looked at too, wherever they landed. Returns how many rows were standardised.
    """
    with store.connect() as conn:
        landed = {
            (r.system, r.stream): r.landed_seq
            for r in conn.execute(
                sa.select(sync_state.c.system, sync_state.c.stream, sync_state.c.landed_seq)
            )
        }
        marks = {(r.system, r.stream): r for r in conn.execute(sa.select(resolution_marks))}
        if not whole and all(s in marks and marks[s].stamp == stamp for s in landed):
            moved = {s: marks[s].seq for s in landed if landed[s] > marks[s].seq}
            stale, gone = _landed_since(conn, stamp, moved, sorted(set(queued)))
        else:
            stale, gone = _every_record(conn, stamp)
    rows = []
    for r in stale:
        row = standardised(r.system, r.stream, r.source_id, r.fields)
        rows.append((r.system, r.stream, r.source_id, stamp + r.run_id, row))
    with store.begin() as conn:
        _forget(conn, gone + [row[:3] for row in rows])
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            insert_rows(
                conn,
                resolution_frame,
                _FRAME_COLUMNS,
                [(*row[:4], dumps(row[4])) for row in chunk],
                upsert_on=SOURCE,
            )
            if spec is not None:
                keys = [(key, *row[:3]) for row in chunk for key in set(spec.keys(row[4]))]
                insert_rows(conn, resolution_keys, _KEY_COLUMNS, keys)
        for start in range(0, len(gone), _CHUNK):
            where = of_sources(conn, resolution_frame, gone[start : start + _CHUNK])
            conn.execute(resolution_frame.delete().where(where))
        marked = [(system, stream, seq, stamp) for (system, stream), seq in landed.items()]
        insert_rows(conn, resolution_marks, _MARK_COLUMNS, marked, upsert_on=_MARK_KEY)
    return len(rows)


def _every_record(conn: sa.Connection, stamp: str) -> tuple[list[Any], list[Source]]:
    """The current records whose row is missing or stale, and the rows of records gone."""
    current = sa.and_(landing.c.status == "mapped", same_source(landing, source_records))
    kept = resolution_frame
    stale = sa.or_(
        kept.c.stamp.is_(None), kept.c.stamp != sa.literal(stamp) + source_records.c.run_id
    )
    query = (
        sa.select(
            source_records.c.system,
            source_records.c.stream,
            source_records.c.source_id,
            source_records.c.run_id,
            source_records.c.fields,
        )
        .select_from(
            source_records.join(landing, current).outerjoin(kept, same_source(kept, source_records))
        )
        .where(stale)
    )
    gone = sa.select(kept.c.system, kept.c.stream, kept.c.source_id).where(
        ~sa.exists(
            sa.select(landing.c.seq).where(same_source(landing, kept), landing.c.status == "mapped")
        )
    )
    return list(conn.execute(query).all()), [(r[0], r[1], r[2]) for r in conn.execute(gone).all()]


def _landed_since(
    conn: sa.Connection, stamp: str, moved: dict[tuple[str, str], int], queued: list[Source]
) -> tuple[list[Any], list[Source]]:
    """As `_every_record`, for the records landed since each stream's mark, and `queued`."""
    kept = resolution_frame
    columns = (
        landing.c.system,
        landing.c.stream,
        landing.c.source_id,
        landing.c.status,
        source_records.c.run_id,
        source_records.c.fields,
        kept.c.stamp,
    )
    joined = landing.outerjoin(source_records, same_source(source_records, landing)).outerjoin(
        kept, same_source(kept, landing)
    )
    wheres = [
        sa.and_(landing.c.system == system, landing.c.stream == stream, landing.c.seq > seq)
        for (system, stream), seq in moved.items()
    ]
    for start in range(0, len(queued), _CHUNK):
        wheres.append(of_sources(conn, landing, queued[start : start + _CHUNK]))
    seen: dict[Source, Any] = {}
    for where in wheres:
        for r in conn.execute(sa.select(*columns).select_from(joined).where(where)).all():
            seen[(r.system, r.stream, r.source_id)] = r
    stale: list[Any] = []
    gone: list[Source] = []
    for source, r in seen.items():
        if r.status == "mapped" and r.run_id is not None:
            if r.stamp != stamp + r.run_id:
                stale.append(r)
        elif r.stamp is not None:
            gone.append(source)
    return stale, gone


def _forget(conn: sa.Connection, sources: Sequence[tuple[str, str, str]]) -> None:
    """Delete the keys of `sources` (their rows are overwritten or deleted by the caller)."""
    for start in range(0, len(sources), _CHUNK):
        chunk = sources[start : start + _CHUNK]
        conn.execute(resolution_keys.delete().where(of_sources(conn, resolution_keys, chunk)))


# --- reading ----------------------------------------------------------------------------


def read_all(store: Store) -> list[list[Any]]:
    """Every kept row, in the order of the source records' key."""
    query = sa.select(resolution_frame.c.row).order_by(*(resolution_frame.c[c] for c in SOURCE))
    with store.connect() as conn:
        texts = conn.execute(query).scalars().all()
    return _parsed_texts(texts)


def count(store: Store) -> int:
    """How many records the kept frame holds."""
    with store.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(resolution_frame)).scalar_one()
        )


def read_rows(store: Store, sources: Iterable[Source]) -> list[list[Any]]:
    """The kept rows of `sources` (those it holds), in the order of the source records' key."""
    wanted = sorted(set(sources))
    found: dict[Source, str] = {}
    kept = resolution_frame
    columns = (kept.c.system, kept.c.stream, kept.c.source_id, kept.c.row)
    with store.connect() as conn:
        for start in range(0, len(wanted), _CHUNK):
            where = of_sources(conn, kept, wanted[start : start + _CHUNK])
            found.update(
                ((r[0], r[1], r[2]), r[3])
                for r in conn.execute(sa.select(*columns).where(where)).all()
            )
    return _parsed_texts([found[source] for source in sorted(found)])


def candidate_texts(
    store: Store, rows: Iterable[Sequence[Any]], spec: KeySpec
) -> list[tuple[Source, str]]:
    """The kept rows of the records sharing a blocking rule's key with one of `rows`.

    `rows` themselves included: exactly the records Splink's prediction blocking would
    compare them with, so that an incremental pass hands Splink those, not the whole store.
    As stored (JSON arrays, for DuckDB to read), each with its (system, stream, source_id).
    """
    keys = sorted({key for row in rows for key in spec.rule_keys(row)})
    found: dict[Source, str] = {}
    kept, source = resolution_frame, [resolution_keys.c[c] for c in SOURCE]
    columns = (kept.c.system, kept.c.stream, kept.c.source_id, kept.c.row)
    with store.connect() as conn:
        for start in range(0, len(keys), _CHUNK):
            # Each record once, however many keys it shares: (system, stream, source_id) IN.
            chunk = keys[start : start + _CHUNK]
            sharing = sa.select(*source).where(resolution_keys.c.key.in_(chunk))
            query = sa.select(*columns).where(
                sa.tuple_(kept.c.system, kept.c.stream, kept.c.source_id).in_(sharing)
            )
            found.update(((r[0], r[1], r[2]), r[3]) for r in conn.execute(query).all())
    return [(source, found[source]) for source in sorted(found)]


def _parsed_texts(texts: Sequence[str]) -> list[list[Any]]:
    # One parse of one JSON array of every row: a fifth of parsing each row on its own.
    parsed: list[list[Any]] = loads("[" + ",".join(texts) + "]")
    return parsed


def frequencies(store: Store, column: str, values: Iterable[Any]) -> pd.DataFrame:
    """Each of `values`' share of `column`'s values over the whole frame (Splink's tf table).

    Counted from the keys: the same shares as `value_counts(normalize=True)` of the whole
    frame's column, for the values asked about only.
    """
    distinct = sorted({v for v in values if v is not None and v == v})  # v == v: not NaN
    by_key = {_hash("tf", column, value): value for value in distinct}
    counted: dict[Any, int] = {}
    keys = list(by_key)
    with store.connect() as conn:
        total = conn.execute(
            sa.select(sa.func.count())
            .select_from(resolution_keys)
            .where(resolution_keys.c.key == _hash("tf rows", column))
        ).scalar_one()
        for start in range(0, len(keys), _CHUNK):
            query = (
                sa.select(resolution_keys.c.key, sa.func.count())
                .where(resolution_keys.c.key.in_(keys[start : start + _CHUNK]))
                .group_by(resolution_keys.c.key)
            )
            counted.update({by_key[key]: n for key, n in conn.execute(query)})
    shares = [counted.get(v, 0) / total if total else 0.0 for v in distinct]
    return pd.DataFrame({column: distinct, f"tf_{column}": shares})
