"""Accuracy of resolution against a ground truth: pairwise precision, recall, F1, cluster counts."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from islandhub.errors import ConfigError, Problem
from islandhub.privacy.crypto import try_unseal
from islandhub.store.db import Store
from islandhub.store.tables import links, residents

RecordKey = tuple[str, str, str]  # (system, stream, source_id)
TRUTH_COLUMNS = ("system", "stream", "source_id", "entity_id")
MAX_PROBLEMS = 20  # a broken file reports its first problems, not a million lines
_MISSING = object()


def _pairs(sizes: Counter[Any]) -> int:
    """Pairs within groups of the given sizes: sum of n(n-1)/2."""
    return sum(n * (n - 1) // 2 for n in sizes.values())


def score(
    predicted: Mapping[RecordKey, Hashable], truth: Mapping[RecordKey, Hashable]
) -> dict[str, Any]:
    """Pairwise accuracy of `predicted` (record -> cluster) against `truth` (record -> entity).

    Only records present on both sides are evaluated; the others are counted as
    `unmatched_truth` and `unmatched_predicted`. Pairs are counted per cluster, per entity and
    per (cluster, entity) cell, never enumerated: linear in the number of records.

    precision = correct pairs / predicted pairs, and is 1.0 when there are no predicted pairs
    (nothing was merged, so no merge was wrong); recall = correct pairs / true pairs, and is
    1.0 when there are no true pairs; f1 is their harmonic mean (0.0 when both are 0).
    """
    by_cluster: Counter[Hashable] = Counter()
    by_entity: Counter[Hashable] = Counter()
    cells: Counter[tuple[Hashable, Hashable]] = Counter()
    records = 0
    for key, cluster in predicted.items():
        entity = truth.get(key, _MISSING)
        if entity is _MISSING:
            continue
        records += 1
        by_cluster[cluster] += 1
        by_entity[entity] += 1
        cells[cluster, entity] += 1
    pairs_predicted, pairs_true, pairs_correct = (
        _pairs(by_cluster),
        _pairs(by_entity),
        _pairs(cells),
    )
    precision = pairs_correct / pairs_predicted if pairs_predicted else 1.0
    recall = pairs_correct / pairs_true if pairs_true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "clusters": len(by_cluster),
        "true_clusters": len(by_entity),
        "records": records,
        "unmatched_truth": len(truth) - records,
        "unmatched_predicted": len(predicted) - records,
        "pairs_true": pairs_true,
        "pairs_predicted": pairs_predicted,
        "pairs_correct": pairs_correct,
    }


def traps_merged(
    predicted: Mapping[RecordKey, Hashable],
    truth: Mapping[RecordKey, Hashable],
    apart: Iterable[tuple[Hashable, Hashable]],
) -> set[tuple[Hashable, Hashable]]:
    """The pairs of `apart` whose records share a predicted cluster anywhere.

    `apart` holds (entity, entity) pairs that must never be merged: twins, a parent and a
    namesake child.
    """
    entities_of: dict[Hashable, set[Hashable]] = defaultdict(set)
    for key, cluster in predicted.items():
        entity = truth.get(key, _MISSING)
        if entity is not _MISSING:
            entities_of[cluster].add(entity)
    together = {
        (a, b) for entities in entities_of.values() for a in entities for b in entities if a != b
    }
    return {pair for pair in apart if pair in together}


def mistakes(
    predicted: Mapping[RecordKey, Hashable], truth: Mapping[RecordKey, Hashable], limit: int = 20
) -> dict[str, list[dict[str, Any]]]:
    """The worst false merges and misses, by the pairs they cost, to look at one by one.

    `false_merges`: clusters holding records of several entities (records grouped by
    entity); `misses`: entities whose records fall into several clusters (grouped by
    cluster). Each lists its records as "system/stream/source_id".
    """
    by_cluster: dict[Hashable, dict[Hashable, list[str]]] = defaultdict(lambda: defaultdict(list))
    by_entity: dict[Hashable, dict[Hashable, list[str]]] = defaultdict(lambda: defaultdict(list))
    for key, cluster in predicted.items():
        entity = truth.get(key, _MISSING)
        if entity is _MISSING:
            continue
        name = "/".join(key)
        by_cluster[cluster][entity].append(name)
        by_entity[entity][cluster].append(name)
    return {
        "false_merges": _worst(by_cluster, "cluster", "entities", limit),
        "misses": _worst(by_entity, "entity", "clusters", limit),
    }


def _worst(
    groups: Mapping[Hashable, Mapping[Hashable, list[str]]], name: str, parts: str, limit: int
) -> list[dict[str, Any]]:
    """Groups split into several parts, costliest first: pairs across the parts."""
    found: list[dict[str, Any]] = []
    for key, split in groups.items():
        if len(split) < 2:
            continue
        sizes = [len(records) for records in split.values()]
        cost = (sum(sizes) ** 2 - sum(n * n for n in sizes)) // 2
        found.append({name: str(key), "pairs": cost,
                      parts: {str(k): sorted(v) for k, v in split.items()}})  # fmt: skip
    found.sort(key=lambda item: (-int(item["pairs"]), str(item[name])))
    return found[:limit]


def read_truth(path: Path) -> dict[RecordKey, str]:
    """The ground truth CSV (header system,stream,source_id,entity_id) as record -> entity.

    Raises ConfigError naming the file and line of every problem (up to MAX_PROBLEMS).
    """
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return _parse_truth(csv.reader(handle), str(path))
    except OSError as exc:
        raise ConfigError(
            [Problem(f"cannot read the truth file: {exc.strerror}", str(path))]
        ) from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError([Problem(f"not a UTF-8 CSV file: {exc}", str(path))]) from exc


def _header(rows: Any, name: str) -> list[int]:
    header = next(rows, None)
    if header is None:
        raise ConfigError(
            [Problem("empty file; expected a header row " + ",".join(TRUTH_COLUMNS), name)]
        )
    columns = [column.strip().lower() for column in header]
    missing = [c for c in TRUTH_COLUMNS if c not in columns]
    if missing:
        raise ConfigError(
            [Problem(f"header lacks column(s) {', '.join(missing)}; expected "
                     + ",".join(TRUTH_COLUMNS), name, 1)]
        )  # fmt: skip
    return [columns.index(c) for c in TRUTH_COLUMNS]


def _parse_truth(rows: Any, name: str) -> dict[RecordKey, str]:
    positions = _header(rows, name)
    truth: dict[RecordKey, str] = {}
    problems: list[Problem] = []
    for line, row in enumerate(rows, start=2):
        if not row:
            continue  # blank line
        problem = _row_problem(row, positions, truth)
        if problem:
            problems.append(Problem(problem, name, line))
            if len(problems) >= MAX_PROBLEMS:
                break
            continue
        system, stream, source_id, entity = (row[i].strip() for i in positions)
        truth[system, stream, source_id] = entity
    if problems:
        raise ConfigError(problems)
    return truth


def _row_problem(row: list[str], positions: list[int], truth: dict[RecordKey, str]) -> str | None:
    if len(row) <= max(positions):
        return f"expected {max(positions) + 1} fields, found {len(row)}"
    values = [row[i].strip() for i in positions]
    empty = [c for c, v in zip(TRUTH_COLUMNS, values, strict=True) if not v]
    if empty:
        return f"empty {', '.join(empty)}"
    known = truth.get((values[0], values[1], values[2]))
    if known is not None and known != values[3]:
        return (
            f"record {values[0]}/{values[1]}/{values[2]} given two entities ({known}, {values[3]})"
        )
    return None


def predicted_clusters(store: Store) -> dict[RecordKey, str]:
    """Every linked source record -> its resident id, after following merge redirects."""
    with store.connect() as conn:
        redirects = {
            row.resident_id: row.merged_into
            for row in conn.execute(
                sa.select(residents.c.resident_id, residents.c.merged_into).where(
                    residents.c.merged_into.is_not(None)
                )
            )
        }
        rows = conn.execute(
            sa.select(links.c.system, links.c.stream, links.c.source_id, links.c.resident_id)
        )
        # The truth names records by the islands' own ids: a register's HETU is stored sealed.
        return {
            (row.system, row.stream, try_unseal(row.source_id)): _final(row.resident_id, redirects)
            for row in rows
        }


def _final(resident_id: str, redirects: dict[str, str]) -> str:
    # Follow merged_into to the surviving resident (a guard against a cycle in bad data).
    seen = 0
    while resident_id in redirects and seen < 100:
        resident_id, seen = redirects[resident_id], seen + 1
    return resident_id


def evaluate(store: Store, truth_path: Path | str) -> dict[str, Any]:
    """Score the store's resolution (its links) against the ground truth CSV at `truth_path`."""
    truth = read_truth(Path(truth_path))
    result = score(predicted_clusters(store), truth)
    if not result["records"]:
        # Scores of nothing would read as perfect (1.0): say what is wrong instead.
        raise ConfigError(
            f"{truth_path}: none of its records ({len(truth):,}) is in the store, so there is "
            "nothing to evaluate; sync the islands first, and check that system, stream and "
            "source_id are written as the islands give them"
        )
    return result


def format_report(result: Mapping[str, Any]) -> str:
    """The result of `evaluate` as a few lines for a terminal."""
    return (
        f"precision {result['precision']:.4f}  recall {result['recall']:.4f}  "
        f"F1 {result['f1']:.4f}\n"
        f"records evaluated {result['records']}  (only in the truth "
        f"{result['unmatched_truth']}, only resolved {result['unmatched_predicted']})\n"
        f"clusters {result['clusters']}  true clusters {result['true_clusters']}\n"
        f"pairs: predicted {result['pairs_predicted']}  true {result['pairs_true']}  "
        f"correct {result['pairs_correct']}"
    )
