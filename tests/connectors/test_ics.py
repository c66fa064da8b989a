"""The ics connector on sample feeds: recurrences, overrides, cancellations, rejects, and URLs."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from connectors.base import StreamSpec
from connectors.ics import IcsConnector
from islandhub.errors import FatalSourceError, RetriableSourceError
from islandhub.secrets import Secret

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ics"
NOW = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
SERIES = "innebandy-2025@hallen.example.fi"
CANCELLED = "bokning-4711@hallen.example.fi"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "feeds").mkdir()
    for name in ("sports_hall.ics", "broken_events.ics", "not_a_calendar.ics"):
        shutil.copy(FIXTURES / name, tmp_path / "feeds" / name)
    return tmp_path


def connector(
    root: Path | None,
    connection: dict[str, Any] | None = None,
    now: datetime = NOW,
    **options: Any,
) -> IcsConnector:
    spec = {"window_days_past": 30, "window_days_future": 60, **options}
    return IcsConnector(
        "hall",
        connection or {"path": "feeds/sports_hall.ics"},
        {"bookings": StreamSpec("bookings", spec)},
        root=root,
        clock=lambda: now,
    )


def pull_all(conn: IcsConnector, state: Any = None):
    batches = list(conn.pull("bookings", state))
    return [r for b in batches for r in b.records], batches


def by_key(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["key"]: r for r in records}


def test_each_occurrence_in_the_window_is_a_record(project: Path) -> None:
    records, batches = pull_all(connector(project))
    keys = sorted(by_key(records))
    assert keys == [
        "idrottsdag-2025@hallen.example.fi",
        f"{SERIES}::2025-03-03T15:00:00+00:00",
        f"{SERIES}::2025-03-10T15:00:00+00:00",
        # 17 March is an EXDATE; 24 March is overridden; the clocks go forward on 30 March.
        f"{SERIES}::2025-03-24T15:00:00+00:00",
        f"{SERIES}::2025-03-31T14:00:00+00:00",
        f"{SERIES}::2025-04-07T14:00:00+00:00",
        "kvallspass-2025@hallen.example.fi",
        "simskola-2025-0305@hallen.example.fi",
    ]
    assert [d for b in batches for d in b.deleted] == [CANCELLED]


def test_a_weekly_occurrence_carries_its_people_and_local_times(project: Path) -> None:
    records = by_key(pull_all(connector(project))[0])
    first = records[f"{SERIES}::2025-03-03T15:00:00+00:00"]
    assert first == {
        "key": f"{SERIES}::2025-03-03T15:00:00+00:00",
        "uid": SERIES,
        "recurrence_id": "2025-03-03T15:00:00+00:00",
        "summary": "Innebandy / Salibandy – juniorer",
        "location": "Idrottshallen, Sal A / Urheiluhalli, Sali A",
        "description": "Träning för juniorer. Harjoitukset junioreille, ei otteluita.",
        "start": "2025-03-03T17:00:00+02:00",
        "end": "2025-03-03T18:30:00+02:00",
        "all_day": False,
        "organizer": {"name": "IF Åland – juniorer", "email": "juniorer@ifaland.example.fi"},
        "attendees": [
            {"name": "Pekka Mäkinen", "email": "pekka.makinen@example.fi", "partstat": "ACCEPTED"},
            {"name": "Åsa Öberg", "email": "asa.oberg@example.fi", "partstat": "TENTATIVE"},
        ],
        "status": "CONFIRMED",
        "sequence": 0,
        "last_modified": "2025-02-20T08:00:00+00:00",
    }
    assert records[f"{SERIES}::2025-03-31T14:00:00+00:00"]["start"] == "2025-03-31T17:00:00+03:00"


def test_an_overridden_occurrence_keeps_its_key_and_shows_the_change(project: Path) -> None:
    moved = by_key(pull_all(connector(project))[0])[f"{SERIES}::2025-03-24T15:00:00+00:00"]
    assert moved["start"] == "2025-03-24T18:00:00+02:00"
    assert moved["location"] == "Idrottshallen, Sal B / Urheiluhalli, Sali B"
    assert moved["sequence"] == 1


def test_single_all_day_and_floating_events(project: Path) -> None:
    records = by_key(pull_all(connector(project))[0])
    assert records["simskola-2025-0305@hallen.example.fi"]["recurrence_id"] is None
    day = records["idrottsdag-2025@hallen.example.fi"]
    assert (day["start"], day["end"], day["all_day"]) == ("2025-03-22", "2025-03-23", True)
    evening = records["kvallspass-2025@hallen.example.fi"]
    assert evening["start"] == "2025-03-06T19:00:00+02:00"  # floating: the stream's zone
    stockholm = by_key(pull_all(connector(project, timezone="Europe/Stockholm"))[0])
    assert stockholm["kvallspass-2025@hallen.example.fi"]["start"] == "2025-03-06T19:00:00+01:00"


def test_a_rerun_returns_only_changes_and_reports_vanished_events(project: Path) -> None:
    conn = connector(project)
    _, batches = pull_all(conn)
    state = batches[-1].state
    again, quiet = pull_all(conn, state)
    assert again == [] and [d for b in quiet for d in b.deleted] == []
    feed = project / "feeds" / "sports_hall.ics"
    text = feed.read_text(encoding="utf-8")
    text = text.replace("Simhallen / Uimahalli", "Simhallen, bassäng 2 / Uimahalli, allas 2")
    start = text.index("BEGIN:VEVENT\nUID:kvallspass")
    end = text.index("END:VEVENT\n", start) + len("END:VEVENT\n")
    feed.write_text(text[:start] + text[end:], encoding="utf-8")
    changed, after = pull_all(conn, state)
    assert [r["key"] for r in changed] == ["simskola-2025-0305@hallen.example.fi"]
    assert [d for b in after for d in b.deleted] == ["kvallspass-2025@hallen.example.fi"]
    assert pull_all(conn, after[-1].state)[0] == []


def test_occurrences_sliding_out_of_the_window_are_forgotten_not_deleted(project: Path) -> None:
    _, batches = pull_all(connector(project))
    later = connector(project, now=NOW + timedelta(days=40))
    records, after = pull_all(later, batches[-1].state)
    assert [d for b in after for d in b.deleted] == []
    assert records == []  # nothing new later on: the series ended on 7 April
    assert "kvallspass-2025@hallen.example.fi" not in after[-1].state["seen"]


def test_a_cancelled_occurrence_of_a_series_is_deleted_once(project: Path) -> None:
    feed = project / "feeds" / "sports_hall.ics"
    conn = connector(project)
    _, batches = pull_all(conn)
    override = (
        "BEGIN:VEVENT\nUID:innebandy-2025@hallen.example.fi\n"
        "RECURRENCE-ID;TZID=Europe/Helsinki:20250310T170000\n"
        "DTSTART;TZID=Europe/Helsinki:20250310T170000\n"
        "DTEND;TZID=Europe/Helsinki:20250310T183000\n"
        "SUMMARY:Inställt / Peruttu\nSTATUS:CANCELLED\nSEQUENCE:3\nEND:VEVENT\n"
    )
    feed.write_text(
        feed.read_text(encoding="utf-8").replace("END:VCALENDAR", override + "END:VCALENDAR"),
        encoding="utf-8",
    )
    records, after = pull_all(conn, batches[-1].state)
    assert records == []
    assert [d for b in after for d in b.deleted] == [f"{SERIES}::2025-03-10T15:00:00+00:00"]
    again = list(conn.pull("bookings", after[-1].state))
    assert [d for b in again for d in b.deleted] == []


def test_every_batch_state_resumes_without_loss(project: Path) -> None:
    conn = connector(project, batch_size=3)
    records, batches = pull_all(conn)
    assert [len(b.records) for b in batches] == [3, 3, 2]
    everything = {r["key"] for r in records}
    seen: set[str] = set()
    for batch in batches[:-1]:
        seen |= {r["key"] for r in batch.records}
        rest, _ = pull_all(conn, batch.state)
        assert seen | {r["key"] for r in rest} == everything
        assert not seen & {r["key"] for r in rest}


def test_malformed_events_are_rejected_with_reasons_once(project: Path) -> None:
    conn = connector(project, {"path": "feeds/broken_events.ics"})
    records, batches = pull_all(conn)
    assert [r["uid"] for r in records] == ["ok-1@hallbokaren.example.fi"]
    rejected = [r for b in batches for r in b.rejected]
    assert [(r.reason, r.position) for r in rejected] == [
        (
            "unreadable DTSTART: Wrong datetime format: 2025-03-05 kl 18",
            "feeds/broken_events.ics VEVENT #2 UID bad-start@hallbokaren.example.fi",
        ),
        ("no UID", "feeds/broken_events.ics VEVENT #3"),
        (
            "unreadable RRULE: Expected frequency, got: SOMETIMES",
            "feeds/broken_events.ics VEVENT #4 UID bad-rule@hallbokaren.example.fi",
        ),
        (
            "DTEND is before DTSTART",
            "feeds/broken_events.ics VEVENT #5 UID backwards@hallbokaren.example.fi",
        ),
    ]
    assert "131052-***T" in rejected[0].excerpt and "308T" not in rejected[0].excerpt
    _, again = pull_all(conn, batches[-1].state)
    assert [r for b in again for r in b.rejected] == []


def test_a_file_that_is_not_icalendar_fails_naming_it(project: Path) -> None:
    conn = connector(project, {"path": "feeds/not_a_calendar.ics"})
    with pytest.raises(FatalSourceError, match=r"feed feeds/not_a_calendar.ics: not iCalendar: "):
        pull_all(conn)
    result = conn.check()
    assert not result.ok and "not_a_calendar.ics" in result.message


def test_a_path_out_of_the_project_is_refused(project: Path) -> None:
    conn = connector(project / "feeds", {"path": "../feeds/../../etc/passwd"})
    with pytest.raises(FatalSourceError, match="must stay inside the project folder"):
        pull_all(conn)
    assert not connector(project, {"path": "feeds/missing.ics"}).check().ok


def test_an_unknown_time_zone_is_fatal(project: Path) -> None:
    with pytest.raises(FatalSourceError, match="unknown time zone 'Europe/Helsinky'"):
        pull_all(connector(project, timezone="Europe/Helsinky"))


# --- url feeds against a real HTTP server on loopback ---------------------------------------


class FeedHandler(BaseHTTPRequestHandler):
    """Serves the sports hall feed, and a few failures, like a booking tool would."""

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/hall.ics":
            body = (FIXTURES / "sports_hall.ics").read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "text/calendar; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        status = {"/busy.ics": 503, "/slow-down.ics": 429, "/private.ics": 403}.get(path, 404)
        self.send_response(status)
        if status in (429, 503):
            self.send_header("Retry-After", "120")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        return None


@pytest.fixture(scope="module")
def feed_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FeedHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_url_feed_gives_the_same_records_as_the_file(project: Path, feed_server: str) -> None:
    url = Secret("HALL_FEED_URL", f"{feed_server}/hall.ics?token=s3cret")
    conn = connector(None, {"url": url, "timeout": 5})
    assert conn.check().ok
    assert pull_all(conn)[0] == pull_all(connector(project))[0]


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("busy.ics", RetriableSourceError),
        ("slow-down.ics", RetriableSourceError),
        ("private.ics", FatalSourceError),
        ("missing.ics", FatalSourceError),
    ],
)
def test_http_statuses_map_to_retriable_or_fatal(
    feed_server: str, path: str, error: type[Exception]
) -> None:
    url = Secret("HALL_FEED_URL", f"{feed_server}/{path}?token=s3cret")
    conn = connector(None, {"url": url, "retries": 0})
    with pytest.raises(error) as caught:
        pull_all(conn)
    assert "s3cret" not in str(caught.value)
    assert f"/{path}?token=***: HTTP" in str(caught.value)
    if isinstance(caught.value, RetriableSourceError):
        assert caught.value.retry_after == 120.0


def test_an_unreachable_url_is_retriable() -> None:
    conn = connector(None, {"url": "http://127.0.0.1:9/hall.ics", "timeout": 2, "retries": 0})
    with pytest.raises(RetriableSourceError, match="ConnectionError"):
        pull_all(conn)
    assert not conn.check().ok
