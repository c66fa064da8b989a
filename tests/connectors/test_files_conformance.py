"""The files connector passes the conformance suite against real files in a drop folder."""

from __future__ import annotations

import csv
import itertools
from contextlib import contextmanager
from pathlib import Path

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
