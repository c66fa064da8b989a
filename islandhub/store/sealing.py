"""Sealed national ids in the store: the key check on opening, and the pass that (re)seals.

The store keeps the fingerprint of the key its national ids are sealed with
(`sealing_keys`). `check_key` runs whenever a store is opened: a store sealed with another
key is refused with a KeyMismatch that says what to set, before anything is sealed with the
wrong key or a lookup by national id silently finds nobody.

`reseal` rewrites every stored value under the at-rest rule (privacy/at_rest.py) from one
form to another, in the caller's transaction:

- clear -> sealed: migration 0008, a store written before national ids were sealed;
- sealed -> clear: that migration's downgrade;
- sealed with one key -> sealed with another: `islandhub privacy rotate-key`.

Source ids are primary-key columns, so their new values are collected while a table is read
and written after it (a keyset scan must not meet the rows it moved). The national-id index
(`resident_keys`) cannot be read back, so it is rebuilt from the national ids that source
records and golden records hold: each old key is replaced by the new key of the same id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from islandhub.privacy import crypto
from islandhub.privacy.at_rest import SEALED_FIELDS, holds_hetu, may_hold_hetu
from islandhub.privacy.crypto import PREFIX, KeyMismatch, Keyring
from islandhub.privacy.masking import mask_text
from islandhub.store.db import dumps, loads, now
from islandhub.store.tables import (
    audit_log,
    dq_results,
    landing,
    lineage,
    links,
    outbox,
    quarantine,
    record_references,
    resident_keys,
    resident_versions,
    resolution_frame,
    resolution_keys,
    resolution_marks,
    resolution_queue,
    runs,
    sealing_keys,
    source_records,
    steward_decisions,
    tombstones,
)

PURPOSE = "national_id"
CHUNK = 2000
_NATIONAL_ID = "national_id"  # resident_keys.kind (resolve/keys.py)
_REKEYING = "national_id_old"  # the kind old keys wait under while the index is rebuilt


# --- the key check ------------------------------------------------------------------------


def verify(engine: sa.Engine, where: str) -> None:
    """On opening: refuse a store sealed with another key; one without a fingerprint takes ours.

    `where` names the store in the message (its URL, password hidden). Reads only, unless
    the fingerprint is missing (the migration records it; this is the fallback).
    """
    with engine.connect() as conn:
        stored = stored_fingerprint(conn)
    if stored is None:
        with engine.connect() as conn:
            # SQLite: the write lock first; a deferred transaction that reads, then writes,
            # fails at once ("database is locked") when another process wrote meanwhile.
            conn.execution_options(sqlite_immediate=True)
            with conn.begin():
                if stored_fingerprint(conn) is None:
                    remember(conn, crypto.current())
    with engine.connect() as conn:
        check_key(conn, where)


def check_key(conn: Connection, where: str) -> None:
    """Raise KeyMismatch unless the store is sealed with this process's key (or not at all)."""
    mine = crypto.current()
    stored = stored_fingerprint(conn)
    if stored is not None and stored != mine.fingerprint():
        raise KeyMismatch(
            f"the store at {where} holds national ids sealed with another key (fingerprint "
            f"{stored[:12]}...), not with {mine.source} (fingerprint "
            f"{mine.fingerprint()[:12]}...): set {crypto.KEY_ENV} to the key the store was "
            "sealed with (docs/privacy.md, 'The national-id key')"
        )


def stored_fingerprint(conn: Connection) -> str | None:
    """The fingerprint of the key the store is sealed with (None: not recorded yet)."""
    return conn.execute(
        sa.select(sealing_keys.c.fingerprint).where(sealing_keys.c.purpose == PURPOSE)
    ).scalar_one_or_none()


def remember(conn: Connection, keys: Keyring) -> None:
    """Record `keys` as the key the store is sealed with (replacing any other)."""
    conn.execute(sealing_keys.delete().where(sealing_keys.c.purpose == PURPOSE))
    conn.execute(
        sealing_keys.insert().values(
            purpose=PURPOSE, fingerprint=keys.fingerprint(), sealed_at=now()
        )
    )


# --- one form to another ------------------------------------------------------------------


def legacy_key(hetu: str) -> str:
    """The national-id index key before 0008: an unkeyed SHA-256 (kept for the downgrade)."""
    return hashlib.sha256(f"{_NATIONAL_ID}:{hetu}".encode()).hexdigest()


