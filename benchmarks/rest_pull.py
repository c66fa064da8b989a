"""REST pull benchmark: islandhub's RestConnector against dlt's rest_api source, same server.

A Respa-shaped fake island (12 fields a reservation, DRF pages `{count, next, previous,
results}`, bearer token, no faults) serves --records reservations from its own process, so
the server never competes with the client for the GIL. Both clients then read every page
by following `next`, and only count records (pure extraction, nothing is loaded):

    islandhub              RestConnector.pull, batches iterated, records counted
    islandhub_incremental  the same with an incremental cursor (fingerprints, watermark)
    dlt                    rest_api_source(...).resources["reservations"] iterated

Each client first pulls an empty listing (dlt spends about 4 s on its first source), then
the best of --repeat runs counts. Prints records/s for each and the ratio, writes
benchmarks/out/rest_pull.json.

    python benchmarks/rest_pull.py [--records 200000] [--page-size 500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from connectors.base import StreamSpec  # noqa: E402
from connectors.rest import RestConnector  # noqa: E402
from tests.fakes.http_island import TOKEN, RespaIsland  # noqa: E402

OUT = HERE / "out" / "rest_pull.json"


def serve(records: int, ready: Any, stop: Any) -> None:
    """Child process: build the island, say where it listens, serve until told to stop."""
    with RespaIsland(records=records, per_tick=5) as island:
        island.reservations.select(None)  # warm the island's own listing cache
        ready.put(island.url)
        stop.wait()


# An empty listing (nothing changed after this): warms each client up without reading data.
WARM_UP = {"modified_after": "2100-01-01T00:00:00Z"}


def islandhub_pull(url: str, page_size: int, incremental: bool, warm_up: bool = False) -> int:
    stream: dict[str, Any] = {
        "path": "/reservation/",
        "params": {"page_size": page_size, **(WARM_UP if warm_up else {})},
        "records": "results",
        "paginator": {"type": "next_url", "path": "next"},
        "batch_size": 5000,
    }
    if incremental:
        stream["incremental"] = {"cursor_field": "modified", "param": "modified_after"}
    connection = {"base_url": f"{url}/v1", "auth": {"type": "bearer", "token": TOKEN}}
    connector = RestConnector("bench", connection, {"r": StreamSpec("r", stream)})
    return sum(len(batch.records) for batch in connector.pull("r", None))


def dlt_pull(url: str, page_size: int, warm_up: bool = False) -> int:
    from dlt.sources.rest_api import rest_api_source

    source = rest_api_source({
        "client": {
            "base_url": f"{url}/v1/",
            "auth": {"type": "bearer", "token": TOKEN},
            "paginator": {"type": "json_link", "next_url_path": "next"},
        },
        "resources": [{
            "name": "reservations",
            "endpoint": {"path": "reservation/", "data_selector": "results",
                         "params": {"page_size": page_size, **(WARM_UP if warm_up else {})}},
        }],
    })
    count = 0
    for item in source.resources["reservations"]:
        count += len(item) if isinstance(item, list) else 1
    return count


def timed(func: Callable[[], int], repeat: int) -> dict[str, Any]:
    """The best of `repeat` runs (the machine's noise only ever adds time)."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        count = func()
        runs.append(time.perf_counter() - started)
    seconds = min(runs)
    return {"records": count, "seconds": round(seconds, 3), "runs": [round(t, 3) for t in runs],
            "records_per_s": round(count / seconds) if seconds else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3, help="runs per client; best counts")
    parser.add_argument("--skip-dlt", action="store_true", help="leave dlt out")
    args = parser.parse_args()
    os.environ.update(RUNTIME__DLTHUB_TELEMETRY="false", RUNTIME__LOG_LEVEL="WARNING",
                      DLT_DATA_DIR=str(HERE / "out" / "dlt_home"))
    if not args.skip_dlt:
        import dlt.sources.rest_api  # noqa: F401  (imported before the clock starts)

    context = mp.get_context("spawn")
    ready, stop = context.Queue(), context.Event()
    server = context.Process(target=serve, args=(args.records, ready, stop), daemon=True)
    server.start()
    try:
        url = ready.get(timeout=300)
        results = run_all(url, args)
    finally:
        stop.set()
        server.join(timeout=10)
    report(results, args)
    return 0 if all(r["records"] == args.records for r in results.values()) else 1


def run_all(url: str, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    # dlt spends about 4 s on its first source (config resolution); neither side is
    # charged for one-time set-up: each pulls an empty listing first.
    islandhub_pull(url, args.page_size, False, warm_up=True)
    results = {
        "islandhub": timed(lambda: islandhub_pull(url, args.page_size, False), args.repeat),
        "islandhub_incremental": timed(
            lambda: islandhub_pull(url, args.page_size, True), args.repeat
        ),
    }
    if not args.skip_dlt:
        dlt_pull(url, args.page_size, warm_up=True)
        results["dlt"] = timed(lambda: dlt_pull(url, args.page_size), args.repeat)
    return results


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"{'method':<24}{'records':>10}{'seconds':>10}{'records/s':>12}")
    for name, r in results.items():
        print(f"{name:<24}{r['records']:>10,}{r['seconds']:>10.2f}{r['records_per_s']:>12,}")
    ratio = None
    if "dlt" in results:
        ratio = round(results["islandhub"]["records_per_s"] / results["dlt"]["records_per_s"], 2)
        verdict = "PASS" if ratio >= 1 else "MISS"
        print(f"islandhub / dlt: {ratio}x  (target >= 1x: {verdict})")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    # The target as data too, for benchmarks/summary.py (the line printed above says the same).
    targets = [] if ratio is None else [
        {"target": "islandhub >= 1x dlt", "pass": ratio >= 1, "detail": f"{ratio}x"}
    ]
    OUT.write_text(json.dumps({
        "records": args.records, "page_size": args.page_size, "results": results,
        "islandhub_vs_dlt": ratio, "targets": targets,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform()},
    }, indent=2) + "\n")
    print(f"written to {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    sys.exit(main())
