"""`islandhub resident explain ID`: why these records are one person, comparison by comparison.

Every source record of the resident is shown with the rule that linked it (the same
national id, an earlier link, the probabilistic pass), and compared by the trained model:
the level each comparison reached and its match weight (log2 of the Bayes factor), and the
pair's total weight and match probability. Each record is compared with the earlier record it
matches best (the link that brought it in). Term-frequency adjustments are not applied here,
so a weight may differ a little from the one the resolve pass used. A steward's merges,
splits and pins naming the resident are listed too. Under a non-disclosure order
(turvakielto) the address comparisons show their level and weight but not the values.
"""

from __future__ import annotations

from math import log2
from typing import Any

import sqlalchemy as sa
from splink import DuckDBAPI, Linker

from islandhub.privacy.at_rest import unsealed_fields
from islandhub.privacy.masking import mask_text
from islandhub.residents import Reader, audit, follow_redirects
from islandhub.resolve.golden import ordered
from islandhub.resolve.matching import TrainedModel, frame_of, load_model, standardise
from islandhub.resolve.publish import _observations_of
from islandhub.resolve.steward import decisions_of, load_pins
from islandhub.store.db import Store
from islandhub.store.tables import links

MAX_RECORDS = 25  # comparisons grow with the square of the records shown
# Comparison columns that hold (part of) an address: hidden under a non-disclosure order.
ADDRESS_COLUMNS = frozenset({"street", "house", "postal_code", "post_office", "address"})


def explain(
    store: Store, reader: Reader, resident_id: str, priority: tuple[str, ...]
) -> dict[str, Any] | None:
    """The resident's records, how each was linked, and the model's comparisons between them."""
    with store.begin() as conn:
        rid = follow_redirects(conn, resident_id)
        audit(conn, reader, "explain", rid, {"found": rid is not None})
        if rid is None:
            return None
        observations = ordered(_observations_of(conn, [rid]).get(rid, []), priority)
        protected = any(o.fields.get("non_disclosure") is True for o in observations) or (
            load_pins(conn, [rid]).get(rid, {}).get("non_disclosure") is not None
        )
        decisions = decisions_of(conn, rid)
        rules = {
            (r.system, r.stream, r.source_id): r.rule
            for r in conn.execute(sa.select(links).where(links.c.resident_id == rid))
        }
    records = [
        {
            "system": o.system,
            "stream": o.stream,
            "source_id": mask_text(o.source_id),  # the register keys its records by HETU
            "rule": rules.get((o.system, o.stream, o.source_id), ""),
        }
        for o in observations
    ]
    model = load_model(store)
    comparisons = (
        _compare(observations, model, protected) if model and len(observations) > 1 else []
    )
    return {
        "resident_id": rid,
        "requested_id": resident_id if resident_id != rid else None,
        "records": records,
        "comparisons": comparisons,
        "model": bool(model),
        "non_disclosure": protected,
        "decisions": decisions,
    }


def _compare(observations: list[Any], model: TrainedModel, protected: bool) -> list[dict[str, Any]]:
    # Stored national ids are sealed: opened here, for the birth date and temporary-id test.
    rows = [
        standardise(o.system, o.stream, o.source_id, unsealed_fields(o.fields))
        for o in observations
    ]
    frame = frame_of(rows).astype(object).where(lambda f: f.notna(), None)
    settings = {
        **model.model,
        "retain_matching_columns": True,
        "retain_intermediate_calculation_columns": True,
    }
    linker = Linker(frame, settings, db_api=DuckDBAPI(), set_up_basic_logging=False)
    names = [c["output_column_name"] for c in model.model.get("comparisons", [])]
    result = []
    # A cluster is joined pair by pair: each record is shown with the earlier record it
    # matches best, which is the link that brought it in (not always the first record).
    for index in range(1, min(len(frame), MAX_RECORDS)):
        other = frame.iloc[[index]]
        scored = [
            (
                linker.inference.compare_two_records(frame.iloc[[j]], other)
                .as_pandas_dataframe()
                .iloc[0],
                j,
            )
            for j in range(index)
        ]
        best, j = max(scored, key=lambda pair: float(pair[0]["match_weight"]))
        result.append(
            {
                "record": mask_text(rows[index]["unique_id"]),
                "with": mask_text(rows[j]["unique_id"]),
                "match_weight": round(float(best["match_weight"]), 2),
                "match_probability": round(float(best["match_probability"]), 6),
                "comparisons": [
                    _level(best, name, protected) for name in names if f"gamma_{name}" in best
                ],
            }
        )
    return result


def _level(scored: Any, name: str, protected: bool) -> dict[str, Any]:
    bayes = scored.get(f"bf_{name}")
    weight = round(log2(float(bayes)), 2) if bayes is not None and float(bayes) > 0 else None
    values = (scored.get(f"{name}_l"), scored.get(f"{name}_r"))
    shown = [mask_text(str(v)) if v is not None and str(v) != "nan" else None for v in values]
    if protected and _is_address(name):
        shown = [None, None]  # turvakielto: the address must not leave the hub
    return {
        "comparison": name,
        "level": int(scored[f"gamma_{name}"]),
        "match_weight": weight,
        "values": shown,
    }


def _is_address(name: str) -> bool:
    return name in ADDRESS_COLUMNS or name.startswith(("address", "street", "postal"))
