"""Fake REST islands on loopback (Respa, Linked Events, Koha, Open311, feedback) with faults.

Each island is a real `ThreadingHTTPServer` on 127.0.0.1 (port 0) speaking the shape of a
real municipal interface, so the connector's real HTTP code runs against it:

- Respa / Varaamo reservations: `{count, next, previous, results}`, `page`/`page_size`,
  `modified_after` (inclusive), cancelled reservations stay with `state: cancelled`; a child
  resource `/v1/reservation/{id}/attendees/`; POST honouring `Idempotency-Key`. Bearer token.
- Linked Events signups: `{meta: {count, next, previous}, data}`, `last_modified_since`
  (inclusive), deleted signups only with `show_deleted=true` as `{id, deleted: true, ...}`.
  API key in the `apikey` header.
- Koha patrons: a top-level list, RFC 8288 `Link` headers and `X-Total-Count`, `_page` /
  `_per_page`, `updated_since` (exclusive); deleted patrons listed at `/api/v1/deleted_patrons`.
  OAuth2 client credentials from `/api/v1/oauth/token`.
- Open311 service requests: a top-level list, `offset`/`limit`, `updated_after`, `api_key` in
  the query.
- Feedback: `{items, next_cursor}` keyset pages, a numeric `version` cursor. HTTP Basic.

`Faults` make a seeded fraction of requests fail: 429 with Retry-After in seconds or as an
HTTP-date, 503, a connection reset, a truncated JSON body, a slow answer. Two more kinds are
not in `FAULT_KINDS` (whose mix other suites rely on) but in `EVERY_FAULT_KIND`: `timeout`
(the island takes the request and does not answer for `hang_seconds`, then drops it, so a
client with a shorter read timeout gives up) and `drip` (the answer arrives whole, but in
small pieces with pauses between them). `Faults.injected` counts the faults dealt, by kind;
`cycle=True` deals the kinds in turn rather than drawing each at random.
"""

from __future__ import annotations

import base64
import collections
import datetime as dt
import email.utils
import itertools
import random
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson

from connectors.testing import Island, IslandFactory

FAULT_KINDS = ("429", "429_date", "503", "reset", "truncate", "slow")
EVERY_FAULT_KIND = (*FAULT_KINDS, "timeout", "drip")
TOKEN = "respa-token-3f9c2a7d1e"
API_KEY = "le-key-8b1d44e0aa"
OPEN311_KEY = "o311-key-51c0de77"
CLIENT_ID = "islandhub"
CLIENT_SECRET = "koha-secret-9e8d7c6b5a"
BASIC_USER, BASIC_PASSWORD = "hub", "feedback-pass-2c4e6a"
EPOCH = dt.datetime(2024, 5, 1, 5, 0, 0, tzinfo=dt.UTC)
HELSINKI = dt.timezone(dt.timedelta(hours=3))
# Connection options that keep retries fast in tests.
FAST_RETRIES = {"retries": 8, "backoff": 0.01, "max_backoff": 0.05, "timeout": [2, 2]}


# ---------------------------------------------------------------- faults


@dataclass
class Faults:
    """Which requests fail and how: a seeded fraction `rate` of them, of the given kinds."""

    rate: float = 0.0
    kinds: tuple[str, ...] = ()
    seed: int = 11
    retry_after: int = 0  # seconds in Retry-After (also the HTTP-date's distance)
    slow_seconds: float = 0.02
    hang_seconds: float = 1.0  # "timeout": how long the island sits on a request, unanswered
    drip_pieces: int = 8  # "drip": the answer in this many pieces ...
    drip_seconds: float = 0.01  # ... with this pause before each
    # True: the kinds take turns (from a seeded first one) instead of a random draw each, so
    # every kind is dealt once enough requests fail, however the requests are timed.
    cycle: bool = False
    injected: collections.Counter[str] = field(
        default_factory=collections.Counter, init=False, repr=False
    )
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _turn: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        if self.cycle and self.kinds:
            self._turn = self._rng.randrange(len(self.kinds))

    def pick(self) -> str | None:
        """The fault this request suffers, or None."""
        if not self.kinds or self.rate <= 0:
            return None
        with self._lock:
            if self._rng.random() >= self.rate:
                return None
            if self.cycle:
                kind = self.kinds[self._turn % len(self.kinds)]
                self._turn += 1
            else:
                kind = self._rng.choice(self.kinds)
            self.injected[kind] += 1
            return kind


def always(kind: str, **options: Any) -> Faults:
    """Every request fails with `kind`."""
    return Faults(rate=1.0, kinds=(kind,), **options)


