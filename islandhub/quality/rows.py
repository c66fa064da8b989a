"""The rows a quality check validates: each mapped record's fields, in clear, by column.

The writer builds them from the records it landed (`of_pending`). With the extract worker,
the worker builds them already, from the records it prepared, and pickles them (`pack`):
the writer then passes one bytes object on to the validator process instead of building
and pickling a column per field itself, which took about a tenth of the writer's time on
the ingest benchmark (benchmarks/ingest.py), while the worker had time to spare. Both ways
take the same values the same way (`columns_of`), so the check sees the same rows
(tests/quality/test_rows.py).
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from islandhub.resolve.publish import Pending

Columns = dict[str, list[Any]]
# (clear source id, stored fields, the sealed ones of them opened) of one mapped record
Row = tuple[str, dict[str, Any], dict[str, Any]]


def columns_of(rows: Sequence[Row], fields: Sequence[str]) -> tuple[list[str], Columns]:
    """The source ids and a column per field; a sealed value is taken opened."""
    ids = [row[0] for row in rows]
    columns = {name: [row[1].get(name) for row in rows] for name in fields}
    for number, (_, _, opened) in enumerate(rows):
        for name, value in opened.items():
            if name in columns:
                columns[name][number] = value
    return ids, columns


def of_pending(present: Sequence[Pending], fields: Sequence[str]) -> tuple[list[str], Columns]:
    """The rows of landed mapped records (read back from the store, or just landed)."""
    rows = [(p.clear_source_id(), p.fields or {}, p.opened_fields()) for p in present]
    return columns_of(rows, fields)


def pack(ids: list[str], columns: Columns) -> bytes:
    """The rows as the worker hands them over (only ever read by this hub's processes)."""
    return pickle.dumps((ids, columns), protocol=pickle.HIGHEST_PROTOCOL)


def unpack(packed: bytes) -> tuple[list[str], Columns]:
    """The rows `pack` made, in one of the hub's own processes."""
    ids, columns = pickle.loads(packed)  # bytes from the hub's own worker: trusted
    return ids, columns
