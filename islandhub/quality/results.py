"""The dq_results table: every batch check, island review and cross-system check, kept.

Scopes: `batch` (a run's mapped records, by the pipeline's hook), `island` (a stream's
current records, by the review after publishing) and `cross` (one island against the others
and the population register, by the same review). `scores` is small and read for every
trend point; `results` (per check outcomes, examples, GX's JSON) only for the latest rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from islandhub.privacy.masking import mask_text
from islandhub.store.db import as_utc
from islandhub.store.tables import dq_results

SCOPES = ("batch", "island", "cross")


@dataclass(frozen=True)
class Row:
    """One dq_results row as read back (results only when asked for)."""

    id: int
    run_id: str | None
    system: str
    stream: str | None
    scope: str
    suite: str
    validated_at: datetime
    batch_size: int
    success: bool
    scores: dict[str, Any]
    results: dict[str, Any] | None = None


def record(
    conn: Connection,
    *,
    run_id: str | None,
    system: str,
    stream: str | None,
    scope: str,
    suite: str,
    at: datetime,
    size: int,
    success: bool,
    scores: dict[str, Any],
    results: dict[str, Any],
) -> None:
    """Insert one result. Every text is masked once more on the way in: belt and braces."""
    conn.execute(
        dq_results.insert().values(
            run_id=run_id,
            system=system,
            stream=stream,
            scope=scope,
            suite=suite,
            validated_at=at,
            batch_size=size,
            success=success,
            scores=_json(scores),
            results=_json(results),
        )
    )


def history(conn: Connection, since: datetime, scopes: Iterable[str] = SCOPES) -> list[Row]:
    """Every row since `since`, oldest first, without the large `results`."""
    columns = [c for c in dq_results.c if c.name != "results"]
    query = (
        sa.select(*columns)
        .where(dq_results.c.validated_at >= since, dq_results.c.scope.in_(list(scopes)))
        .order_by(dq_results.c.validated_at, dq_results.c.id)
    )
    return [_row(r, with_results=False) for r in conn.execute(query)]


def latest(conn: Connection, scope: str) -> list[Row]:
    """The newest row of `scope` per system and stream, with its results."""
    newest = (
        sa.select(sa.func.max(dq_results.c.id).label("id"))
        .where(dq_results.c.scope == scope)
        .group_by(dq_results.c.system, dq_results.c.stream)
        .subquery()
    )
    query = sa.select(dq_results).join(newest, dq_results.c.id == newest.c.id)
    return [_row(r, with_results=True) for r in conn.execute(query.order_by(dq_results.c.id))]


def _row(row: Any, *, with_results: bool) -> Row:
    return Row(
        id=row.id,
        run_id=row.run_id,
        system=row.system,
        stream=row.stream,
        scope=row.scope,
        suite=row.suite,
        validated_at=as_utc(row.validated_at),
        batch_size=row.batch_size,
        success=bool(row.success),
        scores=json.loads(row.scores),
        results=json.loads(row.results) if with_results else None,
    )


def _json(value: Any) -> str:
    return mask_text(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str))
