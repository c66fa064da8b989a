"""The sql connector: an island's database tables, views and SELECTs, read incrementally by keyset.

Case-management and other vendor systems often give the municipality read access to a few
database views instead of an API. A stream names a table or view (or a SELECT) with its id
column(s) and an incremental `cursor` column such as `modified_at`. Rows are read in
(cursor, id) order, page by page, with a keyset condition

    cursor > :c OR (cursor = :c AND id > :i)

so rows sharing one cursor value are never lost at a batch boundary, and the state after
each batch is that last (cursor, id): resuming from any committed batch loses nothing.
Values become plain JSON (ISO text for dates and times, text for decimals, base64 for
bytes). Writes (`push`) are upserts into a `push_table`, idempotent by its key columns.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from connectors.base import (
    IDEMPOTENCY_KEY,
    Batch,
    CheckResult,
    Connector,
    ErasureAnswer,
    State,
    StreamSpec,
)
from islandhub.errors import FatalSourceError, RetriableSourceError, SourceError
from islandhub.privacy.masking import mask_text
from islandhub.secrets import reveal

DEFAULT_BATCH_SIZE = 1000
PAGES_PER_QUERY = 10  # a query reads this many batches; each page is a fresh keyset query
DEFAULT_CONNECT_TIMEOUT = 10
KEY_SEPARATOR = "::"  # joins the values of a composite id into one source id (`_key`)

# A URL written with a password in it: user:password@host.
_PASSWORD_IN_URL = r"^[^/]*//[^/@]*:[^/@]*@"

_IDENTIFIER = {"type": "string", "minLength": 1, "maxLength": 128}
_IDENTIFIERS = {"type": "array", "items": _IDENTIFIER, "minItems": 1, "uniqueItems": True}

# Errors that will not go away by retrying: wrong credentials, unknown database, a missing
# table or column, bad SQL. PostgreSQL SQLSTATE classes, MySQL/MariaDB error numbers,
# and words of the messages of drivers that carry neither (SQLite, libpq at connect).
_FATAL_SQLSTATE_CLASSES = ("28", "3D", "42")
_FATAL_MYSQL_ERRORS = {1044, 1045, 1049, 1054, 1064, 1146}
_FATAL_WORDS = (
    "authentication failed",
    "access denied",
    "no such table",
    "no such column",
    "syntax error",
    "does not exist",
    "unknown database",
)


class SqlConnector(Connector):
    """Reads tables, views or SELECTs of a database by keyset; upserts pushed records."""

    kind = "sql"
    connection_schema = {
        "type": "object",
        "properties": {
            "url": {
                "anyOf": [
                    {"type": "string", "minLength": 1, "not": {"pattern": _PASSWORD_IN_URL}},
                    {"secret": True},
                ],
                "x-message": (
                    "url is a SQLAlchemy URL without a password "
                    "(sqlite:///var/cms.db), or {secret: NAME} holding the whole URL"
                ),
                "description": "SQLAlchemy URL, e.g. postgresql+psycopg://hub@db.example.fi/cms",
            },
            "drivername": {"type": "string", "description": "e.g. postgresql+psycopg"},
            "host": {"type": "string", "minLength": 1},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            "username": {"type": "string", "minLength": 1},
            "password": {"secret": True, "description": "{secret: NAME}, never the value"},
            "database": {"type": "string", "minLength": 1},
            "query": {"type": "object", "additionalProperties": {"type": "string"}},
            "connect_timeout": {"type": "integer", "minimum": 1, "maximum": 600},
        },
        "oneOf": [{"required": ["url"]}, {"required": ["drivername"]}],
        "x-message": "give either url, or drivername with the other parts of the URL; not both",
        "additionalProperties": False,
    }
    stream_schema = {
        "type": "object",
        "properties": {
            "table": {**_IDENTIFIER, "description": "table or view to read"},
            "schema": {**_IDENTIFIER, "description": "database schema of the table"},
            "query": {"type": "string", "minLength": 1, "description": "a SELECT to read"},
            "params": {"type": "object", "description": "values of the query's :parameters"},
            "columns": {**_IDENTIFIERS, "description": "read only these columns"},
            "id": {"anyOf": [_IDENTIFIER, _IDENTIFIERS], "description": "id column(s)"},
            "cursor": {**_IDENTIFIER, "description": "column that grows when a row changes"},
            "batch_size": {"type": "integer", "minimum": 1, "maximum": 1000000},
            "deleted": {
                "type": "object",
                "properties": {
                    "column": _IDENTIFIER,
                    "value": {"type": ["string", "integer", "boolean"]},
                },
                "required": ["column", "value"],
                "additionalProperties": False,
            },
            "push_table": {**_IDENTIFIER, "description": "table that push() upserts into"},
            "push_schema": _IDENTIFIER,
            "push_key": {**_IDENTIFIERS, "description": "key columns of push_table"},
            "erase": {
                "description": "Erasure on request: delete from `table` where `key` is the "
                "record's id, unless a hold's condition holds for one of the records.",
                "type": "object",
                "properties": {
                    "table": _IDENTIFIER,
                    "key": _IDENTIFIER,
                    "holds": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "where": {
                                    "type": "string",
                                    "minLength": 1,
                                    "description": "SQL condition over the stream's rows",
                                },
                                "code": {"type": "string", "minLength": 1},
                                "message": {
                                    "type": "object",
                                    "required": ["fi", "sv", "en"],
                                    "additionalProperties": {"type": "string"},
                                },
                            },
                            "required": ["where", "code", "message"],
                            "additionalProperties": False,
                        },
                    },
                },
                "required": ["table", "key"],
                "additionalProperties": False,
            },
        },
        "required": ["id"],
        "oneOf": [{"required": ["table"]}, {"required": ["query"]}],
        "x-message": "give either table (and maybe schema) or query; not both",
        "additionalProperties": False,
    }

    def __init__(self, system: str, connection: Any, streams: Any, *, root: Path | None = None):
        super().__init__(system, connection, streams, root=root)
        self.url = _database_url(connection, root)
        self._password = self.url.password if isinstance(self.url.password, str) else None
        self._timeout = int(connection.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT))
        self._engine: sa.Engine | None = None

    @property
    def where(self) -> str:
        """The database as it may be printed: the password hidden."""
        return self.url.render_as_string(hide_password=True)

    @property
    def engine(self) -> sa.Engine:
        """The engine, made on first use; no pool, so no connection outlives its use."""
        if self._engine is None:
            try:
                self._engine = sa.create_engine(
                    self.url, poolclass=NullPool, connect_args=self._connect_args()
                )
            except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
                raise FatalSourceError(f"{self.system}: unusable URL {self.where}: {exc}") from None
        return self._engine

    def check(self) -> CheckResult:
        """Connect, then read at most one row of every stream (its named columns must exist)."""
        try:
            with self._translated("cannot connect"), self.engine.connect() as conn:
                conn.execute(sa.select(sa.literal_column("1"))).all()
                for name in self.streams():
                    stream = self._stream(name)
                    with self._translated(f"stream {name!r} ({stream.describe()})"):
                        conn.execute(stream.probe(), stream.params).all()
        except SourceError as exc:
            return CheckResult(False, str(exc))
        return CheckResult(True, f"connected to {self.where}; {len(self.stream_specs)} streams")

    def pull(self, stream: str, state: State | None) -> Iterator[Batch]:
        """Yield batches of rows after the state's (cursor, id), in that order."""
        spec = self._stream(stream)
        after = spec.position_from_state(state)
        with self._translated(f"stream {stream!r} ({spec.describe()})"):
            while True:
                read = 0
                for rows in self._page(spec, after):
                    batch = spec.batch(rows)
                    after = spec.position(rows[-1])
                    read += len(rows)
                    yield batch
                if read < spec.page_size:
                    return

    @classmethod
    def push_problem(cls, options: Mapping[str, Any]) -> str | None:
        """A sql stream accepts writes when it names a push_table."""
        if not options.get("push_table"):
            return "the stream has no push_table to upsert into (docs/connectors-sql-ics.md)"
        return None

    def push(self, stream: str, records: list[dict[str, Any]]) -> None:
        """Upsert records into the stream's `push_table` in one transaction (idempotent).

        The upsert by `push_key` is what makes a redelivery harmless; a record's
        IDEMPOTENCY_KEY is not a column of the table and is left out.
        """
        records = [{k: v for k, v in r.items() if k != IDEMPOTENCY_KEY} for r in records]
        spec = self._stream(stream)
        target = spec.push_target(records)
        keys = spec.push_key
        with self._translated(f"push to {target.fullname}"), self.engine.begin() as conn:
            for index, record in enumerate(records):
                missing = [key for key in keys if record.get(key) is None]
                if missing:
                    raise FatalSourceError(
                        f"{self.system}: push to {target.fullname}: record {index} "
                        f"has no value for key column {missing[0]!r}"
                    )
                _upsert(conn, target, keys, record)

    def erase(self, stream: str, source_ids: list[str], *, dry_run: bool) -> ErasureAnswer:
        """Check the stream's holds over the records; unless one holds, delete (not dry_run)."""
        options = self._stream(stream).options.get("erase")
        if not options:
            return ErasureAnswer(allowed=True, supported=False)
        spec = self._stream(stream)
        if len(spec.ids) != 1:
            raise FatalSourceError(f"{self.system}.{stream}: erase needs a single id column")
        relation = spec.source
        # Compared as text: source ids are strings, the column may be an integer.
        id_column = sa.cast(relation.c[spec.ids[0]], sa.String)
        ids = [str(i) for i in source_ids]
        errors: list[dict[str, Any]] = []
        with self._translated(f"erase in {stream!r}"), self.engine.begin() as conn:
            for hold in options.get("holds", []):
                held: sa.Select[Any] = (
                    sa.select(sa.literal_column("1"))
                    .select_from(relation)
                    .where(id_column.in_(ids), sa.text(f"({hold['where']})"))
                )
                if conn.execute(held.limit(1), spec.params).first() is not None:
                    errors.append({"code": hold["code"], "message": dict(hold["message"])})
            if errors or dry_run:
                return ErasureAnswer(allowed=not errors, errors=tuple(errors))
            target = sa.table(options["table"], sa.column(options["key"]))
            key = sa.cast(target.c[options["key"]], sa.String)
            erased = conn.execute(sa.delete(target).where(key.in_(ids))).rowcount
        return ErasureAnswer(allowed=True, erased=int(erased or 0))

    def _page(self, spec: _Stream, after: Position | None) -> Iterator[Sequence[Any]]:
        """Rows after `after`, at most one page, fetched batch by batch from the server."""
        statement = spec.select_after(after).limit(spec.page_size)
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=spec.batch_size).execute(
                statement, spec.params
            )
            yield from result.mappings().partitions()

    def _stream(self, name: str) -> _Stream:
        spec = self.stream_specs.get(name)
        if spec is None:
            known = ", ".join(self.streams()) or "none"
            raise FatalSourceError(f"{self.system}: no stream {name!r}; streams: {known}")
        return _Stream.from_spec(spec)

    def _connect_args(self) -> dict[str, Any]:
        backend = self.url.get_backend_name()
        if backend in ("postgresql", "mysql", "mariadb"):
            return {"connect_timeout": self._timeout}
        if backend == "sqlite":
            return {"timeout": self._timeout}
        return {}

    @contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        """Turn driver errors into the hub's: retriable (connection) or fatal (schema, auth)."""
        try:
            yield
        except sa.exc.DBAPIError as exc:
            reason = self._reason(exc)
            message = f"{self.system}: {what}: {reason} (at {self.where})"
            # `from None`: the driver's error text carries the SQL and its parameters,
            # which may hold personal data; the reason above is all an operator needs.
            if _is_fatal(exc):
                raise FatalSourceError(message) from None
            raise RetriableSourceError(message) from None

    def _reason(self, exc: sa.exc.DBAPIError) -> str:
        args: tuple[Any, ...] = tuple(getattr(exc.orig, "args", ()))
        if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):
            text = f"{args[1]} (error {args[0]})"  # MySQL and MariaDB drivers: (number, text)
        else:
            text = str(exc.orig)
        lines = text.strip().splitlines() or [type(exc.orig).__name__]
        reason = lines[0].strip()
        if self._password:
            reason = reason.replace(self._password, "***")
        return mask_text(reason)


