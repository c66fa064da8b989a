"""The `quality:` block of a system file: the gate that can hold publishing, and added checks.

    quality:
      gate:
        max_quarantined: 5%              # of the records a run checks
        min_completeness: {email: 90%}   # of the mapped records, per target path
        min_validity: 95%                # of the checked values passing their format checks
        min_records: 20                  # smaller runs are checked and kept, never held
      checks:
        - {field: municipality_code, expect: municipality_code}
        - {field: language, expect: in_set, values: [fi, sv], mostly: 95%}

The first form `quality: {max_quarantine_ratio: 0.05}` still works: it is gate.max_quarantined.
The JSON Schema (schemas/system.schema.json) checks the shapes; `problems` checks what a
schema cannot: field names against the system's mappings, patterns that must compile.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from islandhub.errors import Problem
from islandhub.yamlsource import YamlDocument

#: What each check kind measures: the scorecard's dimension it counts towards.
CHECK_KINDS: dict[str, str] = {
    "not_null": "completeness",
    "unique": "uniqueness",
    "in_set": "validity",
    "matches": "validity",
    "hetu": "validity",
    "ytunnus": "validity",
    "e164_phone": "validity",
    "postal_code": "validity",
    "municipality_code": "validity",
    "email": "validity",
    "iso_date": "validity",
}
# A share of five records is noise: a gate judges runs of at least this many records.
DEFAULT_MIN_RECORDS = 20
_PERCENT = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*%\s*$")


@dataclass(frozen=True)
class CheckRule:
    """One check a system file adds: `expect` (a kind of CHECK_KINDS) on `field`."""

    field: str
    expect: str
    mostly: float = 1.0
    values: tuple[Any, ...] = ()
    pattern: str | None = None


@dataclass(frozen=True)
class Gate:
    """What a run's records must reach to be published; None: not gated on that."""

    max_quarantined: float | None = None
    min_completeness: tuple[tuple[str, float], ...] = ()
    min_validity: float | None = None
    min_records: int = DEFAULT_MIN_RECORDS
    # The key that set max_quarantined, so that a tripped gate names what the owner wrote.
    quarantine_key: str = "quality.gate.max_quarantined"

    @property
    def active(self) -> bool:
        """Whether the gate can hold anything at all."""
        limits = (self.max_quarantined, self.min_validity)
        return any(x is not None for x in limits) or bool(self.min_completeness)


@dataclass(frozen=True)
class QualitySettings:
    """A system's quality settings, parsed (see the module docstring)."""

    gate: Gate = field(default_factory=Gate)
    checks: tuple[CheckRule, ...] = ()


def share(value: Any) -> float:
    """A share as a fraction: 0.05 and '5%' both give 0.05 (already schema-checked)."""
    if isinstance(value, str):
        match = _PERCENT.match(value)
        if match is None:
            raise ValueError(f"not a share: {value!r}")
        return float(match.group(1)) / 100
    return float(value)


def parse(data: Mapping[str, Any] | None) -> QualitySettings:
    """Settings from a `quality:` block that passed the schema and `problems`."""
    data = data or {}
    gate = data.get("gate") or {}
    ratio = gate.get("max_quarantined", data.get("max_quarantine_ratio"))
    completeness = tuple(
        (name, share(value)) for name, value in (gate.get("min_completeness") or {}).items()
    )
    validity = gate.get("min_validity")
    return QualitySettings(
        gate=Gate(
            max_quarantined=None if ratio is None else share(ratio),
            min_completeness=completeness,
            min_validity=None if validity is None else share(validity),
            min_records=int(gate.get("min_records", DEFAULT_MIN_RECORDS)),
            quarantine_key="quality.gate.max_quarantined"
            if "max_quarantined" in gate
            else "quality.max_quarantine_ratio",
        ),
        checks=tuple(_rule(item) for item in data.get("checks") or ()),
    )


def _rule(item: Mapping[str, Any]) -> CheckRule:
    return CheckRule(
        field=str(item["field"]),
        expect=str(item["expect"]),
        mostly=share(item.get("mostly", 1.0)),
        values=tuple(item.get("values") or ()),
        pattern=item.get("pattern"),
    )


def problems(doc: YamlDocument, data: Any, fields: Iterable[str]) -> list[Problem]:
    """What the schema cannot see in a `quality:` block; `fields`: the mappings' target paths.

    Run after the schema: wrong shapes are already reported there and skipped here.
    """
    if not isinstance(data, dict):
        return []
    known = sorted(set(fields))
    found: list[Problem] = []
    gate = data.get("gate")
    if isinstance(gate, dict):
        if "max_quarantined" in gate and "max_quarantine_ratio" in data:
            found.append(
                doc.problem(
                    ("quality", "max_quarantine_ratio"),
                    "give one of them: max_quarantine_ratio is the first form of "
                    "gate.max_quarantined",
                )
            )
        for key in ("max_quarantined", "min_validity"):
            found.extend(_share_problems(doc, ("quality", "gate", key), gate.get(key)))
        completeness = gate.get("min_completeness")
        if isinstance(completeness, dict):
            for name, value in completeness.items():
                path = ("quality", "gate", "min_completeness", name)
                found.extend(_field_problems(doc, path, name, known, at=path))
                found.extend(_share_problems(doc, path, value))
    checks = data.get("checks")
    for i, item in enumerate(checks if isinstance(checks, list) else []):
        if isinstance(item, dict):
            found.extend(_check_problems(doc, ("quality", "checks", i), item, known))
    return found


def _check_problems(
    doc: YamlDocument, path: tuple[Any, ...], item: dict[str, Any], known: list[str]
) -> list[Problem]:
    found: list[Problem] = []
    name = item.get("field")
    if isinstance(name, str):
        found.extend(_field_problems(doc, (*path, "field"), name, known))
    found.extend(_share_problems(doc, (*path, "mostly"), item.get("mostly")))
    expect = item.get("expect")
    if expect == "in_set" and "values" not in item:
        found.append(doc.problem(path, "expect: in_set needs values: [...], the allowed values"))
    if expect == "matches":
        pattern = item.get("pattern")
        if pattern is None:
            found.append(doc.problem(path, "expect: matches needs pattern: a regular expression"))
        elif isinstance(pattern, str):
            try:
                re.compile(pattern)
            except re.error as exc:
                found.append(doc.problem((*path, "pattern"), f"does not compile: {exc}"))
    for key, kind in (("values", "in_set"), ("pattern", "matches")):
        if key in item and expect in CHECK_KINDS and expect != kind:
            found.append(doc.problem((*path, key), f"only for expect: {kind}"))
    return found


def _field_problems(
    doc: YamlDocument,
    path: tuple[Any, ...],
    name: str,
    known: list[str],
    at: tuple[Any, ...] | None = None,
) -> list[Problem]:
    if name in known:
        return []
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    message = (
        f"{name!r} is not a field this system's mappings fill; they fill: "
        f"{', '.join(known) or 'nothing'}{hint}"
    )
    return [doc.problem(path, message, at=at)]


def _share_problems(doc: YamlDocument, path: tuple[Any, ...], value: Any) -> list[Problem]:
    # The schema lets any "N%" through; above 100 % is a typo the schema cannot see.
    if isinstance(value, str) and _PERCENT.match(value) and share(value) > 1:
        return [doc.problem(path, f"{value!r} is more than 100%")]
    return []
