"""The subject access export as open-city-profile's data tree: SNAKE_CASE keys, string values.

    RESIDENT
    ├── RESIDENT_ID, EARLIER_IDS
    ├── RECORD            the golden record: NATIONAL_ID, GIVEN_NAME, ADDRESSES/ADDRESS, ...
    ├── SOURCE_RECORDS    every island's record: SYSTEM, STREAM, SOURCE_ID, OBSERVED_AT,
    │                     FIELDS (as mapped), PAYLOAD (as the island sent it)
    ├── ACTIVITIES        bookings, cases, signups: TYPE, SYSTEM, DATE, TITLE ...
    └── ACCESSES          when and why the data was read (never by whom: CJEU C-579/21)

A list becomes a node whose children share the singular key (ADDRESSES -> ADDRESS ...);
booleans are "true"/"false"; empty values are left out, as the profile's UI shows nothing
for them anyway.
"""

from __future__ import annotations

import re
from typing import Any

ROOT = "RESIDENT"
SINGULAR = {
    "ADDRESSES": "ADDRESS",
    "ACCESSES": "ACCESS",
    "ACTIVITIES": "ACTIVITY",
    "EARLIER_IDS": "EARLIER_ID",
    "EMAILS": "EMAIL",
    "PHONES": "PHONE",
    "SOURCE_RECORDS": "SOURCE_RECORD",
    "SOURCES": "SOURCE",
}
# Bookkeeping of the golden record that says nothing about the person to the person: which
# island each contact came from is in SOURCE_RECORDS already.
_RECORD_SKIPPED = {"resident_id", "identifiers", "sources"}
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NOT_WORD = re.compile(r"[^A-Za-z0-9]+")


def profile_tree(export: dict[str, Any]) -> dict[str, Any]:
    """The tree of one subject access export (islandhub.privacy.access.subject_access)."""
    sources = [
        {
            "system": s["system"],
            "system_title": s["system_title"],
            "stream": s["stream"],
            "source_id": s["source_id"],
            "observed_at": s["observed_at"],
            "fields": s["fields"],
            "payload": s["payload"],
        }
        for s in export["sources"]
    ]
    activities = [{k: v for k, v in a.items() if k != "system_title"} for a in export["activities"]]
    return node(
        ROOT,
        {
            "resident_id": export["resident_id"],
            "earlier_ids": export["earlier_ids"],
            "record": _without_bookkeeping(export["record"]),
            "source_records": sources,
            "activities": activities,
            "accesses": export["accesses"],
        },
    )


def node(name: str, value: Any) -> dict[str, Any]:
    """One node: a value as a string, or children for mappings and lists."""
    key = snake_key(name)
    if isinstance(value, dict):
        return {"key": key, "children": _children(value.items())}
    if isinstance(value, list):
        item = SINGULAR.get(key) or (key[:-1] if key.endswith("S") else f"{key}_ITEM")
        return {"key": key, "children": _children((item, v) for v in value)}
    return {"key": key, "value": _text(value)}


def _children(items: Any) -> list[dict[str, Any]]:
    return [node(str(name), value) for name, value in items if not _empty(value)]


def snake_key(name: str) -> str:
    """SNAKE_CASE_WITH_CAPITAL_LETTERS: `postal_code`, `katuosoiteS`, `e-mail` alike."""
    words = _NOT_WORD.sub("_", _CAMEL.sub("_", name)).strip("_").upper()
    if not words:
        return "VALUE"
    return words if not words[0].isdigit() else f"N_{words}"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _without_bookkeeping(record: dict[str, Any]) -> dict[str, Any]:
    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k not in _RECORD_SKIPPED}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    cleaned: dict[str, Any] = clean(record)
    return cleaned
