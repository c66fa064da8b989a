"""The files connector: exports dropped in a folder or on SFTP (CSV, JSON, JSONL, XLSX, XML).

Municipal systems often hand over a nightly export instead of an API. Each file is
fingerprinted by its content; a file already read with the same fingerprint is skipped, and
a file read half way (a crash) resumes after the last committed record. With `archive`, a
file the pipeline has committed is moved out of the way on the next pull.

State: `{"done": {name: fingerprint}, "current": {file, fingerprint, records}}`. A local
fingerprint is the content's hash; an SFTP one is `size:mtime:hash`, so that an unchanged
remote file is recognised from the listing alone, without downloading it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from connectors.base import Batch, CheckResult, Connector, Rejected, State, StreamSpec
from connectors.file_formats import FORMATS, read_items
from connectors.sftp import RemoteFile, SftpDrop, SftpSession, free_name
from islandhub.errors import ConfigError, FatalSourceError, SourceError

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 5000
SFTP_ONLY = (
    "username",
    "password",
    "private_key",
    "private_key_passphrase",
    "known_hosts",
    "host_key",
    "insecure_skip_host_key_check",
    "timeout",
)
_SECRET = {"secret": True}


@dataclass(frozen=True)
class DropEntry:
    """A file found in the drop: its name (the state's key) and what the listing knows."""

    name: str
    listed: str  # local: the content hash; SFTP: size:mtime
    handle: Any  # the local Path or the RemoteFile


class DropSession(Protocol):
    """What the connector needs from a drop folder, local or remote, while it pulls."""

    def entries(self, pattern: str, archive: str | None) -> list[DropEntry]:
        """Matching files, by name, without those already in the archive folder."""

    def matching(self, pattern: str, archive: str | None) -> int:
        """How many files `entries` would give, from the listing alone (nothing read)."""

    def listed(self) -> str:
        """Where the drop is and how many entries it holds, for check()."""

    def fetch(self, entry: DropEntry) -> AbstractContextManager[tuple[Path, str]]:
        """A local copy of the file to read and its full fingerprint."""

    def archive(self, entry: DropEntry, folder: str) -> str:
        """Move the file into the archive folder; where it went."""


class FilesConnector(Connector):
    """Reads export files from a local folder or an SFTP folder; paths never leave it."""

    kind = "files"
    connection_schema = {
        "type": "object",
        "properties": {
            "path": {
                "type": "string",
                "description": "folder the island drops its exports in, or sftp://host:port/folder",
            },
            "username": {"type": "string", "minLength": 1, "description": "SFTP account"},
            "password": {**_SECRET, "description": "SFTP password"},
            "private_key": {**_SECRET, "description": "SFTP private key, PEM or OpenSSH text"},
            "private_key_passphrase": {**_SECRET, "description": "passphrase of private_key"},
            "known_hosts": {
                "type": "string",
                "description": "OpenSSH known_hosts file holding the server's host key",
            },
            "host_key": {
                "type": "string",
                "pattern": "^SHA256:[A-Za-z0-9+/]{43}$",
                "x-hint": "SHA256: and 43 characters, as ssh-keygen -lf prints it",
                "description": "the server's host key fingerprint, as ssh-keygen -lf prints it",
            },
            "insecure_skip_host_key_check": {
                "type": "boolean",
                "description": "accept any host key (tests only: logs a warning each time)",
            },
            "timeout": {"type": "number", "minimum": 1, "maximum": 600},
        },
        "required": ["path"],
        "additionalProperties": False,
        "if": {"properties": {"path": {"pattern": "^sftp://"}}, "required": ["path"]},
        "then": {
            "required": ["username"],
            "anyOf": [{"required": ["password"]}, {"required": ["private_key"]}],
            "x-message": "an sftp:// drop needs `password` or `private_key` (as secrets)",
        },
    }
    stream_schema = {
        "type": "object",
        "properties": {
            "files": {"type": "string", "description": "glob of the files, e.g. pupils_*.csv"},
            "format": {"enum": list(FORMATS)},
            "delimiter": {"type": "string", "minLength": 1, "maxLength": 1},
            "quotechar": {"type": "string", "minLength": 1, "maxLength": 1},
            "encoding": {
                "type": "string",
                "description": "text encoding (default utf-8), or auto: utf-8, cp1252, latin-1",
            },
            "records": {"type": "string", "description": "dotted path to the record list in JSON"},
            "sheet": {
                "type": ["string", "integer"],
                "minimum": 1,
                "description": "XLSX sheet: its name, or its number from 1 (default 1)",
            },
            "header_row": {"type": "integer", "minimum": 1, "description": "XLSX header row"},
            "short_rows": {
                "enum": ["empty", "reject"],
                "description": "XLSX rows with empty trailing cells: keep as empty, or reject",
            },
            "max_uncompressed_bytes": {"type": "integer", "minimum": 1},
            "max_compression_ratio": {"type": "number", "minimum": 1},
            "record_path": {
                "type": "string",
                "minLength": 1,
                "description": "XML: tags of a record element, e.g. lapset/lapsi",
            },
            "repeated": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "description": "XML: child paths inside a record that are always lists",
            },
            "archive": {
                "type": "string",
                "minLength": 1,
                "description": "folder inside the drop to move committed files to",
            },
            "batch_size": {"type": "integer", "minimum": 1, "maximum": 1000000},
        },
        "required": ["files", "format"],
        "additionalProperties": False,
        "if": {"properties": {"format": {"const": "xml"}}, "required": ["format"]},
        "then": {"required": ["record_path"]},
    }

    def __init__(
        self,
        system: str,
        connection: Mapping[str, Any],
        streams: Mapping[str, StreamSpec],
        *,
        root: Path | None = None,
    ) -> None:
        super().__init__(system, connection, streams, root=root)
        path = str(connection["path"])
        self.sftp: SftpDrop | None = None
        if path.startswith("sftp://"):
            self.sftp = SftpDrop(connection, root)
            self.where = self.sftp.where
        else:
            extra = sorted(set(SFTP_ONLY) & set(connection))
            if extra:
                raise ConfigError(f"connection: {', '.join(extra)} only apply to sftp:// paths")
            folder = Path(path)
            if not folder.is_absolute() and root is not None:
                folder = root / folder
            self.where = str(folder)
        self.folder = Path(self.where).resolve() if self.sftp is None else None

    def check(self) -> CheckResult:
        """The folder exists and can be listed (over SFTP: and the login works).

        It also says how many files each stream's pattern finds, from the listing alone: a
        pattern that finds none is no failure (the export may be still to come), but a
        mistyped one shows here.
        """
        found = []
        try:
            with self._session() as session:
                for name, spec in self.stream_specs.items():
                    pattern = str(spec.options["files"])
                    archive = _archive_folder(spec.options.get("archive"))
                    n = session.matching(pattern, archive)
                    files = "1 file matches" if n == 1 else f"{n} files match"
                    found.append(f"{name}: {files} {pattern!r}")
                listed = session.listed()
        except SourceError as exc:
            return CheckResult(False, str(exc))
        return CheckResult(True, "; ".join([listed, *found]))

    def pull(self, stream: str, state: State | None) -> Iterator[Batch]:
        """Yield batches of every new or changed file, oldest name first."""
        options = self.stream_specs[stream].options
        archive = _archive_folder(options.get("archive"))
        state = dict(state or {})
        done: dict[str, str] = dict(state.get("done", {}))
        with self._session() as session:
            entries = session.entries(str(options["files"]), archive)
            if archive is not None:
                entries = _archive_committed(session, entries, done, archive)
            # Forget files that are gone, so the state does not grow forever.
            done = {name: fp for name, fp in done.items() if name in {e.name for e in entries}}
            for entry in entries:
                if _listed_as(done.get(entry.name), entry.listed):
                    continue
                with session.fetch(entry) as (path, fingerprint):
                    if _same_content(done.get(entry.name), fingerprint):
                        done[entry.name] = fingerprint  # touched, not changed: not read again
                        continue
                    skip = _resume_at(state.get("current"), entry.name, fingerprint)
                    yield from _read_file(path, entry.name, fingerprint, skip, options, done)
                done[entry.name] = fingerprint
        yield Batch(records=[], state={"done": done})

    def _session(self) -> AbstractContextManager[DropSession]:
        if self.sftp is not None:
            return _remote_session(self.sftp)
        assert self.folder is not None
        return _local_session(self.folder)


