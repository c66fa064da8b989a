"""The quality review after publishing: every island's current records, then cross checks.

Where the pipeline's hook judges what one run brings, the review judges what each island
holds now, which is what the report scores: each stream's current records are validated
with the stream's suite (in slices, like the hook), its quarantine summed up by reason, and
the cross-system checks (cross.py) and freshness (freshness.py) run over all islands. Every
result is kept in dq_results under one review id (scopes `island` and `cross`), and the
validations are rendered as Great Expectations Data Docs into `docs` when given.

The demo runs a review after its syncs, the `islandhub__report` DAG daily, and
`islandhub report` before writing the report.
"""

from __future__ import annotations

import re
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from islandhub.config import Project, SystemConfig
from islandhub.ids import uuid7
from islandhub.privacy.at_rest import unsealed_fields
from islandhub.privacy.crypto import try_unseal
from islandhub.quality import cross, examples, results, scores
from islandhub.quality.freshness import freshness
from islandhub.quality.outcome import Validation
from islandhub.quality.slices import SLICE
from islandhub.quality.suites import Suite, suite_for
from islandhub.store.db import Store, as_utc, loads, now
from islandhub.store.tables import links, quarantine, residents, runs, same_source, source_records

TOP_REASONS = 10
_EXCERPT = re.compile(r": '.*'$")  # the masked value the mapping engine appends to a reason


@dataclass
class Review:
    """What a review did: its id and time, how much it read, where its Data Docs are."""

    review_id: str
    at: datetime
    islands: int = 0
    records: int = 0
    seconds: float = 0.0
    docs: dict[str, str] = field(default_factory=dict)  # suite name -> page under `docs`


@dataclass
class _Stream:
    suite: Suite
    validation: Validation
    quarantine: dict[str, Any]


def run_review(project: Project, store: Store, *, docs: Path | None = None) -> Review:
    """Review every island of the project now; keep the results; build Data Docs into `docs`."""
    begun = time.perf_counter()
    review = Review(uuid7(), now())
    merged = _merged_residents(store)
    streams: list[_Stream] = []
    pieces: list[pd.DataFrame] = []
    for system in sorted(project.systems.values(), key=lambda s: s.system):
        for stream in system.streams.values():
            suite = suite_for(project.root, system, stream)
            validation, piece = _validate_stream(store, suite, merged)
            streams.append(_Stream(suite, validation, _quarantine(store, suite)))
            pieces.append(piece)
            review.records += validation.rows
    frame = pd.concat(pieces, ignore_index=True) if pieces else _empty_frame()
    found = _cross(project, store, frame, review.at)
    if docs is not None:
        review.docs = _data_docs(docs, streams, review)
    with store.begin() as conn:
        for item in streams:
            _keep_island(conn, review, item)
        for system_id, (cross_scores, cross_results) in found.items():
            results.record(
                conn,
                run_id=review.review_id,
                system=system_id,
                stream=None,
                scope="cross",
                suite=f"islandhub.{system_id}.cross",
                at=review.at,
                size=int(cross_scores.get("records") or 0),
                success=True,
                scores=cross_scores,
                results=cross_results,
            )
    review.islands = len(project.systems)
    review.seconds = time.perf_counter() - begun
    return review


# --- one stream's current records ------------------------------------------------------


def _validate_stream(
    store: Store, suite: Suite, merged: dict[str, str]
) -> tuple[Validation, pd.DataFrame]:
    """Validate the stream's current records in slices; its rows for the cross checks."""
    from islandhub.quality import gx

    validation: Validation | None = None
    pieces = []
    for ids, rows, residents_of in _slices(store, suite):
        columns = {f: [r.get(f) for r in rows] for f in suite.fields}
        found = gx.validate(pd.DataFrame(columns, dtype=object), suite, ids)
        validation = found if validation is None else gx.merge(validation, found)
        piece: dict[str, list[Any]] = {c: [r.get(c) for r in rows] for c in cross.FRAME_COLUMNS[4:]}
        piece.update(
            system=[suite.system] * len(ids),
            stream=[suite.stream] * len(ids),
            source_id=ids,
            resident=[_final(r, merged) for r in residents_of],
        )
        pieces.append(pd.DataFrame(piece, columns=list(cross.FRAME_COLUMNS), dtype=object))
    frame = pd.concat(pieces, ignore_index=True) if pieces else _empty_frame()
    return validation or Validation(suite.name, 0, []), frame


def _slices(
    store: Store, suite: Suite
) -> Iterator[tuple[list[str], list[dict[str, Any]], list[str | None]]]:
    join = source_records.outerjoin(links, same_source(source_records, links))
    after = ""
    while True:
        query = (
            sa.select(source_records.c.source_id, source_records.c.fields, links.c.resident_id)
            .select_from(join)
            .where(
                source_records.c.system == suite.system,
                source_records.c.stream == suite.stream,
                source_records.c.source_id > after,
            )
            .order_by(source_records.c.source_id)
            .limit(SLICE)
        )
        with store.connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return
        # Stored sealed (national ids, register source ids): the checks read them in clear.
        yield (
            [try_unseal(r.source_id) for r in rows],
            [unsealed_fields(loads(r.fields)) for r in rows],
            [r.resident_id for r in rows],
        )
        after = rows[-1].source_id


