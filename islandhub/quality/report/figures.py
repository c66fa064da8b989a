"""The report's figures from dq_results: scorecards, trends, what to fix, quarantine reasons.

Plain data, language-neutral: the same document is written as the report's JSON and
rendered into each language's HTML. An island's scorecard comes from its latest review:
completeness and validity from its streams' `island` rows (weighted by their records),
uniqueness, consistency and freshness from its `cross` row. Its trend has one point per
review within the window.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from islandhub.config import Project, SystemConfig
from islandhub.quality import results
from islandhub.quality.results import Row
from islandhub.store.db import Store, now

WINDOW_DAYS = 90
CHANGE_DAYS = 7  # the scorecard's change compares with the review this much older
DIMENSIONS = ("completeness", "validity", "uniqueness", "consistency", "freshness")
REGISTER_FIELDS = ("given_name", "family_name", "address", "language")


def figures(
    project: Project, store: Store, *, at: datetime | None = None, window_days: int = WINDOW_DAYS
) -> dict[str, Any]:
    """Everything the report shows, as plain data."""
    at = at or now()
    with store.connect() as conn:
        history = results.history(conn, at - timedelta(days=window_days), ("island", "cross"))
        island_rows = results.latest(conn, "island")
        cross_rows = results.latest(conn, "cross")
        batch_rows = results.latest(conn, "batch")
    by_review = _by_review(history)
    islands = []
    for system in sorted(project.systems.values(), key=lambda s: s.system):
        # A stream taken out of the system file keeps its old rows: leave them out.
        streams = [
            r for r in island_rows if r.system == system.system and r.stream in system.streams
        ]
        cross = next((r for r in cross_rows if r.system == system.system), None)
        batches = [
            r for r in batch_rows if r.system == system.system and r.stream in system.streams
        ]
        islands.append(_island(system, streams, cross, batches, by_review.get(system.system, [])))
    reviewed = max((r.validated_at for r in island_rows + cross_rows), default=None)
    return {
        "generated_at": at.isoformat(),
        "reviewed_at": reviewed.isoformat() if reviewed else None,
        "window_days": window_days,
        "dimensions": list(DIMENSIONS),
        "summary": _summary(islands),
        "islands": islands,
        "fix_first": sorted(
            (f for island in islands for f in island["findings"]),
            key=lambda f: (-f["affected"], f["system"]),
        ),
    }


# --- one island ------------------------------------------------------------------------------


def _island(
    system: SystemConfig,
    streams: list[Row],
    cross: Row | None,
    batches: list[Row],
    reviews: list[dict[str, Any]],
) -> dict[str, Any]:
    scores = _scores(streams, cross)
    quarantined = sum(int(r.scores.get("quarantined") or 0) for r in streams)
    findings = _findings(system, streams, cross)
    return {
        "system": system.system,
        "title": dict(system.title),
        "owner": dict(system.owner),
        "records": sum(int(r.scores.get("records") or 0) for r in streams),
        "quarantined": quarantined,
        "scores": scores,
        "change": _change(reviews),
        "last_run": _last_run(batches),
        "streams": [
            {
                "stream": r.stream,
                "records": int(r.scores.get("records") or 0),
                "docs": (r.results or {}).get("docs"),
                "quarantine": ((r.results or {}).get("quarantine") or {}).get("reasons", []),
            }
            for r in streams
        ],
        "register": ((cross.results or {}).get("register") if cross else None) or {},
        "trend": reviews,
        "findings": findings,
    }


def _scores(streams: list[Row], cross: Row | None) -> dict[str, float | None]:
    found: dict[str, float | None] = {
        "completeness": _weighted(streams, "completeness", "mapped"),
        "validity": _weighted(streams, "validity", "records"),
    }
    for name in ("uniqueness", "consistency", "freshness"):
        found[name] = cross.scores.get(name) if cross else None
    known = [v for v in found.values() if v is not None]
    found["overall"] = sum(known) / len(known) if known else None
    return found


def _weighted(rows: list[Row], score: str, weight: str) -> float | None:
    pairs = [
        (float(r.scores[score]), int(r.scores.get(weight) or 0))
        for r in rows
        if r.scores.get(score) is not None
    ]
    pairs = [(s, w) for s, w in pairs if w > 0]
    total = sum(w for _, w in pairs)
    return sum(s * w for s, w in pairs) / total if total else None


def _by_review(history: list[Row]) -> dict[str, list[dict[str, Any]]]:
    """Per system, one trend point per review (its island rows and cross row together)."""
    grouped: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in history:
        grouped[(row.system, row.run_id or "")].append(row)
    points: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for (system, _review), rows in grouped.items():
        streams = [r for r in rows if r.scope == "island"]
        cross = next((r for r in rows if r.scope == "cross"), None)
        point: dict[str, Any] = {"at": min(r.validated_at for r in rows).isoformat()}
        point.update(_scores(streams, cross))
        points[system].append(point)
    for series in points.values():
        series.sort(key=lambda p: p["at"])
    return points


def _change(reviews: list[dict[str, Any]]) -> float | None:
    """Overall now minus overall a week ago (or at the first review, if younger)."""
    if len(reviews) < 2 or reviews[-1]["overall"] is None:
        return None
    latest = datetime.fromisoformat(reviews[-1]["at"])
    older = [p for p in reviews[:-1] if datetime.fromisoformat(p["at"]) <= latest - _WEEK]
    base = older[-1] if older else reviews[0]
    return None if base["overall"] is None else reviews[-1]["overall"] - base["overall"]


_WEEK = timedelta(days=CHANGE_DAYS)


def _last_run(batches: list[Row]) -> dict[str, Any] | None:
    """The latest batch check of the island's streams: when, and whether its gate held."""
    if not batches:
        return None
    newest = max(batches, key=lambda r: r.validated_at)
    gates = [(r.results or {}).get("gate") or {} for r in batches]
    held = [gate for gate in gates if gate.get("held")]
    return {
        "at": newest.validated_at.isoformat(),
        "held": bool(held),
        "reasons": [reason for gate in held for reason in gate.get("reasons", [])],
    }


