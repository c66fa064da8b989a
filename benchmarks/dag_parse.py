"""DAG parse benchmark: how long dags/islandhub_dags.py takes to parse with 50 systems configured.

A temporary project gets 50 system files (copies of config/systems/booking.yaml under new
ids). Each measurement runs in a fresh interpreter with its own AIRFLOW_HOME, --repeat times:

    import   exec of the DAG module alone, Airflow already imported (as in the DAG processor)
    dagbag   DagBag(dags/) of real Airflow: the module plus Airflow's own DAG bookkeeping

Airflow's own import (about 3 s on a cold interpreter) is reported beside them but is not
part of the figure: the DAG processor pays it once, not per parse. Prints median and max
against the 1 s target, writes benchmarks/out/dag_parse.json.

    python benchmarks/dag_parse.py [--systems 50] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DAG_FILE = REPO / "dags" / "islandhub_dags.py"
OUT = HERE / "out" / "dag_parse.json"
TARGET_S = 1.0

CHILD = """
import importlib.util, json, sys, time
mode, path = sys.argv[1], sys.argv[2]
started = time.perf_counter()
import airflow.sdk
from airflow.dag_processing.dagbag import DagBag
ready = time.perf_counter()
if mode == "import":
    spec = importlib.util.spec_from_file_location("islandhub_dags_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dags, errors = None, {}
else:
    bag = DagBag(str(__import__("pathlib").Path(path).parent))
    dags, errors = len(bag.dags), bag.import_errors
done = time.perf_counter()
print("RESULT " + json.dumps({"airflow_s": ready - started, "parse_s": done - ready,
                              "dags": dags, "errors": errors}))
"""


def make_project(root: Path, systems: int) -> None:
    """A project folder with `systems` copies of booking.yaml (different ids)."""
    shutil.copytree(REPO / "config", root / "config")
    shutil.copytree(REPO / "mappings", root / "mappings")
    folder = root / "config" / "systems"
    template = (folder / "booking.yaml").read_text(encoding="utf-8")
    for path in folder.glob("*.yaml"):
        path.unlink()
    for n in range(systems):
        text = template.replace("system: booking", f"system: island{n:02d}")
        (folder / f"island{n:02d}.yaml").write_text(text, encoding="utf-8")


def run_child(mode: str, project: Path, home: Path) -> dict[str, Any]:
    """One measurement in a fresh interpreter."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ISLANDHUB_"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(DAG_FILE.parent),
        ISLANDHUB_PROJECT=str(project),
    )
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(DAG_FILE)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and max of the parse times, and the Airflow import beside them."""
    parse = [r["parse_s"] for r in runs]
    return {
        "median_s": round(statistics.median(parse), 4),
        "max_s": round(max(parse), 4),
        "runs_s": [round(x, 4) for x in parse],
        "airflow_import_median_s": round(statistics.median(r["airflow_s"] for r in runs), 3),
        "dags": runs[-1]["dags"],
        "import_errors": runs[-1]["errors"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="islandhub-dag-parse-") as tmp:
        project, home = Path(tmp) / "project", Path(tmp) / "airflow"
        home.mkdir()
        make_project(project, args.systems)
        results = {
            mode: summarise([run_child(mode, project, home) for _ in range(args.repeat)])
            for mode in ("import", "dagbag")
        }
    report = {
        "systems": args.systems,
        "repeat": args.repeat,
        "target_s": TARGET_S,
        "within_target": all(r["max_s"] <= TARGET_S for r in results.values()),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        **results,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for mode, r in results.items():
        verdict = "ok" if r["max_s"] <= TARGET_S else "OVER"
        print(
            f"{mode:<7} {args.systems} systems: median {r['median_s']:.3f} s, "
            f"max {r['max_s']:.3f} s (target {TARGET_S:.0f} s: {verdict}); "
            f"Airflow's own import {r['airflow_import_median_s']:.2f} s, not counted"
        )
    print(f"wrote {OUT.relative_to(REPO)}")
    return 0 if report["within_target"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
