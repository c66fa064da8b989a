"""`islandhub resolve`: residents follow the clusters, ids stay stable, merged ids redirect."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from islandhub.cli import main
from islandhub.config import HubSettings
from islandhub.demo.population import generate
from islandhub.demo.runner import running_islands, write_truth
from islandhub.demo.sync import sync_island
from islandhub.privacy import crypto
from islandhub.residents import Reader, show
from islandhub.resolve.evaluate import evaluate
from islandhub.resolve.reconcile import resolve
from islandhub.store import open_store
from islandhub.store.tables import links, resident_keys, residents

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    """A 600-resident demo synced (deterministic links only), with its truth."""
    workdir = tmp_path_factory.mktemp("reconcile")
    store = open_store(f"sqlite:///{workdir / 'hub.db'}")
    hub = HubSettings(store_url=str(store.engine.url), priority=("population",))
    truth = []
    with running_islands(generate(600, 21), workdir, 21) as islands:
        for island in islands:
            sync_island(REPO, hub, store, island)
            truth.extend(island.truth)
    write_truth(truth, workdir / "truth.csv")
    return store, hub, workdir / "truth.csv"


def _snapshot(store):
    with store.connect() as conn:
        linked = {
            (r.system, r.stream, r.source_id): r.resident_id for r in conn.execute(sa.select(links))
        }
        merged = dict(
            conn.execute(sa.select(residents.c.resident_id, residents.c.merged_into)).all()
        )
    return linked, merged


@pytest.mark.slow
def test_resolution_merges_residents_keeps_ids_and_is_idempotent(synced):
    store, hub, truth = synced
    before = evaluate(store, truth)
    linked_before, _ = _snapshot(store)
    first = resolve(REPO, store, hub.priority)
    after = evaluate(store, truth)
    assert first.trained and first.merged > 0
    assert after["recall"] > before["recall"] + 0.5
    assert after["precision"] > 0.97 and after["f1"] > 0.97
    linked, merged = _snapshot(store)
    # Every resident id still in use existed before: merges keep the oldest id.
    assert set(linked.values()) <= set(linked_before.values()) | {
        r for r, m in merged.items() if m is None
    }
    # Each merged id points at a live resident.
    for into in merged.values():
        if into is not None:
            assert merged[into] is None and into in set(linked.values())
    # A second pass changes nothing.
    second = resolve(REPO, store, hub.priority)
    assert (second.relinked, second.merged, second.founded, second.trained) == (0, 0, 0, False)
    assert _snapshot(store) == (linked, merged)


@pytest.mark.slow
def test_a_merged_id_redirects_and_keys_follow_the_records(synced):
    store, hub, _ = synced
    resolve(REPO, store, hub.priority)
    with store.connect() as conn:
        old, into = conn.execute(
            sa.select(residents.c.resident_id, residents.c.merged_into).where(
                residents.c.merged_into.is_not(None)
            )
        ).first()
        owners = set(conn.execute(sa.select(resident_keys.c.resident_id)).scalars())
    found = show(store, Reader("test", "testing"), resident_id=old)
    assert found["resident_id"] == into and found["requested_id"] == old
    assert old not in owners  # national-id keys moved with the records


def test_too_few_records_to_train_is_a_clear_failure(tmp_path, monkeypatch, capsys, sample_project):
    monkeypatch.setenv("ISLANDHUB_PROJECT", str(sample_project))
    monkeypatch.setenv("ISLANDHUB_STORE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    config = sample_project / "config" / "resolution.yaml"
    config.write_text((REPO / "config" / "resolution.yaml").read_text())
    assert main(["sync", "--all"]) == 0
    capsys.readouterr()
    assert main(["resolve", "--json"]) == 1
    err = capsys.readouterr().err
    assert "cannot train the matching model on 12 records" in err and "Traceback" not in err


@pytest.mark.slow
def test_explain_shows_each_link_and_the_weights_of_the_comparisons(synced):
    from islandhub.resolve.explain import explain
    from islandhub.store.tables import audit_log

    store, hub, _ = synced
    resolve(REPO, store, hub.priority)
    with store.connect() as conn:
        rid = conn.execute(
            sa.select(links.c.resident_id).where(links.c.rule == "probabilistic").limit(1)
        ).scalar_one()
        hetus = {  # the register's source ids: stored sealed, compared in clear
            crypto.unseal(sid)
            for sid in conn.execute(
                sa.text("select source_id from links where system = 'population'")
            ).scalars()
        }
    found = explain(store, Reader("steward", "checking a merge"), rid, hub.priority)
    assert found["model"] is True
    assert "probabilistic" in {r["rule"] for r in found["records"]}
    assert len(found["comparisons"]) == len(found["records"]) - 1
    for pair in found["comparisons"]:
        assert pair["match_probability"] >= 0.5
        names = {c["comparison"] for c in pair["comparisons"]}
        assert {"given_name", "family_name", "birth_date"} <= names
    text = json.dumps(found)
    assert not any(h in text for h in hetus)  # national ids masked, in values and source ids
    with store.connect() as conn:
        actions = (
            conn.execute(sa.select(audit_log.c.action).where(audit_log.c.resident_id == rid))
            .scalars()
            .all()
        )
    assert "explain" in actions
