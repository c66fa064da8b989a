"""The ics connector passes the conformance suite against a booking feed file in the project.

The feed's events lie around today (the connector's window is relative to now): single
bookings and a weekly series. Adding records appends VEVENTs to the file; deleting one
marks a booking cancelled, the way booking tools publish a cancellation.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from connectors.ics import IcsConnector
from connectors.testing import Island, connector_test_class

HEADER = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Idrottshallen//Bokning//SV\r\n"
FOOTER = "END:VCALENDAR\r\n"


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def booking(uid: str, start: datetime, summary: str, extra: str = "") -> str:
    """One VEVENT of a booking tool, an hour and a half long."""
    return (
        "BEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:{stamp(start)}\r\n"
        f"DTSTART:{stamp(start)}\r\nDTEND:{stamp(start + timedelta(minutes=90))}\r\n"
        f"SUMMARY:{summary}\r\nLOCATION:Idrottshallen / Urheiluhalli\r\n"
        "STATUS:CONFIRMED\r\n"
        "ORGANIZER;CN=Fritidsbyrån:mailto:fritid@example.fi\r\n"
        f"{extra}END:VEVENT\r\n"
    )


class BookingFeed:
    """A feed file the conformance suite can add bookings to and cancel them in."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.numbers = itertools.count(1)
        self.today = datetime.now(UTC).replace(hour=15, minute=0, second=0, microsecond=0)
        series = booking(
            "innebandy@hallen.example.fi",
            self.today - timedelta(days=14),
            "Innebandy / Salibandy",
            "RRULE:FREQ=WEEKLY;COUNT=8\r\n",
        )
        self.events = [series] + [self.single(day) for day in range(-5, 6)]
        self.write()

    def single(self, day: int) -> str:
        number = next(self.numbers)
        start = self.today + timedelta(days=day, hours=number % 3)
        return booking(f"bokning-{number}@hallen.example.fi", start, f"Bokning {number} – Åsa")

    def write(self) -> None:
        self.path.write_text(HEADER + "".join(self.events) + FOOTER, encoding="utf-8")

    def add(self, _stream: str, count: int) -> list[str]:
        added = [self.single(day) for day in range(count)]
        self.events += added
        self.write()
        return [event.split("UID:")[1].split("\r\n")[0] for event in added]

    def cancel(self, _stream: str) -> str:
        self.events[3] = self.events[3].replace("STATUS:CONFIRMED", "STATUS:CANCELLED")
        self.write()
        return self.events[3].split("UID:")[1].split("\r\n")[0]


@contextmanager
def booking_feed(tmp_path: Path) -> Iterator[Island]:
    (tmp_path / "feeds").mkdir()
    feed = BookingFeed(tmp_path / "feeds" / "hall.ics")
    yield Island(
        connection={"path": "feeds/hall.ics"},
        streams={"bookings": {"window_days_past": 30, "window_days_future": 60, "batch_size": 4}},
        id_field={"bookings": "key"},
        add_records=feed.add,
        delete_record=feed.cancel,
        broken_connection={"path": "feeds/missing.ics"},
        root=tmp_path,
    )


TestIcsConformance = connector_test_class(IcsConnector, booking_feed)
