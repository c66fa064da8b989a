"""Property: every parser turns any file into records and reasoned rejects, or a clear error.

The pipeline fuzz (test_fuzz_pipeline.py) pays for a store and a quality check per example;
this one calls the connectors and the landing's `prepare` (hash and map, no store) directly,
so it affords many more examples of each format. It also checks what only a direct call can
see: resuming from the state after any batch yields exactly the items after that batch.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from hypothesis import event, example, given, settings

from connectors.base import Batch, Rejected, StreamSpec
from connectors.files import FilesConnector
from connectors.ics import IcsConnector
from islandhub.errors import SourceError
from islandhub.landing import prepare
from islandhub.mapping import Mapping
from islandhub.yamlsource import parse_yaml
from tests.hostile.harness import FUZZ, MAPPING
from tests.hostile.strategies import (
    csv_files,
    hostile_files,
    ics_files,
    json_files,
    jsonl_files,
    rezip,
    xlsx_files,
    xml_files,
)

MANY = settings(FUZZ, max_examples=80)
PEOPLE = Mapping.from_spec(parse_yaml(MAPPING.format(system="drop"), "people.yaml").data)
OPTIONS: dict[str, dict[str, Any]] = {
    "csv": {"format": "csv", "encoding": "auto"},
    "json": {"format": "json", "records": "data"},
    "jsonl": {"format": "jsonl"},
    "xlsx": {"format": "xlsx"},
    "xml": {"format": "xml", "record_path": "export/person", "repeated": ["phone"]},
}


# Broken workbooks make openpyxl warn (a date cell holding inf, a missing style); what
# matters here is what the hub does next, not the library's warnings.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:openpyxl.*")


def pull(folder: Path, file_format: str, content: bytes, state: Any = None) -> list[Batch] | None:
    """Every batch of the file, or None when the connector refused it with a source error."""
    for old in folder.iterdir():
        old.unlink()
    (folder / f"export.{file_format}").write_bytes(content)
    spec = {"files": "*", "batch_size": 2, **OPTIONS[file_format]}
    connector = FilesConnector("drop", {"path": str(folder)}, {"s": StreamSpec("s", spec)})
    try:
        return list(connector.pull("s", state))
    except SourceError as exc:
        assert str(exc).strip(), "a refusal says why"
        return None


def items(batches: list[Batch]) -> list[str]:
    """The records and rejects of the batches, in order, as text to compare (NaN != NaN)."""
    return [_text(item) for b in batches for item in (*b.rejected, *b.records)]


def _text(item: Any) -> str:
    try:
        return ascii(item)
    except RecursionError:  # an XML record nested nearly as deep as recursion allows
        return "<deep>"


def check_items(batches: list[Batch]) -> None:
    """Records are objects; a reject says why and where."""
    for batch in batches:
        assert all(isinstance(record, dict) for record in batch.records)
        for rejected in batch.rejected:
            assert isinstance(rejected, Rejected)
            assert rejected.reason.strip() and rejected.position.strip(), rejected


def check_prepared(batches: list[Batch]) -> None:
    """Hashing and mapping each batch accounts for every item it holds."""
    for batch in batches:
        prepared = prepare(batch, PEOPLE)
        accounted = (
            len(prepared.items)
            + len(prepared.no_id)
            + len(prepared.rejected)
            + prepared.superseded_mapped
            + prepared.superseded_quarantined
        )
        assert accounted == prepared.pulled == len(batch.records) + len(batch.rejected)
        for item in prepared.items:
            assert (item.fields is None) == bool(item.reasons), item
            assert all(reason.strip() for reason in item.reasons), item


def check_resumes(folder: Path, file_format: str, content: bytes, batches: list[Batch]) -> None:
    """From the state after batch k, a pull yields exactly the items of the batches after k."""
    everything = items(batches)
    seen = 0
    for batch in batches[:-1]:
        seen += len(batch.records) + len(batch.rejected)
        rest = pull(folder, file_format, content, batch.state)
        assert rest is not None
        assert items(rest) == everything[seen:]


# --- what these properties found, kept as examples: each was a traceback or a hang ---------


def _workbook() -> bytes:
    book = openpyxl.Workbook()
    book.active.append(["id", "name"])
    book.active.append([1, "Anna Virtanen"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


WORKBOOK = _workbook()
CALENDAR = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:a@x\r\n{}END:VEVENT\r\nEND:VCALENDAR\r\n"
)
NOW = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def event_with(*lines: str) -> bytes:
    """A feed of one VEVENT starting now, with `lines` added."""
    return CALENDAR.format("".join(f"{line}\r\n" for line in (f"DTSTART:{NOW}", *lines))).encode()


def run(folder: Path, file_format: str, content: bytes) -> None:
    batches = pull(folder, file_format, content)
    if batches is None:
        event("file refused")
        return
    event(f"file read: {'records' if any(b.records for b in batches) else 'no records'}")
    check_items(batches)
    check_prepared(batches)
    check_resumes(folder, file_format, content, batches)


@MANY
@given(hostile_files(csv_files(delimiter=",")))
def test_csv(tmp_path: Path, content: bytes) -> None:
    run(tmp_path, "csv", content)


@MANY
@given(hostile_files(jsonl_files()))
@example(content=b"[" * 5000 + b"]" * 5000)  # RecursionError
@example(content=b'{"id": 1, "n": ' + b"9" * 5000 + b"}")  # ValueError: 4300 digits
@example(content=b'{"id": "1", "name": "A B", "n": 1' + b"0" * 30 + b"}")  # orjson: 64 bits
@example(content=b'{"id": "\\ud800", "name": "A B"}')  # orjson: a lone surrogate
def test_json_lines(tmp_path: Path, content: bytes) -> None:
    run(tmp_path, "jsonl", content)


@MANY
@given(hostile_files(json_files()))
@example(content=b'{"data": ' + b"[" * 5000 + b"]" * 5000 + b"}")  # RecursionError
@example(content=b'{"data": [{"id": 1, "n": ' + b"9" * 5000 + b"}]}")  # 4300 digits
def test_json(tmp_path: Path, content: bytes) -> None:
    run(tmp_path, "json", content)


@MANY
@given(hostile_files(xml_files()))
@example(content=b"<export><person>" + b"<a>" * 3000 + b"</a>" * 3000 + b"</person></export>")
@example(content=b'<?xml version="1.0" encoding="nonsense"?><export/>')  # LookupError
def test_xml(tmp_path: Path, content: bytes) -> None:
    run(tmp_path, "xml", content)


@MANY
@given(hostile_files(xlsx_files()))
@example(content=rezip(WORKBOOK, "garble_sheet"))  # ParseError while reading rows
@example(content=rezip(WORKBOOK, "huge_number"))  # ValueError: 4300 digits
def test_xlsx(tmp_path: Path, content: bytes) -> None:
    run(tmp_path, "xlsx", content)


@MANY
@given(hostile_files(ics_files()))
@example(content=event_with("RRULE:FREQ=SECONDLY"))  # hours of expansion, gigabytes
@example(content=event_with("DURATION:P99999999D"))  # OverflowError
@example(content=event_with("DTEND:20990101T000000Z", "DTEND:20990101T010000Z"))  # a list
@example(content=event_with("SEQUENCE:1", "SEQUENCE:2"))  # int() of a list
def test_ics(tmp_path: Path, content: bytes) -> None:
    # The feed is read whole each time: its state is what it has seen, not a position.
    (tmp_path / "calendar.ics").write_bytes(content)
    spec = StreamSpec("s", {"batch_size": 2})
    connector = IcsConnector("hall", {"path": "calendar.ics"}, {"s": spec}, root=tmp_path)
    try:
        batches = list(connector.pull("s", None))
    except SourceError as exc:
        assert str(exc).strip()
        return
    check_items(batches)
    for record in (r for b in batches for r in b.records):
        assert record["key"] and record["uid"] and record["start"], record
    again = list(connector.pull("s", batches[-1].state))
    assert items(again) == [], "a feed read twice reports nothing new"


@pytest.mark.parametrize(
    ("encoding", "content", "message"),
    [
        ("nonsense", b"id\n1\n", "'nonsense' is not a text encoding"),  # was LookupError
        ("base64", b"id\n1\n", "'base64' is not a text encoding"),
        ("utf-16", b"id\n1\n", "cannot decode the file as utf-16"),  # UnicodeError, no BOM
    ],
)
def test_an_encoding_that_cannot_read_the_file_fails_clearly(
    tmp_path: Path, encoding: str, content: bytes, message: str
) -> None:
    (tmp_path / "export.csv").write_bytes(content)
    spec = StreamSpec("s", {"files": "*", "format": "csv", "encoding": encoding})
    connector = FilesConnector("drop", {"path": str(tmp_path)}, {"s": spec})
    with pytest.raises(SourceError, match=message):
        list(connector.pull("s", None))
