"""Readers for the export formats the files connector understands: CSV, JSON, JSONL, XLSX, XML.

Each reader turns one local file into records (dicts) and `Rejected` rows, in file order, so
that the connector can resume after the n-th item. Hostile files are refused before they can
cost memory: XLSX archives are measured before they are unzipped, XML with a DTD or entities
is refused outright (exports never need them).
"""

from __future__ import annotations

import codecs
import csv
import datetime
import io
import itertools
import json
import logging
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as safe_xml
import openpyxl
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException

from connectors.base import Rejected
from islandhub.errors import FatalSourceError
from islandhub.privacy.masking import mask_text

log = logging.getLogger(__name__)

EXCERPT_CHARS = 120
AUTO = "auto"
#: Tried in this order by `encoding: auto`; latin-1 decodes anything, so it is the last resort.
AUTO_ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")
SAMPLE_BYTES = 64 * 1024
DEFAULT_MAX_UNCOMPRESSED = 200 * 1024 * 1024
DEFAULT_MAX_RATIO = 100
# Below this many uncompressed bytes an archive cannot hurt, whatever its ratio.
RATIO_FLOOR = 1024 * 1024
FORMATS = ("csv", "json", "jsonl", "xlsx", "xml")
#: Excel's own limits: a row number past the last row is a forged sheet, not an export.
XLSX_MAX_ROWS = 1_048_576
#: Header columns read at most. Every record gets a key per header column, so one forged
#: header cell at column XFD would make each 40-byte row a record of 16,384 keys.
XLSX_MAX_COLUMNS = 1000
#: Cells read past the header's width: enough to reject a wider row with its true width
#: (up to this), while a forged cell at column XFD costs nothing.
XLSX_EXTRA_COLUMNS = 100
#: What openpyxl raises on a damaged workbook, whether it shows when opened or when read.
XLSX_DAMAGED = (
    zipfile.BadZipFile,
    zlib.error,  # a damaged deflate stream
    EOFError,
    KeyError,
    ValueError,
    TypeError,
    IndexError,
    OSError,
    ParseError,
    InvalidFileException,
)

Item = dict[str, Any] | Rejected
Reader = Callable[[Path, Mapping[str, Any]], Iterator[Item]]


def read_items(path: Path, options: Mapping[str, Any], skip: int = 0) -> Iterator[Item]:
    """Records and rejected rows of one file, after the first `skip` of them."""
    reader = READERS[str(options["format"])]
    for index, item in enumerate(reader(path, options)):
        if index >= skip:
            yield item


# --- text encodings -----------------------------------------------------------------------


def text_encoding(path: Path, options: Mapping[str, Any]) -> str:
    """The encoding to read `path` with: the configured one, or detected for `auto`."""
    encoding = str(options.get("encoding", "utf-8"))
    if encoding.lower() != AUTO:
        try:
            # Unknown names, and codecs that are not text encodings (base64), fail here.
            io.TextIOWrapper(io.BytesIO(), encoding=encoding)
        except LookupError:
            raise FatalSourceError(
                f"{path.name}: {encoding!r} is not a text encoding: set `encoding` to one "
                "like utf-8, cp1252 or latin-1, or to `auto`"
            ) from None
        _refuse_utf8_read_as_another(path, encoding)
        return encoding
    detected = detect_encoding(path)
    log.info("%s: encoding detected as %s", path.name, detected)
    return detected


def _refuse_utf8_read_as_another(path: Path, encoding: str) -> None:
    """A file that says it is UTF-8 (its byte-order mark), configured as another encoding.

    Read as cp1252 every record would fail: the mark glued to the first column's name ("ï»¿id")
    leaves each record without its id, and every ä comes out as "Ã¤".
    """
    if codecs.lookup(encoding).name in ("utf-8", "utf-8-sig"):
        return
    with path.open("rb") as handle:
        if handle.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8:
            raise FatalSourceError(
                f"{path.name}: starts with a UTF-8 byte-order mark, but the stream reads it as "
                f"{encoding}: set `encoding: utf-8` (or `auto`) on the stream"
            )


