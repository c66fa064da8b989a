"""Deterministic keys of a resident: the national id, indexed only as a keyed hash."""

from __future__ import annotations

from islandhub.privacy.crypto import current, is_sealed, lookup_hash, unseal

# The same national id always gives the same key, so a lookup finds the resident without an
# index column of readable ids (Helsinki's profile keeps a searchable hash the same way).
# The key is an HMAC under the hub's national-id key (privacy/crypto.py): without the key,
# the small space of HETUs cannot be tried against the index.
_KIND_NATIONAL_ID = "national_id"


def is_temporary_hetu(hetu: str) -> bool:
    """A temporary id (individual number 900-999) never identifies a person on its own."""
    if is_sealed(hetu):
        hetu = unseal(hetu)
    return _temporary(hetu)


def _temporary(plain: str) -> bool:
    return len(plain) == 11 and plain[7:10].isdigit() and int(plain[7:10]) >= 900


def national_id_key(hetu: str | None) -> str | None:
    """The lookup key of a permanent national id (sealed or clear); None: missing, temporary."""
    if not hetu:
        return None
    plain = unseal(hetu)
    if is_temporary_hetu(plain):
        return None
    return lookup_hash(plain)


def clear_national_id_key(hetu: str | None) -> str | None:
    """`national_id_key` of a value known to be in clear (text without the `nid1:` prefix).

    Landing has the national id in clear before it seals it: the same key, nothing to open.
    """
    if not hetu or _temporary(hetu):
        return None
    return current().clear_lookup_hash(hetu)


NATIONAL_ID = _KIND_NATIONAL_ID
