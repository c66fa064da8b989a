"""Feedback island: Open311 GeoReport v2 service requests, some of them anonymous."""

from __future__ import annotations

import datetime as dt
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from islandhub.demo.islands.base import HttpIsland
from islandhub.demo.islands.library import HELSINKI, JsonHandler, parse_time
from islandhub.demo.model import Person, Population
from islandhub.demo.noise import (
    aged,
    email_seen,
    family_name_seen,
    first_name_seen,
    maybe_typo,
    phone_seen,
    street,
)

API_KEY = "demo-open311-key-753"
SERVICES = (
    ("171", "Katuvalaistus / Gatubelysning", "Katulamppu ei pala", "Gatlampan lyser inte"),
    ("172", "Tienpito / Vägunderhåll", "Kuoppa tiessä", "Grop i vägen"),
    ("180", "Puistot / Parker", "Roska-astia täynnä", "Soptunnan är full"),
    ("190", "Lumityöt / Snöröjning", "Auraamatta", "Inte plogat"),
)
STATUSES = ("open", "closed")


class Open311Handler(JsonHandler):
    """GET /open311/v2/requests.json?api_key=K&start_date=T&page=N&page_size=S."""

    def do_GET(self) -> None:
        """Answer a page of service requests, or an Open311 error list."""
        island: FeedbackIsland = self.server.island  # type: ignore[attr-defined]
        query = self.query()
        if query.get("api_key") != API_KEY:
            self.answer(403, [{"code": 403, "description": "Invalid api_key"}])
            return
        if urlsplit(self.path).path != "/open311/v2/requests.json":
            self.answer(404, [{"code": 404, "description": "Not found"}])
            return
        try:
            page, size = int(query.get("page", 1)), int(query.get("page_size", 50))
            rows = island.requested_since(query.get("start_date"))
        except ValueError:
            self.answer(400, [{"code": 400, "description": "Invalid parameter"}])
            return
        self.answer(200, rows[(page - 1) * size : page * size])


class FeedbackIsland(HttpIsland):
    """About 5 % of adults send 1-3 service requests each; a quarter of requests anonymous."""

    system = "feedback"
    title = "Feedback: Open311 GeoReport v2 service requests"
    default_port = 8709

    def __init__(self, population: Population, workdir: Path, seed: int) -> None:
        super().__init__(population, workdir, seed)
        self.requests: list[dict[str, Any]] = []
        self.planted: dict[str, set[str]] = {"requests": set()}  # nothing meant for quarantine

    def prepare(self) -> None:
        """Draw the senders, their requests and the anonymous ones; oldest request first."""
        senders = [p for p in aged(self.population, 18, 120) if self.rng.random() < 0.05]
        for person in senders:
            for _ in range(self.rng.choice((1, 1, 1, 2, 3))):  # repeat senders: duplicates
                self._add(person)
                if self.rng.random() < 0.33:
                    self._add(None)
        self.requests.sort(
            key=lambda r: (parse_time(r["requested_datetime"]), r["service_request_id"])
        )

    def _add(self, person: Person | None) -> None:
        rng = self.rng
        number = len(self.requests) + 1
        request_id = f"{self.population.today:%Y}-{number:05d}"
        code, service, text_fi, text_sv = rng.choice(SERVICES)
        swedish = person is not None and person.language == "sv"
        requested = self._time(dt.timedelta(days=730))
        record = {
            "service_request_id": request_id,
            "status": rng.choice(STATUSES),
            "service_code": code,
            "service_name": service,
            "description": text_sv if swedish else text_fi,
            "requested_datetime": requested.isoformat(timespec="seconds"),
            "updated_datetime": (requested + self._delay()).isoformat(timespec="seconds"),
            "address": self._location(person),
            "first_name": None,
            "last_name": None,
            "email": None,
            "phone": None,
        }
        if person is not None:
            record.update(self._sender(person))
            self.add_truth("requests", request_id, person.person_id)
        else:
            # Nobody to match: its own entity, so evaluation counts it as a cluster of one.
            self.add_truth("requests", request_id, f"ANON-{request_id}")
        self.requests.append(record)

    def _sender(self, person: Person) -> dict[str, str | None]:
        """Who sent it, as typed into a web form: variants, typos, sometimes names swapped."""
        rng = self.rng
        first = maybe_typo(first_name_seen(person, rng, p=0.15), rng)
        last = maybe_typo(family_name_seen(person, rng, p_old=0.1), rng)
        if rng.random() < 0.04:
            first, last = last, first  # the family name typed into the first-name box
        sender: dict[str, str | None] = {"first_name": first, "last_name": last}
        sender["email"] = email_seen(person, rng, p_shared=0.15) or None
        sender["phone"] = (phone_seen(person, rng) if rng.random() < 0.5 else "") or None
        if rng.random() < 0.03:
            sender["description"] = f"Terveisin {last} {first}"  # signed, family name first
        return sender

    def _location(self, person: Person | None) -> str:
        """Where the problem is: mostly near the sender's home, in free text."""
        if person is not None and self.rng.random() < 0.6:
            return f"{street(person, person.address)}, {person.address.post_office_fi.title()}"
        return self.rng.choice(("Nikkilän keskusta", "Söderkulla centrum", "Talman asema"))

    def _time(self, span: dt.timedelta) -> dt.datetime:
        end = dt.datetime.combine(self.population.today, dt.time(6), tzinfo=HELSINKI)
        return end - dt.timedelta(seconds=self.rng.randrange(int(span.total_seconds())))

    def _delay(self) -> dt.timedelta:
        return dt.timedelta(hours=self.rng.randrange(0, 72))

    def requested_since(self, start_date: str | None) -> list[dict[str, Any]]:
        """Requests made at or after `start_date` (Open311's filter is inclusive)."""
        if not start_date:
            return self.requests
        bound = parse_time(start_date)
        return [r for r in self.requests if parse_time(r["requested_datetime"]) >= bound]

    def handler(self) -> type[BaseHTTPRequestHandler]:
        """The Open311 request handler."""
        return Open311Handler

    def connection(self) -> dict[str, Any]:
        """The running server's /open311/v2, the key in the query as a secret reference."""
        return {
            "base_url": f"{self.base_url}/open311/v2",
            "auth": {
                "type": "api_key",
                "name": "api_key",
                "in": "query",
                "value": {"secret": "FEEDBACK_API_KEY"},
            },
            "timeout": [5, 30],
        }

    def secrets(self) -> dict[str, str]:
        """The demo API key."""
        return {"FEEDBACK_API_KEY": API_KEY}
