"""`islandhub sync` of a database island whose connections break (the sql connector).

The island is a PostgreSQL table reached through a TCP proxy on 127.0.0.1
(tests/faults/sql_proxy.py) that resets a seeded share of connections: at once, or part
way through the login, the query or its rows. The sql connector reads page by page, a fresh
connection each, and does not retry within a run: a broken connection fails the run with a
retriable error, and the next run resumes after the last committed batch.

- At 15 % of connections broken, over two rounds (a first load, then changed and new rows):
  every run either completes or fails with one clear line naming the island; no committed
  batch is lost (the landing only grows); and within a few runs the store is exactly what
  syncs of the calm island make.
- With every connection broken: exit 1, one line naming the island and the failure, and
  sync_state, landing, source_records and residents unchanged.

The store is SQLite or PostgreSQL; the island always PostgreSQL (a schema of its own).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from islandhub.cli import main
from islandhub.store import open_store
from islandhub.store.tables import landing
from tests.faults.archipelago import differences, tables
from tests.faults.sql_proxy import ResettingProxy
from tests.helpers import hetu, snapshot

ROWS = 400
NEW_ROWS = 20
BATCH = 4  # a page query reads 10 batches: a run of 400 rows opens 11 connections
MAX_RUNS = 12
START = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def source(pg_base_url: str) -> Iterator[tuple[sa.Engine, str]]:
    """A schema of its own in the test database, with the island's `parties` table."""
    schema = f"src_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(pg_base_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        conn.execute(
            sa.text(
                f'CREATE TABLE "{schema}".parties (id integer PRIMARY KEY, hetu text, '
                "first_name text, last_name text, email text, modified_at timestamptz)"
            )
        )
    try:
        yield engine, schema
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def _put(engine: sa.Engine, schema: str, numbers: range, version: int) -> None:
    rows = [
        {
            "id": n,
            "hetu": hetu(1 + n % 28, 1 + n % 12, 1950 + n % 60, 100 + n // 840),
            "first_name": f"Etu{n}",
            "last_name": f"Suku{n % 40}",
            "email": f"party{n}.v{version}@example.fi",
            # Several rows share a time: the keyset must not lose any at a page boundary.
            "modified_at": START + dt.timedelta(minutes=version * 1000 + n // 3),
        }
        for n in numbers
    ]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f'INSERT INTO "{schema}".parties VALUES '
                "(:id, :hetu, :first_name, :last_name, :email, :modified_at) "
                "ON CONFLICT (id) DO UPDATE SET email = excluded.email, "
                "modified_at = excluded.modified_at"
            ),
            rows,
        )


def _project(root, pg_base_url: str, proxy: ResettingProxy, schema: str) -> None:
    url = sa.make_url(pg_base_url).set(host="127.0.0.1", port=proxy.port)
    (root / "config" / "systems").mkdir(parents=True)
    (root / "mappings").mkdir()
    (root / "config" / "hub.yaml").write_text("survivorship: {priority: [cases]}\n")
    system = {
        "system": "cases",
        "connector": "sql",
        "connection": {"url": url.render_as_string(hide_password=False), "connect_timeout": 5},
        "streams": {
            "parties": {
                "schema": schema,
                "table": "parties",
                "id": "id",
                "cursor": "modified_at",
                "batch_size": BATCH,
                "mapping": "mappings/parties.yaml",
            }
        },
    }
    (root / "config" / "systems" / "cases.yaml").write_text(json.dumps(system))
    (root / "mappings" / "parties.yaml").write_text(
        "source: cases.parties\nentity: resident\nid: id\nfields:\n"
        "  national_id: {from: hetu, use: [strip, hetu], required: true}\n"
        "  given_name: {from: first_name}\n  family_name: {from: last_name}\n"
        "  email: {from: email, use: [email]}\n"
    )


