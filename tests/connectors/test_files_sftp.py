"""The files connector over SFTP, against a real paramiko SFTP server on 127.0.0.1."""

from __future__ import annotations

import csv
import io
import itertools
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paramiko
import pytest

from connectors.base import StreamSpec
from connectors.files import FilesConnector
from connectors.sftp import host_key_fingerprint
from connectors.testing import Island, connector_test_class
from islandhub.errors import ConfigError, FatalSourceError
from islandhub.secrets import Secret
from tests.fakes.sftp_server import SftpDrop, sftp_server

PASSWORD = "s3cret-drop"
STREAM = {"files": "pupils_*.csv", "format": "csv", "delimiter": ";", "encoding": "auto"}


def write_pupils(folder: Path, number: int, count: int) -> list[str]:
    ids = [f"S{number}-{i}" for i in range(count)]
    with (folder / f"pupils_{number:04d}.csv").open("w", encoding="cp1252", newline="") as f:
        writer = csv.writer(f, delimiter=";")
        writer.writerow(["oppilas_id", "nimi"])
        writer.writerows([i, f"Öberg {i}"] for i in ids)
    return ids


def connection(server: SftpDrop, **overrides: Any) -> dict[str, Any]:
    return {
        "path": server.url("/drop"),
        "username": "islandhub",
        "password": Secret("SCHOOL_SFTP_PASSWORD", PASSWORD),
        "host_key": host_key_fingerprint(server.host_key),
        **overrides,
    }


def make(server: SftpDrop, stream: dict[str, Any] | None = None, **overrides: Any):
    spec = {"pupils": StreamSpec("pupils", stream or STREAM)}
    return FilesConnector("school", connection(server, **overrides), spec)


@contextmanager
def school_sftp(tmp_path: Path) -> Iterator[Island]:
    folder = tmp_path / "srv" / "drop"
    folder.mkdir(parents=True)
    counter = itertools.count(1)
    write_pupils(folder, next(counter), 25)
    write_pupils(folder, next(counter), 12)
    with sftp_server(tmp_path / "srv") as server:
        yield Island(
            connection=connection(server),
            streams={"pupils": {**STREAM, "batch_size": 10}},
            id_field={"pupils": "oppilas_id"},
            add_records=lambda _stream, count: write_pupils(folder, next(counter), count),
            broken_connection=connection(server, password=Secret("X", "wrong-password")),
        )


TestSftpConformance = connector_test_class(FilesConnector, school_sftp)


@contextmanager
def school_sftp_archiving(tmp_path: Path) -> Iterator[Island]:
    with school_sftp(tmp_path) as island:
        island.streams["pupils"]["archive"] = "processed"
        yield island


TestSftpArchivingConformance = connector_test_class(FilesConnector, school_sftp_archiving)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SftpDrop]:
    (tmp_path / "srv" / "drop").mkdir(parents=True)
    write_pupils(tmp_path / "srv" / "drop", 1, 3)
    with sftp_server(tmp_path / "srv") as running:
        yield running


