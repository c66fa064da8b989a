"""Ingest benchmark: one resident export loaded four ways, each in its own process.

    raw          csv.reader + sqlite3.executemany of the unmapped rows: the floor cost
    dlt          a dlt pipeline (merge on id) into SQLite through its sqlalchemy destination
    islandhub    `islandhub sync` of a files island: land, map, quarantine, resolve, publish
    re-sync      the same sync again on the unchanged file (and once with --full-refresh)
    store floor  the rows that sync wrote, written again by SQLite alone (store_floor.py):
                 how fast any sync could be that keeps what this store layout keeps

Every measurement runs in a child process whose own peak RSS is read with os.wait4, so the
figures do not pollute each other. Prints a table and PASS/MISS per target, writes
benchmarks/out/ingest.json, and exits 0 whatever the figures (it reports, it does not gate).

    python benchmarks/ingest.py [--rows N] [--skip-dlt] [--dlt-rows N] [--work DIR]
    python benchmarks/ingest.py --rows 100000 --profile   # cProfile of the islandhub sync
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from common import (
    COLUMNS,
    ChildRun,
    DataFile,
    Timed,
    peak_rss_mb,
    run_child,
    table,
    workers_peak_rss_mb,
    write_export,
    write_prefix,
)

HERE = Path(__file__).resolve().parent
DEFAULT_WORK = HERE / "out"
DEFAULT_ROWS = 500_000
PREFIX_ROWS = 100_000
SEED = 753
BATCH = 10_000
TARGET_ROWS_PER_S = 35_000
TARGET_VS_DLT = 5.0
TARGET_RSS_MB = 1024.0
TARGET_RSS_GROWTH = 1.25  # full file vs prefix: at most 25 % more memory for 5x the rows
TARGET_RESYNC_SHARE = 0.05
PROFILE_TOP = 30

MAPPING_YAML = """\
# The benchmark's 12-field mapping: the common shapes of a register-like export.
source: bench.residents
entity: resident
id: id
fields:
  national_id:         {from: hetu, use: [strip, hetu], required: true}
  given_name:          {from: etunimet, use: [collapse_spaces]}
  family_name:         {from: sukunimi}
  birth_date:          {from: syntymaaika, use: [{date: "%d.%m.%Y"}]}
  email:               {from: email, use: [email]}
  phone:               {from: puhelin, use: [phone]}
  address.street:      {from: katuosoite}
  address.postal_code: {from: postinumero, use: [postal_code]}
  address.post_office: {from: postitoimipaikka, use: [title]}
  language:
    from: aidinkieli
    use:
      - lower
      - map: {values: {suomi: fi, svenska: sv, finska: fi, svensk: sv}, default: other}
  municipality_code:   {from: kotikunta}
"""


# --- arguments -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="rows in the export")
    parser.add_argument("--encoding", default="utf-8", choices=["utf-8", "cp1252"])
    parser.add_argument("--skip-dlt", action="store_true", help="leave dlt out")
    parser.add_argument("--dlt-rows", type=int, help="run dlt on this many first rows only")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="work folder")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="only run the islandhub sync under cProfile, print the top entries",
    )
    parser.add_argument(
        "--no-bytecode-cache",
        dest="bytecode_cache",
        action="store_false",
        help="let every child compile its modules again (PYTHONDONTWRITEBYTECODE as set)",
    )
    # Internal: one measurement in a child process.
    parser.add_argument(
        "--only", choices=["raw", "dlt", "islandhub", "store"], help=argparse.SUPPRESS
    )
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--project", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--full-refresh", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# --- the child measurements ----------------------------------------------------------------


def csv_rows(path: Path, encoding: str, limit: int | None = None) -> Iterator[list[str]]:
    """The export's data rows (header skipped), at most `limit`."""
    with path.open(encoding=encoding, newline="") as handle:
        reader = csv.reader(handle, delimiter=";")
        next(reader)
        for number, row in enumerate(reader):
            if limit is not None and number >= limit:
                return
            yield row


