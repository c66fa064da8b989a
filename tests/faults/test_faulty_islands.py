"""Whole `islandhub sync` runs through islands that fail 10-20 % of their requests.

Six fake islands (Respa, Linked Events, Koha, Open311, feedback, Microsoft Graph) answer a
seeded share of requests with 429 (Retry-After in seconds or as an HTTP-date), 503, a
connection reset, a truncated body, a slow answer, no answer within the read timeout, or a
body that drips in. Every sync must still complete with every record: the store ends exactly
as after the same syncs against the calm islands (landing, mapped records, quarantine, state,
clusters, golden records), over two rounds (a first load, then new, changed and deleted
records), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections import Counter

import sqlalchemy as sa

from islandhub.cli import main
from islandhub.store import open_store
from islandhub.store.tables import landing
from tests.fakes.http_island import EVERY_FAULT_KIND
from tests.faults.archipelago import SECRETS, SYSTEMS, Archipelago, archipelago, differences
from tests.helpers import snapshot

ROUNDS = (9, 10)  # fault seeds: each island suffers faults, every kind is dealt


def _sync_all(capsys, monkeypatch, store_url: str) -> dict:
    monkeypatch.setenv("ISLANDHUB_STORE_URL", store_url)
    code = main(["sync", "--all", "--json"])
    out, err = capsys.readouterr()
    for secret in SECRETS.values():
        assert secret not in out + err, "a secret was printed"
    document = json.loads(out)
    assert code == 0, [r["error"] for r in document["runs"] if r["error"]]
    return document


def _live_ids(store_url: str) -> dict[tuple[str, str], set[str]]:
    store = open_store(store_url)
    try:
        with store.connect() as conn:
            rows = conn.execute(
                sa.select(landing.c.system, landing.c.stream, landing.c.source_id).where(
                    landing.c.status != "deleted"
                )
            )
            found: dict[tuple[str, str], set[str]] = {}
            for row in rows:
                found.setdefault((row.system, row.stream), set()).add(row.source_id)
            return found
    finally:
        store.dispose()


def _snapshot(store_url: str) -> dict:
    store = open_store(store_url)
    try:
        return snapshot(store)
    finally:
        store.dispose()


def _setup(arch: Archipelago, monkeypatch) -> None:
    for name, value in arch.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ISLANDHUB_PROJECT", str(arch.root))
    monkeypatch.delenv("ISLANDHUB_WORKERS", raising=False)


def test_every_sync_through_faulty_islands_lands_every_record(
    tmp_path, store_url, monkeypatch, capsys
):
    reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
    with archipelago(tmp_path / "project") as arch:
        _setup(arch, monkeypatch)
        dealt: dict[int, Counter[str]] = {}
        by_island: Counter[str] = Counter()
        for number, seed in enumerate(ROUNDS):
            if number:
                arch.change()
            arch.calm()
            _sync_all(capsys, monkeypatch, reference_url)

            arch.faulty(seed)
            document = _sync_all(capsys, monkeypatch, store_url)
            dealt[number] = arch.injected()
            by_island.update({system: f.injected.total() for system, f in arch.faults.items()})
            arch.calm()

            runs = document["runs"]
            assert {r["system"] for r in runs} == set(SYSTEMS)
            assert all(r["status"] == "succeeded" for r in runs), runs
            for r in runs:
                assert r["pulled"] == r["unchanged"] + r["mapped"] + r["quarantined"], r
            # Every live record of every island is in the store, none more.
            assert _live_ids(store_url) == arch.live_ids(), f"round {number + 1}"
            # And the store is what the calm islands gave, table by table.
            found = differences(_snapshot(store_url), _snapshot(reference_url))
            assert not found, f"round {number + 1}: {found}"

    assert all(by_island[system] for system in SYSTEMS), f"faults dealt: {by_island}"
    total = dealt[0] + dealt[1]
    assert set(total) == set(EVERY_FAULT_KIND), f"fault kinds never dealt: {total}"
    assert sum(total.values()) >= 25, total
