"""Opens the store (SQLite or PostgreSQL) and brings its schema to the newest migration."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DatabaseError, NoSuchModuleError, OperationalError

from islandhub.errors import STORE_URL_ADVICE, ConfigError, StoreError

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
# The migration that seals national ids (a store upgraded past it is compacted afterwards).
SEALING_REVISION = "0008"
# An arbitrary constant: the PostgreSQL advisory lock that serialises migrations.
_MIGRATION_LOCK = 7_530_001
# Another: the one that lets one transaction at a time write golden records (lock_residents).
_PUBLISH_LOCK = 7_530_002
# Bytes per page of a new SQLite store.
PAGE_SIZE = 16_384


def now() -> datetime:
    """The current time, timezone-aware (UTC); every timestamp the store writes."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """A timestamp read back from the store, made timezone-aware (SQLite drops the zone)."""
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def dumps(value: Any) -> str:
    """Serialise a JSON document the one way the store does (stable, compact, UTF-8).

    orjson, because every record is serialised several times on its way through (payload
    hash, mapped fields, golden record): the standard library's encoder was the largest
    single cost of a sync in `make bench`.
    """
    return orjson.dumps(
        value, default=_plain, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
    ).decode()


def _plain(value: Any) -> Any:
    # Values orjson does not know (Decimal from SQL islands, sets): their plain text form.
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    raise TypeError(f"cannot store a {type(value).__name__} as JSON")


def loads(text: str | bytes) -> Any:
    """Parse a JSON document written by `dumps`."""
    return orjson.loads(text)


@dataclass
class Store:
    """The store of one hub: an engine, migrated, with helpers every step shares."""

    engine: Engine

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One transaction: everything inside commits together or not at all."""
        with self.engine.connect() as conn:
            # SQLite: take the write lock at the start (BEGIN IMMEDIATE); a deferred
            # transaction that upgrades its read lock later can fail under concurrent runs.
            conn.execution_options(sqlite_immediate=True)
            with conn.begin():
                yield conn

    def connect(self) -> Connection:
        """A connection for reads (the caller closes it)."""
        return self.engine.connect()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        _ensure_sqlite_folder(url)
        engine = sa.create_engine(url, connect_args={"timeout": 60})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let Python's sqlite3 leave transactions to us (BEGIN IMMEDIATE in Store.begin).
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA busy_timeout=60000")
            # A new store's pages (an existing store keeps its own): 16 KiB holds about
            # twenty golden records where 4 KiB held four, so a sync splits and writes fewer
            # pages: the ingest benchmark's sync ran about 4 % faster (docs/store.md).
            cursor.execute(f"PRAGMA page_size={PAGE_SIZE}")
            _use_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
            # 32 MB: the hot index pages stay cached (64 MB measured no faster on the ingest
            # benchmark, and its pages count in the sync's peak memory).
            cursor.execute("PRAGMA cache_size=-32768")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            immediate = conn.get_execution_options().get("sqlite_immediate")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def _use_wal(cursor: Any) -> None:
    """Put the database in WAL mode (readers never wait for the writer), once.

    Switching needs the database to itself, and SQLite answers "database is locked" at once,
    without its busy handler, when another process opening a new store holds a lock: so the
    switch is retried for a while, and skipped when the database is in WAL mode already.
    """
    deadline = time.monotonic() + 60
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _ensure_sqlite_folder(url: str) -> None:
    database = sa.engine.make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _alembic_config(conn: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def _head() -> str | None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


def lock_residents(conn: Connection) -> None:
    """Wait until no other transaction is publishing golden records; hold that until commit.

    Syncs of different islands run at once (their leases are per stream) and may publish the
    same residents. On PostgreSQL (READ COMMITTED) each would read the links, keys and
    current versions before the other committed, and then found one person twice, write the
    same version number twice (a unique-key failure that fails the run), or write a golden
    record without the other island's change (a lost update); tests/concurrency showed all
    three. So a publishing transaction first takes this advisory lock, released when it
    commits: publishes queue, the rest of the runs (extract, land, map) still overlap.
    SQLite needs nothing: every write transaction there begins IMMEDIATE, so they queue.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PUBLISH_LOCK})


def migrate(engine: Engine) -> None:
    """Upgrade the schema to the newest migration (a no-op when it is already there)."""
    head = _head()
    with engine.connect() as conn:
        before = MigrationContext.configure(conn).get_current_revision()
        if before == head:
            return
    with engine.connect() as conn:
        # SQLite: the write lock first (BEGIN IMMEDIATE), as the advisory lock on PostgreSQL.
        # Else two processes opening a new store at once both read "no schema", and the
        # second fails "database is locked" at its first write (tests/concurrency showed it).
        conn.execution_options(sqlite_immediate=True)
        with conn.begin():
            if engine.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
            command.upgrade(_alembic_config(conn), "head")
    if before is not None and before < SEALING_REVISION:
        compact(engine)  # the national ids it sealed must not linger in freed pages


def compact(engine: Engine) -> None:
    """Leave no old row images behind after values were rewritten (sealed, or re-sealed).

    SQLite: VACUUM writes a new file of live rows only, and the WAL is truncated. PostgreSQL
    keeps old row versions in the table files until `VACUUM FULL` (docs/privacy.md): that
    locks tables for long on a big store, so it is the operator's to schedule.
    """
    if engine.dialect.name != "sqlite":
        log.warning(
            "national ids were rewritten: run VACUUM FULL on the hub's tables so that no old "
            "row version keeps them (docs/privacy.md)"
        )
        return
    raw = engine.raw_connection()
    try:
        driver = raw.driver_connection
        assert driver is not None
        driver.execute("VACUUM")  # autocommit: the store's connections leave BEGIN to it
        driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()


def open_store(url: str, *, migrate_schema: bool = True) -> Store:
    """Open the store at `url`, migrating it on first use.

    The national-id key of this process must be the one the store is sealed with
    (islandhub/store/sealing.py): another key raises KeyMismatch (a ConfigError).
    """
    from islandhub.store.sealing import verify

    safe = sa.engine.make_url(url).render_as_string(hide_password=True)
    try:
        engine = _engine(url)
        if migrate_schema:
            migrate(engine)
            verify(engine, safe)
    except DatabaseError as exc:
        # Unreachable (OperationalError), or a file of other bytes ("file is not a database",
        # the bare DatabaseError). Anything else, a failing migration, is raised as it is.
        if not isinstance(exc, OperationalError) and type(exc) is not DatabaseError:
            raise
        raise StoreError(f"cannot open the store at {safe}: {exc.orig}") from exc
    except (NoSuchModuleError, ImportError) as exc:  # a driver that is not installed here
        raise ConfigError(
            f"the store at {safe}: no such database driver here ({exc}); {STORE_URL_ADVICE}"
        ) from exc
    return Store(engine)
