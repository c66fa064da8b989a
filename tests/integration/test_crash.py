"""A sync killed with SIGKILL part way, then re-run, leaves the store as an uninterrupted run.

The kill points are chosen by watching the store: after some batches landed, or after some
records were published, so both the land and the publish steps are cut. On both backends.
"""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import sqlalchemy as sa

from islandhub.store import open_store
from islandhub.store.tables import landing
from tests.helpers import assert_counts_add_up, hetu, snapshot

ROWS = 4000
KILLS = 3


def _write_project(root: Path) -> None:
    (root / "config" / "systems").mkdir(parents=True)
    (root / "mappings" / "register").mkdir(parents=True)
    (root / "mappings" / "school").mkdir(parents=True)
    (root / "drop" / "register").mkdir(parents=True)
    (root / "drop" / "school").mkdir(parents=True)
    (root / "config" / "hub.yaml").write_text("survivorship: {priority: [register, school]}\n")
    for system, stream, glob in (
        ("register", "persons", "persons_*.csv"),
        ("school", "pupils", "pupils_*.csv"),
    ):
        (root / "config" / "systems" / f"{system}.yaml").write_text(
            f"system: {system}\nconnector: files\nconnection: {{path: drop/{system}}}\n"
            f"streams:\n  {stream}:\n    files: '{glob}'\n    format: csv\n    delimiter: ';'\n"
            f"    batch_size: 200\n    mapping: mappings/{system}/{stream}.yaml\n"
        )
        (root / "mappings" / system / f"{stream}.yaml").write_text(
            f"source: {system}.{stream}\nentity: resident\nid: id\nfields:\n"
            "  national_id: {from: hetu, use: [strip, hetu], required: true}\n"
            "  given_name: {from: etunimi}\n  family_name: {from: sukunimi}\n"
            "  email: {from: email, use: [email]}\n"
        )
    rng = random.Random(753)
    people = [
        (hetu(1 + i % 28, 1 + i % 12, 1940 + i % 80, 2 + i // 336), f"Etu{i}", f"Suku{i}")
        for i in range(ROWS)
    ]
    with (root / "drop" / "register" / "persons_1.csv").open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(["id", "hetu", "etunimi", "sukunimi", "email"])
        for i, (national_id, given, family) in enumerate(people):
            writer.writerow([f"R{i}", national_id, given, family, ""])
    with (root / "drop" / "school" / "pupils_1.csv").open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(["id", "hetu", "etunimi", "sukunimi", "email"])
        for i in rng.sample(range(ROWS), ROWS // 2):
            national_id, given, family = people[i]
            bad = i % 97 == 0
            writer.writerow(
                [
                    f"S{i}",
                    "x" if bad else national_id,
                    given,
                    family,
                    f" {given}.{family}@Example.fi",
                ]
            )


def _sync(root: Path, store_url: str) -> subprocess.Popen[bytes]:
    # The extract worker on: a killed writer must not leave it behind (checked below).
    env = {
        **os.environ,
        "ISLANDHUB_STORE_URL": store_url,
        "ISLANDHUB_PROJECT": str(root),
        "ISLANDHUB_WORKERS": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "islandhub.cli", "sync", "--all"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _progress(store_url: str) -> tuple[int, int]:
    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as conn:
            landed = conn.execute(sa.select(sa.func.count()).select_from(landing)).scalar_one()
            published = conn.execute(
                sa.select(sa.func.count())
                .select_from(landing)
                .where(landing.c.status == "published")
            ).scalar_one()
        return landed, published
    except sa.exc.SQLAlchemyError:
        return 0, 0  # tables not created yet
    finally:
        engine.dispose()


def _kill_part_way(root: Path, store_url: str, rng: random.Random) -> bool:
    """Start a sync and SIGKILL it once the store shows the chosen progress. True if killed."""
    watch_published = rng.random() < 0.5
    threshold = rng.randint(1, int(ROWS * 1.4))
    process = _sync(root, store_url)
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        landed, published = _progress(store_url)
        if (published if watch_published else landed) >= threshold:
            helpers = psutil.Process(process.pid).children(recursive=True)
            process.send_signal(signal.SIGKILL)
            process.wait()
            # The extract worker notices its writer died and exits; nothing lingers.
            _, alive = psutil.wait_procs(helpers, timeout=10)
            assert alive == [], f"orphaned worker processes: {alive}"
            return True
        time.sleep(0.01)
    process.wait()
    return False


@pytest.mark.slow
def test_sigkill_part_way_then_rerun_equals_an_uninterrupted_run(tmp_path, store_url, monkeypatch):
    root = tmp_path / "crashproject"
    _write_project(root)
    # The reference: the same project, run once without interruption, in its own store.
    reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
    clean = _sync(root, reference_url)
    _, stderr = clean.communicate(timeout=300)
    assert clean.returncode == 0, stderr.decode()
    expected = snapshot(open_store(reference_url))

    rng = random.Random(20261126)
    kills = sum(_kill_part_way(root, store_url, rng) for _ in range(KILLS))
    assert kills >= 1, "no sync was killed part way: the data set is too small for this machine"
    final = _sync(root, store_url)
    _, stderr = final.communicate(timeout=300)
    assert final.returncode == 0, stderr.decode()

    store = open_store(store_url)
    actual = snapshot(store)
    for key in ("landing", "source_records", "quarantine", "sync_state", "clusters", "golden"):
        assert actual[key] == expected[key], key
    # Killed runs may have founded nothing extra: one resident per person, none lost.
    assert actual["residents"] == expected["residents"]
    from islandhub.pipeline import StreamResult
    from islandhub.store.tables import runs

    with store.connect() as conn:
        done = conn.execute(sa.select(runs).where(runs.c.status == "succeeded")).all()
        # Every killed run was found dead by the next one and marked so.
        assert conn.execute(sa.select(runs).where(runs.c.status == "running")).all() == []
    assert_counts_add_up(
        [
            StreamResult(
                r.system,
                r.stream,
                r.run_id,
                r.status,
                r.pulled,
                r.unchanged,
                r.mapped,
                r.quarantined,
                r.published,
            )
            for r in done
        ]
    )
