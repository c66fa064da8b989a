"""Audit rows are never lost for a response that was sent (law 906/2019), under group commit.

The design (islandhub/api/audit.py): a read's audit row is committed by the process's audit
writer, many rows to a commit, and the response waits for that commit. So: a write returns
only once its row can be read back by anyone; a commit that fails fails its requests (503,
nothing disclosed); and a server killed with SIGKILL while it answers reads at full speed
leaves an audit row for every 200 a client got, on SQLite (the WAL) and PostgreSQL alike,
with one worker process or two.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from islandhub.api.audit import AuditWriter
from islandhub.api.reads import audit_row
from islandhub.config import load_project
from islandhub.errors import StoreError
from islandhub.pipeline import sync
from islandhub.residents import Reader, find_by_national_id
from islandhub.store import open_store
from islandhub.store.tables import audit_log
from tests.api.conftest import ELSA, key_environment, write_api_project


def _purposes(store, prefix: str, *, exact: bool = False) -> list[str]:
    column = audit_log.c.purpose
    where = column == prefix if exact else column.like(f"{prefix}%")
    with store.connect() as conn:
        return list(conn.execute(sa.select(column).where(where)).scalars())


def test_a_write_returns_only_once_its_row_is_committed(store_url):
    store = open_store(store_url)
    writer = AuditWriter(store)
    prefix = f"group commit {uuid.uuid4()}"

    async def one(n: int) -> None:
        purpose = f"{prefix} {n}"
        await writer.write(audit_row(Reader("durability-test", purpose), None))
        # Committed: another connection sees it at once.
        assert _purposes(store, purpose, exact=True) == [purpose]

    async def many() -> None:
        await asyncio.gather(*(one(n) for n in range(200)))

    try:
        asyncio.run(many())
        assert sorted(_purposes(store, prefix)) == sorted(f"{prefix} {n}" for n in range(200))
        assert writer.rows == 200
        assert writer.commits < 200  # rows shared commits
        writer.write_sync(audit_row(Reader("durability-test", f"{prefix} sync"), None))
        assert _purposes(store, f"{prefix} sync", exact=True) == [f"{prefix} sync"]
    finally:
        writer.close()
        store.dispose()


def test_a_failed_commit_fails_the_read_and_discloses_nothing(served, resident_ids, monkeypatch):
    writer = served.context.audit
    with served.client(**served.keys.header("portal")) as client:
        monkeypatch.setattr(writer._insert, "sql", "INSERT INTO no_such_table VALUES (1)")
        refused = client.get(f"/residents/{resident_ids['elsa']}")
        monkeypatch.undo()
        answered = client.get(f"/residents/{resident_ids['elsa']}")
    assert refused.status_code == 503
    assert refused.json() == {"detail": "the audit log could not be written: " + _error(served)}
    assert "Elsa" not in refused.text
    assert answered.status_code == 200  # the writer took a new connection
    with pytest.raises(StoreError):
        monkeypatch.setattr(writer._insert, "sql", "INSERT INTO no_such_table VALUES (1)")
        writer.write_sync(audit_row(Reader("durability-test", "fails"), None))


def _error(served) -> str:
    return "OperationalError" if served.backend == "sqlite" else "UndefinedTable"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
@pytest.mark.parametrize(("stop", "workers"), [("SIGKILL", 1), ("SIGKILL", 2), ("SIGINT", 1)])
def test_every_answered_read_is_audited_when_the_server_dies(
    store_url, tmp_path, keys, monkeypatch, workers, stop
):
    monkeypatch.setenv("ISLANDHUB_STORE_URL", store_url)
    for name, value in key_environment(keys).items():
        monkeypatch.setenv(name, value)
    root = write_api_project(tmp_path / "project", keys)
    project = load_project(root)
    store = open_store(project.hub.store_url)
    sync(project, store, sorted(project.systems))
    with store.connect() as conn:
        rid = find_by_national_id(conn, ELSA)
    port = _free_port()
    command = [sys.executable, "-m", "islandhub.cli", "--project", str(root), "api", "serve"]
    command += ["--port", str(port), "--workers", str(workers)]
    server = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "api.log").open("w"),
        start_new_session=True,  # its own process group: SIGKILL reaches every worker
    )
    prefix = f"durability {uuid.uuid4()}"
    answered: list[str] = []
    try:
        _wait_serving(port, server, workers, tmp_path / "api.log")
        stopping = threading.Event()
        lock = threading.Lock()
        threads = [
            threading.Thread(
                target=_read_until_stopped,
                args=(
                    port,
                    keys.api_keys["portal"],
                    rid,
                    f"{prefix} {n}",
                    stopping,
                    answered,
                    lock,
                ),
            )
            for n in range(12)
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(answered) < 300 and time.monotonic() < deadline:
            time.sleep(0.005)
        # Mid-stream: requests are in flight, rows are queued, a commit may be running.
        os.killpg(server.pid, getattr(signal, stop))
        server.wait(timeout=60)
        stopping.set()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    with lock:
        sent = list(answered)
    assert len(sent) >= 300, (tmp_path / "api.log").read_text()[-3000:]
    store.dispose()
    store = open_store(project.hub.store_url)  # as after a restart: SQLite recovers its WAL
    audited = _purposes(store, prefix)
    missing = set(sent) - set(audited)
    assert not missing, f"{len(missing)} of {len(sent)} answered reads have no audit row"
    assert len(audited) == len(set(audited))  # and none twice
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(audit_log.c.actor, audit_log.c.action, audit_log.c.resident_id)
            .where(audit_log.c.purpose.like(f"{prefix}%"))
            .distinct()
        ).all()
    assert [tuple(row) for row in rows] == [("portal", "read", rid)]
    store.dispose()


def _read_until_stopped(port, key, rid, prefix, stopping, answered, lock) -> None:
    """Read the resident again and again, each time with a purpose of its own."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        n = 0
        while not stopping.is_set():
            purpose = f"{prefix} {n}"
            n += 1
            try:
                response = client.get(
                    f"/residents/{rid}", headers={"X-API-Key": key, "X-Purpose": purpose}
                )
            except httpx.HTTPError:
                return  # the server is gone
            if response.status_code == 200 and response.json()["resident_id"] == rid:
                with lock:
                    answered.append(purpose)


def _wait_serving(port: int, server: subprocess.Popen[bytes], workers: int, log: Path) -> None:
    deadline = time.monotonic() + 120
    while True:
        assert server.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "the API did not come up"
        try:
            ready = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
        except httpx.TransportError:
            ready = False
        if ready and log.read_text().count("Application startup complete.") >= workers:
            return
        time.sleep(0.2)
