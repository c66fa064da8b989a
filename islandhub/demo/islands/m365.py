"""Microsoft 365: a Graph-shaped tenant, staff and officials as users, and Bookings customers."""

from __future__ import annotations

import base64
import json
import random
import re
import secrets
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from islandhub.demo.islands.base import HttpIsland
from islandhub.demo.model import Address, Person
from islandhub.demo.noise import (
    adults,
    ascii_name,
    called,
    format_phone,
    maybe_typo,
    messy_email,
)

VERSION = "/v1.0"
TENANT = "sipoo-demo"
CLIENT_ID = "7530c0de-0753-4753-8753-000000000753"
SECRET_NAME = "M365_CLIENT_SECRET"
DEMO_SECRET = "demo-m365-client-secret-753"
SCOPE = "https://graph.microsoft.com/.default"
BUSINESS = "simhallen@sipoo.onmicrosoft.com"
PAGE_SIZE = 100  # Graph's default page of /users
THROTTLE = 0.03  # share of Graph requests answered 429
SWITCHBOARD = "+358 9 2353 6000"
STAFF_TITLES = ("Kanslisti", "Rakennustarkastaja", "Opettaja", "Kirjastonhoitaja", "Controller")
OFFICIAL_TITLE = "Kunnanvaltuutettu / Kommunfullmäktigeledamot"
Reply = tuple[int, Any, dict[str, str]]  # status, JSON body, extra headers


def graph_error(status: int, code: str, message: str, **headers: str) -> Reply:
    """An error answer shaped like Graph's."""
    return status, {"error": {"code": code, "message": message}}, dict(headers)


@dataclass
class Change:
    """One change in the users' history: new content, or a removal."""

    seq: int
    id: str
    item: dict[str, Any] | None
    reason: str = "deleted"

    def shown(self) -> dict[str, Any]:
        """The change as a delta page shows it."""
        if self.item is None:
            return {"id": self.id, "@removed": {"reason": self.reason}}
        return dict(self.item)


