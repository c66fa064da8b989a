"""The ics connector: iCalendar feeds of booking and calendar tools, one record per occurrence.

Sports halls and meeting rooms publish their bookings as an iCalendar feed (a file or a URL).
Recurring events are expanded within a window around today (`window_days_past`,
`window_days_future`), so each occurrence is a record with the key `UID` or
`UID::RECURRENCE-ID` (the occurrence's original start in UTC). The state keeps a fingerprint
and start of every key seen: a re-run returns only new or changed occurrences, reports
cancelled ones and ones that vanished from the feed (inside the window) as deleted, and
quietly forgets those that slid out of the window. A malformed VEVENT is quarantined with
its reason; a feed that is not iCalendar at all fails the run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import recurring_ical_events

from connectors.base import Batch, CheckResult, Connector, Rejected, State
from connectors.http import HttpClient, register_secret
from islandhub.errors import FatalSourceError, RetriableSourceError
from islandhub.privacy.masking import mask_text
from islandhub.secrets import Secret, reveal

DEFAULT_BATCH_SIZE = 500
DEFAULT_DAYS_PAST = 30
DEFAULT_DAYS_FUTURE = 180
DEFAULT_TIMEZONE = "Europe/Helsinki"  # for floating times (no TZID, no Z)
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
EXCERPT_CHARS = 120
CANCELLED = "cancelled"  # the fingerprint of a key already reported as cancelled
#: Occurrences one series may have in the window. Expanding costs about 0.3 ms each, so a
#: four-line `RRULE:FREQ=SECONDLY` would otherwise hang the sync for hours; an hourly
#: booking over a 210-day window is 5,040.
MAX_OCCURRENCES = 10_000
_FREQ_SECONDS = {
    "SECONDLY": 1,
    "MINUTELY": 60,
    "HOURLY": 3600,
    "DAILY": 86400,
    "WEEKLY": 7 * 86400,
    "MONTHLY": 28 * 86400,
    "YEARLY": 365 * 86400,
}
# BY parts that may multiply the occurrences of one period (the others only filter).
_EXPANDING = ("BYMONTH", "BYWEEKNO", "BYYEARDAY", "BYMONTHDAY", "BYHOUR", "BYMINUTE", "BYSECOND")

_DAYS = {"type": "integer", "minimum": 0, "maximum": 3660}
_FEED = {
    "path": {"type": "string", "minLength": 1, "description": "an .ics file in the project"},
    "url": {
        "anyOf": [{"type": "string", "pattern": "^https?://"}, {"secret": True}],
        "x-message": "url is an http(s) URL, or {secret: NAME} when the URL holds a token",
    },
}


class IcsConnector(Connector):
    """Reads an iCalendar feed; each event occurrence in the window is one record."""

    kind = "ics"
    connection_schema = {
        "type": "object",
        "properties": {
            **_FEED,
            "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 600},
            "retries": {"type": "integer", "minimum": 0, "maximum": 10},
        },
        "oneOf": [{"required": ["path"]}, {"required": ["url"]}],
        "x-message": "give either path or url; not both",
        "additionalProperties": False,
    }
    stream_schema = {
        "type": "object",
        "properties": {
            **_FEED,  # a stream may read its own feed instead of the connection's
            "window_days_past": _DAYS,
            "window_days_future": _DAYS,
            "timezone": {"type": "string", "description": "IANA zone of floating times"},
            "batch_size": {"type": "integer", "minimum": 1, "maximum": 1000000},
        },
        # Its own feed is optional, but one feed only: path, url, or neither.
        "oneOf": [
            {"required": ["path"]},
            {"required": ["url"]},
            {"not": {"anyOf": [{"required": ["path"]}, {"required": ["url"]}]}},
        ],
        "x-message": "give the stream either its own path or its own url; not both",
        "additionalProperties": False,
    }

    def __init__(
        self,
        system: str,
        connection: Any,
        streams: Any,
        *,
        root: Path | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(system, connection, streams, root=root)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.timeout = float(connection.get("timeout", DEFAULT_TIMEOUT))
        self.retries = int(connection.get("retries", DEFAULT_RETRIES))

    def check(self) -> CheckResult:
        """Every stream's feed can be read and parsed as iCalendar."""
        try:
            counts = []
            for name in self.streams():
                feed = self._feed(self.stream_specs[name].options)
                calendar = _parse(self._read(feed), feed.name)
                counts.append(f"{feed.name}: {len(_events(calendar))} events")
        except (FatalSourceError, RetriableSourceError) as exc:
            return CheckResult(False, str(exc))
        return CheckResult(True, "; ".join(counts))

    def pull(self, stream: str, state: State | None) -> Iterator[Batch]:
        """Yield new and changed occurrences in the window; deletes and rejects first."""
        options = self.stream_specs[stream].options
        feed = self._feed(options)
        calendar = _parse(self._read(feed), feed.name)
        window = self._window(options)
        occurrences, rejected = _occurrences(calendar, window, _zone(options), feed.name)
        plan = _Plan.make(occurrences, rejected, dict(state or {}), window)
        yield from plan.batches(int(options.get("batch_size", DEFAULT_BATCH_SIZE)))

    def _read(self, feed: _Feed) -> str:
        return feed.read(self.system, self.timeout, self.retries)

    def _window(self, options: Mapping[str, Any]) -> Window:
        now = self.clock()
        past = timedelta(days=int(options.get("window_days_past", DEFAULT_DAYS_PAST)))
        future = timedelta(days=int(options.get("window_days_future", DEFAULT_DAYS_FUTURE)))
        return Window(now - past, now + future)

    def _feed(self, options: Mapping[str, Any]) -> _Feed:
        """The stream's own feed, else the connection's."""
        source = options if ("path" in options or "url" in options) else self.connection
        if source.get("url") is not None:
            url = str(reveal(source["url"]))
            if isinstance(source["url"], Secret):
                _register_url_secrets(url)
            return _Feed(_printable_url(url), url=url)
        if source.get("path") is None:
            raise FatalSourceError(f"{self.system}: give the feed's path or url")
        path = _confined(str(source["path"]), self.root)
        return _Feed(str(source["path"]), path=path)


