"""A small demo end to end: every island synced by the real pipeline; the summary adds up."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from islandhub.cli import main
from islandhub.demo.islands import all_islands

REPO = Path(__file__).resolve().parents[2]
SUMMARY_KEYS = {
    "islands",
    "records_pulled",
    "residents",
    "quarantined",
    "precision",
    "recall",
    "report",
}


@pytest.mark.slow
def test_a_small_demo_syncs_every_island(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ISLANDHUB_STORE_URL", raising=False)
    args = ["--project", str(REPO), "demo", "--residents", "500", "--seed", "11"]
    code = main([*args, "--workdir", str(tmp_path / "demo"), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0, summary
    assert set(summary) >= SUMMARY_KEYS
    systems = [island["system"] for island in summary["islands"]]
    assert len(systems) >= 12
    assert systems == [cls.system for cls in all_islands()]
    assert all(island["status"] == "succeeded" for island in summary["islands"])
    assert summary["records_pulled"] == sum(island["pulled"] for island in summary["islands"])
    for island in summary["islands"]:
        for stream in island["streams"]:
            parts = stream["unchanged"] + stream["mapped"] + stream["quarantined"]
            assert stream["pulled"] == parts
    # Every record the islands served has its ground truth.
    with open(summary["truth"], newline="", encoding="utf-8") as handle:
        truth = list(csv.DictReader(handle))
    assert len(truth) >= summary["records_pulled"] - summary["quarantined"]
    assert 0 < summary["residents"] < summary["records_pulled"]
    # The demo ends with the probabilistic pass (islandhub resolve): both sides must be high.
    assert summary["precision"] > 0.95 and summary["recall"] > 0.95