def records(conn: FilesConnector, state: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return [r for b in conn.pull("pupils", state) for r in b.records]


# --- host keys ----------------------------------------------------------------------------


def test_an_unknown_host_is_refused_and_its_fingerprint_shown(server, caplog):
    conn = make(server, host_key=None)
    result = conn.check()
    fingerprint = host_key_fingerprint(server.host_key)
    assert not result.ok
    assert "is not known" in result.message and f"host_key: {fingerprint}" in result.message
    with pytest.raises(FatalSourceError, match="refused: host key"):
        records(conn)
    assert server.account.logins == 0  # no password was sent to an unverified host


def test_a_wrong_pinned_fingerprint_is_refused(server):
    other = host_key_fingerprint(paramiko.ECDSAKey.generate())
    result = make(server, host_key=other).check()
    assert not result.ok and f"but host_key pins {other}" in result.message


def test_known_hosts_file_accepts_the_right_key_and_refuses_a_changed_one(server, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_line() + "\n")
    result = make(server, host_key=None, known_hosts=str(known)).check()
    # One login lists the folder and counts each stream's files; nothing is downloaded.
    assert result.ok and result.message.startswith("sftp://") and " readable, " in result.message
    assert result.message.endswith("; pupils: 1 file matches 'pupils_*.csv'")
    impostor = paramiko.ECDSAKey.generate()
    known.write_text(
        f"[{server.host}]:{server.port} {impostor.get_name()} {impostor.get_base64()}\n"
    )
    result = make(server, host_key=None, known_hosts=str(known)).check()
    assert not result.ok and "does not match the known_hosts file" in result.message


def test_insecure_skip_accepts_any_host_but_warns(server, caplog):
    conn = make(server, host_key=None, insecure_skip_host_key_check=True)
    with caplog.at_level(logging.WARNING, logger="connectors.sftp"):
        assert conn.check().ok
    assert "NOT verified" in caplog.text


# --- logins -------------------------------------------------------------------------------


def test_a_wrong_password_is_named_but_never_shown(server, caplog):
    with caplog.at_level(logging.DEBUG):
        result = make(server, password=Secret("P", "hunter2-wrong")).check()
    assert not result.ok
    assert "login refused for user 'islandhub'" in result.message
    assert "hunter2" not in result.message and "hunter2" not in caplog.text


def test_a_private_key_logs_in(server):
    key = paramiko.ECDSAKey.generate()
    server.account.public_key = key
    pem = io.StringIO()
    key.write_private_key(pem)
    conn = make(server, password=None, private_key=Secret("K", pem.getvalue()))
    assert [r["oppilas_id"] for r in records(conn)] == ["S1-0", "S1-1", "S1-2"]


def test_an_unreachable_server_is_a_failed_check(server):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conn = make(server, path=f"sftp://127.0.0.1:{port}/drop", timeout=2)
    result = conn.check()
    assert not result.ok and "cannot connect" in result.message


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"path": "sftp://islandhub:pw@127.0.0.1/drop"}, "not in the sftp:// address"),
        ({"password": None}, "needs `username` and `password` or `private_key`"),
        ({"known_hosts": "/nonexistent/known_hosts"}, "known_hosts: file .* not found"),
    ],
)
def test_bad_sftp_connections_are_config_errors(server, overrides, message):
    with pytest.raises(ConfigError, match=message):
        make(server, **overrides)


# --- what the drop holds ------------------------------------------------------------------


def test_hostile_names_in_a_listing_are_skipped_with_a_warning(server, caplog):
    server.account.hostile_names = ["../pupils_9.csv", "sub/pupils_8.csv", "pupils_7\0.csv"]
    with caplog.at_level(logging.WARNING, logger="connectors.sftp"):
        got = records(make(server))
    assert {r["oppilas_id"][:2] for r in got} == {"S1"}
    assert caplog.text.count("not a plain file name") == 3


def test_a_pattern_with_folders_is_refused_over_sftp(server):
    with pytest.raises(FatalSourceError, match="without folders"):
        records(make(server, {**STREAM, "files": "../pupils_*.csv"}))


def test_a_touched_but_unchanged_file_is_not_read_again(server):
    conn = make(server)
    state = list(conn.pull("pupils", None))[-1].state
    target = server.root / "drop" / "pupils_0001.csv"
    stat = target.stat()
    os.utime(target, (stat.st_atime, stat.st_mtime + 60))
    batches = list(conn.pull("pupils", state))
    assert [r for b in batches for r in b.records] == []
    assert batches[-1].state["done"]["pupils_0001.csv"].startswith(f"{stat.st_size}:")


def test_archive_renames_on_the_server_only_after_the_state_says_done(server):
    conn = make(server, {**STREAM, "archive": "processed/2025", "batch_size": 2})
    drop = server.root / "drop"
    batches = list(conn.pull("pupils", None))
    assert (drop / "pupils_0001.csv").exists()  # read, but not yet known to be committed
    list(conn.pull("pupils", batches[0].state))  # a state from before the file was done
    assert (drop / "pupils_0001.csv").exists()
    list(conn.pull("pupils", batches[-1].state))
    assert not (drop / "pupils_0001.csv").exists()
    assert (drop / "processed" / "2025" / "pupils_0001.csv").exists()
    # The same name dropped again and committed: archived beside the first, not over it.
    write_pupils(drop, 1, 2)
    batches = list(conn.pull("pupils", None))
    list(conn.pull("pupils", batches[-1].state))
    assert sorted(p.name for p in (drop / "processed" / "2025").iterdir()) == [
        "pupils_0001.csv",
        "pupils_0001~2.csv",
    ]
