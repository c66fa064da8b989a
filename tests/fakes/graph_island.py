"""A fake Microsoft Graph and token endpoint on 127.0.0.1: delta, $batch, throttling, expiry.

Besides Graph's own throttling (`throttle`: 429 TooManyRequests with Retry-After, also inside
a $batch), `faults` (tests/fakes/http_island.py `Faults`) break a seeded share of whole HTTP
requests, the token endpoint's too: 429, 503, resets, truncated bodies, slow answers, no
answer within the client's timeout, bodies that drip in.
"""

from __future__ import annotations

import base64
import copy
import email.utils
import itertools
import json
import random
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes.http_island import Faults, drop, write_dripping

VERSION = "/v1.0"
SCOPE = "https://graph.microsoft.com/.default"
MAX_BATCH = 20
Reply = tuple[int, Any, dict[str, str]]  # status, JSON body (None: empty), headers


def graph_error(status: int, code: str, message: str, **headers: str) -> Reply:
    """An error answer shaped like Graph's."""
    return status, {"error": {"code": code, "message": message}}, dict(headers)


@dataclass
class Event:
    """One change in a collection's history: an item's new content, or its removal."""

    seq: int
    id: str
    data: dict[str, Any] | None
    reason: str = "deleted"

    def item(self) -> dict[str, Any]:
        """The item as a delta page shows it."""
        if self.data is None:
            return {"id": self.id, "@removed": {"reason": self.reason}}
        return copy.deepcopy(self.data)


@dataclass
class Collection:
    """Items of one Graph collection and the history of their changes (for delta rounds)."""

    island: GraphIsland
    prefix: str
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)

    def add(self, item: dict[str, Any]) -> str:
        """Store a new item (an id is made when it has none); its id."""
        item = copy.deepcopy(item)
        item.setdefault("id", f"{self.prefix}-{next(self.island.ids)}")
        self._record(item["id"], item)
        return str(item["id"])

    def update(self, item_id: str, **changes: Any) -> bool:
        """Change fields of an item; False when nothing changed."""
        item = {**self.items[item_id], **changes}
        if item == self.items[item_id]:
            return False
        self._record(item_id, item)
        return True

    def remove(self, item_id: str, reason: str = "deleted") -> None:
        """Delete an item ("changed": it left the app's scope, as Graph says for users)."""
        self.items.pop(item_id)
        self.events.append(Event(self.island.tick(), item_id, None, reason))

    def _record(self, item_id: str, item: dict[str, Any]) -> None:
        seq = self.island.tick()
        if "@odata.etag" in item or self.prefix == "task":
            item["@odata.etag"] = f'W/"JzEtVGFzayAg{seq:08d}"'
        self.items[item_id] = item
        self.events.append(Event(seq, item_id, copy.deepcopy(item)))

    def changes(self, since: int, upto: int, repeat: bool) -> list[dict[str, Any]]:
        """A delta round's items: state at `upto` (since 0) or the changes in (since, upto]."""
        events = [e for e in self.events if since < e.seq <= upto]
        if repeat and since:
            return [e.item() for e in events]
        latest: dict[str, Event] = {}
        for event in events:
            latest.pop(event.id, None)
            latest[event.id] = event
        return [e.item() for e in latest.values() if since or e.data is not None]


