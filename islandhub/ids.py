"""Identifiers the hub mints: time-ordered UUIDs (version 7) for runs and residents.

Time order keeps new rows at the end of the primary-key index, so inserting millions of
residents stays fast on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import os
import time
import uuid


def uuid7() -> str:
    """A new UUID version 7 (RFC 9562): 48-bit Unix milliseconds, then random bits."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & ((1 << 48) - 1)) << 80 | rand
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # variant
    return str(uuid.UUID(int=value))