# --- one stream's options, and the SQL they make ------------------------------------------

Position = tuple[Any, tuple[Any, ...]]  # (cursor value or None, id values) of the last row


@dataclass(frozen=True)
class _Stream:
    """A stream's options, checked, and the statements they give."""

    name: str
    source: sa.FromClause
    ids: tuple[str, ...]
    cursor: str | None
    columns: tuple[str, ...]
    params: dict[str, Any]
    batch_size: int
    deleted: tuple[str, Any] | None
    options: Mapping[str, Any]

    @classmethod
    def from_spec(cls, spec: StreamSpec) -> _Stream:
        """Read a StreamSpec's options."""
        options = spec.options
        raw_ids = options["id"]
        ids = (raw_ids,) if isinstance(raw_ids, str) else tuple(raw_ids)
        cursor = options.get("cursor")
        deleted = options.get("deleted")
        needed = [*ids, *([cursor] if cursor else []), *([deleted["column"]] if deleted else [])]
        columns = tuple(dict.fromkeys([*options.get("columns", []), *needed]))
        return cls(
            name=spec.name,
            source=_source(options, needed),
            ids=ids,
            cursor=cursor,
            columns=columns if options.get("columns") else (),
            params=dict(options.get("params", {})),
            batch_size=int(options.get("batch_size", DEFAULT_BATCH_SIZE)),
            deleted=(deleted["column"], deleted["value"]) if deleted else None,
            options=options,
        )

    @property
    def page_size(self) -> int:
        """Rows one keyset query reads (it is streamed from the server in batches)."""
        return self.batch_size * PAGES_PER_QUERY

    @property
    def order(self) -> list[str]:
        """The keyset: cursor first (when there is one), then the id columns."""
        return [*([self.cursor] if self.cursor else []), *self.ids]

    def describe(self) -> str:
        """What the stream reads, for messages."""
        if "query" in self.options:
            return "query"
        schema = self.options.get("schema")
        table = f"{schema}.{self.options['table']}" if schema else self.options["table"]
        return f"table {table}"

    def probe(self) -> sa.Select[Any]:
        """At most one row, naming every column the stream relies on."""
        return sa.select(*(self.source.c[name] for name in self.order)).limit(1)

    def select_after(self, after: Position | None) -> sa.Select[Any]:
        """Rows after `after` in keyset order."""
        if self.columns:
            statement = sa.select(*(self.source.c[name] for name in self.columns))
        else:
            statement = sa.select(sa.literal_column("*")).select_from(self.source)
        if self.cursor:
            # A row without a cursor value has no place in the keyset order.
            statement = statement.where(self.source.c[self.cursor].is_not(None))
        if after is not None:
            values = [*([after[0]] if self.cursor else []), *after[1]]
            statement = statement.where(_after([self.source.c[n] for n in self.order], values))
        return statement.order_by(*(self.source.c[name] for name in self.order))

    def batch(self, rows: Sequence[Any]) -> Batch:
        """Rows as records (soft-deleted ones as deleted ids), with the state they reach."""
        records, deleted = [], []
        for row in rows:
            record = {str(key): to_json(value) for key, value in row.items()}
            if len(self.ids) > 1:
                record["_key"] = self.key(record)
            if self.deleted and _matches(row[self.deleted[0]], self.deleted[1]):
                deleted.append(self.key(record))
            else:
                records.append(record)
        return Batch(records, self.state(self.position(rows[-1])), deleted=deleted)

    def key(self, record: Mapping[str, Any]) -> str:
        """The source id of a record: its id value, or the id values joined by '::'."""
        return KEY_SEPARATOR.join(str(record[name]) for name in self.ids)

    def position(self, row: Mapping[str, Any]) -> Position:
        """The keyset position of a row."""
        return (row[self.cursor] if self.cursor else None, tuple(row[n] for n in self.ids))

    def state(self, position: Position) -> State:
        """A position as plain JSON, with the types needed to bind it again."""
        cursor, ids = position
        state: State = {"id": [to_json(v) for v in ids] if len(ids) > 1 else to_json(ids[0])}
        types: dict[str, Any] = {}
        if self.cursor:
            state["cursor"] = to_json(cursor)
            if _type_tag(cursor):
                types["cursor"] = _type_tag(cursor)
        if any(_type_tag(v) for v in ids):
            types["id"] = [_type_tag(v) for v in ids]
        if types:
            state["types"] = types
        return state

    def position_from_state(self, state: State | None) -> Position | None:
        """The position a state holds, or None to start from the beginning."""
        if not state or "id" not in state:
            return None
        types = state.get("types", {})
        raw_ids = state["id"] if len(self.ids) > 1 else [state["id"]]
        id_types = types.get("id") or [None] * len(self.ids)
        if not isinstance(raw_ids, list) or len(raw_ids) != len(self.ids):
            raise FatalSourceError(
                f"stream {self.name!r}: the saved state does not fit id columns "
                f"{', '.join(self.ids)}; run once with --full-refresh"
            )
        ids = tuple(_from_json(v, t) for v, t in zip(raw_ids, id_types, strict=True))
        cursor = _from_json(state.get("cursor"), types.get("cursor")) if self.cursor else None
        return cursor, ids

    @property
    def push_key(self) -> list[str]:
        """Key columns of the push table: `push_key`, else the stream's id columns."""
        return list(self.options.get("push_key") or self.ids)

    def push_target(self, records: list[dict[str, Any]]) -> sa.TableClause:
        """The push table, with every column the records name."""
        name = self.options.get("push_table")
        if not name:
            raise FatalSourceError(f"stream {self.name!r} accepts no writes: set push_table")
        columns = dict.fromkeys([*self.push_key, *(str(k) for r in records for k in r)])
        return sa.table(
            name, *(sa.column(c) for c in columns), schema=self.options.get("push_schema")
        )


