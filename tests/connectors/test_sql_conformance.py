"""The sql connector passes the conformance suite on SQLite, PostgreSQL and MariaDB.

Each island is a vendor-like case-management database: parties (names, hetu, address),
cases, a view joining them, and a table the hub writes contact details back into. Many rows
share one `modified_at`, and batches are small, so equal cursor values straddle batch
boundaries. PostgreSQL and MariaDB must be reachable under CI=true; elsewhere their tests
are skipped with the reason.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.sql import SqlConnector
from connectors.testing import Island, connector_test_class

PG_URL = os.environ.get(
    "ISLANDHUB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
MARIADB_URL = os.environ.get(
    "ISLANDHUB_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test"
)
T0 = datetime(2024, 5, 2, 8, 30)
SUPPORT = "toimeentulotuki"
FAMILY_NAMES = ["Mäkinen", "Öberg", "Virtanen", "Sjöholm", "Nieminen", "Åkerlund"]


def require_server(url: str, name: str) -> None:
    """Fail under CI=true when the server is unreachable; skip with the reason elsewhere."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        shown = sa.make_url(url).render_as_string(hide_password=True)
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is required under CI=true and cannot be reached at {shown}: {exc}")
        pytest.skip(f"{name} not reachable at {shown}")
    finally:
        engine.dispose()


