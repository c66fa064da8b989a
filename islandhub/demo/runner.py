"""`islandhub demo`: generate the municipality, start its islands, sync them all, and sum up.

The islands are real servers on 127.0.0.1, real files and a real database; every sync goes
through the same pipeline the CLI and the Airflow tasks run. The summary counts what was
pulled, the residents that came out, what sits in quarantine, and the accuracy of
identity resolution against the ground truth the islands wrote.
"""

from __future__ import annotations

import csv
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from islandhub.config import Project, load_project
from islandhub.demo.examples import examples
from islandhub.demo.islands import all_islands
from islandhub.demo.islands.base import DemoIsland
from islandhub.demo.model import Population, TruthRow
from islandhub.demo.population import generate
from islandhub.demo.sync import sync_island
from islandhub.errors import RunFailed
from islandhub.quality.report import review_and_report
from islandhub.resolve.evaluate import evaluate
from islandhub.resolve.reconcile import resolve
from islandhub.store import Store, open_store
from islandhub.store.tables import is_current, quarantine
from islandhub.store.tables import residents as resident_table

Say = Callable[[str], None]


def _silent(_text: str) -> None:
    return None


@contextmanager
def running_islands(
    population: Population,
    workdir: Path,
    seed: int,
    *,
    fixed_ports: bool = False,
    say: Say = _silent,
) -> Iterator[list[DemoIsland]]:
    """Prepare and start every island; stop them all afterwards, whatever happens."""
    islands = [cls(population, workdir / cls.system, seed) for cls in all_islands()]
    started: list[DemoIsland] = []
    try:
        for island in islands:
            island.workdir.mkdir(parents=True, exist_ok=True)
            island.prepare()
            island.start(island.default_port if fixed_ports else None)
            started.append(island)
            say(f"  {island.system:<12} {island.title}")
        yield islands
    finally:
        for island in started:
            island.stop()


def run_demo(
    root: Path,
    *,
    residents: int = 22_600,
    seed: int = 753,
    workdir: Path | None = None,
    store_url: str | None = None,
    say: Say = _silent,
) -> dict[str, Any]:
    """Run the whole demo; returns the summary (`islandhub demo --json` prints it)."""
    started = time.monotonic()
    workdir = (workdir or root / "var" / "demo").resolve()
    if workdir.exists():
        shutil.rmtree(workdir)  # a demo run starts from nothing, so its figures repeat
    workdir.mkdir(parents=True)
    project = load_project(root)
    hub = project.hub
    store = open_store(store_url or f"sqlite:///{workdir / 'islandhub.db'}")
    say(f"generating {residents:,} residents (seed {seed}) ...")
    population = generate(residents, seed)
    say(f"starting {len(all_islands())} islands in {workdir} ...")
    islands_summary: list[dict[str, Any]] = []
    truth: list[TruthRow] = []
    with running_islands(population, workdir, seed, say=say) as islands:
        for island in islands:
            islands_summary.append(_sync_one(root, hub, store, island, say))
            truth.extend(island.truth)
    say("resolving: probabilistic matching over every island's records ...")
    resolved = resolve(root, store, hub.priority)
    say(f"  {resolved.clusters:,} clusters; {resolved.merged:,} residents merged")
    truth_path = workdir / "truth.csv"
    write_truth(truth, truth_path)
    accuracy = _accuracy(store, truth_path)
    report = _report(project, store, workdir / "report", say)
    summary = {
        "islands": islands_summary,
        "records_pulled": sum(i["pulled"] for i in islands_summary),
        "residents": _active_residents(store),
        "quarantined": _count_rows(store, quarantine),
        "precision": accuracy.get("precision"),
        "recall": accuracy.get("recall"),
        "f1": accuracy.get("f1"),
        "clusters": accuracy.get("clusters"),
        "true_clusters": accuracy.get("true_clusters"),
        "report": report,
        # Golden records of residents that several islands describe, a file island among them.
        "examples": examples(store, project),
        "truth": str(truth_path),
        "store": store.engine.url.render_as_string(hide_password=True),
        "seconds": round(time.monotonic() - started, 1),
    }
    store.dispose()
    return summary


def _report(project: Project, store: Store, folder: Path, say: Say) -> dict[str, Any]:
    """Review every island and write the data-quality report (docs/quality.md)."""
    say("reviewing data quality and writing the report ...")
    written = review_and_report(project, store, folder)
    say(f"  report: {written.html['en']} (and .sv.html, .fi.html)")
    say(f"  figures: {written.json}; Great Expectations Data Docs: {written.docs}")
    return {
        "html": {lang: str(path) for lang, path in written.html.items()},
        "json": str(written.json),
        "data_docs": str(written.docs) if written.docs else None,
        "seconds": round(written.review_seconds + written.seconds, 1),
    }


def _sync_one(root: Path, hub: Any, store: Store, island: DemoIsland, say: Say) -> dict[str, Any]:
    begun = time.monotonic()
    try:
        results = sync_island(root, hub, store, island)
    except RunFailed as exc:
        say(f"  {island.system:<12} FAILED: {exc}")
        return {
            "system": island.system,
            "title": island.title,
            "status": "failed",
            "error": str(exc),
            "pulled": 0,
            "mapped": 0,
            "quarantined": 0,
            "streams": [],
        }
    status = "succeeded" if all(r.status == "succeeded" for r in results) else "failed"
    entry = {
        "system": island.system,
        "title": island.title,
        "status": status,
        "pulled": sum(r.pulled for r in results),
        "mapped": sum(r.mapped for r in results),
        "quarantined": sum(r.quarantined for r in results),
        "streams": [asdict(r) for r in results],
        "seconds": round(time.monotonic() - begun, 1),
    }
    say(
        f"  {island.system:<12} {status}: pulled {entry['pulled']:,}, mapped {entry['mapped']:,}, "
        f"quarantined {entry['quarantined']:,} ({entry['seconds']} s)"
    )
    return entry


def write_truth(rows: list[TruthRow], path: Path) -> None:
    """The ground truth as `islandhub evaluate --truth` reads it."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["system", "stream", "source_id", "entity_id"])
        writer.writerows((r.system, r.stream, r.source_id, r.entity_id) for r in rows)


def _accuracy(store: Store, truth_path: Path) -> dict[str, Any]:
    return evaluate(store, truth_path)


def _active_residents(store: Store) -> int:
    with store.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).select_from(resident_table).where(is_current())
            ).scalar_one()
        )


def _count_rows(store: Store, table: sa.Table) -> int:
    with store.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def serve(root: Path, *, residents: int, seed: int, workdir: Path | None, say: Say) -> None:
    """Start the islands on their fixed demo ports and keep them up until interrupted."""
    workdir = (workdir or root / "var" / "demo").resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    population = generate(residents, seed)
    with running_islands(population, workdir, seed, fixed_ports=True) as islands:
        say("the demo islands (their config/systems files point here):")
        for island in islands:
            say(f"  {island.system:<12} {island.connection()}")
            for name, value in island.secrets().items():
                # Credentials of simulated islands, made up for the demo: safe to show.
                say(f"  {'':<12} export {name}={value}")
        say("Ctrl-C stops them.")
        stop = threading.Event()
        try:
            stop.wait()
        except KeyboardInterrupt:
            say("stopping")