def _source(options: Mapping[str, Any], needed: list[str]) -> sa.FromClause:
    """The table, or the SELECT as a subquery named `src`, with the columns we refer to."""
    names = dict.fromkeys([*options.get("columns", []), *needed])
    columns: list[sa.ColumnClause[Any]] = [sa.column(name) for name in names]
    if "query" in options:
        return sa.text(options["query"]).columns(*columns).subquery("src")
    return sa.table(options["table"], *columns, schema=options.get("schema"))


def _after(columns: list[sa.ColumnElement[Any]], values: list[Any]) -> sa.ColumnElement[bool]:
    """(c1, c2, ...) > (v1, v2, ...), written out so every database can use it.

    c1 > v1 OR (c1 = v1 AND (c2 > v2 OR (c2 = v2 AND ...)))
    """
    column, value = columns[0], _bound(values[0])
    if len(columns) == 1:
        return column > value
    return sa.or_(column > value, sa.and_(column == value, _after(columns[1:], values[1:])))


def _bound(value: Any) -> sa.BindParameter[Any]:
    # Untyped: the driver sends the value as it is and the database compares it with the
    # column's own type (a typed bind could cast a timestamp with time zone to text).
    return sa.bindparam(None, value, type_=sa.types.NullType())


def _upsert(
    conn: sa.Connection, target: sa.TableClause, keys: list[str], record: dict[str, Any]
) -> None:
    """UPDATE the row with this key, or INSERT it when there is none: portable and idempotent."""
    match = sa.and_(*(target.c[key] == _bound(record[key]) for key in keys))
    values = {c: _bound(v) for c, v in record.items() if c not in keys}
    if values:
        found = conn.execute(target.update().where(match).values(values)).rowcount
    else:
        found = len(conn.execute(sa.select(target.c[keys[0]]).where(match)).all())
    if not found:
        conn.execute(target.insert().values({c: _bound(v) for c, v in record.items()}))


