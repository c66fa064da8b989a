"""What one target may receive of a golden record: ownership, recency and non-disclosure.

- Ownership: the fields a stream's own (forward) mapping reads are the fields that island is
  the source for. A value it holds for one of them is never overwritten by the hub.
- Recency: an owned field its record leaves empty is filled only with a value the hub
  observed after that record (lineage time against the record's observed time): the record
  may have been cleared on purpose since.
- Non-disclosure (turvakielto): a protected resident's address goes to no island at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from islandhub.push.reverse import ReverseField, lineage_name
from islandhub.resolve.golden import Observation

NON_DISCLOSURE = "non_disclosure"


@dataclass(frozen=True)
class OwnRecord:
    """The target stream's own record(s) of a resident, as the hub last observed them."""

    source_id: str  # of the most recently observed one
    values: Mapping[str, Any]  # mapped fields of all of them (the newest wins a clash)
    observed_at: datetime


def own_record(observations: Iterable[Observation], system: str, stream: str) -> OwnRecord | None:
    """The target stream's records among a resident's observations, or None if it has none."""
    own = sorted(
        (o for o in observations if o.system == system and o.stream == stream),
        key=lambda o: (_time(o.observed_at) or datetime.min.replace(tzinfo=UTC), o.source_id),
    )
    if not own:
        return None
    values: dict[str, Any] = {}
    for o in own:
        values.update({k: v for k, v in o.fields.items() if v is not None})
    newest = own[-1]
    observed = _time(newest.observed_at) or datetime.min.replace(tzinfo=UTC)
    return OwnRecord(newest.source_id, values, observed)


def is_protected(record: Mapping[str, Any]) -> bool:
    """A non-disclosure order (turvakielto) from any island protects the resident."""
    return record.get(NON_DISCLOSURE) is True


def withheld(
    field: ReverseField,
    *,
    owned: frozenset[str],
    own: OwnRecord | None,
    lineage: Mapping[str, Any],
    protected: bool,
) -> str | None:
    """Why `field` must not go to this target now, or None when it may."""
    if protected and field.touches_address:
        return "non-disclosure order: addresses are never pushed"
    if field.identifying or own is None:
        return None  # an island with no record of the resident holds nothing to protect
    for source in field.sources:
        if source not in owned:
            continue
        if own.values.get(source) is not None:
            return f"the island owns {source} and holds a value: never overwritten"
        seen = observed_at(lineage, source)
        if seen is None or seen <= own.observed_at:
            return f"the hub's {source} is not newer than the island's own record"
    return None


def observed_at(lineage: Mapping[str, Any], path: str) -> datetime | None:
    """When the hub observed the source of `path`'s golden value (compact lineage)."""
    entry = lineage.get("fields", {}).get(lineage_name(path))
    sources = lineage.get("sources", [])
    if not entry or not isinstance(entry[0], int) or entry[0] >= len(sources):
        return None
    return _time(sources[entry[0]][4])


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return _parsed(str(value))


@lru_cache(maxsize=4096)
def _parsed(text: str) -> datetime | None:
    # A batch's records share their observed time: each distinct text is parsed once.
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
