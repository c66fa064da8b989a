"""The resident portal / CRM: self-reported contact details over REST, and a push target."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from islandhub.demo.islands.base import HttpIsland
from islandhub.demo.model import Person
from islandhub.demo.noise import (
    adults,
    called,
    format_phone,
    maybe_typo,
    messy_email,
)

STREAM = "contacts"
API = "/api/contacts"
TOKEN_SECRET = "CRM_API_TOKEN"
DEMO_TOKEN = "demo-crm-token-753"
PAGE_SIZE = 20  # without page_size
MAX_PAGE_SIZE = 100
Reply = tuple[int, Any]


def iso(moment: datetime) -> str:
    """UTC ISO 8601 with Z, as the portal writes times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class CrmIsland(HttpIsland):
    """Residents who logged in to the portal, and the contact details the hub pushes back.

    GET /api/contacts pages `{count, next, previous, results}` ordered by modification
    time, filtered by `modified_after`. POST /api/contacts stores what the hub sends; a
    repeated `Idempotency-Key` gets the first answer again and stores nothing new.
    """

    system = "crm"
    title = "resident portal / CRM: REST contacts (incremental, paged), push with Idempotency-Key"
    default_port = 8712

    def prepare(self) -> None:
        """Make the portal's accounts: about a third of adults, some with a second one."""
        self.lock = threading.Lock()
        self.records: list[dict[str, Any]] = []
        self.pushed: list[dict[str, Any]] = []  # bodies the hub pushed, once per key
        self.answers: dict[str, Reply] = {}  # Idempotency-Key -> the first answer
        self.erased: list[str] = []  # ids erased through the GDPR API
        self.households: dict[str, list[Person]] = {}
        people = adults(self.population)
        for person in people:
            if person.email:
                self.households.setdefault(person.household_id, []).append(person)
        for person in people:
            if self.rng.random() < 0.35:
                self._account(person, strong=self.rng.random() < 0.6)
                if self.rng.random() < 0.04:  # forgot the first account, made another
                    self._account(person, strong=False)
        self.records.sort(key=lambda r: (r["modified"], r["id"]))

    def connection(self) -> dict[str, Any]:
        """The portal's API on this run's port, with fast retries."""
        return {
            "base_url": f"{self.base_url}/api",
            "auth": {"type": "bearer", "token": {"secret": TOKEN_SECRET}},
            "timeout": 10,
            "retries": 2,
            "backoff": 0.01,
        }

    def secrets(self) -> dict[str, str]:
        """The demo API token."""
        return {TOKEN_SECRET: DEMO_TOKEN}

    def handler(self) -> type[BaseHTTPRequestHandler]:
        """The portal's HTTP API."""
        return _CrmHandler

    # --- accounts ---------------------------------------------------------------------------

    def _account(self, person: Person, *, strong: bool) -> None:
        number = len(self.records) + 1
        record_id = f"c-{number:06d}"
        created = self._moment(400)
        modified = max(created, self._moment(300))
        record = {
            "id": record_id,
            "first_name": maybe_typo(called(person, self.rng), self.rng),
            "last_name": maybe_typo(self._family(person), self.rng),
            "email": self._email(person),
            "phone": format_phone(person.phone, self.rng) if person.phone else None,
            "preferred_language": person.language if person.language in ("fi", "sv") else "en",
            # Strong authentication (Suomi.fi) hands the portal the national id.
            "national_id": person.hetu if strong else None,
            "auth_method": "suomi.fi" if strong else "email",
            "address": self._address(person),
            "created": iso(created),
            "modified": iso(modified),
        }
        if self.rng.random() < 0.02:  # typed the family name into the first field
            record["first_name"], record["last_name"] = record["last_name"], record["first_name"]
        self.records.append(record)
        self.add_truth(STREAM, record_id, person.person_id)

    def _moment(self, days: int) -> datetime:
        day = self.population.today - timedelta(days=self.rng.randint(1, days))
        return datetime.combine(day, time(), UTC) + timedelta(seconds=self.rng.randint(0, 86_399))

    def _family(self, person: Person) -> str:
        if person.former_family_name and self.rng.random() < 0.3:
            return person.former_family_name  # the account is older than the marriage
        return person.family_name

    def _email(self, person: Person) -> str | None:
        family = [p for p in self.households.get(person.household_id, []) if p is not person]
        if family and self.rng.random() < 0.1:
            return messy_email(str(family[0].email), self.rng)  # the family's shared address
        if person.email is None:
            return None
        return messy_email(person.email, self.rng) if self.rng.random() < 0.5 else person.email

    def _address(self, person: Person) -> dict[str, str] | None:
        if self.rng.random() < 0.5:
            return None  # the address is optional in the profile
        address = person.address
        if person.former_address and self.rng.random() < 0.4:
            address = person.former_address  # moved, never updated the profile
        swedish = person.language == "sv"
        return {
            "street": address.street_sv if swedish else address.street_fi,
            "postal_code": address.postal_code,
            "city": address.post_office_sv if swedish else address.post_office_fi,
        }

    # --- the API ----------------------------------------------------------------------------

    def page(self, query: dict[str, str]) -> Reply:
        """GET /api/contacts: one page of the accounts changed since `modified_after`."""
        rows = self.records
        if query.get("modified_after"):
            try:
                bound = _parse_time(query["modified_after"])
            except ValueError:
                return 400, {"detail": "modified_after: not an ISO 8601 time"}
            rows = [r for r in rows if _parse_time(r["modified"]) >= bound]
        page = int(query.get("page", 1))
        size = min(MAX_PAGE_SIZE, int(query.get("page_size", PAGE_SIZE)))
        start = (page - 1) * size
        body: dict[str, Any] = {
            "count": len(rows),
            "next": _link(query, page + 1) if start + size < len(rows) else None,
            "previous": _link(query, page - 1) if page > 1 else None,
            "results": rows[start : start + size],
        }
        return 200, body

    def push(self, key: str | None, body: Any) -> Reply:
        """POST /api/contacts: store a contact once per Idempotency-Key."""
        if not key:
            return 400, {"detail": "the Idempotency-Key header is required"}
        if not isinstance(body, dict):
            return 400, {"detail": "a contact is a JSON object"}
        with self.lock:
            if key not in self.answers:
                stored = {**body, "push_id": f"push-{len(self.pushed) + 1:06d}"}
                self.pushed.append(stored)
                self.answers[key] = (201, stored)
            return self.answers[key]

    def erase(self, contact_id: str, dry_run: bool) -> Reply:
        """DELETE /api/gdpr/contacts/<id>: the GDPR API; a portal account may always go."""
        with self.lock:
            if not dry_run:
                self.records = [r for r in self.records if str(r["id"]) != contact_id]
                self.erased.append(contact_id)
        return 204, None


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _link(query: dict[str, str], page: int) -> str:
    return f"{API}?{urlencode({**query, 'page': page})}"