@dataclass
class Request:
    """One request the fake answered (for tests that look at what the connector sent)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


class GraphIsland:
    """The fake tenant: its app registration, collections, levers and what it was sent."""

    def __init__(self, *, seed: int = 7, throttle: float = 0.0, page_size: int = 100) -> None:
        self.tenant = "contoso-sipoo"
        self.client_id = "11111111-2222-3333-4444-555555555555"
        self.client_secret = "Xq8~sEcr3t.Value_" + secrets.token_hex(8)
        self.page_size = page_size
        self.throttle = throttle
        self.retry_after = "1"
        self.repeat_changes = False  # delta rounds show every change, so an id comes twice
        self.denied: set[str] = set()  # resource kinds answered 403
        self.expired_reply: Reply | None = None
        self.epochs = {"page": 0, "delta": 0}  # tokens of an older epoch are refused
        self.rng = random.Random(seed)
        self.ids = itertools.count(1)
        self.seq = 0
        self.lock = threading.RLock()
        self.access_tokens: set[str] = set()
        self.tokens_issued = 0
        self.issued: list[str] = []
        self.requests: list[Request] = []
        self.batch_sizes: list[int] = []
        self.throttled = 0
        self.lose_post_answers = 0  # POSTs in a $batch that are done but answered 503
        self.faults = Faults()  # transport faults of whole requests (none by default)
        self.users = Collection(self, "user")
        self.contacts: dict[str, Collection] = {}
        self.calendars: dict[str, Collection] = {}
        self.customers: dict[str, Collection] = {}
        self.appointments: dict[str, Collection] = {}
        self.tasks: dict[str, Collection] = {}
        self.base_url = ""
        self.token_url = ""

    # ------------------------------------------------------------ levers

    def tick(self) -> int:
        """The next change number."""
        self.seq += 1
        return self.seq

    def collection(self, kind: str, owner: str) -> Collection:
        """The collection of a mailbox, business or plan (made on first use)."""
        shelf: dict[str, Collection] = getattr(self, kind)
        prefix = {"contacts": "contact", "calendars": "event", "customers": "customer",
                  "appointments": "appointment", "tasks": "task"}[kind]
        return shelf.setdefault(owner, Collection(self, prefix))

    def expire_delta_tokens(
        self, status: int = 410, code: str = "syncStateNotFound", *, pages_only: bool = False
    ) -> None:
        """Every skip token (and, unless `pages_only`, delta token) issued so far is refused."""
        with self.lock:
            for kind in ("page",) if pages_only else ("page", "delta"):
                self.epochs[kind] += 1
            self.expired_reply = graph_error(
                status, code, "The sync state generation is not found or has expired."
            )

    def revoke_access_tokens(self) -> None:
        """Access tokens issued so far answer 401 (as after their expiry)."""
        with self.lock:
            self.access_tokens.clear()

    def connection(self, **extra: Any) -> dict[str, Any]:
        """A connection block that reaches this island (fast retries for tests)."""
        return {
            "base_url": self.base_url,
            "token_url": self.token_url,
            "tenant_id": self.tenant,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "retries": 6,
            "backoff": 0.001,
            "max_backoff": 0.005,
            "timeout": 5,
            **extra,
        }

    def requests_to(self, suffix: str) -> list[Request]:
        """The requests whose path ends with `suffix`."""
        return [r for r in self.requests if r.path.endswith(suffix)]

    # ------------------------------------------------------------ HTTP

    def answer(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        """The reply to one HTTP request."""
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        with self.lock:
            if parts.path == f"/{self.tenant}/oauth2/v2.0/token" and method == "POST":
                return self._token(body)
            if not parts.path.startswith(VERSION + "/"):
                return graph_error(404, "NotFound", "no such endpoint")
            path = parts.path[len(VERSION):]
            self.requests.append(Request(method, path, query, headers))
            refused = self._refused(headers)
            if refused is not None:
                return refused
            if path == "/$batch" and method == "POST":
                return self._batch(json.loads(body or b"{}"), headers)
            return self.route(method, path, query, _json(body), headers)

    def _refused(self, headers: dict[str, str]) -> Reply | None:
        bearer = headers.get("authorization", "").removeprefix("Bearer ")
        if bearer not in self.access_tokens:
            return graph_error(401, "InvalidAuthenticationToken",
                               "Access token has expired or is not yet valid.")
        return self._throttled()

    def _throttled(self) -> Reply | None:
        if self.throttle and self.rng.random() < self.throttle:
            self.throttled += 1
            return graph_error(429, "TooManyRequests", "Too many requests.",
                               **{"Retry-After": self.retry_after})
        return None

    def _token(self, body: bytes) -> Reply:
        form = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}, {}
        if form.get("client_id") != self.client_id:
            return 400, {"error": "unauthorized_client", "error_description":
                         f"AADSTS700016: Application with identifier '{form.get('client_id')}' "
                         f"was not found in the directory '{self.tenant}'."}, {}
        if form.get("client_secret") != self.client_secret:
            return 401, {"error": "invalid_client", "error_codes": [7000215],
                         "error_description": "AADSTS7000215: Invalid client secret provided. "
                         "Ensure the secret being sent in the request is the client secret "
                         "value, not the client secret ID."}, {}
        if form.get("scope") != SCOPE:
            return 400, {"error": "invalid_scope", "error_description":
                         "AADSTS70011: The provided value for the input parameter 'scope' "
                         "is not valid."}, {}
        token = "eyJ0eXAiOiJKV1Qi." + secrets.token_urlsafe(24)
        self.access_tokens.add(token)
        self.issued.append(token)
        self.tokens_issued += 1
        return 200, {"token_type": "Bearer", "expires_in": 3599, "access_token": token}, {}

    def _batch(self, document: dict[str, Any], headers: dict[str, str]) -> Reply:
        requests = document.get("requests", [])
        if len(requests) > MAX_BATCH:
            return graph_error(400, "BadRequest",
                               f"Maximum number of requests in a batch is {MAX_BATCH}.")
        self.batch_sizes.append(len(requests))
        answers = [self._batch_item(item, headers) for item in requests]
        self.rng.shuffle(answers)  # Graph answers in any order
        return 200, {"responses": answers}, {}

    def _batch_item(self, item: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        status, body, extra = self._throttled() or self._inner(item, headers)
        if item.get("method") == "POST" and status < 300 and self.lose_post_answers:
            self.lose_post_answers -= 1
            status, body, extra = graph_error(503, "ServiceUnavailable", "Try again later.")
        answer: dict[str, Any] = {"id": item.get("id"), "status": status,
                                  "headers": {"Content-Type": "application/json", **extra}}
        if body is not None:
            answer["body"] = body
        return answer

    def _inner(self, item: dict[str, Any], headers: dict[str, str]) -> Reply:
        parts = urlsplit("/" + str(item.get("url", "")).lstrip("/"))
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        inner = {k.lower(): str(v) for k, v in (item.get("headers") or {}).items()}
        self.requests.append(Request(str(item.get("method")), parts.path, query, inner))
        return self.route(str(item.get("method", "GET")), parts.path, query,
                          item.get("body"), {**headers, **inner})

    # ------------------------------------------------------------ routes

    def route(
        self, method: str, path: str, query: dict[str, str], body: Any, headers: dict[str, str]
    ) -> Reply:
        """Dispatch a Graph request (outside or inside a $batch)."""
        for verb, pattern, kind, handler in ROUTES:
            match = re.fullmatch(pattern, path)
            if match and verb == method:
                if kind in self.denied:
                    return graph_error(403, "Authorization_RequestDenied",
                                       "Insufficient privileges to complete the operation.")
                args = [unquote(g) for g in match.groups()]
                reply: Reply = handler(self, *args, query=query, body=body, headers=headers)
                return reply
        return graph_error(400, "BadRequest", f"Resource not found for the segment '{path}'.")

    def organization(self, *, query: dict[str, str], **_: Any) -> Reply:
        """GET /organization."""
        org = {"id": "9c1f0a6e-0000-4000-8000-000000000753", "displayName": "Sibbo kommun"}
        return self.page("organization", [org], query)

    def list_users(self, *, query: dict[str, str], **_: Any) -> Reply:
        """GET /users (plain paging; used by check)."""
        return self.page("users", list(self.users.items.values()), query)

    def users_delta(self, *, query: dict[str, str], **_: Any) -> Reply:
        """GET /users/delta."""
        return self.delta("/users/delta", self.users, query)

    def calendar_delta(
        self, user: str, *, query: dict[str, str], headers: dict[str, str], **_: Any
    ) -> Reply:
        """GET /users/{user}/calendarView/delta (needs the window on the first request)."""
        path = f"/users/{user}/calendarView/delta"
        first = "$skiptoken" not in query and "$deltatoken" not in query
        if first and not ("startDateTime" in query and "endDateTime" in query):
            return graph_error(400, "ErrorInvalidParameter",
                               "This request requires a time window specified by the query "
                               "string parameters StartDateTime and EndDateTime.")
        prefer = re.search(r"odata\.maxpagesize=(\d+)", headers.get("prefer", ""))
        if prefer and first:
            query = {**query, "$top": prefer.group(1)}
        return self.delta(path, self.collection("calendars", user), query)

    def calendar_view(self, user: str, *, query: dict[str, str], **_: Any) -> Reply:
        """GET /users/{user}/calendarView."""
        window = (query.get("startDateTime", ""), query.get("endDateTime", "~"))
        items = [e for e in self.collection("calendars", user).items.values()
                 if _in_window(e, window)]
        return self.page(f"/users/{user}/calendarView", items, query)

    def list_of(self, kind: str, select: bool = True) -> Callable[..., Reply]:
        """GET handler of a mailbox's, business's or plan's collection."""

        def handler(owner: str, *, query: dict[str, str], **_: Any) -> Reply:
            if not select and "$select" in query:
                return graph_error(400, "BadRequest", "Query option 'Select' is not allowed.")
            items = list(self.collection(kind, owner).items.values())
            return self.page(f"{kind}/{owner}", items, query)

        return handler

    def create_in(self, kind: str, status: int) -> Callable[..., Reply]:
        """POST handler: a new contact or customer."""

        def handler(owner: str, *, body: Any, **_: Any) -> Reply:
            if not isinstance(body, dict) or "id" in body:
                return graph_error(400, "BadRequest", "Invalid request body.")
            shelf = self.collection(kind, owner)
            item_id = shelf.add({k: v for k, v in body.items() if k != "@odata.type"})
            return status, shelf.items[item_id], {}

        return handler

    def update_in(self, kind: str, status: int) -> Callable[..., Reply]:
        """PATCH handler: change a contact or customer."""

        def handler(owner: str, item_id: str, *, body: Any, **_: Any) -> Reply:
            shelf = self.collection(kind, owner)
            if item_id not in shelf.items:
                return graph_error(404, "ErrorItemNotFound",
                                   "The specified object was not found in the store.")
            shelf.update(item_id, **{k: v for k, v in body.items() if k != "@odata.type"})
            return status, shelf.items[item_id] if status == 200 else None, {}

        return handler

    def update_task(self, task_id: str, *, body: Any, headers: dict[str, str], **_: Any) -> Reply:
        """PATCH /planner/tasks/{id}: only with the current ETag in If-Match."""
        for plan in self.tasks.values():
            if task_id in plan.items:
                if headers.get("if-match") != plan.items[task_id]["@odata.etag"]:
                    return graph_error(412, "PreconditionFailed",
                                       "The If-Match header does not match the current ETag.")
                plan.update(task_id, **body)
                return 204, None, {}
        return graph_error(404, "NotFound", "The requested item is not found.")

    # ------------------------------------------------------------ paging

    def page(self, where: str, items: list[dict[str, Any]], query: dict[str, str]) -> Reply:
        """One page of a plain collection, with @odata.nextLink while more remain."""
        if "$skiptoken" in query:
            state = self._untoken(query["$skiptoken"])
            if state is None:
                return self.expired_reply or graph_error(400, "BadRequest", "bad skiptoken")
        else:
            state = {"o": 0, "top": _int(query.get("$top")), "sel": _fields(query)}
        return self._page(where, items, state, lambda s: ("$skiptoken", s), final=None)

    def delta(self, path: str, shelf: Collection, query: dict[str, str]) -> Reply:
        """One page of a delta round: nextLink with a skiptoken, last one a deltaLink."""
        token = query.get("$skiptoken") or query.get("$deltatoken")
        state = self._untoken(token) if token else self._new_round(query)
        if state is None:
            return self.expired_reply or graph_error(400, "BadRequest", "bad token")
        if "$deltatoken" in query:
            state = {**state, "upto": self.seq, "o": 0}
        items = shelf.changes(state["since"], state["upto"], self.repeat_changes)
        items = [i for i in items if "@removed" in i or _in_window(i, state.get("win"))]
        final = {"since": state["upto"], "sel": state["sel"], "top": state["top"],
                 "win": state.get("win")}
        return self._page(path, items, state, lambda s: ("$skiptoken", s), final=final)

    def _new_round(self, query: dict[str, str]) -> dict[str, Any]:
        window = None
        if "startDateTime" in query:
            window = [query["startDateTime"], query.get("endDateTime", "~")]
        return {"since": 0, "upto": self.seq, "o": 0, "top": _int(query.get("$top")),
                "sel": _fields(query), "win": window}

    def _page(
        self,
        where: str,
        items: list[dict[str, Any]],
        state: dict[str, Any],
        link: Callable[[str], tuple[str, str]],
        final: dict[str, Any] | None,
    ) -> Reply:
        size = state.get("top") or self.page_size
        start = state["o"]
        shown = [_select(i, state.get("sel")) for i in items[start:start + size]]
        body: dict[str, Any] = {"@odata.context": f"{self.base_url}/$metadata#{where}",
                                "value": shown}
        path = where if where.startswith("/") else f"/{where}"
        if start + size < len(items):
            name, token = link(self._token_for({**state, "o": start + size}))
            body["@odata.nextLink"] = f"{self.base_url}{_path_of(path)}?{name}={token}"
        elif final is not None:
            token = self._token_for(final, "delta")
            body["@odata.deltaLink"] = f"{self.base_url}{path}?$deltatoken={token}"
        return 200, body, {}

    def _token_for(self, state: dict[str, Any], kind: str = "page") -> str:
        raw = json.dumps({**state, "e": self.epochs[kind], "k": kind}).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _untoken(self, token: str) -> dict[str, Any] | None:
        try:
            state: dict[str, Any] = json.loads(base64.urlsafe_b64decode(token + "=" * 4))
        except ValueError:
            return None
        return state if state.get("e") == self.epochs.get(state.get("k", "")) else None


