"""Land and map one batch: prepare it (hash and map, no store needed), then write it in one go.

`prepare` is pure CPU work and may run in the extract worker process; `land` writes the
prepared batch, its quarantine, its deletes and the stream's new state together, so a crash
loses nothing and doubles nothing.

National ids are sealed here, on their way in (islandhub/privacy/at_rest.py): the payload's
national-id fields and every HETU-holding text, HETU-shaped source ids and the mapped
`national_id`. The mapping itself sees the clear values; landed records mapped again
(remap) are opened first. The content hash is taken of the sealed payload: deterministic
sealing keeps an unchanged record's hash, and a hash of the clear payload beside it would
let anyone try every HETU against it. What the writer would otherwise open again (the clear
values the quality check reads, the national-id lookup key publishing needs) is handed to it
beside each mapped record, in memory only (`Item.clear`, resolve/publish.py ClearValues).

A mapped record's references to other islands' records (the mapping's `references:`) are
written with its `source_records` row and replaced when it is mapped again
(resolve/references.py); their HETU-shaped ids are sealed like source ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from connectors.base import Batch, Rejected
from islandhub.gcpause import cyclic_gc_paused
from islandhub.mapping import Mapping
from islandhub.privacy import crypto
from islandhub.privacy.at_rest import (
    SEALED_FIELDS,
    may_hold_hetu,
    seal_known,
    seal_payload,
    seal_source_id,
    seal_tree,
    unseal_tree,
)
from islandhub.privacy.crypto import KeyMismatch, seal, try_unseal
from islandhub.privacy.masking import mask_text
from islandhub.quality import rows as check_rows
from islandhub.resolve import references as refs
from islandhub.resolve.golden import Founding, founding
from islandhub.resolve.keys import clear_national_id_key, national_id_key
from islandhub.resolve.publish import ClearValues, Pending
from islandhub.store import lease
from islandhub.store.bulk import insert_rows, member_of, timestamp
from islandhub.store.db import Store, dumps, loads, now
from islandhub.store.tables import (
    landing,
    quarantine,
    runs,
    source_records,
    sync_state,
    sync_state_history,
    tombstones,
)

SOURCE_KEY = ("system", "stream", "source_id")
LANDING_COLUMNS = (*SOURCE_KEY, "content_hash", "payload", "status", "seq", "run_id", "landed_at")
SOURCE_RECORD_COLUMNS = (*SOURCE_KEY, "fields", "warnings", "run_id", "observed_at")
QUARANTINE_COLUMNS = (*SOURCE_KEY, "reasons", "excerpt", "run_id", "quarantined_at")
EXCERPT_CHARS = 200


@dataclass(slots=True)
class Item:
    """One source record, prepared: its payload and hash, and the mapping's verdict."""

    source_id: str
    payload: str
    digest: str
    fields: str | None  # the mapped values as stored (JSON); None: quarantined
    warnings: str | None  # JSON list, or None when there are none
    reasons: list[str]
    # What the writer would otherwise open again (mapped records only): crosses the pipe to
    # the writer and ends in its Pending record, in memory only; never stored or shown.
    clear: ClearValues | None = field(default=None, repr=False, compare=False)
    # The texts of a resident founded from this record alone, when asked (golden.founding).
    founding: Founding | None = field(default=None, repr=False, compare=False)
    # `fields` as the dict it was serialised from, when loading it back would give an equal
    # one (`_as_stored`): what the worker reads ahead from, in the worker only (not pickled).
    stored: dict[str, Any] | None = field(default=None, repr=False, compare=False)