class M365Island(HttpIsland):
    """A tenant: token endpoint, /users/delta (paging, deltaLink, @removed), Bookings customers.

    Users are the municipality's staff and elected officials (about 3 % of adults), with
    work email, phones and home address but no national id. Bookings customers are
    residents who booked the swimming hall. A small share of Graph requests is throttled
    (429 with Retry-After 0-1 s). `churn()` changes and removes users, so the next delta
    round has something to report.
    """

    system = "m365"
    title = "Microsoft 365: Graph users delta (@removed, 429) and Bookings customers"
    default_port = 8702

    def prepare(self) -> None:
        """Make the tenant's users and Bookings customers from the population."""
        self.lock = threading.RLock()
        self.seq = 0
        self.users: dict[str, dict[str, Any]] = {}
        self.changes: list[Change] = []
        self.customers: list[dict[str, Any]] = []
        self.tokens: set[str] = set()
        self.throttle = THROTTLE  # share of requests answered 429 (tests raise it)
        self.throttled = 0  # how many were
        self.owner: dict[str, str] = {}  # user id -> person_id
        self._mails: set[str] = set()
        people = adults(self.population)
        for person in self.rng.sample(people, max(3, round(len(people) * 0.03))):
            self._add_user(person, official=self.rng.random() < 0.35)
        for person in [p for p in people if p.email and self.rng.random() < 0.06]:
            self._add_customer(person)
            if self.rng.random() < 0.05:  # registered again with the address typed otherwise
                self._add_customer(person, again=True)
        self.throttle_rng = random.Random(self.rng.random())  # requests do not move the data

    def connection(self) -> dict[str, Any]:
        """The tenant on this run's port (token endpoint and Graph root)."""
        return {
            "base_url": f"{self.base_url}{VERSION}",
            "token_url": f"{self.base_url}/{TENANT}/oauth2/v2.0/token",
            "client_id": CLIENT_ID,
            "client_secret": {"secret": SECRET_NAME},
            "timeout": 10,
            "retries": 6,
            "max_backoff": 2,
        }

    def secrets(self) -> dict[str, str]:
        """The demo app's client secret."""
        return {SECRET_NAME: DEMO_SECRET}

    def handler(self) -> type[BaseHTTPRequestHandler]:
        """Graph's and the token endpoint's HTTP handler."""
        return _GraphHandler

    # --- the tenant's content -------------------------------------------------------------

    @property
    def emitted(self) -> dict[str, int]:
        """Records a first sync of each stream pulls."""
        return {"users": len(self.users), "bookings_customers": len(self.customers)}

    def _new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _record(self, user_id: str, item: dict[str, Any] | None, reason: str = "deleted") -> None:
        self.seq += 1
        if item is None:
            self.users.pop(user_id, None)
        else:
            self.users[user_id] = item
        self.changes.append(Change(self.seq, user_id, item, reason))

    def _add_user(self, person: Person, *, official: bool) -> None:
        user_id = self._new_id()
        given = called(person, self.rng, rate=0.25)
        home = self._home(person)
        show_home = official or self.rng.random() < 0.7  # HR syncs staff's home address
        item = {
            "id": user_id,
            "displayName": maybe_typo(self._display_name(given, person.family_name), self.rng),
            "givenName": given,
            "surname": maybe_typo(person.family_name, self.rng, p=0.01),
            "mail": self._mail(person),
            "mobilePhone": self._mobile(person),
            "businessPhones": [] if official else [SWITCHBOARD],
            "employeeId": None if official else str(self.rng.randint(10_000, 99_999)),
            "jobTitle": OFFICIAL_TITLE if official else self.rng.choice(STAFF_TITLES),
            "streetAddress": home.street_fi if show_home else None,
            "postalCode": home.postal_code if show_home else None,
            "city": home.post_office_fi.title() if show_home else None,
            "accountEnabled": True,
            "userPrincipalName": None,
        }
        item["userPrincipalName"] = item["mail"]
        self._record(user_id, item)
        self.owner[user_id] = person.person_id
        self.add_truth("users", user_id, person.person_id)

    def _display_name(self, given: str, family: str) -> str:
        """Municipal directories often list "Family Given"; newer accounts "Given Family"."""
        return f"{family} {given}" if self.rng.random() < 0.5 else f"{given} {family}"

    def _mail(self, person: Person) -> str:
        """firstname.lastname@sipoo.fi, numbered when the name is taken."""
        base = f"{ascii_name(person.first_name)}.{ascii_name(person.family_name)}"
        mail, number = f"{base}@sipoo.fi", 1
        while mail in self._mails:
            number += 1
            mail = f"{base}{number}@sipoo.fi"
        self._mails.add(mail)
        return mail

    def _mobile(self, person: Person) -> str | None:
        if person.phone is None:
            return None
        return format_phone(person.phone, self.rng)

    def _home(self, person: Person) -> Address:
        if person.former_address and self.rng.random() < 0.2:
            return person.former_address  # the move has not reached HR yet
        return person.address

    def _add_customer(self, person: Person, *, again: bool = False) -> None:
        assert person.email is not None
        home = self._home(person)
        phones = [] if again or not person.phone else [self._phone_entry(person.phone)]
        customer_id = self._new_id()
        item = {
            "id": customer_id,
            "displayName": maybe_typo(f"{called(person, self.rng)} {person.family_name}", self.rng),
            "emailAddress": messy_email(person.email, self.rng) if again else person.email,
            "phones": phones,
            "addresses": [
                {
                    "street": home.street_fi,
                    "postalCode": home.postal_code,
                    "city": home.post_office_fi.title(),
                    "state": "",
                    "countryOrRegion": "Finland",
                    "type": "home",
                }
            ],
        }
        self.customers.append(item)
        self.add_truth("bookings_customers", customer_id, person.person_id)

    def _phone_entry(self, e164: str) -> dict[str, str]:
        return {"number": format_phone(e164, self.rng), "type": "mobile"}

    def churn(self, changed: int = 2, removed: int = 1) -> tuple[list[str], list[str]]:
        """Change some users' phones and remove others; (changed ids, removed ids)."""
        with self.lock:
            ids = sorted(self.users)
            picked = self.rng.sample(ids, min(len(ids), changed + removed))
            for user_id in picked[:changed]:
                number = f"+35850{self.rng.randint(1_000_000, 9_999_999)}"
                self._record(user_id, {**self.users[user_id], "mobilePhone": number})
            for user_id in picked[changed:]:
                self._record(user_id, None, reason=self.rng.choice(("deleted", "changed")))
            return picked[:changed], picked[changed:]

    # --- HTTP -----------------------------------------------------------------------------

    def answer(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        """The reply to one request."""
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        with self.lock:
            if parts.path == f"/{TENANT}/oauth2/v2.0/token" and method == "POST":
                return self._token(body)
            bearer = headers.get("authorization", "").removeprefix("Bearer ")
            if bearer not in self.tokens:
                return graph_error(401, "InvalidAuthenticationToken", "Access token is invalid.")
            if self.throttle_rng.random() < self.throttle:
                self.throttled += 1
                retry = self.throttle_rng.choice(("0", "1"))
                return graph_error(
                    429, "TooManyRequests", "Too many requests.", **{"Retry-After": retry}
                )
            return self._route(method, parts.path.removeprefix(VERSION), query)

    def _route(self, method: str, path: str, query: dict[str, str]) -> Reply:
        if method != "GET":
            return graph_error(405, "MethodNotAllowed", "The demo tenant is read-only.")
        if path == "/users/delta":
            return self._delta(query)
        if path == "/users":
            return self._page("/users", list(self.users.values()), query)
        if path == "/organization":
            org = {"id": "0a1b2c3d-0753-4753-8753-000000000753", "displayName": "Sipoon kunta"}
            return self._page("/organization", [org], query)
        match = re.fullmatch(r"/solutions/bookingBusinesses/([^/]+)/customers", path)
        if match and match.group(1) == BUSINESS:
            return self._page(path, self.customers, query)
        return graph_error(404, "Request_ResourceNotFound", f"Resource '{path}' does not exist.")

    def _token(self, body: bytes) -> Reply:
        form = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return _oauth_error(
                400, "unsupported_grant_type", "AADSTS70003: client_credentials only"
            )
        if form.get("client_id") != CLIENT_ID:
            return _oauth_error(400, "unauthorized_client", "AADSTS700016: unknown application")
        if form.get("client_secret") != DEMO_SECRET:
            return _oauth_error(401, "invalid_client", "AADSTS7000215: Invalid client secret.")
        if form.get("scope") != SCOPE:
            return _oauth_error(400, "invalid_scope", "AADSTS70011: The scope is not valid.")
        token = "eyJ0eXAiOiJKV1Qi." + secrets.token_urlsafe(24)
        self.tokens.add(token)
        return 200, {"token_type": "Bearer", "expires_in": 3599, "access_token": token}, {}

    def _delta(self, query: dict[str, str]) -> Reply:
        """A page of a delta round: the state (first round) or the changes since its token."""
        token = query.get("$skiptoken") or query.get("$deltatoken")
        if token:
            state = _untoken(token)
            if state is None:
                return graph_error(410, "syncStateNotFound", "The sync state is not found.")
            if "$deltatoken" in query:  # a new round: the changes since the last one
                state = {**state, "upto": self.seq, "o": 0}
        else:
            state = {
                "since": 0,
                "upto": self.seq,
                "o": 0,
                "top": _top(query),
                "sel": _select_list(query),
            }
        items = self._changes(state["since"], state["upto"])
        return self._paged("/users/delta", items, state, delta=True)

    def _changes(self, since: int, upto: int) -> list[dict[str, Any]]:
        """Each item's latest change in (since, upto]; a first round shows no removals."""
        latest: dict[str, Change] = {}
        for change in self.changes:
            if since < change.seq <= upto:
                latest.pop(change.id, None)
                latest[change.id] = change
        return [c.shown() for c in latest.values() if since or c.item is not None]

    def _page(self, path: str, items: list[dict[str, Any]], query: dict[str, str]) -> Reply:
        token = query.get("$skiptoken")
        fresh: dict[str, Any] = {"o": 0, "top": _top(query), "sel": None}
        state = _untoken(token) if token else fresh
        if state is None:
            return graph_error(400, "BadRequest", "Invalid $skiptoken.")
        if path == "/users":
            state["sel"] = state.get("sel") or _select_list(query)
        return self._paged(path, items, state, delta=False)

    def _paged(
        self, path: str, items: list[dict[str, Any]], state: dict[str, Any], *, delta: bool
    ) -> Reply:
        size, start = int(state.get("top") or PAGE_SIZE), int(state["o"])
        shown = [_select(i, state.get("sel")) for i in items[start : start + size]]
        body: dict[str, Any] = {
            "@odata.context": f"{self.base_url}{VERSION}/$metadata",
            "value": shown,
        }
        link = f"{self.base_url}{VERSION}{path}"
        if start + size < len(items):
            token = _token_for({**state, "o": start + size})
            body["@odata.nextLink"] = f"{link}?{urlencode({'$skiptoken': token})}"
        elif delta:
            final = {"since": state["upto"], "top": state.get("top"), "sel": state.get("sel")}
            body["@odata.deltaLink"] = f"{link}?{urlencode({'$deltatoken': _token_for(final)})}"
        return 200, body, {}


def _oauth_error(status: int, error: str, description: str) -> Reply:
    return status, {"error": error, "error_description": description}, {}


def _top(query: dict[str, str]) -> int | None:
    return int(query["$top"]) if query.get("$top") else None


def _select_list(query: dict[str, str]) -> list[str] | None:
    return query["$select"].split(",") if query.get("$select") else None


def _select(item: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    if not fields or "@removed" in item:
        return item
    keep = {"id", *fields}
    return {k: v for k, v in item.items() if k in keep}


def _token_for(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode().rstrip("=")


def _untoken(token: str) -> dict[str, Any] | None:
    try:
        state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError:
        return None
    return state if isinstance(state, dict) else None


class _GraphHandler(BaseHTTPRequestHandler):
    """Hands every request to the island's `answer` and writes the JSON reply."""

    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        island: M365Island = self.server.island  # type: ignore[attr-defined]
        status, document, extra = island.answer(self.command, self.path, headers, body)
        payload = json.dumps(document, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return
