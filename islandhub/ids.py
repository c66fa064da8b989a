"""Identifiers the hub mints: time-ordered UUIDs (version 7) for runs and residents.

Time order keeps new rows at the end of the primary-key index, so inserting millions of
residents stays fast on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import os
import time


def uuid7() -> str:
    """A new UUID version 7 (RFC 9562): 48-bit Unix milliseconds, then random bits."""
    return uuid7_batch(1)[0]


def uuid7_batch(count: int) -> list[str]:
    """`count` new UUIDs version 7 from one read of the random source (bulk founding)."""
    millis = (time.time_ns() // 1_000_000) & ((1 << 48) - 1)
    randomness = os.urandom(10 * count)
    ids = []
    for index in range(count):
        rand = int.from_bytes(randomness[10 * index : 10 * index + 10], "big")
        value = millis << 80 | rand
        value = (value & ~(0xF << 76)) | (0x7 << 76)  # version
        value = (value & ~(0x3 << 62)) | (0x2 << 62)  # variant
        text = f"{value:032x}"
        ids.append(f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}")
    return ids
