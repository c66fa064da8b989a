"""Payload documents: dotted island fields <-> the nested JSON sent, and field-level diffs."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

ABSENT = None  # a field the island was never sent shows as null in a diff


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON document for dotted island fields: `address.street` -> {address: {street}}.

    A numeric part indexes a list (`emailAddresses.0.address`), as Graph's shapes need.
    """
    document: dict[str, Any] = {}
    for path in sorted(flat):
        parts = path.split(".")
        node: Any = document
        for part, following in itertools.pairwise(parts):
            child: Any = [] if following.isdigit() else {}
            node = _child(node, part, child)
        _set(node, parts[-1], flat[path])
    return document


def _child(node: Any, part: str, empty: Any) -> Any:
    if isinstance(node, list):
        index = int(part)
        while len(node) <= index:
            node.append(None)
        if node[index] is None:
            node[index] = empty
        return node[index]
    return node.setdefault(part, empty)


def _set(node: Any, part: str, value: Any) -> None:
    if isinstance(node, list):
        index = int(part)
        while len(node) <= index:
            node.append(None)
        node[index] = value
    else:
        node[part] = value


def flatten(document: Any, prefix: str = "") -> dict[str, Any]:
    """The dotted fields of a nested document (the inverse of `nest`)."""
    if isinstance(document, dict):
        items: list[tuple[str, Any]] = [(str(k), v) for k, v in document.items()]
    elif isinstance(document, list):
        items = [(str(i), v) for i, v in enumerate(document)]
    else:
        return {prefix.rstrip("."): document} if prefix else {}
    flat: dict[str, Any] = {}
    for key, value in items:
        if isinstance(value, dict | list) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def changed_fields(
    before: Mapping[str, Any] | None, after: Mapping[str, Any], ignore: frozenset[str]
) -> list[str]:
    """Fields of `after` (flat) that `before` lacks or holds another value for.

    A payload sets the fields it names and leaves the others alone, so a field that is no
    longer sent is no change; nor is one of the identifying fields in `ignore`.
    """
    before = before or {}
    return [k for k, v in after.items() if k not in ignore and before.get(k, ABSENT) != v]


def field_diff(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every field of `after` with the value the island last got (null: never sent)."""
    before = before or {}
    return [
        {"field": k, "before": before.get(k, ABSENT), "after": v, "changed": before.get(k) != v}
        for k, v in sorted(after.items())
    ]
