"""Hypothesis strategies for hostile input: adversarial values, records, and files of each format.

Every file strategy mixes three kinds of input: a well-formed file of adversarial records
(wrong types, duplicated and missing ids, control characters, Unicode edge cases, deep
nesting, numbers no JSON store can hold), the same file with a few bytes broken, and random
bytes. The point is not that the file is read, but that whatever it is, each record ends up
mapped or quarantined with a reason, or the run fails with a clear error.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import zipfile
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import openpyxl
from hypothesis import strategies as st
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from tests.helpers import hetu
from tests.hostile.harness import SOURCE_FIELDS

# Text that has broken parsers, encoders, databases and terminals before.
EDGE_TEXT = (
    "",
    " ",
    "\t\r\n",
    "\x00",
    "a\x00b",
    "\x1b[31mred",
    "\ufeff",
    "\ufeffid",
    "\u200b",  # zero-width space
    "\u202eevil",  # right-to-left override
    "e\u0301",  # e + combining acute
    "\U0001f600",
    "\U0010ffff",
    "\ufffd",
    "ǅ",
    "ß",
    "İ",
    "ﬃ",
    "Ⅻ",
    "١٢٣",  # Arabic-Indic digits
    "１２３４５",  # full-width digits
    "NaN",
    "null",
    "None",
    "true",
    "-0",
    "1e999",
    "9" * 40,
    "'; DROP TABLE landing; --",
    '" OR 1=1 --',
    "%s%n%x",
    "{0}{1}",
    "../../../../etc/passwd",
    "<script>alert(1)</script>",
    "&amp;&lt;",
    "=cmd|' /C calc'!A0",  # CSV formula injection
    "Mäkinen Åsa",
    "MÄKINEN, ÅSA MARIA",
    "von der Heide Anna",
    "a" * 300,
    "010190-123A",
    "131052-308t",
    "00100",
    "FI-00100",
    "0401234567",
    "+358 40 123 4567",
    "matti.meikäläinen@esimerkki.fi",
    "x@-bad-.fi",
    "31.02.2020",
    "2020-13-01",
    "1.1.1",
    "kyllä",
    "1234567-1",
    "suomi",
    " SVENSKA ",
)
#: Two valid national ids: the leak guard of tests/conftest.py fails the run if any output
#: shows one in clear, so they also check that every reason and log line masks them.
VALID_HETUS = (hetu(23, 6, 2012, 457), hetu(2, 2, 1916, 273))

surrogates = st.characters(categories=["Cs"])
any_char = st.characters(codec=None, categories=None)
adversarial_text = st.one_of(
    st.sampled_from(EDGE_TEXT),
    st.sampled_from(VALID_HETUS),
    st.text(max_size=12),
    st.text(st.one_of(any_char, surrogates), max_size=8),
    st.text(st.sampled_from("0123456789-+ABCYXabc.,;:\"' \t\n\r\x00"), max_size=14),
)
big_numbers = st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**30, -(10**40)])
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    big_numbers,
    st.floats(allow_nan=True, allow_infinity=True),
    adversarial_text,
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(adversarial_text, inner, max_size=3)
    ),
    max_leaves=8,
)
# Ids from a small pool repeat (duplicates in a batch and across batches); the other kinds
# are missing, blank, or of a type an id should not have.
ids = st.one_of(
    st.sampled_from(["1", "2", "3", "x", " 7 ", "01", "1.0"]),
    st.integers(0, 3),
    st.sampled_from([None, "", "   ", True, 1.0, float("nan"), 2**64]),
    st.lists(st.integers(0, 2), max_size=2),
    st.dictionaries(st.sampled_from(["a"]), st.integers(0, 2), max_size=1),
    adversarial_text,
)


def nested(depth: int) -> Any:
    """A value nested `depth` levels deep: past what JSON stores or recursion can hold."""
    value: Any = "bottom"
    for _ in range(depth):
        value = {"k": value}
    return value


@st.composite
def records(draw: st.DrawFn, values: st.SearchStrategy[Any] = json_values) -> dict[str, Any]:
    """A record keyed mostly by the fields the mapping reads, with adversarial values."""
    record: dict[str, Any] = {}
    if draw(st.integers(0, 9)):  # one record in ten has no id at all
        record["id"] = draw(ids)
    for key in draw(st.lists(st.sampled_from(SOURCE_FIELDS[1:]), max_size=8, unique=True)):
        record[key] = draw(values)
    for key in draw(st.lists(adversarial_text, max_size=2)):
        record[key] = draw(values)
    if draw(st.integers(0, 14)) == 0:
        record["note"] = nested(draw(st.sampled_from([50, 300, 2000])))
    return record


record_lists = st.lists(records(), max_size=8)


@st.composite
def broken(draw: st.DrawFn, content: bytes) -> bytes:
    """`content` with a few bytes changed, inserted, removed, or the end cut off."""
    data = bytearray(content)
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if kind == "flip" and data:
            data[position] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[position:position] = draw(
                st.sampled_from([b"\x00", b"\xff", b'"', b"\n", b"<", b"&", b"{", b"\xc3", b";"])
            )
        elif kind == "delete":
            del data[position : position + draw(st.integers(1, 16))]
        else:
            del data[position:]
    return bytes(data)


def hostile_files(well_formed: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """Well-formed files of hostile records (half), broken copies of them, and random bytes.

    Broken files and random bytes are mostly refused whole; the well-formed half is where
    records meet the mapping, so it gets the larger share.
    """
    return st.one_of(
        well_formed,
        well_formed,
        well_formed.flatmap(broken),
        st.binary(max_size=400),
    )


def encode(text: str, encoding: str) -> bytes:
    """Text as bytes; characters the encoding lacks (lone surrogates) as invalid bytes."""
    return text.encode(encoding, errors="surrogatepass" if encoding == "utf-8" else "replace")


def as_text(value: Any) -> str:
    """How a value looks in a text-only format (CSV, XML)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except RecursionError:  # nested(2000): deep text is just long text in CSV or XML
        return "{" * 2000


