"""Named attack: SQL injection strings in values travel as data, unchanged and harmless.

A case-management island (a SQLite database read by the sql connector) holds ids, names and
notes that are SQL injection strings, in a table whose own name is one. They go through the
real pipeline into the SQLite store: every table of the store and of the island is still
there afterwards, and each value landed exactly as the island holds it.
"""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa

from islandhub.pipeline import sync
from islandhub.store import open_store
from islandhub.store.tables import landing, quarantine, source_records
from tests.hostile.harness import Hub, Stored

INJECTIONS = [
    "'; DROP TABLE landing; --",
    "Robert'); DROP TABLE residents;--",
    '" OR ""="',
    "1; DELETE FROM quarantine",
    "x' UNION SELECT payload FROM landing --",
    "\\'; DROP TABLE runs; --",
    "%' OR '1'='1",
    "$$; DROP TABLE sync_state; $$",
    "'); ATTACH DATABASE 'pwned-by-injection.db' AS pwned; --",
    "json_each('[1]')",
    "?",
    ":id",
    "%s",
    "%(id)s",
    "{}",
]  # NUL characters have a test of their own: test_attack_nul.py
TABLE = 'parties"; DROP TABLE parties; --'
MAPPING = """\
source: cms.people
entity: resident
id: id
fields:
  given_name: {from: name, use: [strip], required: true}
  note:       {from: note}
"""


def island(path: Path) -> sa.Engine:
    """The island's database: one row per injection string, in id, name and note."""
    engine = sa.create_engine(f"sqlite:///{path}")
    rows = sa.table(TABLE, sa.column("id"), sa.column("name"), sa.column("note"))
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f'CREATE TABLE "{TABLE.replace(chr(34), chr(34) * 2)}" '
                "(id TEXT PRIMARY KEY, name TEXT, note TEXT)"
            )
        )
        conn.execute(
            rows.insert(),
            [{"id": v, "name": f"Anna {v}", "note": v} for v in INJECTIONS],
        )
    return engine


def table_names(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_injection_strings_land_verbatim_and_harm_nothing(
    tmp_path: Path, store_template: Path
) -> None:
    cms = island(tmp_path / "cms.db")
    island_tables = table_names(cms)
    body = (
        f"connector: sql\nconnection: {{url: 'sqlite:///{tmp_path / 'cms.db'}'}}\n"
        "streams:\n  people:\n"
        f"    table: {json.dumps(TABLE)}\n"
        "    id: id\n    batch_size: 4\n    mapping: MAPPING\n"
    )
    hub = Hub.create(tmp_path / "p", store_template, {"cms": (body, MAPPING)})
    store, path = hub.fresh_store()
    store_tables = table_names(store.engine)
    try:
        [result] = sync(hub.project, store, ["cms"])
        hub.check(store, "cms", result)
        [again] = sync(hub.project, store, ["cms"])  # resumes from a keyset of such ids
    finally:
        store.dispose()
    assert result.status == "succeeded", result.error
    assert (result.pulled, result.mapped, result.quarantined) == (
        len(INJECTIONS),
        len(INJECTIONS),
        0,
    )
    assert (again.status, again.pulled) == ("succeeded", 0)

    store = open_store(f"sqlite:///{path}")
    try:
        assert table_names(store.engine) == store_tables  # nothing dropped, nothing attached
        with store.connect() as conn:
            payloads = {
                r.source_id: json.loads(r.payload)
                for r in conn.execute(sa.select(landing.c.source_id, landing.c.payload))
            }
            fields = {
                r.source_id: json.loads(r.fields)
                for r in conn.execute(
                    sa.select(source_records.c.source_id, source_records.c.fields)
                )
            }
            assert conn.execute(sa.select(sa.func.count()).select_from(quarantine)).scalar() == 0
        assert Stored.read(store, "cms").landed == dict.fromkeys(INJECTIONS, "mapped")
    finally:
        store.dispose()
    for value in INJECTIONS:
        assert payloads[value] == {"id": value, "name": f"Anna {value}", "note": value}
        assert fields[value] == {"given_name": f"Anna {value}", "note": value}
    # The island is read, never written: its table and rows are as they were.
    assert table_names(cms) == island_tables
    with cms.connect() as conn:
        count = conn.execute(
            sa.text(f'SELECT count(*) FROM "{TABLE.replace(chr(34), chr(34) * 2)}"')
        )
        assert count.scalar() == len(INJECTIONS)
    cms.dispose()
    assert not (Path.cwd() / "pwned-by-injection.db").exists()
