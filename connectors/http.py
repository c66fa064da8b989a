"""The HTTP client every HTTP connector kind shares: auth, retries, rate budget, size limits.

How an HTTP outcome becomes an error is decided in one function, `error_for`:

    2xx, 3xx                                   no error
    429, 5xx, timeout, connection reset,       RetriableSourceError (retry_after from the
    body cut short                             Retry-After header, seconds or HTTP-date)
    401, 403                                   FatalSourceError: check the credentials
    any other 4xx, TLS failure, bad URL        FatalSourceError

`HttpClient` retries the retriable ones with exponential backoff and full jitter (honouring
Retry-After, capped at `max_backoff`); after the last retry the error propagates, so the
pipeline fails the run and keeps the last committed state. Credentials never reach a log line
or an error message: every secret an auth object holds is registered with `redact`, and a
logging filter applies it to urllib3's and this package's loggers.
"""

from __future__ import annotations

import base64
import email.utils
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

import orjson
import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase

from islandhub.errors import FatalSourceError, RetriableSourceError, SourceError
from islandhub.privacy.masking import mask_text
from islandhub.secrets import reveal

__all__ = [
    "AUTH_KINDS",
    "ApiKeyAuth",
    "Auth",
    "BasicAuth",
    "BearerAuth",
    "HttpClient",
    "OAuth2ClientCredentials",
    "RateBudget",
    "auth_schema",
    "error_for",
    "make_auth",
    "parse_retry_after",
    "redact",
    "register_auth",
]

log = logging.getLogger(__name__)

Timeout = tuple[float, float]
DEFAULT_TIMEOUT: Timeout = (5.0, 30.0)
EXCERPT_CHARS = 160
CHUNK_BYTES = 1 << 16
MIN_SECRET_CHARS = 4
T = TypeVar("T")


# ---------------------------------------------------------------- redaction


# Longest first, so a secret that contains another is replaced whole. Replaced, never
# mutated, so that `redact` can read it from any thread without a lock.
_secret_values: tuple[str, ...] = ()
_secret_lock = threading.Lock()


def register_secret(value: Any) -> str:
    """Remember a credential (a Secret or a string) so `redact` hides it; return its value."""
    global _secret_values
    plain = str(reveal(value))
    if len(plain) >= MIN_SECRET_CHARS:
        with _secret_lock:
            known = {*_secret_values, plain, quote(plain, safe=""), quote_plus(plain)}
            _secret_values = tuple(sorted(known, key=len, reverse=True))
    return plain


def redact(text: str) -> str:
    """Text safe to log: registered credentials replaced by '***', national ids masked."""
    for value in _secret_values:
        if value in text:
            text = text.replace(value, "***")
    return mask_text(text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts credentials and national ids from every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record's message in place; never drop it."""
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def _install_filter() -> None:
    # Logger filters only see records logged on that very logger, hence the list.
    for name in ("urllib3.connectionpool", "urllib3.response", "urllib3.util.retry", __name__):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())


_install_filter()


# ---------------------------------------------------------------- errors


def error_for(
    what: str,
    response: requests.Response | None = None,
    exc: BaseException | None = None,
) -> SourceError | None:
    """The one place where an HTTP outcome (a response or a transport failure) becomes an error."""
    if exc is not None:
        detail = f"{what}: {type(exc).__name__}: {redact(str(exc))[:300]}"
        if isinstance(exc, requests.exceptions.SSLError):
            return FatalSourceError(f"{detail} (TLS verification failed; fix the certificate)")
        if isinstance(exc, requests.Timeout):
            return RetriableSourceError(f"{what}: no answer within the timeout")
        if isinstance(exc, requests.ConnectionError | requests.exceptions.ChunkedEncodingError):
            return RetriableSourceError(f"{detail} (connection failed or cut short)")
        return FatalSourceError(detail)
    if response is None or response.status_code < 400:
        return None
    status = f"{what}: HTTP {response.status_code} {response.reason or ''}".rstrip()
    excerpt = body_excerpt(response)
    if response.status_code == 429 or response.status_code >= 500:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return RetriableSourceError(f"{status}{excerpt}", retry_after=retry_after)
    if response.status_code in (401, 403):
        advice = "the island refused the credentials: check the auth settings and their secret"
        return FatalSourceError(f"{status}: {advice}{excerpt}")
    return FatalSourceError(f"{status}{excerpt}")


