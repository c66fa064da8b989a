"""The API's hottest read, a resident by id: `residents.show`, prepared once, on the driver.

`show` builds its SQLAlchemy statements on every call, and every execution goes through the
engine's events and result machinery (on SQLite also a BEGIN of its own): at hundreds of reads
a second that was most of a read's CPU in benchmarks/api_load.py. This is the same read (same
redirects, same `present`, same answer) with its statements compiled once for the store's
dialect and run on the driver's cursor, their columns converted by the same SQLAlchemy type
processors. Its audit row goes through the group commit (islandhub/api/audit.py), the same
row `show` writes. tests/api/test_reads.py holds the two to each other, so they cannot drift
apart.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from islandhub.errors import StoreError
from islandhub.residents import MAX_REDIRECTS, Reader, present
from islandhub.resolve.golden import expand_lineage
from islandhub.store.db import as_utc, dumps, loads, now
from islandhub.store.tables import lineage, resident_versions, residents

_RID: sa.BindParameter[str] = sa.bindparam("rid")
# The resident row with its current version and lineage in one statement (outer joins: an id
# erased on request, or merged away, has a row and no current version here).
_CURRENT = (
    sa.select(residents, resident_versions.c.record, lineage.c.fields)
    .select_from(
        residents.outerjoin(
            resident_versions,
            sa.and_(
                residents.c.resident_id == resident_versions.c.resident_id,
                residents.c.version == resident_versions.c.version,
            ),
        ).outerjoin(
            lineage,
            sa.and_(
                lineage.c.resident_id == residents.c.resident_id,
                lineage.c.version == residents.c.version,
            ),
        )
    )
    .where(residents.c.resident_id == _RID)
)
_MERGED_INTO = sa.select(residents.c.merged_into).where(residents.c.resident_id == _RID)


class Prepared:
    """A one-parameter SELECT compiled for a dialect, its rows converted as SQLAlchemy would."""

    def __init__(self, statement: sa.Select[Any], dialect: sa.Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.positional = dialect.positional
        self.params = compiled.construct_params
        self.order = list(compiled.positiontup or ())
        columns = list(statement.selected_columns)
        self.row = namedtuple("Row", [column.key for column in columns])  # type: ignore[misc]
        self.processors: list[Callable[[Any], Any] | None] = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        ]
        self.converts = any(self.processors)

    def one_or_none(self, cursor: Any, rid: str) -> Any:
        """The row with `rid` (None when there is none)."""
        named = self.params({"rid": rid})
        cursor.execute(self.sql, [named[key] for key in self.order] if self.positional else named)
        found = cursor.fetchone()
        if found is None:
            return None
        if self.converts:
            found = [v if p is None else p(v) for p, v in zip(self.processors, found, strict=True)]
        return self.row(*found)


class ResidentReads:
    """The read by id on one engine: a pooled driver connection, two prepared statements.

    On SQLite the connection is in autocommit (the store's connect hook) and on PostgreSQL
    the API's read engine is (islandhub/api/context.py): a lone SELECT is consistent by
    itself, so no BEGIN and ROLLBACK go around it. A redirect followed after it is at worst as
    old as a read a moment earlier.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._current = Prepared(_CURRENT, engine.dialect)
        self._merged_into = Prepared(_MERGED_INTO, engine.dialect)
        self._errors = engine.dialect.loaded_dbapi.Error

    def lookup(self, resident_id: str) -> tuple[str | None, Any]:
        """The resident's current id and row, or StoreError when the store cannot be read.

        (None, None): no such resident; a row without a record: erased on request.
        """
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                return self._find(cursor, resident_id)
            finally:
                cursor.close()
        except self._errors as exc:
            connection.invalidate()
            raise StoreError(f"the store could not be read: {type(exc).__name__}") from exc
        finally:
            connection.close()

    def _find(self, cursor: Any, resident_id: str) -> tuple[str | None, Any]:
        row = self._current.one_or_none(cursor, resident_id)
        rid = resident_id if row is not None else None
        if row is not None and row.merged_into is not None:
            # The first hop is taken; show() allows MAX_REDIRECTS in all.
            rid = self._follow(cursor, row.merged_into, MAX_REDIRECTS - 1)
            row = self._current.one_or_none(cursor, rid) if rid else None
        return rid, row

    def _follow(self, cursor: Any, resident_id: str, hops: int) -> str | None:
        current: str | None = resident_id
        for _ in range(hops):
            found = self._merged_into.one_or_none(cursor, str(current))
            if found is None:
                return None
            if found.merged_into is None:
                return current
            current = found.merged_into
        return current


# The two details a read by id can have, serialised once.
_DETAIL = {found: dumps({"by": "resident_id", "found": found}) for found in (True, False)}


def audit_row(reader: Reader, rid: str | None) -> dict[str, Any]:
    """The audit row of a read by id, as `show` writes it (`residents.audit`).

    The API's purpose is masked already (auth.purpose); the detail holds no national id.
    """
    return {
        "at": now(),
        "actor": reader.actor,
        "action": "read",
        "purpose": reader.purpose,
        "resident_id": rid,
        "detail": _DETAIL[rid is not None],
    }


def answer(resident_id: str, rid: str | None, row: Any) -> dict[str, Any] | None:
    """What `show(store, reader, resident_id=...)` answers, from what `lookup` found."""
    if rid is None or row is None or row.record is None:
        return None  # unknown; or erased on the resident's request (the id remains)
    return {
        "resident_id": rid,
        "requested_id": resident_id if resident_id != rid else None,
        "version": row.version,
        "active": row.active,
        "updated_at": as_utc(row.updated_at).isoformat(),
        "record": present(loads(row.record)),
        "lineage": expand_lineage(loads(row.fields)),
    }