@dataclass
class Prepared:
    """A batch ready to land: the latest payload per source id, mapped or with its reasons."""

    state: dict[str, Any]
    pulled: int
    items: list[Item]
    no_id: list[str] = field(default_factory=list)  # payloads without a source id
    rejected: list[Rejected] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    superseded_mapped: int = 0  # earlier versions in the same batch, counted as if landed
    superseded_quarantined: int = 0
    # The mapping's `references:`: whether it has any, and the mapped records' own (by
    # stored source id; only records that hold one), so streams without them pay nothing.
    maps_references: bool = False
    references: dict[str, tuple[refs.Target, ...]] = field(default_factory=dict)
    # The quality check's rows of the mapped items, in item order, packed by the extract
    # worker (quality/rows.py) when asked; None: the writer builds them from what it lands.
    check_rows: bytes | None = None

    @property
    def empty(self) -> bool:
        """Nothing to land (only, maybe, a state)."""
        return not (self.items or self.no_id or self.rejected or self.deleted)

    # A batch crosses from the extract worker to the writer pickled. Its items go as a
    # column per attribute of plain values, which pickle writes and reads in C: as objects
    # (an Item and a ClearValues each) they took the worker 55 ms per 10,000 records to
    # write, against 15 ms as columns, and the writer twice as long to read.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        items = state.pop("items")
        state["item_columns"] = (
            [i.source_id for i in items],
            [i.payload for i in items],
            [i.digest for i in items],
            [i.fields for i in items],
            [i.warnings for i in items],
            [i.reasons for i in items],
            [None if i.clear is None else tuple(i.clear) for i in items],
            [None if i.founding is None else tuple(i.founding) for i in items],
        )
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        ids, payloads, digests, fields, warnings, reasons, clear, founded = state.pop(
            "item_columns"
        )
        state["items"] = [
            Item(i, p, d, f, w, r, c and ClearValues(*c), g and Founding(*g))
            for i, p, d, f, w, r, c, g in zip(
                ids, payloads, digests, fields, warnings, reasons, clear, founded, strict=True
            )
        ]
        self.__dict__.update(state)


@dataclass(frozen=True)
class Landed:
    """What one batch landed: sequence numbers after_seq < seq <= last_seq, to publish."""

    after_seq: int
    last_seq: int
    pending: list[Pending]
    # The quality check's rows of `pending` as the worker packed them (Prepared.check_rows),
    # when the batch landed whole; None: the check builds them from `pending`.
    check_rows: bytes | None = None


def content_hash(payload: str) -> str:
    """The hash that tells a changed record from an unchanged one."""
    return hashlib.blake2b(payload.encode(), digest_size=16).hexdigest()


def prepare(
    batch: Batch,
    mapping: Mapping,
    check_fields: Sequence[str] | None = None,
    origin: tuple[str, str] | None = None,
) -> Prepared:
    """Hash and map a batch. The latest payload of a source id wins within the batch.

    What the extract worker does ahead for the writer, when asked: with `check_fields` (the
    quality suite's), the quality check's rows are packed; with `origin` (system, stream),
    each mapped record's texts as the founder of a resident (golden.founding).
    """
    # A few containers per record and no reference cycles: the cyclic collector would only
    # rescan the batch every few hundred of them (islandhub/gcpause.py).
    with cyclic_gc_paused():
        prepared = _prepare(batch, mapping)
        if check_fields is not None or origin is not None:
            _ahead(prepared, check_fields, origin)
        return prepared


def _ahead(
    prepared: Prepared, check_fields: Sequence[str] | None, origin: tuple[str, str] | None
) -> None:
    """The quality rows and founding texts, each from the stored fields as the writer has them.

    No quality rows when an item has no clear values (the writer opens that batch's values
    itself).
    """
    rows: list[check_rows.Row] | None = [] if check_fields is not None else None
    for item in prepared.items:
        if item.fields is None:
            continue
        stored = item.stored if item.stored is not None else loads(item.fields)
        if origin is not None:
            item.founding = founding(*origin, item.source_id, stored)
        if rows is not None:
            if item.clear is None:
                rows = None
            else:
                rows.append((item.clear.source_id, stored, item.clear.opened()))
    if rows is not None and check_fields is not None:
        prepared.check_rows = check_rows.pack(*check_rows.columns_of(rows, check_fields))


