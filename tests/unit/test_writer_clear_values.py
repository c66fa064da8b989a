"""The writer is handed what the extract worker had in clear (issue 2, ingest throughput).

`landing.prepare` seals a record's national ids and, in the same step, keeps what the writer
would open again: the source id and sealed fields in clear (the quality check) and the
national-id lookup key (publishing). In memory only: never stored, never shown in a repr.
Records read back from the store have none and open what they need, as before. Either way
the store ends up the same, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.base import Batch
from islandhub import extract, landing
from islandhub.config import Project
from islandhub.pipeline import make_connector, publish_stream, sync_stream
from islandhub.privacy import crypto
from islandhub.privacy.at_rest import unsealed_fields
from islandhub.resolve import publish as publish_module
from islandhub.resolve.keys import national_id_key
from islandhub.resolve.publish import ClearValues, Pending, pending_records
from islandhub.store import Store
from islandhub.store.tables import dq_results, lineage, links, resident_keys, residents
from tests.conftest import _pg_schema_url
from tests.helpers import hetu, load, run_all, snapshot
from tests.leakscan import national_ids_in

ELSA = "230612A457H"  # in the register and at school: one resident through the lookup key
TEMPORARY = hetu(1, 2, 1990, 912)  # links nothing on its own: no lookup key
FREE_TEXT = hetu(5, 6, 1977, 123)  # a HETU in a free-text field: sealed there too

GATE = "quality: {max_quarantine_ratio: 0.01}\n"  # the register's, in the sample project
# A third island whose records take the other paths: a HETU in another field than the
# national id, a temporary id, no national id at all, and an invalid one (quarantined).
NOTES_SYSTEM = """\
system: notes
connector: files
connection: {path: samples/notes}
streams:
  entries:
    files: "notes_*.jsonl"
    format: jsonl
    mapping: mappings/notes/entries.yaml
"""
NOTES_MAPPING = """\
source: notes.entries
entity: resident
id: id
fields:
  national_id: {from: hetu, use: [strip, hetu]}
  given_name:  {from: name}
  family_name: {from: note}
"""
NOTES = [
    {"id": "N1", "hetu": ELSA, "name": "Elsa", "note": f"see also {FREE_TEXT}"},
    {"id": "N2", "hetu": TEMPORARY, "name": "Tilde", "note": "temporary id"},
    {"id": "N3", "name": "Nobody", "note": "no national id"},
    {"id": "N4", "hetu": "311399-999X", "name": "Wrong", "note": "invalid"},
]


@pytest.fixture
def project_root(sample_project: Path) -> Path:
    """The sample project (register, school) plus the notes island."""
    (sample_project / "config" / "systems" / "notes.yaml").write_text(NOTES_SYSTEM)
    (sample_project / "mappings" / "notes").mkdir()
    (sample_project / "mappings" / "notes" / "entries.yaml").write_text(NOTES_MAPPING)
    (sample_project / "samples" / "notes").mkdir()
    lines = "".join(json.dumps(n) + "\n" for n in NOTES)
    (sample_project / "samples" / "notes" / "notes_20261127.jsonl").write_text(lines)
    return sample_project


@pytest.fixture
def other_store_url(
    request: pytest.FixtureRequest, store_url: str, tmp_path: Path
) -> Iterator[str]:
    """A second empty store on the same backend as `store_url`."""
    if store_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'other' / 'islandhub.db'}"
        return
    yield from _pg_schema_url(request.getfixturevalue("pg_base_url"))


def _prepared(project: Project, system: str, stream: str) -> list[landing.Prepared]:
    """The stream's batches as the extract worker hands them over."""
    config = project.systems[system]
    connector = make_connector(project, config)
    mapping = config.streams[stream].mapping
    return [landing.prepare(b, mapping) for b in connector.pull(stream, None)]


def _mapped_items(project: Project) -> list[landing.Item]:
    return [
        item
        for system, stream in (
            ("population", "persons"),
            ("school", "pupils"),
            ("notes", "entries"),
        )
        for prepared in _prepared(project, system, stream)
        for item in prepared.items
        if item.fields is not None
    ]


def _as_read_back(p: Pending) -> Pending:
    return Pending(p.source_id, p.fields, p.observed_at, p.run_id, p.seq)


