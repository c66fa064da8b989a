"""Validate a DataFrame against a suite with Great Expectations 1.x; merge slices' results.

One ephemeral (in-memory) GX context per process holds a pandas datasource with one
dataframe asset, and an ExpectationSuite and a ValidationDefinition per stream suite.
Results come back as GX's JSON with every example masked, plus per-check outcomes in plain
data.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import cache
from typing import Any

import great_expectations as gx
import numpy as np
import pandas as pd
from great_expectations.execution_engine import pandas_execution_engine

from islandhub.privacy.masking import mask_text
from islandhub.quality import examples
from islandhub.quality.gx.context import META_KEY, gx_suite
from islandhub.quality.gx.context import context as new_context
from islandhub.quality.outcome import EXAMPLES, CheckOutcome, Validation
from islandhub.quality.suites import Check, Suite

# GX fingerprints every batch by hashing the whole DataFrame (about 1 s per 500,000 rows)
# for batch metadata the hub never reads; a threshold of 0 bytes skips it.
pandas_execution_engine.HASH_THRESHOLD = 0
# BASIC gives the counts and a few unexpected values; the rows they are in are looked up
# here (`_examples`). SUMMARY would give row positions too, but works out the index of every
# failing row to do so (a third of the time of a validation); COMPLETE or naming an id
# column builds a list of every failing row: 20x slower.
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": EXAMPLES}


def validate(frame: pd.DataFrame, suite: Suite, source_ids: Sequence[str]) -> Validation:
    """Run `suite` on `frame` (one row per mapped record, `source_ids` in the same order)."""
    frame = _framed(frame, suite)
    result = _definition(suite).run(
        batch_parameters={"dataframe": frame}, result_format=RESULT_FORMAT
    )
    raw = _plain(result.to_json_dict())
    _forget_results()
    checks = {c.id: c for c in suite.checks}
    outcomes = []
    for item in raw["results"]:
        check = checks[item["expectation_config"]["meta"][META_KEY]]
        outcomes.append(_outcome(item, check, suite, frame, source_ids))
        _mask_item(item, check, suite)
    filled = {f: int(frame[f].notna().sum()) for f in suite.fields}
    masked = json.loads(mask_text(json.dumps(raw)))
    return Validation(suite.name, len(frame), _in_suite_order(outcomes, suite), filled, masked)


def merge(first: Validation, second: Validation) -> Validation:
    """One validation of a batch from the validations of two of its slices."""
    by_id = {o.check: o for o in second.outcomes}
    outcomes = [o.merged(by_id[o.check]) if o.check in by_id else o for o in first.outcomes]
    filled = {f: first.filled.get(f, 0) + second.filled.get(f, 0) for f in first.filled}
    merged = Validation(first.suite, first.rows + second.rows, outcomes, filled)
    merged.gx = _merged_gx(first.gx, second.gx, {o.check: o for o in outcomes})
    return merged


# --- the context and the suites --------------------------------------------------------------


@cache
def _validation_context() -> Any:
    context = new_context()
    asset = context.data_sources.add_pandas("islandhub").add_dataframe_asset("mapped")
    batch = asset.add_batch_definition_whole_dataframe("batch")
    return context, batch


_definitions: dict[str, tuple[Suite, Any]] = {}


def _forget_results() -> None:
    """Drop the results GX keeps in memory: the hub keeps its own (dq_results).

    A long-running process (a demo, a worker) would otherwise hold every result it made.
    """
    store = _validation_context()[0].validation_results_store
    for key in store.list_keys():
        store.remove_key(key)


def _definition(suite: Suite) -> Any:
    """The suite's ValidationDefinition, made again only when the suite changed."""
    known = _definitions.get(suite.name)
    if known is not None and known[0] == suite:
        return known[1]
    context, batch = _validation_context()
    if known is not None:
        context.validation_definitions.delete(suite.name)
        context.suites.delete(suite.name)
    added = context.suites.add(gx_suite(suite))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=suite.name, data=batch, suite=added)
    )
    _definitions[suite.name] = (suite, definition)
    return definition


def _framed(frame: pd.DataFrame, suite: Suite) -> pd.DataFrame:
    """The frame with every field the suite names (missing ones empty), rows numbered 0..n-1.

    Columns of text only get pandas' string dtype: GX's missing-value and string operations
    run a third faster on it than on Python objects. Row numbers matter: with any other
    index GX looks up failing rows one by one (seconds per 100,000 failures).
    """
    frame = frame.reset_index(drop=True)
    columns = {}
    for name in dict.fromkeys([*suite.fields, *(c.field for c in suite.checks)]):
        values = frame[name] if name in frame else pd.Series([None] * len(frame), dtype=object)
        columns[name] = values.astype("str") if _all_text(values) else values
    return pd.DataFrame(columns)


def _all_text(values: pd.Series) -> bool:
    """Whether every present value is text (True/False or numbers must stay as they are)."""
    return bool(pd.api.types.infer_dtype(values, skipna=True) == "string")


# --- results ---------------------------------------------------------------------------------


