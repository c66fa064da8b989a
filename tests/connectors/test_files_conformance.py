"""The files connector passes the conformance suite against real files in a drop folder."""

from __future__ import annotations

import csv
import datetime
import itertools
from contextlib import contextmanager
from pathlib import Path

import openpyxl

from connectors.files import FilesConnector
from connectors.testing import Island, connector_test_class


@contextmanager
def school_drop(tmp_path: Path):
    folder = tmp_path / "drop"
    folder.mkdir()
    counter = itertools.count(1)

    def write_file(count: int) -> list[str]:
        number = next(counter)
        ids = [f"F{number}-{i}" for i in range(count)]
        with (folder / f"pupils_{number:04d}.csv").open(
            "w", encoding="cp1252", newline=""
        ) as handle:
            writer = csv.writer(handle, delimiter=";")
            writer.writerow(["oppilas_id", "nimi"])
            writer.writerows([i, f"Mäkinen {i}"] for i in ids)
        return ids

    write_file(25)
    write_file(12)
    yield Island(
        connection={"path": str(folder)},
        streams={
            "pupils": {
                "files": "pupils_*.csv",
                "format": "csv",
                "delimiter": ";",
                "encoding": "cp1252",
                "batch_size": 10,
            }
        },
        id_field={"pupils": "oppilas_id"},
        add_records=lambda _stream, count: write_file(count),
        broken_connection={"path": str(tmp_path / "missing")},
    )


TestFilesConformance = connector_test_class(FilesConnector, school_drop)


@contextmanager
def school_drop_archiving(tmp_path: Path):
    """The school drop with `archive`: committed files move out of the way on the next pull."""
    with school_drop(tmp_path) as island:
        island.streams["pupils"]["archive"] = "archive"
        yield island


TestFilesArchivingConformance = connector_test_class(FilesConnector, school_drop_archiving)


@contextmanager
def water_billing_drop(tmp_path: Path):
    """Water billing: an XLSX workbook a night, customers on a named sheet under a title row."""
    folder = tmp_path / "drop"
    folder.mkdir()
    counter = itertools.count(1)

    def write_workbook(count: int) -> list[str]:
        number = next(counter)
        ids = [f"W{number}-{i}" for i in range(count)]
        workbook = openpyxl.Workbook()
        sheet = workbook.active
        sheet.title = "Asiakkaat"
        sheet.append([f"Vesilaskutus, ajo {number}"])
        sheet.append(["asiakas", "nimi", "postinumero", "alkanut"])
        for i in ids:
            sheet.append([i, f"Öberg {i}", 22100, datetime.date(2020, 1, 1)])
        workbook.save(folder / f"vesi_{number:04d}.xlsx")
        return ids

    write_workbook(25)
    write_workbook(12)
    yield Island(
        connection={"path": str(folder)},
        streams={
            "customers": {
                "files": "vesi_*.xlsx",
                "format": "xlsx",
                "sheet": "Asiakkaat",
                "header_row": 2,
                "batch_size": 10,
            }
        },
        id_field={"customers": "asiakas"},
        add_records=lambda _stream, count: write_workbook(count),
        broken_connection={"path": str(tmp_path / "missing")},
    )


TestFilesXlsxConformance = connector_test_class(FilesConnector, water_billing_drop)


@contextmanager
def daycare_drop(tmp_path: Path):
    """Daycare: an XML export a night, children with attributes and nested guardians."""
    folder = tmp_path / "drop"
    folder.mkdir()
    counter = itertools.count(1)

    def write_export(count: int) -> list[str]:
        number = next(counter)
        ids = [f"L{number}-{i}" for i in range(count)]
        children = "".join(
            f'<lapsi id="{i}"><nimi>Virtanen, Aino</nimi><aidinkieli koodi="fi"/>'
            f"<huoltajat><huoltaja><nimi>Virtanen, Liisa</nimi></huoltaja></huoltajat></lapsi>"
            for i in ids
        )
        (folder / f"vaka_{number:04d}.xml").write_text(
            f'<?xml version="1.0" encoding="UTF-8"?><vaka><lapset>{children}</lapset></vaka>',
            encoding="utf-8",
        )
        return ids

    write_export(25)
    write_export(12)
    yield Island(
        connection={"path": str(folder)},
        streams={
            "children": {
                "files": "vaka_*.xml",
                "format": "xml",
                "record_path": "lapset/lapsi",
                "batch_size": 10,
            }
        },
        id_field={"children": "@id"},
        add_records=lambda _stream, count: write_export(count),
        broken_connection={"path": str(tmp_path / "missing")},
    )


TestFilesXmlConformance = connector_test_class(FilesConnector, daycare_drop)