# --- CSV --------------------------------------------------------------------------------------


@st.composite
def csv_files(draw: st.DrawFn, delimiter: str = ",") -> bytes:
    """A CSV export: a header of the records' keys, rows of their values, some ragged."""
    rows = draw(record_lists)
    header = list(dict.fromkeys(k for r in rows for k in r)) or ["id"]
    if draw(st.booleans()):
        header.append(draw(st.sampled_from(header)))  # a duplicated column name
    out = io.StringIO()
    writer = csv.writer(
        out, delimiter=delimiter, lineterminator=draw(st.sampled_from(["\n", "\r\n"]))
    )
    writer.writerow(header)
    for row in rows:
        cells = [as_text(row.get(k)) for k in header]
        if draw(st.integers(0, 5)) == 0:
            cells = cells[: draw(st.integers(0, len(cells)))] + draw(
                st.lists(adversarial_text, max_size=2)
            )
        writer.writerow(cells)
    text = out.getvalue()
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "cp1252", "utf-16"]))
    return encode(text, encoding)


# --- JSON and JSON Lines ------------------------------------------------------------------------

# Lines no record should be: not JSON, JSON that is not an object, JSON that Python parses
# but the store cannot hold, and nesting deeper than the parser's recursion.
HOSTILE_LINES = (
    "{",
    "[1, 2]",
    '"text"',
    "null",
    "NaN",
    '{"id": 1, "id": 2}',
    '{"id": "\\ud800"}',
    '{"id": "a", "name": "\\udfff"}',
    '{"id": 5, "n": ' + "9" * 5000 + "}",
    '{"id": 6, "n": ' + "9" * 30 + "}",
    '{"id": 7, "n": 1e400}',
    "[" * 5000 + "]" * 5000,
    '{"a":' * 400 + "1" + "}" * 400,
    '{"id": 8}\x00',
    "\ufeff{}",
)


def json_line(record: dict[str, Any], ascii_only: bool) -> str:
    """A record as one line of JSON (NaN and Infinity as Python writes them)."""
    try:
        return json.dumps(record, ensure_ascii=ascii_only)
    except (RecursionError, ValueError):
        return "[" * 3000 + "]" * 3000


@st.composite
def jsonl_files(draw: st.DrawFn) -> bytes:
    """JSON Lines: one record a line, hostile lines between them, blank lines too."""
    ascii_only = draw(st.booleans())
    lines = [json_line(r, ascii_only) for r in draw(record_lists)]
    for _ in range(draw(st.integers(0, 3))):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(HOSTILE_LINES)))
    if draw(st.booleans()):
        lines.insert(draw(st.integers(0, len(lines))), "")
    text = "\n".join(lines) + draw(st.sampled_from(["", "\n", "\r\n"]))
    if draw(st.integers(0, 4)) == 0:
        text = "\ufeff" + text
    return encode(text, draw(st.sampled_from(["utf-8", "utf-8", "utf-16"])))


