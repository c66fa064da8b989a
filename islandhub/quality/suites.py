"""A stream's checks: derived from the resident schema and its mapping, plus its system file's.

Three sources, later ones winning for the same field and kind:
1. the resident schema's formats, by target path (a national id is a valid HETU, a phone is
   E.164, a municipality code is known, ...);
2. the mapping: `required: true` means not null, a validating transform (hetu, ytunnus,
   phone, postal_code, email, date, bool) means its format, a final `map` means its values;
3. the system file: `quality.gate.min_completeness` (not null, mostly that share) and
   `quality.checks`.
A national id is expected to be unique within a stream of person records; a stream of
activities (`activity:` in the system file: bookings, signups) names a person many times.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from islandhub.config import SCHEMA_DIR, StreamConfig, SystemConfig
from islandhub.quality.settings import CHECK_KINDS, CheckRule, QualitySettings
from islandhub.yamlsource import load_yaml

# The resident schema's formats (schemas/resident.schema.json), as checks by target path.
_SCHEMA_FORMATS: dict[str, tuple[str, tuple[Any, ...], str | None]] = {
    "national_id": ("hetu", (), None),
    "birth_date": ("iso_date", (), None),
    "language": ("matches", (), "[a-z]{2}"),  # ISO 639-1
    "municipality_code": ("municipality_code", (), None),
    "non_disclosure": ("in_set", (True, False), None),
    "email": ("email", (), None),
    "phone": ("e164_phone", (), None),
    "address.postal_code": ("postal_code", (), None),
    "address.country": ("matches", (), "[A-Z]{2}"),  # ISO 3166-1 alpha-2
}
# The validating transforms of the mapping engine, as the format they guarantee.
_TRANSFORM_FORMATS: dict[str, tuple[str, tuple[Any, ...], str | None]] = {
    "hetu": ("hetu", (), None),
    "ytunnus": ("ytunnus", (), None),
    "phone": ("e164_phone", (), None),
    "postal_code": ("postal_code", (), None),
    "email": ("email", (), None),
    "date": ("iso_date", (), None),
    "bool": ("in_set", (True, False), None),
}
SENSITIVE_FIELDS = frozenset({"national_id"})


@dataclass(frozen=True)
class Check:
    """One check of a suite: `kind` (settings.CHECK_KINDS) on the target path `field`."""

    field: str
    kind: str
    mostly: float = 1.0
    values: tuple[Any, ...] = ()
    pattern: str | None = None
    origin: str = "schema"  # schema | mapping | gate | system: where it came from

    @property
    def id(self) -> str:
        """Unique within a suite: one check of a kind per field."""
        return f"{self.field}:{self.kind}"

    @property
    def dimension(self) -> str:
        """completeness, validity or uniqueness."""
        return CHECK_KINDS[self.kind]


@dataclass(frozen=True)
class Suite:
    """The checks of one stream, and the fields its mapped records have."""

    system: str
    stream: str
    checks: tuple[Check, ...]
    fields: tuple[str, ...]  # every target path of the mapping: the validated frame's columns
    scored: tuple[str, ...]  # those that are resident fields: they make up completeness

    @property
    def name(self) -> str:
        """The expectation suite's name in Great Expectations."""
        return f"islandhub.{self.system}.{self.stream}"

    def sensitive(self, field: str) -> bool:
        """Whether values of `field` are national ids, to be masked as such in examples."""
        return field in SENSITIVE_FIELDS or any(
            c.field == field and c.kind == "hetu" for c in self.checks
        )


def suite_for(root: Path, system: SystemConfig, stream: StreamConfig) -> Suite:
    """The suite of one stream of a loaded project (`root`: the project folder)."""
    mapping = stream.mapping
    fields = tuple(mapping.target_paths)
    checks: dict[str, Check] = {}

    def add(check: Check) -> None:
        checks[check.id] = check

    for target in fields:
        for kind, allowed, pattern in _schema_formats(target):
            add(Check(target, kind, values=allowed, pattern=pattern, origin="schema"))
    for check in _mapping_checks(root, mapping.file):
        if check.field in fields:
            add(check)
    if "national_id" in fields and not stream.activity:
        add(Check("national_id", "unique", origin="schema"))
    _add_settings(add, system.quality_settings)
    resident = set(_resident_paths())
    scored = tuple(f for f in fields if f in resident)
    return Suite(system.system, stream.name, tuple(checks.values()), fields, scored)


def _schema_formats(target: str) -> list[tuple[str, tuple[Any, ...], str | None]]:
    if target in _SCHEMA_FORMATS:
        return [_SCHEMA_FORMATS[target]]
    # A guardian's phone or email (guardian.phone) has the format of the resident's own.
    leaf = target.rsplit(".", 1)[-1]
    if leaf in ("phone", "email") and "." in target:
        return [_SCHEMA_FORMATS[leaf]]
    return []


def _mapping_checks(root: Path, file: str | None) -> list[Check]:
    """The checks a mapping file's `required` and transforms imply (read from the file).

    The compiled Mapping keeps steps, not their names, so the file is read again; a mapping
    made without a file (tests, `mapping preview`) implies nothing beyond the schema.
    """
    if not file:
        return []
    path = Path(file) if Path(file).is_absolute() else root / file
    if not path.is_file():
        return []
    return list(_checks_of_file(str(path.resolve()), path.stat().st_mtime_ns))


@cache
def _checks_of_file(path: str, _mtime: int) -> tuple[Check, ...]:
    spec = load_yaml(Path(path), path).data
    fields = spec.get("fields") if isinstance(spec, dict) else None
    found: list[Check] = []
    for target, field_spec in (fields or {}).items():
        if not isinstance(field_spec, dict):
            continue
        if field_spec.get("required") is True:
            found.append(Check(target, "not_null", origin="mapping"))
        steps = [_step_name(step) for step in field_spec.get("use") or []]
        for name in steps:
            if name in _TRANSFORM_FORMATS:
                kind, allowed, pattern = _TRANSFORM_FORMATS[name]
                found.append(Check(target, kind, values=allowed, pattern=pattern, origin="mapping"))
        table = _final_map(field_spec.get("use") or [])
        if table:
            found.append(Check(target, "in_set", values=table, origin="mapping"))
    return tuple(found)


def _step_name(step: Any) -> str | None:
    if isinstance(step, str):
        return step
    if isinstance(step, dict) and len(step) == 1:
        return str(next(iter(step)))
    return None


def _final_map(use: list[Any]) -> tuple[Any, ...]:
    """The values a chain ending in `map` can give (its table's values and default)."""
    if not use or _step_name(use[-1]) != "map" or not isinstance(use[-1], dict):
        return ()
    arg = use[-1]["map"]
    if not isinstance(arg, dict):
        return ()
    long_form = isinstance(arg.get("values"), dict) and set(arg) <= {"values", "default"}
    table = arg["values"] if long_form else arg
    given = [*table.values(), *([arg["default"]] if long_form and "default" in arg else [])]
    return tuple(dict.fromkeys(v for v in given if v is not None))


def _add_settings(add: Any, settings: QualitySettings) -> None:
    for name, least in settings.gate.min_completeness:
        add(Check(name, "not_null", mostly=least, origin="gate"))
    for rule in settings.checks:
        add(_from_rule(rule))


def _from_rule(rule: CheckRule) -> Check:
    return Check(rule.field, rule.expect, rule.mostly, rule.values, rule.pattern, "system")


@cache
def _resident_paths() -> tuple[str, ...]:
    with (SCHEMA_DIR / "resident.schema.json").open(encoding="utf-8") as handle:
        schema = json.load(handle)
    return tuple(schema["x-target-paths"])
