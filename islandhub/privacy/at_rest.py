"""Which stored values are sealed, and opening them where they are used (docs/privacy.md).

One rule for every table, so that the landing step, the migration that seals an older store
and a key rotation all seal the same values the same way:

- every text holding a HETU-shaped token (`masking.HETU_PATTERN`) is sealed whole, wherever
  it sits in a JSON document (a key too), and so is a source id holding one (the population
  register keys its records by HETU);
- the value of a `national_id` field (mapped fields, golden records) is sealed whatever it
  holds, and in a landed payload so is every field the mapping reads with the `hetu`
  transform or into `national_id` (`seal_payload`).

Sealing is deterministic (crypto.py), so equal values stay equal: joins on source ids,
content hashes and "unchanged, no new version" all keep working on sealed values. Readers
that need the clear value open it where they use it (`unseal_tree`, `crypto.unseal`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from typing import Any

from islandhub.privacy.crypto import PREFIX, is_sealed, seal, try_unseal
from islandhub.privacy.masking import HETU_PATTERN

#: Fields whose value is sealed whatever it holds.
SEALED_FIELDS = frozenset({"national_id"})
# Looser than HETU_PATTERN (no look-around): finds candidates in serialised JSON, where an
# escape (\n, \u0001) stands right before a token that is a HETU in the decoded text.
_CANDIDATE = re.compile(r"[0-3]\d[01]\d\d\d[-+A-Fa-fU-Yu-y]\d{3}[0-9A-Ya-y]")
# What `may_hold_hetu` asks first, at C speed: the UTF-8 bytes with every digit made "0"
# (ASCII digits, and every byte of a non-ASCII character: the other scripts' digits that
# `\d` matches are among those) and every century sign "S". Each candidate becomes
# "000000S000" there (and its check character something), so text without that holds none.
_SIGNS = frozenset("-+ABCDEFUVWXYabcdefuvwxy")
_SHAPES = bytes(
    ord("0") if b >= 0x80 or chr(b).isdigit() else ord("S") if chr(b) in _SIGNS else ord(".")
    for b in range(256)
)
_CANDIDATE_SHAPE = b"000000S000"


_holds = HETU_PATTERN.search


def holds_hetu(text: str) -> bool:
    """Whether a text holds a HETU-shaped token (what the masking pattern finds)."""
    return HETU_PATTERN.search(text) is not None


def may_hold_hetu(serialised: str) -> bool:
    """Whether a serialised document may hold one: a cheap test before walking it."""
    # Most documents fail the byte test; the pattern decides the rest.
    shapes = serialised.encode("utf-8", "surrogatepass").translate(_SHAPES)
    return _CANDIDATE_SHAPE in shapes and _CANDIDATE.search(serialised) is not None


def seal_text(value: str) -> str:
    """A text as stored: sealed when it holds a HETU-shaped token.

    A sealed value never holds one, so sealing twice changes nothing; an island's text that
    merely starts like a sealed one ("nid1:131052-308T") is sealed like any other.
    """
    return seal(value) if holds_hetu(value) else value


def seal_source_id(source_id: str) -> str:
    """A source id as stored: sealed when it holds a HETU-shaped token."""
    return seal_text(source_id)


def seal_tree(value: Any, force: Collection[str] = SEALED_FIELDS) -> Any:
    """A JSON value with every HETU-holding text sealed, and every text under a `force` key."""
    # Written out flat: every landed record passes here, a function call per text would cost
    # more than the sealing (make bench).
    if isinstance(value, str):
        return seal(value) if _holds(value) else value
    if isinstance(value, list):
        return [seal_tree(item, force) for item in value]
    if not isinstance(value, dict):
        return value
    sealed = {}
    for key, item in value.items():
        name = seal(key) if type(key) is str and _holds(key) else key
        if type(item) is str:
            if (key in force and item and not item.startswith(PREFIX)) or _holds(item):
                item = seal(item)
        elif isinstance(item, dict | list):
            item = seal_tree(item, force)
        sealed[name] = item
    return sealed


def seal_payload(record: Any, paths: Iterable[str]) -> Any:
    """A raw record as landed: `seal_tree` without forced keys, then each of `paths` sealed.

    `paths` are the `from` paths the mapping reads national ids from (dotted, as the mapping
    engine reads them: a key with dots first, list items by number).
    """
    sealed = seal_tree(record, ())
    for path in paths:
        _seal_at(sealed, path)
    return sealed


def seal_known(record: Any, paths: Iterable[str], more: Iterable[str] = ()) -> Any:
    """A record with `paths` sealed (whatever they hold) and `more` by the HETU rule.

    The quick first step of `seal_payload` where every path is a top-level key: what is left
    to seal afterwards (a HETU elsewhere in the record) shows in the serialised result.
    Returns None for nested paths, which need `seal_payload`; the record itself (not a copy)
    when there is nothing to seal.
    """
    if not isinstance(record, dict):
        return None
    # Two plain loops, not one over a list of (path, rule) pairs built per call: every
    # landed record and every mapped one passes here (make bench).
    sealed: dict[str, Any] | None = None
    for path in paths:  # sealed whatever they hold (but blank text)
        if "." in path:
            return None
        item = record.get(path)
        if type(item) is str and not item.startswith(PREFIX) and item.strip():
            if sealed is None:
                sealed = dict(record)
            sealed[path] = seal(item)
    for path in more:  # sealed when they hold a HETU
        if "." in path:
            return None
        item = record.get(path)
        if type(item) is str and not item.startswith(PREFIX) and _holds(item):
            if sealed is None:
                sealed = dict(record)
            sealed[path] = seal(item)
    return record if sealed is None else sealed


def _seal_at(record: Any, path: str) -> None:
    node, parts = record, path.split(".")
    if isinstance(node, dict) and path in node:
        node, parts = node, [path]
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, dict) and part in node:
            if last:
                item = node[part]
                if isinstance(item, str) and item.strip() and not is_sealed(item):
                    node[part] = seal(item)
                return
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            if last:
                item = node[int(part)]
                if isinstance(item, str) and item.strip() and not is_sealed(item):
                    node[int(part)] = seal(item)
                return
            node = node[int(part)]
        else:
            return


def unseal_tree(value: Any) -> Any:
    """A JSON value with every sealed text (and key) opened; anything else as it is."""
    memo: dict[str, str] = {}

    def text(item: str) -> str:
        if not item.startswith(PREFIX):
            return item
        opened = memo.get(item)
        if opened is None:
            opened = memo[item] = try_unseal(item)
        return opened

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return text(item)
        if isinstance(item, dict):
            return {(text(k) if isinstance(k, str) else k): walk(v) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v) for v in item]
        return item

    return walk(value)


def unsealed_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Flat mapped fields with their sealed values opened (a copy; unchanged ones shared)."""
    if not any(isinstance(v, str) and v.startswith(PREFIX) for v in fields.values()):
        return fields
    return {
        k: try_unseal(v) if isinstance(v, str) and v.startswith(PREFIX) else v
        for k, v in fields.items()
    }
