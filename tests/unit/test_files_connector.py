"""The files connector on real files: formats, encodings, resumption, confinement to its folder."""

from __future__ import annotations

import json
import os

import pytest

from connectors.base import StreamSpec
from connectors.files import FilesConnector
from islandhub.config import validate
from islandhub.errors import ConfigError, FatalSourceError
from islandhub.yamlsource import parse_yaml


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


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1", "windows-1252"])
def test_a_utf8_file_with_its_mark_read_as_another_encoding_fails_clearly(tmp_path, encoding):
    # Read as cp1252, the mark would be glued to `id` ("ï»¿id"): every record without its id.
    (tmp_path / "p.csv").write_bytes("\ufeffid;nimi\n1;Mäkinen\n".encode())
    with pytest.raises(FatalSourceError) as caught:
        pull_all(connector(tmp_path, delimiter=";", encoding=encoding))
    assert str(caught.value) == (
        f"p.csv: starts with a UTF-8 byte-order mark, but the stream reads it as {encoding}: "
        "set `encoding: utf-8` (or `auto`) on the stream"
    )


@pytest.mark.parametrize(
    ("text", "delimiter", "advice"),
    [
        (
            "id;nimi;hetu\n1;A;x\n",
            ",",
            '\';\' splits into 3: set `delimiter: ";"` on the stream (it reads ",")',
        ),
        (
            "id,nimi\n1,A\n",
            ";",
            '\',\' splits into 2: set `delimiter: ","` on the stream (it reads ";")',
        ),
        (
            "id\tnimi\n1\tA\n",
            ";",
            '\'\\t\' splits into 2: set `delimiter: "\\t"` on the stream (it reads ";")',
        ),
    ],
)
def test_a_file_of_one_column_that_another_delimiter_splits_fails_clearly(
    tmp_path, text, delimiter, advice
):
    # Else each row lands as one column without the mapping's id: all quarantined, run "ok".
    (tmp_path / "p.csv").write_text(text)
    with pytest.raises(FatalSourceError, match="the header is one column") as caught:
        pull_all(connector(tmp_path, delimiter=delimiter))
    assert str(caught.value).endswith(advice)


@pytest.mark.parametrize(
    "text",
    [
        "id\n1\n2\n",
        "Sukunimi, etunimi\nVirtanen, Matti\nLahti, Anna\n",  # names with a comma in them
        "id;nimi\n",  # a header only: nothing would be quarantined
        "huomautus\nyes;no\n",  # the header holds no delimiter
    ],
)
def test_a_real_file_of_one_column_is_read(tmp_path, text):
    (tmp_path / "p.csv").write_text(text)
    records, _ = pull_all(connector(tmp_path, delimiter="|"))
    lines = text.splitlines()
    assert records == [{lines[0]: line} for line in lines[1:]]


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


def test_check_says_how_many_files_each_stream_finds(tmp_path):
    (tmp_path / "pupils_1.csv").write_text("id\n1\n")
    (tmp_path / "notes.txt").write_text("x")
    assert connector(tmp_path).check().message.endswith("; pupils: 1 file matches '*.csv'")
    # A mistyped pattern finds nothing: not a failure (the export may still come), but told.
    result = connector(tmp_path, files="pupil_*.csv").check()
    assert result.ok and result.message.endswith("; pupils: 0 files match 'pupil_*.csv'")
    outside = connector(tmp_path, files="../*.csv").check()
    assert not outside.ok and "must stay inside" in outside.message


# --- archive ------------------------------------------------------------------------------


def archiving(folder, archive="archive", **options):
    return connector(folder, archive=archive, **options)


def test_archive_moves_a_file_only_once_the_incoming_state_says_it_is_done(tmp_path):
    (tmp_path / "a.csv").write_text("id\n1\n2\n3\n")
    conn = archiving(tmp_path, batch_size=2)
    _, batches = pull_all(conn)
    assert (tmp_path / "a.csv").exists()  # read, but the connector cannot know it is committed
    # A state from the middle of the file: not done, so it stays and the rest is read.
    rest, _ = pull_all(conn, batches[0].state)
    assert [r["id"] for r in rest] == ["3"] and (tmp_path / "a.csv").exists()
    # The committed final state says done with this fingerprint: now it moves, unread.
    again, after = pull_all(conn, batches[-1].state)
    assert again == [] and after[-1].state == {"done": {}}
    assert not (tmp_path / "a.csv").exists()
    assert (tmp_path / "archive" / "a.csv").read_text() == "id\n1\n2\n3\n"
    # Archived files are never read again, even by a pattern that reaches into subfolders.
    deep = FilesConnector(
        "x",
        {"path": str(tmp_path)},
        {
            "pupils": StreamSpec(
                "pupils", {"files": "**/*.csv", "format": "csv", "archive": "archive"}
            )
        },
    )
    assert pull_all(deep)[0] == []


def test_archive_leaves_a_file_that_changed_since_it_was_read(tmp_path):
    (tmp_path / "a.csv").write_text("id\n1\n")
    conn = archiving(tmp_path)
    _, batches = pull_all(conn)
    (tmp_path / "a.csv").write_text("id\n1\n2\n")  # the island rewrote it meanwhile
    records, _ = pull_all(conn, batches[-1].state)
    assert [r["id"] for r in records] == ["1", "2"]
    assert (tmp_path / "a.csv").exists() and not (tmp_path / "archive" / "a.csv").exists()


