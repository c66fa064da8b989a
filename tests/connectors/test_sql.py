"""The sql connector on real databases: keyset ties, values as JSON, soft deletes, push, errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.base import StreamSpec
from connectors.sql import SqlConnector
from islandhub.config import validate
from islandhub.errors import FatalSourceError, RetriableSourceError
from islandhub.secrets import Secret
from islandhub.yamlsource import parse_yaml
from tests.connectors.test_sql_conformance import (
    MARIADB_URL,
    SUPPORT,
    CaseDb,
    postgres_schema,
    require_server,
    streams,
)


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "mariadb"]
)
def case_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CaseDb]:
    """The case-management database on each backend, filled and dropped afterwards."""
    if request.param == "postgresql":
        with postgres_schema() as (url, _schema):
            db = CaseDb(url, aware=True)
            db.create()
            yield db
            db.engine.dispose()
        return
    if request.param == "mariadb":
        require_server(MARIADB_URL, "MariaDB")
        db = CaseDb(MARIADB_URL, prefix="ihtest_")
    else:
        db = CaseDb(f"sqlite:///{tmp_path / 'cms.db'}")
    db.create()
    try:
        yield db
    finally:
        db.drop()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> CaseDb:
    db = CaseDb(f"sqlite:///{tmp_path / 'cms.db'}")
    db.create()
    return db


def connector(db: CaseDb, stream: str = "parties", **options: Any) -> SqlConnector:
    spec = {**streams(db)[stream], **options}
    return SqlConnector("cms", {"url": db.url}, {stream: StreamSpec(stream, spec)})


def pull_all(conn: SqlConnector, stream: str = "parties", state: Any = None):
    batches = list(conn.pull(stream, state))
    return [r for b in batches for r in b.records], batches


def test_rows_sharing_a_cursor_value_survive_every_batch_boundary(sqlite_db: CaseDb) -> None:
    # 12 parties share modified_at T0: batches of 4 end three times inside that tie.
    conn = connector(sqlite_db, batch_size=4)
    records, batches = pull_all(conn)
    assert [r["party_id"] for r in records] == list(range(1, 31))
    assert len({r["modified_at"] for r in records[:12]}) == 1
    for index, batch in enumerate(batches[:-1]):
        rest, _ = pull_all(conn, state=batch.state)
        assert [r["party_id"] for r in rest] == list(range(4 * index + 5, 31)), index


def test_a_row_arriving_with_an_equal_cursor_and_a_higher_id_is_read(sqlite_db: CaseDb) -> None:
    conn = connector(sqlite_db, batch_size=5)
    _, batches = pull_all(conn)
    state = batches[0].state  # inside the tie at T0
    with sqlite_db.engine.begin() as c:
        c.execute(
            sqlite_db.parties.insert().values(
                party_id=99, family_name="Sjöblom", removed=False, modified_at=sqlite_db.stamp(0)
            )
        )
    rest, _ = pull_all(conn, state=state)
    assert 99 in [r["party_id"] for r in rest]


def test_values_become_plain_json_and_state_rebinds_them(case_db: CaseDb) -> None:
    conn = connector(case_db, "case_parties")
    records, batches = pull_all(conn, "case_parties")
    first = next(r for r in records if r["case_id"] == 1)
    # SQLite has no decimal type: its numbers come back as floats, the others' as text.
    assert Decimal(str(first["fee"])) == Decimal("13.50")
    assert isinstance(first["fee"], float if case_db.url.startswith("sqlite") else str)
    assert first["family_name"] == "Öberg"
    assert first["modified_at"].startswith("2024-05-02")
    for batch in batches:
        assert json.loads(json.dumps(batch.state)) == batch.state
        assert json.loads(json.dumps(batch.records)) == batch.records
    assert pull_all(conn, "case_parties", batches[-1].state)[0] == []


def test_dates_decimals_and_bytes(case_db: CaseDb) -> None:
    cases = connector(case_db, table=case_db.cases.name, id="case_id", deleted=None)
    records, _ = pull_all(cases)
    assert Decimal(str(records[0]["fee"])) == Decimal("13.50")
    assert records[0]["attachment_digest"] == "AQD/"  # base64 of 01 00 ff
    parties, _ = pull_all(connector(case_db))
    assert parties[0]["birth_date"] == "1980-05-02"


def test_an_updated_row_comes_again_and_a_soft_delete_is_reported(sqlite_db: CaseDb) -> None:
    conn = connector(sqlite_db)
    _, batches = pull_all(conn)
    with sqlite_db.engine.begin() as c:
        c.execute(
            sqlite_db.parties.update()
            .where(sqlite_db.parties.c.party_id == 7)
            .values(street_address="Storgatan 1", modified_at=sqlite_db.stamp())
        )
    gone = sqlite_db.delete("parties")
    records, after = pull_all(conn, state=batches[-1].state)
    assert [(r["party_id"], r["street_address"]) for r in records] == [(7, "Storgatan 1")]
    assert [d for b in after for d in b.deleted] == [gone]


def test_a_query_stream_binds_its_parameters(sqlite_db: CaseDb) -> None:
    conn = connector(sqlite_db, "support_cases")
    records, _ = pull_all(conn, "support_cases")
    assert {r["case_id"] for r in records} == set(range(1, 21, 2))
    assert set(records[0]) == {
        "case_id",
        "case_number",
        "status",
        "fee",
        "family_name",
        "hetu",
        "modified_at",
    }
    # A parameter value is data, never SQL: a quote in it finds nothing and breaks nothing.
    tricky = connector(sqlite_db, "support_cases", params={"topic": f"{SUPPORT}' OR '1'='1"})
    assert pull_all(tricky, "support_cases")[0] == []


def test_only_the_named_columns_are_read(sqlite_db: CaseDb) -> None:
    records, _ = pull_all(connector(sqlite_db, columns=["family_name", "postal_code"]))
    assert set(records[0]) == {"family_name", "postal_code", "party_id", "modified_at", "removed"}


def test_a_composite_id_breaks_ties_and_gives_a_key(sqlite_db: CaseDb) -> None:
    conn = connector(
        sqlite_db, "case_parties", id=["party_id", "case_id"], batch_size=2, deleted=None
    )
    records, batches = pull_all(conn, "case_parties")
    assert records[0]["_key"] == "1::1"
    assert batches[0].state["id"] == [2, 2]
    rest, _ = pull_all(conn, "case_parties", batches[0].state)
    assert len(rest) == len(records) - 2


def test_a_stream_without_cursor_reads_new_ids(sqlite_db: CaseDb) -> None:
    conn = connector(sqlite_db, cursor=None, deleted=None)
    _, batches = pull_all(conn)
    assert batches[-1].state == {"id": 30}
    added = sqlite_db.add("parties", 2)
    assert [str(r["party_id"]) for r in pull_all(conn, state=batches[-1].state)[0]] == added


def test_push_upserts_idempotently(case_db: CaseDb) -> None:
    conn = connector(case_db)
    rows = [{"party_id": 4, "email": "a@example.fi"}, {"party_id": 5, "email": "b@example.fi"}]
    conn.push("parties", rows)
    conn.push("parties", rows)
    conn.push("parties", [{"party_id": 4, "email": "new@example.fi", "phone": "+358401"}])
    assert case_db.pushed() == [
        {"party_id": 4, "email": "new@example.fi", "phone": "+358401"},
        {"party_id": 5, "email": "b@example.fi", "phone": None},
    ]


def test_push_needs_a_key_and_a_push_table(sqlite_db: CaseDb) -> None:
    with pytest.raises(FatalSourceError, match="record 1 has no value for key column 'party_id'"):
        connector(sqlite_db).push("parties", [{"party_id": 1}, {"email": "x@example.fi"}])
    assert sqlite_db.pushed() == []  # one transaction: nothing of a failed push lands
    with pytest.raises(FatalSourceError, match="accepts no writes: set push_table"):
        connector(sqlite_db, "case_parties").push("case_parties", [{"case_id": 1}])


def test_check_names_a_missing_table_or_column(sqlite_db: CaseDb) -> None:
    assert connector(sqlite_db).check().ok
    result = connector(sqlite_db, table="kases").check()
    assert not result.ok and "table kases" in result.message and "no such table" in result.message
    result = connector(sqlite_db, cursor="changed").check()
    assert not result.ok and "no such column: parties.changed" in result.message


def test_pull_of_a_missing_table_is_fatal(sqlite_db: CaseDb) -> None:
    with pytest.raises(FatalSourceError, match="stream 'parties' \\(table kases\\): no such table"):
        pull_all(connector(sqlite_db, table="kases"))


def test_an_unreachable_server_is_retriable_and_the_password_never_shown() -> None:
    url = "postgresql+psycopg://hub:hunter2@127.0.0.1:9/cms"
    conn = SqlConnector(
        "cms", {"url": Secret("CMS_URL", url)}, {"s": StreamSpec("s", {"table": "t", "id": "id"})}
    )
    with pytest.raises(RetriableSourceError) as caught:
        pull_all(conn, "s")
    assert "hunter2" not in str(caught.value) and "hub:***@127.0.0.1:9" in str(caught.value)
    result = conn.check()
    assert not result.ok and "hunter2" not in result.message


def test_a_wrong_password_is_a_clear_fatal_verdict() -> None:
    require_server(MARIADB_URL, "MariaDB")
    parts = {
        "drivername": "mysql+pymysql",
        "host": "127.0.0.1",
        "username": "root",
        "password": Secret("CMS_DB_PASSWORD", "hunter2"),
        "database": "test",
    }
    conn = SqlConnector("cms", parts, {"s": StreamSpec("s", {"table": "t", "id": "id"})})
    result = conn.check()
    assert not result.ok
    assert "Access denied" in result.message and "root:***@127.0.0.1" in result.message
    assert "hunter2" not in result.message
    with pytest.raises(FatalSourceError):
        pull_all(conn, "s")


def test_unknown_host_is_named() -> None:
    conn = SqlConnector(
        "cms",
        {"url": "postgresql+psycopg://hub@cms-db.invalid/cms", "connect_timeout": 2},
        {"s": StreamSpec("s", {"table": "t", "id": "id"})},
    )
    result = conn.check()
    assert not result.ok and "cms-db.invalid" in result.message


def test_a_relative_sqlite_path_starts_at_the_project_folder(tmp_path: Path) -> None:
    db = CaseDb(f"sqlite:///{tmp_path / 'var' / 'cms.db'}")
    (tmp_path / "var").mkdir()
    db.create(parties=3, cases=0)
    spec = {"parties": StreamSpec("parties", streams(db)["parties"])}
    conn = SqlConnector("cms", {"url": "sqlite:///var/cms.db"}, spec, root=tmp_path)
    assert conn.check().ok
    assert len(pull_all(conn)[0]) == 3


def test_a_state_that_does_not_fit_the_ids_asks_for_a_full_refresh(sqlite_db: CaseDb) -> None:
    with pytest.raises(FatalSourceError, match="--full-refresh"):
        pull_all(connector(sqlite_db, id=["party_id", "hetu"]), state={"id": 3, "cursor": "x"})


VALID = [
    (SqlConnector.connection_schema, "url: sqlite:///var/cms.db"),
    (SqlConnector.connection_schema, "url: {secret: CMS_DB_URL}"),
    (
        SqlConnector.connection_schema,
        "{drivername: postgresql+psycopg, host: db.example.fi, username: hub,"
        " password: {secret: CMS_DB_PASSWORD}, database: cms}",
    ),
    (SqlConnector.stream_schema, "{table: v_cases, schema: cms, id: case_id, cursor: modified_at}"),
    (SqlConnector.stream_schema, "{query: 'SELECT 1 AS x', id: [x], batch_size: 10}"),
    (SqlConnector.stream_schema, "{table: t, id: id, deleted: {column: removed, value: true}}"),
]
INVALID = [
    (
        SqlConnector.connection_schema,
        "url: postgresql+psycopg://hub:hunter2@db/cms",
        "url: url is a SQLAlchemy URL without a password (sqlite:///var/cms.db), "
        "or {secret: NAME} holding the whole URL",
    ),
    (
        SqlConnector.connection_schema,
        "{drivername: mysql+pymysql, password: hunter2}",
        "password: password is a secret: write {secret: NAME}",
    ),
    (
        SqlConnector.connection_schema,
        "{url: 'sqlite://', drivername: sqlite}",
        "give either url, or drivername with the other parts of the URL; not both",
    ),
    (
        SqlConnector.stream_schema,
        "{table: t, query: SELECT 1, id: id}",
        "give either table (and maybe schema) or query; not both",
    ),
    (SqlConnector.stream_schema, "{table: t}", "missing required key 'id'"),
    (SqlConnector.stream_schema, "{table: t, id: id, batch_size: 0}", "must be at least 1"),
]


@pytest.mark.parametrize(("schema", "text"), VALID)
def test_valid_settings(schema: dict[str, Any], text: str) -> None:
    doc = parse_yaml(text, "config/systems/cms.yaml")
    assert validate(doc, schema, doc.data) == []


@pytest.mark.parametrize(("schema", "text", "message"), INVALID)
def test_invalid_settings_say_why_without_the_password(
    schema: dict[str, Any], text: str, message: str
) -> None:
    doc = parse_yaml(text, "config/systems/cms.yaml")
    problems = [str(p) for p in validate(doc, schema, doc.data)]
    assert any(message in p for p in problems), problems
    assert not any("hunter2" in p for p in problems)
