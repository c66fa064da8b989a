"""`islandhub sync --all` against islands that fail every request: a clear failure, no change.

For each kind of failure (429 with Retry-After in seconds or as an HTTP-date, 503, connection
reset, truncated body, no answer within the read timeout) all six islands fail every request,
their token endpoints too. The islands have news (new, changed and deleted records) since the
store's last sync. The command must exit 1 with one line per island naming it, its stream
and the failure, without a traceback, after a capped number of retries, and leave sync_state,
landing, source_records and the residents as they were. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from islandhub.cli import main
from islandhub.store import open_store
from islandhub.store.tables import runs
from tests.faults.archipelago import SECRETS, SYSTEMS, Archipelago, archipelago, sync_cli, tables

RETRIES = 2
READ_TIMEOUT = 0.3
# What each failure looks like in the error line.
SIGNATURES = {
    "429": r"HTTP 429 Too Many Requests",
    "429_date": r"HTTP 429 Too Many Requests",
    "503": r"HTTP 503 Service Unavailable",
    "reset": r"\(connection failed or cut short\)",
    "truncate": r"(\(connection failed or cut short\)|the JSON body ends early)",
    "timeout": r"no answer within the timeout",
}
FIRST_STREAM = {
    "booking": "reservations",
    "events": "signups",
    "feedback": "items",
    "library": "patrons",
    "m365": "users",
    "open311": "requests",
}
KINDS = list(SIGNATURES)
# Lines that are not the verdict: progress (a line a step when stderr is no terminal) and log
# records (the connectors' retry warnings, and any other warning).
NOISE = re.compile(r"^(\w+\.\w+: starting$|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ [\w.]+: )")


@contextlib.contextmanager
def _schema_url(base: str, name: str) -> Iterator[str]:
    """A PostgreSQL schema of its own for the module (as tests/conftest.py does per test)."""
    engine = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    url = sa.engine.make_url(base).update_query_dict({"options": f"-csearch_path={name}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
        engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def synced(request, tmp_path_factory) -> Iterator[tuple[Archipelago, str, str]]:
    """The islands, and a store synced with them once; then the islands change."""
    folder = tmp_path_factory.mktemp("broken")
    with archipelago(folder / "project") as arch:
        arch.write_project(retries=RETRIES, read_timeout=READ_TIMEOUT)
        with contextlib.ExitStack() as stack:
            if request.param == "sqlite":
                url = f"sqlite:///{folder / 'hub.db'}"
            else:
                base = request.getfixturevalue("pg_base_url")
                url = stack.enter_context(_schema_url(base, f"t_broken_{uuid.uuid4().hex[:12]}"))
            with pytest.MonkeyPatch.context() as patch:
                for name, value in arch.environment().items():
                    patch.setenv(name, value)
                patch.setenv("ISLANDHUB_PROJECT", str(arch.root))
                patch.setenv("ISLANDHUB_STORE_URL", url)
                patch.delenv("ISLANDHUB_WORKERS", raising=False)
                assert main(["sync", "--all", "--json"]) == 0
            # The islands have news: a failed run must not land any of it.
            arch.change()
            yield arch, url, request.param


def _runs(url: str) -> list[tuple[str, str, str, str | None]]:
    store = open_store(url)
    try:
        with store.connect() as conn:
            query = sa.select(runs.c.run_id, runs.c.system, runs.c.status, runs.c.error)
            return [tuple(row) for row in conn.execute(query)]
    finally:
        store.dispose()


@pytest.mark.parametrize("run", [0, 1], ids=["first", "second"])
def test_islands_that_fail_every_request_fail_the_run_clearly_and_change_nothing(
    synced, run, process_env
):
    arch, url, backend = synced
    # Each island fails in another way; over the four runs (two a backend) every kind of
    # failure breaks four different islands.
    shift = 3 * run + (backend == "postgresql")
    kinds = {system: KINDS[(i + shift) % len(KINDS)] for i, system in enumerate(SYSTEMS)}
    before, runs_before = tables(url), _runs(url)
    arch.broken(kinds)
    try:
        outcome = sync_cli(arch, url, "--all", process_env=process_env)
    finally:
        faults = arch.faults
        arch.calm()

    output = outcome.stdout + outcome.stderr
    assert outcome.code == 1, output
    assert "Traceback" not in output
    for secret in (*SECRETS.values(), arch.graph.client_secret):
        assert secret not in output
    # Besides progress and retry warnings (log lines), exactly one line per island.
    lines = [line for line in outcome.stderr.splitlines() if not NOISE.match(line)]
    assert len(lines) == len(SYSTEMS), lines
    for system, line in zip(SYSTEMS, sorted(lines), strict=True):
        stream = FIRST_STREAM[system]
        assert line.startswith(f"failed: {system}.{stream}: RetriableSourceError: {system}: "), line
        assert re.search(SIGNATURES[kinds[system]], line), (kinds[system], line)
        assert f"(gave up after {RETRIES} retries)" in line, line
    # Retries are capped: every island was asked 1 + RETRIES times (token endpoints count).
    assert {s: f.injected.total() for s, f in faults.items()} == dict.fromkeys(SYSTEMS, 1 + RETRIES)

    assert tables(url) == before, "a failed run changed the store"
    # The failures are in the run log: one failed run per island, with the same reason.
    new = [r for r in _runs(url) if r not in runs_before]
    assert sorted((r[1], r[2]) for r in new) == [(s, "failed") for s in SYSTEMS]
    for _run_id, system, _status, error in new:
        assert re.search(SIGNATURES[kinds[system]], error or ""), (system, error)


def test_the_calm_islands_then_sync_their_news(synced, monkeypatch, capsys):
    """After the broken runs a calm run lands what the islands changed: there was news."""
    arch, url, _backend = synced
    before = tables(url)
    for name, value in {
        **arch.environment(),
        "ISLANDHUB_PROJECT": str(arch.root),
        "ISLANDHUB_STORE_URL": url,
    }.items():
        monkeypatch.setenv(name, value)
    assert main(["sync", "--all", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert all(r["status"] == "succeeded" for r in document["runs"])
    assert sum(r["mapped"] for r in document["runs"]) > 0
    assert tables(url) != before
