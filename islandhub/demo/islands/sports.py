"""Sports halls: the booking system's iCalendar feed of hall bookings, served over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from zoneinfo import ZoneInfo

import icalendar

from islandhub.demo.islands.base import HttpIsland
from islandhub.demo.model import Person
from islandhub.demo.noise import adults, called, maybe_typo, messy_email

STREAM = "bookings"
FEED_PATH = "/calendar/sports-halls.ics"
ZONE = ZoneInfo("Europe/Helsinki")
DOMAIN = "bokning.sipoo.fi"
HALLS = (
    "Nikkilän urheiluhalli / Nickby idrottshall",
    "Söderkullan koulun liikuntasali / Söderkulla skolas gymnastiksal",
    "Talman koulun sali / Talma skolas sal",
    "Kungsvägen tekonurmi / Kungsvägens konstgräsplan",
)
ACTIVITIES = ("Sähly / Innebandy", "Sulkapallo / Badminton", "Futsal", "Lentopallo / Volleyboll")
CLUBS = ("IF Sibbo-Vargarna", "Sipoon Palloseura ry", "Söderkulla Badminton", "Nikkilän Naiset")


class SportsIsland(HttpIsland):
    """The halls' bookings as one iCalendar feed: weekly series, single events, a cancellation.

    Dates follow the real clock (the ics connector expands occurrences in a window around
    now), so the feed is made for the day `prepare` runs; occurrences stay weeks inside the
    window so a sync minutes later sees the same ones.
    """

    system = "sports"
    title = "sports halls: iCalendar feed of bookings (weekly series, EXDATE, cancellation)"
    default_port = 8711

    def prepare(self) -> None:
        """Build the feed; every occurrence the connector will emit gets its truth row."""
        self.anchor = datetime.now(UTC).date()
        bookers = [p for p in adults(self.population) if p.email]
        self.emails: dict[str, list[Person]] = {}  # household -> members with an email
        for person in bookers:
            self.emails.setdefault(person.household_id, []).append(person)
        self.calendar = icalendar.Calendar()
        self.calendar.add("prodid", "-//Sipoo//Tilavaraus Bokning//FI")
        self.calendar.add("version", "2.0")
        self.emitted = 0
        for index in range(max(6, len(bookers) // 25)):
            self._series(index, self.rng.choice(bookers), bookers)
        for index in range(max(10, len(bookers) // 12)):
            self._single(index, self.rng.choice(bookers), bookers)
        self._cancelled(self.rng.choice(bookers))
        self.calendar.add_missing_timezones()
        self.feed = self.calendar.to_ical()

    def connection(self) -> dict[str, Any]:
        """The feed's URL on this run's port."""
        return {"url": f"{self.base_url}{FEED_PATH}", "timeout": 10, "retries": 1}

    def handler(self) -> type[BaseHTTPRequestHandler]:
        """Serves the feed at /calendar/sports-halls.ics."""
        return _FeedHandler

    # --- events ---------------------------------------------------------------------------

    def _start(self, days: int) -> datetime:
        hour = self.rng.choice((16, 17, 18, 19, 20))
        return datetime.combine(self.anchor + timedelta(days=days), time(hour), ZONE)

    def _series(self, index: int, booker: Person, everyone: list[Person]) -> None:
        """A weekly booking over a season, one week dropped (EXDATE), maybe one week moved."""
        uid = f"vuoro-{index:04d}@{DOMAIN}"
        start = self._start(-self.rng.randint(0, 20))
        weeks = self.rng.randint(8, 16)
        event = self._event(uid, start, booker, everyone, club=self.rng.random() < 0.6)
        event.add("rrule", {"freq": "weekly", "count": weeks})
        occurrences = [start + timedelta(weeks=k) for k in range(weeks)]
        dropped = occurrences.pop(self.rng.randint(1, weeks - 1))  # a holiday: the hall is shut
        event.add("exdate", dropped)
        self.calendar.add_component(event)
        if index % 3 == 0:
            self._moved(uid, occurrences[0], booker, everyone)
        for original in occurrences:
            self._truth(f"{uid}::{original.astimezone(UTC).isoformat()}", booker)

    def _moved(self, uid: str, original: datetime, booker: Person, everyone: list[Person]) -> None:
        """One occurrence moved an hour later: it keeps its key (the original start)."""
        moved = self._event(uid, original + timedelta(hours=1), booker, everyone, club=False)
        moved.add("recurrence-id", original)
        moved.add("sequence", 1)
        self.calendar.add_component(moved)

    def _single(self, index: int, booker: Person, everyone: list[Person]) -> None:
        uid = f"varaus-{index:05d}@{DOMAIN}"
        event = self._event(uid, self._start(self.rng.randint(-10, 60)), booker, everyone)
        self.calendar.add_component(event)
        self._truth(uid, booker)

    def _cancelled(self, booker: Person) -> None:
        """A cancelled booking: reported as deleted, never landed, so no truth row."""
        uid = f"peruttu-00001@{DOMAIN}"
        event = self._event(uid, self._start(5), booker, [])
        event.add("status", "CANCELLED")
        self.calendar.add_component(event)

    def _event(
        self, uid: str, start: datetime, booker: Person, everyone: list[Person], club: bool = False
    ) -> icalendar.Event:
        event = icalendar.Event()
        event.add("uid", uid)
        event.add("dtstamp", datetime.combine(self.anchor, time(), UTC))
        event.add("dtstart", start)
        event.add("dtend", start + timedelta(minutes=self.rng.choice((60, 90, 120))))
        activity = self.rng.choice(ACTIVITIES)
        team = self.rng.choice(CLUBS) if club else None
        event.add("summary", f"{team} – {activity}" if team else activity)
        event.add("location", self.rng.choice(HALLS))
        event.add("organizer", self._address(booker), parameters={"CN": self._name(booker)})
        for other in self.rng.sample(everyone, min(len(everyone), self.rng.randint(0, 3))):
            params = {"CN": self._name(other), "PARTSTAT": "ACCEPTED", "ROLE": "REQ-PARTICIPANT"}
            event.add("attendee", self._address(other), parameters=params)
        return event

    def _name(self, person: Person) -> str:
        """The booker's name as typed into the booking form."""
        given = called(person, self.rng)
        if self.rng.random() < 0.05:
            return f"{person.family_name.upper()} {given}"  # the capitals give the order away
        return maybe_typo(f"{given} {person.family_name}", self.rng)

    def _address(self, person: Person) -> str:
        assert person.email is not None
        email = person.email
        household = self._household_email(person)
        if household and self.rng.random() < 0.1:
            email = household  # the family shares one address
        return f"mailto:{messy_email(email, self.rng).strip()}"

    def _household_email(self, person: Person) -> str | None:
        others = [p.email for p in self.emails.get(person.household_id, []) if p is not person]
        return others[0] if others else None

    def _truth(self, key: str, booker: Person) -> None:
        self.add_truth(STREAM, key, booker.person_id)
        self.emitted += 1


class _FeedHandler(BaseHTTPRequestHandler):
    """GET /calendar/sports-halls.ics; anything else 404."""

    def do_GET(self) -> None:
        island: SportsIsland = self.server.island  # type: ignore[attr-defined]
        if self.path.split("?")[0] != FEED_PATH:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/calendar; charset=utf-8")
        self.send_header("Content-Length", str(len(island.feed)))
        self.end_headers()
        self.wfile.write(island.feed)

    def log_message(self, format: str, *args: Any) -> None:
        return
