"""The files connector: exports dropped in a folder (CSV, JSON, JSON Lines), read incrementally.

Municipal systems often hand over a nightly export instead of an API. Each file is
fingerprinted by its content; a file already read with the same fingerprint is skipped, and
a file read half way (a crash) resumes after the last committed record.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from connectors.base import Batch, CheckResult, Connector, Rejected, State
from islandhub.errors import FatalSourceError
from islandhub.privacy.masking import mask_text

DEFAULT_BATCH_SIZE = 5000
EXCERPT_CHARS = 120


class FilesConnector(Connector):
    """Reads export files from a local folder; paths never leave that folder."""

    kind = "files"
    connection_schema = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "folder the island drops its exports in"},
        },
        "required": ["path"],
        "additionalProperties": False,
    }
    stream_schema = {
        "type": "object",
        "properties": {
            "files": {"type": "string", "description": "glob of the files, e.g. pupils_*.csv"},
            "format": {"enum": ["csv", "json", "jsonl"]},
            "delimiter": {"type": "string", "minLength": 1, "maxLength": 1},
            "quotechar": {"type": "string", "minLength": 1, "maxLength": 1},
            "encoding": {"type": "string"},
            "records": {"type": "string", "description": "dotted path to the record list in JSON"},
            "batch_size": {"type": "integer", "minimum": 1, "maximum": 1000000},
        },
        "required": ["files", "format"],
        "additionalProperties": False,
    }

    def __init__(self, system: str, connection: Any, streams: Any, *, root: Path | None = None):
        super().__init__(system, connection, streams, root=root)
        folder = Path(str(connection["path"]))
        if not folder.is_absolute() and root is not None:
            folder = root / folder
        self.folder = folder.resolve()

    def check(self) -> CheckResult:
        """The folder exists and can be listed."""
        if not self.folder.is_dir():
            return CheckResult(False, f"folder {self.folder} does not exist")
        count = sum(1 for _ in self.folder.iterdir())
        return CheckResult(True, f"folder {self.folder} readable, {count} entries")

    def pull(self, stream: str, state: State | None) -> Iterator[Batch]:
        """Yield batches of every new or changed file, oldest name first."""
        options = self.stream_specs[stream].options
        batch_size = int(options.get("batch_size", DEFAULT_BATCH_SIZE))
        state = dict(state or {})
        done: dict[str, str] = dict(state.get("done", {}))
        current = state.get("current")
        paths = self._matching_files(str(options["files"]))
        # Forget files that are gone, so the state does not grow forever.
        done = {name: fp for name, fp in done.items() if name in {p.name for p in paths}}
        for path in paths:
            fingerprint = _fingerprint(path)
            if done.get(path.name) == fingerprint:
                continue
            skip = 0
            if (
                current
                and current.get("file") == path.name
                and current.get("fingerprint") == fingerprint
            ):
                skip = int(current.get("records", 0))
            yield from self._read_file(path, fingerprint, skip, batch_size, options, done)
            done[path.name] = fingerprint
        yield Batch(records=[], state={"done": done})

    def _matching_files(self, pattern: str) -> list[Path]:
        if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
            raise FatalSourceError(f"file pattern {pattern!r} must stay inside {self.folder}")
        if not self.folder.is_dir():
            raise FatalSourceError(f"folder {self.folder} does not exist")
        paths = []
        for path in sorted(self.folder.glob(pattern)):
            resolved = path.resolve()
            # A symlink out of the drop folder is refused, not followed.
            if path.is_file() and resolved.is_relative_to(self.folder):
                paths.append(path)
        return paths

    def _read_file(
        self,
        path: Path,
        fingerprint: str,
        skip: int,
        batch_size: int,
        options: Any,
        done: dict[str, str],
    ) -> Iterator[Batch]:
        records: list[dict[str, Any]] = []
        rejected: list[Rejected] = []
        position = skip
        for item in _items(path, options, skip):
            position += 1
            if isinstance(item, Rejected):
                rejected.append(item)
            else:
                records.append(item)
            if len(records) + len(rejected) >= batch_size:
                current = {"file": path.name, "fingerprint": fingerprint, "records": position}
                yield Batch(records, {"done": dict(done), "current": current}, rejected)
                records, rejected = [], []
        finished = dict(done)
        finished[path.name] = fingerprint
        yield Batch(records, {"done": finished}, rejected)


def _fingerprint(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _items(path: Path, options: Any, skip: int) -> Iterator[dict[str, Any] | Rejected]:
    fmt = options["format"]
    encoding = options.get("encoding", "utf-8")
    try:
        if fmt == "csv":
            yield from _skip(_csv_items(path, options, encoding), skip)
        elif fmt == "jsonl":
            yield from _skip(_jsonl_items(path, encoding), skip)
        else:
            yield from _skip(_json_items(path, options, encoding), skip)
    except UnicodeDecodeError as exc:
        raise FatalSourceError(
            f"{path.name}: cannot decode byte {exc.start} as {encoding}: set `encoding` "
            "on the stream (exports from Windows systems are often cp1252)"
        ) from exc


def _skip(items: Iterable[Any], skip: int) -> Iterator[Any]:
    for index, item in enumerate(items):
        if index >= skip:
            yield item


def _csv_items(path: Path, options: Any, encoding: str) -> Iterator[dict[str, Any] | Rejected]:
    delimiter = options.get("delimiter", ",")
    quotechar = options.get("quotechar", '"')
    with path.open("r", encoding=encoding, newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter, quotechar=quotechar)
        try:
            header = next(reader)
        except StopIteration:
            return
        if header and header[0].startswith("\ufeff"):
            header[0] = header[0][1:]
        width = len(header)
        try:
            for row in reader:
                if len(row) == width:
                    yield dict(zip(header, row, strict=True))
                elif not row:
                    continue
                else:
                    excerpt = mask_text(delimiter.join(row))[:EXCERPT_CHARS]
                    reason = f"expected {width} columns, found {len(row)}"
                    yield Rejected(reason, excerpt, f"{path.name}:{reader.line_num}")
        except csv.Error as exc:
            raise FatalSourceError(f"{path.name}:{reader.line_num}: unreadable CSV: {exc}") from exc


def _jsonl_items(path: Path, encoding: str) -> Iterator[dict[str, Any] | Rejected]:
    with path.open("r", encoding=encoding) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path.name}:{number}"
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                yield Rejected(f"not JSON: {exc.msg}", mask_text(line)[:EXCERPT_CHARS], where)
                continue
            if isinstance(value, dict):
                yield value
            else:
                yield Rejected("not a JSON object", mask_text(line)[:EXCERPT_CHARS], where)


def _json_items(path: Path, options: Any, encoding: str) -> Iterator[dict[str, Any] | Rejected]:
    text = path.read_text(encoding=encoding)
    try:
        document = json.load(io.StringIO(text))
    except json.JSONDecodeError as exc:
        raise FatalSourceError(
            f"{path.name}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}"
        ) from exc
    records: Any = document
    for key in filter(None, str(options.get("records", "")).split(".")):
        records = records.get(key) if isinstance(records, dict) else None
    if not isinstance(records, list):
        where = options.get("records") or "the top level"
        raise FatalSourceError(f"{path.name}: expected a list of records at {where}")
    for index, value in enumerate(records):
        if isinstance(value, dict):
            yield value
        else:
            excerpt = mask_text(json.dumps(value))[:EXCERPT_CHARS]
            yield Rejected("not a JSON object", excerpt, f"{path.name}[{index}]")