@dataclass
class CaseDb:
    """A case-management system's database: tables named with a prefix, levers for tests."""

    url: str
    prefix: str = ""
    aware: bool = False  # timestamps with time zone (PostgreSQL)
    engine: sa.Engine = field(init=False)
    ticks: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        self.metadata = sa.MetaData()
        p = self.prefix
        self.parties = sa.Table(
            f"{p}parties",
            self.metadata,
            sa.Column("party_id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("family_name", sa.String(80)),
            sa.Column("given_names", sa.String(80)),
            sa.Column("hetu", sa.String(11)),
            sa.Column("street_address", sa.String(120)),
            sa.Column("postal_code", sa.String(5)),
            sa.Column("birth_date", sa.Date),
            sa.Column("removed", sa.Boolean, nullable=False, default=False),
            sa.Column("modified_at", sa.DateTime(timezone=self.aware), nullable=False),
        )
        self.cases = sa.Table(
            f"{p}cases",
            self.metadata,
            sa.Column("case_id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("case_number", sa.String(20)),
            sa.Column("party_id", sa.Integer),
            sa.Column("topic", sa.String(40)),
            sa.Column("status", sa.String(20)),
            sa.Column("fee", sa.Numeric(10, 2)),
            sa.Column("attachment_digest", sa.LargeBinary),
            sa.Column("modified_at", sa.DateTime(timezone=self.aware), nullable=False),
        )
        self.contacts = sa.Table(
            f"{p}hub_contacts",
            self.metadata,
            sa.Column("party_id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("email", sa.String(120)),
            sa.Column("phone", sa.String(40)),
        )

    @property
    def view(self) -> str:
        """Name of the view joining cases with their parties."""
        return f"{self.prefix}case_parties"

    def create(self, parties: int = 30, cases: int = 20) -> None:
        """Create the schema and fill it; the first 12 parties and 10 cases share T0."""
        p = self.prefix
        self.metadata.create_all(self.engine)
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    f"CREATE VIEW {self.view} AS SELECT c.case_id, c.case_number, c.topic, "
                    "c.status, c.fee, p.party_id, p.family_name, p.given_names, p.hetu, "
                    "p.street_address, p.postal_code, CASE WHEN c.modified_at > p.modified_at "
                    "THEN c.modified_at ELSE p.modified_at END AS modified_at "
                    f"FROM {p}cases c JOIN {p}parties p ON p.party_id = c.party_id"
                )
            )
        self.add_parties(range(1, parties + 1), same_time_first=12)
        self.add_cases(range(1, cases + 1), same_time_first=10)

    def drop(self) -> None:
        """Drop everything created (the view first)."""
        with self.engine.begin() as conn:
            conn.execute(sa.text(f"DROP VIEW IF EXISTS {self.view}"))
        self.metadata.drop_all(self.engine)
        self.engine.dispose()

    def stamp(self, tick: int | None = None) -> datetime:
        """A modification time: T0, or a later minute for each new change."""
        moment = T0 + timedelta(minutes=next(self.ticks) if tick is None else tick)
        return moment.replace(tzinfo=UTC) if self.aware else moment

    def add_parties(self, ids: range, same_time_first: int = 0) -> list[str]:
        """Insert parties; the first `same_time_first` share one modification time."""
        rows = [
            {
                "party_id": i,
                "family_name": FAMILY_NAMES[i % len(FAMILY_NAMES)],
                "given_names": "Åsa Maria" if i % 2 else "Pekka Juhani",
                "hetu": f"{(i % 28) + 1:02d}0580-{100 + i:03d}X",
                "street_address": f"Skolgatan {i} B",
                "postal_code": "22100",
                "birth_date": date(1980, 5, (i % 28) + 1),
                "removed": False,
                "modified_at": self.stamp(0) if n < same_time_first else self.stamp(),
            }
            for n, i in enumerate(ids)
        ]
        with self.engine.begin() as conn:
            conn.execute(self.parties.insert(), rows)
        return [str(i) for i in ids]

    def add_cases(
        self, ids: range, same_time_first: int = 0, topic: str | None = None
    ) -> list[str]:
        """Insert cases of existing parties (party i for case i)."""
        rows = [
            {
                "case_id": i,
                "case_number": f"SOS-2024-{i:04d}",
                "party_id": i,
                "topic": topic or (SUPPORT if i % 2 else "asumisneuvonta"),
                "status": "open",
                "fee": Decimal("12.50") + i,
                "attachment_digest": bytes([i, 0, 255]),
                "modified_at": self.stamp(0) if n < same_time_first else self.stamp(),
            }
            for n, i in enumerate(ids)
        ]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(self.cases.insert(), rows)
        return [str(i) for i in ids]

    def next_id(self, table: sa.Table) -> int:
        """One past the largest id of a table."""
        column = next(iter(table.primary_key.columns))
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(column))).scalar() or 0) + 1

    def add(self, stream: str, count: int) -> list[str]:
        """New rows for a stream: parties, or cases (with their parties) on a support topic."""
        start = self.next_id(self.parties)
        ids = range(start, start + count)
        parties = self.add_parties(ids)
        if stream == "parties":
            return parties
        return self.add_cases(ids, topic=SUPPORT)

    def delete(self, stream: str) -> str:
        """Soft-delete one row of a stream (and mark it modified now)."""
        with self.engine.begin() as conn:
            if stream == "parties":
                conn.execute(
                    self.parties.update()
                    .where(self.parties.c.party_id == 3)
                    .values(removed=True, modified_at=self.stamp())
                )
                return "3"
            conn.execute(
                self.cases.update()
                .where(self.cases.c.case_id == 5)
                .values(status="deleted", modified_at=self.stamp())
            )
            return "5"

    def pushed(self) -> list[dict[str, Any]]:
        """What the hub wrote back, in key order."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(self.contacts).order_by(self.contacts.c.party_id))
            return [dict(row._mapping) for row in rows]


def streams(db: CaseDb, schema: str | None = None) -> dict[str, dict[str, Any]]:
    """The three streams of the case-management island."""
    p = db.prefix
    parties: dict[str, Any] = {
        "table": f"{p}parties",
        "id": "party_id",
        "cursor": "modified_at",
        "batch_size": 4,
        "deleted": {"column": "removed", "value": True},
        "push_table": f"{p}hub_contacts",
        "push_key": ["party_id"],
    }
    if schema:
        parties["schema"] = schema
    return {
        "parties": parties,
        "case_parties": {
            "table": db.view,
            "id": "case_id",
            "cursor": "modified_at",
            "batch_size": 3,
            "deleted": {"column": "status", "value": "deleted"},
        },
        "support_cases": {
            "query": (
                "SELECT c.case_id, c.case_number, c.status, c.fee, p.family_name, p.hetu, "
                f"c.modified_at FROM {p}cases c JOIN {p}parties p ON p.party_id = c.party_id "
                "WHERE c.topic = :topic"
            ),
            "params": {"topic": SUPPORT},
            "id": "case_id",
            "cursor": "modified_at",
            "batch_size": 2,
            "deleted": {"column": "status", "value": "deleted"},
        },
    }


def island_for(
    db: CaseDb, connection: dict[str, Any], broken: dict[str, Any], schema: str | None = None
) -> Island:
    """The conformance handle of a case-management database."""
    return Island(
        connection=connection,
        streams=streams(db, schema),
        id_field={"parties": "party_id", "case_parties": "case_id", "support_cases": "case_id"},
        add_records=db.add,
        delete_record=db.delete,
        push_stream="parties",
        push_records=[
            {"party_id": 1, "email": "asa.makinen@example.fi", "phone": "+358401234567"},
            {"party_id": 2, "email": "pekka.oberg@example.fi", "phone": None},
        ],
        pushed=db.pushed,
        broken_connection=broken,
    )


@contextmanager
def sqlite_cases(tmp_path: Path) -> Iterator[Island]:
    """The case-management database in an SQLite file."""
    db = CaseDb(f"sqlite:///{tmp_path / 'cms.db'}")
    db.create()
    try:
        yield island_for(
            db, {"url": db.url}, {"url": f"sqlite:///{tmp_path / 'missing' / 'cms.db'}"}
        )
    finally:
        db.drop()


@contextmanager
def postgres_schema(url: str = PG_URL) -> Iterator[tuple[str, str]]:
    """A fresh PostgreSQL schema (dropped afterwards) and a URL whose search_path is it."""
    require_server(url, "PostgreSQL")
    schema = f"ih_sql_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    scoped = sa.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield scoped.render_as_string(hide_password=False), schema
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def postgres_cases(_tmp_path: Path) -> Iterator[Island]:
    """The case-management database in its own PostgreSQL schema."""
    with postgres_schema() as (url, schema):
        db = CaseDb(url, aware=True)
        db.create()
        broken = {"url": sa.make_url(url).set(database="ih_no_such_db").render_as_string(False)}
        try:
            yield island_for(db, {"url": url}, broken, schema=schema)
        finally:
            db.engine.dispose()


@contextmanager
def mariadb_cases(_tmp_path: Path) -> Iterator[Island]:
    """The case-management database as prefixed tables in MariaDB's `test` database."""
    require_server(MARIADB_URL, "MariaDB")
    db = CaseDb(MARIADB_URL, prefix=f"ih{uuid.uuid4().hex[:8]}_")
    try:
        db.create()
        broken = {"url": sa.make_url(MARIADB_URL).set(username="ih_nobody").render_as_string()}
        yield island_for(db, {"url": MARIADB_URL}, broken)
    finally:
        db.drop()


TestSqliteConformance = connector_test_class(SqlConnector, sqlite_cases)
TestPostgresConformance = pytest.mark.postgres(connector_test_class(SqlConnector, postgres_cases))
TestMariadbConformance = connector_test_class(SqlConnector, mariadb_cases)
