"""The store's own floor: the rows a finished sync wrote, written again by SQLite alone.

The raw reference (ingest.py) writes one row of twelve texts per source row, 60 MB for the
500,000-row export. A sync writes what the hub keeps of each record: the sealed payload, the
mapped fields, the link, the national-id key, the resident, its golden record and lineage,
and the resolution queue's entry, eight rows and about 3 KB per record, each table with its
indexes. This replays those rows, read from the benchmark's finished store, into a new store
that the hub's own migrations and connection settings made (16 KiB pages, WAL, the same
cache), in the sync's batches and transactions: per batch one transaction that lands
(landing, source records, quarantine) and one that publishes (links, keys in key order,
residents, versions, lineage, queue). Only the writes are timed, not the reads that
gather a batch.

So it tells how fast any sync could be that writes what this store layout asks for: the
sync's own throughput against it is what its Python costs on top, and a target above it
needs fewer or smaller rows per record, not a faster sync. Run alone, it can leave tables
out, to show what each costs (docs/store.md, "What a record costs to write"):

    python benchmarks/store_floor.py benchmarks/out/islandhub_full.db --without resident_keys
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

# Per batch, in the sync's order (landing.py, resolve/publish.py).
LAND = ("landing", "source_records", "quarantine")
PUBLISH = ("links", "resident_keys", "residents", "resident_versions", "lineage")
QUEUE = "resolution_queue"


def replay(source: Path, target: Path, batch: int, without: Sequence[str] = ()) -> dict[str, Any]:
    """Write `source`'s synced rows into a new store at `target`, timed; figures per table.

    Tables in `without` are left out: their rows are read with the batch, not written.
    """
    from islandhub.privacy.crypto import KEY_ENV, KEY_FILE_ENV
    from islandhub.store import open_store

    if not os.environ.get(KEY_ENV) and not os.environ.get(KEY_FILE_ENV):
        # The replayed values are copied as they are: the new store's own key seals nothing.
        os.environ[KEY_FILE_ENV] = str(target.with_suffix(".key"))
    store = open_store(f"sqlite:///{target}")  # the hub's schema and connection settings
    written = dict.fromkeys((*LAND, *PUBLISH, QUEUE), 0)
    seconds = cpu = 0.0
    records = 0
    raw = store.engine.raw_connection()
    try:
        into = raw.driver_connection
        with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src:
            for rows in _batches(src, batch):
                records += len(rows["landing"])
                for name in without:
                    rows[name] = []
                started, cpu_started = time.perf_counter(), time.process_time()
                _write(into, rows, LAND)
                _write(into, rows, (*PUBLISH, QUEUE))
                seconds += time.perf_counter() - started
                cpu += time.process_time() - cpu_started
                for name, found in rows.items():
                    written[name] += len(found)
    finally:
        raw.close()
        store.dispose()
    # The CPU of the writes alone, like the seconds: reading the rows back is not the floor's.
    cpu_of_writes = {"own_seconds": round(cpu, 2), "helpers_seconds": 0.0}
    return {"rows": records, "seconds": seconds, "written": written, "cpu": cpu_of_writes}


def _write(conn: Any, rows: dict[str, list[tuple[Any, ...]]], tables: Sequence[str]) -> None:
    """One transaction, as the sync's Store.begin makes it."""
    conn.execute("BEGIN")
    for name in tables:
        if rows[name]:
            marks = ", ".join("?" * len(rows[name][0]))
            conn.executemany(f"INSERT INTO {name} VALUES ({marks})", rows[name])
    conn.execute("COMMIT")


def _batches(src: sqlite3.Connection, batch: int) -> Iterator[dict[str, list[tuple[Any, ...]]]]:
    """The source store's rows, a landing batch at a time in landing order (one stream)."""
    streams = src.execute("SELECT DISTINCT system, stream FROM landing").fetchall()
    if len(streams) != 1:
        raise ValueError(f"the store floor replays one stream's sync; the store holds {streams}")
    stream = streams[0]
    seq_at, id_at = _position(src, "landing", "seq"), _position(src, "landing", "source_id")
    resident_at = _position(src, "links", "resident_id")
    after = 0
    while True:
        landing = src.execute(
            "SELECT * FROM landing WHERE system = ? AND stream = ? AND seq > ? "
            "ORDER BY seq LIMIT ?",
            (*stream, after, batch),
        ).fetchall()
        if not landing:
            return
        after = landing[-1][seq_at]
        ids = json.dumps([row[id_at] for row in landing])
        rows = {"landing": landing}
        for name in ("source_records", "quarantine", "links", QUEUE):
            rows[name] = _of_sources(src, name, stream, ids)
        residents = json.dumps(sorted({row[resident_at] for row in rows["links"]}))
        for name in ("residents", "resident_versions", "lineage"):
            rows[name] = _of_residents(src, name, residents)
        # The sync writes a batch's keys in key order (resolve/publish.py, _assign).
        rows["resident_keys"] = sorted(_of_residents(src, "resident_keys", residents))
        yield rows


def _of_sources(
    src: sqlite3.Connection, table: str, stream: tuple[str, str], ids: str
) -> list[tuple[Any, ...]]:
    return src.execute(
        f"SELECT * FROM {table} WHERE system = ? AND stream = ? "
        "AND source_id IN (SELECT value FROM json_each(?)) ORDER BY source_id",
        (*stream, ids),
    ).fetchall()


def _of_residents(src: sqlite3.Connection, table: str, ids: str) -> list[tuple[Any, ...]]:
    return src.execute(
        f"SELECT * FROM {table} WHERE resident_id IN (SELECT value FROM json_each(?)) "
        "ORDER BY resident_id",
        (ids,),
    ).fetchall()


def _position(src: sqlite3.Connection, table: str, column: str) -> int:
    """Where `column` is in a row of `table` read with SELECT *."""
    return [info[1] for info in src.execute(f"PRAGMA table_info({table})")].index(column)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="a store after one stream's first sync")
    parser.add_argument("--batch", type=int, default=10_000, help="records per batch")
    parser.add_argument(
        "--without",
        action="append",
        default=[],
        choices=(*LAND, *PUBLISH, QUEUE),
        help="leave this table out (repeatable)",
    )
    args = parser.parse_args(argv)
    if not args.source.is_file():
        parser.error(f"{args.source}: no such store (run benchmarks/ingest.py first)")
    with tempfile.TemporaryDirectory(prefix="store-floor-") as folder:
        found = replay(args.source, Path(folder) / "floor.db", args.batch, args.without)
    left_out = f" without {', '.join(args.without)}" if args.without else ""
    print(
        f"store floor{left_out}: {found['rows']:,} records in {found['seconds']:.2f} s = "
        f"{found['rows'] / found['seconds']:,.0f} records/s "
        f"({found['seconds'] / found['rows'] * 1e6:.1f} µs per record; "
        f"CPU {found['cpu']['own_seconds']:.2f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
