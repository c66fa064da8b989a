"""GET /residents/{id}, the hottest call, answered before FastAPI's routing and dependencies.

A plain ASGI middleware: a GET of `/residents/<lowercase uuid>` without a query string whose
credentials, scope and X-Purpose pass is answered here, by the same functions the FastAPI
route uses (auth.caller_of, Require.reader, read_audited, MaskedJSONResponse): the same
answer, the same audit row. Everything else, and every request that would not be a 200 or a
404 (no or bad credentials, a missing scope, an X-Purpose too long, an uppercase id ...), goes
on to the FastAPI app untouched, which answers it as it always has: checking credentials
has no side effects, and nothing is read or audited before they pass. FastAPI's resolver,
routing and Request objects were half of a read's CPU in benchmarks/api_load.py.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from islandhub.api.auth import caller_of, require
from islandhub.api.context import ApiContext
from islandhub.api.reads import answer, audit_row
from islandhub.api.responses import MaskedJSONResponse
from islandhub.errors import HubError
from islandhub.residents import Reader

# The route's own path: `{resident_id:uuid}`, as FastAPI hands it on (lowercase, canonical).
RESIDENT_PATH = re.compile(
    r"/residents/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
)
READ = require("residents:read")
NOT_FOUND = "no such resident"


async def read_audited(
    context: ApiContext, reader: Reader, requested: str
) -> dict[str, Any] | None:
    """The resident as `show` answers (None: no such resident), once its audit row is committed."""
    rid, row = context.reads.lookup(requested)
    found = answer(requested, rid, row)
    # The group commit (islandhub/api/audit.py): nothing is answered before its row is.
    await context.audit.write(audit_row(reader, rid))
    return found


def found_or_404(found: dict[str, Any] | None) -> MaskedJSONResponse:
    """The answer: the record (validated by nothing more: the model documents it), or 404."""
    if found is None:
        raise HTTPException(404, NOT_FOUND)
    return MaskedJSONResponse(found)


class FastResidentReads:
    """The middleware: GET /residents/{id} answered directly when it can be, else passed on."""

    def __init__(self, app: ASGIApp, context: ApiContext) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: D102
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and not scope.get("query_string")
            and not scope.get("root_path")
            and (match := RESIDENT_PATH.fullmatch(scope["path"])) is not None
            and (reader := self._reader(scope["headers"])) is not None
        ):
            try:
                found = await read_audited(self.context, reader, match[1])
            except HubError as exc:  # the store, or the audit log, could not be written: 503
                await MaskedJSONResponse({"detail": str(exc)}, status_code=503)(
                    scope, receive, send
                )
                return
            if found is None:
                response = MaskedJSONResponse({"detail": NOT_FOUND}, status_code=404)
            else:
                response = MaskedJSONResponse(found)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _reader(self, headers: list[tuple[bytes, bytes]]) -> Reader | None:
        """The audited Reader, or None when FastAPI must answer (401, 403, 422)."""
        authorization = api_key = purpose = None
        # The first of each, as Starlette's Headers.get reads them.
        for name, value in headers:
            if name == b"x-api-key":
                api_key = api_key if api_key is not None else value.decode("latin-1")
            elif name == b"authorization":
                authorization = (
                    authorization if authorization is not None else value.decode("latin-1")
                )
            elif name == b"x-purpose":
                purpose = purpose if purpose is not None else value.decode("latin-1")
        try:
            caller = caller_of(self.context.authenticator, authorization, api_key)
            return READ.reader(caller, purpose)
        except (HTTPException, RequestValidationError):
            return None