# --- reading the feed -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Feed:
    """Where a feed comes from; `name` is safe to print (no token from the URL)."""

    name: str
    path: Path | None = None
    url: str | None = None

    def read(self, system: str, timeout: float, retries: int) -> str:
        """The feed's text."""
        if self.url is not None:
            return _fetch(self.url, system, self.name, timeout, retries)
        assert self.path is not None
        try:
            return self.path.read_bytes().decode("utf-8-sig")
        except FileNotFoundError:
            raise FatalSourceError(f"feed {self.name}: file {self.path} does not exist") from None
        except UnicodeDecodeError as exc:
            raise FatalSourceError(
                f"feed {self.name}: byte {exc.start} is not UTF-8 (iCalendar feeds are UTF-8)"
            ) from None
        except OSError as exc:
            raise FatalSourceError(f"feed {self.name}: cannot read: {exc.strerror}") from None


def _confined(given: str, root: Path | None) -> Path:
    """A relative path resolved inside the project folder; a way out of it is refused."""
    path = Path(given)
    if path.is_absolute():
        return path
    base = (root or Path.cwd()).resolve()
    resolved = (base / path).resolve()
    if not resolved.is_relative_to(base):
        raise FatalSourceError(f"feed path {given!r} must stay inside the project folder {base}")
    return resolved


def _fetch(url: str, system: str, name: str, timeout: float, retries: int) -> str:
    """GET the feed with the shared HTTP client (429, 5xx, timeouts retried; other 4xx fatal)."""
    with HttpClient(system, base_url=url, timeout=timeout, retries=retries) as client:
        response = client.request("GET", url, headers={"Accept": "text/calendar, */*"})
    try:
        return response.content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FatalSourceError(f"feed {name}: byte {exc.start} is not UTF-8") from None


def _register_url_secrets(url: str) -> None:
    """A feed URL given as a secret hides its token in the query or user info: redact those."""
    parts = urlsplit(url)
    for _name, value in parse_qsl(parts.query):
        register_secret(value)
    if parts.password:
        register_secret(parts.password)


