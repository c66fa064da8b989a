"""The msgraph connector: Microsoft 365 users, contacts, calendars, Bookings, Planner (Graph)."""

from __future__ import annotations

import hashlib
import http
import itertools
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any
from urllib.parse import quote

import orjson
import requests
from requests.structures import CaseInsensitiveDict

from connectors.base import (
    IDEMPOTENCY_KEY,
    Batch,
    CheckResult,
    Connector,
    Rejected,
    State,
    StreamSpec,
)
from connectors.http import HttpClient, OAuth2ClientCredentials, error_for, parse_json, redact
from islandhub.errors import (
    ConfigError,
    FatalSourceError,
    Problem,
    RetriableSourceError,
    SourceError,
)

__all__ = ["RESOURCES", "GraphConnector", "PushRejected", "Resource"]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://graph.microsoft.com/v1.0"
DEFAULT_SCOPE = "https://graph.microsoft.com/.default"
TOKEN_URL = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
MAX_BATCH_REQUESTS = 20  # Graph's limit for one $batch
FINGERPRINT_CHARS = 12  # 48 bits of sha256 per item: collisions negligible per stream
SEEN_CHARS = 10  # ids seen in an unfinished round are kept as short hashes
# Error codes (and 410 Gone) that mean "this delta or page token is no longer valid".
EXPIRED_TOKEN_MARKERS = (
    "http 410",
    "syncstatenotfound",
    "resyncrequired",
    "syncstateinvalid",
    "expiredpagetoken",
)
# Hints for the token endpoint's AADSTS codes that users meet when setting the app up.
AADSTS_HINTS = {
    "AADSTS7000215": "the client secret is wrong: use the secret's Value (not its Secret ID)",
    "AADSTS7000222": "the client secret has expired: create a new one in the app registration",
    "AADSTS700016": "no app with this client_id in the tenant: check client_id and tenant_id",
    "AADSTS90002": "the tenant does not exist: check tenant_id (or token_url)",
    "AADSTS70011": "the scope is invalid: app-only access uses https://graph.microsoft.com/.default",
}


@dataclass(frozen=True)
class Resource:
    """What one kind of Graph collection needs: its path, paging, select and permissions."""

    path: str  # with {user}, {business} or {plan} filled from the stream's options
    needs: tuple[str, ...]  # stream options the path needs
    select: tuple[str, ...]  # default fields
    permission: str  # least-privileged application permission to read
    delta: bool = False  # read with a delta query (else: full read with fingerprints)
    server_select: bool = False  # Graph honours $select here (else: projected here)
    top: bool = False  # Graph honours $top here
    write_permission: str | None = None  # set when push is supported
    push_key: str | None = None  # default client-side key of new records
    odata_type: str | None = None  # @odata.type Graph wants in a write body

    def url(self, options: Mapping[str, Any]) -> str:
        """The collection's path for a stream's options (ids URL-quoted)."""
        values = {name: quote(str(options[name]), safe="@") for name in self.needs}
        return self.path.format(**values)


RESOURCES: dict[str, Resource] = {
    "users": Resource(
        "/users/delta",
        (),
        (
            "id",
            "displayName",
            "givenName",
            "surname",
            "mail",
            "mobilePhone",
            "businessPhones",
            "streetAddress",
            "postalCode",
            "city",
            "employeeId",
            "accountEnabled",
        ),
        "User.Read.All",
        delta=True,
        server_select=True,
        top=True,
    ),
    "contacts": Resource(
        "/users/{user}/contacts",
        ("user",),
        (
            "id",
            "displayName",
            "givenName",
            "surname",
            "emailAddresses",
            "mobilePhone",
            "homePhones",
            "businessPhones",
            "homeAddress",
        ),
        "Contacts.Read",
        server_select=True,
        top=True,
        write_permission="Contacts.ReadWrite",
        push_key="emailAddresses.0.address",
    ),
    "calendar_events": Resource(
        "/users/{user}/calendarView/delta",
        ("user",),
        ("id", "subject", "start", "end", "organizer", "attendees", "location"),
        "Calendars.ReadBasic",
        delta=True,
    ),
    "bookings_customers": Resource(
        "/solutions/bookingBusinesses/{business}/customers",
        ("business",),
        ("id", "displayName", "emailAddress", "phones", "addresses"),
        "Bookings.Read.All",
        write_permission="Bookings.ReadWrite.All",
        push_key="emailAddress",
        odata_type="#microsoft.graph.bookingCustomer",
    ),
    "bookings_appointments": Resource(
        "/solutions/bookingBusinesses/{business}/appointments",
        ("business",),
        ("id", "serviceName", "startDateTime", "endDateTime", "customers"),
        "Bookings.Read.All",
    ),
    "planner_tasks": Resource(
        "/planner/plans/{plan}/tasks",
        ("plan",),
        (
            "id",
            "title",
            "bucketId",
            "percentComplete",
            "startDateTime",
            "dueDateTime",
            "completedDateTime",
            "assignments",
        ),
        "Tasks.Read.All",
    ),
}

