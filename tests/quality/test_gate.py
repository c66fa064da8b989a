"""Every mapped batch is validated and kept; a system's gate stops publishing, clearly."""

from __future__ import annotations

import json

import sqlalchemy as sa

from islandhub.cli import main
from islandhub.config import load_project
from islandhub.pipeline import make_connector, publish_stream, sync, sync_stream
from islandhub.store.tables import dq_results, links, runs, sync_state
from tests.helpers import load

SCHOOL = "config/systems/school.yaml"
LEGACY = "quality: {max_quarantine_ratio: 0.05}\n"


def gate(root, block: str) -> None:
    path = root / SCHOOL
    path.write_text(path.read_text(encoding="utf-8").replace(LEGACY, block), encoding="utf-8")


def rows(store, scope: str = "batch"):
    query = sa.select(dq_results).where(dq_results.c.scope == scope).order_by(dq_results.c.id)
    with store.connect() as conn:
        return conn.execute(query).all()


def school_links(store) -> int:
    query = sa.select(sa.func.count()).select_from(links).where(links.c.system == "school")
    with store.connect() as conn:
        return int(conn.execute(query).scalar_one())


def test_every_batch_is_validated_and_kept(sample_project, store_url, monkeypatch):
    project, store = load(sample_project, store_url, monkeypatch)
    results = sync(project, store, ["population", "school"])
    assert [r.status for r in results] == ["succeeded", "succeeded"]
    kept = rows(store)
    assert [(r.system, r.stream, r.batch_size) for r in kept] == [
        ("population", "persons", 8),
        ("school", "pupils", 5),  # 4 mapped and 1 quarantined
    ]
    assert {r.run_id for r in kept} == {r.run_id for r in results}
    school = json.loads(kept[1].scores)
    assert (school["mapped"], school["quarantined"]) == (4, 1)
    assert school["validity"] == 0.8  # 4 of 5 mapped, and their values all pass
    checks = {c["check"]: c for c in json.loads(kept[1].results)["checks"]}
    assert checks["national_id:hetu"]["success"] and checks["national_id:unique"]["success"]
    # Five records are too few for the school's 5 % gate to judge (min_records, default 20).
    assert json.loads(kept[1].results)["gate"] == {"held": False, "reasons": []}
    # Nothing new, nothing validated: a re-sync adds no row.
    sync(project, store, ["population", "school"])
    assert len(rows(store)) == 2


def test_a_tripped_gate_fails_the_run_and_publishes_nothing(
    sample_project, store_url, monkeypatch, capsys
):
    gate(sample_project, "quality: {gate: {max_quarantined: 5%, min_records: 1}}\n")
    project, store = load(sample_project, store_url, monkeypatch)
    [population, school] = sync(project, store, ["population", "school"])
    assert population.status == "succeeded"
    assert (school.status, school.published) == ("failed", 0)
    assert school.error.startswith("GateTripped: school.pupils: the quality gate holds the 5")
    assert "20.0 % of 5 records quarantined, more than the 5.0 % allowed" in school.error
    assert (
        "(quality.gate.max_quarantined)" in school.error and "Nothing was published" in school.error
    )
    assert school_links(store) == 0
    with store.connect() as conn:
        run = conn.execute(sa.select(runs).where(runs.c.run_id == school.run_id)).one()
        state = conn.execute(sa.select(sync_state).where(sync_state.c.system == "school")).one()
    assert (run.status, run.error) == ("failed", school.error)
    assert (state.landed_seq, state.published_seq) == (5, 0)  # landed, waiting
    [kept] = [r for r in rows(store) if r.system == "school"]
    assert kept.success is False
    assert json.loads(kept.results)["gate"]["held"] is True

    # The CLI says why and exits 1; the held records are checked again, still nothing published.
    assert main(["--project", str(sample_project), "sync", "school"]) == 1
    assert "the quality gate holds the 5 records" in capsys.readouterr().err
    assert school_links(store) == 0

    # A looser gate lets the waiting records through without asking the island again.
    gate_path = sample_project / SCHOOL
    text = gate_path.read_text(encoding="utf-8").replace("5%", "25%")
    gate_path.write_text(text, encoding="utf-8")
    [passed] = sync(load_project(sample_project), store, ["school"])
    assert (passed.status, passed.pulled, passed.published) == ("succeeded", 0, 4)
    assert school_links(store) == 4
    held = [json.loads(r.results)["gate"]["held"] for r in rows(store) if r.system == "school"]
    assert held == [True, True, False]  # the history of the gate's verdicts


def test_a_completeness_gate_names_the_field(sample_project, store_url, monkeypatch):
    block = "quality: {gate: {min_completeness: {guardian.email: 90%}, min_records: 1}}\n"
    gate(sample_project, block)
    project, store = load(sample_project, store_url, monkeypatch)
    [school] = sync(project, store, ["school"])
    assert school.status == "failed"
    assert "guardian.email filled in" in school.error
    assert "(quality.gate.min_completeness.guardian.email)" in school.error
    assert school_links(store) == 0


def test_an_orchestrated_publish_is_gated_too(sample_project, store_url, monkeypatch):
    gate(sample_project, "quality: {gate: {max_quarantined: 5%, min_records: 1}}\n")
    project, store = load(sample_project, store_url, monkeypatch)
    system = project.systems["school"]
    connector = make_connector(project, system)
    landed = sync_stream(project, store, connector, system, system.streams["pupils"], publish=False)
    assert landed.status == "succeeded" and rows(store) == []  # publishing checks, not landing
    from islandhub.pipeline import StreamFailed

    try:
        publish_stream(project, store, "school", "pupils")
    except StreamFailed as exc:
        assert exc.result.status == "failed"
        assert "quarantined, more than the 5.0 % allowed" in exc.result.error
    else:
        raise AssertionError("the gate did not stop the publish run")
    assert school_links(store) == 0
    assert [r.system for r in rows(store)] == ["school"]
