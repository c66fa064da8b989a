"""The background checkpointer (islandhub/store/checkpoint.py) on real SQLite files."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from islandhub.store import checkpoint, open_store
from islandhub.store.checkpoint import background_checkpoints
from islandhub.store.db import Store
from tests.helpers import load, run_all

ROW = 4000  # bytes of text per row: a transaction of ROWS_PER_TX rows is about 10 WAL pages
ROWS_PER_TX = 10
TRANSACTIONS = 300


def _store(tmp_path: Path) -> Store:
    store = open_store(f"sqlite:///{tmp_path / 'hub.db'}", migrate_schema=False)
    with store.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    return store


def _write(store: Store, transactions: int = TRANSACTIONS) -> dict[str, int]:
    """Commit many small transactions; the largest WAL and database file seen after each."""
    db = Path(str(store.engine.url.database))
    wal = db.with_name(db.name + "-wal")
    seen = {"wal": 0, "db": 0}
    for _ in range(transactions):
        with store.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO t (v) SELECT hex(randomblob(?)) FROM "
                "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
                "SELECT i FROM n)",
                (ROW // 2, ROWS_PER_TX),
            )
        seen["wal"] = max(seen["wal"], wal.stat().st_size if wal.exists() else 0)
        seen["db"] = max(seen["db"], db.stat().st_size)
        time.sleep(0.003)  # the writer's Python work between commits: the thread's ticks
    return seen


def _count(store: Store) -> int:
    with store.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one())


def _autocheckpoint(store: Store) -> int:
    with store.begin() as conn:
        return int(conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one())


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("checkpoint ")]


def test_the_thread_copies_the_wal_and_keeps_it_under_the_limit(tmp_path, monkeypatch):
    limit = 1024 * 1024
    monkeypatch.setattr(checkpoint, "WAL_LIMIT_BYTES", limit)
    monkeypatch.setattr(checkpoint, "CHECKPOINT_PAGES", 50)
    store = _store(tmp_path)
    start_db = Path(str(store.engine.url.database)).stat().st_size
    with background_checkpoints(store) as running:
        assert running is not None and running.alive
        assert _autocheckpoint(store) == checkpoint.SAFETY_NET_PAGES
        seen = _write(store)
        assert running.checkpoints > 0
        assert running.truncated > 0  # the WAL passed the limit and the thread reset it
    # Pages reached the database file while the writer was still writing: backfilled.
    assert seen["db"] > start_db + 5 * 1024 * 1024
    # A tick's worth of commits past the limit at most; without the thread: ~12 MB (below).
    assert seen["wal"] < 4 * limit
    assert _count(store) == TRANSACTIONS * ROWS_PER_TX
    store.dispose()


def test_without_the_thread_the_wal_grows_and_the_commits_checkpoint_nothing(tmp_path):
    """The control of the test above: the same writes, the raised autocheckpoint alone."""
    store = _store(tmp_path)
    start_db = Path(str(store.engine.url.database)).stat().st_size
    with store.raised_autocheckpoint(checkpoint.SAFETY_NET_PAGES):
        seen = _write(store)
    assert seen["wal"] > 10 * 1024 * 1024
    assert seen["db"] == start_db
    store.dispose()


def test_the_thread_waits_for_its_threshold(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint, "CHECKPOINT_PAGES", 10 * TRANSACTIONS * ROWS_PER_TX)
    store = _store(tmp_path)
    start_db = Path(str(store.engine.url.database)).stat().st_size
    with background_checkpoints(store) as running:
        assert running is not None
        seen = _write(store)
        assert running.checkpoints == 0  # ~3,000 pages: under its threshold, and the limit
    assert seen["db"] == start_db
    assert seen["wal"] > 10 * 1024 * 1024
    assert _count(store) == TRANSACTIONS * ROWS_PER_TX
    store.dispose()


def test_on_the_way_out_the_thread_is_gone_the_wal_empty_and_the_pragma_back(tmp_path):
    store = _store(tmp_path)
    own = _autocheckpoint(store)
    assert own == 1000  # SQLite's default, as outside a sync
    with background_checkpoints(store) as running:
        assert running is not None
        assert len(_checkpoint_threads()) == 1
        _write(store, 50)
    assert not running.alive
    assert _checkpoint_threads() == []
    db = Path(str(store.engine.url.database))
    assert db.with_name(db.name + "-wal").stat().st_size == 0  # truncated by the last one
    assert _autocheckpoint(store) == own
    assert _count(store) == 50 * ROWS_PER_TX
    store.dispose()


def test_a_failing_sync_stops_the_thread_all_the_same(tmp_path):
    store = _store(tmp_path)
    with (
        pytest.raises(RuntimeError, match="the island went away"),
        background_checkpoints(store) as running,
    ):
        assert running is not None
        _write(store, 20)
        raise RuntimeError("the island went away")
    assert not running.alive and _checkpoint_threads() == []
    db = Path(str(store.engine.url.database))
    assert db.with_name(db.name + "-wal").stat().st_size == 0
    assert _autocheckpoint(store) == 1000
    store.dispose()


def test_a_reader_holding_a_snapshot_never_blocks_the_writer_or_the_exit(tmp_path):
    store = _store(tmp_path)
    reader = sqlite3.connect(str(store.engine.url.database), isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM t").fetchone() == (0,)
    started = time.monotonic()
    with background_checkpoints(store) as running:
        assert running is not None
        _write(store, 100)
        # The reader's snapshot is older than the WAL: nothing past it could be copied.
        assert reader.execute("SELECT count(*) FROM t").fetchone() == (0,)
    assert time.monotonic() - started < 10
    assert not running.alive
    reader.execute("COMMIT")
    assert reader.execute("SELECT count(*) FROM t").fetchone() == (100 * ROWS_PER_TX,)
    reader.close()
    store.dispose()


def test_errors_in_the_thread_never_reach_the_writer(tmp_path, monkeypatch):
    def locked(*_args: object, **_kwargs: object) -> sqlite3.Connection:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(checkpoint, "_connect", locked)
    monkeypatch.setattr(checkpoint, "CHECKPOINT_PAGES", 1)
    store = _store(tmp_path)
    with background_checkpoints(store) as running:
        assert running is not None
        _write(store, 60)
    assert running.errors > 0 and running.checkpoints == 0
    assert not running.alive
    assert _count(store) == 60 * ROWS_PER_TX
    store.dispose()


def test_postgresql_runs_no_thread(store_url):
    store = open_store(store_url)
    with background_checkpoints(store) as running:
        if store.dialect == "postgresql":
            assert running is None
            assert _checkpoint_threads() == []
        else:
            assert running is not None and running.alive
    store.dispose()


def test_a_sync_runs_with_the_checkpointer(sample_project, tmp_path, monkeypatch):
    entered: list[int] = []
    original = checkpoint.background_checkpoints

    def spy(store: Store):  # type: ignore[no-untyped-def]
        entered.append(store.engine.pool.checkedout())
        return original(store)

    monkeypatch.setattr("islandhub.pipeline.background_checkpoints", spy)
    project, store = load(sample_project, f"sqlite:///{tmp_path / 'hub.db'}", monkeypatch)
    results = run_all(project, store)
    assert [r.status for r in results] == ["succeeded"] * len(results)
    assert len(entered) == len(results)  # one checkpointer per stream's sync
    assert _checkpoint_threads() == []
    assert _autocheckpoint(store) == 1000


@pytest.mark.parametrize("pages", [checkpoint.SAFETY_NET_PAGES])
def test_overlapping_uses_keep_the_raised_value_until_the_last_ends(tmp_path, pages):
    store = _store(tmp_path)
    with store.raised_autocheckpoint(pages):
        with store.raised_autocheckpoint(2 * pages):
            assert _autocheckpoint(store) == 2 * pages
        assert _autocheckpoint(store) == pages
    assert _autocheckpoint(store) == 1000
    store.dispose()
