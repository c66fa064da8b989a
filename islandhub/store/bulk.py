"""Bulk writes and id lookups on the hot path of a sync, with little per-row overhead.

SQLAlchemy Core costs about 5 µs per row and statement to build parameters; a sync writes
several rows per source record, so `make bench` showed that overhead as the largest part of
a run. These helpers hand positional rows straight to the driver's executemany with SQL
built once per table, and look ids up with one parameter (a JSON array on SQLite, an array
on PostgreSQL) instead of thousands of bound names. Everything else uses SQLAlchemy Core.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection

from islandhub.store.db import dumps


def timestamp(conn: Connection, value: datetime) -> Any:
    """A timestamp in the form the driver stores it, as SQLAlchemy would write it."""
    if conn.dialect.name == "sqlite":
        # SQLAlchemy's SQLite DATETIME format (naive, UTC by the hub's convention).
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


@cache
def _insert_sql(dialect: str, table: str, columns: tuple[str, ...], keys: tuple[str, ...]) -> str:
    mark = "?" if dialect == "sqlite" else "%s"
    names = ", ".join(columns)
    sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join(mark for _ in columns)})"
    if keys:
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in keys)
        sql += f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
    return sql


def insert_rows(
    conn: Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    upsert_on: Sequence[str] = (),
) -> None:
    """Insert positional rows; with `upsert_on`, overwrite the rows whose key exists."""
    if not rows:
        return
    sql = _insert_sql(conn.dialect.name, table.name, tuple(columns), tuple(upsert_on))
    conn.exec_driver_sql(sql, list(rows))


def member_of(
    conn: Connection, column: sa.ColumnElement[Any], values: Iterable[str]
) -> sa.ColumnElement[bool]:
    """`column IN values` with one bound parameter, however many values there are."""
    values = list(values)
    if conn.dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(None, values, type_=ARRAY(sa.String)))
    members = sa.func.json_each(sa.bindparam(None, dumps(values), type_=sa.String)).table_valued(
        "value"
    )
    return column.in_(sa.select(members.c.value))


def of_sources(
    conn: Connection, table: sa.Table, sources: Iterable[tuple[str, str, str]]
) -> sa.ColumnElement[bool]:
    """`table`'s rows of `sources` (system, stream, source_id), for a table keyed by them.

    One `member_of` per (system, stream), so the key's index serves: source_id alone is
    the last column of every such key.
    """
    by_stream: dict[tuple[str, str], list[str]] = defaultdict(list)
    for system, stream, source_id in sources:
        by_stream[(system, stream)].append(source_id)
    return sa.or_(
        sa.false(),
        *(
            sa.and_(
                table.c.system == system,
                table.c.stream == stream,
                member_of(conn, table.c.source_id, sorted(set(ids))),
            )
            for (system, stream), ids in sorted(by_stream.items())
        ),
    )
