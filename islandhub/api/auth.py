"""Who calls, and may they: bearer JWTs or API keys -> a Caller with scopes -> an audited Reader.

A bearer token is a JWT signed by a configured issuer (iss exactly, aud, exp, RS/PS/ES
algorithms only: a token can never pick `none` or a shared secret). Its scopes come from
`scope` (space-separated), `scp`, and, for the GDPR API, Keycloak's
`authorization.permissions[].scopes` where `gdprquery` / `gdprdelete` mean gdpr:query /
gdpr:delete (open-city-profile's GDPR API). An API key (X-API-Key) is compared by its
SHA-256 against every client's in constant time. A caller without the scope an operation
needs gets 403, except on the GDPR API, whose contract answers every failed authorization
with 401. The client id is the audit log's actor; the purpose is X-Purpose or the scope's.
"""

from __future__ import annotations

import contextlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

import jwt
from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError

from islandhub.api.context import context_of
from islandhub.api.settings import ApiSettings, Issuer, key_digest
from islandhub.privacy.masking import mask_text
from islandhub.residents import Reader

# open-city-profile's Keycloak permission scopes, and the hub's scopes they grant.
KEYCLOAK_SCOPES = {"gdprquery": "gdpr:query", "gdprdelete": "gdpr:delete"}
CLIENT_CLAIMS = ("azp", "client_id", "sub")
PURPOSES = {
    "residents:read": "reading a resident's record through the API (residents:read)",
    "residents:search": "finding a resident by national id through the API (residents:search)",
    "gdpr:query": "the resident's data request through the GDPR API (gdpr:query)",
    "gdpr:delete": "the resident's erasure request through the GDPR API (gdpr:delete)",
    "status:read": "run status and data quality through the API (status:read)",
}
MAX_ACTOR = 128
MAX_VERIFIED_TOKENS = 4096
_now = time.time  # the clock of the token cache (tests move it)
MAX_PURPOSE = 255

API_KEY_HEADER = "X-API-Key"
PURPOSE_HEADER = "X-Purpose"
# What the OpenAPI document says of the credentials (app.document() puts it there).
SECURITY_SCHEMES: dict[str, Any] = {
    "HTTPBearer": {
        "type": "http",
        "description": "A JWT signed by a trusted issuer (hub.yaml api.issuers), with the "
        "operation's scope in `scope`, `scp` or Keycloak's authorization.permissions[].scopes.",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    },
    "APIKeyHeader": {
        "type": "apiKey",
        "description": "A client's API key (hub.yaml api.clients).",
        "in": "header",
        "name": API_KEY_HEADER,
    },
}
SECURITY: list[dict[str, list[str]]] = [{"HTTPBearer": []}, {"APIKeyHeader": []}]
PURPOSE_PARAMETER: dict[str, Any] = {
    "name": PURPOSE_HEADER,
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": MAX_PURPOSE},
    "description": "Why the data is read, for the audit log (default: the scope's purpose). "
    "UTF-8 is accepted.",
}


class AuthError(Exception):
    """Credentials that do not identify a caller; the message says why (never the secret)."""


@dataclass(frozen=True)
class Caller:
    """An authenticated client and what it may do."""

    client_id: str
    scopes: frozenset[str]


class Authenticator:
    """Checks credentials against the API settings; holds nothing but public keys and digests."""

    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self._issuers = {issuer.issuer: issuer for issuer in settings.issuers}
        # Tokens verified already: token -> (caller, the moment it expires, leeway included).
        self._verified_tokens: dict[str, tuple[Caller, float]] = {}

    def api_key(self, key: str) -> Caller:
        """The client whose key this is."""
        digest = key_digest(key)
        found = None
        # Every client is compared, whatever matched: the time taken says nothing.
        for client in self.settings.clients:
            if hmac.compare_digest(digest, client.key_digest):
                found = client
        if found is None:
            raise AuthError("unknown API key")
        return Caller(found.client_id, found.scopes)

    def bearer(self, token: str) -> Caller:
        """The client a verified token was issued to, with the scopes it grants.

        A token once verified is remembered until it expires: its signature, issuer, audience
        and keys cannot change while the API runs (keys change with a restart), and a token
        valid once stays valid until `exp` (+ leeway), the one check that depends on the time.
        """
        cached = self._verified_tokens.get(token)
        if cached is not None:
            caller, expires = cached
            if _now() < expires:
                return caller
            self._verified_tokens.pop(token, None)
        caller, expires = self._verify(token)
        if len(self._verified_tokens) >= MAX_VERIFIED_TOKENS:
            self._verified_tokens.clear()  # a bound, not a policy: busy clients come back
        self._verified_tokens[token] = (caller, expires)
        return caller

    def _verify(self, token: str) -> tuple[Caller, float]:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise AuthError(f"not a JWT: {exc}") from None
        issuer = self._issuers.get(str(unverified.get("iss")))
        if issuer is None:
            raise AuthError("the token's issuer is not trusted here")
        algorithm = str(header.get("alg"))
        if algorithm not in issuer.algorithms:
            raise AuthError(f"algorithm {algorithm!r} is not accepted from this issuer")
        claims = self._verified(token, issuer, algorithm, header.get("kid"))
        # PyJWT accepts a token while exp > now - leeway; `exp` is required and numeric.
        expires = float(claims["exp"]) + self.settings.leeway_seconds
        return Caller(_client_of(claims, issuer), _scopes_of(claims, issuer)), expires

    def _verified(self, token: str, issuer: Issuer, algorithm: str, kid: Any) -> dict[str, Any]:
        # A key without an id (a PEM file) may have signed a token with any; one with an id
        # only the tokens that name it.
        keys = [k for k in issuer.keys if k.fits(algorithm) and (k.kid is None or k.kid == kid)]
        if not keys:
            raise AuthError("no key of the issuer matches the token's key id and algorithm")
        for key in keys:
            try:
                claims: dict[str, Any] = jwt.decode(
                    token,
                    key.key,
                    algorithms=[algorithm],
                    audience=list(issuer.audience),
                    issuer=issuer.issuer,
                    leeway=self.settings.leeway_seconds,
                    options={"require": ["exp", "iss", "aud"]},
                )
                return claims
            except jwt.InvalidSignatureError:
                continue  # PEM keys carry no key id: the next one may have signed it
            except jwt.PyJWTError as exc:
                raise AuthError(str(exc)) from None
        raise AuthError("the token's signature does not verify")


