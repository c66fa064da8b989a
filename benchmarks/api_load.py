"""API load benchmark: resident reads over loopback at a fixed arrival rate, SQLite and PostgreSQL.

For each backend: a synthetic export of --residents people (the ingest benchmark's generator
and mapping) is synced into a fresh store; `islandhub api serve` then runs as a child process
on a free loopback port, and a bounded open-loop load generator (asyncio, raw HTTP/1.1 on
keep-alive connections, no third-party client in the measured path) sends
`GET /residents/{id}` with an API key at --rate requests/s for --seconds, after a short
warm-up. Requests are due at fixed intervals whether or not earlier ones have answered, so
a slow server shows as latency, not as a politely lower rate: each latency is measured from
the moment the request was due (queueing in the generator included), and the time from
sending to the last byte is reported beside it.

Every read is a real one: authorised, audited (an audit_log row per request, committed),
masked and turvakielto-filtered, as a client of the API would get it.

    python benchmarks/api_load.py [--rate 500] [--seconds 10] [--residents 20000]
        [--backends sqlite,postgresql] [--workers 1] [--connections 32]

PostgreSQL: ISLANDHUB_BENCH_PG_URL, else postgresql+psycopg://postgres@127.0.0.1:5432/
islandhub_bench (created when missing); the benchmark works in a schema of its own and drops
it. Prints the figures and the targets (p99 <= 50 ms at the full rate), writes
benchmarks/out/api_load.json, exits 0 whatever the figures (1 only when a run crashed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from common import table, write_export  # noqa: E402
from ingest import MAPPING_YAML  # noqa: E402

DEFAULT_WORK = HERE / "out" / "api_load"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/islandhub_bench"
SEED = 753
KEY_SECRET = "ISLANDHUB_BENCH_API_KEY"
TARGET_P99_MS = 50.0
TARGET_RATE_SHARE = 0.98  # the achieved rate may fall short of the target by 2 % at most
WARM_UP_SECONDS = 2.0
SAMPLE_IDS = 5000


# --- the store and the served project ------------------------------------------------------


def write_project(folder: Path, export: Path) -> Path:
    """A project with one files island (the export) and an API client reading with a key."""
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "config" / "systems").mkdir(parents=True)
    (folder / "mappings" / "bench").mkdir(parents=True)
    (folder / "config" / "hub.yaml").write_text(
        "store: sqlite:///var/islandhub.db\n"
        "api:\n"
        "  clients:\n"
        f"    loadgen: {{api_key: {{secret: {KEY_SECRET}}}, scopes: [residents:read]}}\n"
    )
    (folder / "config" / "systems" / "bench.yaml").write_text(
        "system: bench\n"
        "connector: files\n"
        f"connection: {{path: {json.dumps(str(export.parent))}}}\n"
        "streams:\n"
        "  residents:\n"
        f"    files: {json.dumps(export.name)}\n"
        '    format: csv\n    delimiter: ";"\n    batch_size: 10000\n'
        "    mapping: mappings/bench/residents.yaml\n"
    )
    (folder / "mappings" / "bench" / "residents.yaml").write_text(MAPPING_YAML)
    return folder


@contextmanager
def store_url(backend: str, work: Path) -> Iterator[str]:
    """A fresh, empty store of the backend; PostgreSQL's schema is dropped afterwards."""
    if backend == "sqlite":
        database = work / f"api_load_{os.getpid()}.db"
        for stale in work.glob(f"{database.stem}.db*"):
            stale.unlink()
        yield f"sqlite:///{database}"
        return
    import sqlalchemy as sa

    base = sa.engine.make_url(os.environ.get("ISLANDHUB_BENCH_PG_URL", DEFAULT_PG))
    admin = sa.create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": base.database}
        ).first()
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{base.database}"'))
    admin.dispose()
    schema = f"bench_api_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = base.update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def fill(project_root: Path, url: str) -> tuple[list[str], float]:
    """Sync the export into the store; the ids of a sample of its residents, and seconds."""
    import sqlalchemy as sa

    from islandhub.config import load_project
    from islandhub.pipeline import sync
    from islandhub.store import open_store
    from islandhub.store.tables import residents

    started = time.perf_counter()
    project = load_project(project_root, environ={"ISLANDHUB_STORE_URL": url})
    store = open_store(project.hub.store_url)
    results = sync(project, store, ["bench"])
    if any(r.status != "succeeded" for r in results):
        raise RuntimeError(f"the sync failed: {[r.as_dict() for r in results]}")
    seconds = time.perf_counter() - started
    with store.connect() as conn:
        ids = list(
            conn.execute(
                sa.select(residents.c.resident_id).where(residents.c.active.is_(True))
            ).scalars()
        )
    store.dispose()
    return random.Random(SEED).sample(ids, min(SAMPLE_IDS, len(ids))), seconds


