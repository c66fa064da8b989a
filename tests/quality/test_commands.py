"""`islandhub report` and the islandhub__report task body, on the sample project."""

from __future__ import annotations

import json

import pytest

from islandhub.cli import main
from islandhub.orchestrate import write_status_report
from tests.helpers import load, run_all


@pytest.fixture
def synced(sample_project, tmp_path, monkeypatch):
    store_url = f"sqlite:///{tmp_path / 'hub.db'}"
    project, store = load(sample_project, store_url, monkeypatch)
    run_all(project, store)
    return sample_project


def test_report_command_writes_one_language(synced, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["--project", str(synced), "report", "--out", str(out), "--lang", "fi"])
    printed = capsys.readouterr().out
    assert code == 0
    assert f"report (fi): {out / 'quality-report.fi.html'}" in printed
    assert sorted(p.name for p in out.iterdir()) == [
        "data-docs",
        "quality-report.fi.html",
        "quality-report.json",
    ]
    figures = json.loads((out / "quality-report.json").read_text(encoding="utf-8"))
    islands = {i["system"]: i for i in figures["islands"]}
    assert set(islands) == {"population", "school"}
    assert islands["school"]["quarantined"] == 1
    assert islands["school"]["register"]["family_name"]["compared"] > 0


def test_report_command_refuses_an_unknown_language(synced, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--project", str(synced), "report", "--lang", "de"])
    assert exited.value.code == 2
    assert "invalid choice: 'de'" in capsys.readouterr().err


def test_report_out_that_cannot_be_a_folder_is_bad_input(synced, tmp_path, capsys):
    afile = tmp_path / "a-file"
    afile.write_text("x")
    for out, why in (
        (afile, "is a file; name a folder"),
        (afile / "reports", "cannot create the folder (Not a directory)"),
    ):
        code = main(["--project", str(synced), "report", "--out", str(out)])
        err = capsys.readouterr().err
        assert (code, err.strip()) == (2, f"error: --out {out}: {why}")


def test_the_daily_task_writes_every_language_into_var_reports(synced):
    folder = write_status_report(synced)
    assert folder == synced / "var" / "reports"
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "data-docs",
        "quality-report.en.html",
        "quality-report.fi.html",
        "quality-report.json",
        "quality-report.sv.html",
    ]