def _printable_url(url: str) -> str:
    """The URL without user info, query or fragment: feed tokens often hide there."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _parse(text: str, name: str) -> icalendar.Calendar:
    """The VCALENDAR of a feed, or FatalSourceError naming the feed and the reason."""
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except ValueError as exc:
        raise FatalSourceError(f"feed {name}: not iCalendar: {mask_text(str(exc))}") from None
    if not isinstance(calendar, icalendar.Calendar):
        raise FatalSourceError(f"feed {name}: not iCalendar: no VCALENDAR")
    return calendar


def _events(calendar: icalendar.Calendar) -> list[icalendar.Component]:
    return [c for c in calendar.subcomponents if c.name == "VEVENT"]


def _zone(options: Mapping[str, Any]) -> ZoneInfo:
    name = str(options.get("timezone", DEFAULT_TIMEZONE))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise FatalSourceError(f"unknown time zone {name!r}") from None


# --- occurrences ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """The time span occurrences are expanded in."""

    start: datetime
    end: datetime

    def holds(self, start_iso: str) -> bool:
        """Whether an occurrence starting at this (UTC ISO) time lies in the window."""
        return self.start <= datetime.fromisoformat(start_iso) < self.end


@dataclass(frozen=True)
class Occurrence:
    """One occurrence of an event, as a record, with what the state keeps of it."""

    key: str
    record: dict[str, Any]
    start: str  # UTC ISO
    cancelled: bool

    @property
    def fingerprint(self) -> str:
        """A hash of everything in the record: any change in the feed changes it."""
        text = json.dumps(self.record, sort_keys=True, ensure_ascii=False)
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _occurrences(
    calendar: icalendar.Calendar, window: Window, zone: ZoneInfo, name: str
) -> tuple[list[Occurrence], list[Rejected]]:
    """Every occurrence in the window, and the VEVENTs (or series) that could not be read."""
    series, rejected = _series(calendar, name)
    timezones = [c for c in calendar.subcomponents if c.name == "VTIMEZONE"]
    found: list[Occurrence] = []
    for uid, events in series.items():
        single = icalendar.Calendar()
        for component in [*timezones, *events]:
            single.add_component(component)
        recurring = any(p in e for e in events for p in ("RRULE", "RDATE", "RECURRENCE-ID"))
        sequences = _own_sequences(events, zone)
        most = sum(_most_occurrences(event, window) for event in events)
        if most > MAX_OCCURRENCES:
            reason = (
                f"the events of UID {uid} recur up to {most} times in the window, more than "
                f"{MAX_OCCURRENCES}: refused (a booking feed never needs that many)"
            )
            rejected.append(_rejected(reason, events[0], f"{name} UID {uid}"))
            continue
        try:
            expanded = recurring_ical_events.of(single).between(window.start, window.end)
            found.extend(_occurrence(o, recurring, zone, sequences) for o in expanded)
        # ValueError: icalendar's and recurring_ical_events' InvalidCalendar; OverflowError:
        # a DURATION or date that ends past the year 9999.
        except (ValueError, OverflowError) as exc:
            reason = f"cannot expand the events of UID {uid}: {exc}"
            rejected.append(_rejected(reason, events[0], f"{name} UID {uid}"))
    return found, rejected


def _most_occurrences(event: icalendar.Component, window: Window) -> int:
    """An upper bound (roughly) of the occurrences of one VEVENT in the window, cheaply.

    Each RRULE gives at most one occurrence per period (its FREQ times INTERVAL) that the
    window holds, times the values of the BY parts that expand a period, and at most COUNT.
    """
    span = (window.end - window.start).total_seconds()
    most = 1 + sum(len(getattr(dates, "dts", ())) for dates in _as_list(event.get("RDATE")))
    for rule in _as_list(event.get("RRULE")):
        freq = str(_first(rule, "FREQ", "DAILY")).upper()
        interval = max(_as_int(_first(rule, "INTERVAL", 1)), 1)
        periods = int(span // (_FREQ_SECONDS.get(freq, 1) * interval)) + 1
        per_period = 1
        for part in (*_EXPANDING, "BYDAY"):
            values = len(_as_list(rule.get(part)))
            if part == "BYDAY" and freq in ("MONTHLY", "YEARLY"):
                values *= 5 if freq == "MONTHLY" else 53  # MO: every Monday of the period
            per_period *= max(values, 1)
        count = _as_int(_first(rule, "COUNT", 0))
        most += min(periods * per_period, count) if count > 0 else periods * per_period
    return most


def _first(rule: Any, part: str, default: Any) -> Any:
    values = _as_list(rule.get(part))
    return values[0] if values else default


def _as_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 1


def _series(
    calendar: icalendar.Calendar, name: str
) -> tuple[dict[str, list[icalendar.Component]], list[Rejected]]:
    """The readable VEVENTs grouped by UID; the others rejected with their reason."""
    series: dict[str, list[icalendar.Component]] = {}
    masters: set[str] = set()
    rejected: list[Rejected] = []
    for number, event in enumerate(_events(calendar), start=1):
        reason = _malformed(event)
        uid = str(event.get("UID", ""))
        position = f"{name} VEVENT #{number}" + (f" UID {uid}" if uid else "")
        if reason is None and "RECURRENCE-ID" not in event:
            if uid in masters:
                reason = f"a second VEVENT with UID {uid} and no RECURRENCE-ID"
            masters.add(uid)
        if reason:
            rejected.append(_rejected(reason, event, position))
        else:
            series.setdefault(uid, []).append(event)
    return series, rejected


# Properties RFC 5545 allows once in a VEVENT, read here or by the expansion: a second one
# comes back as a list, which neither expects.
_ONCE = (
    "UID",
    "DTSTART",
    "DTEND",
    "DURATION",
    "RECURRENCE-ID",
    "SEQUENCE",
    "STATUS",
    "SUMMARY",
    "LOCATION",
    "DESCRIPTION",
    "ORGANIZER",
    "LAST-MODIFIED",
)


def _malformed(event: icalendar.Component) -> str | None:
    """Why a VEVENT cannot be read, or None."""
    if event.errors:
        prop, message = event.errors[0]
        return f"unreadable {prop}: {message}"
    twice = next((name for name in _ONCE if isinstance(event.get(name), list)), None)
    if twice is not None:
        return f"{twice} occurs more than once"
    if not str(event.get("UID", "")).strip():
        return "no UID"
    if "DTSTART" not in event:
        return "no DTSTART"
    start, end = _moment(event, "DTSTART"), _moment(event, "DTEND")
    if start is None:
        return "DTSTART is not a date or time"
    if end is not None and type(end) is type(start) and _before(end, start):
        return "DTEND is before DTSTART"
    return None


def _before(end: date, start: date) -> bool:
    if isinstance(end, datetime) and isinstance(start, datetime):
        zone = ZoneInfo(DEFAULT_TIMEZONE)  # only to compare a floating time with a fixed one
        return _as_datetime(end, zone) < _as_datetime(start, zone)
    return end < start


def _moment(event: icalendar.Component, name: str) -> date | None:
    """A date or date-time property's value (a datetime is a date too), or None."""
    value: Any = event.decoded(name) if name in event else None
    return value if isinstance(value, date) else None


