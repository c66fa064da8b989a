"""islandhub/heap.py: a batch's freed memory is kept for the next batch (glibc)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

# Allocates and frees a batch's worth (60 MB of 2 KB texts and one 20 MB block) six times
# and prints the page faults of the last five: memory handed back is faulted in again.
CYCLES = """
import resource, sys
from islandhub.heap import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def cycle():
    held = [bytes(2048) + i.to_bytes(4, "little") for i in range(30_000)]
    block = bytearray(20 * 1024 * 1024)
    del held, block
cycle()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    cycle()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

glibc = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="malloc's thresholds are glibc's (mallopt)"
)


def _faults(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", CYCLES, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


@glibc
def test_a_kept_heap_serves_the_next_batch_without_new_pages() -> None:
    plain, kept = _faults("plain"), _faults("keep")
    assert plain > 50_000  # 400 MB freed and allocated again: the pages come back each time
    assert kept < plain / 20