def _everything(store: Store) -> dict[str, Any]:
    """The store's contents independent of minted ids and times, lookup keys and checks too."""
    found = snapshot(store)
    clusters: dict[str, tuple[tuple[str, str, str], ...]] = {}
    with store.connect() as conn:
        for r in conn.execute(sa.select(links)):
            clusters[r.resident_id] = (
                *clusters.get(r.resident_id, ()),
                (r.system, r.stream, r.source_id),
            )
        found["resident_keys"] = sorted(
            (r.kind, r.key, tuple(sorted(clusters.get(r.resident_id, ()))))
            for r in conn.execute(sa.select(resident_keys))
        )
        found["rules"] = sorted(
            (r.system, r.stream, r.source_id, r.rule) for r in conn.execute(sa.select(links))
        )
        found["dq_results"] = sorted(
            (r.system, r.stream, r.batch_size, r.success, r.scores, _checks(r.results))
            for r in conn.execute(sa.select(dq_results))
        )
        current = sa.select(lineage.c.resident_id, lineage.c.fields).join(
            residents,
            sa.and_(
                residents.c.resident_id == lineage.c.resident_id,
                residents.c.version == lineage.c.version,
            ),
        )
        found["lineage"] = sorted(
            (tuple(sorted(clusters.get(r.resident_id, ()))), _lineage_shape(r.fields))
            for r in conn.execute(current)
        )
    return found


def _lineage_shape(text: str) -> str:
    """A compact lineage without the runs and times its sources were seen in."""
    compact = json.loads(text)
    compact["sources"] = [source[:3] for source in compact["sources"]]
    return json.dumps(compact, sort_keys=True)


def _checks(results: str) -> str:
    outcome = json.loads(results)
    outcome.pop("gx", None)  # Great Expectations' own run metadata (ids, times)
    return json.dumps(outcome, sort_keys=True)


# --- the values themselves ----------------------------------------------------------------


def test_the_values_handed_over_are_what_the_writer_would_open(
    project_root, store_url, monkeypatch
):
    project, _store = load(project_root, store_url, monkeypatch)
    items = _mapped_items(project)
    assert {i.source_id for i in items} >= {"N1", "N2", "N3"}
    shapes = set()
    for item in items:
        assert item.clear is not None
        fields = json.loads(item.fields or "{}")
        pending = Pending(item.source_id, fields, "t", "r", 1, item.clear)
        # What the writer computed itself before, from the stored values only.
        assert pending.clear_source_id() == crypto.try_unseal(item.source_id)
        assert {**fields, **pending.opened_fields()} == unsealed_fields(fields)
        assert pending.lookup_key() == national_id_key(fields.get("national_id"))
        # ... and what a record read back from the store still computes.
        back = _as_read_back(pending)
        assert (back.clear_source_id(), back.opened_fields(), back.lookup_key()) == (
            pending.clear_source_id(),
            pending.opened_fields(),
            pending.lookup_key(),
        )
        sealed_id, keyed = crypto.is_sealed(item.source_id), pending.lookup_key() is not None
        shapes.add((sealed_id, keyed, tuple(sorted(item.clear.opened()))))
    assert shapes >= {
        (True, True, ("national_id",)),  # the register: its source id is a HETU
        (False, False, ("national_id",)),  # a temporary id: no lookup key
        (False, False, ()),  # no national id at all: nothing sealed
        (False, True, ("family_name", "national_id")),  # a HETU in free text too
    }


@pytest.mark.parametrize("odd", [12345, "nid1:" + "A" * 30])
def test_an_odd_national_id_is_left_to_the_writer(odd):
    """A value the lookup key fails on (not text; "nid1:..." that does not open) gets no
    values: the writer computes the key itself and fails where and as it always did."""
    stored = {"national_id": odd, "given_name": "Elsa"}
    assert landing._clear_values("N9", json.dumps(stored), stored) is None
    with pytest.raises((TypeError, crypto.KeyMismatch)):
        Pending("N9", stored, "t", "r", 1).lookup_key()


def test_they_survive_the_pipe_and_show_nowhere(project_root, store_url, monkeypatch):
    project, _store = load(project_root, store_url, monkeypatch)
    prepared = _prepared(project, "population", "persons")
    crossed = pickle.loads(pickle.dumps(prepared))
    assert [i.clear for p in crossed for i in p.items] == [
        i.clear for p in prepared for i in p.items
    ]
    clear = prepared[0].items[0].clear
    assert clear is not None and national_ids_in(clear.opened()["national_id"])  # in clear
    pending = Pending(prepared[0].items[0].source_id, {}, "t", "r", 1, clear)
    for shown in (repr(prepared), repr(prepared[0].items), repr(pending), repr(clear), str(clear)):
        assert national_ids_in(shown) == [], shown
    assert repr(clear) == "ClearValues(<not shown>)"


# --- the writer -----------------------------------------------------------------------------


class _Opened(AssertionError):
    pass