def _outcome(
    item: dict[str, Any],
    check: Check,
    suite: Suite,
    frame: pd.DataFrame,
    source_ids: Sequence[str],
) -> CheckOutcome:
    result = item.get("result") or {}
    return CheckOutcome(
        check=check.id,
        field=check.field,
        kind=check.kind,
        dimension=check.dimension,
        mostly=check.mostly,
        origin=check.origin,
        elements=int(result.get("element_count") or 0),
        missing=int(result.get("missing_count") or 0),
        unexpected=int(result.get("unexpected_count") or 0),
        examples=tuple(_examples(result, check, suite, frame, source_ids)),
        error=_error(item.get("exception_info") or {}),
    )


def _examples(
    result: dict[str, Any],
    check: Check,
    suite: Suite,
    frame: pd.DataFrame,
    source_ids: Sequence[str],
) -> list[dict[str, str]]:
    """The first failing rows: their source ids and values, masked.

    GX names a few failing values; a row with one of them fails the same way (every check
    judges a value by itself, or by its repeats), so the first rows holding them are found
    with one vectorised lookup, only for checks that failed.
    """
    if not result.get("unexpected_count"):
        return []
    column = frame[check.field]
    if check.kind == "not_null":
        failing = column.isna().to_numpy()
    else:
        wanted = [v for v in result.get("partial_unexpected_list") or [] if v is not None]
        failing = column.isin(wanted).to_numpy() & column.notna().to_numpy()
    rows = np.flatnonzero(failing)[:EXAMPLES]
    sensitive = suite.sensitive(check.field)
    values = column.to_numpy()
    return [
        {
            "source_id": examples.source_id(source_ids[int(at)]),
            "value": examples.value(check.field, _missing_as_none(values[at]), sensitive=sensitive),
        }
        for at in rows
    ]


def _missing_as_none(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _mask_item(item: dict[str, Any], check: Check, suite: Suite) -> None:
    """Mask GX's own copy of the examples, which Data Docs show."""
    result = item.get("result") or {}
    sensitive = suite.sensitive(check.field)

    def shown(raw: Any) -> str:
        return examples.value(check.field, raw, sensitive=sensitive)

    if "partial_unexpected_list" in result:
        result["partial_unexpected_list"] = [shown(v) for v in result["partial_unexpected_list"]]
    if "partial_unexpected_counts" in result:
        result["partial_unexpected_counts"] = [
            {"value": shown(c.get("value")), "count": c.get("count")}
            for c in result["partial_unexpected_counts"]
        ]
    result.pop("partial_unexpected_index_list", None)  # row numbers: nothing for a reader
    info = item.get("exception_info") or {}
    error = _error(info)
    # A traceback names GX's files and, now and then, a value: keep the message only.
    item["exception_info"] = {
        "raised_exception": error is not None,
        "exception_message": error,
        "exception_traceback": None,
    }


def _error(info: dict[str, Any]) -> str | None:
    """GX's exception message, in either of the shapes it reports one."""
    candidates = [info, *(v for v in info.values() if isinstance(v, dict))]
    for entry in candidates:
        if entry.get("raised_exception"):
            return mask_text(str(entry.get("exception_message") or "error"))[:300]
    return None


def _in_suite_order(outcomes: list[CheckOutcome], suite: Suite) -> list[CheckOutcome]:
    order = {c.id: i for i, c in enumerate(suite.checks)}
    return sorted(outcomes, key=lambda o: order[o.check])


def _plain(value: Any) -> Any:
    """GX's JSON with NaN (a missing value in the examples) as null: valid JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _merged_gx(
    first: dict[str, Any], second: dict[str, Any], outcomes: dict[str, CheckOutcome]
) -> dict[str, Any]:
    """GX's result of two slices as if GX had seen the whole batch (for Data Docs)."""
    merged = json.loads(json.dumps(first))
    others = {r["expectation_config"]["meta"][META_KEY]: r for r in second.get("results", [])}
    for item in merged.get("results", []):
        outcome = outcomes[item["expectation_config"]["meta"][META_KEY]]
        other = (others.get(outcome.check) or {}).get("result") or {}
        result = item.setdefault("result", {})
        item["success"] = outcome.success
        elements, missing, unexpected = outcome.elements, outcome.missing, outcome.unexpected
        result["element_count"], result["unexpected_count"] = elements, unexpected
        if "missing_count" in result:
            result["missing_count"] = missing
            result["missing_percent"] = _percent(missing, elements)
            result["unexpected_percent_total"] = _percent(unexpected, elements)
            result["unexpected_percent_nonmissing"] = _percent(unexpected, elements - missing)
        result["unexpected_percent"] = _percent(unexpected, outcome.checked)
        key = "partial_unexpected_list"
        result[key] = (result.get(key, []) + other.get(key, []))[:EXAMPLES]
    passed = sum(1 for o in outcomes.values() if o.success)
    merged["success"] = passed == len(outcomes)
    merged["statistics"] = {
        "evaluated_expectations": len(outcomes),
        "successful_expectations": passed,
        "unsuccessful_expectations": len(outcomes) - passed,
        "success_percent": _percent(passed, len(outcomes)),
    }
    return merged


def _percent(part: int, whole: int) -> float:
    return 0.0 if whole == 0 else 100.0 * part / whole
