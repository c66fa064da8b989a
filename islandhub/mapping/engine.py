"""Compiles a mapping file into a Mapping and applies it to batches of source records.

A batch is mapped column by column: for each field the engine gathers the column, runs the
field's transform chain once per distinct value (columns such as postal code or language
repeat a lot) and spreads the outcomes back over the rows. A value a transform rejects is
dropped with a warning, or quarantines the record when the field is required; every reason
names the target, the source field and a masked excerpt of the value.

The optional `references:` section names records of other islands that a record holds the id
of (the referenced `system.stream` -> a field spec like `fields`' entries). Its values are
source ids, mapped column by column like fields; a rejected one is only dropped with a
warning, since a record is still a record without its reference.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Collection, Iterator
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from islandhub.errors import ConfigError, Problem
from islandhub.gcpause import cyclic_gc_paused
from islandhub.mapping.transforms import (
    REGISTRY,
    ArgumentError,
    Noted,
    Step,
    TransformError,
    build_step,
    clear_batch_caches,
)
from islandhub.privacy.masking import mask_text

if TYPE_CHECKING:
    from islandhub.push.reverse import ReverseMapping

EXCERPT_LENGTH = 40
FIELD_KEYS = ("from", "use", "required")
REFERENCE_KEYS = ("from", "use")  # never required: a record without its reference still maps
SENSITIVE_TRANSFORMS = frozenset({"hetu"})
SENSITIVE_TARGETS = frozenset({"national_id"})
_CENTURY_SIGNS = frozenset("-+ABCDEFUVWXYabcdefuvwxy")
_SYSTEM_STREAM = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")


class _NoReferences(MappingABC[str, str]):
    """The empty `references` every record of a mapping without `references:` shares.

    Hashable, so that it can be a dataclass default: a field with a plain default and
    init=False is not set in __init__ at all (the class attribute is read), so records of
    such mappings, nearly all of them, cost nothing more to build than before.
    """

    def __getitem__(self, key: str) -> str:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "{}"


NO_REFERENCES: MappingABC[str, str] = _NoReferences()


@dataclass(frozen=True)
class MappedRecord:
    """A source record turned into resident fields (flat target paths).

    `references`: the referenced `system.stream` -> the source id (text) of the record this
    one names there; only the references the record holds a value for.
    """

    source_id: str
    values: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    references: MappingABC[str, str] = field(default=NO_REFERENCES, init=False)


@dataclass(frozen=True)
class QuarantinedRecord:
    """A source record that could not be mapped, with every reason."""

    source_id: str | None
    reasons: list[str]


@dataclass
class MappedBatch:
    """The result of one batch: mapped and quarantined, in input order split in two."""

    mapped: list[MappedRecord]
    quarantined: list[QuarantinedRecord]


# ---------------------------------------------------------------------------------------
# Reading source values


_ABSENT = object()


def _blank_to_none(value: Any) -> Any:
    """Empty or whitespace-only text (and a spreadsheet's NaN) count as missing."""
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def read_column(path: str, records: list[dict[str, Any]]) -> list[Any]:
    """Read ``path`` from every record (see make_getter)."""
    if "." not in path:
        try:
            # itemgetter runs in C: several times faster than .get() in a comprehension.
            return list(map(operator.itemgetter(path), records))
        except KeyError:  # a sparse batch: some records lack the key
            return [record.get(path) for record in records]
    return list(map(make_getter(path), records))


def make_getter(path: str) -> Callable[[dict[str, Any]], Any]:
    """Build a reader of ``path`` (a key, or a dotted path into nested JSON) in a record.

    A key that literally contains dots wins over the nested reading; list items are
    reached by number (``contacts.0.email``). Anything missing on the way reads as None.
    """
    if "." not in path:
        return lambda record: record.get(path)
    parts = path.split(".")

    def get(record: dict[str, Any]) -> Any:
        value = record.get(path, _ABSENT)
        if value is not _ABSENT:
            return value
        current: Any = record
        for part in parts:
            if isinstance(current, dict):
                current = current.get(part)
            elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
                current = current[int(part)]
            else:
                return None
        return current

    return get


def _id_text(value: Any) -> str | None:
    """A source id as text (ints become text); None when missing, empty or not a scalar."""
    value = _blank_to_none(value)
    if value is None or isinstance(value, dict | list):
        return None
    return value if isinstance(value, str) else str(value)


def _excerpt(value: Any, sensitive: bool) -> str:
    """Render a value short and masked, for a reason text."""
    text = mask_text(value if isinstance(value, str) else repr(value))
    if sensitive and len(text) > 6:
        # A malformed national id escapes the HETU-shaped mask: show at most what the mask
        # shows (birth date and century sign), never a digit of the individual number.
        keep = 7 if text[6] in _CENTURY_SIGNS else 6
        text = text[:keep] + "****"
    return text[:EXCERPT_LENGTH]


# ---------------------------------------------------------------------------------------
# One compiled field


@dataclass(frozen=True, slots=True)
class _Issue:
    """The outcome of a chain that is not just a value: a rejection or notes."""

    value: Any
    notes: tuple[str, ...] = ()
    error: str | None = None


class _Field:
    """One `fields:` entry compiled: how to read the column and run the chain."""

    def __init__(self, target: str, spec: dict[str, Any]) -> None:
        self.target = target
        source = spec["from"]
        self.sources: list[str] = source if isinstance(source, list) else [source]
        self.is_list = isinstance(source, list)
        self.label = f"{target} (from {', '.join(self.sources)})"
        self.required = bool(spec.get("required", False))
        chain = [build_step(item) for item in spec.get("use") or []]
        self.steps: list[tuple[Step, bool]] = [(step, d.sees_none) for d, step in chain]
        names = {d.name for d, _ in chain}
        self.sensitive = bool(names & SENSITIVE_TRANSFORMS) or target in SENSITIVE_TARGETS
        self._getters = [make_getter(path) for path in self.sources]
        # Most chains never look at missing values: they get a flatter runner.
        plain = not self.is_list and not any(sees_none for _, sees_none in self.steps)
        self._plain: list[Step] = [s for s, _ in self.steps] if plain else []
        self._plain_chain = plain
        self._runner: Callable[[Any], Any] = self._run_plain if plain else self._run_general

    def column(self, records: list[dict[str, Any]]) -> list[Any]:
        """Gather the raw values of this field, one per record (tuples for list sources)."""
        if not self.is_list:
            return read_column(self.sources[0], records)
        getters = self._getters
        return [tuple(get(record) for get in getters) for record in records]

    def run(self, raw: Any) -> Any:
        """Run the chain on one raw value: the final value, or an _Issue."""
        return self._runner(raw)

    def _run_plain(self, raw: Any) -> Any:
        """Run a chain whose steps all skip missing values: the hot path, kept flat."""
        if type(raw) is str:
            if not raw or raw.isspace():
                return None
        else:
            raw = _blank_to_none(raw)
            if raw is None:
                return None
        value = raw
        notes: tuple[str, ...] = ()
        for step in self._plain:
            before = value
            try:
                value = step(value)
            except TransformError as err:
                return self._rejected(before, err, notes)
            if type(value) is Noted:
                notes, value = (*notes, f"{self.label}: {value.note}"), value.value
            if value is None:
                break
        return self._finished(value, notes)

    def _run_general(self, raw: Any) -> Any:
        """Run any chain: list sources, and steps that also see missing values."""
        if self.is_list:
            value: Any = [_blank_to_none(v) for v in raw]
        else:
            value = _blank_to_none(raw)
        notes: tuple[str, ...] = ()
        for step, sees_none in self.steps:
            if value is None and not sees_none:
                continue
            before = value
            try:
                value = step(value)
            except TransformError as err:
                return self._rejected(before, err, notes)
            if type(value) is Noted:
                notes, value = (*notes, f"{self.label}: {value.note}"), value.value
        return self._finished(value, notes)

    def _rejected(self, value: Any, err: TransformError, notes: tuple[str, ...]) -> _Issue:
        reason = f"{self.label}: {err}: '{_excerpt(value, self.sensitive)}'"
        return _Issue(None, notes, reason)

    @staticmethod
    def _finished(value: Any, notes: tuple[str, ...]) -> Any:
        if type(value) is str and (not value or value.isspace()):
            value = None  # a chain that ends in blank text found nothing
        return _Issue(value, notes) if notes else value

    def outcomes(self, column: list[Any]) -> tuple[list[Any], Collection[Any]]:
        """Run the chain over a column: one outcome per row, and the distinct outcomes.

        Each distinct value is computed once, unless a sample shows the column to be all
        distinct (national ids, emails): then a memo would only cost time.
        """
        if not _worth_memoizing(column):
            outcomes = self._evaluate(column)
            return outcomes, outcomes
        try:
            distinct = list(dict.fromkeys(column))
        except TypeError:  # nested JSON values are unhashable: no memo for this column
            outcomes = self._evaluate(column)
            return outcomes, outcomes
        if _mixes_equal_values(column, distinct):
            outcomes = self._evaluate(column)
            return outcomes, outcomes
        memo = dict(zip(distinct, self._evaluate(distinct), strict=True))
        return list(map(memo.__getitem__, column)), memo.values()

    def _evaluate(self, values: list[Any]) -> list[Any]:
        """Run the chain on each value, in order."""
        if not self._plain_chain:
            return list(map(self._runner, values))
        # _run_plain's loop inlined for text: a Python call per value costs about as much
        # as a cheap step, and a batch has up to one distinct value per row.
        steps = self._plain
        results: list[Any] = []
        append = results.append
        for raw in values:
            if type(raw) is not str:
                append(self._run_plain(raw))
                continue
            if not raw or raw.isspace():
                append(None)
                continue
            value: Any = raw
            before: Any = raw
            notes: tuple[str, ...] = ()
            try:
                for step in steps:
                    before = value
                    value = step(value)
                    if type(value) is Noted:
                        notes, value = (*notes, f"{self.label}: {value.note}"), value.value
                    if value is None:
                        break
            except TransformError as err:
                append(self._rejected(before, err, notes))
                continue
            if notes:
                append(self._finished(value, notes))
            elif type(value) is not str or (value and not value.isspace()):
                append(value)
            else:
                append(None)
        return results


MEMO_SAMPLE = 2048


def _worth_memoizing(column: list[Any]) -> bool:
    """Whether the column's first values repeat: if not, the column is taken as unique."""
    sample = column[:MEMO_SAMPLE]
    try:
        return len(set(sample)) < len(sample)
    except TypeError:
        return False


_TEXT_KINDS = frozenset({str, type(None)})


def _mixes_equal_values(column: list[Any], distinct: list[Any]) -> bool:
    """Whether values of different types that compare equal (1, 1.0, True) may share a key.

    A memo keyed on such values would hand one type's outcome to the other. Text-only
    columns, the usual case, are settled by looking at the distinct values alone.
    """
    if set(map(type, distinct)) <= _TEXT_KINDS:
        return False
    kinds: set[type] = set()
    for value in column:
        kinds.update(map(type, value) if type(value) is tuple else (type(value),))
    kinds.difference_update((str, type(None)))
    return len(kinds) > 1


def _mapped_column(
    fld: _Field,
    rows: list[dict[str, Any]],
    reasons: dict[int, list[str]],
    warnings: dict[int, list[str]],
) -> tuple[list[Any], bool]:
    """One field's final values, one per row (None: omit), noting reasons and warnings.

    The flag tells whether any value may be None, so clean batches skip a per-row check.
    """
    outcomes, distinct = fld.outcomes(fld.column(rows))
    if _all_plain(distinct, fld.required):
        return outcomes, None in distinct
    _settle(fld, outcomes, reasons, warnings)
    return outcomes, True


def _all_plain(outcomes: Collection[Any], required: bool) -> bool:
    """Whether every outcome is a plain value (None allowed only if not required)."""
    for outcome in outcomes:
        if type(outcome) is _Issue or (outcome is None and required):
            return False
    return True


def _settle(
    fld: _Field,
    outcomes: list[Any],
    reasons: dict[int, list[str]],
    warnings: dict[int, list[str]],
) -> None:
    """Replace each _Issue by its value in place, filing its notes, error or absence."""
    missing = f"{fld.label}: required, but missing"
    for i, outcome in enumerate(outcomes):
        if outcome is None:
            if fld.required:
                reasons.setdefault(i, []).append(missing)
        elif type(outcome) is _Issue:
            outcomes[i] = outcome.value
            if outcome.notes:
                warnings.setdefault(i, []).extend(outcome.notes)
            if outcome.error is not None:
                (reasons if fld.required else warnings).setdefault(i, []).append(outcome.error)
            elif outcome.value is None and fld.required:
                reasons.setdefault(i, []).append(missing)


def _assemble(
    targets: list[str],
    ids: list[str | None],
    columns: list[list[Any]],
    sparse: bool,
    reasons: dict[int, list[str]],
    warnings: dict[int, list[str]],
) -> MappedBatch:
    """Build the records row by row from the finished columns (sparse: may hold None)."""
    rows = zip(*columns, strict=True) if columns else iter([()] * len(ids))
    if not reasons and not warnings and not sparse:
        # The clean batch: no row needs a look of its own.
        return MappedBatch(
            [
                # Without reasons every id is present (a missing id is a reason).
                MappedRecord(cast(str, source_id), dict(zip(targets, row, strict=True)), [])
                for source_id, row in zip(ids, rows, strict=True)
            ],
            [],
        )
    mapped: list[MappedRecord] = []
    quarantined: list[QuarantinedRecord] = []
    for i, (source_id, row) in enumerate(zip(ids, rows, strict=True)):
        if i in reasons or source_id is None:
            quarantined.append(QuarantinedRecord(source_id, reasons[i]))
        elif None in row:
            values = {t: v for t, v in zip(targets, row, strict=True) if v is not None}
            mapped.append(MappedRecord(source_id, values, warnings.get(i, [])))
        else:
            values = dict(zip(targets, row, strict=True))
            mapped.append(MappedRecord(source_id, values, warnings.get(i, [])))
    return MappedBatch(mapped, quarantined)


def _reference_rows(names: list[str], columns: list[list[Any]]) -> dict[int, dict[str, str]]:
    """Row -> {referenced system.stream: source id text}, for rows holding any reference."""
    found: dict[int, dict[str, str]] = {}
    for name, column in zip(names, columns, strict=True):
        for i, value in enumerate(column):
            text = _id_text(value)
            if text is not None:
                found.setdefault(i, {})[name] = text
    return found


def _attach_references(
    batch: MappedBatch,
    ids: list[str | None],
    reasons: dict[int, list[str]],
    references: dict[int, dict[str, str]],
) -> None:
    """Give each mapped record its references (`_assemble` keeps the rows' order)."""
    mapped = iter(batch.mapped)
    for i, source_id in enumerate(ids):
        if i in reasons or source_id is None:
            continue  # quarantined: a record without a source id is too
        record = next(mapped)
        if i in references:
            # Frozen: set once here, as a dataclass's own __init__ would.
            object.__setattr__(record, "references", references[i])


# ---------------------------------------------------------------------------------------
# Checking a spec


def _spec_problems(spec: Any) -> list[Problem]:
    if not isinstance(spec, dict):
        return [Problem("a mapping file must be a mapping with source, entity, id and fields")]
    problems: list[Problem] = []
    for key in ("source", "id"):
        if not isinstance(spec.get(key), str) or not spec[key].strip():
            problems.append(Problem(f"{key} is required and must be text", path=key))
    source = spec.get("source")
    if isinstance(source, str) and source.strip() and source.count(".") != 1:
        problems.append(
            Problem("source must be 'system.stream', like booking.reservations", path="source")
        )
    entity = spec.get("entity", "resident")
    if not isinstance(entity, str) or not entity.strip():
        problems.append(Problem("entity must be text, like resident", path="entity"))
    fields = spec.get("fields")
    if not isinstance(fields, dict) or not fields:
        problems.append(
            Problem("fields is required: a mapping of target -> {from, use}", path="fields")
        )
    else:
        for target, field_spec in fields.items():
            problems.extend(_field_problems(target, field_spec))
    if "references" in spec:
        problems.extend(_references_problems(spec["references"]))
    return problems


def _references_problems(references: Any) -> list[Problem]:
    """The `references:` section: referenced system.stream -> {from, use}."""
    if not isinstance(references, dict):
        message = "references must be a mapping of <system>.<stream> -> {from, use}"
        return [Problem(message, path="references")]
    problems: list[Problem] = []
    for target, spec in references.items():
        if not isinstance(target, str) or not _SYSTEM_STREAM.match(target):
            message = (
                f"a reference names the records it points to as 'system.stream', "
                f"like crm.contacts, not {target!r}"
            )
            problems.append(Problem(message, path=f"references.{target}"))
            continue
        problems.extend(_field_problems(target, spec, "references", REFERENCE_KEYS))
    return problems


def _field_problems(
    target: Any, spec: Any, section: str = "fields", keys: tuple[str, ...] = FIELD_KEYS
) -> list[Problem]:
    path = f"{section}.{target}"
    if not isinstance(target, str) or not target.strip():
        return [Problem(f"a target path must be text, not {target!r}", path=section)]
    if not isinstance(spec, dict):
        return [Problem("a field is a mapping like {from: source_field, use: [strip]}", path=path)]
    problems = [
        Problem(f"unknown key '{key}'; known keys: {', '.join(keys)}", path=f"{path}.{key}")
        for key in spec
        if key not in keys
    ]
    problems.extend(_from_problems(spec.get("from", _ABSENT), f"{path}.from"))
    if not isinstance(spec.get("required", False), bool):
        problems.append(Problem("required must be true or false", path=f"{path}.required"))
    use = spec.get("use", [])
    if use is None:
        use = []
    if not isinstance(use, list):
        return [*problems, Problem("use must be a list of transforms", path=f"{path}.use")]
    for i, item in enumerate(use):
        try:
            build_step(item)
        except ArgumentError as err:
            problems.append(Problem(str(err), path=f"{path}.use[{i}]"))
    if isinstance(spec.get("from"), list) and not _starts_with_combiner(use):
        problems.append(
            Problem(
                "from lists several fields: the first transform must combine them "
                "(concat or coalesce)",
                path=f"{path}.use",
            )
        )
    return problems


def _from_problems(source: Any, path: str) -> list[Problem]:
    if source is _ABSENT:
        return [Problem("from is required: the source field to read", path=path)]
    paths = source if isinstance(source, list) else [source]
    if isinstance(source, list) and not source:
        return [Problem("from must name at least one source field", path=path)]
    problems = []
    for i, item in enumerate(paths):
        where = f"{path}[{i}]" if isinstance(source, list) else path
        if not isinstance(item, str) or not item or "" in item.split("."):
            problems.append(
                Problem(
                    "from must be a field name or dotted path like reserver.contact.email",
                    path=where,
                )
            )
    return problems


def _starts_with_combiner(use: list[Any]) -> bool:
    first = use[0] if use else None
    name = next(iter(first)) if isinstance(first, dict) and len(first) == 1 else first
    return isinstance(name, str) and name in REGISTRY and REGISTRY[name].takes_list


# ---------------------------------------------------------------------------------------
# The mapping


class Mapping:
    """A compiled mapping: reads one stream's records and yields resident fields."""

    def __init__(self, spec: dict[str, Any], *, file: str | None = None) -> None:
        """Compile an already-checked spec; use from_spec() for unchecked input."""
        self.file = file
        self.source: str = spec["source"]
        self.entity: str = spec.get("entity", "resident")
        self.id_path: str = spec["id"]
        self._fields = [_Field(target, fs) for target, fs in spec["fields"].items()]
        self.target_paths: list[str] = [f.target for f in self._fields]
        # `references:`: the system.stream each names, and its compiled field (labelled
        # "references.<system.stream>" in warnings, as the path in the file).
        references = spec.get("references") or {}
        self.references: list[str] = list(references)
        self._references = [_Field(f"references.{t}", fs) for t, fs in references.items()]
        self._id_getter = make_getter(self.id_path)
        # The optional `push:` section: how golden records go back to this stream's island.
        self.push: ReverseMapping | None = _reverse(spec["push"]) if "push" in spec else None

    @staticmethod
    def problems(spec: dict[str, Any]) -> list[Problem]:
        """Every semantic problem of a parsed mapping; path is a dotted JSON path."""
        has_push = isinstance(spec, dict) and "push" in spec
        reverse = _reverse_problems(spec["push"]) if has_push else []
        return _spec_problems(spec) + reverse

    @classmethod
    def from_spec(cls, spec: dict[str, Any], *, file: str | None = None) -> Mapping:
        """Compile a parsed mapping; raise ConfigError listing every problem."""
        problems = cls.problems(spec)
        if problems:
            raise ConfigError([Problem(p.message, file=file, path=p.path) for p in problems])
        return cls(spec, file=file)

    def __repr__(self) -> str:
        return f"Mapping({self.source!r}, fields={len(self._fields)}, file={self.file!r})"

    def source_id(self, record: dict[str, Any]) -> str | None:
        """Return the record's own id as text; None when missing or empty."""
        return _id_text(self._id_getter(record)) if isinstance(record, dict) else None

    def apply(self, records: list[dict[str, Any]]) -> MappedBatch:
        """Map a batch column-wise; every record ends up mapped or quarantined."""
        rows = [r if isinstance(r, dict) else {} for r in records]
        ids = [
            raw
            if type(raw) is str and raw and not raw.isspace()
            else str(raw)
            if type(raw) is int
            else _id_text(raw)
            for raw in read_column(self.id_path, rows)
        ]
        reasons: dict[int, list[str]] = {}
        warnings: dict[int, list[str]] = {}
        for i, (record, source_id) in enumerate(zip(records, ids, strict=True)):
            if not isinstance(record, dict):
                reasons.setdefault(i, []).append("record is not a JSON object")
            elif source_id is None:
                reasons.setdefault(i, []).append(f"id (from {self.id_path}): required, but missing")
        with cyclic_gc_paused():
            try:
                results = [_mapped_column(fld, rows, reasons, warnings) for fld in self._fields]
                # Optional, never required: a rejected reference is a warning, not a reason.
                referenced = [
                    _mapped_column(ref, rows, reasons, warnings)[0] for ref in self._references
                ]
            finally:
                clear_batch_caches()
            columns = [column for column, _ in results]
            sparse = any(may_be_none for _, may_be_none in results)
            batch = _assemble(self.target_paths, ids, columns, sparse, reasons, warnings)
            if referenced:
                found = _reference_rows(self.references, referenced)
                if found:
                    _attach_references(batch, ids, reasons, found)
            return batch


# The push package reads the transform registry: imported when needed, not at import time.
def _reverse(spec: dict[str, Any]) -> ReverseMapping:
    from islandhub.push.reverse import ReverseMapping

    return ReverseMapping.from_spec(spec)


def _reverse_problems(spec: Any) -> list[Problem]:
    from islandhub.push.reverse import ReverseMapping

    return ReverseMapping.problems(spec)
