"""Two `islandhub sync` processes of one island at once: the second stops, the first finishes.

The first sync is held part way through its pull (the fake Respa island answers no more
pages until the test lets it), after some batches have landed. The second sync of the same
island, started then in a process of its own, must exit 1 at once with one clear line naming
the stream, the run that holds it and its process, and change nothing. The first then
completes, and the store holds every record once: as a single uninterrupted sync leaves it.
On SQLite and PostgreSQL. (That a busy stream leaves the other streams of the same command
free is tested on the pipeline in tests/integration/test_lease.py.)
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from islandhub.cli import main
from islandhub.store import open_store
from islandhub.store.tables import landing, leases, runs
from tests.fakes.http_island import TOKEN, Reply, Request, RespaIsland
from tests.helpers import snapshot

PAGES_BEFORE_THE_HOLD = 3
RESERVATIONS = 48  # 12 pages of 4


class Hold:
    """Lets the first `after` requests of a route through, then holds the rest until opened."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.seen = 0
        self.reached = threading.Event()
        self.opened = threading.Event()
        self._lock = threading.Lock()

    def around(self, func: Callable[[Request], Reply]) -> Callable[[Request], Reply]:
        def held(request: Request) -> Reply:
            with self._lock:
                self.seen += 1
                hold = self.seen > self.after
            if hold:
                self.reached.set()
                self.opened.wait(120)
            return func(request)

        return held


def _write_project(root: Path, respa: RespaIsland) -> None:
    (root / "config" / "systems").mkdir(parents=True)
    (root / "mappings").mkdir()
    (root / "config" / "hub.yaml").write_text("survivorship: {priority: [booking]}\n")
    # A read timeout longer than the hold: the held request is slow, not failed.
    slow_ok = {"retries": 2, "backoff": 0.01, "max_backoff": 0.05, "timeout": [2, 120]}
    systems: dict[str, dict[str, Any]] = {
        "booking": {
            "system": "booking",
            "connector": "rest",
            "connection": {
                "base_url": f"{respa.url}/v1",
                "auth": {"type": "bearer", "token": {"secret": "RACE_RESPA_TOKEN"}},
                **slow_ok,
            },
            "streams": {
                "reservations": {
                    "path": "/reservation/",
                    "params": {"page_size": 4},
                    "records": "results",
                    "paginator": {"type": "next_url", "path": "next"},
                    "incremental": {"cursor_field": "modified", "param": "modified_after"},
                    "batch_size": 4,
                    "mapping": "mappings/reservations.yaml",
                }
            },
        },
    }
    for name, document in systems.items():
        (root / "config" / "systems" / f"{name}.yaml").write_text(json.dumps(document))
    (root / "mappings" / "reservations.yaml").write_text(
        "source: booking.reservations\nentity: resident\nid: id\nfields:\n"
        "  given_name: {from: reserver_name, use: [{name: given}]}\n"
        "  family_name: {from: reserver_name, use: [{name: family}]}\n"
        "  email: {from: reserver_email_address, use: [email]}\n"
    )


def _start(env: dict[str, str], *systems: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "islandhub.cli", "sync", *systems, "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _rows(store_url: str, table: sa.Table) -> list[Any]:
    store = open_store(store_url)
    try:
        with store.connect() as conn:
            return list(conn.execute(sa.select(table)))
    finally:
        store.dispose()


def test_a_second_sync_of_a_busy_island_stops_clearly_and_the_first_completes(
    tmp_path, store_url, monkeypatch, capsys, process_env
):
    respa = RespaIsland(records=RESERVATIONS, per_tick=2)
    hold = Hold(after=PAGES_BEFORE_THE_HOLD)
    respa.routes = [
        (method, pattern, protected, hold.around(func) if method == "GET" else func)
        for method, pattern, protected, func in respa.routes
    ]
    root = tmp_path / "project"
    with respa:
        _write_project(root, respa)
        # The reference: one sync alone, nothing in its way (in this process: it is quicker).
        reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
        hold.opened.set()
        monkeypatch.setenv("ISLANDHUB_PROJECT", str(root))
        monkeypatch.setenv("ISLANDHUB_STORE_URL", reference_url)
        monkeypatch.setenv("RACE_RESPA_TOKEN", TOKEN)
        assert main(["sync", "booking", "--json"]) == 0, capsys.readouterr().err
        capsys.readouterr()
        hold.seen, hold.reached, hold.opened = 0, threading.Event(), threading.Event()

        env = process_env(
            ISLANDHUB_PROJECT=str(root), ISLANDHUB_STORE_URL=store_url, RACE_RESPA_TOKEN=TOKEN
        )
        first = _start(env, "booking")
        try:
            assert hold.reached.wait(120), first.communicate()[1]
            second = _start(env, "booking")
            out, err = second.communicate(timeout=120)
        finally:
            hold.opened.set()
        first_out, first_err = first.communicate(timeout=120)

    # The second: exit 1, one clear line about the busy stream, no traceback.
    assert second.returncode == 1, err
    assert "Traceback" not in err
    holder = next(r for r in _rows(store_url, runs) if r.system == "booking")
    verdicts = [line for line in err.splitlines() if line.startswith(("busy:", "failed:"))]
    assert verdicts == [
        f"busy: booking.reservations: booking.reservations is being synced by run "
        f"{holder.run_id} ({holder_name(first.pid)}); this run stops without changing "
        "anything. Try again when it has finished."
    ]
    (busy,) = json.loads(out)["runs"]
    assert (busy["status"], busy["pulled"]) == ("busy", 0)

    # The first: completes as if alone.
    assert first.returncode == 0, first_err
    (result,) = json.loads(first_out)["runs"]
    assert (result["status"], result["pulled"], result["mapped"]) == (
        "succeeded",
        RESERVATIONS,
        RESERVATIONS,
    )
    booking_runs = [r for r in _rows(store_url, runs) if r.system == "booking"]
    assert [(r.run_id, r.status) for r in booking_runs] == [(holder.run_id, "succeeded")]
    assert _rows(store_url, leases) == []  # both gave their leases back
    booked = [r for r in _rows(store_url, landing) if r.system == "booking"]
    assert sorted(int(r.source_id) for r in booked) == list(range(1, RESERVATIONS + 1))

    # Nothing doubled: booking's part of the store equals the reference's.
    mine, theirs = _booking_part(store_url), _booking_part(reference_url)
    assert mine == theirs


def holder_name(pid: int) -> str:
    """The lease holder's name of a process of this host (store/lease.py: host:pid)."""
    return f"{socket.gethostname()}:{pid}"


def _booking_part(store_url: str) -> dict[str, Any]:
    store = open_store(store_url)
    try:
        found = snapshot(store)
    finally:
        store.dispose()
    part = {
        key: {k: v for k, v in found[key].items() if k[0] == "booking"}
        for key in ("landing", "source_records", "quarantine", "sync_state")
    }
    part["clusters"] = [c for c in found["clusters"] if all(s[0] == "booking" for s in c)]
    return part
