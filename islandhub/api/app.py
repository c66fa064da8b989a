"""The application factory: routes, error handlers and the OpenAPI document.

`create_app(context)` serves a project's store; `create_app()` without one only describes the
API (`islandhub api openapi`): the document never depends on a project's settings, so
docs/openapi.json is the same for every deployment.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from islandhub import __version__
from islandhub.api import routes_gdpr, routes_residents, routes_status
from islandhub.api.auth import PURPOSE_PARAMETER, SECURITY, SECURITY_SCHEMES, Require
from islandhub.api.context import ApiContext
from islandhub.api.fastpath import FastResidentReads
from islandhub.api.responses import MaskedJSONResponse
from islandhub.errors import ConfigError, HubError

TITLE = "islandhub API"
DESCRIPTION = """\
The unified resident record of the municipality's islands, for the resident portal, the CRM
and other services. Every call is authorised (a bearer JWT from a trusted issuer, or an API
key in `X-API-Key`) by scope: `residents:read`, `residents:search`, `gdpr:query`,
`gdpr:delete`, `status:read`. Every authorised call is written to the audit log with the
client and the purpose (`X-Purpose`, else the scope's). National ids are masked in every
response except the GDPR API's GET (the person's own data); addresses under a non-disclosure
order are left out. See docs/api.md."""
GDPR_PREFIX = "/gdpr/"
GDPR_BAD_REQUEST = "Request's parameters fail validation"
VALIDATION_ERROR = {
    "description": "Validation Error",
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}
    },
}


def create_app(context: ApiContext | None = None) -> FastAPI:
    """The API, serving `context` (None: for its OpenAPI document only)."""
    app = FastAPI(
        lifespan=_lifespan,
        title=TITLE,
        version=__version__,
        description=DESCRIPTION,
        default_response_class=MaskedJSONResponse,
        # No Swagger UI: it loads scripts from a CDN; the document is at /openapi.json.
        docs_url=None,
        redoc_url=None,
    )
    app.state.context = context
    if context is not None:
        app.add_middleware(FastResidentReads, context=context)
    for module in (routes_residents, routes_gdpr, routes_status):
        app.include_router(module.router)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HubError, _hub_error)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    # After the last request: the audit rows still queued are committed (their requests
    # have answered by now, or never will), and the read pool is closed.
    context: ApiContext | None = app.state.context
    if context is not None:
        context.close()


def document(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document: FastAPI's, completed.

    With the credentials and X-Purpose that auth.Require reads itself, and the GDPR API's 400
    where FastAPI would say 422.
    """
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    paths = schema.get("paths", {})
    for route in app.routes:
        if isinstance(route, APIRoute) and _secured(route):
            for method in sorted(route.methods):
                operation = paths[route.path_format][method.lower()]
                operation["security"] = SECURITY
                operation.setdefault("parameters", []).append(PURPOSE_PARAMETER)
                # An X-Purpose over its length is a validation error even where FastAPI
                # saw no parameter to validate.
                operation["responses"].setdefault("422", VALIDATION_ERROR)
    schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    for path, operations in paths.items():
        if not path.startswith(GDPR_PREFIX):
            continue
        for operation in operations.values():
            responses = operation.get("responses", {})
            if "422" in responses:
                responses["400"] = {**responses.pop("422"), "description": GDPR_BAD_REQUEST}
    return schema


def _secured(route: APIRoute) -> bool:
    return any(isinstance(d.call, Require) for d in route.dependant.dependencies)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names only the first matching route's methods; a path served by two
        # routes (the GDPR API's GET and DELETE) must list both.
        headers["Allow"] = ", ".join(_methods_of(request))
    if exc.status_code == 400 and not request.url.path.startswith(GDPR_PREFIX):
        # FastAPI's "error parsing the body" (bytes that are not text): the same 422 as any
        # other body that is not what the operation takes.
        detail = [{"loc": ["body"], "msg": str(exc.detail), "type": "json_invalid"}]
        return MaskedJSONResponse({"detail": detail}, status_code=422)
    return MaskedJSONResponse(
        {"detail": str(exc.detail)}, status_code=exc.status_code, headers=headers
    )


def _methods_of(request: Request) -> list[str]:
    matching = [r for r in request.app.routes if r.matches(request.scope)[0] is not Match.NONE]
    # A literal path (/residents/search) is that resource, not an id of /residents/{id}.
    literal = [r for r in matching if not getattr(r, "param_convertors", None)]
    methods: set[str] = set()
    for route in literal or matching:
        methods.update(getattr(route, "methods", None) or ())
    return sorted(methods)


async def _validation_error(request: Request, exc: Exception) -> Response:
    """422 (400 on the GDPR API) naming what is wrong, never echoing the value sent."""
    assert isinstance(exc, RequestValidationError)
    detail = [
        {"loc": list(error.get("loc", ())), "msg": str(error.get("msg", "")), "type": error["type"]}
        for error in exc.errors()
    ]
    status = 400 if request.url.path.startswith(GDPR_PREFIX) else 422
    return MaskedJSONResponse({"detail": detail}, status_code=status)


async def _hub_error(request: Request, exc: Exception) -> Response:
    # A ConfigError here is the caller's input (e.g. a temporary national id); anything else
    # is the hub's own trouble (store unreachable): the caller may try again later.
    if isinstance(exc, ConfigError):
        detail = [{"loc": ["body"], "msg": str(exc), "type": "value_error"}]
        return MaskedJSONResponse({"detail": detail}, status_code=422)
    return MaskedJSONResponse({"detail": str(exc)}, status_code=503)