def _sync(capsys, monkeypatch, store_url: str) -> tuple[int, dict, str]:
    monkeypatch.setenv("ISLANDHUB_STORE_URL", store_url)
    code = main(["sync", "cases", "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def _landed(store_url: str) -> int:
    store = open_store(store_url)
    try:
        with store.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(landing)).scalar_one()
    finally:
        store.dispose()


def _snapshot(store_url: str) -> dict:
    store = open_store(store_url)
    try:
        return snapshot(store)
    finally:
        store.dispose()


def _verdicts(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith(("failed:", "busy:"))]


def test_syncs_through_breaking_database_connections_converge_on_every_record(
    tmp_path, store_url, pg_base_url, source, monkeypatch, capsys
):
    engine, schema = source
    _put(engine, schema, range(1, ROWS + 1), version=1)
    upstream = sa.make_url(pg_base_url)
    reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
    with ResettingProxy((upstream.host or "127.0.0.1", upstream.port or 5432), seed=5) as proxy:
        _project(tmp_path / "project", pg_base_url, proxy, schema)
        monkeypatch.setenv("ISLANDHUB_PROJECT", str(tmp_path / "project"))
        failures = 0
        for round_ in (1, 2):
            if round_ == 2:
                _put(engine, schema, range(1, ROWS + 1, 7), version=2)  # changed
                _put(engine, schema, range(ROWS + 1, ROWS + NEW_ROWS + 1), version=2)  # new
            proxy.faults(0.0)
            code, _, err = _sync(capsys, monkeypatch, reference_url)
            assert code == 0, err

            proxy.faults(0.15)
            landed = _landed(store_url) if round_ == 2 else 0
            for _attempt in range(MAX_RUNS):
                code, document, err = _sync(capsys, monkeypatch, store_url)
                (run,) = document["runs"]
                assert run["pulled"] == run["unchanged"] + run["mapped"] + run["quarantined"]
                now_landed = _landed(store_url)
                assert now_landed >= landed, "a failed run lost committed batches"
                landed = now_landed
                if code == 0:
                    break
                failures += 1
                (line,) = _verdicts(err)
                assert line.startswith(
                    "failed: cases.parties: RetriableSourceError: cases: stream 'parties'"
                ), line
                assert "Traceback" not in err
            assert code == 0, f"round {round_}: no run completed in {MAX_RUNS}"
            found = differences(_snapshot(store_url), _snapshot(reference_url))
            assert not found, f"round {round_}: {found}"
    assert proxy.dealt["refuse"] and proxy.dealt["cut"], proxy.dealt
    print(f"{failures} runs failed on the way; faults dealt {dict(proxy.dealt)}")


def test_a_database_island_that_refuses_every_connection_fails_clearly(
    tmp_path, store_url, pg_base_url, source, monkeypatch, capsys
):
    engine, schema = source
    _put(engine, schema, range(1, 101), version=1)
    upstream = sa.make_url(pg_base_url)
    with ResettingProxy((upstream.host or "127.0.0.1", upstream.port or 5432), seed=7) as proxy:
        _project(tmp_path / "project", pg_base_url, proxy, schema)
        monkeypatch.setenv("ISLANDHUB_PROJECT", str(tmp_path / "project"))
        code, _, err = _sync(capsys, monkeypatch, store_url)
        assert code == 0, err
        _put(engine, schema, range(1, 101, 3), version=2)  # news the failed runs must not land
        before = tables(store_url)
        for kind in ("refuse", "cut"):
            # A cut within the first 300 bytes: in the login, before any row.
            proxy.faults(1.0, (kind,), cut_after=(20, 300))
            code, document, err = _sync(capsys, monkeypatch, store_url)
            assert code == 1, err
            assert "Traceback" not in err
            (line,) = _verdicts(err)
            assert line.startswith(
                "failed: cases.parties: RetriableSourceError: cases: stream 'parties'"
            ), line
            assert f":{proxy.port}/" in line, line  # names where it could not read
            assert [r["status"] for r in document["runs"]] == ["failed"]
            assert tables(store_url) == before, kind
        proxy.faults(0.0)
        code, _, err = _sync(capsys, monkeypatch, store_url)
        assert code == 0, err
        assert tables(store_url) != before  # the news was there to land