def _prepare(batch: Batch, mapping: Mapping) -> Prepared:
    latest: dict[str, tuple[dict[str, Any], str]] = {}
    prepared = Prepared(batch.state, len(batch.records) + len(batch.rejected), [])
    prepared.maps_references = bool(mapping.references)
    prepared.rejected = list(batch.rejected)
    prepared.deleted = [seal_source_id(sid) for sid in batch.deleted]
    superseded: list[dict[str, Any]] = []
    paths, id_path = national_id_paths(mapping), mapping.id_path
    for record in batch.records:
        payload = _payload(record)
        if isinstance(payload, Rejected):
            prepared.rejected.append(payload)
            continue
        if crypto.PREFIX in payload:  # a landed record mapped again: open it first
            record = unseal_tree(record)
            payload = dumps(record)
        source_id = mapping.source_id(record)
        if source_id is not None and "\x00" in source_id:
            prepared.rejected.append(_nul_id(_sealed_payload(record, payload, paths, id_path)))
            continue
        if source_id is None:
            prepared.no_id.append(_sealed_payload(record, payload, paths, id_path))
            continue
        if source_id in latest:
            superseded.append(latest[source_id][0])
        latest[source_id] = (record, payload)
    if superseded:
        outcome = mapping.apply(superseded)
        prepared.superseded_mapped = len(outcome.mapped)
        prepared.superseded_quarantined = len(outcome.quarantined)
    outcome = mapping.apply([record for record, _ in latest.values()])
    mapped = {m.source_id: m for m in outcome.mapped}
    reasons = {q.source_id: q.reasons for q in outcome.quarantined}
    for source_id, (record, payload) in latest.items():
        m = mapped.get(source_id)
        stored = _sealed_payload(record, payload, paths, id_path)
        why = reasons.get(source_id)
        item = Item(
            seal_source_id(source_id),
            stored,
            content_hash(stored),
            None,
            None,
            [mask_text(r) for r in why] if why else [],
        )
        if m is not None:
            # Serialised here, in the worker: one string crosses to the writer, not a dict.
            item.fields, item.clear, item.stored = _as_stored(source_id, item.source_id, m.values)
            item.warnings = dumps([mask_text(w) for w in m.warnings]) if m.warnings else None
            if m.references:
                prepared.references[item.source_id] = refs.as_stored(m.references)
        prepared.items.append(item)
    return prepared


def stored_payload(record: Any, mapping: Mapping) -> str:
    """A record's payload exactly as landing stores it (national ids sealed), for checks."""
    if crypto.PREFIX in dumps(record):
        record = unseal_tree(record)
    payload = dumps(record)
    return _sealed_payload(record, payload, national_id_paths(mapping), mapping.id_path)


def national_id_paths(mapping: Mapping) -> tuple[str, ...]:
    """The payload paths a mapping reads national ids from (`hetu` transform, `national_id`).

    The source id's own path is left to the HETU-shape rule, like the source id itself: a
    register id is sealed in the payload exactly when it is sealed as the source id, so a
    remap reads back the source id the record was landed under.
    """
    read = (*mapping._fields, *mapping._references)  # a reference may be a HETU too
    paths = {path for f in read if f.sensitive for path in f.sources}
    return tuple(sorted(paths - {mapping.id_path}))


def _sealed_payload(record: Any, payload: str, paths: tuple[str, ...], id_path: str) -> str:
    """The payload as stored: unchanged text unless it holds something to seal.

    The national-id fields (and a HETU-shaped id) are sealed first; most records hold no
    other HETU, which their serialised text then shows without a walk through the record.
    """
    # Scanned only where it may decide: something sealed leaves its text to be scanned.
    candidates = None if _reads_any(record, paths) else may_hold_hetu(payload)
    if candidates is False:
        return payload
    quick = seal_known(record, paths, (id_path,))
    if quick is None:
        return dumps(seal_payload(record, paths))
    if quick is record:  # nothing sealed: `payload` is its text (dumps(record)) already
        if candidates is None:
            candidates = may_hold_hetu(payload)
        return dumps(seal_tree(quick, ())) if candidates else payload
    # Something sealed: its text tells whether any HETU is left (the payload's would only
    # show the one just sealed), so the payload itself is not scanned at all.
    text = dumps(quick)
    return dumps(seal_tree(quick, ())) if may_hold_hetu(text) else text


def _reads_any(record: Any, paths: tuple[str, ...]) -> bool:
    # A national-id field holding something that is not HETU-shaped (a typo, a temporary
    # format): sealed all the same. Top-level keys answer most mappings without a walk.
    if not paths or not isinstance(record, dict):
        return False
    return any(record.get(p) not in (None, "") or "." in p for p in paths)


