"""The quality rows the extract worker packs are the ones the writer would build itself."""

from __future__ import annotations

import pickle

import pytest

from connectors.base import Batch
from islandhub import landing
from islandhub.mapping import Mapping
from islandhub.privacy import crypto
from islandhub.quality import rows
from islandhub.resolve.publish import Pending
from tests.helpers import hetu
from tests.unit.test_landing_fast_paths import NATIONAL_IDS, NOTE_MAPPING, OTHER, _real

MAPPING = NOTE_MAPPING
FIELDS = ("national_id", "given_name", "note", "email")  # one the mapping never fills


def _records() -> list[dict]:
    """Every kind of national id the fast paths know, with and without another HETU."""
    found = [
        {"id": f"R{i}-{n}", "hetu": _real(value), "name": "Elsa", "note": note}
        for i, value in enumerate(NATIONAL_IDS)
        if not isinstance(value, dict | list)
        for n, note in enumerate(("plain", f"see {OTHER}", None))
    ]
    found.append({"id": hetu(13, 10, 1952, 308), "hetu": hetu(13, 10, 1952, 308), "name": "Id"})
    # Less the few whose clear values the worker cannot take (a national id that looks sealed
    # and does not open): the writer fails on those (test_an_item_without_clear_values...).
    prepared = landing.prepare(Batch(found, {}), MAPPING)
    unopened = {i.source_id for i in prepared.items if i.fields is not None and i.clear is None}
    return [r for r in found if r["id"] not in unopened]


def _as_landed(prepared: landing.Prepared) -> list[Pending]:
    """The Pending records `land` makes of a prepared batch's mapped items."""
    return [
        Pending(i.source_id, landing.loads(i.fields), "2026-11-27T00:00:00", "run", n, i.clear)
        for n, i in enumerate(prepared.items)
        if i.fields is not None
    ]


def test_the_workers_rows_are_the_writers():
    prepared = landing.prepare(Batch(_records(), {}), MAPPING, FIELDS)
    assert prepared.check_rows is not None
    packed_ids, packed = rows.unpack(prepared.check_rows)
    ids, columns = rows.of_pending(_as_landed(prepared), FIELDS)
    assert (packed_ids, packed) == (ids, columns)
    assert list(packed) == list(FIELDS) and len(ids) > 20
    assert packed["email"] == [None] * len(ids)
    # In clear, as the checks read them; what the store keeps is sealed.
    assert hetu(13, 10, 1952, 308) in packed["national_id"]
    assert hetu(13, 10, 1952, 308) in packed_ids
    assert not any(str(v).startswith(crypto.PREFIX + OTHER) for v in packed["note"])


def test_read_back_from_the_store_the_rows_are_the_same():
    """Records a crash left unpublished have no clear values: opened, they give the same."""
    prepared = landing.prepare(Batch(_records(), {}), MAPPING, FIELDS)
    assert prepared.check_rows is not None
    stored = [
        Pending(p.source_id, p.fields, p.observed_at, p.run_id, p.seq) for p in _as_landed(prepared)
    ]
    assert rows.of_pending(stored, FIELDS) == rows.unpack(prepared.check_rows)


def test_without_fields_asked_for_nothing_is_packed():
    assert landing.prepare(Batch(_records(), {}), MAPPING).check_rows is None


def test_an_item_without_clear_values_leaves_the_rows_to_the_writer(monkeypatch):
    monkeypatch.setattr(landing, "_clear_values", lambda *_: None)
    records = [{"id": "R1", "hetu": "nid1:" + "A" * 30, "name": "Elsa"}]  # the general way
    assert landing.prepare(Batch(records, {}), MAPPING, FIELDS).check_rows is None


def test_a_prepared_batch_crosses_to_the_writer_whole():
    """Pickled as columns (the worker's pipe), a batch reads back equal, clear values too."""
    strict = Mapping.from_spec(
        {
            "source": "a.b",
            "id": "id",
            "fields": {"national_id": {"from": "hetu", "use": ["hetu"], "required": True}},
        }
    )
    prepared = landing.prepare(Batch(_records(), {"cursor": 3}), strict, FIELDS)
    prepared.deleted, prepared.no_id = ["gone"], ['{"x":1}']
    back = pickle.loads(pickle.dumps(prepared, protocol=pickle.HIGHEST_PROTOCOL))
    assert back == prepared
    assert [i.clear for i in back.items] == [i.clear for i in prepared.items]
    assert any(i.clear is not None for i in back.items)
    assert any(i.fields is None for i in back.items)  # a quarantined one crosses as well


@pytest.mark.parametrize("erase", [False, True])
def test_a_batch_landed_whole_hands_the_workers_rows_on(tmp_path, monkeypatch, erase):
    from islandhub.store import lease
    from islandhub.store.db import open_store

    store = open_store(f"sqlite:///{tmp_path / 'hub.db'}")

    class Result:
        system, stream, run_id = "a", "b", "run-1"
        pulled = unchanged = mapped = quarantined = deleted = published = 0

    held = lease.acquire(store, "a", "b", "run-1")
    records = [{"id": "R1", "hetu": hetu(13, 10, 1952, 308), "name": "Elsa"}, {"id": "R2"}]
    if erase:  # an erased record is kept out: the rows of the whole batch no longer fit
        monkeypatch.setattr(landing, "_tombstoned", lambda *_: {"R2"})
    prepared = landing.prepare(Batch(records, {}), MAPPING, FIELDS)
    landed = landing.land(store, Result(), prepared, held)
    assert landed.check_rows == (None if erase else prepared.check_rows)
    again = landing.prepare(Batch(records, {}), MAPPING, FIELDS)
    assert landing.land(store, Result(), again, held).check_rows is None  # nothing changed
    store.dispose()
