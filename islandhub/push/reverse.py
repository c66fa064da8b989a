"""Reverse mappings: how a golden record becomes the fields one island accepts.

A mapping file's optional `push:` section names, for each field the island accepts, the
resident field it comes from and the transforms on the way, in the same words as the forward
`fields:` (`from`, `use`), read the other way round:

    push:
      residents: linked            # linked (default): residents the stream has a record of
      retry: {max_attempts: 8, backoff: 60, max_backoff: 3600}   # seconds
      fields:
        id:             {from: $source_id}       # the island's own id of this resident
        hub_id:         {from: resident_id}
        address.street: {from: address.street}
        born:           {from: birth_date, use: [{format_date: "%d.%m.%Y"}]}

Resident fields are the forward mappings' target paths: `email`, `phone` and `address.*`
read the golden record's primary entry of its contact lists. Fields that only identify the
record (`resident_id`, `$source_id`) are always sent with it but never count as a change.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.base import IDEMPOTENCY_KEY
from islandhub.errors import Problem
from islandhub.mapping.transforms import (
    NO_ARG,
    REGISTRY,
    ArgumentError,
    Noted,
    Step,
    TransformError,
    build_step,
    parse_use,
)

SOURCE_ID = "$source_id"  # the id of the target stream's own record of the resident
IDENTIFYING = frozenset({SOURCE_ID, "resident_id"})
ADDRESS_PREFIX = "address."
RESIDENT_SCOPES = ("linked", "all")
CONTACTS = {"emails": ("email", "address"), "phones": ("phone", "number")}
_RESIDENT_PATH = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


@dataclass(frozen=True)
class Retry:
    """How delivery retries a row: attempts in all, and the doubling wait between them."""

    max_attempts: int = 8
    backoff: float = 60.0  # seconds before the second attempt; doubled after each failure
    max_backoff: float = 3600.0

    def delay(self, attempts: int) -> datetime.timedelta:
        """The wait after the `attempts`-th failed attempt."""
        seconds = min(self.max_backoff, self.backoff * 2 ** max(0, attempts - 1))
        return datetime.timedelta(seconds=seconds)


# --- push-only transforms ----------------------------------------------------------------


def _format_date(arg: Any) -> Step:
    if not isinstance(arg, str) or "%" not in arg:
        raise ArgumentError("format_date needs a strftime format like '%d.%m.%Y'")

    def step(value: Any) -> Any:
        try:
            return datetime.date.fromisoformat(str(value)).strftime(arg)
        except ValueError:
            raise TransformError("not an ISO date (YYYY-MM-DD)") from None

    return step


# The golden record holds normalised values (ISO dates); islands often want them back in
# their own form. These exist only in `push:` sections.
PUSH_TRANSFORMS = {"format_date": _format_date}


def _build(item: Any) -> tuple[Step, bool]:
    """A step for one `use:` entry of a push field, and whether it also sees missing values."""
    name = next(iter(item)) if isinstance(item, dict) and len(item) == 1 else item
    if isinstance(name, str) and name in PUSH_TRANSFORMS:
        arg = item[name] if isinstance(item, dict) else NO_ARG
        return PUSH_TRANSFORMS[name](arg), False
    if isinstance(name, str) and name not in REGISTRY:
        known = ", ".join(sorted({*REGISTRY, *PUSH_TRANSFORMS}))
        raise ArgumentError(f"unknown transform '{name}'; known transforms: {known}")
    parse_use(item)  # the registry's own message for a malformed entry
    definition, step = build_step(item)
    return step, definition.sees_none


# --- one field ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReverseField:
    """One `push.fields` entry compiled: the island's field, its resident sources, its chain."""

    target: str
    sources: tuple[str, ...]
    combine: bool  # `from` is a list: the chain starts with concat or coalesce
    steps: tuple[tuple[Step, bool], ...]
    # Only names the record (resident id, the island's own id): never a change on its own.
    identifying: bool = field(init=False)
    # Reads an address: withheld for a resident under a non-disclosure order.
    touches_address: bool = field(init=False)

    def __post_init__(self) -> None:
        # Worked out once: every new golden version asks for each field.
        object.__setattr__(self, "identifying", all(s in IDENTIFYING for s in self.sources))
        address = any(s.startswith(ADDRESS_PREFIX) for s in self.sources)
        object.__setattr__(self, "touches_address", address)

    def value(self, values: Mapping[str, Any]) -> Any:
        """The value for the island, or None; raises TransformError for a value it rejects."""
        raw = [values.get(s) for s in self.sources]
        value: Any = raw if self.combine else raw[0]
        for step, sees_none in self.steps:
            if value is None and not sees_none:
                continue
            value = step(value)
            if type(value) is Noted:
                value = value.value
        if isinstance(value, str) and not value.strip():
            return None
        return value


