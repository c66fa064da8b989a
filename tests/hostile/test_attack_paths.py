"""Named attack: path traversal in file names, against a local drop folder and an SFTP drop.

A secret file sits just outside the island's folder, where `../` would reach it. Whatever
the file pattern or the names a server lists, the hub reads only files inside the folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.sftp import host_key_fingerprint
from islandhub.pipeline import sync
from tests.fakes.sftp_server import SftpDrop, sftp_server
from tests.hostile.harness import MAPPING, Hub

SECRET = "TOP-SECRET-0b9e44d1"
GOOD = b"id,name\n1,Anna Virtanen\n"
OUTSIDE = f"id,name\n666,{SECRET}\n".encode()


def files_island(pattern: str, path: str = "drops/files") -> tuple[str, str]:
    body = (
        f"connector: files\nconnection: {{path: {path}}}\n"
        f"streams:\n  people: {{files: '{pattern}', format: csv, mapping: MAPPING}}\n"
    )
    return body, MAPPING.format(system="files")


def project(tmp_path: Path, store_template: Path, pattern: str) -> Hub:
    """A project whose files island reads `pattern`; a secret waits next to its folder."""
    hub = Hub.create(tmp_path / "p", store_template, {"files": files_island(pattern)})
    (hub.root / "drops" / "secret.csv").write_bytes(OUTSIDE)
    (hub.root / "outside").mkdir()
    (hub.root / "outside" / "secret.csv").write_bytes(OUTSIDE)
    return hub


def assert_secret_not_stored(path: Path | None) -> None:
    assert path is not None
    assert SECRET.encode() not in path.read_bytes()


@pytest.mark.parametrize(
    "pattern",
    [
        "../secret.csv",
        "../*.csv",
        "../../outside/*.csv",
        "sub/../../secret.csv",
        "**/../../secret.csv",
        "{absolute}",
    ],
)
def test_a_file_pattern_cannot_leave_the_folder(
    tmp_path: Path, store_template: Path, pattern: str
) -> None:
    pattern = pattern.format(absolute=tmp_path / "p" / "outside" / "*.csv")
    hub = project(tmp_path, store_template, pattern)
    outcome = hub.sync("files", {"export.csv": GOOD}, keep=True)
    assert outcome.result.status == "failed"
    assert "must stay inside" in (outcome.result.error or "")
    assert outcome.stored.landed == {}
    assert_secret_not_stored(outcome.path)


def test_a_glob_that_could_spell_dot_dot_matches_nothing_outside(
    tmp_path: Path, store_template: Path
) -> None:
    # `[.][.]` is no `..` to a check of the pattern's parts, and glob never lists `..`.
    hub = project(tmp_path, store_template, "[.][.]/*.csv")
    outcome = hub.sync("files", {"export.csv": GOOD}, keep=True)
    assert outcome.result.status == "succeeded"
    assert outcome.result.pulled == 0
    assert_secret_not_stored(outcome.path)


def test_links_out_of_the_folder_are_not_followed(tmp_path: Path, store_template: Path) -> None:
    hub = project(tmp_path, store_template, "**/*.csv")
    folder = hub.root / "drops" / "files"
    hub.drop("files", {"export.csv": GOOD})
    os.symlink(hub.root / "drops" / "secret.csv", folder / "linked.csv")
    os.symlink(hub.root / "outside", folder / "linked_folder")
    store, path = hub.fresh_store()
    try:
        [result] = sync(hub.project, store, ["files"])
        hub.check(store, "files", result)
    finally:
        store.dispose()
    assert result.status == "succeeded"
    assert (result.pulled, result.mapped) == (1, 1)
    assert_secret_not_stored(path)


# --- SFTP ------------------------------------------------------------------------------------

CLIMBING_NAMES = [
    "../secret.csv",
    "..",
    "/secret.csv",
    "..\\secret.csv",
    "sub/../../secret.csv",
    "secret.csv\x00.csv",
    "./../secret.csv",
]


@pytest.fixture
def sftp(tmp_path: Path) -> Iterator[SftpDrop]:
    """An SFTP server whose root holds the drop and, one level up from it, the secret."""
    root = tmp_path / "srv"
    (root / "drop").mkdir(parents=True)
    (root / "drop" / "export.csv").write_bytes(GOOD)
    (root / "secret.csv").write_bytes(OUTSIDE)
    with sftp_server(root) as server:
        server.account.hostile_names = CLIMBING_NAMES
        yield server


def test_sftp_names_that_climb_out_of_the_drop_are_never_read(
    tmp_path: Path, store_template: Path, sftp: SftpDrop, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fake server serves its whole root: a client that followed `../secret.csv` from
    # /drop would get the secret. The listing's hostile names must be skipped instead.
    monkeypatch.setenv("DROP_SFTP_PASSWORD", sftp.account.password)
    body = (
        "connector: files\n"
        f"connection: {{path: '{sftp.url('/drop')}', username: {sftp.account.username},"
        f" password: {{secret: DROP_SFTP_PASSWORD}},"
        f" host_key: '{host_key_fingerprint(sftp.host_key)}'}}\n"
        "streams:\n  people: {files: '*', format: csv, archive: done, mapping: MAPPING}\n"
    )
    hub = Hub.create(
        tmp_path / "p", store_template, {"files": (body, MAPPING.format(system="files"))}
    )
    outcome = hub.sync("files", {}, keep=True)
    assert outcome.result.status == "succeeded"
    assert outcome.stored.landed == {"1": "mapped"}
    assert_secret_not_stored(outcome.path)
    # The second run archived the committed file; nothing outside the drop moved.
    assert (sftp.root / "secret.csv").read_bytes() == OUTSIDE
    assert sorted(p.name for p in (sftp.root / "drop" / "done").iterdir()) == ["export.csv"]