def _path_of(where: str) -> str:
    """The real path of a plain collection's `where` (kind/owner) for its nextLink."""
    kind, _, owner = where.strip("/").partition("/")
    paths = {
        "contacts": f"/users/{owner}/contacts",
        "customers": f"/solutions/bookingBusinesses/{owner}/customers",
        "appointments": f"/solutions/bookingBusinesses/{owner}/appointments",
        "tasks": f"/planner/plans/{owner}/tasks",
    }
    return paths.get(kind, where)


ROUTES: list[tuple[str, str, str, Callable[..., Reply]]] = [
    ("GET", r"/organization", "organization", GraphIsland.organization),
    ("GET", r"/users", "users", GraphIsland.list_users),
    ("GET", r"/users/delta", "users", GraphIsland.users_delta),
    ("GET", r"/users/([^/]+)/calendarView/delta", "calendar", GraphIsland.calendar_delta),
    ("GET", r"/users/([^/]+)/calendarView", "calendar", GraphIsland.calendar_view),
]


def _add_collection_routes() -> None:
    shelves = [
        (r"/users/([^/]+)/contacts", "contacts", "contacts", True, 201, 200),
        (r"/solutions/bookingBusinesses/([^/]+)/customers", "customers", "bookings", False,
         201, 204),
        (r"/solutions/bookingBusinesses/([^/]+)/appointments", "appointments", "bookings",
         False, 201, 204),
        (r"/planner/plans/([^/]+)/tasks", "tasks", "planner", False, 201, 204),
    ]
    for path, kind, perm, select, created, patched in shelves:
        ROUTES.append(("GET", path, perm, lambda s, o, k=kind, sel=select, **kw:
                       s.list_of(k, sel)(o, **kw)))
        ROUTES.append(("POST", path, perm, lambda s, o, k=kind, st=created, **kw:
                       s.create_in(k, st)(o, **kw)))
        ROUTES.append(("PATCH", path + r"/([^/]+)", perm, lambda s, o, i, k=kind, st=patched,
                       **kw: s.update_in(k, st)(o, i, **kw)))
    ROUTES.append(("PATCH", r"/planner/tasks/([^/]+)", "planner", GraphIsland.update_task))