_SECRET = {"secret": True}
_ID = {"type": "string", "minLength": 1}


class PushRejected(FatalSourceError):
    """Some records of a push were refused by Graph; `rejected` says which and why."""

    def __init__(self, message: str, rejected: list[Rejected]) -> None:
        super().__init__(message)
        self.rejected = rejected


@dataclass(frozen=True)
class Write:
    """One record's write: a request inside a $batch."""

    position: str  # which record of the push, for the error message
    method: str
    url: str
    body: dict[str, Any]
    key: str | None = None  # the client-side key of a new record (POST)


@dataclass(frozen=True)
class Failure:
    """A write Graph refused, and whether retrying may help."""

    write: Write
    error: SourceError


class GraphConnector(Connector):
    """Reads Microsoft 365 through Graph (delta where it exists, fingerprints elsewhere)."""

    kind = "msgraph"
    connection_schema = {
        "type": "object",
        "properties": {
            "base_url": {
                "type": "string",
                "pattern": "^https?://",
                "description": f"Graph root (default {DEFAULT_BASE_URL})",
            },
            "token_url": {
                "type": "string",
                "pattern": "^https?://",
                "description": "token endpoint (default from tenant_id)",
            },
            "tenant_id": {"type": "string", "minLength": 1},
            "client_id": {"type": "string", "minLength": 1},
            "client_secret": {**_SECRET, "description": "the app registration's secret"},
            "scope": {"type": "string", "description": f"default {DEFAULT_SCOPE}"},
            "rate": {
                "type": "number",
                "exclusiveMinimum": 0,
                "description": "at most this many requests a second",
            },
            "timeout": {
                "anyOf": [
                    {"type": "number", "exclusiveMinimum": 0},
                    {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
                ]
            },
            "verify": {
                "type": ["boolean", "string"],
                "description": "verify TLS (default true), or a CA bundle file",
            },
            "retries": {"type": "integer", "minimum": 0, "maximum": 20},
            "backoff": {"type": "number", "minimum": 0},
            "max_backoff": {"type": "number", "minimum": 0},
        },
        "required": ["client_id", "client_secret"],
        "anyOf": [{"required": ["token_url"]}, {"required": ["tenant_id"]}],
        "x-message": "set tenant_id (the public cloud's token endpoint is made from it) "
        "or token_url",
        "additionalProperties": False,
    }
    stream_schema = {
        "type": "object",
        "properties": {
            "resource": {
                "enum": sorted(RESOURCES),
                "description": "what the stream reads (default: the stream's name)",
            },
            "select": {"type": "array", "items": _ID, "minItems": 1, "uniqueItems": True},
            "page_size": {"type": "integer", "minimum": 1, "maximum": 999},
            "user": {**_ID, "description": "user id or userPrincipalName of the mailbox"},
            "business": {**_ID, "description": "Bookings business id (its email address)"},
            "plan": {**_ID, "description": "Planner plan id"},
            "start": {"type": "string", "format": "date-time"},
            "end": {"type": "string", "format": "date-time"},
            "days_back": {"type": "integer", "minimum": 0},
            "days_ahead": {"type": "integer", "minimum": 1},
            "push_key": {
                "type": "string",
                "minLength": 1,
                "description": "dotted path of the client-side key of new records",
            },
        },
        "additionalProperties": False,
    }

    def __init__(
        self,
        system: str,
        connection: Mapping[str, Any],
        streams: Mapping[str, StreamSpec],
        **kwargs: Any,
    ) -> None:
        super().__init__(system, connection, streams, **kwargs)
        problems = [p for name, spec in streams.items() for p in _stream_problems(name, spec)]
        if problems:
            raise ConfigError(problems)

    # ------------------------------------------------------------ clients

    @cached_property
    def client(self) -> HttpClient:
        """The pooled Graph client (token fetched on first use, refreshed on 401)."""
        return self._make_client(int(self.connection.get("retries", 5)))

    def _make_client(self, retries: int) -> HttpClient:
        c = self.connection
        return HttpClient(
            self.system,
            base_url=c.get("base_url", DEFAULT_BASE_URL),
            auth={
                "type": "oauth2_client_credentials",
                "token_url": self.token_url,
                "client_id": c.get("client_id"),
                "client_secret": c.get("client_secret"),
                "scope": c.get("scope", DEFAULT_SCOPE),
            },
            timeout=c.get("timeout", (5.0, 30.0)),
            retries=retries,
            backoff=float(c.get("backoff", 0.5)),
            max_backoff=float(c.get("max_backoff", 60.0)),
            rate=c.get("rate"),
            verify=c.get("verify", True),
        )

    @property
    def token_url(self) -> str:
        """The token endpoint: `token_url`, else the public cloud's for `tenant_id`."""
        explicit = self.connection.get("token_url")
        return str(explicit or TOKEN_URL.format(tenant=self.connection.get("tenant_id", "")))

    # ------------------------------------------------------------ check

    def check(self) -> CheckResult:
        """Get a token, then read one item of every configured stream (or /organization)."""
        with self._make_client(min(int(self.connection.get("retries", 5)), 3)) as client:
            verdict = self._token_verdict(client)
            if verdict is not None:
                return verdict
            probes = [(name, *self._probe(name)) for name in self.streams()]
            probes = probes or [("organization", "/organization", {"$select": "id"}, "")]
            for name, path, params, permission in probes:
                try:
                    client.get_json(path, params)
                except SourceError as error:
                    return CheckResult(False, _probe_verdict(name, permission, error))
        return CheckResult(True, f"token obtained; read {', '.join(p[0] for p in probes)}")

    def _token_verdict(self, client: HttpClient) -> CheckResult | None:
        if not isinstance(client.auth, OAuth2ClientCredentials):  # pragma: no cover
            return None
        try:
            client.auth.token()
        except RetriableSourceError as error:
            return CheckResult(False, f"cannot reach the token endpoint: {error}")
        except SourceError as error:
            return CheckResult(False, _aadsts_verdict(error))
        return None

    def _probe(self, stream: str) -> tuple[str, dict[str, Any], str]:
        options = self._options(stream)
        resource = RESOURCES[options.get("resource", stream)]
        path = resource.url(options).removesuffix("/delta")
        params: dict[str, Any] = {"$top": 1, "$select": "id"} if resource.top else {}
        if path.endswith("/calendarView"):
            params = {**_window(options), "$top": 1, "$select": "id"}
        return path, params, resource.permission

    # ------------------------------------------------------------ pull

    def pull(self, stream: str, state: State | None) -> Iterator[Batch]:
        """Batches of changed items (one per Graph page) with the state after each."""
        options = self._options(stream)
        reader = _Reader(self.client, f"{self.system}.{stream}", options)
        read = reader.delta if reader.resource.delta else reader.snapshot
        yield from _resyncing(reader.where, read, dict(state or {}))

    # ------------------------------------------------------------ push

    def push(self, stream: str, records: list[dict[str, Any]]) -> None:
        """Create or update contacts / Bookings customers through $batch, idempotently."""
        options = self._options(stream)
        writer = _Writer(self.client, f"{self.system}.{stream}", options)
        writer.push(records)

    def _options(self, stream: str) -> dict[str, Any]:
        spec = self.stream_specs.get(stream)
        if spec is None:
            known = ", ".join(self.streams()) or "none"
            raise FatalSourceError(f"{self.system}: no stream {stream!r} (configured: {known})")
        return {"resource": stream, **spec.options}


# ---------------------------------------------------------------- configuration


def _stream_problems(name: str, spec: StreamSpec) -> list[Problem]:
    where = f"streams.{name}"
    kind = spec.options.get("resource", name)
    resource = RESOURCES.get(kind)
    if resource is None:
        known = ", ".join(sorted(RESOURCES))
        return [
            Problem(
                f"unknown Graph resource {kind!r}: set `resource` to one of {known}",
                path=f"{where}.resource",
            )
        ]
    return [
        Problem(f"a {kind} stream needs `{need}`", path=f"{where}.{need}")
        for need in resource.needs
        if not spec.options.get(need)
    ]


def _window(options: Mapping[str, Any]) -> dict[str, str]:
    """The calendar window: `start`/`end`, else today minus days_back to plus days_ahead."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=int(options.get("days_back", 30)))
    end = today + timedelta(days=int(options.get("days_ahead", 365)))
    return {
        "startDateTime": str(options.get("start") or start.strftime("%Y-%m-%dT%H:%M:%SZ")),
        "endDateTime": str(options.get("end") or end.strftime("%Y-%m-%dT%H:%M:%SZ")),
    }


# ---------------------------------------------------------------- check verdicts


def _aadsts_verdict(error: SourceError) -> str:
    text = str(error)
    hints = [hint for code, hint in AADSTS_HINTS.items() if f"{code}:" in text]
    advice = hints[0] if hints else "check tenant_id, client_id and client_secret"
    return f"the token endpoint refused the app ({advice}): {text}"


def _probe_verdict(stream: str, permission: str, error: SourceError) -> str:
    text = str(error)
    if "HTTP 403" in text and permission:
        return (
            f"{stream}: missing permission: grant the app the application permission "
            f"{permission} (with admin consent): {text}"
        )
    if isinstance(error, RetriableSourceError):
        return f"{stream}: Graph cannot be reached or is busy: {text}"
    return f"{stream}: {text}"


# ---------------------------------------------------------------- reading


def _resyncing(
    where: str, read: Callable[[State], Iterator[Batch]], state: State
) -> Iterator[Batch]:
    """Read from `state`; when its token has expired, fall back to an older one, then to none."""
    current = state
    while True:
        try:
            for batch in read(current):
                current = batch.state
                yield batch
            return
        except FatalSourceError as error:
            fallback = _fallback(current)
            if not _expired(error) or fallback is None:
                raise
            log.warning(
                "%s: the stored token is no longer valid (%s); %s (records may come "
                "again; landing deduplicates them)",
                where,
                _first_line(error),
                "replaying the last delta link"
                if "delta_link" in fallback
                else "starting a full round again",
            )
            current = fallback


def _expired(error: SourceError) -> bool:
    text = str(error).lower()
    return any(marker in text for marker in EXPIRED_TOKEN_MARKERS)


def _fallback(state: State) -> State | None:
    """The state to retry with when its token expired: drop the page token, then the delta."""
    if "next_link" in state or "round" in state:
        return {k: v for k, v in state.items() if k not in ("next_link", "round")}
    if "delta_link" in state:
        return {k: v for k, v in state.items() if k != "delta_link"}
    return None


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0][:200]


class _Reader:
    """Reads one stream's pages: a delta round, or a full read compared with fingerprints."""

    def __init__(self, client: HttpClient, where: str, options: Mapping[str, Any]) -> None:
        self.client, self.where, self.options = client, where, options
        self.resource = RESOURCES[options["resource"]]
        self.select = tuple(options.get("select") or self.resource.select)

    def delta(self, state: State) -> Iterator[Batch]:
        """One delta round from the stored link (or a new round): a batch per page."""
        base = {"delta_link": state["delta_link"]} if state.get("delta_link") else {}
        link = state.get("next_link") or base.get("delta_link")
        for number, page, next_link in self._pages(link):
            records, deleted, rejected = self._changes(page, number)
            if next_link:  # the round's start stays too: a fallback if the page token expires
                after: State = {"next_link": next_link, **base}
            else:
                after = {"delta_link": self._link(page, "@odata.deltaLink", number)}
            yield Batch(records, after, rejected=rejected, deleted=deleted)

    def snapshot(self, state: State) -> Iterator[Batch]:
        """A full read; only items whose fingerprint changed come back, vanished ones deleted."""
        known: dict[str, str] = dict(state.get("fingerprints", {}))
        round_ = state.get("round") or {}
        seen: set[str] = set(round_.get("seen", []))
        for number, page, next_link in self._pages(round_.get("next_link")):
            records, _, rejected = self._changes(page, number)
            changed = [r for r in records if known.get(r["id"]) != _fingerprint(r)]
            known.update((r["id"], _fingerprint(r)) for r in records)
            seen.update(_short(r["id"]) for r in records)
            if next_link:
                after = {
                    "fingerprints": dict(known),
                    "round": {"next_link": next_link, "seen": sorted(seen)},
                }
                yield Batch(changed, after, rejected=rejected)
                continue
            gone = sorted(i for i in known if _short(i) not in seen)
            after = {"fingerprints": {i: f for i, f in known.items() if _short(i) in seen}}
            yield Batch(changed, after, rejected=rejected, deleted=gone)

    def everything(self) -> Iterator[dict[str, Any]]:
        """Every item of the collection now (a full read, no state)."""
        for number, page, _ in self._pages(None):
            yield from self._changes(page, number)[0]

    def _pages(self, link: str | None) -> Iterator[tuple[int, dict[str, Any], str | None]]:
        url, params = (link, None) if link else (self.resource.url(self.options), self._params())
        for number in itertools.count(1):
            page = self._get(url, params)
            next_link = page.get("@odata.nextLink")
            if next_link is not None:
                next_link = self._link(page, "@odata.nextLink", number)
            yield number, page, next_link
            if next_link is None:
                return
            url, params = next_link, None

    def _params(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.resource.server_select:
            params["$select"] = ",".join(self.select)
        if self.resource.top and self.options.get("page_size"):
            params["$top"] = int(self.options["page_size"])
        if self.resource.path.endswith("/calendarView/delta"):
            params.update(_window(self.options))
        return params

    def _get(self, url: str, params: dict[str, Any] | None) -> dict[str, Any]:
        size = self.options.get("page_size")
        if self.resource.top or not size:
            document, _ = self.client.get_json(url, params)
        else:  # page size by header; get_json takes none, so parse here
            headers = {"Prefer": f"odata.maxpagesize={int(size)}"}
            response = self.client.request("GET", url, params=params, headers=headers)
            document = parse_json(response, f"GET {redact(url)}")
        if not (isinstance(document, dict) and isinstance(document.get("value"), list)):
            raise FatalSourceError(
                f"{self.where}: GET {redact(url)}: the answer has no "
                "`value` list (not a Graph collection)"
            )
        return document

    def _link(self, page: dict[str, Any], key: str, number: int) -> str:
        link = page.get(key)
        if not isinstance(link, str) or not link:
            raise FatalSourceError(
                f"{self.where}: page {number} has neither @odata.nextLink nor @odata.deltaLink"
            )
        return self.client.strip_auth_params(link)

    def _changes(
        self, page: dict[str, Any], number: int
    ) -> tuple[list[dict[str, Any]], list[str], list[Rejected]]:
        """Records, removed ids and unreadable items of a page; a repeated id: the last wins."""
        latest: dict[str, dict[str, Any]] = {}
        rejected = []
        for index, item in enumerate(page["value"]):
            if not (isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"]):
                excerpt = orjson.dumps(item).decode()[:200]
                rejected.append(
                    Rejected("an item without an id", excerpt, f"page {number} item {index}")
                )
                continue
            latest.pop(item["id"], None)
            latest[item["id"]] = item
        # "@removed" reason "deleted" is gone; "changed" left the app's scope: gone for us too.
        deleted = [i for i, item in latest.items() if "@removed" in item]
        records = [self._project(item) for item in latest.values() if "@removed" not in item]
        return records, deleted, rejected

    def _project(self, item: dict[str, Any]) -> dict[str, Any]:
        keep = {"id", "@odata.etag", *self.select}
        return {key: value for key, value in item.items() if key in keep}


def _fingerprint(record: Mapping[str, Any]) -> str:
    content = {k: v for k, v in record.items() if not k.startswith("@odata.")}
    digest = hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()[:FINGERPRINT_CHARS]


def _short(source_id: str) -> str:
    return hashlib.sha256(source_id.encode()).hexdigest()[:SEEN_CHARS]


# ---------------------------------------------------------------- writing


class _Writer:
    """Sends a push as $batch requests of at most 20, retrying throttled items."""

    def __init__(self, client: HttpClient, where: str, options: Mapping[str, Any]) -> None:
        self.client, self.where, self.options = client, where, options
        self.resource = RESOURCES[options["resource"]]
        if self.resource.write_permission is None:
            writable = ", ".join(k for k, r in RESOURCES.items() if r.write_permission)
            raise FatalSourceError(
                f"{where}: Graph {options['resource']} are read-only here; push accepts {writable}"
            )
        self.collection = self.resource.url(options)
        self.key = str(options.get("push_key") or self.resource.push_key)

    def push(self, records: list[dict[str, Any]]) -> None:
        """Write every record; raise naming every record Graph refused (the rest are written)."""
        writes, rejected = self._plan(records)
        failures = self._send(writes)
        rejected += [Rejected(_first_line(f.error), "", f.write.position) for f in failures]
        if not rejected:
            return
        listed = "; ".join(f"{r.position}: {r.reason}" for r in rejected[:10])
        message = f"{self.where}: Graph refused {len(rejected)} of {len(records)} records: {listed}"
        if (
            failures
            and len(failures) == len(rejected)
            and all(isinstance(f.error, RetriableSourceError) for f in failures)
        ):
            raise RetriableSourceError(message)
        raise PushRejected(message, rejected)

    def _plan(self, records: list[dict[str, Any]]) -> tuple[list[Write], list[Rejected]]:
        """PATCH records with an id or a known key; POST the rest; reject keyless new ones."""
        existing = self._existing() if any(not r.get("id") for r in records) else {}
        writes: dict[str, Write] = {}  # by target, so a repeated key is written once
        rejected = []
        for index, record in enumerate(records):
            position = f"record {index}"
            body = self._body(record)
            key = _key_of(record, self.key)
            source_id = record.get("id") or (existing.get(key) if key else None)
            if source_id:
                write = self._patch(f"{position} (id {source_id})", str(source_id), body)
                writes[write.url] = write
            elif key:
                writes[f"new:{key}"] = Write(
                    f"{position} (new)", "POST", self.collection, body, key
                )
            else:
                reason = f"a new record (no id) needs its key {self.key} to be pushed idempotently"
                rejected.append(Rejected(reason, "", position))
        return list(writes.values()), rejected

    def _patch(self, position: str, source_id: str, body: dict[str, Any]) -> Write:
        url = f"{self.collection}/{quote(source_id, safe='')}"
        return Write(position, "PATCH", url, body)

    def _replan(self, writes: list[Write]) -> list[Write]:
        """Before resending POSTs, look their keys up again: a POST may have landed after all."""
        if not any(w.method == "POST" for w in writes):
            return writes
        existing = self._existing()
        return [
            self._patch(w.position, existing[w.key], w.body)
            if w.method == "POST" and w.key in existing
            else w
            for w in writes
        ]

    def _body(self, record: Mapping[str, Any]) -> dict[str, Any]:
        # Graph dedupes new records by their push_key, not by the hub's idempotency key.
        skip = ("id", IDEMPOTENCY_KEY)
        body = {k: v for k, v in record.items() if k not in skip and not k.startswith("@odata.")}
        if self.resource.odata_type:
            body["@odata.type"] = self.resource.odata_type
        return body

    def _existing(self) -> dict[str, str]:
        """Key -> id of the items already in the collection (to find earlier POSTs)."""
        select = ["id", self.key.split(".")[0]]
        reader = _Reader(self.client, self.where, {**self.options, "select": select})
        found: dict[str, str] = {}
        for record in reader.everything():
            key = _key_of(record, self.key)
            if key:
                found[key] = record["id"]
        return found

    def _send(self, writes: list[Write]) -> list[Failure]:
        """Send in chunks of 20; retry throttled items with backoff; the rest are final."""
        pending, final = writes, list[Failure]()
        for attempt in range(self.client.retries + 1):
            retry: list[Failure] = []
            for start in range(0, len(pending), MAX_BATCH_REQUESTS):
                for failure in self._batch(pending[start : start + MAX_BATCH_REQUESTS]):
                    retriable = isinstance(failure.error, RetriableSourceError)
                    (retry if retriable else final).append(failure)
            if not retry or attempt == self.client.retries:
                return final + retry
            time.sleep(self._delay(attempt, retry))
            pending = self._replan([f.write for f in retry])
        return final  # pragma: no cover - the loop always returns

    def _delay(self, attempt: int, retry: list[Failure]) -> float:
        waits = [getattr(f.error, "retry_after", None) for f in retry]
        asked = max((w for w in waits if w is not None), default=None)
        delay = asked if asked is not None else self.client.backoff * 2**attempt
        log.warning(
            "%s: %d requests of the $batch were throttled or failed (429/5xx); "
            "sending them again in %.2f s",
            self.where,
            len(retry),
            min(delay, self.client.max_backoff),
        )
        return min(delay, self.client.max_backoff)

    def _batch(self, writes: list[Write]) -> list[Failure]:
        """POST one $batch; the failures among its answers, classified like any response."""
        payload = {
            "requests": [
                {
                    "id": str(i),
                    "method": w.method,
                    "url": w.url,
                    "body": w.body,
                    "headers": {"Content-Type": "application/json"},
                }
                for i, w in enumerate(writes)
            ]
        }
        response = self.client.request("POST", "$batch", json=payload)
        document = parse_json(response, f"{self.where}: POST $batch")
        answers = {str(a.get("id")): a for a in _answers(document, self.where)}
        failures = []
        for i, write in enumerate(writes):
            error = _answer_error(write, answers.get(str(i)))
            if error is not None:
                failures.append(Failure(write, error))
        return failures


def _key_of(record: Mapping[str, Any], path: str) -> str | None:
    """The client-side key at a dotted path (list indexes allowed), case-folded."""
    value: Any = record
    for part in path.split("."):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, Mapping):
            value = value.get(part)
        else:
            return None
    return str(value).strip().casefold() if value not in (None, "") else None


def _answers(document: Any, where: str) -> list[dict[str, Any]]:
    answers = document.get("responses") if isinstance(document, dict) else None
    if not isinstance(answers, list):
        raise FatalSourceError(f"{where}: the $batch answer has no `responses` list")
    return [a for a in answers if isinstance(a, dict)]


def _answer_error(write: Write, answer: dict[str, Any] | None) -> SourceError | None:
    """The error of one $batch answer, by the same classification as a whole response."""
    what = f"{write.position}: {write.method} {redact(write.url)}"
    if answer is None:
        return RetriableSourceError(f"{what}: no answer in the $batch response")
    return error_for(what, _as_response(answer))


def _as_response(answer: Mapping[str, Any]) -> requests.Response:
    """A $batch answer as a requests.Response, so `error_for` classifies it."""
    response = requests.Response()
    try:
        response.status_code = int(answer.get("status", 0))
    except (TypeError, ValueError):
        response.status_code = 502
    try:
        response.reason = http.HTTPStatus(response.status_code).phrase
    except ValueError:
        response.reason = ""
    response.headers = CaseInsensitiveDict(answer.get("headers") or {})
    body = answer.get("body")
    response._content = orjson.dumps(body) if body is not None else b""
    return response