@st.composite
def json_files(draw: st.DrawFn) -> bytes:
    """One JSON document with the records under `data`, or the wrong shape around them."""
    items: list[Any] = draw(record_lists)
    if draw(st.booleans()):
        items.insert(0, draw(json_values))  # an item that is not an object
    shape = draw(st.sampled_from(["data", "data", "data", "top", "scalar", "hostile"]))
    if shape == "hostile":
        return encode(draw(st.sampled_from(HOSTILE_LINES)), "utf-8")
    document: Any = {"data": items} if shape == "data" else items if shape == "top" else 42
    return encode(json_line(document, draw(st.booleans())), "utf-8")


# --- XML ---------------------------------------------------------------------------------------

XML_HOSTILE = (
    b'<!DOCTYPE export [<!ENTITY e "x">]><export><person><id>&e;</id></person></export>',
    b'<?xml version="1.0" encoding="nonsense"?><export/>',
    b"<export><person><id>1</id></person></export><export/>",
    b"<export>" + b"<person>" * 3000 + b"</person>" * 3000 + b"</export>",
    b"<export><person>" + b"<a>" * 3000 + b"</a>" * 3000 + b"</person></export>",
    b'<export xmlns:a="u"><a:person a:id="1" id="2"/></export>',
)
_XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
# Characters XML 1.0 cannot carry, escaped or not.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_raw(value: Any, legal: bool) -> str:
    """A value's text; unless `legal`, with the characters XML 1.0 cannot carry (they must fail)."""
    text = as_text(value)
    return _NOT_XML.sub("", text) if legal else text


def xml_text(value: Any, legal: bool) -> str:
    """A value as element text, escaped."""
    return escape(xml_raw(value, legal))


@st.composite
def xml_files(draw: st.DrawFn) -> bytes:
    """An export of <person> elements: fields as children or attributes, repeats, namespaces."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?>', '<export xmlns:x="urn:x">']
    legal = draw(st.integers(0, 3)) > 0  # most exports hold only what XML can carry
    for record in draw(record_lists):
        attributes, children = "", []
        for key, value in record.items():
            tag = key if _XML_NAME.fullmatch(key) else "field"
            if draw(st.integers(0, 5)) == 0:
                tag = f"x:{tag}"  # namespaced: read by its local name
            if draw(st.integers(0, 3)) == 0 and ":" not in tag and f" {tag}=" not in attributes:
                attributes += f" {tag}={quoteattr(xml_raw(value, legal))}"
                continue
            children.append(f"<{tag}>{xml_text(value, legal)}</{tag}>")
            if draw(st.integers(0, 4)) == 0:
                children.append(f"<{tag}>{xml_text(value, legal)}</{tag}>")  # a repeated child
        parts.append(f"<person{attributes}>{''.join(children)}</person>")
    parts.append("</export>")
    if draw(st.integers(0, 6)) == 0:
        return draw(st.sampled_from(XML_HOSTILE))
    return encode("".join(parts), draw(st.sampled_from(["utf-8", "utf-8", "cp1252"])))


# --- XLSX --------------------------------------------------------------------------------------

cell_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.datetimes(min_value=dt.datetime(1900, 3, 1), max_value=dt.datetime(9999, 1, 1)),
    st.dates(min_value=dt.date(1900, 3, 1)),
    adversarial_text.filter(lambda t: "\x00" not in t),
)


def _cell(value: Any) -> Any:
    # openpyxl refuses control characters and lone surrogates in cells: a real export
    # cannot hold them either, so they are taken out here.
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
        return value.encode("utf-8", "replace").decode("utf-8", "replace")[:32767]
    return value


@st.composite
def xlsx_files(draw: st.DrawFn) -> bytes:
    """A workbook: a header row, data rows of mixed types, gaps, and ragged rows."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    width = draw(st.integers(1, 6))
    header = draw(
        st.lists(
            st.sampled_from(SOURCE_FIELDS) | st.none() | adversarial_text,
            min_size=width,
            max_size=width,
        )
    )
    sheet.append([_cell(h) for h in header])
    for _ in range(draw(st.integers(0, 8))):
        row = draw(st.lists(cell_values, max_size=width + 2))
        sheet.append([_cell(v) for v in row])
        if draw(st.integers(0, 5)) == 0:
            sheet.append([])  # an empty row
    out = io.BytesIO()
    workbook.save(out)
    damage = draw(st.sampled_from(["none"] * 4 + ["drop_sheet", "garble_sheet", "huge_number"]))
    return rezip(out.getvalue(), damage)