def _permanent(hetu: str) -> bool:
    return not (len(hetu) == 11 and hetu[7:10].isdigit() and int(hetu[7:10]) >= 900)


@dataclass
class Change:
    """From which form to which: the keyrings before and after (None: in clear)."""

    before: Keyring | None
    after: Keyring | None
    national_ids: set[str] = field(default_factory=set)  # seen in clear, for the index
    counts: dict[str, int] = field(default_factory=dict)

    def text(self, value: str, *, forced: bool = False) -> str:
        """One stored text in the new form (unchanged when there is nothing to seal)."""
        plain, was_sealed = self._open(value)
        if was_sealed or holds_hetu(plain) or (forced and plain.strip()):
            return self.after.seal(plain) if self.after else plain
        return value

    def _open(self, value: str) -> tuple[str, bool]:
        if self.before is None or not value.startswith(PREFIX):
            return value, False
        try:
            return self.before.unseal(value), True
        except KeyMismatch:
            return value, False  # an island's text that only looks sealed

    def tree(self, value: Any, force: Collection[str] = ()) -> Any:
        """A JSON value in the new form; national ids under `force` keys are remembered."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.tree(item, force) for item in value]
        if not isinstance(value, dict):
            return value
        result = {}
        for key, item in value.items():
            name = self.text(key) if isinstance(key, str) else key
            if key in force and isinstance(item, str) and item:
                plain, _ = self._open(item)
                if key == _NATIONAL_ID:
                    self.national_ids.add(plain)
                result[name] = self.text(item, forced=True)
            else:
                result[name] = self.tree(item, force)
        return result

    def document(self, text: str | None, force: Collection[str] = ()) -> str | None:
        """A stored JSON document in the new form (the same text when nothing changes)."""
        if not text:
            return text
        quick = PREFIX not in text and not any(f'"{k}"' in text for k in force)
        if quick and not may_hold_hetu(text):
            return text
        new = dumps(self.tree(loads(text), force))
        return new if new != text else text

    def source_id(self, value: str) -> str:
        """A source id in the new form.

        A quarantined record without an id of its own was named by a hash of its payload
        ("@hash:..."): unkeyed before sealing, or keyed with the old key. Beside its masked
        excerpt such a hash could give a HETU away to whoever has the old key (or anyone,
        unkeyed), so it is named by a hash under the new key instead.
        """
        if self.after is not None:
            for mark in ("@hash:", "@unstorable:"):
                if value.startswith(mark):
                    return mark + self.after.digest(value)
        return self.text(value)

    @staticmethod
    def index_key(keys: Keyring | None, hetu: str) -> str:
        """The national-id index key of a clear id under `keys` (None: the legacy hash)."""
        return keys.lookup_hash(hetu) if keys else legacy_key(hetu)


def _masked(value: str | None) -> str | None:
    return mask_text(value) if value else value


def reseal(conn: Connection, change: Change) -> dict[str, int]:
    """Rewrite every stored national id from `change.before`'s form to `change.after`'s.

    Returns the rows changed per table. Runs in `conn`'s transaction.
    """
    _landing(conn, change)
    _source_records(conn, change)
    for table in (links, tombstones, resolution_queue):
        _rewrite(conn, table, ("system", "stream", "source_id"), change, lambda _r: {})
    _rewrite(conn, quarantine, ("system", "stream", "source_id"), change, _quarantine_row)
    _references(conn, change)
    _rewrite(conn, resident_versions, ("resident_id", "version"), change, _golden_row(change))
    _rewrite(conn, lineage, ("resident_id", "version"), change, _json_row("fields", change))
    _rewrite(conn, outbox, ("id",), change, _outbox_row(change))
    _rewrite(conn, steward_decisions, ("id",), change, _decision_row(change))
    _rewrite(conn, audit_log, ("id",), change, _mask_row("purpose", "detail"))
    _rewrite(conn, runs, ("run_id",), change, _mask_row("error"))
    _rewrite(conn, dq_results, ("id",), change, _mask_row("results"))
    _rekey(conn, change)
    # The standardised frame kept for matching holds lookup hashes and sealed source ids of
    # the old key: it is a cache, so it goes, and the next resolution pass rebuilds it.
    conn.execute(resolution_frame.delete())
    if sa.inspect(conn).has_table(resolution_keys.name):  # migration 0008 runs before 0010
        conn.execute(resolution_keys.delete())
        conn.execute(resolution_marks.delete())
    if change.after is not None:
        remember(conn, change.after)
    else:
        conn.execute(sealing_keys.delete().where(sealing_keys.c.purpose == PURPOSE))
    return change.counts


# --- the tables ---------------------------------------------------------------------------

Row = Any
RowChange = Callable[[Row], dict[str, Any]]


def _landing(conn: Connection, change: Change) -> None:
    from islandhub.landing import content_hash

    def row(r: Row) -> dict[str, Any]:
        payload = change.document(r.payload)
        if payload == r.payload:
            return {}
        # The hash follows the payload: an unchanged record must still look unchanged.
        return {"payload": payload, "content_hash": content_hash(payload or "")}

    _rewrite(
        conn,
        landing,
        ("system", "stream", "source_id"),
        change,
        row,
        ("payload", "content_hash"),
    )


def _source_records(conn: Connection, change: Change) -> None:
    def row(r: Row) -> dict[str, Any]:
        new = {"fields": change.document(r.fields, SEALED_FIELDS), "warnings": _masked(r.warnings)}
        return {k: v for k, v in new.items() if v != getattr(r, k)}

    _rewrite(
        conn,
        source_records,
        ("system", "stream", "source_id"),
        change,
        row,
        ("fields", "warnings"),
    )


def _references(conn: Connection, change: Change) -> None:
    """A reference names another record by its source id: both ids take the new form alike."""
    if not sa.inspect(conn).has_table(record_references.name):
        return  # migration 0008 runs before 0009 creates the table

    def row(r: Row) -> dict[str, Any]:
        named = change.source_id(r.ref_source_id)
        return {"ref_source_id": named} if named != r.ref_source_id else {}

    keys = ("system", "stream", "source_id", "ref_system", "ref_stream")
    _rewrite(conn, record_references, keys, change, row, ("ref_source_id",))


def _quarantine_row(r: Row) -> dict[str, Any]:
    new = {"reasons": _masked(r.reasons), "excerpt": _masked(r.excerpt)}
    return {k: v for k, v in new.items() if v != getattr(r, k)}


def _golden_row(change: Change) -> RowChange:
    def row(r: Row) -> dict[str, Any]:
        record = change.document(r.record, SEALED_FIELDS)
        return {"record": record} if record != r.record else {}

    return row


def _json_row(column: str, change: Change) -> RowChange:
    def row(r: Row) -> dict[str, Any]:
        text = change.document(getattr(r, column))
        return {column: text} if text != getattr(r, column) else {}

    return row


def _outbox_row(change: Change) -> RowChange:
    def row(r: Row) -> dict[str, Any]:
        new = {
            "payload": change.document(r.payload, SEALED_FIELDS),
            "last_error": _masked(r.last_error),
        }
        return {k: v for k, v in new.items() if v != getattr(r, k)}

    return row


def _decision_row(change: Change) -> RowChange:
    def row(r: Row) -> dict[str, Any]:
        new = {
            "records": change.document(r.records),
            "apart": change.document(r.apart),
            "value": change.document(r.value),
            "reason": _masked(r.reason),
        }
        return {k: v for k, v in new.items() if v != getattr(r, k)}

    return row


def _mask_row(*columns: str) -> RowChange:
    def row(r: Row) -> dict[str, Any]:
        new = {c: _masked(getattr(r, c)) for c in columns}
        return {k: v for k, v in new.items() if v != getattr(r, k)}

    return row


_COLUMNS: dict[str, tuple[str, ...]] = {
    "links": (),
    "tombstones": (),
    "resolution_queue": (),
    "quarantine": ("reasons", "excerpt"),
    "resident_versions": ("record",),
    "lineage": ("fields",),
    "outbox": ("payload", "last_error"),
    "steward_decisions": ("records", "apart", "value", "reason"),
    "audit_log": ("purpose", "detail"),
    "runs": ("error",),
    "dq_results": ("results",),
}


def _rewrite(
    conn: Connection,
    table: sa.Table,
    keys: Sequence[str],
    change: Change,
    row_change: RowChange,
    columns: Sequence[str] | None = None,
) -> None:
    """Apply `row_change` to every row; source ids (a key column) move after the scan."""
    read = tuple(columns if columns is not None else _COLUMNS[table.name])
    moves: list[dict[str, Any]] = []
    changed = 0
    for rows in _chunks(conn, table, keys, read):
        updates = []
        for r in rows:
            values = row_change(r)
            if values:
                updates.append({**{f"k_{k}": getattr(r, k) for k in keys}, **values})
            if "source_id" in keys:
                moved = change.source_id(r.source_id)
                if moved != r.source_id:
                    moves.append({**{f"k_{k}": getattr(r, k) for k in keys}, "new_id": moved})
        changed += _update(conn, table, keys, updates)
    if moves:
        where = sa.and_(*(table.c[k] == sa.bindparam(f"k_{k}") for k in keys))
        for start in range(0, len(moves), CHUNK):
            conn.execute(
                table.update().where(where).values(source_id=sa.bindparam("new_id")),
                moves[start : start + CHUNK],
            )
    change.counts[table.name] = changed + len(moves)


def _chunks(
    conn: Connection, table: sa.Table, keys: Sequence[str], columns: Sequence[str]
) -> Iterator[list[Row]]:
    order = [table.c[k] for k in keys]
    after: tuple[Any, ...] | None = None
    while True:
        query = sa.select(*order, *(table.c[c] for c in columns)).order_by(*order).limit(CHUNK)
        if after is not None:
            query = query.where(sa.tuple_(*order) > sa.tuple_(*after))
        rows = list(conn.execute(query).all())
        if not rows:
            return
        yield rows
        after = tuple(getattr(rows[-1], k) for k in keys)


def _update(
    conn: Connection, table: sa.Table, keys: Sequence[str], updates: list[dict[str, Any]]
) -> int:
    """Write changed columns, grouped by which columns changed (executemany per group)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for u in updates:
        names = tuple(sorted(k for k in u if not k.startswith("k_")))
        groups.setdefault(names, []).append(u)
    where = sa.and_(*(table.c[k] == sa.bindparam(f"k_{k}") for k in keys))
    for names, rows in groups.items():
        params = [{**{k: v for k, v in u.items() if k.startswith("k_")},
                   **{f"v_{n}": u[n] for n in names}} for u in rows]  # fmt: skip
        statement = table.update().where(where).values({n: sa.bindparam(f"v_{n}") for n in names})
        conn.execute(statement, params)
    return len(updates)


