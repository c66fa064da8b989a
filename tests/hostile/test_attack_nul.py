"""Named attack: NUL characters, on every store backend.

SQLite keeps a NUL in text; PostgreSQL refuses it ("text fields cannot contain NUL"), and
one record whose id held a NUL stopped a whole sync there with a traceback. JSON escapes a
NUL in payloads and mapped fields; what is raw text (a source id, an excerpt, a position)
must cope on its own. Parametrised over SQLite and PostgreSQL by tests/conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from islandhub.config import load_project
from islandhub.pipeline import sync
from islandhub.store import open_store
from islandhub.store.tables import landing, quarantine
from tests.hostile.harness import ISLANDS, MAPPING, Hub, write_project

JSONL = (
    b'{"id": "a\\u0000b", "name": "Anna Virtanen"}\n'  # an id no PostgreSQL text can hold
    b'{"id": "2", "name": "Pia\\u0000 Oberg", "note": "x\\u0000y"}\n'  # NULs in values
    b'{"id": "3", "name": "Aino Laine"}\n'
)
CSV = b"id,name\n4,Eino Leino\n5,x\x00y,extra\x00cell\n"  # a rejected row with NULs


def test_nul_characters_in_ids_values_and_rejected_rows(
    tmp_path: Path, store_url: str, store_template: Path
) -> None:
    root = tmp_path / "project"
    root.mkdir()
    write_project(
        root,
        {
            "jsonl": (ISLANDS["jsonl"], MAPPING.format(system="jsonl")),
            "csv": (ISLANDS["csv"], MAPPING.format(system="csv")),
        },
    )
    (root / "drops" / "jsonl" / "export.jsonl").write_bytes(JSONL)
    (root / "drops" / "csv" / "export.csv").write_bytes(CSV)
    hub = Hub(root, store_template, load_project(root, environ={}))  # for its checks
    store = open_store(store_url)
    try:
        for system in ("jsonl", "csv"):
            [result] = sync(hub.project, store, [system])
            assert result.status == "succeeded", result.error
            hub.check(store, system, result)
        with store.connect() as conn:
            landed = {r.source_id: r.status for r in conn.execute(sa.select(landing))}
            held = {r.source_id: r.excerpt for r in conn.execute(sa.select(quarantine))}
    finally:
        store.dispose()
    assert landed == {"2": "mapped", "3": "mapped", "4": "mapped"}
    [nul_id] = [k for k in held if k.startswith("@hash:")]
    assert '"a\\u0000b"' in held[nul_id]  # the payload's JSON shows the NUL escaped
    assert held["@export.csv:3"] == "5,x\\x00y,extra\\x00cell"  # written out, not raw