def detect_encoding(path: Path) -> str:
    """The first of utf-8 (with or without BOM), cp1252, latin-1 that decodes the whole file.

    A sample rules out the wrong candidates cheaply; the winner is then validated on the
    whole file. cp1252 is preferred over latin-1 (Windows exports), unless the file holds
    one of the bytes cp1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D): Python's cp1252
    codec refuses those, so the file falls through to latin-1.
    """
    with path.open("rb") as handle:
        sample = handle.read(SAMPLE_BYTES)
    for candidate in AUTO_ENCODINGS:
        if _decodes(candidate, [sample], final=False) and _decodes_file(candidate, path):
            if candidate == "utf-8-sig" and not sample.startswith(codecs.BOM_UTF8):
                return "utf-8"
            return candidate
    return AUTO_ENCODINGS[-1]  # unreachable: latin-1 decodes any byte


def _decodes(encoding: str, chunks: Iterable[bytes], *, final: bool) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        for chunk in chunks:
            decoder.decode(chunk)
        decoder.decode(b"", final=final)
    except UnicodeDecodeError:
        return False
    return True


def _decodes_file(encoding: str, path: Path) -> bool:
    with path.open("rb") as handle:
        return _decodes(encoding, iter(lambda: handle.read(1 << 20), b""), final=True)


def _decode_error(path: Path, encoding: str, exc: UnicodeError) -> FatalSourceError:
    # Not every UnicodeError has a position: utf-16 without a BOM fails before any byte.
    start = getattr(exc, "start", None)
    where = f"byte {start}" if isinstance(start, int) else "the file"
    return FatalSourceError(
        f"{path.name}: cannot decode {where} as {encoding}: set `encoding` "
        "on the stream (exports from Windows systems are often cp1252; `auto` detects it)"
    )


# --- CSV, JSON, JSON Lines ----------------------------------------------------------------


def csv_items(path: Path, options: Mapping[str, Any]) -> Iterator[Item]:
    """Rows of a CSV file as dicts keyed by its header; a row of the wrong width is rejected."""
    encoding = text_encoding(path, options)
    try:
        yield from _csv_rows(path, options, encoding)
    except UnicodeError as exc:
        raise _decode_error(path, encoding, exc) from exc


def _csv_rows(path: Path, options: Mapping[str, Any], encoding: str) -> Iterator[Item]:
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
            rows: Iterator[list[str]] = reader
            if width == 1:
                first = next(reader, None)
                _refuse_one_column_of_another_delimiter(path, header[0], first, delimiter)
                rows = itertools.chain([] if first is None else [first], reader)
            for row in rows:
                if len(row) == width:
                    yield dict(zip(header, row, strict=True))
                elif row:
                    excerpt = mask_text(delimiter.join(row))[:EXCERPT_CHARS]
                    reason = f"expected {width} columns, found {len(row)}"
                    yield Rejected(reason, excerpt, f"{path.name}:{reader.line_num}")
        except csv.Error as exc:
            raise FatalSourceError(f"{path.name}:{reader.line_num}: unreadable CSV: {exc}") from exc


# What exports are separated by; a header of one column holding one of them was split wrong.
_DELIMITERS = (";", ",", "\t", "|")


def _refuse_one_column_of_another_delimiter(
    path: Path, name: str, first: list[str] | None, delimiter: str
) -> None:
    """A file read as one column that another delimiter splits into columns: the stream's is wrong.

    Otherwise every row would land as one column, without the mapping's id, and go to
    quarantine: a run that succeeds and maps nothing. Told by the header splitting into
    names without spaces around them (`id;nimi;hetu`, not `Sukunimi, etunimi`), and the
    first row into as many cells: a real one-column file is read as it is.
    """
    if first is None or len(first) != 1:
        return
    for other in _DELIMITERS:
        names = name.split(other)
        if other == delimiter or len(names) < 2 or len(first[0].split(other)) != len(names):
            continue
        if all(n and n == n.strip() for n in names):
            raise FatalSourceError(
                f"{path.name}:1: the header is one column ({mask_text(name)[:EXCERPT_CHARS]!r}) "
                f"that {other!r} splits into {len(names)}: set `delimiter: {json.dumps(other)}` "
                f"on the stream (it reads {json.dumps(delimiter)})"
            )