def _rejected(reason: str, event: icalendar.Component, position: str) -> Rejected:
    excerpt = event.to_ical().decode("utf-8", errors="replace").replace("\r\n", "\\n")
    return Rejected(mask_text(reason), mask_text(excerpt)[:EXCERPT_CHARS], position)


def _own_sequences(events: list[icalendar.Component], zone: ZoneInfo) -> dict[str | None, int]:
    """SEQUENCE of each override by its RECURRENCE-ID (UTC ISO), and the master's under None.

    recurring_ical_events gives every occurrence the series' highest SEQUENCE; one changed
    occurrence would then make every other one look changed too.
    """
    sequences: dict[str | None, int] = {}
    for event in events:
        original = _moment(event, "RECURRENCE-ID")
        sequences[_utc_iso(original, zone) if original else None] = int(event.get("SEQUENCE", 0))
    return sequences


def _occurrence(
    event: icalendar.Component, recurring: bool, zone: ZoneInfo, sequences: dict[str | None, int]
) -> Occurrence:
    """One expanded occurrence as a record."""
    uid = str(event["UID"])
    start = _moment(event, "DTSTART") or date.min  # a readable DTSTART was checked before
    end = _moment(event, "DTEND")
    original = _moment(event, "RECURRENCE-ID") or start
    recurrence_id = _utc_iso(original, zone) if recurring else None
    modified = _moment(event, "LAST-MODIFIED")
    key = f"{uid}::{recurrence_id}" if recurrence_id else uid
    status = str(event.get("STATUS", "")).upper() or None
    record = {
        "key": key,
        "uid": uid,
        "recurrence_id": recurrence_id,
        "summary": _text(event.get("SUMMARY")),
        "location": _text(event.get("LOCATION")),
        "description": _text(event.get("DESCRIPTION")),
        "start": _local_iso(start, zone),
        "end": _local_iso(end, zone) if end is not None else None,
        "all_day": not isinstance(start, datetime),
        "organizer": _person(event.get("ORGANIZER")),
        "attendees": [_attendee(a) for a in _as_list(event.get("ATTENDEE"))],
        "status": status,
        "sequence": sequences.get(recurrence_id, sequences.get(None, 0)),
        "last_modified": _utc_iso(modified, zone) if modified is not None else None,
    }
    return Occurrence(key, record, _utc_iso(_as_datetime(start, zone), zone), status == "CANCELLED")