_SAVED_AT = re.compile(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*")


def rezip(data: bytes, how: str) -> bytes:
    """The workbook with one part damaged the way a broken export tool would damage it.

    Also the same bytes for the same draws: openpyxl stamps the time of saving into the
    zip and docProps/core.xml, and hypothesis replays an example to confirm a failure.
    """
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = _SAVED_AT.sub(rb"\g<1>2024-05-01T05:00:00Z", content)
            if info.filename == "xl/worksheets/sheet1.xml":
                if how == "drop_sheet":
                    continue
                if how == "garble_sheet":
                    content = content[: len(content) // 2]
                else:
                    content = content.replace(b"<v>", b"<v>" + b"9" * 5000, 1)
            fixed = zipfile.ZipInfo(info.filename, date_time=(2024, 5, 1, 5, 0, 0))
            target.writestr(fixed, content, zipfile.ZIP_DEFLATED)
    return out.getvalue()


# --- iCalendar -----------------------------------------------------------------------------------


def _stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


@st.composite
def ics_files(draw: st.DrawFn) -> bytes:
    """A feed of VEVENTs around today: good, broken and absurd properties, duplicate UIDs."""
    # Today at midnight: the same draws give the same feed when hypothesis replays one.
    now = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//fuzz//EN"]
    for _ in range(draw(st.integers(0, 6))):
        start = now + dt.timedelta(hours=draw(st.integers(-24 * 40, 24 * 200)))
        props = {
            "UID": draw(st.sampled_from(["a@x", "b@x", "a@x", ""]) | adversarial_text),
            "DTSTART": _stamp(start),
            "DTEND": _stamp(start + dt.timedelta(hours=draw(st.integers(-2, 3)))),
            "SUMMARY": draw(adversarial_text),
        }
        extra = draw(
            st.lists(
                st.sampled_from(
                    [
                        ("RRULE", "FREQ=WEEKLY;COUNT=5"),
                        ("RRULE", "FREQ=DAILY"),
                        ("RRULE", "FREQ=SECONDLY"),
                        ("RRULE", "FREQ=MINUTELY;INTERVAL=0"),
                        ("RRULE", "FREQ=HOURLY;BYMINUTE=0,15,30,45"),
                        ("RRULE", "FREQ=NEVER"),
                        ("RRULE", "FREQ=DAILY;UNTIL=garbage"),
                        ("DURATION", "P99999999D"),
                        ("DTSTART", "garbage"),
                        ("DTSTART;VALUE=DATE", start.strftime("%Y%m%d")),
                        ("DTSTART;TZID=Nowhere/Zone", start.strftime("%Y%m%dT%H%M%S")),
                        ("EXDATE", "garbage"),
                        ("RDATE", _stamp(start + dt.timedelta(days=1))),
                        ("RECURRENCE-ID", _stamp(start)),
                        ("STATUS", "CANCELLED"),
                        ("SEQUENCE", "abc"),
                        ("LAST-MODIFIED", "yesterday"),
                        ("ORGANIZER;CN=Öberg Pia", "mailto:pia@example.fi"),
                        ('ORGANIZER;CN="x', "mailto:"),
                        ("ATTENDEE;PARTSTAT=ACCEPTED", "mailto:a@b.fi"),
                        ("LOCATION", "Hall\\, 1\\nfloor"),
                        ("DESCRIPTION", "x" * 500),
                    ]
                ),
                max_size=4,
            )
        )
        event = ["BEGIN:VEVENT", *(f"{k}:{v}" for k, v in props.items() if v != "")]
        event += [f"{k}:{v}" for k, v in extra]
        lines += [*event, "END:VEVENT"]
    if draw(st.integers(0, 8)) == 0:
        lines.insert(
            draw(st.integers(1, len(lines))),
            draw(
                st.sampled_from(["BEGIN:VEVENT", "END:VEVENT", "BEGIN:VTODO", "garbage", " folded"])
            ),
        )
    lines.append("END:VCALENDAR")
    text = "\r\n".join(line.replace("\r", "").replace("\n", "\\n") for line in lines) + "\r\n"
    return encode(text, "utf-8")
