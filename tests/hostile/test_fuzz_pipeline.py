"""Property: any file an island drops gives a clean run through the real pipeline.

For every format the files connector reads (CSV, JSON, JSON Lines, XLSX, XML) and for an
iCalendar feed, hypothesis drops hostile files (see strategies.py) into the island's folder
and syncs it into a fresh SQLite store. harness.Hub.sync checks the contract of issue 9:
succeeded or failed with a source error, never another exception; pulled = unchanged +
mapped + quarantined; every record in landing or quarantine with a reason; and a second run
finds nothing new.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.hostile.harness import FUZZ, Hub
from tests.hostile.strategies import (
    csv_files,
    hostile_files,
    ics_files,
    json_files,
    jsonl_files,
    xlsx_files,
    xml_files,
)

# Broken workbooks make openpyxl warn (a date cell holding inf, a missing style); what
# matters here is what the hub does next, not the library's warnings.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:openpyxl.*")


@FUZZ
@given(hostile_files(csv_files()))
def test_csv(hub: Hub, content: bytes) -> None:
    hub.sync("csv", {"export.csv": content})


@FUZZ
@given(hostile_files(csv_files(delimiter=";")))
def test_csv_with_detected_encoding(hub: Hub, content: bytes) -> None:
    hub.sync("csv_auto", {"export.csv": content})


@FUZZ
@given(hostile_files(jsonl_files()))
def test_json_lines(hub: Hub, content: bytes) -> None:
    hub.sync("jsonl", {"export.jsonl": content})


@FUZZ
@given(hostile_files(json_files()))
def test_json(hub: Hub, content: bytes) -> None:
    hub.sync("json", {"export.json": content})


@FUZZ
@given(hostile_files(xml_files()))
def test_xml(hub: Hub, content: bytes) -> None:
    hub.sync("xml", {"export.xml": content})


@FUZZ
@given(hostile_files(xlsx_files()))
def test_xlsx(hub: Hub, content: bytes) -> None:
    hub.sync("xlsx", {"export.xlsx": content})


@FUZZ
@given(hostile_files(ics_files()))
def test_ics(hub: Hub, content: bytes) -> None:
    hub.sync("ics", {"calendar.ics": content})


@FUZZ
@given(st.lists(hostile_files(jsonl_files()), min_size=2, max_size=3))
def test_several_files_at_once(hub: Hub, contents: list[bytes]) -> None:
    # Records of one id in several files, a bad file between good ones: nothing is lost.
    hub.sync("jsonl", {f"export_{i}.jsonl": c for i, c in enumerate(contents)})