def measure_raw(args: argparse.Namespace) -> dict[str, Any]:
    """The floor: unmapped rows into one table of 12 text columns, one commit."""
    with Timed() as timed:
        conn = sqlite3.connect(args.db)
        conn.execute("PRAGMA journal_mode=WAL")  # the store's own settings, for a fair floor
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"CREATE TABLE raw ({', '.join(c + ' TEXT' for c in COLUMNS)})")
        marks = ", ".join("?" * len(COLUMNS))
        conn.executemany(f"INSERT INTO raw VALUES ({marks})", csv_rows(args.file, args.encoding))
        conn.commit()
    rows = conn.execute("SELECT count(*) FROM raw").fetchone()[0]
    conn.close()
    return {"rows": rows, "seconds": timed.seconds, "cpu": timed.cpu}


def dlt_chunks(path: Path, encoding: str, limit: int | None) -> Iterator[list[dict[str, str]]]:
    chunk: list[dict[str, str]] = []
    for row in csv_rows(path, encoding, limit):
        chunk.append(dict(zip(COLUMNS, row, strict=True)))
        if len(chunk) == BATCH:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def measure_dlt(args: argparse.Namespace) -> dict[str, Any]:
    """dlt's own way: a resource of dict rows, merged on id into SQLite via sqlalchemy."""
    pipes = args.db.parent / "dlt_pipelines"
    os.environ.update(
        RUNTIME__DLTHUB_TELEMETRY="false",
        RUNTIME__LOG_LEVEL="WARNING",
        DLT_DATA_DIR=str(args.db.parent / "dlt_home"),
    )
    warnings.filterwarnings("ignore")  # dlt's merge job trips SQLAlchemy deprecation warnings
    import dlt

    with Timed() as timed:
        residents = dlt.resource(
            dlt_chunks(args.file, args.encoding, args.dlt_rows),
            name="residents",
            primary_key="id",
            write_disposition="merge",
        )
        pipeline = dlt.pipeline(
            pipeline_name="bench",
            pipelines_dir=str(pipes),
            dataset_name="bench",
            destination=dlt.destinations.sqlalchemy(credentials=f"sqlite:///{args.db}"),
        )
        pipeline.run(residents)
    return {"rows": _dlt_count(args.db), "seconds": timed.seconds, "cpu": timed.cpu}


def _dlt_count(db: Path) -> int:
    """dlt keeps each SQLite dataset in a file of its own next to the database."""
    with sqlite3.connect(db.with_name(f"{db.stem}__bench.db")) as conn:
        return int(conn.execute("SELECT count(*) FROM residents").fetchone()[0])


def measure_islandhub(args: argparse.Namespace) -> dict[str, Any]:
    """One `islandhub sync bench`, exactly as the CLI runs it."""
    from islandhub.config import STORE_URL_ENV, load_project
    from islandhub.pipeline import sync
    from islandhub.store import open_store

    # The project's own store, whatever the calling shell has in ISLANDHUB_STORE_URL.
    environ = {k: v for k, v in os.environ.items() if k != STORE_URL_ENV}
    with Timed() as timed:
        project = load_project(args.project, environ=environ)
        store = open_store(project.hub.store_url)
        if args.profile:
            results = _profiled(
                lambda: sync(project, store, ["bench"], full_refresh=args.full_refresh),
                args.project.parent / "islandhub.prof",
            )
        else:
            results = sync(project, store, ["bench"], full_refresh=args.full_refresh)
    store.dispose()
    result = results[0].as_dict()
    return {
        "rows": result["pulled"],
        "seconds": timed.seconds,
        "cpu": timed.cpu,
        "result": result,
        "tables": table_counts(project.hub.store_url),
    }


def _profiled(run: Callable[[], Any], dump: Path) -> Any:
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    value = profiler.runcall(run)
    profiler.dump_stats(dump)
    print(
        f"\ncProfile of the islandhub sync, top {PROFILE_TOP} by cumulative time "
        f"(full dump: {dump}):"
    )
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(PROFILE_TOP)
    return value


def measure_store(args: argparse.Namespace) -> dict[str, Any]:
    """The store floor (store_floor.py): the full sync's rows replayed by SQLite alone."""
    from store_floor import replay

    return replay(args.source, args.db, BATCH)


