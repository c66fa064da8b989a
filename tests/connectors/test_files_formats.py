"""The files connector's formats on real files: encodings, XLSX, XML, and hostile files refused."""

from __future__ import annotations

import datetime
import logging
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from connectors.base import Rejected, StreamSpec
from connectors.file_formats import detect_encoding
from connectors.files import FilesConnector
from islandhub.errors import FatalSourceError


def pull(folder: Path, **options: Any) -> tuple[list[dict[str, Any]], list[Rejected]]:
    conn = FilesConnector("island", {"path": str(folder)}, {"s": StreamSpec("s", options)})
    batches = list(conn.pull("s", None))
    return [r for b in batches for r in b.records], [r for b in batches for r in b.rejected]


# --- encodings ----------------------------------------------------------------------------

PADDING = "".join(f"{i};ascii only\r\n" for i in range(7000))  # > the 64 KiB sample

ENCODINGS = [
    # (case, file bytes, detected, the name in the last row)
    ("cp1252 school export", "id;nimi\r\n1;Mäkinen Åsa €\r\n".encode("cp1252"), "cp1252", None),
    ("utf-8 with BOM", "\ufeffid;nimi\n1;Mäkinen Åsa €\n".encode(), "utf-8-sig", None),
    ("utf-8 without BOM", "id;nimi\n1;Mäkinen Åsa €\n".encode(), "utf-8", None),
    ("plain ASCII", b"id;nimi\n1;Makinen\n", "utf-8", None),
    # 0x8D is undefined in cp1252, so only latin-1 reads this file
    ("latin-1 with C1 bytes", "id;nimi\n1;Mäkinen\x8d\n".encode("latin-1"), "latin-1", None),
    (
        "cp1252 after the sample",
        f"id;nimi\r\n{PADDING}9999;Öberg\r\n".encode("cp1252"),
        "cp1252",
        "Öberg",
    ),
]


@pytest.mark.parametrize(
    ("case", "content", "detected", "last"), ENCODINGS, ids=[c[0] for c in ENCODINGS]
)
def test_encoding_auto_detects_each_export(tmp_path, caplog, case, content, detected, last):
    (tmp_path / "pupils.csv").write_bytes(content)
    assert detect_encoding(tmp_path / "pupils.csv") == detected
    with caplog.at_level(logging.INFO, logger="connectors.file_formats"):
        records, _ = pull(tmp_path, files="*.csv", format="csv", delimiter=";", encoding="auto")
    assert list(records[0]) == ["id", "nimi"]  # a BOM is not part of `id`
    expected = last or content.decode(detected).splitlines()[-1].split(";")[1]
    assert records[-1]["nimi"] == expected
    assert f"pupils.csv: encoding detected as {detected}" in caplog.text


def test_the_default_encoding_is_still_utf8(tmp_path):
    (tmp_path / "p.csv").write_bytes("id;nimi\n1;Mäkinen\n".encode("cp1252"))
    with pytest.raises(FatalSourceError, match=r"as utf-8.*`auto` detects it"):
        pull(tmp_path, files="*.csv", format="csv", delimiter=";")


def test_auto_works_for_json_lines_too(tmp_path):
    (tmp_path / "a.jsonl").write_bytes('{"nimi": "Öberg"}\n'.encode("cp1252"))
    records, _ = pull(tmp_path, files="*.jsonl", format="jsonl", encoding="auto")
    assert records == [{"nimi": "Öberg"}]


# --- XLSX ---------------------------------------------------------------------------------


def water_billing(path: Path, rows: list[list[Any]], sheet: str = "Asiakkaat") -> Path:
    workbook = openpyxl.Workbook()
    workbook.active.title = "Ohje"
    workbook.active.append(["This sheet explains the export"])
    data = workbook.create_sheet(sheet)
    for row in rows:
        data.append(row)
    workbook.save(path)
    return path


HEADER = ["asiakas", "nimi", "hetu_tai_ytunnus", "postinumero", "alkanut", "luettu", "phone"]


