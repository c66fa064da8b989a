"""Operations routes: run status, data-quality summaries, and a health check."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Request

from islandhub.api.auth import require
from islandhub.api.context import context_of
from islandhub.api.models import Health, Problem, Quality, Status
from islandhub.residents import Reader, audit
from islandhub.status import hub_status
from islandhub.store.db import Store, as_utc, loads
from islandhub.store.tables import dq_results

router = APIRouter(tags=["operations"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No credentials, or credentials not accepted."},
    403: {"model": Problem, "description": "The client lacks the scope status:read."},
}


@router.get(
    "/status",
    response_model=Status,
    responses=ERRORS,
    summary="Run status (status:read)",
    operation_id="readStatus",
)
def read_status(
    request: Request, reader: Annotated[Reader, Depends(require("status:read"))]
) -> Any:
    """Every island's streams with their newest run, records held and quarantined.

    And the number of residents. Audited as `status`.
    """
    context = context_of(request)
    with context.store.begin() as conn:
        audit(conn, reader, "status", None, {})
    return hub_status(context.project, context.store)


@router.get(
    "/quality",
    response_model=Quality,
    responses=ERRORS,
    summary="Data-quality summaries (status:read)",
    operation_id="readQuality",
)
def read_quality(
    request: Request, reader: Annotated[Reader, Depends(require("status:read"))]
) -> Any:
    """The newest result of every system, stream, scope and suite.

    With how many results of that kind are kept and how many failed. Empty until the checks
    have run. Audited as `quality`.
    """
    return quality_summary(context_of(request).store, reader)


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Problem, "description": "The store does not answer."}},
    summary="Liveness: the API runs and its store answers (no credentials)",
    operation_id="health",
)
def health(request: Request) -> Any:
    """For load balancers and the production profile's supervisor; holds no data."""
    try:
        with context_of(request).store.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        raise HTTPException(503, "the store does not answer") from None
    return {"status": "ok"}


def quality_summary(store: Store, reader: Reader) -> dict[str, Any]:
    """Read dq_results directly (the quality module's own readers may not exist yet)."""
    failed = sa.case((dq_results.c.success.is_(False), 1), else_=0)
    kinds = (dq_results.c.system, dq_results.c.stream, dq_results.c.scope, dq_results.c.suite)
    newest = (
        sa.select(
            sa.func.max(dq_results.c.id).label("id"),
            sa.func.count().label("validations"),
            sa.func.sum(failed).label("failures"),
        )
        .group_by(*kinds)
        .subquery()
    )
    query = (
        sa.select(*kinds, dq_results.c.validated_at, dq_results.c.batch_size)
        .add_columns(dq_results.c.success, dq_results.c.scores)
        .add_columns(newest.c.validations, newest.c.failures)
        .join(newest, dq_results.c.id == newest.c.id)
        .order_by(*kinds)
    )
    with store.begin() as conn:
        audit(conn, reader, "quality", None, {})
        rows = conn.execute(query).all()
    results = [
        {
            "system": r.system,
            "stream": r.stream,
            "scope": r.scope,
            "suite": r.suite,
            "validated_at": as_utc(r.validated_at).isoformat(),
            "batch_size": r.batch_size,
            "success": bool(r.success),
            "scores": _scores(r.scores),
            "validations": int(r.validations),
            "failures": int(r.failures or 0),
        }
        for r in rows
    ]
    return {
        "results": results,
        "validations": sum(r["validations"] for r in results),
        "failures": sum(r["failures"] for r in results),
    }


def _scores(text: str) -> dict[str, Any]:
    # A row the quality module wrote while half-built must not take the summary down.
    try:
        value = loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