# ---------------------------------------------------------------- records


class Clock:
    """The island's time: every change happens one second after the previous one."""

    def __init__(self) -> None:
        self.now = EPOCH
        self._lock = threading.Lock()

    def tick(self) -> dt.datetime:
        """Advance one second and return the new time."""
        with self._lock:
            self.now += dt.timedelta(seconds=1)
            return self.now


def parse_time(value: str) -> dt.datetime:
    """A filter parameter as an aware datetime (naive values are UTC)."""
    when = dt.datetime.fromisoformat(value)
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


class Table:
    """One resource's records in id order, each with the time it last changed."""

    def __init__(
        self,
        clock: Clock,
        make: Callable[[int], dict[str, Any]],
        *,
        id_field: str,
        modified_field: str,
        stamp: Callable[[dt.datetime], Any],
    ) -> None:
        self.clock, self.make = clock, make
        self.id_field, self.modified_field, self.stamp = id_field, modified_field, stamp
        self.rows: dict[str, dict[str, Any]] = {}
        self.when: dict[str, dt.datetime] = {}
        self.tombstones: list[dict[str, Any]] = []
        self.version = 0
        self._numbers = itertools.count(1)
        self._lock = threading.RLock()
        self._cache: dict[Any, list[dict[str, Any]]] = {}

    def add(self, count: int, *, per_tick: int = 1, **fields: Any) -> list[str]:
        """Add `count` records (`per_tick` share a timestamp); their ids."""
        ids = []
        with self._lock:
            when = self.clock.now
            for index in range(count):
                if index % per_tick == 0:
                    when = self.clock.tick()
                record = {**self.make(next(self._numbers)), **fields}
                ids.append(self._put(record, when))
        return ids

    def insert(self, record: dict[str, Any]) -> dict[str, Any]:
        """Store a pushed record under a new id."""
        with self._lock:
            number = next(self._numbers)
            stored = {**record, self.id_field: self.make(number)[self.id_field]}
            self._put(stored, self.clock.tick())
            return stored

    def touch(self, key: str, **changes: Any) -> None:
        """Change a record (and its modification time)."""
        with self._lock:
            self._put({**self.rows[key], **changes}, self.clock.tick())

    def remove(self, key: str, tombstone: Callable[[str, Any], dict[str, Any]]) -> None:
        """Hard-delete a record, leaving a tombstone."""
        with self._lock:
            del self.rows[key], self.when[key]
            self.tombstones.append(tombstone(key, self.stamp(self.clock.tick())))
            self.version += 1

    def _put(self, record: dict[str, Any], when: dt.datetime) -> str:
        key = str(record[self.id_field])
        record[self.modified_field] = self.stamp(when)
        self.rows[key], self.when[key] = record, when
        self.version += 1
        return key

    def select(
        self, since: dt.datetime | None, *, strict: bool = False,
        keep: Callable[[dict[str, Any]], bool] | None = None,
    ) -> list[dict[str, Any]]:
        """Records changed since `since` (inclusive unless strict), in id order; cached."""
        cache_key = (since, strict, keep, self.version)
        with self._lock:
            if cache_key not in self._cache:
                self._cache = {cache_key: self._select(since, strict, keep)}
            return self._cache[cache_key]

    def _select(
        self, since: dt.datetime | None, strict: bool,
        keep: Callable[[dict[str, Any]], bool] | None,
    ) -> list[dict[str, Any]]:
        rows = []
        for key, record in self.rows.items():
            when = self.when[key]
            if since is not None and (when <= since if strict else when < since):
                continue
            if keep is None or keep(record):
                rows.append(record)
        return rows


GIVEN = ["Aino", "Eino", "Karin", "Björn", "Liisa", "Matti", "Åsa", "Väinö", "Elin", "Onni"]
FAMILY = ["Korhonen", "Lindqvist", "Mäkinen", "Holmberg", "Virtanen", "Sjöberg", "Laine"]
STREETS = ["Sibbovägen", "Kirkkotie", "Jussaksentie", "Mannerheimintie", "Strandvägen"]
POSTAL = [("04130", "Sipoo"), ("04150", "Martinkylä"), ("01190", "Box"), ("04240", "Talma")]


