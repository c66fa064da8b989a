"""Resident routes: read by id, find by national id (POST: never in a URL), activities."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Path, Request

from islandhub.api.activities import resident_activities
from islandhub.api.auth import require
from islandhub.api.context import context_of
from islandhub.api.fastpath import found_or_404, read_audited
from islandhub.api.models import Activities, NationalIdQuery, Problem, Resident
from islandhub.api.responses import MaskedJSONResponse
from islandhub.residents import Reader, show

router = APIRouter(tags=["residents"])

ResidentId = Annotated[
    UUID, Path(description="The resident's id; a merged id leads to the resident it became.")
]
# Paths take `{resident_id:uuid}`: only an id routes there, so /residents/search stays its own
# resource (GET on it is 405, not "search is not a UUID"); any other text is 404.
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No credentials, or credentials not accepted."},
    403: {"model": Problem, "description": "The client lacks the operation's scope."},
    404: {"model": Problem, "description": "No such resident (or erased on request)."},
}


@router.get(
    "/residents/{resident_id:uuid}",
    response_model=Resident,
    responses=ERRORS,
    summary="A resident's golden record (scope residents:read)",
    operation_id="readResident",
)
async def get_resident(
    resident_id: ResidentId,
    request: Request,
    reader: Annotated[Reader, Depends(require("residents:read"))],
) -> Any:
    """The golden record with its version and lineage.

    National ids are masked; under a non-disclosure order (turvakielto) the addresses are
    left out. Audited as `read`.
    """
    # Served by islandhub/api/fastpath.py as a rule; here when it passes a request on.
    return found_or_404(await read_audited(context_of(request), reader, str(resident_id)))


@router.post(
    "/residents/search",
    response_model=Resident,
    responses=ERRORS,
    summary="Find a resident by national id (scope residents:search)",
    operation_id="searchResident",
)
def search_resident(
    query: NationalIdQuery,
    request: Request,
    reader: Annotated[Reader, Depends(require("residents:search"))],
) -> Any:
    """The resident with this national id.

    The id travels in the body, so it never appears in a URL or an access log; an invalid id
    is answered with 422. Audited as `read`.
    """
    found = show(context_of(request).store, reader, national_id=query.national_id)
    return _found(found)


@router.get(
    "/residents/{resident_id:uuid}/activities",
    response_model=Activities,
    responses=ERRORS,
    summary="A resident's bookings, cases, signups ... across the islands (residents:read)",
    operation_id="readActivities",
)
def read_activities(
    resident_id: ResidentId,
    request: Request,
    reader: Annotated[Reader, Depends(require("residents:read"))],
) -> Any:
    """The resident's activities, newest first.

    Records of the streams configured with `activity:`, with their type, island, date and
    title. Audited as `activities`.
    """
    context = context_of(request)
    found = resident_activities(context.project, context.store, reader, str(resident_id))
    return _found(found)


def _found(found: dict[str, Any] | None) -> MaskedJSONResponse:
    if found is None:
        raise HTTPException(404, "no such resident")
    # Returned as it is: the model above documents it, a second validation pass would only
    # cost time on the hottest path.
    return MaskedJSONResponse(found)