def test_xlsx_rows_become_records_with_iso_dates_and_numbers(tmp_path):
    water_billing(
        tmp_path / "vesi.xlsx",
        [
            ["Water billing customers, January"],  # a title above the header
            HEADER,
            [
                1001,
                "Virtanen Aino",
                "131052-308T",
                22100,
                datetime.date(2019, 5, 3),
                datetime.datetime(2025, 1, 31, 14, 5),
                "+358 40 123 4567",
            ],
            [None, None, None],  # an empty row: skipped
            [1002, "Ålands Fisk Ab", "0912797-2", 22150, datetime.datetime(2020, 1, 1), None],
            [1003, "Short Row", "010101A1234"],
            [1004, "Long Row", "x", 1, None, None, "phone", "surprise"],
            [1005, 3.5, "x", "00180", None, datetime.time(7, 30), "p"],
        ],
    )
    records, rejected = pull(
        tmp_path, files="*.xlsx", format="xlsx", sheet="Asiakkaat", header_row=2
    )
    assert records[0] == {
        "asiakas": 1001,
        "nimi": "Virtanen Aino",
        "hetu_tai_ytunnus": "131052-308T",
        "postinumero": 22100,  # an int: the mapping's postal_code transform pads it
        "alkanut": "2019-05-03",
        "luettu": "2025-01-31T14:05:00",
        "phone": "+358 40 123 4567",
    }
    assert records[1]["alkanut"] == "2020-01-01" and records[1]["phone"] is None
    # Excel drops trailing empty cells: by default a short row just has empty values.
    assert records[2] == {
        **dict.fromkeys(HEADER),
        "asiakas": 1003,
        "nimi": "Short Row",
        "hetu_tai_ytunnus": "010101A1234",
    }
    assert records[3]["nimi"] == 3.5 and records[3]["luettu"] == "07:30:00"
    [long_row] = rejected
    assert long_row.position == "vesi.xlsx:row 7"
    assert long_row.reason == "expected 7 columns, found 8"


def test_xlsx_short_rows_can_be_rejected_and_sheets_picked_by_number(tmp_path):
    water_billing(tmp_path / "v.xlsx", [["id", "name", "phone"], [1, "A", "p"], [2, "B"]])
    records, rejected = pull(tmp_path, files="*.xlsx", format="xlsx", sheet=2, short_rows="reject")
    assert [r["id"] for r in records] == [1]
    assert [(r.reason, r.position) for r in rejected] == [
        ("expected 3 columns, found 2", "v.xlsx:row 3")
    ]


def test_xlsx_unknown_sheet_names_the_sheets_there_are(tmp_path):
    water_billing(tmp_path / "v.xlsx", [["id"], [1]])
    with pytest.raises(FatalSourceError, match=r"no sheet 'Kunder'.*has: Ohje, Asiakkaat"):
        pull(tmp_path, files="*.xlsx", format="xlsx", sheet="Kunder")


def test_xlsx_resumes_after_a_committed_batch(tmp_path):
    water_billing(tmp_path / "v.xlsx", [["id"], *[[i] for i in range(7)]], sheet="Data")
    conn = FilesConnector(
        "w",
        {"path": str(tmp_path)},
        {
            "s": StreamSpec(
                "s", {"files": "*.xlsx", "format": "xlsx", "sheet": "Data", "batch_size": 3}
            )
        },
    )
    batches = list(conn.pull("s", None))
    rest = [r["id"] for b in conn.pull("s", batches[0].state) for r in b.records]
    assert rest == [3, 4, 5, 6]


def zip_bomb(path: Path, megabytes: int) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (megabytes << 20))
    return path


@pytest.mark.parametrize(
    ("case", "make", "options", "message"),
    [
        ("ratio", lambda p: zip_bomb(p, 20), {}, r"compressed \d+x.*zip bomb"),
        (
            "size",
            lambda p: zip_bomb(p, 2),
            {"max_uncompressed_bytes": 1 << 20},
            r"unpacks to \d+ bytes, more than max_uncompressed_bytes \(1048576\)",
        ),
        ("not a zip", lambda p: p.write_bytes(b"id;name\n") and p, {}, "not an XLSX workbook"),
    ],
)
def test_hostile_or_broken_xlsx_is_refused_before_unzipping(tmp_path, case, make, options, message):
    make(tmp_path / "bomb.xlsx")
    with pytest.raises(FatalSourceError, match=message):
        pull(tmp_path, files="*.xlsx", format="xlsx", **options)


# --- XML ----------------------------------------------------------------------------------