def _rekey(conn: Connection, change: Change) -> None:
    """Rebuild the national-id index: each old key becomes the new key of the same id."""
    kind = resident_keys.c.kind
    conn.execute(resident_keys.update().where(kind == _NATIONAL_ID).values(kind=_REKEYING))
    pairs = [
        {
            "old": change.index_key(change.before, hetu),
            "new": change.index_key(change.after, hetu),
        }
        for hetu in sorted(change.national_ids)
        if _permanent(hetu)
    ]
    statement = (
        resident_keys.update()
        .where(kind == _REKEYING, resident_keys.c.key == sa.bindparam("old"))
        .values(kind=_NATIONAL_ID, key=sa.bindparam("new"))
    )
    moved = 0
    for start in range(0, len(pairs), CHUNK):
        result = conn.execute(statement, pairs[start : start + CHUNK])
        moved += int(result.rowcount or 0)
    # A key whose id no record holds any more cannot be carried over, and an unkeyed hash
    # must not stay behind: it would let anyone try every HETU against it.
    dropped = conn.execute(resident_keys.delete().where(kind == _REKEYING)).rowcount
    change.counts["resident_keys"] = moved
    change.counts["resident_keys_dropped"] = int(dropped or 0)


# --- the three uses -------------------------------------------------------------------------


def seal_clear_store(conn: Connection) -> dict[str, int]:
    """Seal a store written before national ids were sealed (migration 0008)."""
    return reseal(conn, Change(None, crypto.current()))


def open_sealed_store(conn: Connection, where: str) -> dict[str, int]:
    """Put every sealed value back in clear (the downgrade of 0008); checks the key first."""
    check_key(conn, where)
    return reseal(conn, Change(crypto.current(), None))


def rotate(conn: Connection, before: Keyring, after: Keyring, where: str) -> dict[str, int]:
    """Seal everything again with `after`; the store must be sealed with `before`."""
    if stored_fingerprint(conn) != before.fingerprint():
        raise KeyMismatch(
            f"the store at {where} is not sealed with {before.source}: rotate from the key it "
            "was sealed with"
        )
    return reseal(conn, Change(before, after))
