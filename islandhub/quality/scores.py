"""Scores of a validation, each a share from 0 to 1 (None: nothing to judge), and the gate.

- completeness: of the stream's resident fields, the share of mapped records that have them
  (averaged over the fields);
- validity: the share of records that mapped (were not quarantined), times the share of
  their values that passed the format checks;
- uniqueness: the share of values that passed the uniqueness checks.
"""

from __future__ import annotations

from typing import Any

from islandhub.quality.outcome import Validation
from islandhub.quality.settings import Gate
from islandhub.quality.suites import Suite


def of_validation(validation: Validation, suite: Suite, quarantined: int) -> dict[str, Any]:
    """The scores of a validated batch whose other `quarantined` records did not map."""
    rows = validation.rows
    total = rows + quarantined
    filled = {f: validation.filled.get(f, 0) / rows for f in suite.fields} if rows else {}
    scored = [filled[f] for f in suite.scored if f in filled]
    valid = [o for o in validation.outcomes if o.dimension == "validity"]
    unique = [o for o in validation.outcomes if o.dimension == "uniqueness"]
    mapped_share = rows / total if total else 1.0
    return {
        "records": total,
        "mapped": rows,
        "quarantined": quarantined,
        "quarantined_share": 1 - mapped_share,
        "completeness": sum(scored) / len(scored) if scored else None,
        "validity": mapped_share * _passed(valid) if total else None,
        "uniqueness": _passed(unique) if unique and rows else None,
        "filled": filled,
        "checks": len(validation.outcomes),
        "checks_failed": sum(1 for o in validation.outcomes if not o.success),
    }


def _passed(outcomes: list[Any]) -> float:
    checked = sum(o.checked for o in outcomes)
    return 1.0 if checked == 0 else 1 - sum(o.unexpected for o in outcomes) / checked


def gate_reasons(gate: Gate, scores: dict[str, Any]) -> list[str]:
    """Why `gate` holds a batch with these scores; empty: it passes (or does not apply)."""
    total = scores["records"]
    if not gate.active or total < gate.min_records:
        return []
    reasons = []
    share = scores["quarantined_share"]
    if gate.max_quarantined is not None and share > gate.max_quarantined:
        reasons.append(
            f"{pct(share)} of {total:,} records quarantined, more than the "
            f"{pct(gate.max_quarantined)} allowed ({gate.quarantine_key})"
        )
    for field, least in gate.min_completeness:
        filled = scores["filled"].get(field, 0.0)
        if filled < least:
            reasons.append(
                f"{field} filled in {pct(filled)} of {scores['mapped']:,} mapped records, less "
                f"than the {pct(least)} required (quality.gate.min_completeness.{field})"
            )
    validity = scores["validity"]
    if gate.min_validity is not None and validity is not None and validity < gate.min_validity:
        reasons.append(
            f"validity {pct(validity)}, less than the {pct(gate.min_validity)} required "
            "(quality.gate.min_validity)"
        )
    return reasons


def pct(share: float) -> str:
    """A share as a percentage for messages: 0.0512 gives '5.1 %'."""
    return f"{share * 100:.1f} %"