def _merged_residents(store: Store) -> dict[str, str]:
    query = sa.select(residents.c.resident_id, residents.c.merged_into).where(
        residents.c.merged_into.is_not(None)
    )
    with store.connect() as conn:
        return {r.resident_id: r.merged_into for r in conn.execute(query)}


def _final(resident: str | None, merged: dict[str, str]) -> str | None:
    """The resident a merged one redirects to, following the chain."""
    seen = 0
    while resident in merged and seen < 50:
        resident, seen = merged[resident], seen + 1
    return resident


def _quarantine(store: Store, suite: Suite) -> dict[str, Any]:
    """The stream's quarantine now: how many, and the commonest reasons with examples."""
    query = sa.select(quarantine.c.source_id, quarantine.c.reasons).where(
        quarantine.c.system == suite.system, quarantine.c.stream == suite.stream
    )
    counts: Counter[str] = Counter()
    ids: dict[str, list[str]] = defaultdict(list)
    total = 0
    with store.connect() as conn:
        for row in conn.execute(query):
            total += 1
            for reason in {_EXCERPT.sub("", r) for r in loads(row.reasons)}:
                counts[reason] += 1
                if len(ids[reason]) < 3:
                    ids[reason].append(examples.source_id(try_unseal(row.source_id)))
    top = [
        {"reason": reason, "count": n, "examples": ids[reason]}
        for reason, n in counts.most_common(TOP_REASONS)
    ]
    return {"count": total, "reasons": top}


def _keep_island(conn: Connection, review: Review, item: _Stream) -> None:
    found = scores.of_validation(item.validation, item.suite, item.quarantine["count"])
    results.record(
        conn,
        run_id=review.review_id,
        system=item.suite.system,
        stream=item.suite.stream,
        scope="island",
        suite=item.suite.name,
        at=review.at,
        size=found["records"],
        success=item.validation.success,
        scores=found,
        results={
            "checks": [o.as_dict() for o in item.validation.outcomes],
            "quarantine": item.quarantine,
            "docs": review.docs.get(item.suite.name),
        },
    )


def _data_docs(folder: Path, streams: list[_Stream], review: Review) -> dict[str, str]:
    """Render this review's validations; the folder holds the latest review's docs only."""
    from islandhub.quality import gx

    if folder.is_dir():
        shutil.rmtree(folder)
    entries = [
        (s.suite, s.validation.gx, f"review-{review.review_id}", review.at)
        for s in streams
        if s.validation.gx
    ]
    return gx.build_data_docs(folder, entries) if entries else {}


# --- across islands ----------------------------------------------------------------------


def _empty_frame() -> pd.DataFrame:
    return pd.DataFrame({c: [] for c in cross.FRAME_COLUMNS}, dtype=object)


def _cross(
    project: Project, store: Store, frame: pd.DataFrame, at: datetime
) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Per system: the cross-check scores and findings."""
    register = project.hub.priority[0] if project.hub.priority else None
    activity = [
        (s.system, name)
        for s in project.systems.values()
        for name, st in s.streams.items()
        if st.activity
    ]
    agreement = cross.register_agreement(frame, register) if register else {}
    outside = cross.unlinked(frame, register) if register else {}
    contacts = cross.contact_conflicts(frame, register)
    repeated = cross.duplicates(frame, activity)
    synced = _last_syncs(store)
    found = {}
    for system_id, system in project.systems.items():
        fresh = freshness(system.schedule, _island_sync(system, synced), at, project.hub.timezone)
        findings = {
            "register": agreement.get(system_id),
            "unlinked": outside.get(system_id),
            "contacts": contacts.get(system_id),
            "duplicates": repeated.get(system_id),
            "freshness": fresh,
            "is_register": system_id == register,
        }
        found[system_id] = (_cross_scores(findings, frame, system_id), findings)
    return found


def _cross_scores(findings: dict[str, Any], frame: pd.DataFrame, system: str) -> dict[str, Any]:
    agreement = findings["register"] or {}
    compared = sum(v["compared"] for v in agreement.values())
    agreed = sum(v["agreed"] for v in agreement.values())
    outside, contacts, repeated = (findings[k] for k in ("unlinked", "contacts", "duplicates"))
    return {
        "records": int((frame["system"] == system).sum()) if len(frame) else 0,
        "consistency": agreed / compared if compared else None,
        "linked": _share_without(outside, "unlinked"),
        "contacts": _share_without(contacts, "conflicting"),
        "uniqueness": _share_without(repeated, "duplicates"),
        "freshness": findings["freshness"]["score"],
    }


def _share_without(entry: dict[str, Any] | None, key: str) -> float | None:
    if not entry or not entry["records"]:
        return None
    return 1 - entry[key] / entry["records"]


def _last_syncs(store: Store) -> dict[tuple[str, str], datetime]:
    query = (
        sa.select(runs.c.system, runs.c.stream, sa.func.max(runs.c.finished_at))
        .where(runs.c.kind == "sync", runs.c.status == "succeeded")
        .group_by(runs.c.system, runs.c.stream)
    )
    with store.connect() as conn:
        return {(s, st): as_utc(at) for s, st, at in conn.execute(query) if at is not None}


def _island_sync(system: SystemConfig, synced: dict[tuple[str, str], datetime]) -> datetime | None:
    """The island is as fresh as its stalest stream."""
    times = [synced.get((system.system, name)) for name in system.streams]
    return None if any(t is None for t in times) or not times else min(t for t in times if t)
