"""The spine end to end on the sample file islands, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import sqlalchemy as sa

from connectors.base import Batch, CheckResult, Connector
from islandhub.errors import RunFailed
from islandhub.pipeline import sync
from islandhub.residents import Reader, show
from islandhub.store.tables import audit_log, quarantine, runs, sync_state
from tests.helpers import assert_counts_add_up, hetu, load, run_all, snapshot

REPO = Path(__file__).resolve().parents[2]
READER = Reader("test", "testing")
ELSA = "230612A457H"  # in the register and at school
ELLA = "020216B273U"  # under a non-disclosure order in the register


def golden(store, national_id):
    return show(store, READER, national_id=national_id)


def test_two_islands_become_one_golden_record_per_person(sample_project, store_url, monkeypatch):
    project, store = load(sample_project, store_url, monkeypatch)
    results = run_all(project, store)
    assert_counts_add_up(results)
    by_system = {r.system: r for r in results}
    assert (by_system["population"].mapped, by_system["population"].quarantined) == (8, 0)
    assert (by_system["school"].mapped, by_system["school"].quarantined) == (4, 1)
    snap = snapshot(store)
    assert snap["residents"] == 9  # 8 in the register, 1 pupil only at school; 1 pupil quarantined
    elsa = golden(store, ELSA)
    systems = sorted(i["system"] for i in elsa["record"]["identifiers"])
    assert systems == ["population", "school"]
    # The register wins names; the school fills the birth date nobody else has.
    assert elsa["record"]["given_name"] == "Elsa"
    assert elsa["lineage"]["given_name"]["system"] == "population"
    assert elsa["lineage"]["given_name"]["rule"] == "system_priority"
    assert elsa["record"]["birth_date"] == "2012-06-23"
    assert elsa["lineage"]["birth_date"]["system"] == "school"
    assert elsa["record"]["national_id"] == "230612A***H"
    schema = json.loads((REPO / "schemas" / "resident.schema.json").read_text())
    with store.connect() as conn:
        from islandhub.privacy.at_rest import unseal_tree
        from islandhub.store.tables import resident_versions

        # Stored with the national id sealed (docs/privacy.md); opened, it is the schema's.
        for (text,) in conn.execute(sa.select(resident_versions.c.record)):
            record = json.loads(text)
            assert str(record.get("national_id", "nid1:")).startswith("nid1:")
            jsonschema.validate(unseal_tree(record), schema)


def test_every_lineage_entry_names_system_source_run_time_and_rule(
    sample_project, store_url, monkeypatch
):
    project, store = load(sample_project, store_url, monkeypatch)
    results = run_all(project, store)
    run_ids = {r.run_id for r in results}
    elsa = golden(store, ELSA)
    for field, entry in elsa["lineage"].items():
        assert set(entry) == {"system", "stream", "source_id", "run_id", "observed_at", "rule"}, (
            field
        )
        assert entry["run_id"] in run_ids


def test_an_unchanged_island_is_skipped_and_a_full_refresh_changes_nothing(
    sample_project, store_url, monkeypatch
):
    project, store = load(sample_project, store_url, monkeypatch)
    run_all(project, store)
    before = snapshot(store)
    again = run_all(project, store)
    assert [r.pulled for r in again] == [0, 0]  # same file fingerprints: nothing read
    refreshed = run_all(project, store, full_refresh=True)
    assert_counts_add_up(refreshed)
    assert [(r.pulled, r.unchanged, r.mapped) for r in refreshed] == [(8, 8, 0), (5, 5, 0)]
    assert snapshot(store) == before


def test_a_changed_record_gives_a_new_version_with_new_lineage(
    sample_project, store_url, monkeypatch
):
    project, store = load(sample_project, store_url, monkeypatch)
    run_all(project, store)
    version_before = golden(store, "010413A568J")["version"]
    csv_file = sample_project / "samples" / "school" / "pupils_20261120.csv"
    text = csv_file.read_text(encoding="cp1252").replace("Boxvägen 8", "Boxvägen 10")
    csv_file.write_text(text, encoding="cp1252", newline="")
    [result] = sync(project, store, ["school"])
    # The record still in quarantine is unchanged too: it is not quarantined twice.
    assert (result.pulled, result.unchanged, result.mapped, result.quarantined) == (5, 4, 1, 0)
    lukas = golden(store, "010413A568J")
    assert lukas["version"] == version_before + 1
    assert lukas["record"]["addresses"][0]["street"] == "Boxvägen 10"
    assert lukas["lineage"]["addresses"]["run_id"] == result.run_id


def test_a_fixed_record_leaves_quarantine_and_joins(sample_project, store_url, monkeypatch):
    project, store = load(sample_project, store_url, monkeypatch)
    run_all(project, store)
    with store.connect() as conn:
        [row] = conn.execute(sa.select(quarantine)).all()
    assert row.source_id == "P1005"
    reasons = json.loads(row.reasons)
    assert any("national_id" in r for r in reasons)
    assert "120514A123X" not in row.reasons + (row.excerpt or "")  # masked, even when invalid
    csv_file = sample_project / "samples" / "school" / "pupils_20261120.csv"
    from tests.helpers import hetu

    fixed = hetu(12, 5, 2014, 123)
    csv_file.write_text(
        csv_file.read_text(encoding="cp1252").replace("120514A123X", fixed),
        encoding="cp1252",
        newline="",
    )
    [result] = sync(project, store, ["school"])
    assert (result.mapped, result.quarantined) == (1, 0)
    with store.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(quarantine)).scalar_one() == 0
    assert golden(store, fixed)["record"]["given_name"] == "Veeti"


def test_non_disclosure_hides_addresses_from_output(sample_project, store_url, monkeypatch):
    project, store = load(sample_project, store_url, monkeypatch)
    run_all(project, store)
    ella = golden(store, ELLA)
    assert ella["record"]["non_disclosure"] is True
    assert "addresses" not in ella["record"]
    # The school does not know the order; the register's protects her all the same.
    assert ella["lineage"]["non_disclosure"]["rule"] == "protective"


def test_reads_are_audited(sample_project, store_url, monkeypatch):
    project, store = load(sample_project, store_url, monkeypatch)
    run_all(project, store)
    elsa = golden(store, ELSA)
    with store.connect() as conn:
        rows = conn.execute(sa.select(audit_log)).all()
    assert [(r.actor, r.action, r.purpose, r.resident_id) for r in rows] == [
        ("test", "read", "testing", elsa["resident_id"])
    ]
    assert ELSA not in (rows[0].detail or "")


def test_a_failing_source_fails_the_run_and_keeps_the_state(sample_project, store_url, monkeypatch):
    project, store = load(sample_project, store_url, monkeypatch)
    run_all(project, store)
    with store.connect() as conn:
        state_before = conn.execute(sa.select(sync_state)).all()
    for path in (sample_project / "samples" / "school").iterdir():
        path.unlink()
    (sample_project / "samples" / "school").rmdir()
    results = sync(project, store, ["population", "school"])
    assert [r.status for r in results] == ["succeeded", "failed"]
    assert "does not exist" in results[1].error
    with store.connect() as conn:
        assert (
            conn.execute(sa.select(sync_state).order_by(sync_state.c.system)).all() == state_before
        )
        failed = conn.execute(sa.select(runs).where(runs.c.status == "failed")).one()
    assert failed.system == "school"


def test_a_crash_between_landing_and_publishing_is_finished_by_the_next_run(
    sample_project, store_url, monkeypatch
):
    project, store = load(sample_project, store_url, monkeypatch)

    class Crash(Exception):
        pass

    def crash(*_args, **_kwargs):
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr("islandhub.pipeline.publish", crash)
        with pytest.raises(Crash):
            sync(project, store, ["population"])
    with store.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(sync_state)).scalar_one() == 1
    [resumed] = sync(project, store, ["population"])
    assert (resumed.pulled, resumed.published) == (0, 8)  # nothing pulled again; all published
    monkeypatch.setenv("ISLANDHUB_STORE_URL", store_url)


def test_unknown_system_is_bad_input(sample_project, store_url, monkeypatch):
    from islandhub.errors import ConfigError

    project, store = load(sample_project, store_url, monkeypatch)
    with pytest.raises(
        ConfigError, match="unknown system 'libary'; configured systems: population, school"
    ):
        sync(project, store, ["libary"])
    assert issubclass(RunFailed, Exception)


class ScriptedIsland(Connector):
    """A connector that replays scripted batches: records and deletes, as an island would."""

    kind = "scripted"

    def __init__(self, batches):
        super().__init__("school", {}, {})
        self.batches = batches

    def check(self):
        return CheckResult(True, "scripted")

    def pull(self, stream, state):
        yield from self.batches


def pupil(source_id, hetu_value, name):
    return {"oppilas_id": source_id, "nimi": name, "hetu": hetu_value, "syntymaaika": "01.01.2014"}


def test_a_record_deleted_in_its_island_leaves_the_golden_record(
    sample_project, store_url, monkeypatch
):
    from islandhub.pipeline import sync_stream

    project, store = load(sample_project, store_url, monkeypatch)
    sync(project, store, ["population"])
    school = project.systems["school"]
    stream = school.streams["pupils"]
    pupils = [pupil("P1", ELSA, "Lindqvist Elsa"), pupil("P9", hetu(1, 1, 2013, 876), "Solo Sam")]
    first = ScriptedIsland([Batch(pupils, {"n": 1})])
    sync_stream(project, store, first, school, stream)
    assert len(golden(store, ELSA)["record"]["identifiers"]) == 2
    second = ScriptedIsland([Batch([], {"n": 2}, deleted=["P1", "P9", "never-seen"])])
    result = sync_stream(project, store, second, school, stream)
    assert (result.deleted, result.published) == (2, 2)
    elsa = golden(store, ELSA)
    assert [i["system"] for i in elsa["record"]["identifiers"]] == ["population"]
    assert "birth_date" not in elsa["record"]  # it came only from the deleted school record
    with store.connect() as conn:
        from islandhub.store.tables import links, residents

        assert conn.execute(sa.select(links).where(links.c.system == "school")).all() == []
        # The pupil known only to the school is retired, its history kept.
        assert (
            conn.execute(
                sa.select(sa.func.count())
                .select_from(residents)
                .where(residents.c.active.is_(False))
            ).scalar_one()
            == 1
        )


def test_landing_and_publishing_can_run_as_separate_steps(sample_project, store_url, monkeypatch):
    from islandhub.pipeline import make_connector, publish_stream, sync_stream

    project, store = load(sample_project, store_url, monkeypatch)
    system = project.systems["population"]
    landed = sync_stream(
        project,
        store,
        make_connector(project, system),
        system,
        system.streams["persons"],
        publish=False,
    )
    assert (landed.mapped, landed.published) == (8, 0)
    assert golden(store, ELSA) is None  # landed and mapped, not yet a resident
    published = publish_stream(project, store, "population", "persons")
    assert (published.status, published.published) == ("succeeded", 8)
    assert golden(store, ELSA)["record"]["given_name"] == "Elsa"
    with store.connect() as conn:
        kinds = sorted(conn.execute(sa.select(runs.c.kind)).scalars())
    assert kinds == ["publish", "sync"]


def test_remap_applies_a_changed_mapping_without_asking_the_island(
    sample_project, store_url, monkeypatch
):
    from islandhub.config import load_project
    from islandhub.pipeline import remap_stream

    project, store = load(sample_project, store_url, monkeypatch)
    run_all(project, store)
    mapping = sample_project / "mappings" / "school" / "pupils.yaml"
    # The owner fixes the mapping: post offices in upper case, and the guardian's phone dropped.
    text = mapping.read_text().replace("use: [title]}", "use: [upper]}")
    text = text.replace("  guardian.phone:       {from: huoltaja1_puhelin, use: [phone]}\n", "")
    mapping.write_text(text)
    for path in (sample_project / "samples" / "school").iterdir():
        path.unlink()  # the island is not asked: its export may be gone already
    project = load_project(sample_project)
    school = project.systems["school"]
    result = remap_stream(project, store, school, school.streams["pupils"])
    assert result.status == "succeeded"
    assert (result.pulled, result.mapped, result.quarantined, result.unchanged) == (5, 4, 0, 1)
    elsa = golden(store, ELSA)
    assert elsa["record"]["guardian"] == {
        "name": "Lindqvist Anna",
        "email": "anna.lindqvist@example.fi",
    }
    lukas = golden(store, "010413A568J")
    assert lukas["record"]["addresses"][0]["post_office"] == "BOX"
    again = remap_stream(project, store, school, school.streams["pupils"])
    assert (again.mapped, again.unchanged) == (0, 5)  # nothing changes a second time


def test_remap_refuses_a_changed_source_id(sample_project, store_url, monkeypatch):
    from islandhub.config import load_project
    from islandhub.errors import ConfigError
    from islandhub.pipeline import remap_stream

    project, store = load(sample_project, store_url, monkeypatch)
    run_all(project, store)
    mapping = sample_project / "mappings" / "school" / "pupils.yaml"
    mapping.write_text(mapping.read_text().replace("id: oppilas_id", "id: hetu"))
    project = load_project(sample_project)
    school = project.systems["school"]
    with pytest.raises(ConfigError, match="a changed id needs a full re-sync"):
        remap_stream(project, store, school, school.streams["pupils"])
