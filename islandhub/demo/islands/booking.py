"""Premises booking island: Respa/Varaamo-shaped reservations (`count/next/previous/results`)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, time, timedelta, timezone
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson

from islandhub.demo.islands.base import HttpIsland
from islandhub.demo.model import Person
from islandhub.demo.noise import Noise, adults, ascii_name

TOKEN = "demo-booking-token-5d1e9a"
MAX_PAGE = 500
HELSINKI = timezone(timedelta(hours=2))  # the island writes local time with its offset
RESOURCES = (
    ("Nikkilän nuorisotila", "Nickby ungdomsgård"),
    ("Söderkullan kirjaston kokoushuone", "Söderkulla biblioteks mötesrum"),
    ("Kuntalan liikuntasali", "Kommungårdens gymnastiksal"),
    ("Sipoonlahden koulun auditorio", "Sibbovikens skolas auditorium"),
    ("Talman seurantalo", "Talma föreningshus"),
)
STATES = ("confirmed",) * 12 + ("cancelled", "requested", "denied", "waiting_for_payment")
COMPANIES = ("Sibbo Bygg Ab", "Nikkilän Kone Oy", "Talma Golf Oy", "Kalkkiranta Catering Ky")


def ytunnus(number: int) -> str:
    """A valid Finnish business id (Y-tunnus) for a 7-digit number."""
    digits = f"{number:07d}"
    rest = sum(int(d) * w for d, w in zip(digits, (7, 9, 10, 5, 8, 4, 2), strict=True)) % 11
    check = 0 if rest == 0 else 11 - rest
    return f"{digits}-{check}" if check != 10 else ytunnus(number + 1)


class Booking(HttpIsland):
    """Reservations of ~10 % of adults (some several, some for a company); bearer token."""

    system = "booking"
    title = "Premises booking (Respa-shaped REST)"
    default_port = 8704

    def prepare(self) -> None:
        """Draw the reservers and their reservations; cancelled ones stay as soft deletes."""
        self.lock = threading.Lock()
        self.noise = Noise(self.rng)
        self.companies = [(name, ytunnus(1234560 + 97 * i)) for i, name in enumerate(COMPANIES)]
        self.reservations: list[dict[str, Any]] = []
        for person in adults(self.population):
            if self.noise.chance(0.10):
                company = self.rng.choice(self.companies) if self.noise.chance(0.1) else None
                for _ in range(self.rng.choice((1, 1, 1, 1, 2, 3, 4))):
                    self._reserve(person, company)
        self.reservations.sort(key=lambda r: r["modified"])

    def _reserve(self, person: Person, company: tuple[str, str] | None) -> None:
        noise, number = self.noise, len(self.reservations) + 1
        address = noise.address(person, former=0.3)
        begin = datetime.combine(
            self.population.today + timedelta(days=self.rng.randint(-400, 120)),
            time(self.rng.randint(8, 20)),
            HELSINKI,
        )
        modified = min(begin, self._now()) - timedelta(minutes=self.rng.randint(5, 60 * 24 * 30))
        fi, sv = self.rng.choice(RESOURCES)
        record = {
            "id": number,
            "resource": f"sipoo:{RESOURCES.index((fi, sv)) + 1}",
            "resource_name": {"fi": fi, "sv": sv},
            "begin": begin.isoformat(),
            "end": (begin + timedelta(hours=self.rng.choice((1, 2, 3)))).isoformat(),
            "state": self.rng.choice(STATES),
            "reserver_name": self._name(person),
            "reserver_email_address": self._email(person, company),
            "reserver_phone_number": noise.phone(person),
            "reserver_address_street": noise.street(person, address),
            "reserver_address_zip": address.postal_code,
            "reserver_address_city": address.post_office_fi,
            "company": company[0] if company else None,
            "reserver_id": company[1] if company else None,  # Respa's field for a business id
            "billing_email_address": None,
            "created_at": modified.isoformat(),
            "modified": modified.isoformat(),
        }
        self.reservations.append(record)
        # A company's reservation is still made by a resident, its contact person: the
        # record describes them (the demo has no organisations to point to).
        self.add_truth("reservations", str(number), person.person_id)

    def _now(self) -> datetime:
        return datetime.combine(self.population.today, time(6), HELSINKI)

    def _name(self, person: Person) -> str:
        """The name as "Given Family", typed by the reserver; now and then the other way round."""
        given = self.noise.given(person)
        family = self.noise.family(person, former=0.3)
        return f"{family} {given}" if self.noise.chance(0.04) else f"{given} {family}"

    def _email(self, person: Person, company: tuple[str, str] | None) -> str | None:
        if company:
            domain = ascii_name(company[0].rsplit(" ", 1)[0]) + ".fi"
            return f"{ascii_name(person.first_name)}.{ascii_name(person.family_name)}@{domain}"
        return self.noise.email(person, family_share=0.15)

    @property
    def served(self) -> list[dict[str, Any]]:
        """Reservations the hub lands (cancelled ones are reported as deleted)."""
        return [r for r in self.reservations if r["state"] != "cancelled"]

    def page(self, since: str | None, number: int, size: int) -> tuple[list[Any], int]:
        """Reservations modified at or after `since`, in modification order: a page, count."""
        with self.lock:
            rows = list(self.reservations)
        if since:
            bound = _parse(since)
            rows = [r for r in rows if _parse(r["modified"]) >= bound]
        return rows[(number - 1) * size : number * size], len(rows)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        """The Respa API."""
        return BookingHandler

    def connection(self) -> dict[str, Any]:
        """The running server and its bearer token (a secret reference)."""
        return {
            "base_url": f"{self.base_url}/v1",
            "auth": {"type": "bearer", "token": {"secret": "BOOKING_API_TOKEN"}},
        }

    def secrets(self) -> dict[str, str]:
        """The demo token."""
        return {"BOOKING_API_TOKEN": TOKEN}


def _parse(value: str) -> datetime:
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class JsonHandler(BaseHTTPRequestHandler):
    """A small JSON API handler: auth check, routing by path, DRF-like errors."""

    def _send(self, status: int, document: Any) -> None:
        body = orjson.dumps(document)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _query(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}

    def _page_params(self) -> tuple[int, int] | None:
        query = self._query()
        try:
            number = int(query.get("page", 1))
            size = min(MAX_PAGE, max(1, int(query.get("page_size", 20))))
        except ValueError:
            return None
        return (number, size) if number >= 1 else None

    def _link(self, number: int, pages: int) -> str | None:
        if number < 1 or number > pages:
            return None
        url = urlsplit(self.path)
        query = {**self._query(), "page": str(number)}
        host = f"http://{self.headers.get('Host', '127.0.0.1')}"
        return f"{host}{url.path}?{urlencode(query)}"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the demo prints its own summary."""


class BookingHandler(JsonHandler):
    """GET /v1/reservation/ with page, page_size and modified_after; bearer token."""

    def do_GET(self) -> None:
        """A DRF page of reservations."""
        island: Booking = self.server.island  # type: ignore[attr-defined]
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._send(401, {"detail": "Authentication credentials were not provided."})
            return
        if urlsplit(self.path).path.rstrip("/") != "/v1/reservation":
            self._send(404, {"detail": "Not found."})
            return
        paging = self._page_params()
        if paging is None:
            self._send(400, {"detail": "Invalid page."})
            return
        rows, count = island.page(self._query().get("modified_after"), *paging)
        number, size = paging
        pages = count_pages(count, size)
        if number > max(1, pages):
            self._send(404, {"detail": "Invalid page."})  # DRF answers 404 past the end
            return
        self._send(
            200,
            {
                "count": count,
                "next": self._link(number + 1, pages),
                "previous": self._link(number - 1, pages),
                "results": rows,
            },
        )


def count_pages(count: int, size: int) -> int:
    """Pages of `size` needed for `count` records."""
    return -(-count // size)
