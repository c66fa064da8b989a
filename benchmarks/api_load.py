"""API load benchmark: resident reads over loopback at a fixed arrival rate, SQLite and PostgreSQL.

For each backend: a synthetic export of --residents people (the ingest benchmark's generator
and mapping) is synced into a fresh store; `islandhub api serve` then runs as a child process
on a free loopback port (all its workers up before the load starts), and a bounded open-loop
load generator (an asyncio Protocol on uvloop when installed, raw HTTP/1.1 on keep-alive
connections, no third-party client in the measured path) sends `GET /residents/{id}` with an
API key at --rate requests/s for --seconds, after a short warm-up, --runs times. Requests are
due at fixed intervals whether or not earlier ones have answered, so a slow server shows as
latency, not as a politely lower rate: each latency is measured from the moment the request
was due (queueing in the generator included), and the time from sending to the last byte is
reported beside it.

So that a reader can tell whose fault a slow run was, each run also reports the server's CPU
per request (all its processes), the generator's own CPU (share of one core, and per request)
and the generator's timer lag (how late it handed requests out: a stall of the client, not of
the server), with the machine's load average before and after. --background-load N runs N
busy loops beside the server: the shared machine, made repeatable.

Every read is a real one: authorised, audited (an audit_log row per request, committed before
the response is sent), masked and turvakielto-filtered, as a client of the API would get it.

    python benchmarks/api_load.py [--rate 500] [--seconds 10] [--residents 20000]
        [--backends sqlite,postgresql] [--workers auto] [--connections 32] [--runs 3]
        [--background-load 0]

PostgreSQL: ISLANDHUB_BENCH_PG_URL, else postgresql+psycopg://postgres@127.0.0.1:5432/
islandhub_bench (created when missing); the benchmark works in a schema of its own and drops
it. Prints the figures and the targets (p99 <= 50 ms at the full rate, in most runs), writes
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
        _wait_started(project_root / "api.log", workers, server)
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


def _wait_started(log: Path, workers: int, server: subprocess.Popen[bytes]) -> None:
    """Every worker serving: /health answers as soon as the first one does."""
    deadline = time.monotonic() + 120
    while log.read_text().count("Application startup complete.") < workers:
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"not all {workers} workers started; see the API's api.log")
        time.sleep(0.3)


async def _one_get(port: int, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    connection = await Connection.open(port, headers)
    try:
        return await connection.get(path)
    finally:
        connection.close()


# --- the load generator ----------------------------------------------------------------------


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: a prepared request head, a minimal response parser.

    An asyncio Protocol rather than streams: the bytes are parsed where they arrive, with no
    reader task or buffer copies in between, so the generator stays cheap next to the server
    it measures (its CPU is reported beside the figures).
    """

    def __init__(self, head: bytes) -> None:
        self.head = head
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.lost: Exception | None = None

    @classmethod
    async def open(cls, port: int, headers: dict[str, str]) -> Connection:
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        head = f"Host: 127.0.0.1:{port}\r\n{lines}\r\n".encode()
        loop = asyncio.get_running_loop()
        _transport, connection = await loop.create_connection(lambda: cls(head), "127.0.0.1", port)
        return connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses; they behave as one.
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ConnectionResetError("the server closed the connection")
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(self.lost)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None or self.waiter.done():
            return
        head = bytes(self.buffer[:end])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(self.buffer) < end + 4 + length:
            return
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        self.waiter.set_result((int(head[9:12]), body))

    async def get(self, path: str) -> tuple[int, bytes]:
        if self.lost is not None or self.transport is None:
            raise ConnectionResetError("the connection is closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(b"GET " + path.encode() + b" HTTP/1.1\r\n" + self.head)
        return await self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@dataclass
class Sample:
    """One request: when it was due, handed out by the generator's timer, sent and answered
    (perf_counter seconds)."""

    due: float
    released: float
    sent: float
    done: float
    status: int


@dataclass
class LoadResult:
    """What the generator saw in the measured window, and what it cost itself."""

    samples: list[Sample] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    requests_sent: int = 0  # warm-up included
    client_cpu_seconds: float = 0.0  # the generator's own CPU (user + system), warm-up included
    client_wall_seconds: float = 0.0


async def generate(
    port: int, key: str, ids: list[str], rate: float, seconds: float, connections: int
) -> LoadResult:
    """Send requests due every 1/rate s over `connections` connections; measure after warm-up."""
    headers = {"X-API-Key": key, "X-Purpose": "load benchmark"}
    pool = [await Connection.open(port, headers) for _ in range(connections)]
    due_queue: asyncio.Queue[tuple[float, float] | None] = asyncio.Queue()
    result = LoadResult()
    cpu_started, wall_started = time.process_time(), time.perf_counter()
    start = time.perf_counter() + 0.1
    measured_from = start + WARM_UP_SECONDS
    end = measured_from + seconds
    picks = random.Random(SEED)
    paths = [f"/residents/{rid}" for rid in ids]

    async def schedule() -> None:
        total = int((end - start) * rate)
        for n in range(total):
            due = start + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            due_queue.put_nowait((due, time.perf_counter()))
        for _ in pool:
            due_queue.put_nowait(None)

    async def work(connection: Connection) -> None:
        while (item := await due_queue.get()) is not None:
            due, released = item
            path = picks.choice(paths)
            sent = time.perf_counter()
            result.requests_sent += 1
            try:
                status, _body = await connection.get(path)
            except (OSError, ValueError):
                result.errors += 1
                return
            done = time.perf_counter()
            if due >= measured_from:
                result.samples.append(Sample(due, released, sent, done, status))

    await asyncio.gather(schedule(), *(work(c) for c in pool))
    result.client_cpu_seconds = time.process_time() - cpu_started
    result.client_wall_seconds = time.perf_counter() - wall_started
    for connection in pool:
        connection.close()
    result.seconds = seconds
    return result


def run_load(*args: Any) -> LoadResult:
    """`generate` on uvloop when it is installed (uvicorn's own loop), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(generate(*args))
    return uvloop.run(generate(*args))


@contextmanager
def busy(processes: int) -> Iterator[None]:
    """`processes` busy loops (at normal priority) for as long as the block runs."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


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
    """Rates and latency percentiles of the measured window, and the generator's own CPU."""
    samples = result.samples
    ok = [s for s in samples if s.status == 200]
    waited = [(s.done - s.due) * 1000 for s in ok]
    service = [(s.done - s.sent) * 1000 for s in ok]
    # The generator's own lateness: how long after its due time the timer handed a request
    # out. Large only when the generator itself was not scheduled: the client's share.
    timer_lag = [(s.released - s.due) * 1000 for s in samples]
    last = max((s.done for s in samples), default=0.0)
    first = min((s.due for s in samples), default=0.0)
    span = max(last - first, result.seconds)
    sent = max(result.requests_sent, 1)
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
        "client_lag_p99_ms": round(percentile(timer_lag, 0.99), 2),
        "client_lag_max_ms": round(max(timer_lag, default=float("nan")), 2),
        "mean_ms": round(statistics.fmean(waited), 2) if waited else None,
        # The generator's CPU: near a whole core (100 %) would make it the bottleneck.
        "client_cpu_percent": round(
            100 * result.client_cpu_seconds / max(result.client_wall_seconds, 1e-9), 1
        ),
        "client_cpu_ms_per_request": round(result.client_cpu_seconds * 1000 / sent, 3),
    }


