"""Deterministic keys of a resident: the national id, indexed only as a hash."""

from __future__ import annotations

import hashlib

# The same national id always gives the same key, so a lookup finds the resident without an
# index column of readable ids (Helsinki's profile keeps a searchable hash the same way).
# Encrypting the id inside the golden record itself belongs to the privacy module.
_KIND_NATIONAL_ID = "national_id"


def is_temporary_hetu(hetu: str) -> bool:
    """A temporary id (individual number 900-999) never identifies a person on its own."""
    return len(hetu) == 11 and hetu[7:10].isdigit() and int(hetu[7:10]) >= 900


def national_id_key(hetu: str | None) -> str | None:
    """The lookup key of a permanent national id; None for a missing or temporary one."""
    if not hetu or is_temporary_hetu(hetu):
        return None
    return hashlib.sha256(f"{_KIND_NATIONAL_ID}:{hetu}".encode()).hexdigest()


NATIONAL_ID = _KIND_NATIONAL_ID
