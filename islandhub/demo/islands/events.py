"""Events island: Linked-Events-shaped course and event signups (`meta/data`)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from islandhub.demo.islands.base import HttpIsland
from islandhub.demo.islands.booking import JsonHandler, count_pages
from islandhub.demo.model import Person
from islandhub.demo.noise import Noise

API_KEY = "demo-events-key-0c7f3b"
CHILD_AGE = 15  # younger ones are signed up by a guardian, with the guardian's contacts
REGISTRATIONS = (
    ("Uimakoulu, alkeet", "Simskola, nybörjare"),
    ("Kesäteatteri: Seitsemän veljestä", "Sommarteater: Sju bröder"),
    ("Keramiikkakurssi", "Keramikkurs"),
    ("Senioritanssit", "Seniordans"),
    ("Luontoretki Sipoonkorpeen", "Naturutflykt till Sibbo storskog"),
    ("Robotiikkakerho", "Robotikklubb"),
    ("Joulukonsertti Sipoon kirkossa", "Julkonsert i Sibbo kyrka"),
)
# The Christmas concert is still ahead: its signups are kept until it has taken place
# (the legal hold the GDPR API answers with; index into REGISTRATIONS, id = index + 1).
UPCOMING_REGISTRATION = 7
UPCOMING_REFUSAL = {
    "code": "UPCOMING_SIGNUP",
    "message": {
        "fi": "Ilmoittautuminen tulevaan tapahtumaan",
        "sv": "Anmälan till ett kommande evenemang",
        "en": "Signup for an upcoming event",
    },
}
EXTRA_INFO = ("", "", "", "Laktoositon", "Glutenfri kost", "Tulemme kahdestaan", "Pyörätuoli")


class Events(HttpIsland):
    """Signups of ~15 % of residents, children by their guardians; API key auth."""

    system = "events"
    title = "Events and course signups (Linked-Events-shaped REST)"
    default_port = 8705

    def prepare(self) -> None:
        """Draw the signups; some are deleted (kept, flagged, shown with show_deleted)."""
        self.lock = threading.Lock()
        self.noise = Noise(self.rng)
        self.people = self.population.by_id()
        self.signups: list[dict[str, Any]] = []
        for person in self.population.living():
            if self.noise.chance(0.15):
                for _ in range(self.rng.choice((1, 1, 1, 1, 1, 2, 2, 3))):
                    self._sign_up(person)
        self.signups.sort(key=lambda s: s["last_modified_time"])

    def _contact(self, person: Person) -> Person | None:
        """Whose email and phone the signup carries: a child's guardian's, else their own."""
        if person.age_on(self.population.today) >= CHILD_AGE:
            return person
        guardians = [self.people[g] for g in person.guardians if g in self.people]
        return guardians[0] if guardians else None

    def _sign_up(self, person: Person) -> None:
        number = len(self.signups) + 1
        modified = datetime.combine(self.population.today, time(5), UTC) - timedelta(
            minutes=self.rng.randint(5, 60 * 24 * 365)
        )
        self.signups.append(
            {
                "id": number,
                "registration": self._registration(),
                **self._person_fields(person),
                "extra_info": self.rng.choice(EXTRA_INFO),
                "attendee_status": "attending",
                "deleted": self.noise.chance(0.05),
                "created_time": _z(modified),
                "last_modified_time": _z(modified),
            }
        )
        self.add_truth("signups", str(number), person.person_id)

    def _registration(self) -> dict[str, Any]:
        index = self.rng.randrange(len(REGISTRATIONS))
        fi, sv = REGISTRATIONS[index]
        return {"id": index + 1, "name": {"fi": fi, "sv": sv}}

    def _person_fields(self, person: Person) -> dict[str, Any]:
        """Who attends (a child too), and how to reach them (a child: the guardian)."""
        noise, contact = self.noise, self._contact(person)
        address = noise.address(person, former=0.1)  # a new system: addresses mostly current
        return {
            "first_name": noise.given(person),
            "last_name": noise.family(person),
            "email": noise.email(contact, family_share=0.2) if contact else None,
            "phone_number": noise.phone(contact) if contact else None,
            "street_address": noise.street(person, address),
            "zipcode": address.postal_code,
            "city": noise.post_office(person, address),
            "date_of_birth": self._birth(person, child=contact is not person),
        }

    def _birth(self, person: Person, child: bool) -> str | None:
        """Asked for children's courses; sometimes given by adults too."""
        return person.birth_date.isoformat() if self.noise.chance(0.8 if child else 0.3) else None

    @property
    def served(self) -> list[dict[str, Any]]:
        """Signups the hub lands (deleted ones are reported as deleted)."""
        return [s for s in self.signups if not s["deleted"]]

    def page(
        self, since: str | None, deleted: bool, number: int, size: int
    ) -> tuple[list[Any], int]:
        """Signups modified at or after `since`, in modification order: a page, count."""
        with self.lock:
            rows = [s for s in self.signups if deleted or not s["deleted"]]
        if since:
            bound = datetime.fromisoformat(since.replace("Z", "+00:00"))
            rows = [s for s in rows if _parse(s["last_modified_time"]) >= bound]
        return rows[(number - 1) * size : number * size], len(rows)

    def erase(self, signup_id: str, dry_run: bool) -> dict[str, Any] | None:
        """The GDPR API's DELETE: None when allowed (and done), else the refusal."""
        with self.lock:
            found = [s for s in self.signups if str(s["id"]) == signup_id and not s["deleted"]]
            for signup in found:
                if signup["registration"]["id"] == UPCOMING_REGISTRATION:
                    return UPCOMING_REFUSAL
            if not dry_run:
                for signup in found:
                    # Deleted as Linked Events deletes: flagged (so syncs learn it), the
                    # person's details gone.
                    for name in PERSON_FIELDS:
                        signup[name] = None
                    signup["deleted"] = True
                    signup["last_modified_time"] = _z(datetime.now(UTC))
        return None

    def handler(self) -> type[BaseHTTPRequestHandler]:
        """The Linked Events API."""
        return EventsHandler

    def connection(self) -> dict[str, Any]:
        """The running server and its API key (a secret reference)."""
        return {
            "base_url": f"{self.base_url}/v1",
            "auth": {"type": "api_key", "name": "apikey", "value": {"secret": "EVENTS_API_KEY"}},
        }

    def secrets(self) -> dict[str, str]:
        """The demo key."""
        return {"EVENTS_API_KEY": API_KEY}