@contextmanager
def api_server(project_root: Path, url: str, key: str, workers: int) -> Iterator[tuple[int, int]]:
    """`islandhub api serve` as a child process on a free loopback port: (port, pid)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    env = {**os.environ, "ISLANDHUB_STORE_URL": url, KEY_SECRET: key}
    command = [sys.executable, "-m", "islandhub.cli", "--project", str(project_root)]
    command += ["api", "serve", "--port", str(port), "--workers", str(workers)]
    log = (project_root / "api.log").open("w")
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        _wait_healthy(port, server)
        yield port, server.pid
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _wait_healthy(port: int, server: subprocess.Popen[bytes], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the API exited with {server.returncode}; see its api.log")
        try:
            status, _ = asyncio.run(_one_get(port, "/health", {}))
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError("the API did not become healthy")


async def _one_get(port: int, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    connection = await Connection.open(port, headers)
    try:
        return await connection.get(path)
    finally:
        connection.close()


# --- the load generator ----------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection: a prepared request head, a minimal response reader."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: str):
        self.reader, self.writer, self.head = reader, writer, head

    @classmethod
    async def open(cls, port: int, headers: dict[str, str]) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        return cls(reader, writer, f"Host: 127.0.0.1:{port}\r\n{lines}\r\n")

    async def get(self, path: str) -> tuple[int, bytes]:
        self.writer.write(f"GET {path} HTTP/1.1\r\n{self.head}".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        self.writer.close()


@dataclass
class Sample:
    """One request: when it was due, sent and answered (perf_counter seconds)."""

    due: float
    sent: float
    done: float
    status: int


@dataclass
class LoadResult:
    """What the generator saw in the measured window."""

    samples: list[Sample] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    requests_sent: int = 0  # warm-up included


async def generate(
    port: int, key: str, ids: list[str], rate: float, seconds: float, connections: int
) -> LoadResult:
    """Send requests due every 1/rate s over `connections` connections; measure after warm-up."""
    headers = {"X-API-Key": key, "X-Purpose": "load benchmark"}
    pool = [await Connection.open(port, headers) for _ in range(connections)]
    due_queue: asyncio.Queue[float | None] = asyncio.Queue()
    result = LoadResult()
    start = time.perf_counter() + 0.1
    measured_from = start + WARM_UP_SECONDS
    end = measured_from + seconds
    picks = random.Random(SEED)

    async def schedule() -> None:
        total = int((end - start) * rate)
        for n in range(total):
            due = start + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            due_queue.put_nowait(due)
        for _ in pool:
            due_queue.put_nowait(None)

    async def work(connection: Connection) -> None:
        while (due := await due_queue.get()) is not None:
            path = f"/residents/{picks.choice(ids)}"
            sent = time.perf_counter()
            result.requests_sent += 1
            try:
                status, _body = await connection.get(path)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                result.errors += 1
                return
            done = time.perf_counter()
            if due >= measured_from:
                result.samples.append(Sample(due, sent, done, status))

    await asyncio.gather(schedule(), *(work(c) for c in pool))
    for connection in pool:
        connection.close()
    result.seconds = seconds
    return result


def server_cpu_seconds(pid: int) -> float | None:
    """User and system CPU of the server and its worker processes (None without psutil)."""
    try:
        import psutil
    except ImportError:
        return None
    try:
        process = psutil.Process(pid)
        processes = [process, *process.children(recursive=True)]
        return sum(sum(p.cpu_times()[:2]) for p in processes)
    except psutil.Error:
        return None


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile of `values` (milliseconds in, milliseconds out)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def summarise(result: LoadResult, rate: float) -> dict[str, Any]:
    """Rates and latency percentiles of the measured window."""
    samples = result.samples
    ok = [s for s in samples if s.status == 200]
    waited = [(s.done - s.due) * 1000 for s in ok]
    service = [(s.done - s.sent) * 1000 for s in ok]
    last = max((s.done for s in samples), default=0.0)
    first = min((s.due for s in samples), default=0.0)
    span = max(last - first, result.seconds)
    return {
        "target_rate": rate,
        "requests": len(samples),
        "ok": len(ok),
        "failed": len(samples) - len(ok) + result.errors,
        "achieved_rate": round(len(ok) / span, 1) if span else 0.0,
        "p50_ms": round(percentile(waited, 0.50), 2),
        "p90_ms": round(percentile(waited, 0.90), 2),
        "p99_ms": round(percentile(waited, 0.99), 2),
        "max_ms": round(max(waited, default=float("nan")), 2),
        "service_p50_ms": round(percentile(service, 0.50), 2),
        "service_p99_ms": round(percentile(service, 0.99), 2),
        "mean_ms": round(statistics.fmean(waited), 2) if waited else None,
    }


# --- one backend, and the whole run ----------------------------------------------------------


def run_backend(backend: str, args: argparse.Namespace, export: Path) -> dict[str, Any]:
    """Fill a fresh store of `backend`, serve it, put the load on, sum up."""
    work = args.work / backend
    work.mkdir(parents=True, exist_ok=True)
    root = write_project(work / "project", export)
    key = secrets.token_urlsafe(32)
    with store_url(backend, work) as url:
        ids, sync_seconds = fill(root, url)
        with api_server(root, url, key, args.workers) as (port, pid):
            load_before, cpu_before = os.getloadavg(), server_cpu_seconds(pid)
            result = asyncio.run(
                generate(port, key, ids, args.rate, args.seconds, args.connections)
            )
            load_after, cpu_after = os.getloadavg(), server_cpu_seconds(pid)
        if backend == "sqlite":
            for stale in work.glob("api_load_*.db*"):
                stale.unlink()
    figures = summarise(result, args.rate)
    total = result.requests_sent
    if cpu_before is not None and cpu_after is not None and total:
        # CPU time is what the load on a shared machine does not change much: the server's
        # own cost of a read, warm-up included.
        figures["server_cpu_ms_per_request"] = round((cpu_after - cpu_before) * 1000 / total, 2)
    figures.update(
        backend=backend,
        residents=args.residents,
        sync_seconds=round(sync_seconds, 1),
        load_average=[round(load_before[0], 2), round(load_after[0], 2)],
    )
    return figures


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """p99 <= 50 ms at (at least 98 % of) the target rate, per backend."""
    found = []
    for row in rows:
        if "error" in row:
            continue
        full_rate = row["achieved_rate"] >= TARGET_RATE_SHARE * row["target_rate"]
        fast = row["p99_ms"] <= TARGET_P99_MS
        found.append(
            {
                "target": f"{row['backend']}: p99 <= {TARGET_P99_MS:g} ms at "
                f"{row['target_rate']:g}/s",
                "value": f"p99 {row['p99_ms']} ms at {row['achieved_rate']}/s",
                "ok": full_rate and fast and row["failed"] == 0,
            }
        )
    return found


def print_report(rows: list[dict[str, Any]], found: list[dict[str, Any]]) -> None:
    headers = ("backend", "target/s", "achieved/s", "requests", "failed", "p50 ms", "p90 ms")
    headers += ("p99 ms", "max ms", "send->done p99", "server CPU/req", "load avg")
    lines = []
    for row in rows:
        if "error" in row:
            print(f"{row['backend']}: {row['error']}")
            continue
        lines.append(
            (
                row["backend"],
                f"{row['target_rate']:g}",
                f"{row['achieved_rate']:,}",
                f"{row['requests']:,}",
                str(row["failed"]),
                f"{row['p50_ms']:.1f}",
                f"{row['p90_ms']:.1f}",
                f"{row['p99_ms']:.1f}",
                f"{row['max_ms']:.1f}",
                f"{row['service_p99_ms']:.1f}",
                f"{row.get('server_cpu_ms_per_request', float('nan')):.2f} ms",
                "{:.1f} -> {:.1f}".format(*row["load_average"]),
            )
        )
    if lines:
        print(table(headers, lines))
    print()
    for t in found:
        print(f"{'PASS' if t['ok'] else 'MISS'}  {t['target']}: {t['value']}")
    print(
        f"\n{os.cpu_count()} CPUs shared with whatever else runs (load average shown); latency "
        "from the moment each request was due, the generator's own queueing included."
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--residents", type=int, default=20_000, help="people in the store")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument(
        "--connections", type=int, default=32, help="keep-alive connections (the bound)"
    )
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.seconds <= 0 or args.residents < 1 or args.connections < 1:
        parser.error("--rate, --seconds, --residents and --connections must be positive")
    return args


def ensure_export(work: Path, residents: int) -> Path:
    """The seeded export of `residents` people (written once, reused while the size holds)."""
    export = work / "data" / "residents.csv"
    stamp = export.with_suffix(".rows")
    if not (export.is_file() and stamp.is_file() and stamp.read_text() == str(residents)):
        shutil.rmtree(export.parent, ignore_errors=True)
        write_export(export, residents, SEED, "utf-8")
        stamp.write_text(str(residents))
    return export


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.work = args.work.resolve()
    export = ensure_export(args.work, args.residents)
    rows: list[dict[str, Any]] = []
    crashed = False
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        print(
            f"{backend}: syncing {args.residents:,} residents, then {args.rate:g} reads/s "
            f"for {args.seconds:g} s ...",
            flush=True,
        )
        try:
            rows.append(run_backend(backend, args, export))
        except Exception as exc:  # noqa: BLE001 - a benchmark reports a crashed run and goes on
            unreachable = backend == "postgresql" and "connect" in str(exc).lower()
            crashed = crashed or not unreachable
            reason = "skipped: PostgreSQL not reachable" if unreachable else f"crashed: {exc}"
            rows.append({"backend": backend, "error": reason})
    found = targets(rows)
    print()
    print_report(rows, found)
    out = HERE / "out" / "api_load.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "results": rows,
                "targets": found,
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            },
            indent=2,
        )
    )
    return 1 if crashed else 0


if __name__ == "__main__":
    raise SystemExit(main())