def _matches(value: Any, wanted: Any) -> bool:
    """A soft-delete marker: equal as stored, or as its JSON text (Decimal, dates)."""
    return bool(value == wanted or to_json(value) == wanted)


# --- values as plain JSON -------------------------------------------------------------------


def to_json(value: Any) -> Any:
    """A database value as plain JSON: ISO text for dates, text for decimals, base64 bytes."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        return {str(key): to_json(item) for key, item in value.items()}
    return str(value)  # UUID, interval, network address, enum, ...


def _type_tag(value: Any) -> str | None:
    """Which non-JSON type a keyset value had, so the state can bind it again as such."""
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, date):
        return "date"
    if isinstance(value, time):
        return "time"
    if isinstance(value, Decimal):
        return "decimal"
    if isinstance(value, bytes | bytearray | memoryview):
        return "bytes"
    return None


def _from_json(value: Any, tag: str | None) -> Any:
    if value is None or tag is None:
        return value
    parse = {
        "datetime": datetime.fromisoformat,
        "date": date.fromisoformat,
        "time": time.fromisoformat,
        "decimal": Decimal,
        "bytes": base64.b64decode,
    }.get(tag)
    if parse is None:
        raise FatalSourceError(f"unknown value type {tag!r} in the saved state")
    return parse(value)


# --- connecting -----------------------------------------------------------------------------


def _database_url(connection: Mapping[str, Any], root: Path | None) -> sa.URL:
    """The SQLAlchemy URL: `url` (maybe a secret) or its parts; relative SQLite paths from root."""
    try:
        if connection.get("url") is not None:
            url = sa.make_url(str(reveal(connection["url"])))
        else:
            url = sa.URL.create(
                str(connection["drivername"]),
                username=connection.get("username"),
                password=reveal(connection.get("password")),
                host=connection.get("host"),
                port=connection.get("port"),
                database=connection.get("database"),
                query=dict(connection.get("query", {})),
            )
    except (sa.exc.ArgumentError, KeyError, ValueError) as exc:
        # Never the URL itself here: it may hold a password.
        raise FatalSourceError(f"unusable database URL ({type(exc).__name__})") from None
    database = url.database
    if (
        url.get_backend_name() == "sqlite"
        and root is not None
        and database
        and database != ":memory:"
        and not database.startswith("file:")
        and not Path(database).is_absolute()
    ):
        url = url.set(database=str(root / database))
    return url


def _is_fatal(exc: sa.exc.DBAPIError) -> bool:
    """True when retrying will not help (see _FATAL_* above)."""
    if isinstance(exc, sa.exc.ProgrammingError | sa.exc.IntegrityError | sa.exc.DataError):
        return True
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate[:2] in _FATAL_SQLSTATE_CLASSES:
        return True
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int) and args[0] in _FATAL_MYSQL_ERRORS:
        return True
    text = str(orig).lower()
    return any(words in text for words in _FATAL_WORDS)
