"""Planner statistics: a sync that grows the store refreshes them on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from islandhub.store import open_store, statistics
from islandhub.store.bulk import insert_rows
from islandhub.store.statistics import StatisticsKeeper
from islandhub.store.tables import links
from tests.conftest import _pg_schema_url
from tests.helpers import load, run_all


def _analysed(store, table: str) -> bool:
    query = sa.text(
        "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables "
        "WHERE relname = :table AND schemaname = current_schema()"
    )
    with store.connect() as conn:
        return bool(conn.execute(query, {"table": table}).scalar_one())


def _rows_planned(store, table: str) -> float:
    """How many rows the planner believes `table` holds (-1: never analysed)."""
    query = sa.text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:table)")
    with store.connect() as conn:
        return float(conn.execute(query, {"table": table}).scalar_one())


def test_statistics_are_refreshed_at_each_doubling_on_postgresql(store_url):
    store = open_store(store_url)
    keeper = StatisticsKeeper(store)
    if store.dialect != "postgresql":
        keeper.wrote(10 * statistics.FIRST_REFRESH)  # SQLite plans by its keys: nothing to do
        assert keeper.refreshes == 0
        store.dispose()
        return
    rows = [
        ("register", "people", f"p{n:06d}", f"r{n % 997}", "new", "run", "2026-01-01T00:00:00Z")
        for n in range(20_000)
    ]
    with store.begin() as conn:
        insert_rows(conn, links, [c.name for c in links.columns], rows)
    # Never analysed, the table is planned as (nearly) empty: a chunk's ids then become a
    # filter over every row of the stream rather than an index condition.
    assert _rows_planned(store, "links") <= 0
    keeper.wrote(statistics.FIRST_REFRESH - 1)
    assert keeper.refreshes == 0 and not _analysed(store, "links")
    keeper.wrote(1)
    assert keeper.refreshes == 1 and _analysed(store, "links")
    assert _rows_planned(store, "links") == 20_000
    keeper.wrote(statistics.FIRST_REFRESH - 1)  # 9,999: not yet twice the 5,000
    assert keeper.refreshes == 1
    keeper.wrote(1)
    assert keeper.refreshes == 2
    store.dispose()


@pytest.fixture
def pg_store_url(pg_base_url: str) -> Iterator[str]:
    """PostgreSQL only: statistics are its own (SQLite's case is in the test above)."""
    yield from _pg_schema_url(pg_base_url)


def test_a_sync_refreshes_the_statistics_it_plans_with(
    sample_project, pg_store_url, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(statistics, "FIRST_REFRESH", 1)
    project, store = load(sample_project, pg_store_url, monkeypatch)
    assert not _analysed(store, "landing")
    run_all(project, store)
    assert all(_analysed(store, table) for table in ("landing", "links", "resident_keys"))
    store.dispose()