PERSON_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone_number",
    "street_address",
    "zipcode",
    "city",
    "date_of_birth",
    "extra_info",
)


def _z(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class EventsHandler(JsonHandler):
    """The Linked Events API, and the GDPR API of open-city-profile's shape.

    GET /v1/signup/ with page, page_size, last_modified_since and show_deleted;
    DELETE /v1/gdpr/signup/<id>[?dry_run=true].
    """

    def do_DELETE(self) -> None:
        """204: allowed (and erased unless a dry run); 403 with the reasons: refused."""
        island: Events = self.server.island  # type: ignore[attr-defined]
        if self.headers.get("apikey") != API_KEY:
            self._send(401, {"detail": "Invalid API key."})
            return
        path = urlsplit(self.path).path.rstrip("/")
        prefix = "/v1/gdpr/signup/"
        if not path.startswith(prefix):
            self._send(404, {"detail": "Not found."})
            return
        dry_run = self._query().get("dry_run", "").lower() == "true"
        refusal = island.erase(path[len(prefix) :], dry_run)
        if refusal is not None:
            self._send(403, {"errors": [refusal]})
            return
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        """A Linked Events page of signups."""
        island: Events = self.server.island  # type: ignore[attr-defined]
        if self.headers.get("apikey") != API_KEY:
            self._send(401, {"detail": "Invalid API key."})
            return
        if urlsplit(self.path).path.rstrip("/") != "/v1/signup":
            self._send(404, {"detail": "Not found."})
            return
        paging = self._page_params()
        if paging is None:
            self._send(400, {"detail": "Invalid page."})
            return
        query = self._query()
        deleted = query.get("show_deleted", "").lower() == "true"
        rows, count = island.page(query.get("last_modified_since"), deleted, *paging)
        pages = count_pages(count, paging[1])
        if paging[0] > max(1, pages):
            self._send(404, {"detail": "Invalid page."})
            return
        meta = {
            "count": count,
            "next": self._link(paging[0] + 1, pages),
            "previous": self._link(paging[0] - 1, pages),
        }
        self._send(200, {"meta": meta, "data": rows})
