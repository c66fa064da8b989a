"""Survivorship: builds a resident's golden record from their source records, with lineage.

For each field the value of the highest-priority system wins (hub.yaml
`survivorship.priority`); among equals, the most recently observed one. Contact points
(emails, phones, addresses) are kept as lists, each entry with every source that holds it.

Lineage is stored compactly, each source once: `{"sources": [[system, stream, source_id,
run_id, observed_at], ...], "fields": {field: [source index, rule]}}`; `expand_lineage`
gives the readable form (field -> system, stream, source id, run, time, rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from islandhub.store.db import dumps

CONTACT_LISTS = {"email": ("emails", "address"), "phone": ("phones", "number")}
ADDRESS_PREFIX = "address."
# A non-disclosure order from any island protects the person: the safe side wins.
PROTECTIVE_FIELDS = frozenset({"non_disclosure"})
PRIMARY = "primary_by_priority"


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
        """The reference to this source record that lists and identifiers carry."""
        return {"system": self.system, "stream": self.stream, "source_id": self.source_id}

    def lineage_source(self) -> list[str]:
        """The entry of this observation in the compact lineage's source list."""
        return [self.system, self.stream, self.source_id, self.run_id, self.observed_at]


def ordered(observations: Sequence[Observation], priority: Sequence[str]) -> list[Observation]:
    """Observations best first: system priority, then most recent, then a stable tie-break."""
    rank = {system: index for index, system in enumerate(priority)}
    unranked = len(priority)
    by_identity = sorted(observations, key=_identity)
    by_recency = sorted(by_identity, key=lambda o: o.observed_at, reverse=True)
    return sorted(by_recency, key=lambda o: rank.get(o.system, unranked))


