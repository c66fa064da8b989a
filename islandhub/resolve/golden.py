"""Survivorship: builds a resident's golden record from their source records, with lineage.

For each field the value of the highest-priority system wins (hub.yaml
`survivorship.priority`); among equals, the most recently observed one. Contact points
(emails, phones, addresses) are kept as lists, each entry with every source that holds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

CONTACT_LISTS = {"email": "emails", "phone": "phones"}
ADDRESS_PREFIX = "address."
# A non-disclosure order from any island protects the person: the safe side wins.
PROTECTIVE_FIELDS = ("non_disclosure",)


@dataclass(frozen=True)
class Observation:
    """One source record of a resident, as mapped, with where and when it was seen."""

    system: str
    stream: str
    source_id: str
    fields: dict[str, Any]
    observed_at: str  # ISO 8601, UTC
    run_id: str

    def source(self) -> dict[str, str]:
        """The reference to this source record that lists and lineage carry."""
        return {"system": self.system, "stream": self.stream, "source_id": self.source_id}

    def lineage(self, rule: str) -> dict[str, str]:
        """The lineage entry of a value taken from this observation by `rule`."""
        return {
            **self.source(),
            "run_id": self.run_id,
            "observed_at": self.observed_at,
            "rule": rule,
        }


def ordered(observations: Sequence[Observation], priority: Sequence[str]) -> list[Observation]:
    """Observations best first: system priority, then most recent, then a stable tie-break."""
    rank = {system: index for index, system in enumerate(priority)}
    unranked = len(priority)
    by_identity = sorted(observations, key=lambda o: (o.system, o.stream, o.source_id))
    by_recency = sorted(by_identity, key=lambda o: o.observed_at, reverse=True)
    return sorted(by_recency, key=lambda o: rank.get(o.system, unranked))


def build_golden(
    resident_id: str, observations: Sequence[Observation], priority: Sequence[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The golden record of one resident and its lineage (field -> source, run, time, rule)."""
    best_first = ordered(observations, priority)
    record: dict[str, Any] = {"resident_id": resident_id}
    lineage: dict[str, Any] = {}
    _scalars(best_first, priority, record, lineage)
    for source_field, list_name in CONTACT_LISTS.items():
        entries = _contact_list(best_first, source_field)
        if entries:
            record[list_name] = entries
            lineage[list_name] = _first_holder(best_first, source_field).lineage(
                "primary_by_priority"
            )
    addresses = _addresses(best_first)
    if addresses:
        record["addresses"] = addresses
        holder = next(o for o in best_first if _address_of(o))
        lineage["addresses"] = holder.lineage("primary_by_priority")
    record["identifiers"] = [o.source() for o in sorted(observations, key=_identity)]
    return record, lineage


def _identity(o: Observation) -> tuple[str, str, str]:
    return (o.system, o.stream, o.source_id)


def _scalars(
    best_first: list[Observation],
    priority: Sequence[str],
    record: dict[str, Any],
    lineage: dict[str, Any],
) -> None:
    names = sorted({f for o in best_first for f in o.fields if _is_scalar(f)})
    for name in names:
        holders = [o for o in best_first if o.fields.get(name) is not None]
        if not holders:
            continue
        winner = holders[0]
        if name in PROTECTIVE_FIELDS and any(o.fields[name] is True for o in holders):
            winner = next(o for o in holders if o.fields[name] is True)
            rule = "protective"
        elif len(holders) == 1:
            rule = "only_source"
        elif winner.system in priority:
            rule = "system_priority"
        else:
            rule = "most_recent"
        _set_path(record, name, winner.fields[name])
        lineage[name] = winner.lineage(rule)


def _is_scalar(name: str) -> bool:
    return name not in CONTACT_LISTS and not name.startswith(ADDRESS_PREFIX)


def _set_path(record: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = record
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value


def _contact_list(best_first: list[Observation], source_field: str) -> list[dict[str, Any]]:
    value_key = "address" if source_field == "email" else "number"
    entries: dict[Any, dict[str, Any]] = {}
    for o in best_first:
        value = o.fields.get(source_field)
        if value is None:
            continue
        entry = entries.setdefault(value, {value_key: value, "primary": not entries, "sources": []})
        entry["sources"].append(o.source())
    return list(entries.values())


def _first_holder(best_first: list[Observation], source_field: str) -> Observation:
    return next(o for o in best_first if o.fields.get(source_field) is not None)


def _address_of(o: Observation) -> dict[str, Any]:
    cut = len(ADDRESS_PREFIX)
    return {
        k[cut:]: v for k, v in o.fields.items() if k.startswith(ADDRESS_PREFIX) and v is not None
    }


def _address_key(address: dict[str, Any]) -> tuple[str, str]:
    street = " ".join(str(address.get("street", "")).lower().split())
    return (street, str(address.get("postal_code", "")))


def _addresses(best_first: list[Observation]) -> list[dict[str, Any]]:
    entries: dict[tuple[str, str], dict[str, Any]] = {}
    for o in best_first:
        address = _address_of(o)
        if not address:
            continue
        entry = entries.get(_address_key(address))
        if entry is None:
            entry = {**address, "primary": not entries, "sources": []}
            entries[_address_key(address)] = entry
        entry["sources"].append(o.source())
    return list(entries.values())