def _archive_folder(value: Any) -> str | None:
    """The archive folder, relative to the drop and inside it, or None."""
    if value is None:
        return None
    folder = PurePosixPath(str(value))
    if folder.is_absolute() or ".." in folder.parts or str(folder) in ("", "."):
        raise FatalSourceError(
            f"archive folder {value!r} must be a folder inside the drop folder, "
            "written relative to it (like `archive` or `done/2025`)"
        )
    return str(folder)


def _archive_committed(
    session: DropSession, entries: list[DropEntry], done: dict[str, str], archive: str
) -> list[DropEntry]:
    """Archive the files the incoming state marks done; the entries still in the drop.

    The connector never sees the pipeline's commit, so a file is not archived when it has
    been read, but on the next pull, when the state handed in (the last committed one)
    says it is done with this very fingerprint. Then its records are safely landed, and a
    crash before this point leaves the file where it was, to be skipped as done.
    """
    remaining = []
    for entry in entries:
        if _listed_as(done.get(entry.name), entry.listed):
            moved_to = session.archive(entry, archive)
            log.info("%s: committed, archived as %s", entry.name, moved_to)
        else:
            remaining.append(entry)
    return remaining


def _listed_as(stored: str | None, listed: str) -> bool:
    """True when the stored fingerprint says the listed file is the one already read."""
    return stored is not None and (stored == listed or stored.startswith(listed + ":"))


def _same_content(stored: str | None, fingerprint: str) -> bool:
    """Equal content hashes (the last part of a fingerprint), whatever the size and time."""
    return stored is not None and stored.rsplit(":", 1)[-1] == fingerprint.rsplit(":", 1)[-1]


