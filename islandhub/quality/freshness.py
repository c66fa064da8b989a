"""Freshness: the last successful sync of an island against its cron schedule.

A scheduled run that should have happened after the last successful sync (and more than a
grace period ago, so that a run under way is not counted) is a missed run. The score is
1 / (1 + missed runs): 100 % on schedule, 50 % one run missed, 33 % two, ... An island
synced by hand only (`schedule: null`) has no freshness score. Runs are looked for at most
LOOKBACK back: an island silent for longer than that counts as very stale (score near 0).
"""

from __future__ import annotations

import calendar
import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

GRACE = timedelta(minutes=30)
LOOKBACK = timedelta(days=35)
_MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_NAMES = {
    3: {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m},
    4: {d.lower(): (i + 1) % 7 for i, d in enumerate(calendar.day_abbr)},
}
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


@dataclass(frozen=True)
class Cron:
    """A parsed five-field cron schedule: the allowed values of each field."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day-of-month was *
    any_weekday: bool  # day-of-week was *

    def matches_day(self, day: date) -> bool:
        """Cron's rule: when both day fields are restricted, either may match."""
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return in_month and in_week
        return in_month or in_week


def parse_cron(text: str) -> Cron | None:
    """Parse a schedule; None when it is not one this module understands."""
    fields = _MACROS.get(text.strip(), text).split()
    if len(fields) != 5:
        return None
    try:
        parsed = [_field(f, i) for i, f in enumerate(fields)]
    except ValueError:
        return None
    minutes, hours, days, months, weekdays = parsed
    sunday_is_0 = frozenset(d % 7 for d in weekdays)
    return Cron(minutes, hours, days, months, sunday_is_0, fields[2] == "*", fields[4] == "*")


def _field(text: str, index: int) -> frozenset[int]:
    low, high = _RANGES[index]
    values: set[int] = set()
    for part in text.lower().split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if body == "*":
            start, end = low, high
        elif "-" in body:
            first, last = body.split("-", 1)
            start, end = _value(first, index), _value(last, index)
        else:
            start = _value(body, index)
            end = high if step_text else start
        if not (low <= start <= end <= high) or step < 1:
            raise ValueError(part)
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _value(text: str, index: int) -> int:
    names = _NAMES.get(index, {})
    return names[text] if text in names else int(text)


def fire_times(cron: Cron, start: datetime, end: datetime) -> list[datetime]:
    """The scheduled times in (start, end], in `start`'s time zone."""
    found = []
    day = start.date()
    while day <= end.date():
        if cron.matches_day(day):
            for hour in sorted(cron.hours):
                for minute in sorted(cron.minutes):
                    at = datetime(day.year, day.month, day.day, hour, minute, tzinfo=start.tzinfo)
                    if start < at <= end:
                        found.append(at)
        day += timedelta(days=1)
    return found


def freshness(
    schedule: str | None, last_success: datetime | None, now: datetime, timezone: str
) -> dict[str, Any]:
    """The island's freshness: score, missed runs, last success, the run now due."""
    base: dict[str, Any] = {
        "schedule": schedule,
        "last_success": last_success.isoformat() if last_success else None,
    }
    cron = parse_cron(schedule) if schedule else None
    if cron is None:
        return {**base, "score": None, "missed": None}
    zone = zoneinfo.ZoneInfo(timezone)
    local_now = now.astimezone(zone)
    since = last_success.astimezone(zone) if last_success else local_now - LOOKBACK
    since = max(since, local_now - LOOKBACK)
    due = [at for at in fire_times(cron, since, local_now) if at <= local_now - GRACE]
    missed = len(due) + (1 if last_success is None else 0)
    return {**base, "score": 1 / (1 + missed), "missed": missed}