_add_collection_routes()


def _json(body: bytes) -> Any:
    return json.loads(body) if body else None


def _int(value: str | None) -> int | None:
    return int(value) if value else None


def _fields(query: dict[str, str]) -> list[str] | None:
    return query["$select"].split(",") if query.get("$select") else None


def _select(item: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    if not fields or "@removed" in item:
        return item
    keep = {"id", "@odata.etag", *fields}
    return {k: v for k, v in item.items() if k in keep}


def _in_window(item: dict[str, Any], window: Any) -> bool:
    if not window:
        return True
    start = str(item.get("start", {}).get("dateTime", ""))
    return bool(window[0][:19] <= start[:19] < window[1][:19])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out separately: no 40 ms stalls
    island: GraphIsland

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        faults = self.island.faults
        fault = faults.pick()
        if fault in ("reset", "timeout"):
            drop(self, fault, faults)
            return
        if fault == "slow":
            time.sleep(faults.slow_seconds)
        status, document, extra = _fault_reply(fault, faults) or self.island.answer(
            self.command, self.path, headers, body
        )
        payload = json.dumps(document).encode() if document is not None else b""
        self.send_response(status)
        if payload:
            self.send_header("Content-Type", "application/json")
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        if fault == "truncate":
            self.send_header("Connection", "close")
            self.close_connection = True
            payload = payload[: len(payload) // 2]
        self.end_headers()
        if fault == "drip":
            write_dripping(self, payload, faults)
        else:
            self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return


def _fault_reply(fault: str | None, faults: Faults) -> Reply | None:
    """Graph's answer to a request the fault refuses (429 or 503), or None."""
    seconds = faults.retry_after
    if fault == "429":
        return graph_error(429, "TooManyRequests", "Too many requests.",
                           **{"Retry-After": str(seconds)})
    if fault == "429_date":
        date = email.utils.formatdate(time.time() + seconds, usegmt=True)
        return graph_error(429, "TooManyRequests", "Too many requests.", **{"Retry-After": date})
    if fault == "503":
        return graph_error(503, "ServiceUnavailable", "The service is temporarily unavailable.")
    return None


@contextmanager
def running_graph(island: GraphIsland | None = None) -> Iterator[GraphIsland]:
    """Serve `island` (or a new one) on 127.0.0.1 while the block runs."""
    island = island or GraphIsland()
    handler = type("GraphHandler", (_Handler,), {"island": island})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    port = server.server_address[1]
    island.base_url = f"http://127.0.0.1:{port}{VERSION}"
    island.token_url = f"http://127.0.0.1:{port}/{island.tenant}/oauth2/v2.0/token"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield island
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------- sample data

GIVEN = ["Aino", "Elias", "Linnea", "Oskar", "Helmi", "Anton", "Saga", "Väinö", "Ebba", "Åke"]
FAMILY = ["Mäkinen", "Öberg", "Virtanen", "Sjöholm", "Nieminen", "Åkerlund", "Lindqvist"]


def person(n: int) -> dict[str, Any]:
    """A resident-like name, email and address for number `n`."""
    given, family = GIVEN[n % len(GIVEN)], FAMILY[n % len(FAMILY)]
    return {
        "given": given,
        "family": family,
        "email": f"{given.lower()}.{family.lower()}{n}@example.fi".translate(
            str.maketrans("äöåÄÖÅ", "aoaAOA")),
        "phone": f"+35840{n:07d}",
        "street": f"Kyrkovägen {n % 90 + 1}",
    }


def user(n: int) -> dict[str, Any]:
    """An Entra ID user with more fields than a stream selects."""
    p = person(n)
    return {
        "displayName": f"{p['given']} {p['family']}", "givenName": p["given"],
        "surname": p["family"], "mail": p["email"], "mobilePhone": p["phone"],
        "businessPhones": [], "streetAddress": p["street"], "postalCode": "04130",
        "city": "Sipoo", "employeeId": f"E{n:05d}", "accountEnabled": True,
        "userPrincipalName": p["email"], "jobTitle": "Kanslist", "officeLocation": "Nikkilä",
    }


def contact(n: int) -> dict[str, Any]:
    """An Outlook contact."""
    p = person(n)
    return {
        "displayName": f"{p['given']} {p['family']}", "givenName": p["given"],
        "surname": p["family"], "mobilePhone": p["phone"], "homePhones": [],
        "businessPhones": [], "emailAddresses": [{"name": p["given"], "address": p["email"]}],
        "homeAddress": {"street": p["street"], "postalCode": "04130", "city": "Sibbo"},
        "personalNotes": "not selected",
    }


def customer(n: int) -> dict[str, Any]:
    """A Bookings customer."""
    p = person(n)
    return {
        "displayName": f"{p['given']} {p['family']}", "emailAddress": p["email"],
        "phones": [{"number": p["phone"], "type": "mobile"}],
        "addresses": [{"street": p["street"], "postalCode": "04130", "city": "Sipoo"}],
    }


def appointment(n: int) -> dict[str, Any]:
    """A Bookings appointment."""
    p = person(n)
    return {
        "serviceName": "Simhallen / Uimahalli", "startDateTime":
        {"dateTime": f"2025-03-{n % 28 + 1:02d}T10:00:00.0000000Z", "timeZone": "UTC"},
        "endDateTime": {"dateTime": f"2025-03-{n % 28 + 1:02d}T11:00:00.0000000Z",
                        "timeZone": "UTC"},
        "customers": [{"name": f"{p['given']} {p['family']}", "emailAddress": p["email"]}],
        "serviceNotes": "not selected",
    }


def event(n: int) -> dict[str, Any]:
    """A calendar event inside January 2025."""
    return {
        "subject": f"Invånarmöte {n}", "start": {"dateTime": f"2025-01-{n % 28 + 1:02d}T09:00:00"
                                                 ".0000000", "timeZone": "UTC"},
        "end": {"dateTime": f"2025-01-{n % 28 + 1:02d}T10:00:00.0000000", "timeZone": "UTC"},
        "organizer": {"emailAddress": {"address": "kanslia@sipoo.fi"}},
        "attendees": [], "location": {"displayName": "Nikkilä"}, "body": {"content": "no"},
    }


def task(n: int) -> dict[str, Any]:
    """A Planner task."""
    return {"title": f"Ring tillbaka {n}", "bucketId": "bucket-1", "percentComplete": 0,
            "assignments": {}, "planId": "plan-1"}


SAMPLES: dict[str, Callable[[int], dict[str, Any]]] = {
    "users": user, "contacts": contact, "calendars": event, "customers": customer,
    "appointments": appointment, "tasks": task,
}