class _CrmHandler(BaseHTTPRequestHandler):
    """Routes the portal's API: bearer token, GET and POST /api/contacts."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if not self._authorised():
            self._reply(401, {"detail": "invalid token"})
        elif parts.path.rstrip("/") != API:
            self._reply(404, {"detail": "not found"})
        else:
            self._reply(*self._island().page(query))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not self._authorised():
            self._reply(401, {"detail": "invalid token"})
        elif urlsplit(self.path).path.rstrip("/") != API:
            self._reply(404, {"detail": "not found"})
        else:
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                self._reply(400, {"detail": "not JSON"})
                return
            self._reply(*self._island().push(self.headers.get("Idempotency-Key"), body))

    def do_DELETE(self) -> None:
        parts = urlsplit(self.path)
        prefix = "/api/gdpr/contacts/"
        if not self._authorised():
            self._reply(401, {"detail": "invalid token"})
        elif not parts.path.startswith(prefix):
            self._reply(404, {"detail": "not found"})
        else:
            dry_run = parse_qs(parts.query).get("dry_run", [""])[-1].lower() == "true"
            status, _ = self._island().erase(parts.path[len(prefix) :].rstrip("/"), dry_run)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def _island(self) -> CrmIsland:
        island: CrmIsland = self.server.island  # type: ignore[attr-defined]
        return island

    def _authorised(self) -> bool:
        return self.headers.get("Authorization") == f"Bearer {DEMO_TOKEN}"

    def _reply(self, status: int, document: Any) -> None:
        payload = json.dumps(document, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        return