def _person(n: int) -> dict[str, Any]:
    given, family = GIVEN[n % len(GIVEN)], FAMILY[(n // 3) % len(FAMILY)]
    zip_code, city = POSTAL[n % len(POSTAL)]
    return {
        "given": given, "family": family, "email": f"{given}.{family}{n}@example.fi".lower(),
        "phone": f"+35840{n:07d}", "street": f"{STREETS[n % len(STREETS)]} {n % 90 + 1}",
        "zip": zip_code, "city": city,
    }


def respa_reservation(n: int) -> dict[str, Any]:
    """A Respa-shaped reservation (12 fields with `modified`)."""
    p = _person(n)
    begin = EPOCH + dt.timedelta(days=n % 60, hours=n % 10)
    return {
        "id": n, "resource": f"res-{n % 7}", "begin": begin.isoformat(),
        "end": (begin + dt.timedelta(hours=2)).isoformat(), "state": "confirmed",
        "reserver_name": f"{p['given']} {p['family']}", "reserver_email_address": p["email"],
        "reserver_phone_number": p["phone"], "reserver_address_street": p["street"],
        "reserver_address_zip": p["zip"], "reserver_address_city": p["city"],
    }


def respa_attendee(n: int) -> dict[str, Any]:
    """An attendee of a reservation."""
    p = _person(n + 500)
    return {"id": f"A{n}", "name": f"{p['given']} {p['family']}", "email": p["email"],
            "cancelled": False, "reservation": 1}


def linked_signup(n: int) -> dict[str, Any]:
    """A Linked-Events-shaped signup."""
    p = _person(n + 1000)
    return {
        "id": n, "registration": 42, "first_name": p["given"], "last_name": p["family"],
        "email": p["email"], "phone_number": p["phone"], "street_address": p["street"],
        "zipcode": p["zip"], "city": p["city"], "native_language": "sv" if n % 3 else "fi",
        "presence_status": "not_present", "user_consent": n % 2 == 0,
    }


def koha_patron(n: int) -> dict[str, Any]:
    """A Koha-shaped patron."""
    p = _person(n + 2000)
    return {
        "patron_id": n, "cardnumber": f"2{n:09d}", "firstname": p["given"],
        "surname": p["family"], "email": p["email"], "phone": p["phone"],
        "address": p["street"], "postal_code": p["zip"], "city": p["city"],
        "library_id": "SIPOO", "category_id": "PT",
    }


def open311_request(n: int) -> dict[str, Any]:
    """An Open311 GeoReport v2 service request."""
    p = _person(n + 3000)
    return {
        "service_request_id": f"SR-{n}", "status": "open", "service_code": "172",
        "service_name": "Katuvalo", "description": "Lampa trasig", "first_name": p["given"],
        "last_name": p["family"], "email": p["email"], "phone": p["phone"],
        "address": f"{p['street']}, {p['city']}", "zipcode": p["zip"],
    }


def feedback_item(n: int) -> dict[str, Any]:
    """A feedback item with a numeric version."""
    p = _person(n + 4000)
    return {"uuid": f"fb-{n:05d}", "sender": p["email"], "text": "Tack!", "topic": "parks"}


def stamp_helsinki(when: dt.datetime) -> str:
    """Respa style: local time with offset and microseconds."""
    return when.astimezone(HELSINKI).isoformat(timespec="microseconds")


def stamp_z(when: dt.datetime) -> str:
    """Linked Events style: UTC with Z."""
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def stamp_offset(when: dt.datetime) -> str:
    """Koha / Open311 style: seconds with an explicit offset."""
    return when.astimezone(HELSINKI).isoformat(timespec="seconds")


def stamp_version(when: dt.datetime) -> int:
    """A numeric version: seconds since the island's epoch."""
    return int((when - EPOCH).total_seconds())


# ---------------------------------------------------------------- server


@dataclass
class Reply:
    """What a route answers."""

    status: int = 200
    document: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    length: bool = True  # False: no Content-Length, the body ends when the connection closes


@dataclass
class Request:
    """What a route gets."""

    method: str
    path: str
    query: dict[str, str]
    headers: Any
    body: bytes
    match: re.Match[str]
    base: str  # scheme://host:port the client used


Route = tuple[str, re.Pattern[str], bool, Callable[[Request], Reply]]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One write per answer and no Nagle: otherwise keep-alive costs 40 ms a request.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self.server.island.handle(self, "GET")

    def do_POST(self) -> None:
        self.server.island.handle(self, "POST")

    def do_PUT(self) -> None:
        self.server.island.handle(self, "PUT")

    def do_PATCH(self) -> None:
        self.server.island.handle(self, "PATCH")

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    island: IslandServer


class IslandServer:
    """A fake island: routes, an auth rule, faults, a push log and an OAuth2 token endpoint."""

    def __init__(self, auth: dict[str, Any] | None = None, faults: Faults | None = None) -> None:
        self.auth = auth
        self.faults = faults or Faults()
        self.clock = Clock()
        self.routes: list[Route] = []
        self.requests = 0
        self.seen: list[tuple[str, str, dict[str, str]]] = []  # method, path, headers
        self.token_requests = 0
        self.issued: set[str] = set()
        self.pushed: list[dict[str, Any]] = []
        self.idempotent: dict[str, Reply] = {}
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self.route("POST", r"/api/v1/oauth/token", self.token, protected=False)

    # -- lifecycle
    def start(self) -> IslandServer:
        """Serve on 127.0.0.1 on a free port, in a daemon thread."""
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.island = self
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> IslandServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The server's base URL."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def route(
        self, method: str, pattern: str, func: Callable[[Request], Reply], *, protected: bool = True
    ) -> None:
        """Answer `method` on paths matching `pattern` with `func`."""
        self.routes.append((method, re.compile(pattern + r"/?$"), protected, func))

    # -- handling
    def handle(self, handler: _Handler, method: str) -> None:
        """Serve one request: fault, route, auth, answer."""
        with self._lock:
            self.requests += 1
            self.seen.append((method, handler.path, dict(handler.headers.items())))
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        faults = self.faults
        fault = faults.pick()
        if fault in ("reset", "timeout"):
            drop(handler, fault, faults)
            return
        if fault == "slow":
            time.sleep(faults.slow_seconds)
        reply = self._fault_reply(fault) or self._dispatch(handler, method, body)
        drip = faults if fault == "drip" else None
        _send(handler, reply, truncate=fault == "truncate", drip=drip)

    def _fault_reply(self, fault: str | None) -> Reply | None:
        seconds = self.faults.retry_after
        if fault == "429":
            return Reply(429, {"detail": "slow down"}, {"Retry-After": str(seconds)})
        if fault == "429_date":
            date = email.utils.formatdate(time.time() + seconds, usegmt=True)
            return Reply(429, {"detail": "slow down"}, {"Retry-After": date})
        if fault == "503":
            return Reply(503, raw=b"<html><body><h1>503 Service Unavailable</h1></body></html>",
                         headers={"Content-Type": "text/html"})
        return None

    def _dispatch(self, handler: _Handler, method: str, body: bytes) -> Reply:
        parts = urlsplit(handler.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        for verb, pattern, protected, func in self.routes:
            match = pattern.match(parts.path)
            if verb != method or match is None:
                continue
            if protected and not self.authorized(handler, query):
                return Reply(401, {"detail": "Authentication credentials were not provided."})
            base = f"http://{handler.headers.get('Host')}"
            return func(Request(method, parts.path, query, handler.headers, body, match, base))
        return Reply(404, {"detail": "Not found."})

    def authorized(self, handler: _Handler, query: dict[str, str]) -> bool:
        """Does the request carry the island's credentials?"""
        auth, header = self.auth, handler.headers.get("Authorization", "")
        if auth is None:
            return True
        kind = auth["type"]
        if kind == "bearer":
            return header == f"Bearer {auth['token']}"
        if kind == "basic":
            pair = f"{auth['username']}:{auth['password']}".encode()
            return header == "Basic " + base64.b64encode(pair).decode()
        if kind == "api_key" and auth.get("in") == "query":
            return query.get(auth["name"]) == auth["value"]
        if kind == "api_key":
            return handler.headers.get(auth["name"]) == auth["value"]
        return header.removeprefix("Bearer ") in self.issued

    def token(self, request: Request) -> Reply:
        """OAuth2 client credentials grant."""
        form = dict(parse_qsl(request.body.decode()))
        with self._lock:
            self.token_requests += 1
        if form.get("grant_type") != "client_credentials":
            return Reply(400, {"error": "unsupported_grant_type"})
        if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            return Reply(401, {"error": "invalid_client"})
        token = f"koha-access-{self.token_requests}-{random.randrange(1 << 30):08x}"
        self.issued.add(token)
        return Reply(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})

    def revoke_tokens(self) -> None:
        """Make every issued OAuth2 token invalid (as if expired early)."""
        self.issued.clear()

    def push(self, request: Request, table: Table) -> Reply:
        """Create a record from a pushed body; a repeated Idempotency-Key changes nothing."""
        key = request.headers.get("Idempotency-Key")
        with self._lock:
            if key and key in self.idempotent:
                return self.idempotent[key]
            stored = table.insert(orjson.loads(request.body))
            self.pushed.append(stored)
            reply = Reply(201, stored)
            if key:
                self.idempotent[key] = reply
            return reply


def _send(
    handler: _Handler, reply: Reply, *, truncate: bool = False, drip: Faults | None = None
) -> None:
    body = reply.raw if reply.raw is not None else orjson.dumps(reply.document)
    handler.send_response(reply.status)
    headers = {"Content-Type": "application/json", **reply.headers}
    for name, value in headers.items():
        handler.send_header(name, value)
    if reply.length:
        handler.send_header("Content-Length", str(len(body)))
    if truncate or not reply.length:
        handler.send_header("Connection", "close")
        handler.close_connection = True
    if truncate:
        body = body[: len(body) // 2]
    handler.end_headers()
    if drip is not None:
        write_dripping(handler, body, drip)
    else:
        handler.wfile.write(body)


def _reset(handler: BaseHTTPRequestHandler) -> None:
    # SO_LINGER 0: closing sends a TCP reset instead of a clean FIN.
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.close_connection = True


def drop(handler: BaseHTTPRequestHandler, fault: str, faults: Faults) -> None:
    """A request that gets no answer: reset at once, or ("timeout") after `hang_seconds`."""
    if fault == "timeout":
        time.sleep(faults.hang_seconds)
    _reset(handler)


def write_dripping(handler: BaseHTTPRequestHandler, body: bytes, faults: Faults) -> None:
    """Write the headers already buffered, then `body` in pieces with a pause before each."""
    handler.wfile.flush()
    size = max(1, -(-len(body) // max(1, faults.drip_pieces)))
    for start in range(0, len(body), size):
        time.sleep(faults.drip_seconds)
        handler.wfile.write(body[start:start + size])
        handler.wfile.flush()


def page_links(request: Request, page: int, size: int, total: int, names: tuple[str, str]
               ) -> tuple[str | None, str | None]:
    """Absolute next and previous URLs of a page-numbered listing."""
    def url(number: int) -> str:
        query = {**request.query, names[0]: str(number), names[1]: str(size)}
        return f"{request.base}{request.path}?{urlencode(query)}"

    after = url(page + 1) if page * size < total else None
    before = url(page - 1) if page > 1 else None
    return after, before


def _since(request: Request, name: str) -> dt.datetime | None:
    value = request.query.get(name)
    return parse_time(value) if value else None


# ---------------------------------------------------------------- shapes


class RespaIsland(IslandServer):
    """Respa reservations with attendees; bearer token."""

    def __init__(self, faults: Faults | None = None, records: int = 24, per_tick: int = 3) -> None:
        super().__init__({"type": "bearer", "token": TOKEN}, faults)
        self.reservations = Table(self.clock, respa_reservation, id_field="id",
                                  modified_field="modified", stamp=stamp_helsinki)
        self.attendees = Table(self.clock, respa_attendee, id_field="id",
                               modified_field="modified", stamp=stamp_helsinki)
        self.reservations.add(records, per_tick=per_tick)
        for number in range(1, min(records, 6) + 1):
            self.attendees.add(2, reservation=number)
        self.route("GET", r"/v1/reservation", self.list_reservations)
        self.route("POST", r"/v1/reservation", lambda r: self.push(r, self.reservations))
        self.route("GET", r"/v1/reservation/(?P<id>\d+)/attendees", self.list_attendees)

    def list_reservations(self, request: Request) -> Reply:
        """DRF page of reservations changed since `modified_after`."""
        rows = self.reservations.select(_since(request, "modified_after"))
        return drf_page(request, rows)

    def list_attendees(self, request: Request) -> Reply:
        """DRF page of one reservation's attendees."""
        parent = int(request.match["id"])
        rows = [a for a in self.attendees.rows.values() if a["reservation"] == parent]
        return drf_page(request, rows)

    def add_attendees(self, count: int) -> list[str]:
        """New attendees of reservation 1 (which changes the reservation too)."""
        ids = self.attendees.add(count, reservation=1)
        self.reservations.touch("1")
        return ids

    def cancel_attendee(self) -> str:
        """Cancel reservation 1's first attendee (which changes the reservation too)."""
        key = next(k for k, a in self.attendees.rows.items()
                   if a["reservation"] == 1 and not a["cancelled"])
        self.attendees.touch(key, cancelled=True)
        self.reservations.touch("1")
        return key


def drf_page(request: Request, rows: list[dict[str, Any]]) -> Reply:
    """Django REST Framework page: `{count, next, previous, results}`; 404 past the end."""
    page = int(request.query.get("page", 1))
    size = min(int(request.query.get("page_size", 20)), 500)
    start = (page - 1) * size
    if page < 1 or (start >= len(rows) and page != 1):
        return Reply(404, {"detail": "Invalid page."})
    after, before = page_links(request, page, size, len(rows), ("page", "page_size"))
    results = rows[start:start + size]
    return Reply(200, {"count": len(rows), "next": after, "previous": before, "results": results})


class LinkedEventsIsland(IslandServer):
    """Linked Events signups; API key header; soft deletes shown with show_deleted."""

    def __init__(self, faults: Faults | None = None, records: int = 35) -> None:
        super().__init__({"type": "api_key", "name": "apikey", "value": API_KEY}, faults)
        self.signups = Table(self.clock, linked_signup, id_field="id",
                             modified_field="last_modified_time", stamp=stamp_z)
        self.signups.add(records, per_tick=2)
        self.route("GET", r"/linkedevents/v1/signup", self.list_signups)

    def list_signups(self, request: Request) -> Reply:
        """`{meta, data}` page; deleted signups only when asked for."""
        shown = request.query.get("show_deleted") == "true"
        keep = None if shown else _not_deleted
        rows = self.signups.select(_since(request, "last_modified_since"), keep=keep)
        page = int(request.query.get("page", 1))
        size = min(int(request.query.get("page_size", 20)), 100)
        start = (page - 1) * size
        after, before = page_links(request, page, size, len(rows), ("page", "page_size"))
        data = [_deleted_view(r) if r.get("deleted") else r for r in rows[start:start + size]]
        meta = {"count": len(rows), "next": after, "previous": before}
        return Reply(200, {"meta": meta, "data": data})

    def delete(self) -> str:
        """Delete the first live signup (Linked Events keeps a deleted marker)."""
        key = next(k for k, r in self.signups.rows.items() if not r.get("deleted"))
        self.signups.touch(key, deleted=True)
        return key


def _not_deleted(record: dict[str, Any]) -> bool:
    return not record.get("deleted")


def _deleted_view(record: dict[str, Any]) -> dict[str, Any]:
    return {"id": record["id"], "deleted": True, "last_modified_time": record["last_modified_time"]}


class KohaIsland(IslandServer):
    """Koha patrons: Link headers, X-Total-Count, tombstones; OAuth2 client credentials."""

    def __init__(self, faults: Faults | None = None, records: int = 33) -> None:
        super().__init__({"type": "oauth2"}, faults)
        self.patrons = Table(self.clock, koha_patron, id_field="patron_id",
                             modified_field="updated_on", stamp=stamp_offset)
        self.patrons.add(records, per_tick=1)
        self.route("GET", r"/api/v1/patrons", self.list_patrons)
        self.route("GET", r"/api/v1/deleted_patrons", self.list_deleted)

    def list_patrons(self, request: Request) -> Reply:
        """Patrons updated after `updated_since` (exclusive)."""
        rows = self.patrons.select(_since(request, "updated_since"), strict=True)
        return koha_page(request, rows)

    def list_deleted(self, request: Request) -> Reply:
        """Tombstones of deleted patrons after `updated_since` (exclusive)."""
        since = _since(request, "updated_since")
        rows = [t for t in self.patrons.tombstones
                if since is None or parse_time(t["deleted_on"]) > since]
        return koha_page(request, rows)

    def delete(self) -> str:
        """Delete the first patron."""
        key = next(iter(self.patrons.rows))
        self.patrons.remove(key, lambda k, when: {"patron_id": int(k), "deleted_on": when})
        return key


def koha_page(request: Request, rows: list[dict[str, Any]]) -> Reply:
    """A top-level list with RFC 8288 Link and X-Total-Count headers."""
    page = int(request.query.get("_page", 1))
    size = int(request.query.get("_per_page", 20))
    after, before = page_links(request, page, size, len(rows), ("_page", "_per_page"))
    first, _ = page_links(request, 0, size, len(rows), ("_page", "_per_page"))
    links = [f'<{first}>; rel="first"']
    links += [f'<{after}>; rel="next"'] if after else []
    links += [f'<{before}>; rel="prev"'] if before else []
    headers = {"X-Total-Count": str(len(rows)), "Link": ", ".join(links)}
    return Reply(200, rows[(page - 1) * size:page * size], headers)


class Open311Island(IslandServer):
    """Open311 service requests: offset/limit, api_key in the query."""

    def __init__(self, faults: Faults | None = None, records: int = 27) -> None:
        super().__init__({"type": "api_key", "name": "api_key", "in": "query",
                          "value": OPEN311_KEY}, faults)
        self.requests_table = Table(self.clock, open311_request, id_field="service_request_id",
                                    modified_field="updated_datetime", stamp=stamp_offset)
        self.requests_table.add(records, per_tick=4)
        self.route("GET", r"/open311/v2/requests\.json", self.list_requests)

    def list_requests(self, request: Request) -> Reply:
        """A slice of the service requests updated since `updated_after` (inclusive)."""
        rows = self.requests_table.select(_since(request, "updated_after"))
        offset = int(request.query.get("offset", 0))
        limit = int(request.query.get("limit", 50))
        return Reply(200, rows[offset:offset + limit])


class FeedbackIsland(IslandServer):
    """Feedback items: keyset cursor pages, numeric version; HTTP Basic."""

    def __init__(self, faults: Faults | None = None, records: int = 30) -> None:
        super().__init__({"type": "basic", "username": BASIC_USER, "password": BASIC_PASSWORD},
                         faults)
        self.items = Table(self.clock, feedback_item, id_field="uuid",
                           modified_field="version", stamp=stamp_version)
        self.items.add(records, per_tick=2)
        self.route("GET", r"/feedback/api/items", self.list_items)

    def list_items(self, request: Request) -> Reply:
        """Items with version >= `updated_since`, after the opaque cursor."""
        since = int(request.query.get("updated_since", 0))
        rows = [r for r in self.items.rows.values() if r["version"] >= since]
        after = request.query.get("cursor")
        if after:
            last = base64.urlsafe_b64decode(after.encode()).decode()
            rows = [r for r in rows if r["uuid"] > last]
        limit = int(request.query.get("limit", 10))
        page = rows[:limit]
        more = len(rows) > limit
        token = base64.urlsafe_b64encode(page[-1]["uuid"].encode()).decode() if more else None
        return Reply(200, {"items": page, "next_cursor": token})


# ---------------------------------------------------------------- conformance islands


def _fast(**connection: Any) -> dict[str, Any]:
    return {**FAST_RETRIES, **connection}


def respa_island(faults: Faults | None = None) -> IslandFactory:
    """Respa reservations + attendees (child stream), soft deletes, push."""

    @contextmanager
    def start(tmp_path: Path) -> Iterator[Island]:
        with RespaIsland(faults) as server:
            auth = {"type": "bearer", "token": TOKEN}
            yield Island(
                connection=_fast(base_url=f"{server.url}/v1", auth=auth),
                streams=respa_streams(),
                id_field={"reservations": "id", "attendees": "id"},
                add_records=lambda stream, n: (
                    server.add_attendees(n) if stream == "attendees"
                    else server.reservations.add(n)
                ),
                delete_record=lambda stream: (
                    server.cancel_attendee() if stream == "attendees" else _cancel(server)
                ),
                push_stream="reservations",
                push_records=[{**respa_reservation(900 + i), "id": None} for i in range(3)],
                pushed=lambda: list(server.pushed),
                broken_connection=_fast(base_url=f"{server.url}/v1",
                                        auth={"type": "bearer", "token": "wrong-token-000"}),
            )

    return start


def respa_streams(page_size: int = 10) -> dict[str, dict[str, Any]]:
    """Stream options for the Respa island."""
    return {
        "reservations": {
            "path": "/reservation/",
            "params": {"page_size": page_size},
            "records": "results",
            "paginator": {"type": "next_url", "path": "next"},
            "incremental": {"cursor_field": "modified", "param": "modified_after",
                            "lookback": 2},
            "deletes": {"soft_field": "state", "soft_value": "cancelled"},
            "push": {"method": "POST"},
            "batch_size": 10,
        },
        "attendees": {
            "parent": {"stream": "reservations", "path": "/reservation/{id}/attendees/"},
            "records": "results",
            "paginator": {"type": "next_url"},
            "deletes": {"soft_field": "cancelled", "soft_value": True},
            "batch_size": 6,
        },
    }


def _cancel(server: RespaIsland) -> str:
    # The newest one: reservation 1 carries the attendees and must stay live.
    rows = server.reservations.rows
    key = next(k for k in reversed(rows) if rows[k]["state"] != "cancelled")
    server.reservations.touch(key, state="cancelled")
    return key


def linked_events_island(faults: Faults | None = None) -> IslandFactory:
    """Linked Events signups: meta.next, show_deleted soft deletes, API key header."""

    @contextmanager
    def start(tmp_path: Path) -> Iterator[Island]:
        with LinkedEventsIsland(faults) as server:
            auth = {"type": "api_key", "name": "apikey", "value": API_KEY}
            yield Island(
                connection=_fast(base_url=f"{server.url}/linkedevents/v1", auth=auth),
                streams={"signups": {
                    "path": "signup/",
                    "params": {"page_size": 8, "show_deleted": "true"},
                    "records": "data",
                    "paginator": {"type": "next_url", "path": "meta.next"},
                    "incremental": {"cursor_field": "last_modified_time",
                                    "param": "last_modified_since"},
                    "deletes": {"soft_field": "deleted", "soft_value": True},
                }},
                id_field={"signups": "id"},
                add_records=lambda _s, n: server.signups.add(n),
                delete_record=lambda _s: server.delete(),
                broken_connection=_fast(base_url=f"{server.url}/linkedevents/v1",
                                        auth={**auth, "value": "not-the-key"}),
            )

    return start


def koha_auth(server: IslandServer, secret: str = CLIENT_SECRET) -> dict[str, Any]:
    """OAuth2 client-credentials auth block for the Koha island."""
    return {"type": "oauth2_client_credentials", "token_url": f"{server.url}/api/v1/oauth/token",
            "client_id": CLIENT_ID, "client_secret": secret, "scope": "patrons"}


def koha_island(faults: Faults | None = None) -> IslandFactory:
    """Koha patrons: Link headers, tombstones, OAuth2."""

    @contextmanager
    def start(tmp_path: Path) -> Iterator[Island]:
        with KohaIsland(faults) as server:
            yield Island(
                connection=_fast(base_url=f"{server.url}/api/v1", auth=koha_auth(server)),
                streams={"patrons": {
                    "path": "patrons",
                    "params": {"_per_page": 7},
                    "records": "",
                    "id": "patron_id",
                    "paginator": {"type": "link_header"},
                    "incremental": {"cursor_field": "updated_on", "param": "updated_since"},
                    "deletes": {"tombstone": {"path": "deleted_patrons", "records": "",
                                              "id": "patron_id", "cursor_field": "deleted_on"}},
                }},
                id_field={"patrons": "patron_id"},
                add_records=lambda _s, n: server.patrons.add(n),
                delete_record=lambda _s: server.delete(),
                broken_connection=_fast(base_url=f"{server.url}/api/v1",
                                        auth=koha_auth(server, "wrong-secret-1234")),
            )

    return start


def open311_island(faults: Faults | None = None) -> IslandFactory:
    """Open311 requests: offset paginator, key in the query, no deletes."""

    @contextmanager
    def start(tmp_path: Path) -> Iterator[Island]:
        with Open311Island(faults) as server:
            auth = {"type": "api_key", "name": "api_key", "in": "query", "value": OPEN311_KEY}
            yield Island(
                connection=_fast(base_url=f"{server.url}/open311/v2", auth=auth),
                streams={"requests": {
                    "path": "requests.json",
                    "records": "",
                    "id": "service_request_id",
                    "paginator": {"type": "offset", "size": 6},
                    "incremental": {"cursor_field": "updated_datetime", "param": "updated_after",
                                    "lookback": 5},
                    "batch_size": 12,
                }},
                id_field={"requests": "service_request_id"},
                add_records=lambda _s, n: server.requests_table.add(n),
                broken_connection=_fast(base_url=f"{server.url}/open311/v2",
                                        auth={**auth, "value": "nope-nope"}),
            )

    return start


def feedback_island(faults: Faults | None = None) -> IslandFactory:
    """Feedback items: cursor paginator, numeric cursor, HTTP Basic."""

    @contextmanager
    def start(tmp_path: Path) -> Iterator[Island]:
        with FeedbackIsland(faults) as server:
            auth = {"type": "basic", "username": BASIC_USER, "password": BASIC_PASSWORD}
            yield Island(
                connection=_fast(base_url=f"{server.url}/feedback/api", auth=auth),
                streams={"items": {
                    "path": "items",
                    "params": {"limit": 7},
                    "records": "items",
                    "id": "uuid",
                    "paginator": {"type": "cursor", "path": "next_cursor", "param": "cursor"},
                    "incremental": {"cursor_field": "version", "param": "updated_since"},
                }},
                id_field={"items": "uuid"},
                add_records=lambda _s, n: server.items.add(n),
                broken_connection=_fast(base_url=f"{server.url}/feedback/api",
                                        auth={**auth, "password": "wrong-password"}),
            )

    return start