# --- one backend, and the whole run ----------------------------------------------------------


def run_backend(backend: str, args: argparse.Namespace, export: Path) -> list[dict[str, Any]]:
    """Fill a fresh store of `backend`, serve it, put the load on --runs times, sum up each."""
    work = args.work / backend
    work.mkdir(parents=True, exist_ok=True)
    root = write_project(work / "project", export)
    key = secrets.token_urlsafe(32)
    rows = []
    with store_url(backend, work) as url:
        ids, sync_seconds = fill(root, url)
        workers = workers_for(backend, args.workers)
        with api_server(root, url, key, workers) as (port, pid), busy(args.background_load):
            for run in range(1, args.runs + 1):
                load_before, cpu_before = os.getloadavg(), server_cpu_seconds(pid)
                result = run_load(port, key, ids, args.rate, args.seconds, args.connections)
                load_after, cpu_after = os.getloadavg(), server_cpu_seconds(pid)
                figures = summarise(result, args.rate)
                total = result.requests_sent
                if cpu_before is not None and cpu_after is not None and total:
                    # CPU time is what the load on a shared machine does not change much:
                    # the server's own cost of a read, warm-up included.
                    figures["server_cpu_ms_per_request"] = round(
                        (cpu_after - cpu_before) * 1000 / total, 2
                    )
                figures.update(
                    backend=backend,
                    run=run,
                    workers=workers,
                    background_load=args.background_load,
                    connections=args.connections,
                    residents=args.residents,
                    sync_seconds=round(sync_seconds, 1),
                    load_average=[round(load_before[0], 2), round(load_after[0], 2)],
                )
                rows.append(figures)
                print(f"  run {run}: {_one_line(figures)}", flush=True)
        if backend == "sqlite":
            for stale in work.glob("api_load_*.db*"):
                stale.unlink()
    return rows