def jsonl_items(path: Path, options: Mapping[str, Any]) -> Iterator[Item]:
    """One JSON object a line; blank lines skipped, other lines rejected with their number."""
    encoding = text_encoding(path, options)
    try:
        yield from _jsonl_lines(path, encoding)
    except UnicodeError as exc:
        raise _decode_error(path, encoding, exc) from exc


def _jsonl_lines(path: Path, encoding: str) -> Iterator[Item]:
    with path.open("r", encoding=encoding) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path.name}:{number}"
            try:
                value = json.loads(line)
            except (ValueError, RecursionError) as exc:
                excerpt = mask_text(line)[:EXCERPT_CHARS]
                yield Rejected(f"not JSON: {_json_problem(exc)}", excerpt, where)
                continue
            if isinstance(value, dict):
                yield value
            else:
                yield Rejected("not a JSON object", mask_text(line)[:EXCERPT_CHARS], where)


def _json_problem(exc: ValueError | RecursionError) -> str:
    """Why a JSON text was refused, short: Python's own messages run long for these two."""
    if isinstance(exc, json.JSONDecodeError):
        return exc.msg
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return "a number with too many digits"  # int() refuses over 4300 digits


def json_items(path: Path, options: Mapping[str, Any]) -> Iterator[Item]:
    """The objects of the list at `records` (a dotted path) in one JSON document."""
    encoding = text_encoding(path, options)
    try:
        text = path.read_text(encoding=encoding)
    except UnicodeError as exc:
        raise _decode_error(path, encoding, exc) from exc
    try:
        document = json.load(io.StringIO(text))
    except json.JSONDecodeError as exc:
        raise FatalSourceError(
            f"{path.name}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}"
        ) from exc
    except (ValueError, RecursionError) as exc:
        raise FatalSourceError(f"{path.name}: not JSON: {_json_problem(exc)}") from None
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


# --- XLSX ---------------------------------------------------------------------------------


