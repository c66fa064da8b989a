"""Planner statistics on PostgreSQL, refreshed while a sync grows the tables it reads by key.

A sync looks records up by key in the tables it is filling (`id = ANY(array)` of up to a
chunk of ids: landing, source records, links, resident keys ...). PostgreSQL plans those
lookups from its statistics; a table that grew from nothing to 200,000 rows since its last
ANALYZE is still planned as nearly empty, the id list becomes a filter over every row of the
stream instead of an index condition, and each chunk's lookup takes seconds instead of
milliseconds (the load benchmark: 12 s per chunk at 226,000 residents). Autovacuum analyses
a table only after a fifth of it changed, and is often off on CI servers; so a sync
refreshes the statistics itself whenever it has doubled what it wrote since the last time.
SQLite needs nothing: its planner uses the primary key whatever the table's size.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

from islandhub.store.db import Store

#: The tables a sync and its publishing read by key (their statistics steer those lookups).
KEYED_TABLES = (
    "landing",
    "source_records",
    "record_references",
    "links",
    "resident_keys",
    "residents",
    "resident_versions",
    "quarantine",
    "tombstones",
    "resolution_queue",
)
#: The first refresh after this many rows written; each next one after twice as many again.
FIRST_REFRESH = 5000
log = logging.getLogger(__name__)


class StatisticsKeeper:
    """Counts the rows one run writes and refreshes the statistics at each doubling."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.enabled = store.dialect == "postgresql"
        self.written = 0
        self.next_refresh = FIRST_REFRESH
        self.refreshes = 0

    def wrote(self, rows: int) -> None:
        """Note `rows` more rows written; ANALYZE when the total reached the next doubling."""
        if not self.enabled:
            return
        self.written += rows
        if self.written >= self.next_refresh:
            refresh(self.store)
            self.refreshes += 1
            self.next_refresh = 2 * self.written


def refresh(store: Store) -> None:
    """ANALYZE the keyed tables (PostgreSQL), skipping any another session analyses now."""
    # SKIP_LOCKED: two syncs growing the store at once do not queue behind each other's
    # ANALYZE; whichever runs it refreshes the statistics for both.
    sql = f"ANALYZE (SKIP_LOCKED) {', '.join(KEYED_TABLES)}"
    with store.begin() as conn:
        conn.execute(sa.text(sql))
    log.debug("planner statistics refreshed: %s", ", ".join(KEYED_TABLES))
