"""The files connector on real files: formats, encodings, resumption, confinement to its folder."""

from __future__ import annotations

import json
import os

import pytest

from connectors.base import StreamSpec
from connectors.files import FilesConnector
from islandhub.errors import FatalSourceError


def connector(folder, **options):
    spec = {"files": "*.csv", "format": "csv", **options}
    return FilesConnector("school", {"path": str(folder)}, {"pupils": StreamSpec("pupils", spec)})


def pull_all(conn, state=None):
    batches = list(conn.pull("pupils", state))
    return [r for b in batches for r in b.records], batches


def test_semicolon_cp1252_export_is_read_with_its_header(tmp_path):
    (tmp_path / "pupils_1.csv").write_bytes(
        "id;nimi\r\n1;Mäkinen Åsa\r\n2;Öberg Pia\r\n".encode("cp1252")
    )
    records, _ = pull_all(connector(tmp_path, delimiter=";", encoding="cp1252"))
    assert records == [{"id": "1", "nimi": "Mäkinen Åsa"}, {"id": "2", "nimi": "Öberg Pia"}]


def test_utf8_bom_is_not_part_of_the_first_column(tmp_path):
    (tmp_path / "p.csv").write_bytes("\ufeffid,name\n1,A\n".encode())
    records, _ = pull_all(connector(tmp_path))
    assert records == [{"id": "1", "name": "A"}]


def test_wrong_encoding_fails_clearly(tmp_path):
    (tmp_path / "p.csv").write_bytes("id;nimi\n1;Mäkinen\n".encode("cp1252"))
    with pytest.raises(FatalSourceError, match=r"cannot decode byte \d+ as utf-8: set `encoding`"):
        pull_all(connector(tmp_path, delimiter=";"))


def test_a_row_with_the_wrong_number_of_columns_is_rejected_with_its_line(tmp_path):
    (tmp_path / "p.csv").write_text("id;nimi\n1;A\n2;B;extra\n3;C\n")
    records, batches = pull_all(connector(tmp_path, delimiter=";"))
    assert [r["id"] for r in records] == ["1", "3"]
    [rejected] = [r for b in batches for r in b.rejected]
    assert (rejected.reason, rejected.position) == ("expected 2 columns, found 3", "p.csv:3")


def test_state_after_each_batch_resumes_exactly(tmp_path):
    rows = "\n".join(f"{i};name{i}" for i in range(10))
    (tmp_path / "p.csv").write_text(f"id;nimi\n{rows}\n")
    conn = connector(tmp_path, delimiter=";", batch_size=3)
    _, batches = pull_all(conn)
    assert [len(b.records) for b in batches] == [3, 3, 3, 1, 0]
    # Resume from the state committed after the second batch: the rest, nothing twice.
    resumed, _ = pull_all(conn, batches[1].state)
    assert [r["id"] for r in resumed] == ["6", "7", "8", "9"]
    # A finished file is skipped until its content changes.
    assert pull_all(conn, batches[-1].state)[0] == []
    (tmp_path / "p.csv").write_text(f"id;nimi\n{rows}\n10;name10\n")
    assert len(pull_all(conn, batches[-1].state)[0]) == 11


def test_a_state_for_a_changed_file_rereads_it_whole(tmp_path):
    (tmp_path / "p.csv").write_text("id\n1\n2\n3\n4\n")
    conn = connector(tmp_path, batch_size=2)
    _, batches = pull_all(conn)
    (tmp_path / "p.csv").write_text("id\n1\n2\n3\n4\n5\n")
    assert [r["id"] for r in pull_all(conn, batches[0].state)[0]] == ["1", "2", "3", "4", "5"]


def test_json_and_json_lines(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"data": {"items": [{"id": 1}, {"id": 2}, 3]}}))
    (tmp_path / "b.jsonl").write_text('{"id": 3}\nnot json\n\n[1]\n')
    conn = FilesConnector(
        "x",
        {"path": str(tmp_path)},
        {
            "a": StreamSpec("a", {"files": "*.json", "format": "json", "records": "data.items"}),
            "b": StreamSpec("b", {"files": "*.jsonl", "format": "jsonl"}),
        },
    )
    a = list(conn.pull("a", None))
    assert [r for b in a for r in b.records] == [{"id": 1}, {"id": 2}]
    assert [r.reason for b in a for r in b.rejected] == ["not a JSON object"]
    b = list(conn.pull("b", None))
    assert [r for x in b for r in x.records] == [{"id": 3}]
    assert [(r.reason.split(":")[0], r.position) for x in b for r in x.rejected] == [
        ("not JSON", "b.jsonl:2"),
        ("not a JSON object", "b.jsonl:4"),
    ]


def test_paths_stay_inside_the_folder(tmp_path):
    inside = tmp_path / "drop"
    inside.mkdir()
    (tmp_path / "secret.csv").write_text("id\n1\n")
    os.symlink(tmp_path / "secret.csv", inside / "link.csv")
    assert pull_all(connector(inside))[0] == []  # a symlink out is not followed
    conn = FilesConnector(
        "x",
        {"path": str(inside)},
        {"pupils": StreamSpec("pupils", {"files": "../*.csv", "format": "csv"})},
    )
    with pytest.raises(FatalSourceError, match="must stay inside"):
        list(conn.pull("pupils", None))


def test_check_tells_whether_the_folder_exists(tmp_path):
    assert connector(tmp_path).check().ok
    result = connector(tmp_path / "missing").check()
    assert not result.ok and "does not exist" in result.message
