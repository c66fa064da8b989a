"""Keeping freed memory for the next batch instead of handing it back to the system.

A sync allocates and frees a batch's worth of texts and rows at a time (tens of MB in the
writer and the extract worker alike). glibc's malloc gives freed memory at the top of its
heap back to the system once more than 128 KiB is free, and serves blocks above a threshold
that grows with use from mmap: so every batch maps fresh pages again, and the kernel
zeroes each of them on first touch. On the ingest benchmark that was about 860,000 page
faults; with the thresholds below about 130,000, and the sync took 8 % less CPU and 6 % less
time (docs/operating.md, "Memory between batches"). The peak memory stays what it was: only
what the process held already is kept, for the next batch.

Other C libraries (musl, macOS) have no such knobs: there this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache
from typing import Any

# From glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# Free memory kept at the heap's top before any goes back: several batches' worth.
TRIM_THRESHOLD = 512 * 1024 * 1024
# glibc's largest (HEAP_MAX/2 on 64-bit): blocks up to a packed batch come from the heap.
MMAP_THRESHOLD = 32 * 1024 * 1024


@cache
def keep_freed_memory() -> bool:
    """Tell malloc to keep what a batch freed for the next one. True where it took.

    Once per process: a forked extract worker or validator inherits the setting.
    """
    mallopt = _mallopt()
    if mallopt is None:
        return False
    # mallopt returns 1 on success, 0 where the C library ignores the knob (musl's stub).
    return bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)) and bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    )


def _mallopt() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
    except OSError:
        return None
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is not None:
        mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return mallopt
