"""Splink's parsing of column names and level conditions, memoised.

Splink parses with sqlglot whenever it sets up a Linker: every column name it meets (the
name, and four constant strings, each time) and every comparison level's condition (once to
validate it, again to find its columns): about 3,500 parses a Linker, whatever the number
of records. On the demo that was a third of an incremental resolution pass
(`benchmarks/resolution.py`, cProfile). Each result depends on the text and the dialect
alone: a column's builder is a frozen dataclass, a condition's columns are handed out as a
new list each time, and a condition that does not parse is not remembered (it raises again).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from splink.internals import comparison_level, parse_sql, settings
from splink.internals.input_column import SqlglotColumnTreeBuilder

_parse = SqlglotColumnTreeBuilder.from_raw_column_name_or_column_reference
_own_parse = vars(SqlglotColumnTreeBuilder)["from_raw_column_name_or_column_reference"]
_columns_used = parse_sql.get_columns_used_from_sql
_validate = comparison_level.ComparisonLevel._validate_sql


@lru_cache(maxsize=4096)
def _builder(input_str: str, sqlglot_dialect: str | None) -> SqlglotColumnTreeBuilder:
    return _parse(input_str, sqlglot_dialect)


def _memoised(
    _cls: type[SqlglotColumnTreeBuilder], input_str: str, sqlglot_dialect: str | None
) -> SqlglotColumnTreeBuilder:
    return _builder(input_str, sqlglot_dialect)


@lru_cache(maxsize=4096)
def _columns_of(
    sql: str, sqlglot_dialect: str | None, retain_table_prefix: bool
) -> tuple[str, ...]:
    return tuple(_columns_used(sql, sqlglot_dialect, retain_table_prefix))


def columns_used_from_sql(
    sql: str, sqlglot_dialect: str | None = None, retain_table_prefix: bool = False
) -> list[str]:
    """`parse_sql.get_columns_used_from_sql`, memoised: a new list each call, as Splink's."""
    return list(_columns_of(sql, sqlglot_dialect, retain_table_prefix))


_valid: set[tuple[str, str | None]] = set()


def _validate_sql(level: Any) -> bool:
    """`ComparisonLevel._validate_sql`, once per condition and dialect that parses."""
    seen = (level.sql_condition, level.sqlglot_dialect)
    if seen not in _valid:
        _validate(level)  # raises ValueError for a condition that does not parse
        _valid.add(seen)
    return True


def _routes() -> list[tuple[Any, str, Any, Any]]:
    """(owner, attribute, Splink's own, the memo) for each place Splink parses through."""
    # Splink's modules hold the function under their own name: each is pointed at the memo.
    return [
        (
            SqlglotColumnTreeBuilder,
            "from_raw_column_name_or_column_reference",
            _own_parse,
            classmethod(_memoised),
        ),
        (comparison_level, "get_columns_used_from_sql", _columns_used, columns_used_from_sql),
        (settings, "get_columns_used_from_sql", _columns_used, columns_used_from_sql),
        (comparison_level.ComparisonLevel, "_validate_sql", _validate, _validate_sql),
    ]


def install() -> None:
    """Route Splink's parsing through the memos (idempotent)."""
    for owner, name, _own, memo in _routes():
        setattr(owner, name, memo)


@contextmanager
def as_shipped() -> Iterator[None]:
    """Splink's own parsing inside the block, the memos again after it.

    For Splink used directly, as a peer in benchmarks/resolution.py: the memo is the hub's.
    """
    for owner, name, own, _memo in _routes():
        setattr(owner, name, own)
    try:
        yield
    finally:
        install()
