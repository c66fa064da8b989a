"""A small demo end to end: every island synced by the real pipeline; the summary adds up."""

from __future__ import annotations

import csv
import json
import re
import sqlite3
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
    "examples",
}


@pytest.mark.slow
def test_a_small_demo_syncs_every_island(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ISLANDHUB_STORE_URL", raising=False)
    args = ["--project", str(REPO), "demo", "--residents", "500", "--seed", "11"]
    code = main([*args, "--workdir", str(tmp_path / "demo"), "--json"])
    out = capsys.readouterr().out
    summary = json.loads(out)
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
    # It ends with golden records that several islands built, file islands among them.
    files = {"billing", "daycare", "school"}
    assert len(summary["examples"]) == 3
    for example in summary["examples"]:
        systems = {i["system"] for i in example["record"]["identifiers"]}
        assert len(systems) >= 2 and systems & files, systems
        assert example["lineage"]
    assert "nid1:" not in out and not FULL_HETU.search(out)  # national ids opened, then masked


FULL_HETU = re.compile(r"\b\d{6}[-+A-FU-Y]\d{3}[0-9A-Y]\b")


@pytest.mark.slow
def test_the_demo_prints_golden_records_masked_and_audited(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ISLANDHUB_STORE_URL", raising=False)
    workdir = tmp_path / "demo"
    args = ["--project", str(REPO), "demo", "--residents", "300", "--seed", "5"]
    code = main([*args, "--workdir", str(workdir)])
    out = capsys.readouterr().out
    assert code == 0, out
    heading = "golden records as `islandhub resident show` prints them):"
    assert heading in out
    blocks = out.split(heading, 1)[1].split("\nresident ")[1:]
    assert len(blocks) == 3
    for block in blocks:
        sources = re.search(r"source records: (.+)", block)
        assert sources is not None
        systems = {ref.split(".", 1)[0] for ref in sources.group(1).split(", ")}
        assert len(systems) >= 2 and systems & {"billing", "daycare", "school"}, systems
        assert "primary_by_priority" in block or "system_priority" in block  # lineage rules
        assert "nid1:" not in block and not FULL_HETU.search(block)  # opened, then masked
        assert re.search(r"\d{6}[-+A-FU-Y]\*\*\*[0-9A-Y]", block)
        # The lineage column is as wide as what it shows, not as the sealed ids it held.
        origins = [line.split("│")[3] for line in block.splitlines() if line.count("│") == 5]
        assert max(len(cell.strip()) for cell in origins) + 2 == len(origins[0])
    with sqlite3.connect(workdir / "islandhub.db") as conn:
        reads = conn.execute(
            "SELECT count(DISTINCT resident_id) FROM audit_log "
            "WHERE action = 'read' AND purpose LIKE 'demo: example golden records%'"
        ).fetchone()[0]
    assert reads == 3