DAYCARE = """<?xml version="1.0" encoding="UTF-8"?>
<varhaiskasvatus xmlns="urn:example:vaka" tuotettu="2025-01-31">
  <yksikko koodi="PK-12">Päiväkoti Majakka</yksikko>
  <lapset>
    <lapsi id="L-1001" tila="aktiivinen">
      <nimi>Virtanen, Aino</nimi>
      <hetu>140320A123K</hetu>
      <aidinkieli koodi="fi"/>
      <kotikunta>478</kotikunta>
      <erityisruokavalio>false</erityisruokavalio>
      <kuljetus>0</kuljetus>
      <osoite><katu>Rantatie 5</katu><postinumero>22100</postinumero></osoite>
      <huoltajat>
        <huoltaja rooli="äiti">
          <nimi>Virtanen, Liisa</nimi><puhelin>+358401234567</puhelin>
        </huoltaja>
        <huoltaja rooli="isä"><nimi>Virtanen, Mikko</nimi><puhelin/></huoltaja>
      </huoltajat>
    </lapsi>
    <lapsi id="L-1002" tila="aktiivinen">
      <nimi>Lindholm, Elsa</nimi>
      <aidinkieli koodi="sv">ruotsi</aidinkieli>
      <erityisruokavalio>1</erityisruokavalio>
      <huoltajat><huoltaja rooli="äiti"><nimi>Lindholm, Maria</nimi></huoltaja></huoltajat>
    </lapsi>
  </lapset>
</varhaiskasvatus>
"""


def test_daycare_xml_records_nested_attributes_and_repeated(tmp_path):
    (tmp_path / "vaka.xml").write_text(DAYCARE, encoding="utf-8")
    records, rejected = pull(tmp_path, files="*.xml", format="xml", record_path="lapset/lapsi")
    assert rejected == []
    assert records[0] == {
        "@id": "L-1001",
        "@tila": "aktiivinen",
        "nimi": "Virtanen, Aino",
        "hetu": "140320A123K",
        "aidinkieli": {"@koodi": "fi"},
        "kotikunta": "478",
        "erityisruokavalio": "false",
        "kuljetus": "0",
        "osoite": {"katu": "Rantatie 5", "postinumero": "22100"},
        "huoltajat": {
            "huoltaja": [
                {"@rooli": "äiti", "nimi": "Virtanen, Liisa", "puhelin": "+358401234567"},
                {"@rooli": "isä", "nimi": "Virtanen, Mikko", "puhelin": None},
            ]
        },
    }
    assert records[1]["aidinkieli"] == {"@koodi": "sv", "#text": "ruotsi"}
    # A child that occurs once is a value, not a list ...
    assert records[1]["huoltajat"]["huoltaja"]["nimi"] == "Lindholm, Maria"


def test_xml_repeated_option_makes_single_children_lists(tmp_path):
    (tmp_path / "vaka.xml").write_text(DAYCARE, encoding="utf-8")
    records, _ = pull(
        tmp_path,
        files="*.xml",
        format="xml",
        record_path="lapsi",
        repeated=["huoltajat/huoltaja"],
    )
    assert [len(r["huoltajat"]["huoltaja"]) for r in records] == [2, 1]


def test_xml_declared_latin1_and_wildcard_paths(tmp_path):
    text = '<?xml version="1.0" encoding="ISO-8859-1"?><a><b><r n="Ö"/></b><c><r n="Å"/></c></a>'
    (tmp_path / "x.xml").write_bytes(text.encode("latin-1"))
    records, _ = pull(tmp_path, files="*.xml", format="xml", record_path="a/*/r")
    assert records == [{"@n": "Ö"}, {"@n": "Å"}]


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lapset><lapsi><nimi>&lol9;</nimi></lapsi></lapset>
"""
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE lapset [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<lapset><lapsi><nimi>&secret;</nimi></lapsi></lapset>
"""
EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE lapset SYSTEM "http://127.0.0.1:9/lapset.dtd">
<lapset><lapsi><nimi>A</nimi></lapsi></lapset>
"""


@pytest.mark.parametrize(
    "document",
    [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD],
    ids=["billion laughs", "external entity", "external DTD"],
)
def test_xml_with_entities_or_dtd_is_refused(tmp_path, document):
    (tmp_path / "evil.xml").write_text(document)
    with pytest.raises(FatalSourceError) as caught:
        pull(tmp_path, files="*.xml", format="xml", record_path="lapsi")
    assert str(caught.value) == (
        "evil.xml: refused: the XML uses entities/DTD, which exports never need"
    )


def test_broken_xml_fails_with_its_position(tmp_path):
    (tmp_path / "b.xml").write_text("<lapset>\n<lapsi><nimi>A</lapsi>\n</lapset>")
    with pytest.raises(FatalSourceError, match=r"b.xml:2:\d+: not well-formed XML"):
        pull(tmp_path, files="*.xml", format="xml", record_path="lapsi")