def _resume_at(current: Any, name: str, fingerprint: str) -> int:
    """Records of this file already committed, per the incoming state."""
    if (
        isinstance(current, dict)
        and current.get("file") == name
        and _same_content(current.get("fingerprint"), fingerprint)
    ):
        return int(current.get("records", 0))
    return 0


def _read_file(
    path: Path,
    name: str,
    fingerprint: str,
    skip: int,
    options: Mapping[str, Any],
    done: dict[str, str],
) -> Iterator[Batch]:
    batch_size = int(options.get("batch_size", DEFAULT_BATCH_SIZE))
    records: list[dict[str, Any]] = []
    rejected: list[Rejected] = []
    position = skip
    for item in read_items(path, options, skip):
        position += 1
        if isinstance(item, Rejected):
            rejected.append(item)
        else:
            records.append(item)
        if len(records) + len(rejected) >= batch_size:
            current = {"file": name, "fingerprint": fingerprint, "records": position}
            yield Batch(records, {"done": dict(done), "current": current}, rejected)
            records, rejected = [], []
    finished = dict(done)
    finished[name] = fingerprint
    yield Batch(records, {"done": finished}, rejected)


# --- the local drop folder ----------------------------------------------------------------


class LocalSession:
    """A drop folder on this machine: globbed, hashed, read in place."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def entries(self, pattern: str, archive: str | None) -> list[DropEntry]:
        """Regular files matching the glob inside the folder; links out are not followed."""
        return [DropEntry(p.name, _content_hash(p), p) for p in self._files(pattern, archive)]

    def matching(self, pattern: str, archive: str | None) -> int:
        """How many files `entries` would give; none of them read (hashed)."""
        return len(self._files(pattern, archive))

    def listed(self) -> str:
        """The folder and how many entries it holds."""
        return f"folder {self.folder} readable, {sum(1 for _ in self.folder.iterdir())} entries"

    def _files(self, pattern: str, archive: str | None) -> list[Path]:
        if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
            raise FatalSourceError(f"file pattern {pattern!r} must stay inside {self.folder}")
        archived = (self.folder / archive).resolve() if archive else None
        found = []
        for path in sorted(self.folder.glob(pattern)):
            resolved = path.resolve()
            # A symlink out of the drop folder is refused, not followed.
            if not (path.is_file() and resolved.is_relative_to(self.folder)):
                continue
            if archived is not None and resolved.is_relative_to(archived):
                continue
            found.append(path)
        return found

    @contextmanager
    def fetch(self, entry: DropEntry) -> Iterator[tuple[Path, str]]:
        """The file itself: it is local already."""
        yield entry.handle, entry.listed

    def archive(self, entry: DropEntry, folder: str) -> str:
        """Move the file into the archive folder (created if missing), never overwriting."""
        target = (self.folder / folder).resolve()
        if not target.is_relative_to(self.folder) or target == self.folder:
            raise FatalSourceError(f"archive folder {folder!r} leads out of {self.folder}")
        try:
            target.mkdir(parents=True, exist_ok=True)
            name = free_name({p.name for p in target.iterdir()}, entry.name)
            Path(entry.handle).rename(target / name)
        except OSError as exc:
            raise FatalSourceError(f"cannot archive {entry.name}: {exc.strerror}") from exc
        return f"{folder}/{name}"


@contextmanager
def _local_session(folder: Path) -> Iterator[LocalSession]:
    if not folder.is_dir():
        raise FatalSourceError(f"folder {folder} does not exist")
    yield LocalSession(folder)


def _content_hash(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- the SFTP drop folder -----------------------------------------------------------------


class RemoteSession:
    """An SFTP drop: listed on the server, downloaded one file at a time, renamed there."""

    def __init__(self, sftp: SftpSession) -> None:
        self.sftp = sftp

    def entries(self, pattern: str, archive: str | None) -> list[DropEntry]:
        """Matching regular files of the remote folder (the archive is a subfolder)."""
        return [DropEntry(f.name, f.listed, f) for f in self.sftp.files(pattern)]

    def matching(self, pattern: str, archive: str | None) -> int:
        """How many files `entries` would give (a listing: nothing is downloaded)."""
        return len(self.sftp.files(pattern))

    def listed(self) -> str:
        """The remote folder and how many entries it holds."""
        return f"{self.sftp.drop.where} readable, {self.sftp.count()} entries"

    @contextmanager
    def fetch(self, entry: DropEntry) -> Iterator[tuple[Path, str]]:
        """A downloaded copy, removed again once read."""
        local, fingerprint = self.sftp.download(entry.handle)
        try:
            yield local, fingerprint
        finally:
            self.sftp.discard(local)

    def archive(self, entry: DropEntry, folder: str) -> str:
        """Rename the file into the archive folder on the server."""
        remote: RemoteFile = entry.handle
        return self.sftp.archive(remote, folder)


@contextmanager
def _remote_session(drop: SftpDrop) -> Iterator[RemoteSession]:
    with drop.session() as session:
        yield RemoteSession(session)
