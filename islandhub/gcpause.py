"""Pausing Python's cyclic garbage collector around bulk record work.

Mapping, landing and publishing allocate a few containers per record and make no reference
cycles, yet every few hundred allocations the collector rescans what survived, and in a
process holding Great Expectations, pandas and SQLAlchemy that is a large heap: measured,
half the time spent building records (the mapping engine) and a third of a sync of 100,000
rows (benchmarks/ingest.py). Reference counting still frees everything as usual; the
collector runs again as soon as the block ends.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """The block runs with the cyclic collector off (as it was before, afterwards)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
