"""The ingest benchmark's CPU accounting (benchmarks/ingest.py `CPU s` and `CPU per row`).

The figures the owner weighs the throughput target by: a helper process's CPU must count
even when it ended on its own and nobody joined it (the quality validator does), and the
ceiling must follow from the CPU per row and the cores.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import sys
import time
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import common
        import ingest

        yield common, ingest
    finally:
        sys.path.remove(str(BENCHMARKS))


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_cpu_of_a_helper_that_ended_unjoined_counts(bench):
    common, _ = bench
    own, helpers = common.cpu_seconds()
    helper = multiprocessing.get_context("fork").Process(target=_spin, args=(0.4,))
    helper.start()
    # Waits for its end without reaping it (is_alive and join would): nobody has, yet.
    multiprocessing.connection.wait([helper.sentinel])
    own_after, helpers_after = common.cpu_seconds()
    assert helpers_after - helpers >= 0.3
    assert own_after - own < 0.3  # the waiting here spun nothing


def test_budget_bounds_rows_per_second_by_cores(bench):
    _, ingest = bench
    hub = {"rows": 500_000, "seconds": 32.0, "cpu_seconds": 57.0, "cpu_helpers_seconds": 31.5}
    hub["cpu_us_per_row"] = 114.0
    budget = ingest.cpu_budget({"islandhub": hub, "dlt": {"cpu_us_per_row": 72.0}}, cores=2)
    assert budget["ceiling_rows_per_s"] == 17_544  # 2 cores x 1e6 / 114 us
    assert budget["target_us_per_row"] == pytest.approx(57.1, abs=0.05)  # 2e6 / 35,000
    assert budget["helpers_us_per_row"] == 63.0
    assert budget["writer_us_per_row"] == 51.0
    assert budget["cores_busy"] == pytest.approx(1.78, abs=0.01)
    assert budget["peers_us_per_row"] == {"dlt": 72.0}


def test_no_budget_without_a_measured_sync(bench):
    _, ingest = bench
    assert ingest.cpu_budget({"islandhub": None}, cores=2) is None