def test_archive_never_overwrites_an_archived_file(tmp_path):
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "a.csv").write_text("yesterday")
    (tmp_path / "a.csv").write_text("id\n1\n")
    conn = archiving(tmp_path)
    pull_all(conn, pull_all(conn)[1][-1].state)
    assert (tmp_path / "archive" / "a.csv").read_text() == "yesterday"
    assert (tmp_path / "archive" / "a~2.csv").read_text() == "id\n1\n"


@pytest.mark.parametrize("archive", ["/tmp/archive", "../archive", "done/../../x", "."])
def test_archive_folder_must_be_inside_the_drop(tmp_path, archive):
    (tmp_path / "a.csv").write_text("id\n1\n")
    with pytest.raises(FatalSourceError, match="must be a folder inside the drop folder"):
        pull_all(archiving(tmp_path, archive))


def test_an_archive_folder_linking_out_of_the_drop_is_refused(tmp_path):
    drop, outside = tmp_path / "drop", tmp_path / "outside"
    drop.mkdir()
    outside.mkdir()
    os.symlink(outside, drop / "archive")
    (drop / "a.csv").write_text("id\n1\n")
    conn = archiving(drop)
    with pytest.raises(FatalSourceError, match="leads out of"):
        pull_all(conn, pull_all(conn)[1][-1].state)
    assert (drop / "a.csv").exists() and not list(outside.iterdir())


def test_sftp_options_on_a_local_folder_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="password, username only apply to sftp:// paths"):
        FilesConnector("x", {"path": str(tmp_path), "username": "u", "password": "p"}, {})


# --- the schemas, as the config loader applies them (STYLE 6) ------------------------------

VALID_SYSTEM_FILES = [
    "connection: {path: samples/school}\n"
    "streams: {s: {files: '*.csv', format: csv, encoding: auto, archive: done}}\n",
    "connection: {path: 'sftp://sftp.example.fi:2222/exports', username: school,\n"
    "             password: {secret: SCHOOL_SFTP_PASSWORD},\n"
    "             host_key: 'SHA256:x8cOY1/1d/msLkN6m2kT81s5967Rb3bH4EfKLoi/Gu4'}\n"
    "streams: {s: {files: '*.xlsx', format: xlsx, sheet: Asiakkaat, header_row: 2}}\n",
    "connection: {path: 'sftp://h/x', username: u, private_key: {secret: SFTP_KEY},\n"
    "             known_hosts: config/known_hosts}\n"
    "streams: {s: {files: '*.xml', format: xml, record_path: lapset/lapsi,\n"
    "              repeated: [huoltajat/huoltaja]}}\n",
]

INVALID_SYSTEM_FILES = [
    (
        "connection: {path: 'sftp://h/x', username: u, password: hunter2}\nstreams: {}\n",
        "f.yaml:1:47 connection.password: password is a secret: write {secret: NAME} and set "
        "NAME in the environment or as an Airflow variable; never the value itself",
    ),
    (
        "connection: {path: 'sftp://h/x', username: u}\nstreams: {}\n",
        "f.yaml:1:1 connection: an sftp:// drop needs `password` or `private_key` (as secrets)",
    ),
    (
        "connection: {path: 'sftp://h/x', password: {secret: P}}\nstreams: {}\n",
        "f.yaml:1:1 connection: missing required key 'username'",
    ),
    (
        "connection: {path: /x, host_key: 'ab:cd'}\nstreams: {}\n",
        "f.yaml:1:24 connection.host_key: 'ab:cd' does not match SHA256:[A-Za-z0-9+/]{43} "
        "(SHA256: and 43 characters, as ssh-keygen -lf prints it)",
    ),
    (
        "connection: {path: /x}\nstreams: {s: {files: '*.xml', format: xml}}\n",
        "f.yaml:2:11 streams.s: missing required key 'record_path'",
    ),
    (
        "connection: {path: /x}\nstreams: {s: {files: '*', format: xls}}\n",
        "f.yaml:2:27 streams.s.format: 'xls' is not one of csv, json, jsonl, xlsx, xml",
    ),
    (
        "connection: {path: /x}\nstreams: {s: {files: '*', format: xlsx, short_rows: pad}}\n",
        "f.yaml:2:41 streams.s.short_rows: 'pad' is not one of empty, reject",
    ),
]


def schema_problems(text):
    doc = parse_yaml(text, "f.yaml")
    problems = validate(
        doc, FilesConnector.connection_schema, doc.data["connection"], ("connection",)
    )
    for name, options in doc.data["streams"].items():
        problems += validate(doc, FilesConnector.stream_schema, options, ("streams", name))
    return [str(p) for p in problems]


@pytest.mark.parametrize("text", VALID_SYSTEM_FILES)
def test_valid_files_connections_and_streams(text):
    assert schema_problems(text) == []


@pytest.mark.parametrize(("text", "error"), INVALID_SYSTEM_FILES)
def test_invalid_files_connections_and_streams_say_exactly_what_is_wrong(text, error):
    problems = schema_problems(text)
    assert problems == [error]
    assert "hunter2" not in "\n".join(problems)
