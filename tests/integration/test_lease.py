"""One run at a time per stream: the lease, its takeover from dead runs, and the busy verdict."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
import sqlalchemy as sa

from islandhub.store import lease, open_store
from islandhub.store.db import now
from islandhub.store.tables import leases, runs


def test_a_live_holder_makes_the_second_run_stop(store_url):
    store = open_store(store_url)
    lease.acquire(store, "school", "pupils", "run-1")
    with pytest.raises(lease.StreamBusy, match=r"school\.pupils is being synced by run run-1"):
        lease.acquire(store, "school", "pupils", "run-2")
    lease.acquire(store, "school", "teachers", "run-3")  # another stream is free


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_dead_holder_is_taken_over_and_its_run_marked_interrupted(store_url):
    store = open_store(store_url)
    with store.begin() as conn:
        conn.execute(
            runs.insert().values(
                run_id="dead-run",
                system="school",
                stream="pupils",
                kind="sync",
                status="running",
                started_at=now(),
                pulled=0,
                unchanged=0,
                mapped=0,
                quarantined=0,
                published=0,
                deleted=0,
            )
        )
        conn.execute(
            leases.insert().values(
                system="school",
                stream="pupils",
                run_id="dead-run",
                holder=f"{lease.this_process().rpartition(':')[0]}:{_dead_pid()}",
                expires_at=now() + timedelta(minutes=5),
            )
        )
    held = lease.acquire(store, "school", "pupils", "new-run")
    assert held.run_id == "new-run"
    with store.connect() as conn:
        assert (
            conn.execute(sa.select(runs.c.status).where(runs.c.run_id == "dead-run")).scalar_one()
            == "interrupted"
        )


def test_an_expired_lease_of_another_host_is_taken_over(store_url):
    store = open_store(store_url)
    with store.begin() as conn:
        conn.execute(
            leases.insert().values(
                system="school",
                stream="pupils",
                run_id="old",
                holder="elsewhere:1",
                expires_at=now() - timedelta(seconds=1),
            )
        )
    assert lease.acquire(store, "school", "pupils", "new").run_id == "new"


def test_renewing_a_lease_taken_over_fails(store_url):
    store = open_store(store_url)
    held = lease.acquire(store, "school", "pupils", "mine")
    with store.begin() as conn:
        conn.execute(leases.update().values(run_id="theirs"))
    with pytest.raises(lease.StreamBusy, match="was taken over"), store.begin() as conn:
        lease.renew(conn, held)


def test_sync_of_a_busy_stream_reports_busy_and_changes_nothing(
    sample_project, store_url, monkeypatch
):
    from islandhub.pipeline import sync
    from tests.helpers import load

    project, store = load(sample_project, store_url, monkeypatch)
    lease.acquire(store, "school", "pupils", "someone-else")
    results = sync(project, store, ["population", "school"])
    assert [(r.system, r.status) for r in results] == [
        ("population", "succeeded"),
        ("school", "busy"),
    ]
    assert "being synced by run someone-else" in results[1].error
    with store.connect() as conn:
        assert (
            conn.execute(
                sa.select(sa.func.count()).select_from(runs).where(runs.c.system == "school")
            ).scalar_one()
            == 0
        )