@dataclass(frozen=True)
class ReverseMapping:
    """A mapping file's `push:` section, compiled."""

    fields: tuple[ReverseField, ...]
    residents: str = "linked"
    retry: Retry = Retry()
    # The island's fields that only identify the record.
    identifying_targets: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        targets = frozenset(f.target for f in self.fields if f.identifying)
        object.__setattr__(self, "identifying_targets", targets)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> ReverseMapping:
        """Compile a `push:` section already checked by `problems`."""
        fields = []
        for target, field_spec in spec["fields"].items():
            source = field_spec["from"]
            sources = tuple(source) if isinstance(source, list) else (source,)
            steps = tuple(_build(item) for item in field_spec.get("use") or [])
            fields.append(ReverseField(target, sources, isinstance(source, list), steps))
        retry = Retry(**spec.get("retry", {}))
        return cls(tuple(fields), spec.get("residents", "linked"), retry)

    @staticmethod
    def problems(spec: Any, at: str = "push") -> list[Problem]:
        """Every problem of a `push:` section; paths are dotted from the mapping file's top."""
        if not isinstance(spec, dict):
            return [Problem("push must be a mapping with fields (and residents, retry)", path=at)]
        problems = _scope_problems(spec, at) + _retry_problems(spec.get("retry"), f"{at}.retry")
        fields = spec.get("fields")
        if not isinstance(fields, dict) or not fields:
            message = "push.fields is required: the island's field -> {from: resident field}"
            return [*problems, Problem(message, path=f"{at}.fields")]
        for target, field_spec in fields.items():
            problems += _field_problems(target, field_spec, f"{at}.fields.{target}")
        if not problems and all(_identifying(f) for f in fields.values()):
            message = "every field comes from resident_id or $source_id: nothing would be sent"
            problems.append(Problem(message, path=f"{at}.fields"))
        return problems


def _identifying(field_spec: dict[str, Any]) -> bool:
    source = field_spec["from"]
    return all(s in IDENTIFYING for s in (source if isinstance(source, list) else [source]))


def _scope_problems(spec: dict[str, Any], at: str) -> list[Problem]:
    scope = spec.get("residents", "linked")
    if scope in RESIDENT_SCOPES:
        return []
    message = f"residents must be one of {', '.join(RESIDENT_SCOPES)}"
    return [Problem(message, path=f"{at}.residents")]


def _retry_problems(retry: Any, at: str) -> list[Problem]:
    if retry is None:
        return []
    if not isinstance(retry, dict):
        return [Problem("retry is a mapping: {max_attempts, backoff, max_backoff}", path=at)]
    problems = []
    for key, value in retry.items():
        if key not in ("max_attempts", "backoff", "max_backoff"):
            message = f"unknown key '{key}'; known keys: max_attempts, backoff, max_backoff"
            problems.append(Problem(message, path=f"{at}.{key}"))
        elif isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            problems.append(Problem(f"{key} must be a number above 0", path=f"{at}.{key}"))
        elif key == "max_attempts" and not isinstance(value, int):
            problems.append(Problem("max_attempts must be a whole number", path=f"{at}.{key}"))
    return problems


def _field_problems(target: Any, spec: Any, at: str) -> list[Problem]:
    if target == IDEMPOTENCY_KEY:
        return [Problem(f"{IDEMPOTENCY_KEY} is reserved for the delivery's key", path=at)]
    if not isinstance(spec, dict) or "from" not in spec:
        return [Problem("a push field is a mapping like {from: email, use: [lower]}", path=at)]
    source = spec["from"]
    sources = source if isinstance(source, list) else [source]
    problems = [
        Problem(
            f"from must name a resident field (like email or address.street) or {SOURCE_ID}",
            path=f"{at}.from" + (f"[{i}]" if isinstance(source, list) else ""),
        )
        for i, s in enumerate(sources)
        if not (isinstance(s, str) and (s in IDENTIFYING or _RESIDENT_PATH.match(s)))
    ]
    if isinstance(source, list) and not source:
        problems.append(Problem("from must name at least one resident field", path=f"{at}.from"))
    use = spec.get("use") or []
    if not isinstance(use, list):
        return [*problems, Problem("use must be a list of transforms", path=f"{at}.use")]
    for i, item in enumerate(use):
        try:
            _build(item)
        except ArgumentError as err:
            problems.append(Problem(str(err), path=f"{at}.use[{i}]"))
    if isinstance(source, list) and not _starts_with_combiner(use):
        message = "from lists several fields: the first transform must combine them"
        message += " (concat or coalesce)"
        problems.append(Problem(message, path=f"{at}.use"))
    return problems


def _starts_with_combiner(use: list[Any]) -> bool:
    first = use[0] if use else None
    name = next(iter(first)) if isinstance(first, dict) and len(first) == 1 else first
    return isinstance(name, str) and name in REGISTRY and REGISTRY[name].takes_list


# --- the resident's side -------------------------------------------------------------------


def resident_values(record: Mapping[str, Any]) -> dict[str, Any]:
    """A golden record as flat resident fields, the way forward mappings name them.

    Nested groups become dotted paths (`guardian.email`); the contact lists give their primary
    entry: `email`, `phone`, and `address.<part>` of the primary address.
    """
    values: dict[str, Any] = {}
    for name, value in record.items():
        if name in CONTACTS:
            flat_name, key = CONTACTS[name]
            values[flat_name] = _primary(value).get(key)
        elif name == "addresses":
            primary = _primary(value)
            for part, item in primary.items():
                if part not in ("primary", "sources"):
                    values[f"{ADDRESS_PREFIX}{part}"] = item
        elif name != "identifiers":
            _flatten_into(values, name, value)
    return values


def _primary(entries: Any) -> dict[str, Any]:
    if not isinstance(entries, list) or not entries:
        return {}
    chosen = next((e for e in entries if isinstance(e, dict) and e.get("primary")), entries[0])
    return chosen if isinstance(chosen, dict) else {}


def _flatten_into(values: dict[str, Any], name: str, value: Any) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten_into(values, f"{name}.{key}", item)
    else:
        values[name] = value


def lineage_name(path: str) -> str:
    """The name under which the compact lineage records where `path`'s value came from."""
    if path.startswith(ADDRESS_PREFIX):
        return "addresses"
    for list_name, (name, _key) in CONTACTS.items():
        if path == name:
            return list_name
    return path
