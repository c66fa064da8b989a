"""Named attacks on the XLSX reader: zip bombs, forged sheet sizes, and climbing member names.

An XLSX file is a zip of XML parts. The reader measures the archive from its central
directory before anything is unzipped (check_zip_size), reads rows no wider than the header
needs, and never extracts a member to disk.
"""

from __future__ import annotations

import io
import struct
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest

from connectors.file_formats import DEFAULT_MAX_UNCOMPRESSED, XLSX_MAX_ROWS, read_items
from islandhub.errors import FatalSourceError
from tests.hostile.harness import ISLANDS, MAPPING, Hub

SHEET = "xl/worksheets/sheet1.xml"
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
Writer = Callable[[zipfile.ZipFile, zipfile.ZipInfo], None]


def workbook(rows: list[list[object]]) -> bytes:
    """A real workbook written by openpyxl."""
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def replace_part(data: bytes, name: str, write: Writer) -> bytes:
    """The workbook with one part's content replaced; `write(zip, info)` writes the new one."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            if info.filename == name:
                write(target, info)
            else:
                target.writestr(info, source.read(info.filename))
    return out.getvalue()


def declare_size(data: bytes, name: str, size: int) -> bytes:
    """The archive with `name`'s uncompressed size rewritten in both of its headers.

    Central directory entry: size at offset 24, name length at 28, local header offset at
    42, name at 46. Local header: size at offset 22.
    """
    buffer = bytearray(data)
    wanted = name.encode()
    at = buffer.find(b"PK\x01\x02")
    while at != -1:
        length = int.from_bytes(buffer[at + 28 : at + 30], "little")
        if buffer[at + 46 : at + 46 + length] == wanted:
            struct.pack_into("<I", buffer, at + 24, size)
            local = int.from_bytes(buffer[at + 42 : at + 46], "little")
            struct.pack_into("<I", buffer, local + 22, size)
        at = buffer.find(b"PK\x01\x02", at + 4)
    return bytes(buffer)


def streamed(name: str) -> zipfile.ZipInfo:
    """A deflated member written as a stream: 100 MB never sit in memory."""
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def padded_sheet(padding: int) -> Writer:
    """A writer of a valid sheet carrying `padding` bytes of comment, streamed (never held)."""

    def write(target: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
        with target.open(streamed(info.filename), "w") as part:
            part.write(f'<worksheet xmlns="{MAIN}"><!--'.encode())
            chunk = b"A" * (1 << 20)
            for _ in range(padding >> 20):
                part.write(chunk)
            part.write(b'--><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>id</t>')
            part.write(b"</is></c></row></sheetData></worksheet>")

    return write


def peak_memory_of_reading(path: Path, options: dict[str, object]) -> tuple[int, str]:
    """Peak traced memory while the reader refuses the file, and its message."""
    tracemalloc.start()
    try:
        with pytest.raises(FatalSourceError) as refused:
            list(read_items(path, options))
        return tracemalloc.get_traced_memory()[1], str(refused.value)
    finally:
        tracemalloc.stop()


def test_a_zip_bomb_is_refused_by_its_compression_ratio(hub: Hub) -> None:
    # 20 MB of sheet in about 20 kB: under the size limit, far over the ratio limit.
    bomb = replace_part(workbook([["id"], [1]]), SHEET, padded_sheet(20 << 20))
    assert len(bomb) < 100_000
    outcome = hub.sync("xlsx", {"export.xlsx": bomb})
    assert outcome.result.status == "failed"
    assert "looks like a zip bomb" in (outcome.result.error or "")
    assert "max_compression_ratio" in (outcome.result.error or "")
    assert outcome.stored.landed == {} and outcome.stored.quarantined == {}
    (hub.root / "bomb.xlsx").write_bytes(bomb)
    peak, _ = peak_memory_of_reading(hub.root / "bomb.xlsx", {"format": "xlsx"})
    assert peak < 2_000_000, peak  # refused from the central directory, nothing inflated


def test_a_zip_bomb_is_refused_by_its_unpacked_size(hub: Hub) -> None:
    # Declared bigger than max_uncompressed_bytes (200 MB by default): refused unread.
    data = workbook([["id", "name"], [1, "Anna Virtanen"]])
    bomb = declare_size(data, SHEET, DEFAULT_MAX_UNCOMPRESSED + 1)
    outcome = hub.sync("xlsx", {"export.xlsx": bomb})
    assert outcome.result.status == "failed"
    assert "max_uncompressed_bytes" in (outcome.result.error or "")
    assert outcome.stored.landed == {}


def test_a_zip_bomb_that_lies_about_its_size_is_cut_at_the_size_it_declares(hub: Hub) -> None:
    # 100 MB of sheet declared as 2 kB: the size and ratio checks pass, but zipfile stops the
    # part at its declared size and fails its CRC; nothing near 100 MB is ever inflated.
    bomb = replace_part(workbook([["id"], [1]]), SHEET, padded_sheet(100 << 20))
    bomb = declare_size(bomb, SHEET, 2048)
    (hub.root / "liar.xlsx").write_bytes(bomb)
    peak, message = peak_memory_of_reading(hub.root / "liar.xlsx", {"format": "xlsx"})
    assert "corrupt XLSX workbook" in message or "not a readable XLSX" in message
    assert peak < 10_000_000, peak
    outcome = hub.sync("xlsx", {"export.xlsx": bomb})
    assert outcome.result.status == "failed"
    assert outcome.stored.landed == {}


def forged_sheet(rows: int, dimension: str, last_row: int | None = None) -> Writer:
    """A sheet that declares `dimension`, with a cell at column XFD on every other row and
    one just right of the header (column C) on every fifth."""

    def write(target: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
        with target.open(streamed(info.filename), "w") as part:
            part.write(
                f'<worksheet xmlns="{MAIN}"><dimension ref="{dimension}"/><sheetData>'.encode()
            )
            part.write(b'<row r="1"><c r="A1" t="inlineStr"><is><t>id</t></is></c>')
            part.write(b'<c r="B1" t="inlineStr"><is><t>name</t></is></c></row>')
            for r in range(2, rows + 2):
                cells = (
                    f'<c r="A{r}"><v>{r}</v></c><c r="B{r}" t="inlineStr"><is><t>A B</t></is></c>'
                )
                near = f'<c r="C{r}"><v>3</v></c>' if r % 5 == 0 else ""
                far = f'<c r="XFD{r}"><v>1</v></c>' if r % 2 else ""
                part.write(f'<row r="{r}">{cells}{near}{far}</row>'.encode())
            if last_row is not None:
                part.write(f'<row r="{last_row}"><c r="A{last_row}"><v>1</v></c></row>'.encode())
            part.write(b"</sheetData></worksheet>")

    return write


def test_forged_sheet_dimensions_cost_nothing(hub: Hub) -> None:
    # `A1:XFD1048576` and a cell at column XFD on every other row made openpyxl pad each of
    # these 20,000 rows to 16,384 cells: minutes of CPU from a 300 kB file. Now a row is read
    # only a little wider than the header: a cell just past it still rejects the row with
    # its reason, one thousands of columns away has no column to belong to and is ignored.
    rows = 20_000
    data = replace_part(workbook([["id"]]), SHEET, forged_sheet(rows, "A1:XFD1048576"))
    (hub.root / "wide.xlsx").write_bytes(data)
    began = time.process_time()  # CPU time: other processes on the machine do not count
    items = list(read_items(hub.root / "wide.xlsx", {"format": "xlsx"}))
    assert time.process_time() - began < 15
    assert len(items) == rows
    rejected = [i for i in items if not isinstance(i, dict)]
    assert len(rejected) == rows // 5
    assert {r.reason for r in rejected} == {"expected 2 columns, found 3"}
    assert all(set(i) == {"id", "name"} for i in items if isinstance(i, dict))


def test_a_row_numbered_past_excels_last_row_is_refused(hub: Hub) -> None:
    # openpyxl yields an empty row for every number skipped: row 2,000,000,000 would be
    # two billion of them.
    sheet = forged_sheet(3, "A1:B4", last_row=2_000_000_000)
    data = replace_part(workbook([["id"]]), SHEET, sheet)
    outcome = hub.sync("xlsx", {"export.xlsx": data})
    assert outcome.result.status == "failed"
    assert f"past Excel's last row ({XLSX_MAX_ROWS})" in (outcome.result.error or "")


def test_a_header_of_16384_columns_is_refused(hub: Hub) -> None:
    # One header cell at XFD1 would make every record a dict of 16,384 keys.
    def write(target: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
        target.writestr(
            info.filename,
            f'<worksheet xmlns="{MAIN}"><sheetData><row r="1">'
            '<c r="A1" t="inlineStr"><is><t>id</t></is></c><c r="XFD1"><v>1</v></c></row>'
            '<row r="2"><c r="A2"><v>1</v></c></row></sheetData></worksheet>',
        )

    outcome = hub.sync("xlsx", {"export.xlsx": replace_part(workbook([["id"]]), SHEET, write)})
    assert outcome.result.status == "failed"
    assert "header row is 16384 columns wide" in (outcome.result.error or "")


CLIMBING = ("../../../../../{target}", "/{target}", "..\\..\\{target}", "xl/../../../{target}")


def test_zip_member_names_that_climb_out_are_never_written(hub: Hub, tmp_path: Path) -> None:
    # A zip-slip archive: extracting it naively would write outside the folder. The reader
    # reads members in memory and never extracts, so the workbook reads as usual.
    target = tmp_path / "escaped" / "pwned.txt"
    buffer = io.BytesIO(workbook([["id", "name"], ["1", "Anna Virtanen"]]))
    with zipfile.ZipFile(buffer, "a") as archive:
        for name in CLIMBING:
            archive.writestr(name.format(target=str(target).lstrip("/")), "pwned")
        archive.writestr("xl/worksheets/../../../../escaped.xml", "<x/>")
    data = buffer.getvalue()
    outcome = hub.sync("xlsx", {"export.xlsx": data})
    assert outcome.result.status == "succeeded"
    assert outcome.stored.landed == {"1": "mapped"}
    assert not target.exists()
    assert sorted(p.name for p in (hub.root / "drops" / "xlsx").iterdir()) == ["export.xlsx"]


def test_an_external_entity_inside_a_sheet_is_refused(hub: Hub, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-55aa\n")

    def write(target: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
        target.writestr(
            info.filename,
            f'<!DOCTYPE worksheet [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>'
            f'<worksheet xmlns="{MAIN}"><sheetData><row r="1">'
            '<c r="A1" t="inlineStr"><is><t>id</t></is></c></row><row r="2">'
            '<c r="A2" t="inlineStr"><is><t>&xxe;</t></is></c></row></sheetData></worksheet>',
        )

    data = replace_part(workbook([["id"]]), SHEET, write)
    outcome = hub.sync("xlsx", {"export.xlsx": data}, keep=True)
    assert outcome.result.status == "failed"
    assert outcome.path is not None
    assert b"TOP-SECRET-55aa" not in outcome.path.read_bytes()
    assert "TOP-SECRET-55aa" not in (outcome.result.error or "")


def test_the_size_limits_are_the_streams_to_set(tmp_path: Path, store_template: Path) -> None:
    # A stream can lower max_uncompressed_bytes: 5 MB of padding against a 1 MB limit.
    body = ISLANDS["xlsx"].replace(
        "batch_size: 3", "batch_size: 3, max_uncompressed_bytes: 1000000"
    )
    own = Hub.create(
        tmp_path / "p", store_template, {"xlsx": (body, MAPPING.format(system="xlsx"))}
    )
    bomb = replace_part(workbook([["id"], [1]]), SHEET, padded_sheet(5 << 20))
    outcome = own.sync("xlsx", {"export.xlsx": bomb})
    assert outcome.result.status == "failed"
    assert "more than max_uncompressed_bytes (1000000)" in (outcome.result.error or "")