def _refuse_to_open(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every way of opening a sealed value or hashing a national id now fails the test."""

    def refuse(*_args: Any) -> str:
        raise _Opened("the writer opened a sealed value")

    monkeypatch.setattr(crypto.Keyring, "unseal", refuse)
    monkeypatch.setattr(crypto.Keyring, "lookup_hash", refuse)


@pytest.mark.parametrize("handed_over", [True, False])
def test_the_writer_opens_nothing_it_was_handed(project_root, store_url, monkeypatch, handed_over):
    """Land, check and publish the register (all mapped, HETU-keyed) with opening refused.

    Without its quality gate: a gated stream publishes after the check, reading the records
    back from the store (they are opened there, as before).
    """
    system_file = project_root / "config" / "systems" / "population.yaml"
    system_file.write_text(system_file.read_text().replace(GATE, ""))
    project, store = load(project_root, store_url, monkeypatch)
    prepared = _prepared(project, "population", "persons")  # the worker's part, before the ban
    if not handed_over:  # as if read back from the store: the writer must open them itself
        for item in (i for p in prepared for i in p.items):
            item.clear = None
    monkeypatch.setattr("islandhub.pipeline.prepared_batches", lambda *a, **k: iter(prepared))
    _refuse_to_open(monkeypatch)
    system = project.systems["population"]
    connector = make_connector(project, system)

    def run() -> Any:
        return sync_stream(project, store, connector, system, system.streams["persons"])

    if not handed_over:
        with pytest.raises(_Opened):
            run()
        return
    result = run()
    assert result.status == "succeeded" and result.published == result.mapped > 0


def test_records_read_back_from_the_store_are_published_alike(
    project_root, store_url, other_store_url, monkeypatch
):
    """Land without publishing, then publish from the store: the same as in one go."""
    project, store = load(project_root, store_url, monkeypatch)
    for system in sorted(project.systems):
        config = project.systems[system]
        connector = make_connector(project, config)
        for name, stream in config.streams.items():
            sync_stream(project, store, connector, config, stream, publish=False)
            with store.connect() as conn:
                back = pending_records(conn, system, name, 0)
            assert back and all(p.clear is None for p in back)
            publish_stream(project, store, system, name)
    other_project, other = load(project_root, other_store_url, monkeypatch)
    run_all(other_project, other)
    assert _everything(store) == _everything(other)


# --- the whole sync -----------------------------------------------------------------------


@pytest.mark.parametrize("workers", ["0", "1"])
def test_a_sync_stores_the_same_with_and_without_them(
    project_root, store_url, other_store_url, monkeypatch, workers
):
    """Synced twice: with the values handed over (through the worker process or not), and
    with none (every record takes the opening path); the stores hold the same."""
    monkeypatch.setenv("ISLANDHUB_WORKERS", workers)
    handed: list[ClearValues | None] = []
    real = landing._as_stored

    def counted(*args: Any) -> tuple[str, ClearValues | None, dict[str, Any] | None]:
        fields, clear, stored = real(*args)
        handed.append(clear)
        return fields, clear, stored

    monkeypatch.setattr(landing, "_as_stored", counted)
    founded: list[str] = []  # residents whose texts the worker made (golden.founding)
    real_filled = publish_module.filled

    def filled(parts: Any, rid: str, *rest: str) -> tuple[str, str]:
        founded.append(rid)
        return real_filled(parts, rid, *rest)

    monkeypatch.setattr(publish_module, "filled", filled)
    project, store = load(project_root, store_url, monkeypatch)
    results = run_all(project, store)
    assert all(r.status == "succeeded" for r in results)
    if workers == "0" or not extract.worth_a_worker():
        assert len(handed) == sum(r.mapped for r in results)  # computed here, and used
        assert all(handed)
        assert founded == []  # only the worker makes them ahead
    else:
        assert len(founded) > 3  # the residents the register's and school's records found

    monkeypatch.setattr(
        landing, "_as_stored", lambda _s, _i, v: (landing._sealed_fields(v)[0], None, None)
    )
    monkeypatch.setenv("ISLANDHUB_WORKERS", "0")
    other_project, other = load(project_root, other_store_url, monkeypatch)
    run_all(other_project, other)
    ours, theirs = _everything(store), _everything(other)
    assert ours["resident_keys"] and ours["dq_results"] and ours["quarantine"]
    assert ours == theirs
    # Elsa: the register, the school and the notes are one resident through her lookup key.
    assert any(len({s for s, _, _ in cluster}) == 3 for cluster in ours["clusters"])


def test_a_changed_batch_of_one_record_is_in_step(project_root, store_url, monkeypatch):
    """A batch prepared by hand (as `_remap` does) lands with its values and publishes."""
    project, store = load(project_root, store_url, monkeypatch)
    run_all(project, store)
    mapping = project.systems["notes"].streams["entries"].mapping
    changed = {**NOTES[1], "name": "Tilda"}
    prepared = landing.prepare(Batch([changed], {}), mapping)
    assert prepared.items[0].clear is not None
    monkeypatch.setattr("islandhub.pipeline.prepared_batches", lambda *a, **k: iter([prepared]))
    _refuse_to_open(monkeypatch)
    config = project.systems["notes"]
    result = sync_stream(
        project, store, make_connector(project, config), config, config.streams["entries"]
    )
    assert (result.status, result.mapped, result.published) == ("succeeded", 1, 1)