_SEALED_FIELDS = tuple(SEALED_FIELDS)


def _sealed_fields(values: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Mapped fields as stored, as JSON and as the dict it holds.

    The national id is sealed, and any other HETU-holding text.
    """
    quick = seal_known(values, _SEALED_FIELDS)
    text = dumps(quick)
    if not may_hold_hetu(text):
        return text, quick
    sealed = seal_tree(quick)
    return dumps(sealed), sealed


def _as_stored(
    source_id: str, stored_id: str, values: dict[str, Any]
) -> tuple[str, ClearValues | None, dict[str, Any] | None]:
    """A mapped record's fields as stored (JSON), its clear values and the dict of the JSON.

    The dict is None where loading the JSON would not give it back (`_plain`).
    `source_id` is the clear source id, `stored_id` the stored one (`seal_source_id`).
    The common record, whose only sealed value is its national id (or which has none), takes
    its clear values from the values before sealing: opening a value just sealed gives it
    back, and its lookup key is the one of the clear id, so there is nothing to open or hash
    twice. Any other record (another sealed value or one that merely looks sealed, a HETU
    elsewhere, a national id that is not text) goes the general way, opening what was sealed.
    """
    national_id = values.get(_NATIONAL_ID)
    opened: str | dict[str, str] = {}  # the national id when it is sealed, as ClearValues has it
    quick: dict[str, Any] | None = values
    if national_id is None:
        pass
    elif type(national_id) is str and not national_id.startswith(crypto.PREFIX):
        if national_id.strip():  # `seal_known`'s rule: sealed whatever it holds, but blank
            quick = dict(values)
            quick[_NATIONAL_ID] = seal(national_id)
            opened = national_id
    else:
        quick = None  # not text, or "nid1:...": the general way
    if quick is not None:
        text = dumps(quick)
        # No HETU left to seal, and no value but the national id sealed or "nid1:"-like.
        if text.count(crypto.PREFIX) == (1 if opened else 0) and not may_hold_hetu(text):
            clear_id = try_unseal(stored_id) if source_id.startswith(crypto.PREFIX) else source_id
            clear = ClearValues(clear_id, opened, clear_national_id_key(national_id))
            return text, clear, quick if _plain(quick) else None
    fields, stored = _sealed_fields(values)
    return fields, _clear_values(stored_id, fields, stored), stored if _plain(stored) else None


# Values that JSON gives back as they went in. Not floats (NaN is written as null), nor
# lists or dicts (a tuple comes back a list): a record holding one is loaded from its text.
_PLAIN_TYPES = frozenset({str, int, bool, type(None)})


def _plain(values: dict[str, Any]) -> bool:
    """Whether `loads(dumps(values))` equals `values`, each value of the same type.

    Then the worker reads a mapped record ahead of the writer from the dict instead of
    parsing its text again; the values it shares with the mapping's memo also pickle as
    references. With `_sealed_payload` scanning a sealed payload once, the worker's part of
    the ingest benchmark took 5 % fewer instructions (callgrind, a batch of 10,000 records)
    and 5-10 % less time (the best of 15 runs, alternated).
    """
    return _PLAIN_TYPES.issuperset(map(type, values.values()))


_NATIONAL_ID = "national_id"


def _clear_values(source_id: str, text: str, stored: dict[str, Any]) -> ClearValues | None:
    """What the writer opens of a mapped record, opened here, with the same functions.

    Here the values were sealed a moment ago, so opening them is a lookup in the keyring's
    memo, and the writer (the slower process) is spared the cipher and the lookup hash. The
    results are exactly the writer's own: `try_unseal` of the source id, `unsealed_fields`
    of the stored fields (only the opened ones are kept: less to pickle) and the lookup key.
    A national id the key computation would fail on gives None: the writer then fails the
    same way as before, at the same point of the run.
    """
    national_id = stored.get("national_id")
    if national_id is not None and not isinstance(national_id, str):
        return None
    try:
        key = national_id_key(national_id)
    except KeyMismatch:  # an island's "nid1:..." text that does not open: the writer raises
        return None
    return ClearValues(try_unseal(source_id), _opened(text, stored), key)


def _opened(text: str, stored: dict[str, Any]) -> str | dict[str, str]:
    """The sealed ones of the stored fields (`text`: their JSON), opened (ClearValues.fields)."""
    # Most records hold one sealed value, their national id: the JSON shows it without a walk
    # (a field whose value starts with the prefix shows it in the JSON).
    national_id = stored.get("national_id")
    if (
        text.count(crypto.PREFIX) == 1
        and isinstance(national_id, str)
        and national_id.startswith(crypto.PREFIX)
    ):
        return try_unseal(national_id)
    return {
        name: try_unseal(value)
        for name, value in stored.items()
        if isinstance(value, str) and value.startswith(crypto.PREFIX)
    }


# --- a record the store cannot hold (issue 9, hostile input) ---------------------------------


def _payload(record: Any) -> str | Rejected:
    """The record as stored JSON; or, when JSON cannot hold it, a rejection that says why.

    Parsers accept what the store's JSON cannot: integers past 64 bits, lone surrogates
    (half of an escaped UTF-16 pair), nesting over 255 levels. Such a record is
    quarantined, not a traceback.
    """
    try:
        return dumps(record)
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        try:
            text = ascii(record)  # escapes surrogates: safe to hash, store and show
        except RecursionError:
            text = f"<a {type(record).__name__} nested too deeply to show>"
        # Keyed: an unkeyed hash beside the masked excerpt would give the HETU away.
        digest = crypto.digest(text)
        reason = f"the record cannot be stored as JSON: {exc}"
        return Rejected(reason, mask_text(text)[:EXCERPT_CHARS], f"unstorable:{digest}")


def _nul_id(payload: str) -> Rejected:
    """A source id with a NUL character: PostgreSQL text cannot hold one, so no store may.

    `payload` is the sealed payload: its hash names the row.
    """
    reason = "the source id holds a NUL character, which the store cannot keep"
    return Rejected(reason, _excerpt(payload), f"hash:{content_hash(payload)}")


def _storable_text(text: str) -> str:
    """Text from a file (an excerpt, a position) with its NUL characters written out."""
    return text.replace("\x00", "\\x00")


def land(
    store: Store, counts: Any, prepared: Prepared, held: lease.Lease, *, remap: bool = False
) -> Landed:
    """Write one prepared batch and the stream's state after it, in one transaction.

    `counts` is the run's result (system, stream, run_id and the counters it adds to).
    With `remap`, the batch is landed records mapped again: what counts as changed is a
    different mapping outcome, not a different payload.
    """
    system, stream, stamp = counts.system, counts.stream, now()
    with store.begin() as conn:
        lease.renew(conn, held)
        at = timestamp(conn, stamp)
        key = (system, stream)
        ids = [item.source_id for item in prepared.items]
        before = _landed(conn, system, stream, ids)
        erased = _tombstoned(conn, system, stream, ids)
        if erased:
            # Erased on a resident's request: kept out until the island deletes them too.
            prepared.items = [i for i in prepared.items if i.source_id not in erased]
        # Streams that hold no references and never did pay one probe, nothing per record.
        has_references = prepared.maps_references or refs.any_of_stream(conn, system, stream)
        if remap:
            changed = _remapped(prepared.items, before, _stored_fields(conn, system, stream, ids))
            if has_references:  # a changed `references:` section alone changes the record
                changed = _references_remapped(conn, key, prepared, changed)
        else:
            changed = [i for i in prepared.items if before.get(i.source_id, ("",))[0] != i.digest]
        landed_seq = sequence(conn, system, stream)[0]
        quarantine_rows = [
            (*key, i.source_id, dumps(i.reasons), _excerpt(i.payload), counts.run_id, at)
            for i in changed
            if i.fields is None
        ]
        quarantine_rows += _unlandable(key, counts.run_id, at, prepared)
        landing_rows = [
            (
                *key,
                i.source_id,
                i.digest,
                i.payload,
                "quarantined" if i.fields is None else "mapped",
                seq,
                counts.run_id,
                at,
            )
            for seq, i in enumerate(changed, start=landed_seq + 1)
        ]
        mapped_rows = [
            (*key, i.source_id, i.fields, i.warnings, counts.run_id, at)
            for i in changed
            if i.fields is not None
        ]
        insert_rows(conn, landing, LANDING_COLUMNS, landing_rows, upsert_on=SOURCE_KEY)
        insert_rows(conn, source_records, SOURCE_RECORD_COLUMNS, mapped_rows, upsert_on=SOURCE_KEY)
        if has_references:
            mapped_ids = [i.source_id for i in changed if i.fields is not None]
            refs.replace(conn, system, stream, mapped_ids, prepared.references)
        insert_rows(conn, quarantine, QUARANTINE_COLUMNS, quarantine_rows, upsert_on=SOURCE_KEY)
        _clear_quarantine(
            conn,
            key,
            [
                i.source_id
                for i in changed
                if i.fields is not None and before.get(i.source_id, ("", ""))[1] == "quarantined"
            ],
        )
        last_seq = landed_seq + len(landing_rows)
        deleted = _land_deletes(conn, counts, prepared.deleted, last_seq)
        last_seq += len(deleted)
        counts.pulled += prepared.pulled
        counts.unchanged += len(prepared.items) - len(changed) + len(erased)
        counts.mapped += len(mapped_rows) + prepared.superseded_mapped
        counts.quarantined += len(quarantine_rows) + prepared.superseded_quarantined
        counts.deleted += len(deleted)
        _save_state(conn, counts, prepared.state, stamp, last_seq)
        conn.execute(runs.update().where(runs.c.run_id == counts.run_id).values(**counters(counts)))
    observed = stamp.isoformat()
    pending = [
        Pending.landed(i.source_id, i.fields, observed, counts.run_id, seq, i.clear, i.founding)
        for seq, i in enumerate(changed, start=landed_seq + 1)
        if i.fields is not None
    ]
    pending += [Pending(sid, None, observed, counts.run_id, seq) for sid, seq in deleted]
    # The worker's rows hold every mapped item of the batch: good only if all of them landed.
    whole = not erased and len(changed) == len(prepared.items)
    return Landed(landed_seq, last_seq, pending, prepared.check_rows if whole else None)


def counters(counts: Any) -> dict[str, int]:
    """The counters of a run as the `runs` table stores them."""
    names = ("pulled", "unchanged", "mapped", "quarantined", "published", "deleted")
    return {name: getattr(counts, name) for name in names}


def sequence(conn: Connection, system: str, stream: str) -> tuple[int, int]:
    """(landed_seq, published_seq) of a stream; (0, 0) before its first batch."""
    row = conn.execute(
        sa.select(sync_state.c.landed_seq, sync_state.c.published_seq).where(
            sync_state.c.system == system, sync_state.c.stream == stream
        )
    ).one_or_none()
    return (row.landed_seq, row.published_seq) if row else (0, 0)


def _excerpt(payload: str) -> str:
    # Sealed tokens opened, then masked: staff read `131052-***T`, not a token.
    return mask_text(crypto.unseal_text(payload))[:EXCERPT_CHARS]


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


def _tombstoned(conn: Connection, system: str, stream: str, ids: list[str]) -> set[str]:
    of_stream = (tombstones.c.system == system, tombstones.c.stream == stream)
    # Most streams have none: one indexed probe instead of a lookup of every id.
    if (
        not ids
        or conn.execute(sa.select(tombstones.c.source_id).where(*of_stream).limit(1)).first()
        is None
    ):
        return set()
    query = sa.select(tombstones.c.source_id).where(
        *of_stream, member_of(conn, tombstones.c.source_id, ids)
    )
    return set(conn.execute(query).scalars())


def _stored_fields(conn: Connection, system: str, stream: str, ids: list[str]) -> dict[str, str]:
    if not ids:
        return {}
    query = sa.select(source_records.c.source_id, source_records.c.fields).where(
        source_records.c.system == system,
        source_records.c.stream == stream,
        member_of(conn, source_records.c.source_id, ids),
    )
    return {row.source_id: row.fields for row in conn.execute(query)}


def _remapped(
    items: list[Item], before: dict[str, tuple[str, str]], stored: dict[str, str]
) -> list[Item]:
    """Records whose new mapping outcome differs from what the store holds."""
    changed = []
    for i in items:
        status = before.get(i.source_id, ("", ""))[1]
        if i.fields is None:
            if status != "quarantined":  # it mapped before; the new mapping rejects it
                changed.append(i)
        elif status == "quarantined" or stored.get(i.source_id) != i.fields:
            changed.append(i)
    return changed


def _references_remapped(
    conn: Connection, key: tuple[str, str], prepared: Prepared, changed: list[Item]
) -> list[Item]:
    """`changed`, plus mapped records whose references differ from the stored ones."""
    ids = [i.source_id for i in prepared.items if i.fields is not None]
    before = refs.stored(conn, *key, ids)
    moved = {i.source_id for i in changed}
    moved |= {sid for sid in ids if before.get(sid, ()) != prepared.references.get(sid, ())}
    return [i for i in prepared.items if i.source_id in moved]


def _clear_quarantine(conn: Connection, key: tuple[str, str], ids: list[str]) -> None:
    """Records that map now leave quarantine."""
    if ids:
        conn.execute(
            quarantine.delete().where(
                quarantine.c.system == key[0],
                quarantine.c.stream == key[1],
                member_of(conn, quarantine.c.source_id, ids),
            )
        )


def _unlandable(
    key: tuple[str, str], run_id: str, at: Any, prepared: Prepared
) -> list[tuple[Any, ...]]:
    """Quarantine rows for records without a source id and records the connector rejected."""
    rows: list[tuple[Any, ...]] = []
    reasons = dumps(["the record has no source id"])
    for payload in prepared.no_id:
        rows.append(
            (*key, f"@hash:{content_hash(payload)}", reasons, _excerpt(payload), run_id, at)
        )
    for rejected in prepared.rejected:
        excerpt = _storable_text(mask_text(rejected.excerpt)[:EXCERPT_CHARS])
        where = seal_source_id(_storable_text(f"@{rejected.position}"))
        why = dumps([mask_text(rejected.reason)])
        rows.append((*key, where, why, excerpt, run_id, at))
    return rows


def _land_deletes(
    conn: Connection, counts: Any, ids: list[str], after_seq: int
) -> list[tuple[str, int]]:
    """Mark records the island deleted; their residents are rebuilt when published."""
    if ids:
        # The island has deleted what the hub erased: the tombstones have done their job.
        conn.execute(
            tombstones.delete().where(
                tombstones.c.system == counts.system,
                tombstones.c.stream == counts.stream,
                member_of(conn, tombstones.c.source_id, sorted(set(ids))),
            )
        )
    known = _landed(conn, counts.system, counts.stream, sorted(set(ids)))
    gone = [sid for sid in sorted(known) if known[sid][1] != "deleted"]
    if not gone:
        return []
    numbered = list(zip(gone, range(after_seq + 1, after_seq + 1 + len(gone)), strict=True))
    where = sa.and_(
        landing.c.system == counts.system,
        landing.c.stream == counts.stream,
        landing.c.source_id == sa.bindparam("sid"),
    )
    conn.execute(
        landing.update()
        .where(where)
        .values(status="deleted", seq=sa.bindparam("seq"), run_id=counts.run_id),
        [{"sid": sid, "seq": seq} for sid, seq in numbered],
    )
    for table in (source_records, quarantine):
        conn.execute(
            table.delete().where(
                table.c.system == counts.system,
                table.c.stream == counts.stream,
                member_of(conn, table.c.source_id, gone),
            )
        )
    refs.remove(conn, counts.system, counts.stream, gone)  # they go with the record
    return numbered


def _save_state(
    conn: Connection, counts: Any, state: dict[str, Any], stamp: Any, landed_seq: int
) -> None:
    text = dumps(state)
    key = {"system": counts.system, "stream": counts.stream}
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    insert = dialect.insert(sync_state).values(
        **key,
        state=text,
        run_id=counts.run_id,
        updated_at=stamp,
        landed_seq=landed_seq,
        published_seq=0,
    )
    # published_seq is the publish step's to move, never the landing's.
    updates = {c: insert.excluded[c] for c in ("state", "run_id", "updated_at", "landed_seq")}
    conn.execute(insert.on_conflict_do_update(index_elements=["system", "stream"], set_=updates))
    conn.execute(
        sync_state_history.insert().values(
            **key, state=text, run_id=counts.run_id, recorded_at=stamp
        )
    )
