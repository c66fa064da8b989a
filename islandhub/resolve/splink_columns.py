"""Splink's column-name parsing, memoised.

Splink turns every column name it meets into a `SqlglotColumnTreeBuilder` by parsing the
name, and four constant strings each time, with sqlglot: about 3,000 parses for each
Linker set up for prediction, whatever the number of records. On the demo that was a
quarter of an incremental resolution pass (`benchmarks/resolution.py`, cProfile). The
builder is a frozen dataclass made from the name and the dialect alone, so one parse per
name and dialect gives the same builders; errors are not cached and raise as before.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from splink.internals.input_column import SqlglotColumnTreeBuilder

_parse = SqlglotColumnTreeBuilder.from_raw_column_name_or_column_reference


@lru_cache(maxsize=4096)
def _builder(input_str: str, sqlglot_dialect: str | None) -> SqlglotColumnTreeBuilder:
    return _parse(input_str, sqlglot_dialect)


def _memoised(
    _cls: type[SqlglotColumnTreeBuilder], input_str: str, sqlglot_dialect: str | None
) -> SqlglotColumnTreeBuilder:
    return _builder(input_str, sqlglot_dialect)


def install() -> None:
    """Route Splink's parsing of column names through the memo (idempotent)."""
    memo: Any = classmethod(_memoised)
    SqlglotColumnTreeBuilder.from_raw_column_name_or_column_reference = memo  # type: ignore[method-assign]