def table_counts(store_url: str) -> dict[str, int]:
    """Rows in the tables an ingest fills (read with plain sqlite3)."""
    path = store_url.split(":///", 1)[1]
    with sqlite3.connect(path) as conn:
        return {
            name: int(conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0])
            for name in ("landing", "source_records", "quarantine", "residents")
        }


def child(args: argparse.Namespace) -> int:
    measure = {
        "raw": measure_raw,
        "dlt": measure_dlt,
        "islandhub": measure_islandhub,
        "store": measure_store,
    }
    # Each reports the wall and CPU seconds of the same stretch of its work (common.Timed;
    # the store floor its writes only): on few cores, CPU bounds the rows/s (cpu_budget).
    report = measure[args.only](args)
    # Processes this one started count too (the hub's extract worker and quality validator):
    # this process's peak plus the largest finished child's, an upper bound (a forked child's
    # shared pages count twice). The parent samples the live tree's sum and PSS (run_child).
    report["peak_rss_mb"] = peak_rss_mb() + workers_peak_rss_mb()
    if args.result:
        args.result.write_text(json.dumps(report, indent=2))
    return 0


# --- setting up the runs -------------------------------------------------------------------


def fresh_db(path: Path) -> Path:
    """Remove a SQLite database with its WAL, SHM and dlt's per-dataset files."""
    for stale in path.parent.glob(f"{path.stem}*.db*"):
        stale.unlink()
    return path


def write_project(folder: Path, data: DataFile, db: Path, encoding: str) -> Path:
    """A throwaway islandhub project: one files island reading the export's folder."""
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "config" / "systems").mkdir(parents=True)
    (folder / "mappings" / "bench").mkdir(parents=True)
    (folder / "config" / "hub.yaml").write_text(f"store: sqlite:///{db}\n")
    (folder / "config" / "systems" / "bench.yaml").write_text(
        "system: bench\n"
        "connector: files\n"
        f"connection: {{path: {json.dumps(str(data.path.parent))}}}\n"
        "streams:\n"
        "  residents:\n"
        f"    files: {json.dumps(data.path.name)}\n"
        "    format: csv\n"
        '    delimiter: ";"\n'
        f"    encoding: {encoding}\n"
        f"    batch_size: {BATCH}\n"
        "    mapping: mappings/bench/residents.yaml\n"
    )
    (folder / "mappings" / "bench" / "residents.yaml").write_text(MAPPING_YAML)
    return folder