# --- what to fix ---------------------------------------------------------------------------


def _findings(system: SystemConfig, streams: list[Row], cross: Row | None) -> list[dict[str, Any]]:
    """Every failing check and cross-system finding of the island, with its size."""
    owner = system.owner.get("name", "")
    found: list[dict[str, Any]] = []

    def add(kind: str, affected: int, of: int, examples: list[Any], **extra: Any) -> None:
        if affected > 0:
            found.append(
                {
                    "system": system.system,
                    "owner": owner,
                    "kind": kind,
                    "affected": affected,
                    "share": affected / of if of else None,
                    "examples": list(examples)[:5],
                    **extra,
                }
            )

    for row in streams:
        data = row.results or {}
        for check in data.get("checks") or []:
            if not check.get("success", True):
                checked = check["elements"] - (
                    0 if check["kind"] == "not_null" else check["missing"]
                )
                add(
                    check["kind"],
                    int(check["unexpected"]),
                    checked,
                    check.get("examples") or [],
                    field=check["field"],
                    stream=row.stream,
                    origin=check.get("origin"),
                )
        quarantine = data.get("quarantine") or {}
        reasons = quarantine.get("reasons") or []
        ids = [{"source_id": e} for r in reasons for e in r.get("examples", [])]
        add("quarantine", int(quarantine.get("count") or 0), row.batch_size, ids, stream=row.stream)
    if cross is not None:
        _cross_findings(add, cross.results or {})
    return found


def _cross_findings(add: Any, data: dict[str, Any]) -> None:
    for kind, key in (
        ("unlinked", "unlinked"),
        ("contacts", "conflicting"),
        ("duplicates", "duplicates"),
    ):
        entry = data.get(kind) or {}
        if entry:
            ids = [{"source_id": e} for e in entry.get("examples", [])]
            add(kind, int(entry.get(key) or 0), int(entry.get("records") or 0), ids)
    for name, entry in (data.get("register") or {}).items():
        ids = [{"source_id": e} for e in entry.get("examples", [])]
        add("register", entry["compared"] - entry["agreed"], entry["compared"], ids, field=name)
    fresh = data.get("freshness") or {}
    if fresh.get("missed"):
        add("stale", int(fresh["missed"]), 0, [], missed=fresh["missed"])


def _summary(islands: list[dict[str, Any]]) -> dict[str, Any]:
    scored = [i for i in islands if i["scores"]["overall"] is not None]
    overall = sum(i["scores"]["overall"] for i in scored) / len(scored) if scored else None
    weakest = None
    for island in scored:
        for dimension in DIMENSIONS:
            value = island["scores"][dimension]
            if value is not None and (weakest is None or value < weakest["score"]):
                weakest = {"system": island["system"], "dimension": dimension, "score": value}
    return {
        "islands": len(islands),
        "records": sum(i["records"] for i in islands),
        "quarantined": sum(i["quarantined"] for i in islands),
        "overall": overall,
        "weakest": weakest,
        "held": [i["system"] for i in islands if (i["last_run"] or {}).get("held")],
    }