def _as_datetime(value: date, zone: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=zone)
    return datetime(value.year, value.month, value.day, tzinfo=zone)


def _local_iso(value: date, zone: ZoneInfo) -> str:
    """ISO text with the offset in the stream's zone; an all-day date stays a date."""
    if not isinstance(value, datetime):
        return value.isoformat()
    return _as_datetime(value, zone).astimezone(zone).isoformat()


def _utc_iso(value: date, zone: ZoneInfo) -> str:
    """ISO text in UTC: the same instant always gives the same key, however it was written."""
    if not isinstance(value, datetime):
        return value.isoformat()
    return _as_datetime(value, zone).astimezone(UTC).isoformat()


def _text(value: Any) -> str | None:
    return str(value) if value is not None else None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _person(address: Any) -> dict[str, str | None] | None:
    """Name (CN) and email of an ORGANIZER or ATTENDEE, `mailto:` stripped."""
    if address is None:
        return None
    email = str(address)
    if email.lower().startswith("mailto:"):
        email = email[len("mailto:") :]
    params = getattr(address, "params", {})
    return {"name": _text(params.get("CN")), "email": email or None}


def _attendee(address: Any) -> dict[str, str | None]:
    person = _person(address) or {}
    partstat = getattr(address, "params", {}).get("PARTSTAT")
    return {**person, "partstat": str(partstat).upper() if partstat else None}


# --- what is new since the state --------------------------------------------------------------


@dataclass
class _Plan:
    """What a pull reports, against the state: changed records, deleted keys, new rejects."""

    changed: list[Occurrence]
    deleted: list[str]
    cancelled: list[Occurrence]
    rejected: list[Rejected]
    seen: dict[str, list[str]]  # key -> [fingerprint, start]: the state before any batch
    rejected_state: list[str]

    @classmethod
    def make(
        cls, occurrences: list[Occurrence], rejected: list[Rejected], state: State, window: Window
    ) -> _Plan:
        """Compare the feed now with the state of the last committed batch."""
        previous: dict[str, list[str]] = dict(state.get("seen", {}))
        current = {o.key: o for o in occurrences}
        # Gone from the feed: deleted inside the window, forgotten once it slid out of it.
        deleted = sorted(
            k for k, (_fp, start) in previous.items() if k not in current and window.holds(start)
        )
        seen = {k: v for k, v in previous.items() if k in current}
        changed, cancelled = [], []
        for key in sorted(current):
            occurrence = current[key]
            known = previous.get(key, [None])[0]
            if occurrence.cancelled and known != CANCELLED:
                cancelled.append(occurrence)
            elif not occurrence.cancelled and known != occurrence.fingerprint:
                changed.append(occurrence)
        known_rejects = set(state.get("rejected", []))
        fingerprints = [_reject_fingerprint(r) for r in rejected]
        new_rejects = [
            r for r, f in zip(rejected, fingerprints, strict=True) if f not in known_rejects
        ]
        return cls(changed, deleted, cancelled, new_rejects, seen, sorted(set(fingerprints)))

    def batches(self, size: int) -> Iterator[Batch]:
        """Deletes, cancellations and rejects with the first batch; state after each."""
        seen = dict(self.seen)
        for occurrence in self.cancelled:
            seen[occurrence.key] = [CANCELLED, occurrence.start]
        first = Batch(
            [],
            {},
            rejected=self.rejected,
            deleted=[*self.deleted, *(o.key for o in self.cancelled)],
        )
        chunks = [self.changed[i : i + size] for i in range(0, len(self.changed), size)] or [[]]
        for index, chunk in enumerate(chunks):
            batch = first if index == 0 else Batch([], {})
            for occurrence in chunk:
                batch.records.append(occurrence.record)
                seen[occurrence.key] = [occurrence.fingerprint, occurrence.start]
            batch.state = {"seen": dict(seen), "rejected": self.rejected_state}
            yield batch


def _reject_fingerprint(rejected: Rejected) -> str:
    text = f"{rejected.reason}\n{rejected.excerpt}"
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
