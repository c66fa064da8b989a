"""The command line contract: exit codes, --json, clear errors, national ids masked."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from islandhub.cli import main

HETUS = ["230612A457H", "020216B273U", "120378-234U", "041181-356U", "120514A123X"]


@pytest.fixture
def project(sample_project, tmp_path, monkeypatch):
    monkeypatch.setenv("ISLANDHUB_PROJECT", str(sample_project))
    monkeypatch.setenv("ISLANDHUB_STORE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("ISLANDHUB_ACTOR", "cli-test")
    monkeypatch.setenv("ISLANDHUB_PURPOSE", "testing the command line")
    return sample_project


def run(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_no_raw_hetu(text):
    for hetu in HETUS:
        assert hetu not in text


def test_sync_json_prints_one_document_and_exit_0(project, capsys):
    code, out, _ = run(capsys, "sync", "--all", "--json")
    assert code == 0
    document = json.loads(out)
    assert document["ok"] is True
    assert {(r["system"], r["pulled"], r["quarantined"]) for r in document["runs"]} == {
        ("population", 8, 0),
        ("school", 5, 1),
    }


def test_status_and_residents_never_show_a_national_id(project, capsys):
    run(capsys, "sync", "--all")
    outputs = []
    for args in (
        ["status"],
        ["status", "--json"],
        ["resident", "list"],
        ["resident", "list", "--json"],
        ["resident", "show", "--national-id", "230612A457H"],
        ["resident", "show", "--national-id", "230612A457H", "--json"],
    ):
        code, out, err = run(capsys, *args)
        assert code == 0, (args, err)
        outputs.append(out + err)
    assert_no_raw_hetu("\n".join(outputs))
    assert "230612A***H" in outputs[4]
    assert "population.persons:230612A***H" in outputs[4]  # the register's source id is its HETU


def test_resident_show_follows_id_and_reports_missing(project, capsys):
    run(capsys, "sync", "--all")
    _, out, _ = run(capsys, "resident", "list", "--json")
    first = json.loads(out)["residents"][0]["resident_id"]
    code, out, _ = run(capsys, "resident", "show", first, "--json")
    assert code == 0 and json.loads(out)["resident_id"] == first
    code, _, err = run(capsys, "resident", "show", "0192a8c4-5b7e-7cc1-9d1e-3f4a5b6c7d8e")
    assert (code, err.strip()) == (1, "no such resident")
    code, _, err = run(capsys, "resident", "show")
    assert code == 2 and "give a resident ID or --national-id" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["resident", "show", "no-such-id"], "argument ID: not a resident id (a UUID such as"),
        (["resident", "explain", "230612A457H"], "that is a national id: find the resident's id"),
        (["resident", "erase", "xyz", "--dry-run"], "argument ID: not a resident id"),
        (["audit", "--resident", "nope"], "argument --resident: not a resident id"),
        (
            ["resident", "show", "--national-id", "230612A457X"],
            "argument --national-id: not a valid national id (HETU): The number's checksum",
        ),
        (["resident", "export", "--national-id", "2306"], "not a valid national id (HETU)"),
        (["resident", "list", "--limit", "-5"], "argument --limit: -5 is less than 0"),
        (
            ["audit", "--resident", "0192a8c4-5b7e-7cc1-9d1e-3f4a5b6c7d8e", "--limit", "x"],
            "'x' is not a whole number",
        ),
    ],
)
def test_a_mistyped_id_or_count_is_bad_input(project, capsys, args, message):
    # "no such resident" would send staff looking for a person who may well be in the hub.
    with pytest.raises(SystemExit) as exited:
        main(args)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and message in err
    assert_no_raw_hetu(err)
    assert "230612A457X" not in err


def test_unknown_system_exits_2(project, capsys):
    code, out, err = run(capsys, "sync", "libary")
    assert (code, out) == (2, "")
    assert "unknown system 'libary'; configured systems: population, school" in err


def test_mapping_check_and_preview(project, capsys, tmp_path):
    code, out, _ = run(capsys, "mapping", "check", str(project / "mappings/school/pupils.yaml"))
    assert code == 0 and "1 mapping file(s) ok" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "source: school.pupils\nentity: resident\nid: id\nfields:\n"
        "  email: {from: e, use: [emial]}\n"
    )
    code, _, err = run(capsys, "mapping", "check", str(bad))
    assert code == 2
    assert ":5:" in err and "fields.email.use[0]" in err and "unknown transform 'emial'" in err
    sample = tmp_path / "sample.json"
    sample.write_text(
        json.dumps(
            [
                {
                    "oppilas_id": "1",
                    "nimi": "Virtanen Oskar",
                    "hetu": "090915A6286",
                    "huoltaja1_sahkoposti": " X@Example.FI ",
                },
                {"oppilas_id": "2", "nimi": "Berg Lukas", "hetu": "090915A6287"},
            ]
        )
    )
    code, out, _ = run(
        capsys,
        "mapping",
        "preview",
        str(project / "mappings/school/pupils.yaml"),
        "--input",
        str(sample),
        "--json",
    )
    assert code == 0
    preview = json.loads(out)
    assert preview["mapped"][0]["fields"]["given_name"] == "Oskar"
    assert preview["mapped"][0]["fields"]["guardian.email"] == "x@example.fi"
    assert preview["quarantined"][0]["source_id"] == "2"
    assert_no_raw_hetu(out)


def test_connector_list_and_check(project, capsys):
    code, out, _ = run(capsys, "connector", "list", "--json")
    assert code == 0 and "files" in [c["kind"] for c in json.loads(out)["connectors"]]
    code, out, _ = run(capsys, "check", "school")
    assert code == 0 and "school: ok" in out


def test_bad_config_exits_2_with_file_line_and_no_traceback(project, tmp_path):
    (project / "config/systems/school.yaml").write_text(
        (project / "config/systems/school.yaml").read_text().replace("schedule:", "shedule:")
    )
    env = {
        **os.environ,
        "ISLANDHUB_PROJECT": str(project),
        "ISLANDHUB_STORE_URL": f"sqlite:///{tmp_path / 'x.db'}",
    }
    result = subprocess.run(
        [sys.executable, "-m", "islandhub.cli", "sync", "--all"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "config/systems/school.yaml:7:1: unknown key" in result.stderr
    assert "unknown key 'shedule'; did you mean 'schedule'?" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_failed_island_exits_1_and_names_it(project, capsys):
    for path in (project / "samples/school").iterdir():
        path.unlink()
    (project / "samples/school").rmdir()
    code, _, err = run(capsys, "sync", "--all")
    assert code == 1
    assert "failed: school.pupils: FatalSourceError" in err and "does not exist" in err
