"""The GDPR API of Helsinki's open-city-profile: the hub as a connected service of a profile.

GET answers with everything held on the person as the profile's key/children tree (204 when
nothing is held); DELETE asks every island first (islandhub.privacy.erasure) and answers 204
(allowed, and done unless dry_run) or 403 with the islands' reasons in fi/sv/en. Failed
authorization of any kind is 401, parameters that fail validation 400: the contract of
`gdpr-api-openapi.yaml`. The GET is the one response with the national id in full: the data
is the person's own, and non-disclosure orders do not hide a person's address from them.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from islandhub.api.auth import require
from islandhub.api.context import context_of
from islandhub.api.gdpr_tree import profile_tree
from islandhub.api.models import GdprErrorResponse, Node, Problem
from islandhub.api.responses import MaskedJSONResponse, PersonalJSONResponse
from islandhub.privacy.access import subject_access
from islandhub.privacy.erasure import ErasureReport, erase
from islandhub.residents import Reader

router = APIRouter(prefix="/gdpr", tags=["gdpr"])

ProfileId = Annotated[
    UUID,
    Path(description="The resident's id in the hub (the profile's id for this service)."),
]
UNAUTHORIZED = {"model": Problem, "description": "Request's credentials are missing or invalid."}


@router.get(
    "/{resident_id}",
    response_model=Node,
    responses={
        204: {"description": "There is no personal data related to the profile."},
        401: UNAUTHORIZED,
    },
    summary="Retrieve all personal data related to the identified profile (gdpr:query)",
    operation_id="getProfile",
)
def gdpr_query(
    resident_id: ProfileId,
    request: Request,
    reader: Annotated[Reader, Depends(require("gdpr:query", gdpr=True))],
) -> Any:
    """Everything held on the person, as a tree of nodes.

    The golden record, every island's record, activities and the dates and purposes of
    accesses. Audited as `export`.
    """
    context = context_of(request)
    export = subject_access(context.project, context.store, reader, resident_id=str(resident_id))
    if export is None:
        return Response(status_code=204)
    return PersonalJSONResponse(profile_tree(export))


@router.delete(
    "/{resident_id}",
    status_code=204,
    response_class=Response,
    response_model=None,
    responses={
        204: {"description": "Deletion allowed (dry_run) or done; also when nothing is held."},
        401: UNAUTHORIZED,
        403: {
            "model": GdprErrorResponse,
            "description": "An island keeps the data for a legal reason; nothing was deleted.",
        },
    },
    summary="Delete the profile's data everywhere, or check that it may be (gdpr:delete)",
    operation_id="deleteProfile",
)
def gdpr_delete(
    resident_id: ProfileId,
    request: Request,
    reader: Annotated[Reader, Depends(require("gdpr:delete", gdpr=True))],
    dry_run: Annotated[
        bool,
        Query(description="true: do every check, delete nothing, answer as a deletion would."),
    ] = False,
) -> Any:
    """Erase the person everywhere, or (dry_run) say whether every island allows it.

    Every island holding the person's records is asked first; a refusal anywhere (an open
    case, an upcoming signup) deletes nothing anywhere. Audited as `erase-dry-run`,
    `erase-request` and `erase`.
    """
    context = context_of(request)
    report = erase(
        context.project, context.store, reader, resident_id=str(resident_id), dry_run=dry_run
    )
    if report.refused:
        return MaskedJSONResponse({"errors": refusals(report)}, status_code=403)
    return Response(status_code=204)


def refusals(report: ErasureReport) -> list[dict[str, Any]]:
    """The islands' reasons, each once, in the profile's error shape."""
    errors: list[dict[str, Any]] = []
    for island in report.islands:
        for error in island.errors if not island.allowed else []:
            message = error.get("message") or {}
            entry = {
                "code": str(error.get("code") or "REFUSED"),
                "message": {
                    lang: str(message.get(lang) or message.get("en") or island.system)
                    for lang in ("fi", "sv", "en")
                },
            }
            if entry not in errors:
                errors.append(entry)
    return errors