def prepare_data(args: argparse.Namespace) -> tuple[DataFile, DataFile]:
    """Write the export and its prefix, each in a folder of its own (the island's drop)."""
    full = write_export(
        args.work / "data" / "full" / "residents.csv", args.rows, SEED, args.encoding
    )
    size_mb = full.path.stat().st_size / 1e6
    print(
        f"generated {full.rows:,} rows ({size_mb:.0f} MB, {full.invalid_hetu:,} invalid HETUs) "
        f"in {full.seconds:.1f} s: {full.path}"
    )
    prefix_rows = min(PREFIX_ROWS, max(1, args.rows // 5))
    prefix = write_prefix(
        full, args.work / "data" / "prefix" / "residents.csv", prefix_rows, args.encoding
    )
    return full, prefix


def child_args(args: argparse.Namespace, only: str, *extra: str) -> list[str]:
    return ["--only", only, "--encoding", args.encoding, *extra]


def report_failure(name: str, run: ChildRun) -> None:
    if run.returncode != 0 or not run.report:
        print(f"!! {name} failed (exit {run.returncode}); its figures are missing", flush=True)


def run_raw(args: argparse.Namespace, data: DataFile) -> ChildRun:
    db = fresh_db(args.work / "raw.db")
    run = run_child(
        child_args(args, "raw", "--file", str(data.path), "--db", str(db)), args.work / "raw.json"
    )
    report_failure("raw", run)
    return run


def run_dlt(args: argparse.Namespace, data: DataFile) -> ChildRun:
    db = fresh_db(args.work / "dlt.db")
    shutil.rmtree(args.work / "dlt_pipelines", ignore_errors=True)
    extra = ["--file", str(data.path), "--db", str(db)]
    if args.dlt_rows:
        extra += ["--dlt-rows", str(args.dlt_rows)]
    run = run_child(child_args(args, "dlt", *extra), args.work / "dlt.json")
    report_failure("dlt", run)
    return run


def run_islandhub(args: argparse.Namespace, data: DataFile, label: str) -> list[ChildRun]:
    """First sync on a fresh store, then (full file only) the two re-syncs."""
    db = fresh_db(args.work / f"islandhub_{label}.db")
    project = write_project(args.work / f"project_{label}", data, db, args.encoding)
    base = child_args(args, "islandhub", "--project", str(project))
    # A sync as `islandhub sync` runs it on a 2-core machine: with the extract worker
    # (opt-in, ISLANDHUB_WORKERS=1; its memory is counted in the peak RSS).
    env = {"ISLANDHUB_WORKERS": os.environ.get("ISLANDHUB_WORKERS", "1")}
    first = run_child(
        [*base, *(["--profile"] if args.profile else [])],
        args.work / f"islandhub_{label}.json",
        env,
    )
    report_failure(f"islandhub {label}", first)
    if label != "full" or args.profile:
        return [first]
    again = run_child(base, args.work / "resync.json", env)
    report_failure("re-sync", again)
    refresh = run_child([*base, "--full-refresh"], args.work / "resync_full.json", env)
    report_failure("re-sync --full-refresh", refresh)
    return [first, again, refresh]


def run_store_floor(args: argparse.Namespace) -> ChildRun:
    """The full sync's rows written again by SQLite alone (store_floor.py)."""
    db = fresh_db(args.work / "store_floor.db")
    extra = ["--source", str(args.work / "islandhub_full.db"), "--db", str(db)]
    run = run_child(child_args(args, "store", *extra), args.work / "store_floor.json")
    report_failure("store floor", run)
    return run


# --- the report ----------------------------------------------------------------------------


def figures(name: str, run: ChildRun | None, note: str = "") -> dict[str, Any] | None:
    if run is None or not run.report:
        return None
    rows, seconds = run.report["rows"], run.report["seconds"]
    return {
        "method": name,
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds) if seconds else None,
        "peak_rss_mb": round(run.peak_rss_mb, 1),
        "peak_pss_mb": run.report.get("peak_pss_mb"),
        "process_seconds": round(run.process_seconds, 2),
        **_cpu(run.report.get("cpu"), rows),
        "note": note,
    }


def _cpu(cpu: dict[str, float] | None, rows: int) -> dict[str, Any]:
    """The measured work's CPU seconds, all its processes, and its CPU microseconds per row."""
    if not cpu:
        return {"cpu_seconds": None, "cpu_helpers_seconds": None, "cpu_us_per_row": None}
    total = cpu["own_seconds"] + cpu["helpers_seconds"]
    return {
        "cpu_seconds": round(total, 2),
        "cpu_helpers_seconds": cpu["helpers_seconds"],
        "cpu_us_per_row": round(total / rows * 1e6, 1) if rows else None,
    }


def _ratio(value: float | None, base: dict[str, Any] | None) -> str:
    if not value or not base or not base["rows_per_s"]:
        return "-"
    return f"{value / base['rows_per_s']:.2f}x"


def print_table(rows: list[dict[str, Any]]) -> None:
    by = {r["method"]: r for r in rows}
    headers = [
        "method",
        "rows",
        "seconds",
        "CPU s",
        "rows/s",
        "peak RSS MB",
        "PSS MB",
        "vs dlt",
        "vs raw",
    ]
    body = [
        [
            r["method"] + (f" ({r['note']})" if r["note"] else ""),
            f"{r['rows']:,}",
            f"{r['seconds']:.2f}",
            f"{r['cpu_seconds']:.1f}" if r.get("cpu_seconds") is not None else "-",
            f"{r['rows_per_s']:,}" if r["rows_per_s"] else "-",
            f"{r['peak_rss_mb']:.0f}",
            f"{r['peak_pss_mb']:.0f}" if r.get("peak_pss_mb") else "-",
            _ratio(r["rows_per_s"], by.get("dlt")),
            _ratio(r["rows_per_s"], by.get("raw")),
        ]
        for r in rows
    ]
    print()
    print(table(headers, body))
    print(
        "(seconds: the measured work in the child, imports excluded; CPU s: its user and "
        "system CPU in every process it ran in; "
        "peak RSS: summed over the child and the processes it started, shared pages counted "
        "in each; PSS: the same tree's actual footprint)"
    )


def check_counts(run: ChildRun | None, data: DataFile) -> list[dict[str, Any]]:
    """Correctness of the first islandhub sync: the counts add up and match the export."""
    if run is None or not run.report:
        return [{"check": "islandhub sync ran", "ok": False, "detail": "no report"}]
    res, tab = run.report["result"], run.report["tables"]
    valid = data.rows - data.invalid_hetu
    added = res["unchanged"] + res["mapped"] + res["quarantined"]
    pairs = [
        ("status succeeded", res["status"] == "succeeded", res["status"]),
        (
            "pulled == unchanged + mapped + quarantined",
            res["pulled"] == added,
            f"{res['pulled']} == {res['unchanged']} + {res['mapped']} + {res['quarantined']}",
        ),
        ("pulled == rows in file", res["pulled"] == data.rows, f"{res['pulled']} vs {data.rows}"),
        (
            "quarantined == invalid HETUs",
            res["quarantined"] == data.invalid_hetu,
            f"{res['quarantined']} vs {data.invalid_hetu}",
        ),
        ("landing == rows", tab["landing"] == data.rows, f"{tab['landing']}"),
        (
            "source_records == mapped == valid rows",
            tab["source_records"] == res["mapped"] == valid,
            f"{tab['source_records']} vs {valid}",
        ),
        (
            "quarantine table == quarantined",
            tab["quarantine"] == res["quarantined"],
            f"{tab['quarantine']}",
        ),
        (
            "residents == valid rows (unique HETUs)",
            tab["residents"] == valid,
            f"{tab['residents']} vs {valid}",
        ),
        ("published == mapped", res["published"] == res["mapped"], f"{res['published']}"),
    ]
    return [{"check": c, "ok": bool(ok), "detail": d} for c, ok, d in pairs]


def print_checks(title: str, run: ChildRun | None, checks: list[dict[str, Any]]) -> None:
    print(f"\n{title}")
    if run is not None and run.report:
        print(f"  StreamResult: {run.report['result']}")
        print(f"  tables:       {run.report['tables']}")
    for c in checks:
        print(f"  {'ok  ' if c['ok'] else 'FAIL'}  {c['check']}: {c['detail']}")


def targets(res: dict[str, dict[str, Any] | None]) -> list[dict[str, Any]]:
    """PASS/MISS per target, for whatever was measured."""
    hub, dlt_, pre, again = (res.get(k) for k in ("islandhub", "dlt", "islandhub_prefix", "resync"))
    if not hub:
        return []
    out = [_throughput(hub), _memory(hub)]
    if dlt_:
        out.append(_versus_dlt(hub, dlt_))
    if pre:
        out.append(_memory_growth(hub, pre))
    if again:
        out.append(_resync(hub, again))
    return out


def _throughput(hub: dict[str, Any]) -> dict[str, Any]:
    speed = hub["rows_per_s"]
    name = f"islandhub >= {TARGET_ROWS_PER_S:,} rows/s"
    return _target(name, speed, speed >= TARGET_ROWS_PER_S, f"{speed:,}")


def _memory(hub: dict[str, Any]) -> dict[str, Any]:
    peak = hub["peak_rss_mb"]
    name = f"islandhub peak RSS <= {TARGET_RSS_MB:.0f} MB"
    return _target(name, peak, peak <= TARGET_RSS_MB, f"{peak:.0f} MB")


def _versus_dlt(hub: dict[str, Any], dlt_: dict[str, Any]) -> dict[str, Any]:
    ratio = hub["rows_per_s"] / dlt_["rows_per_s"]
    name = f"islandhub >= {TARGET_VS_DLT:.0f}x dlt"
    return _target(name, round(ratio, 2), ratio >= TARGET_VS_DLT, f"{ratio:.2f}x")


def _memory_growth(hub: dict[str, Any], pre: dict[str, Any]) -> dict[str, Any]:
    growth = hub["peak_rss_mb"] / pre["peak_rss_mb"]
    detail = (
        f"{pre['peak_rss_mb']:.0f} MB at {pre['rows']:,} rows -> "
        f"{hub['peak_rss_mb']:.0f} MB at {hub['rows']:,} rows ({growth:.2f}x)"
    )
    name = f"peak RSS flat in file size (<= {TARGET_RSS_GROWTH}x)"
    return _target(name, round(growth, 3), growth <= TARGET_RSS_GROWTH, detail)


def _resync(hub: dict[str, Any], again: dict[str, Any]) -> dict[str, Any]:
    share = again["seconds"] / hub["seconds"]
    name = f"re-sync <= {TARGET_RESYNC_SHARE:.0%} of first sync"
    detail = f"{again['seconds']:.2f} s = {share:.1%}"
    return _target(name, round(share, 4), share <= TARGET_RESYNC_SHARE, detail)


def _target(name: str, value: Any, ok: bool, detail: str) -> dict[str, Any]:
    return {"target": name, "value": value, "pass": ok, "detail": detail}


def print_targets(found: list[dict[str, Any]]) -> None:
    print("\ntargets (reported, not gating):")
    for t in found:
        print(f"  {'PASS' if t['pass'] else 'MISS'}  {t['target']}: {t['detail']}")


def cpu_budget(res: dict[str, dict[str, Any] | None], cores: int) -> dict[str, Any] | None:
    """What the first sync's CPU per row allows on this machine, against what the target needs.

    A sync's processes share the machine's cores, so however well they overlap, no sync that
    costs `us_per_row` CPU microseconds per row exceeds `cores` * 1e6 / `us_per_row` rows/s.
    The target's rows/s needs at most `cores` * 1e6 / target microseconds per row.
    """
    hub = res.get("islandhub")
    if not hub or not hub.get("cpu_us_per_row"):
        return None
    per_row = hub["cpu_us_per_row"]
    helpers = hub["cpu_helpers_seconds"] / hub["rows"] * 1e6
    peers = {
        name: r["cpu_us_per_row"]
        for name in ("raw", "dlt", "store_floor")
        if (r := res.get(name)) and r.get("cpu_us_per_row")
    }
    return {
        "cores": cores,
        "us_per_row": per_row,
        "writer_us_per_row": round(per_row - helpers, 1),
        "helpers_us_per_row": round(helpers, 1),
        "cores_busy": round(hub["cpu_seconds"] / hub["seconds"], 2),
        "ceiling_rows_per_s": round(cores * 1e6 / per_row),
        "target_us_per_row": round(cores * 1e6 / TARGET_ROWS_PER_S, 1),
        "peers_us_per_row": peers,
    }


def print_cpu_budget(budget: dict[str, Any] | None) -> None:
    if budget is None:
        return
    cores, per_row = budget["cores"], budget["us_per_row"]
    print(f"\nCPU per row (every process of a run, {cores} cores):")
    print(
        f"  islandhub: {per_row:.0f} us per row, the writer {budget['writer_us_per_row']:.0f} "
        f"and its extract worker and quality validator {budget['helpers_us_per_row']:.0f}; "
        f"{budget['cores_busy']:.2f} of {cores} cores busy on average"
    )
    print(
        f"  so no sync at this cost exceeds {budget['ceiling_rows_per_s']:,} rows/s here; "
        f"{TARGET_ROWS_PER_S:,} rows/s needs at most {budget['target_us_per_row']:.0f} us per row"
    )
    peers = ", ".join(f"{name} {us:.0f}" for name, us in budget["peers_us_per_row"].items())
    if peers:
        print(f"  peers, us per row: {peers}")


# --- the orchestration ---------------------------------------------------------------------


def profile_only(args: argparse.Namespace, full: DataFile) -> int:
    """--profile: one islandhub sync under cProfile; the figures are not a measurement."""
    run = run_islandhub(args, full, "full")[0]
    fig = figures("islandhub (profiled)", run)
    if fig:
        print(
            f"\nprofiled sync: {fig['rows']:,} rows in {fig['seconds']:.1f} s "
            f"(cProfile slows it down; run without --profile for figures)"
        )
    return 0 if fig else 1


def measure_all(args: argparse.Namespace, full: DataFile, prefix: DataFile) -> dict[str, Any]:
    runs: dict[str, ChildRun | None] = {}
    print("\n[1/5] raw floor ...", flush=True)
    runs["raw"] = run_raw(args, full)
    if not args.skip_dlt:
        print("[2/5] dlt ...", flush=True)
        runs["dlt"] = run_dlt(args, full)
    print("[3/5] islandhub sync, re-sync, re-sync --full-refresh ...", flush=True)
    hub = run_islandhub(args, full, "full")
    runs.update(zip(("islandhub", "resync", "resync_full_refresh"), hub, strict=False))
    print("[4/5] the store floor: the sync's rows written again by SQLite alone ...", flush=True)
    runs["store_floor"] = run_store_floor(args) if hub[0].report else None
    print(f"[5/5] islandhub on the {prefix.rows:,}-row prefix ...", flush=True)
    runs["islandhub_prefix"] = run_islandhub(args, prefix, "prefix")[0]
    return runs


def summarise(
    args: argparse.Namespace, full: DataFile, prefix: DataFile, runs: dict[str, ChildRun | None]
) -> dict[str, Any]:
    dlt_note = f"first {args.dlt_rows:,} rows" if args.dlt_rows else ""
    notes = {
        "dlt": dlt_note,
        "resync": "unchanged file",
        "resync_full_refresh": "--full-refresh",
        "islandhub_prefix": "prefix",
        "store_floor": "the sync's rows, SQLite alone",
    }
    res = {name: figures(name, run, notes.get(name, "")) for name, run in runs.items()}
    rows = [r for r in res.values() if r]
    print_table(rows)
    checks = check_counts(runs.get("islandhub"), full)
    print_checks(
        "islandhub correctness (first sync of the full file):", runs.get("islandhub"), checks
    )
    prefix_checks = check_counts(runs.get("islandhub_prefix"), prefix)
    print_checks("islandhub correctness (prefix):", runs.get("islandhub_prefix"), prefix_checks)
    found = targets(res)
    print_targets(found)
    budget = cpu_budget(res, os.cpu_count() or 1)
    print_cpu_budget(budget)
    return {
        "rows": full.rows,
        "encoding": args.encoding,
        "seed": SEED,
        "batch_size": BATCH,
        "generate_seconds": round(full.seconds, 2),
        "invalid_hetu": full.invalid_hetu,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "results": rows,
        "checks": checks + prefix_checks,
        "targets": found,
        "cpu_budget": budget,
    }


# What the three methods import, compiled once before any clock runs (see bytecode_cache).
WARM_UP = (
    "import connectors.files, dlt, dlt.destinations, islandhub.pipeline, islandhub.quality.gx, "
    "islandhub.resolve.publish, sqlalchemy.dialects.sqlite"
)


def bytecode_cache(args: argparse.Namespace) -> float | None:
    """Children compile modules once, into a cache of the benchmark's own, before any clock.

    A deployed hub (and a dlt pipeline) runs from compiled modules. On a machine with
    PYTHONDONTWRITEBYTECODE=1 every child would compile Great Expectations, dlt and the rest
    again on each start, and the lazy imports inside a sync would count seconds of that. The
    seconds the warm-up took, or None with --no-bytecode-cache.
    """
    if not args.bytecode_cache:
        return None
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(args.work / "pycache")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", WARM_UP], check=True)
    return round(time.perf_counter() - started, 1)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.only:
        return child(args)
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    full, prefix = prepare_data(args)
    warmed = bytecode_cache(args)
    if args.profile:
        return profile_only(args, full)
    runs = measure_all(args, full, prefix)
    summary = summarise(args, full, prefix, runs)
    summary["bytecode_cache"] = {"on": args.bytecode_cache, "warm_up_seconds": warmed}
    out = args.work / "ingest.json"
    out.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    print(f"\nfigures written to {out}")
    crashed = [name for name, run in runs.items() if run is None or run.returncode != 0]
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