def _one_line(row: dict[str, Any]) -> str:
    return (
        f"{row['achieved_rate']}/s, p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms, "
        f"failed {row['failed']}, client CPU {row['client_cpu_percent']:.0f} %"
    )


def _meets(row: dict[str, Any]) -> bool:
    full_rate = row["achieved_rate"] >= TARGET_RATE_SHARE * row["target_rate"]
    return bool(full_rate and row["p99_ms"] <= TARGET_P99_MS and row["failed"] == 0)


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """p99 <= 50 ms at (at least 98 % of) the target rate, per backend, in most of its runs."""
    found = []
    backends = list(dict.fromkeys(row["backend"] for row in rows if "error" not in row))
    for backend in backends:
        runs = [row for row in rows if row["backend"] == backend and "error" not in row]
        met = sum(_meets(row) for row in runs)
        p99 = sorted(row["p99_ms"] for row in runs)
        rates = sorted(row["achieved_rate"] for row in runs)
        found.append(
            {
                "target": f"{backend}: p99 <= {TARGET_P99_MS:g} ms at {runs[0]['target_rate']:g}/s",
                "value": f"met in {met} of {len(runs)} runs; p99 median "
                f"{statistics.median(p99):.1f} ms (range {p99[0]:.1f}-{p99[-1]:.1f}), "
                f"achieved {rates[0]:g}-{rates[-1]:g}/s",
                "runs": len(runs),
                "met": met,
                "ok": met * 2 > len(runs),
            }
        )
    return found


def print_report(rows: list[dict[str, Any]], found: list[dict[str, Any]]) -> None:
    headers = ("backend", "run", "target/s", "achieved/s", "failed", "p50 ms", "p90 ms")
    headers += ("p99 ms", "max ms", "send->done p99", "server CPU/req", "client CPU")
    headers += ("client lag p99/max", "load avg")
    lines = []
    for row in rows:
        if "error" in row:
            print(f"{row['backend']}: {row['error']}")
            continue
        lines.append(
            (
                row["backend"],
                str(row["run"]),
                f"{row['target_rate']:g}",
                f"{row['achieved_rate']:,}",
                str(row["failed"]),
                f"{row['p50_ms']:.1f}",
                f"{row['p90_ms']:.1f}",
                f"{row['p99_ms']:.1f}",
                f"{row['max_ms']:.1f}",
                f"{row['service_p99_ms']:.1f}",
                f"{row.get('server_cpu_ms_per_request', float('nan')):.2f} ms",
                f"{row['client_cpu_percent']:.0f} % ({row['client_cpu_ms_per_request']:.2f} ms)",
                f"{row['client_lag_p99_ms']:.1f} / {row['client_lag_max_ms']:.1f}",
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
        "from the moment each request was due, the generator's own queueing included. Client "
        "CPU: the load generator's own use of one core (per request in brackets); near 100 % "
        "it, not the server, would be the limit. Client lag: how late the generator's own "
        "timer handed requests out (ms): large when the generator was not scheduled, a stall "
        "of the client, not of the server. A target is met when most runs meet it."
    )


def workers_for(backend: str, workers: str) -> int:
    """The worker processes of a backend; `auto` is what docs/api.md advises.

    SQLite has one writer at a time, so a second process only adds lock waits between two
    audit writers; PostgreSQL takes one process per core.
    """
    if workers != "auto":
        return int(workers)
    return 1 if backend == "sqlite" else max(1, min(2, os.cpu_count() or 1))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per backend")
    parser.add_argument("--residents", type=int, default=20_000, help="people in the store")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--workers",
        default="auto",
        help="uvicorn worker processes (auto: 1 on SQLite, one per core on PostgreSQL)",
    )
    parser.add_argument(
        "--connections", type=int, default=32, help="keep-alive connections (the bound)"
    )
    parser.add_argument(
        "--background-load",
        type=int,
        default=0,
        help="CPU-bound processes to run beside the server, a shared machine made repeatable",
    )
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    args = parser.parse_args(argv)
    if args.workers != "auto" and not (args.workers.isdigit() and int(args.workers) > 0):
        parser.error("--workers is auto or a positive number")
    if min(args.rate, args.seconds, args.residents, args.connections, args.runs) <= 0:
        parser.error("--rate, --seconds, --runs, --residents and --connections must be positive")
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
            f"for {args.seconds:g} s, {args.runs} runs, "
            f"{workers_for(backend, args.workers)} worker(s), "
            f"{args.background_load} busy process(es) beside ...",
            flush=True,
        )
        try:
            rows.extend(run_backend(backend, args, export))
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