def body_excerpt(response: requests.Response) -> str:
    """A short, redacted, single-line excerpt of a read body (empty when there is none)."""
    content = response._content if isinstance(response._content, bytes) else b""
    text = " ".join(content[: EXCERPT_CHARS * 2].decode("utf-8", "replace").split())
    return f": {redact(text[:EXCERPT_CHARS])!r}" if text else ""


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP-date."""
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def backoff_delay(attempt: int, retry_after: float | None, base: float, cap: float) -> float:
    """Seconds before retry number `attempt` (0-based): Retry-After, else full jitter, capped."""
    if retry_after is not None:
        return min(cap, retry_after)
    return random.uniform(0.0, min(cap, base * 2**attempt))


def parse_json(response: requests.Response, what: str) -> Any:
    """The JSON document of a read response; a cut-off body is retriable, anything else fatal."""
    body = response.content or b""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        stripped = body.strip()
        if stripped[:1] in (b"{", b"[") and exc.pos >= len(stripped) - 1:
            raise RetriableSourceError(
                f"{what}: the JSON body ends early after {len(body)} bytes (connection cut?)"
            ) from None
        kind = response.headers.get("Content-Type", "no content type")
        raise FatalSourceError(
            f"{what}: expected JSON, got {kind}{body_excerpt(response)}"
        ) from None


# ---------------------------------------------------------------- auth


class Auth(AuthBase):
    """A way to prove who the hub is; built from an `auth:` block by `make_auth`."""

    kind: ClassVar[str]
    #: JSON Schema properties of the block (besides `type`), and which are required.
    properties: ClassVar[dict[str, Any]] = {}
    required: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_config(cls, config: Mapping[str, Any], client: HttpClient) -> Auth:
        """Build the auth object from its config block."""
        options = {k: v for k, v in config.items() if k != "type"}
        return cls(**options)

    def refresh(self) -> bool:
        """Drop a cached credential after a 401; True when a retry may now succeed."""
        return False

    def query_params(self) -> tuple[str, ...]:
        """Query parameters this auth adds (removed from URLs the hub stores)."""
        return ()

    def header_names(self) -> tuple[str, ...]:
        """Headers this auth adds (dropped when a redirect leaves the island's origin)."""
        return ("Authorization",)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(***)"


AUTH_KINDS: dict[str, type[Auth]] = {}
A = TypeVar("A", bound=type[Auth])


def register_auth(cls: A) -> A:
    """Class decorator: make an auth kind available to `auth:` blocks under its `kind`."""
    AUTH_KINDS[cls.kind] = cls
    return cls


@register_auth
class BearerAuth(Auth):
    """`{type: bearer, token}`: a static token in the Authorization header."""

    kind = "bearer"
    properties = {"token": {"type": "string", "secret": True}}
    required = ("token",)

    def __init__(self, token: Any) -> None:
        self._header = f"Bearer {register_secret(token)}"

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        """Add the Authorization header."""
        r.headers["Authorization"] = self._header
        return r


@register_auth
class BasicAuth(Auth):
    """`{type: basic, username, password}`: HTTP Basic."""

    kind = "basic"
    properties = {"username": {"type": "string"}, "password": {"type": "string", "secret": True}}
    required = ("username", "password")

    def __init__(self, username: Any, password: Any) -> None:
        pair = f"{reveal(username)}:{register_secret(password)}".encode()
        self._header = "Basic " + register_secret(base64.b64encode(pair).decode("ascii"))

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        """Add the Authorization header."""
        r.headers["Authorization"] = self._header
        return r


@register_auth
class ApiKeyAuth(Auth):
    """`{type: api_key, name, in: header|query, value}`: a key in a header or the query."""

    kind = "api_key"
    properties = {
        "name": {"type": "string", "minLength": 1},
        "in": {"enum": ["header", "query"]},
        "value": {"type": "string", "secret": True},
    }
    required = ("name", "value")

    @classmethod
    def from_config(cls, config: Mapping[str, Any], client: HttpClient) -> Auth:
        """Build from the block; `in` is a Python keyword, hence the rename."""
        return cls(config["name"], config["value"], where=config.get("in", "header"))

    def __init__(self, name: str, value: Any, *, where: str = "header") -> None:
        self.name, self.where = name, where
        self._value = register_secret(value)

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        """Add the key to the headers or the query."""
        if self.where == "query":
            r.prepare_url(r.url, {self.name: self._value})
        else:
            r.headers[self.name] = self._value
        return r

    def query_params(self) -> tuple[str, ...]:
        """The key's name when it travels in the query."""
        return (self.name,) if self.where == "query" else ()

    def header_names(self) -> tuple[str, ...]:
        """The key's header when it travels in a header."""
        return (self.name,) if self.where == "header" else ()


@register_auth
class OAuth2ClientCredentials(Auth):
    """`{type: oauth2_client_credentials, ...}`: a token cached until shortly before expiry."""

    kind = "oauth2_client_credentials"
    properties = {
        "token_url": {"type": "string", "pattern": "^https?://"},
        "client_id": {"type": "string"},
        "client_secret": {"type": "string", "secret": True},
        "scope": {"type": "string"},
    }
    required = ("token_url", "client_id", "client_secret")

    @classmethod
    def from_config(cls, config: Mapping[str, Any], client: HttpClient) -> Auth:
        """Build from the block; the token request uses the client's session and settings."""
        options = {k: v for k, v in config.items() if k != "type"}
        return cls(**options, client=client)

    def __init__(
        self,
        token_url: str,
        client_id: Any,
        client_secret: Any,
        scope: str | None = None,
        *,
        client: HttpClient,
    ) -> None:
        self.token_url = token_url
        self._form = {"grant_type": "client_credentials", "client_id": str(reveal(client_id))}
        self._form["client_secret"] = register_secret(client_secret)
        if scope:
            self._form["scope"] = scope
        self._client = client
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        """Add the (cached) access token."""
        r.headers["Authorization"] = f"Bearer {self.token()}"
        return r

    def token(self) -> str:
        """The cached access token, fetched anew when missing or about to expire."""
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires:
                self._token, lifetime = self._fetch()
                self._expires = time.monotonic() + lifetime - min(60.0, lifetime / 10)
            return self._token

    def refresh(self) -> bool:
        """Forget the cached token, so the next request fetches a fresh one."""
        with self._lock:
            self._token = None
        return True

    def _fetch(self) -> tuple[str, float]:
        what = f"POST {redact(self.token_url)} (token)"
        response = self._client.send_once("POST", self.token_url, data=self._form, auth=False)
        document = parse_json(response, what)
        token = document.get("access_token") if isinstance(document, dict) else None
        if not isinstance(token, str) or not token:
            raise FatalSourceError(f"{what}: the answer has no access_token")
        register_secret(token)
        try:
            lifetime = float(document.get("expires_in", 3600))
        except (TypeError, ValueError):
            lifetime = 3600.0
        return token, lifetime


def auth_schema() -> dict[str, Any]:
    """JSON Schema of an `auth:` block (secret values marked `"secret": true`)."""
    branches = [
        {
            "if": {"properties": {"type": {"const": kind}}, "required": ["type"]},
            "then": {
                "properties": {"type": {"const": kind}, **cls.properties},
                "required": ["type", *cls.required],
                "additionalProperties": False,
            },
        }
        for kind, cls in AUTH_KINDS.items()
    ]
    return {
        "type": "object",
        "properties": {"type": {"enum": sorted(AUTH_KINDS)}},
        "required": ["type"],
        "allOf": branches,
    }


def make_auth(config: Mapping[str, Any] | Auth | None, client: HttpClient) -> Auth | None:
    """The auth object of an `auth:` block (or the object itself, or None)."""
    if config is None or isinstance(config, Auth):
        return config
    kind = config.get("type")
    if kind not in AUTH_KINDS:
        known = ", ".join(sorted(AUTH_KINDS))
        raise FatalSourceError(f"auth type {kind!r} is not one of {known}")
    return AUTH_KINDS[str(kind)].from_config(config, client)


# ---------------------------------------------------------------- rate budget


class RateBudget:
    """At most `rate` requests a second for every client sharing a key, process-wide."""

    _shared: ClassVar[dict[str, RateBudget]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self._next = 0.0
        self._lock = threading.Lock()

    @classmethod
    def shared(cls, key: str, rate: float) -> RateBudget:
        """The budget of `key`; when clients declare different rates, the lowest wins."""
        with cls._shared_lock:
            budget = cls._shared.get(key)
            if budget is None:
                budget = cls._shared[key] = cls(rate)
            budget.interval = max(budget.interval, 1.0 / rate)
            return budget

    def acquire(self) -> None:
        """Wait for this request's slot (slots are handed out in order, one per interval)."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


# ---------------------------------------------------------------- the client


class HttpClient:
    """A pooled session to one island, with auth, retries, a rate budget and a size limit."""

    def __init__(
        self,
        system: str,
        *,
        base_url: str,
        auth: Mapping[str, Any] | Auth | None = None,
        timeout: float | Timeout | list[float] = DEFAULT_TIMEOUT,
        retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 60.0,
        rate: float | None = None,
        rate_key: str | None = None,
        max_response_bytes: int = 50_000_000,
        verify: bool | str = True,
        headers: Mapping[str, Any] | None = None,
    ) -> None:
        self.system = system
        self.base_url = base_url.rstrip("/")
        self.timeout = _timeout(timeout)
        self.retries, self.backoff, self.max_backoff = retries, backoff, max_backoff
        self.max_response_bytes = max_response_bytes
        self.budget = RateBudget.shared(rate_key or system, rate) if rate else None
        self.session = _session(system, verify, headers or {})
        self._origin = _origin(self.base_url)
        self.auth = make_auth(auth, self)
        if self.auth is not None:
            self.session.credential_headers = self.auth.header_names()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    def url(self, url_or_path: str) -> str:
        """An absolute URL: a path is appended to the base URL (its own path is kept)."""
        if urlsplit(url_or_path).scheme:
            return url_or_path
        return f"{self.base_url}/{url_or_path.lstrip('/')}"

    def strip_auth_params(self, url: str) -> str:
        """The URL without the query parameters the auth adds (never store a key in state)."""
        names = self.auth.query_params() if self.auth else ()
        parts = urlsplit(url)
        if not names or not parts.query:
            return url
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        return urlunsplit(parts._replace(query=urlencode([p for p in pairs if p[0] not in names])))

    def request(
        self,
        method: str,
        url_or_path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        allow: frozenset[int] = frozenset(),
    ) -> requests.Response:
        """Send with retries; the response comes back read (within the size limit), 2xx/3xx.

        Statuses in `allow` come back too: answers the caller reads itself (a GDPR API's 403
        is a legal refusal with reasons, not a credentials problem).
        """
        url = self.url(url_or_path)
        return self._with_retries(
            lambda: self.send_once(
                method, url, params=params, json=json, headers=headers, allow=allow
            )
        )

    def get_json(
        self, url_or_path: str, params: Mapping[str, Any] | None = None
    ) -> tuple[Any, requests.Response]:
        """GET and parse JSON, with retries (a truncated body is retried too)."""
        url = self.url(url_or_path)
        what = f"GET {redact(url)}"

        def attempt() -> tuple[Any, requests.Response]:
            response = self.send_once("GET", url, params=params)
            return parse_json(response, what), response

        return self._with_retries(attempt)

    def _with_retries(self, attempt: Callable[[], T]) -> T:
        for number in itertools.count():
            try:
                return attempt()
            except RetriableSourceError as error:
                if number >= self.retries:
                    message = f"{self.system}: {error} (gave up after {self.retries} retries)"
                    raise RetriableSourceError(message, error.retry_after) from None
                delay = backoff_delay(number, error.retry_after, self.backoff, self.max_backoff)
                log.warning(
                    "%s: %s; retry %d of %d in %.2f s",
                    self.system,
                    error,
                    number + 1,
                    self.retries,
                    delay,
                )
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def send_once(
        self,
        method: str,
        url: str,
        *,
        auth: bool = True,
        allow: frozenset[int] = frozenset(),
        **kwargs: Any,
    ) -> requests.Response:
        """One request (a 401 may refresh the auth once), body read, outcome mapped to errors."""
        what = f"{method} {redact(url)}"
        refreshed = False
        while True:
            if self.budget is not None:
                self.budget.acquire()
            try:
                response = self.session.request(
                    method,
                    url,
                    auth=self._auth_for(url) if auth else None,
                    timeout=self.timeout,
                    stream=True,
                    **kwargs,
                )
            except requests.RequestException as exc:
                raise _raisable(error_for(what, exc=exc)) from None
            if response.status_code == 401 and auth and not refreshed and self._refresh():
                response.close()
                refreshed = True
                continue
            self._read_body(response, what)
            if response.status_code in allow:
                return response
            error = error_for(what, response)
            if error is not None:
                raise error
            return response

    def _refresh(self) -> bool:
        return self.auth is not None and self.auth.refresh()

    def _auth_for(self, url: str) -> Auth | None:
        # Credentials go only to the island's own origin, whatever a next link says.
        return self.auth if _origin(url) == self._origin else None

    def _read_body(self, response: requests.Response, what: str) -> None:
        limit = self.max_response_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            response.close()
            raise FatalSourceError(
                f"{what}: the answer is {declared} bytes, over the limit max_response_bytes={limit}"
            )
        chunks, size = [], 0
        try:
            for chunk in response.iter_content(CHUNK_BYTES):
                size += len(chunk)
                if size > limit:
                    response.close()
                    raise FatalSourceError(
                        f"{what}: the answer exceeds the limit max_response_bytes={limit}"
                    )
                chunks.append(chunk)
        except requests.RequestException as exc:
            raise _raisable(error_for(what, exc=exc)) from None
        response._content = b"".join(chunks)


def _raisable(error: SourceError | None) -> SourceError:
    return error or FatalSourceError("unknown HTTP failure")


def _timeout(value: float | Timeout | list[float]) -> Timeout:
    if isinstance(value, int | float):
        return (float(value), float(value))
    connect, read = value
    return (float(connect), float(read))


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


class _IslandSession(requests.Session):
    """A session whose redirects to another origin drop every credential header.

    requests itself drops only Authorization; an API key's own header would follow along.
    """

    credential_headers: tuple[str, ...] = ()

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: Any) -> None:
        """Drop the credential headers when the redirect leaves the origin."""
        if self.should_strip_auth(response.request.url, prepared_request.url):
            for name in self.credential_headers:
                prepared_request.headers.pop(name, None)
        super().rebuild_auth(prepared_request, response)


def _session(system: str, verify: bool | str, headers: Mapping[str, Any]) -> _IslandSession:
    session = _IslandSession()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.verify = verify
    session.headers["User-Agent"] = f"islandhub ({system})"
    session.headers["Accept"] = "application/json"
    for name, value in headers.items():
        # A header value given as {secret: NAME} arrives as a Secret: hide it like auth.
        plain = register_secret(value) if reveal(value) is not value else str(value)
        session.headers[name] = plain
    return session