def check_zip_size(path: Path, max_uncompressed: int, max_ratio: float) -> None:
    """Refuse an XLSX (a zip) that would unpack to too much, before anything unpacks it.

    The sizes come from the zip's central directory. They cannot lie to us: Python's zipfile
    (which openpyxl uses) stops every entry at its declared size and then fails its CRC.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise FatalSourceError(f"{path.name}: not an XLSX workbook ({exc})") from exc
    unpacked = sum(entry.file_size for entry in entries)
    packed = sum(entry.compress_size for entry in entries)
    if unpacked > max_uncompressed:
        raise FatalSourceError(
            f"{path.name}: refused: the workbook unpacks to {unpacked} bytes, more than "
            f"max_uncompressed_bytes ({max_uncompressed})"
        )
    if unpacked > RATIO_FLOOR and unpacked > max_ratio * max(packed, 1):
        raise FatalSourceError(
            f"{path.name}: refused: the workbook is compressed {unpacked // max(packed, 1)}x, "
            f"more than max_compression_ratio ({max_ratio}); it looks like a zip bomb"
        )


def xlsx_items(path: Path, options: Mapping[str, Any]) -> Iterator[Item]:
    """Rows of one sheet as dicts keyed by its header row; empty rows skipped."""
    check_zip_size(
        path,
        int(options.get("max_uncompressed_bytes", DEFAULT_MAX_UNCOMPRESSED)),
        float(options.get("max_compression_ratio", DEFAULT_MAX_RATIO)),
    )
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except XLSX_DAMAGED as exc:
        raise FatalSourceError(f"{path.name}: not a readable XLSX workbook ({exc})") from exc
    try:
        yield from _sheet_items(path.name, _sheet(workbook, path.name, options), options)
    except XLSX_DAMAGED as exc:  # a damaged sheet shows only when its rows are read
        raise FatalSourceError(f"{path.name}: corrupt XLSX workbook ({exc})") from exc
    finally:
        workbook.close()


def _sheet(workbook: Any, name: str, options: Mapping[str, Any]) -> Any:
    wanted = options.get("sheet", 1)
    names = list(workbook.sheetnames)
    if isinstance(wanted, int) and 1 <= wanted <= len(names):
        return workbook[names[wanted - 1]]
    if isinstance(wanted, str) and wanted in names:
        return workbook[wanted]
    raise FatalSourceError(
        f"{name}: no sheet {wanted!r} (sheets are numbered from 1); "
        f"the workbook has: {', '.join(names)}"
    )


def _sheet_items(name: str, sheet: Any, options: Mapping[str, Any]) -> Iterator[Item]:
    header_row = int(options.get("header_row", 1))
    reject_short = options.get("short_rows", "empty") == "reject"
    # The sheet's declared size is the file's word, not its content: a forged `A1:XFD1048576`
    # would pad every row to 16,384 cells. Rows are read as wide as their own cells instead,
    # and data rows no wider than the header needs.
    sheet.reset_dimensions()
    first = sheet.iter_rows(min_row=header_row, max_row=header_row, values_only=True)
    header = _header(next(first, ()))
    if not header:
        return
    width = len(header)
    if width > XLSX_MAX_COLUMNS:
        raise FatalSourceError(
            f"{name}: refused: the header row is {width} columns wide, more than "
            f"{XLSX_MAX_COLUMNS}; is row {header_row} the header (see `header_row`)?"
        )
    rows = sheet.iter_rows(
        min_row=header_row + 1, max_col=width + XLSX_EXTRA_COLUMNS + 1, values_only=True
    )
    for number, raw in enumerate(rows, start=header_row + 1):
        if number > XLSX_MAX_ROWS:
            raise FatalSourceError(
                f"{name}: refused: a row numbered past Excel's last row ({XLSX_MAX_ROWS})"
            )
        if raw.count(None) == len(raw):
            continue  # an empty row (or a gap openpyxl fills in): skipped at C speed
        row = _trimmed(raw)
        if not row:
            continue  # an empty row: spreadsheets are full of them
        if len(row) > width or (reject_short and len(row) < width):
            yield _rejected_row(name, number, row, width)
            continue
        values = [_cell(value) for value in row] + [None] * (width - len(row))
        yield dict(zip(header, values, strict=True))


def _header(row: tuple[Any, ...]) -> list[str]:
    cells = _trimmed(row)
    return [
        str(value).strip() if value not in (None, "") else get_column_letter(index)
        for index, value in enumerate(cells, start=1)
    ]


def _trimmed(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """The row without its trailing empty cells (read-only sheets pad every row)."""
    end = len(row)
    while end and row[end - 1] in (None, ""):
        end -= 1
    return row[:end]


def _rejected_row(name: str, number: int, row: tuple[Any, ...], width: int) -> Rejected:
    excerpt = mask_text(";".join("" if v is None else str(v) for v in row))[:EXCERPT_CHARS]
    found = len(row) if len(row) <= width + XLSX_EXTRA_COLUMNS else f"more than {len(row) - 1}"
    reason = f"expected {width} columns, found {found}"
    return Rejected(reason, excerpt, f"{name}:row {number}")


def _cell(value: Any) -> Any:
    """Dates and times as ISO text (a midnight timestamp is a date); numbers stay numbers."""
    if isinstance(value, datetime.datetime):
        if value.time() == datetime.time(0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return str(value)
    return value


# --- XML ----------------------------------------------------------------------------------

XML_REFUSED = "refused: the XML uses entities/DTD, which exports never need"


def xml_items(path: Path, options: Mapping[str, Any]) -> Iterator[Item]:
    """Each element at `record_path` as a dict, streamed so that big files stay small."""
    if not options.get("record_path"):
        raise FatalSourceError(f"{path.name}: set `record_path` on the stream (like lapset/lapsi)")
    wanted = [part for part in str(options["record_path"]).split("/") if part]
    always_lists = frozenset(str(p).strip("/") for p in options.get("repeated", ()))
    try:
        with path.open("rb") as handle:
            yield from _xml_records(handle, wanted, always_lists, path.name)
    except defusedxml.DefusedXmlException as exc:
        raise FatalSourceError(f"{path.name}: {XML_REFUSED}") from exc
    except ParseError as exc:
        line, column = exc.position
        raise FatalSourceError(f"{path.name}:{line}:{column}: not well-formed XML") from exc
    except LookupError as exc:  # the XML declaration names an encoding there is no codec for
        raise FatalSourceError(f"{path.name}: not readable XML: {exc}") from None


def _xml_records(
    handle: IO[bytes], wanted: list[str], always_lists: frozenset[str], name: str
) -> Iterator[Item]:
    stack: list[Element] = []
    tags: list[str] = []
    inside = 0  # depth of the record being read; 0 outside any record
    count = 0
    for event, element in safe_xml.iterparse(handle, events=("start", "end"), forbid_dtd=True):
        if event == "start":
            stack.append(element)
            tags.append(_local(element.tag))
            if not inside and _ends_with(tags, wanted):
                inside = len(stack)
            continue
        if inside == len(stack):
            inside = 0
            count += 1
            try:
                item: Item = _record(element, always_lists)
            except RecursionError:  # the parser streams any depth; turning it into a dict not
                excerpt = mask_text(f"<{_local(element.tag)}>")[:EXCERPT_CHARS]
                item = Rejected("nested too deeply", excerpt, f"{name}:record {count}")
            yield item
        if not inside and len(stack) > 1:
            # Outside a record, an ended element is never needed again: forget it, so that
            # memory stays flat however big the file.
            stack[-2].remove(element)
        stack.pop()
        tags.pop()


def _ends_with(tags: list[str], wanted: list[str]) -> bool:
    if len(tags) < len(wanted):
        return False
    tail = tags[len(tags) - len(wanted) :]
    return all(want in ("*", tag) for want, tag in zip(wanted, tail, strict=True))


def _local(name: str) -> str:
    """A tag or attribute name without its namespace: `{urn:x}lapsi` is `lapsi`."""
    return name.rsplit("}", 1)[-1]


def _record(element: Element, always_lists: frozenset[str]) -> dict[str, Any]:
    value = _element_value(element, "", always_lists)
    return value if isinstance(value, dict) else {"#text": value}


def _element_value(element: Element, path: str, always_lists: frozenset[str]) -> Any:
    """Children become keys (repeated ones a list), attributes `@name`, text `#text`.

    A leaf without attributes is just its text (None when empty). A child whose path inside
    the record is in `always_lists` is a list even when it occurs once.
    """
    result: dict[str, Any] = {f"@{_local(k)}": v for k, v in element.attrib.items()}
    for child in element:
        key = _local(child.tag)
        child_path = f"{path}/{key}" if path else key
        value = _element_value(child, child_path, always_lists)
        if key not in result:
            result[key] = [value] if child_path in always_lists else value
        elif isinstance(result[key], list):
            result[key].append(value)
        else:
            result[key] = [result[key], value]
    text = element.text.strip() if element.text and len(element) else element.text
    if not result:
        return text or None
    if text:
        result["#text"] = text
    return result


READERS: dict[str, Reader] = {
    "csv": csv_items,
    "json": json_items,
    "jsonl": jsonl_items,
    "xlsx": xlsx_items,
    "xml": xml_items,
}