def build_golden(
    resident_id: str, observations: Sequence[Observation], priority: Sequence[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The golden record of one resident and its compact lineage."""
    if len(observations) == 1:
        return _from_one(resident_id, observations[0])
    return _from_many(resident_id, observations, priority)


def _from_many(
    resident_id: str, observations: Sequence[Observation], priority: Sequence[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    best_first = ordered(observations, priority)
    lineage = _Lineage()
    record: dict[str, Any] = {"resident_id": resident_id}
    _scalars(best_first, priority, record, lineage)
    for source_field, (list_name, value_key) in CONTACT_LISTS.items():
        entries = _contact_list(best_first, source_field, value_key)
        if entries:
            record[list_name] = entries
            holder = next(o for o in best_first if o.fields.get(source_field) is not None)
            lineage.add(list_name, holder, PRIMARY)
    addresses = _addresses(best_first)
    if addresses:
        record["addresses"] = addresses
        lineage.add("addresses", next(o for o in best_first if _address_of(o)), PRIMARY)
    record["identifiers"] = [o.source() for o in sorted(observations, key=_identity)]
    return record, lineage.compact()


def expand_lineage(compact: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The readable lineage: field -> system, stream, source id, run id, observed at, rule."""
    keys = ("system", "stream", "source_id", "run_id", "observed_at")
    sources = [dict(zip(keys, entry, strict=True)) for entry in compact.get("sources", [])]
    return {
        name: {**sources[index], "rule": rule}
        for name, (index, rule) in compact.get("fields", {}).items()
    }


class _Lineage:
    """Collects field -> (source, rule), numbering each source once."""

    def __init__(self) -> None:
        self.sources: list[list[str]] = []
        self.index: dict[int, int] = {}
        self.fields: dict[str, list[Any]] = {}

    def add(self, name: str, o: Observation, rule: str) -> None:
        position = self.index.get(id(o))
        if position is None:
            position = self.index[id(o)] = len(self.sources)
            self.sources.append(o.lineage_source())
        self.fields[name] = [position, rule]

    def compact(self) -> dict[str, Any]:
        return {"sources": self.sources, "fields": self.fields}


def _from_one(resident_id: str, o: Observation) -> tuple[dict[str, Any], dict[str, Any]]:
    """The common case (a resident seen in one island so far), without sorting or grouping."""
    record: dict[str, Any] = {"resident_id": resident_id}
    names: dict[str, list[Any]] = {}
    source = o.source()
    address: dict[str, Any] = {}
    cut = len(ADDRESS_PREFIX)
    for name, value in o.fields.items():
        if value is None:
            continue
        contact = CONTACT_LISTS.get(name)
        if contact is not None:
            record[contact[0]] = [{contact[1]: value, "primary": True, "sources": [source]}]
            names[contact[0]] = [0, PRIMARY]
        elif name.startswith(ADDRESS_PREFIX):
            address[name[cut:]] = value
        else:
            _set_path(record, name, value)
            names[name] = [
                0,
                "protective" if name in PROTECTIVE_FIELDS and value is True else "only_source",
            ]
    if address:
        record["addresses"] = [{**address, "primary": True, "sources": [source]}]
        names["addresses"] = [0, PRIMARY]
    record["identifiers"] = [source]
    return record, {"sources": [o.lineage_source()], "fields": names}


class Founding(NamedTuple):
    """The stored texts of a resident founded from one record, its id, run and time left open.

    Most records of a first load found a resident of their own, whose golden record and
    lineage depend on nothing but the record, its resident id, run and landing time. The
    extract worker builds them (`founding`), the writer fills them in (`filled`): building
    and serialising them was a seventh of the writer's time on the ingest benchmark, while
    the worker had time to spare. The texts are exactly `build_golden`'s, serialised
    (tests/unit/test_golden.py).
    """

    record_head: str  # the record's text up to its resident id ...
    record_tail: str  # ... and after it
    lineage_head: str  # the lineage's text up to the run id and time its one source ends with


# Stand-ins, cut out again: the id must occur once in the record's text (`founding` checks).
_OPEN_ID, _OPEN_RUN, _OPEN_AT = "\x00resident", "\x00run", "\x00observed"
_MARK = dumps(_OPEN_ID)
# The lineage's keys are sorted: "sources", a list of one source, comes last, and the
# source's last entries are its run and time (Observation.lineage_source).
_END = f"{dumps(_OPEN_RUN)},{dumps(_OPEN_AT)}]]}}"


def founding(system: str, stream: str, source_id: str, fields: dict[str, Any]) -> Founding | None:
    """The texts of a resident founded from this one record (fields as stored), or None.

    None where they cannot be cut apart cleanly: a value that holds the stand-in id.
    """
    shape = _shape_of(fields)
    if shape is None:
        # In the stored order (sorted, as the writer reads them back): `_from_one` lets a
        # later field overwrite an earlier one ("emails" after "email").
        fields = dict(sorted(fields.items()))
        record, lineage = _from_one(
            _OPEN_ID, Observation(system, stream, source_id, fields, _OPEN_AT, _OPEN_RUN)
        )
        text, trail = dumps(record), dumps(lineage)
        if not trail.endswith(_END):
            return None
        lineage_head = trail[: -len(_END)]
    else:
        source = {"source_id": source_id, "stream": stream, "system": system}
        text = dumps(shape.record(fields, source))
        # The one source's entry up to its run: [system, stream, source_id, ...
        lineage_head = f"{shape.lineage_head}{dumps([system, stream, source_id])[:-1]},"
    if text.count(_MARK) != 1:
        return None
    head, tail = text.split(_MARK)
    return Founding(head, tail, lineage_head)


class _Shape:
    """How `_from_one` lays out a record with these field names, worked out once.

    A first load founds thousands of residents from records of one shape (the mapping's
    fields, all present): `founding` copies the values by this plan and writes the lineage's
    fields from a text made once, instead of walking every field of every record (a fifth of
    the extract worker's time on the ingest benchmark). Only plain shapes have one: no
    protective field, no nested path but an address, no value None (`_shape_of`).
    """

    def __init__(self, names: tuple[str, ...]) -> None:
        cut = len(ADDRESS_PREFIX)
        self.contacts = [(n, *CONTACT_LISTS[n]) for n in names if n in CONTACT_LISTS]
        self.address = [(n, n[cut:]) for n in names if n.startswith(ADDRESS_PREFIX)]
        self.not_scalar = [n for n in names if n in CONTACT_LISTS or n.startswith(ADDRESS_PREFIX)]
        # The lineage's fields depend on the names alone: _from_one's, once, for any values.
        anyone = Observation("", "", "", dict.fromkeys(names, ""), "", "")
        lineage = _from_one(_OPEN_ID, anyone)[1]["fields"]
        self.lineage_head = f'{{"fields":{dumps(lineage)},"sources":['

    def record(self, fields: dict[str, Any], source: dict[str, str]) -> dict[str, Any]:
        """The golden record _from_one builds, with the stand-in id (keys sorted by `dumps`)."""
        record = dict(fields)
        for name in self.not_scalar:
            del record[name]
        for name, list_name, value_key in self.contacts:
            record[list_name] = [{value_key: fields[name], "primary": True, "sources": [source]}]
        if self.address:
            address: dict[str, Any] = {part: fields[name] for name, part in self.address}
            address["primary"] = True
            address["sources"] = [source]
            record["addresses"] = [address]
        record["identifiers"] = [source]
        record["resident_id"] = _OPEN_ID
        return record


_SHAPES: dict[tuple[str, ...], _Shape | None] = {}


def _shape_of(fields: dict[str, Any]) -> _Shape | None:
    """The plan for records with these field names, or None: `_from_one` builds this one."""
    if None in fields.values():
        return None
    names = tuple(fields)
    shape = _SHAPES.get(names, _UNSEEN)
    if shape is not _UNSEEN:
        return shape  # type: ignore[return-value]
    if len(_SHAPES) >= _MAX_SHAPES:  # a mapping has a few; past that, the general way
        return None
    plain = not (_NOT_PLAIN & set(names)) and all(
        n.startswith(ADDRESS_PREFIX) or "." not in n for n in names
    )
    made = _SHAPES[names] = _Shape(names) if plain else None
    return made


# Names whose value _from_one lays out otherwise (protective), or that would stand where it
# puts its own lists and the id: those records take the general way.
_NOT_PLAIN = PROTECTIVE_FIELDS | {"emails", "phones", "addresses", "identifiers", "resident_id"}
_MAX_SHAPES = 256
_UNSEEN = object()


def filled(parts: Founding, resident_id: str, run_id: str, observed_at: str) -> tuple[str, str]:
    """The golden record's and the lineage's text, as `dumps` of `build_golden`'s."""
    record = f"{parts.record_head}{dumps(resident_id)}{parts.record_tail}"
    return record, f"{parts.lineage_head}{dumps(run_id)},{dumps(observed_at)}]]}}"


def _identity(o: Observation) -> tuple[str, str, str]:
    return (o.system, o.stream, o.source_id)


def _scalars(
    best_first: list[Observation],
    priority: Sequence[str],
    record: dict[str, Any],
    lineage: _Lineage,
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
        lineage.add(name, winner, rule)


def _is_scalar(name: str) -> bool:
    return name not in CONTACT_LISTS and not name.startswith(ADDRESS_PREFIX)


def _set_path(record: dict[str, Any], path: str, value: Any) -> None:
    if "." not in path:
        record[path] = value
        return
    *parents, leaf = path.split(".")
    node = record
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value


def _contact_list(
    best_first: list[Observation], source_field: str, value_key: str
) -> list[dict[str, Any]]:
    entries: dict[Any, dict[str, Any]] = {}
    for o in best_first:
        value = o.fields.get(source_field)
        if value is None:
            continue
        entry = entries.setdefault(value, {value_key: value, "primary": not entries, "sources": []})
        entry["sources"].append(o.source())
    return list(entries.values())


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