def _client_of(claims: dict[str, Any], issuer: Issuer) -> str:
    names = (issuer.client_claim,) if issuer.client_claim else CLIENT_CLAIMS
    for name in names:
        value = claims.get(name)
        if isinstance(value, str) and value:
            return value[:MAX_ACTOR]
    raise AuthError(f"the token names no client ({' or '.join(names)})")


def _scopes_of(claims: dict[str, Any], issuer: Issuer) -> frozenset[str]:
    found: set[str] = set()
    for claim in ("scope", "scp"):
        value = claims.get(claim)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list):
            found.update(v for v in value if isinstance(v, str))
    authorization = claims.get("authorization")
    permissions = authorization.get("permissions") if isinstance(authorization, dict) else None
    for permission in permissions if isinstance(permissions, list) else []:
        scopes = permission.get("scopes") if isinstance(permission, dict) else None
        for scope in scopes if isinstance(scopes, list) else []:
            if isinstance(scope, str):
                found.add(KEYCLOAK_SCOPES.get(scope, scope))
    return frozenset(found) & issuer.scopes


class Require:
    """A dependency: the audited Reader of a caller holding `scope` (else 403; GDPR API: 401).

    One dependency that reads its headers itself, rather than FastAPI's security classes and a
    Header parameter: each dependency level costs FastAPI's resolver time on every request, a
    sixth of a resident read's CPU in benchmarks/api_load.py. The OpenAPI document still says
    what it takes: app.document() adds the security schemes and X-Purpose to every operation
    that depends on a Require. Async on purpose: it only computes (a signature check is tens
    of microseconds), and a sync dependency would cost a hop through the thread pool.
    """

    def __init__(self, scope: str, *, gdpr: bool = False) -> None:
        self.scope = scope
        self.gdpr = gdpr

    async def __call__(self, request: Request) -> Reader:
        """The Reader of this request, or 401/403 (422 for an X-Purpose too long)."""
        caller = authenticate(request)
        return self.reader(caller, request.headers.get(PURPOSE_HEADER))

    def reader(self, caller: Caller, raw: str | None) -> Reader:
        """The Reader of `caller` with the X-Purpose header `raw`, or 403 (422 for a long one)."""
        if self.scope not in caller.scopes:
            raise self._insufficient(caller)
        if raw is not None and len(raw) > MAX_PURPOSE:
            message = f"String should have at most {MAX_PURPOSE} characters"
            error = {"loc": ("header", PURPOSE_HEADER), "msg": message, "type": "string_too_long"}
            raise RequestValidationError([error])
        return Reader(caller.client_id, purpose(raw, self.scope))

    def _insufficient(self, caller: Caller) -> HTTPException:
        if self.gdpr:
            return _unauthorized("insufficient_scope", f"the token does not grant {self.scope}")
        challenge = f'Bearer realm="islandhub", error="insufficient_scope", scope="{self.scope}"'
        return HTTPException(
            403,
            f"client {caller.client_id!r} lacks the scope {self.scope}",
            headers={"WWW-Authenticate": challenge},
        )


def require(scope: str, *, gdpr: bool = False) -> Require:
    """The dependency of an operation that needs `scope`."""
    return Require(scope, gdpr=gdpr)


def authenticate(request: Request) -> Caller:
    """The caller of this request (a bearer token or an API key, not both), or 401."""
    return caller_of(
        context_of(request).authenticator,
        request.headers.get("authorization"),
        request.headers.get(API_KEY_HEADER),
    )


def caller_of(
    authenticator: Authenticator, authorization: str | None, api_key: str | None
) -> Caller:
    """The caller the Authorization and X-API-Key headers name, or 401."""
    try:
        if authorization is not None and api_key:
            raise AuthError("send one credential: a bearer token or an API key, not both")
        if authorization is not None:
            scheme, _, token = authorization.strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthError("the Authorization header must be 'Bearer <token>'")
            return authenticator.bearer(token.strip())
        if api_key:
            return authenticator.api_key(api_key)
    except AuthError as exc:
        raise _unauthorized("invalid_token", str(exc)) from None
    raise _unauthorized(None, "credentials are needed: a bearer token or an X-API-Key")


def _unauthorized(error: str | None, message: str) -> HTTPException:
    challenge = 'Bearer realm="islandhub"'
    if error:
        challenge += f', error="{error}"'
    return HTTPException(401, mask_text(message), headers={"WWW-Authenticate": challenge})


def purpose(header: str | None, scope: str) -> str:
    """X-Purpose as the caller meant it (UTF-8 sent raw is read as such), masked; or the default."""
    text = (header or "").strip()
    # Starlette reads header bytes as latin-1; clients send Finnish and Swedish as UTF-8.
    with contextlib.suppress(UnicodeError):
        text = text.encode("latin-1").decode("utf-8")
    text = mask_text(" ".join(text.split()))[:MAX_PURPOSE]
    return text or PURPOSES[scope]
