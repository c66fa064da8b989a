"""Library island: Koha-shaped patrons over REST, Link-header pages, no national ids."""

from __future__ import annotations

import datetime as dt
import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit
from zoneinfo import ZoneInfo

from islandhub.demo.islands.base import HttpIsland
from islandhub.demo.model import Person, Population
from islandhub.demo.noise import (
    address_seen,
    email_seen,
    family_name_seen,
    first_name_seen,
    household_email,
    maybe_typo,
    messy_email,
    phone_seen,
    plant_share,
    post_office,
    street,
)

TOKEN = "demo-koha-token-753"
HELSINKI = ZoneInfo("Europe/Helsinki")


def parse_time(text: str) -> dt.datetime:
    """An ISO 8601 time (Z or an offset; none is UTC) as an aware datetime."""
    when = dt.datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


class JsonHandler(BaseHTTPRequestHandler):
    """Shared by the demo's JSON islands: query parsing, JSON answers, quiet logs."""

    def query(self) -> dict[str, str]:
        """The request's query parameters (the last value of each)."""
        return dict(parse_qsl(urlsplit(self.path).query))

    def answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        """Send `body` as JSON."""
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the demo's output clean."""


class KohaHandler(JsonHandler):
    """GET /api/v1/patrons?_page=N&_per_page=S&updated_since=T with a bearer token."""

    def do_GET(self) -> None:
        """Answer a page of patrons, or 401/404."""
        island: LibraryIsland = self.server.island  # type: ignore[attr-defined]
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.answer(401, {"error": "Authentication failure."})
            return
        if urlsplit(self.path).path.rstrip("/") != "/api/v1/patrons":
            self.answer(404, {"error": "Not found."})
            return
        query = self.query()
        try:
            page, size = int(query.get("_page", 1)), int(query.get("_per_page", 20))
            rows = island.changed_since(query.get("updated_since"))
        except ValueError:
            self.answer(400, {"error": "Bad query parameter."})
            return
        headers = {"X-Total-Count": str(len(rows))}
        if page * size < len(rows):
            following = urlencode({**query, "_page": page + 1, "_per_page": size})
            headers["Link"] = f'<{island.base_url}/api/v1/patrons?{following}>; rel="next"'
        self.answer(200, rows[(page - 1) * size : page * size], headers)


class LibraryIsland(HttpIsland):
    """About 40 % of residents as Koha patrons (children too); names, contacts, no HETUs."""

    system = "library"
    title = "Library: Koha REST patrons (Link headers, X-Total-Count)"
    default_port = 8708

    def __init__(self, population: Population, workdir: Path, seed: int) -> None:
        super().__init__(population, workdir, seed)
        self.patrons: list[dict[str, Any]] = []
        self.planted: dict[str, set[str]] = {"patrons": set()}  # nothing meant for quarantine

    def prepare(self) -> None:
        """Draw the patrons (a few with a second card) and sort them by updated_on."""
        people = self.population.living()
        chosen = [p for p in people if self.rng.random() < 0.4]
        twice = plant_share(len(chosen), 0.02, self.rng)  # lost the card, registered again
        for index, person in enumerate(chosen):
            for _ in range(2 if index in twice else 1):
                self._add(person)
        self.patrons.sort(key=lambda r: (parse_time(r["updated_on"]), r["patron_id"]))

    def _add(self, person: Person) -> None:
        rng = self.rng
        patron_id = len(self.patrons) + 1
        address = address_seen(person, rng, p_old=0.35)  # nobody tells the library of a move
        firstname = maybe_typo(first_name_seen(person, rng, p=0.15), rng)
        surname = maybe_typo(family_name_seen(person, rng, p_old=0.5), rng)
        self.patrons.append(
            {
                "patron_id": patron_id,
                "cardnumber": f"2{753:03d}{rng.randrange(10**6):06d}{patron_id % 10}",
                "firstname": firstname,
                "surname": surname,
                "date_of_birth": f"{person.birth_date:%Y-%m-%d}" if rng.random() < 0.9 else None,
                "email": self._email(person) or None,
                "phone": phone_seen(person, rng) or None,
                "address": street(person, address),
                "postal_code": address.postal_code,
                "city": post_office(person, address).title(),
                "library_id": "SIPOO",
                "category_id": "LAPSI" if person.age_on(self.population.today) < 15 else "AIKUINEN",
                "updated_on": self._updated_on(),
            }
        )
        self.add_truth("patrons", str(patron_id), person.person_id)

    def _email(self, person: Person) -> str:
        """Children's cards carry a guardian's or the family's address."""
        if person.age_on(self.population.today) < 15:
            return messy_email(household_email(person), self.rng) if self.rng.random() < 0.6 else ""
        return email_seen(person, self.rng)

    def _updated_on(self) -> str:
        """A change time in the three years before the population's day, Helsinki time."""
        end = dt.datetime.combine(self.population.today, dt.time(6), tzinfo=HELSINKI)
        when = end - dt.timedelta(seconds=self.rng.randrange(3 * 365 * 86400))
        return when.isoformat(timespec="seconds")

    def changed_since(self, since: str | None) -> list[dict[str, Any]]:
        """Patrons updated strictly after `since` (Koha's filter is exclusive), oldest first."""
        if not since:
            return self.patrons
        bound = parse_time(since)
        return [r for r in self.patrons if parse_time(r["updated_on"]) > bound]

    def handler(self) -> type[BaseHTTPRequestHandler]:
        """The Koha request handler."""
        return KohaHandler

    def connection(self) -> dict[str, Any]:
        """The running server's /api/v1, with the bearer token as a secret reference."""
        return {
            "base_url": f"{self.base_url}/api/v1",
            "auth": {"type": "bearer", "token": {"secret": "LIBRARY_API_TOKEN"}},
            "timeout": [5, 30],
        }

    def secrets(self) -> dict[str, str]:
        """The demo token."""
        return {"LIBRARY_API_TOKEN": TOKEN}
