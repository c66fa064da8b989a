"""Cross-system checks and freshness on small hand-made archipelagos."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from islandhub.quality import cross
from islandhub.quality.freshness import freshness, parse_cron

COLUMNS = list(cross.FRAME_COLUMNS)


def frame(*records: dict) -> pd.DataFrame:
    return pd.DataFrame([{c: r.get(c) for c in COLUMNS} for r in records], dtype=object)


REGISTER = [
    {"system": "pop", "stream": "p", "source_id": "P1", "resident": "r1",
     "given_name": "Anna Maria", "family_name": "Virtanen", "address.street": "Kirkkotie 5",
     "address.street_sv": "Kyrkvägen 5", "address.postal_code": "04130", "language": "fi"},
    {"system": "pop", "stream": "p", "source_id": "P2", "resident": "r2", "given_name": "Erik",
     "family_name": "Lindqvist", "address.street": "Rantatie 1", "address.postal_code": "04130",
     "language": "sv"},
]  # fmt: skip


def test_agreement_with_the_register_per_field():
    data = frame(
        *REGISTER,
        # agrees in every field; the Swedish street name counts, so does one given name
        {"system": "lib", "stream": "s", "source_id": "L1", "resident": "r1",
         "given_name": "anna", "family_name": "VIRTANEN", "address.street": "Kyrkvägen 5",
         "language": "fi"},
        # a nickname, another family name, an old address, another language
        {"system": "lib", "stream": "s", "source_id": "L2", "resident": "r2",
         "given_name": "Erkki", "family_name": "Lindqvist-Berg", "address.street": "Rantatie 1",
         "address.postal_code": "00100", "language": "fi"},
        # not in the register: not compared
        {"system": "lib", "stream": "s", "source_id": "L3", "resident": "r9", "given_name": "X"},
    )  # fmt: skip
    found = cross.register_agreement(data, "pop")
    assert set(found) == {"lib"}
    summary = {k: (v["compared"], v["agreed"], v["examples"]) for k, v in found["lib"].items()}
    assert summary == {
        "given_name": (2, 1, ["L2"]),
        "family_name": (2, 1, ["L2"]),
        "address": (2, 1, ["L2"]),
        "language": (2, 1, ["L2"]),
    }


def test_records_not_linked_to_the_register():
    data = frame(
        *REGISTER,
        {"system": "lib", "stream": "s", "source_id": "L1", "resident": "r1"},
        {"system": "lib", "stream": "s", "source_id": "L2", "resident": "r7"},
        {"system": "lib", "stream": "s", "source_id": "L3", "resident": None},
    )
    assert cross.unlinked(data, "pop") == {
        "lib": {"records": 3, "unlinked": 2, "examples": ["L2", "L3"]}
    }


def test_a_contact_point_shared_across_homes_conflicts_a_family_one_does_not():
    data = frame(
        *REGISTER,
        {"system": "pop", "stream": "p", "source_id": "P3", "resident": "r3",
         "address.street": "Kirkkotie 5", "address.postal_code": "04130"},
        # r1 and r3 share a home: their family email is fine
        {"system": "crm", "stream": "c", "source_id": "C1", "resident": "r1", "email": "koti@x.fi"},
        {"system": "crm", "stream": "c", "source_id": "C3", "resident": "r3", "email": "Koti@x.fi"},
        # r1 and r2 live apart: the same phone on both is a conflict
        {"system": "crm", "stream": "c", "source_id": "C4", "resident": "r1",
         "phone": "+358401234567"},
        {"system": "lib", "stream": "s", "source_id": "L2", "resident": "r2",
         "phone": "+358401234567"},
    )  # fmt: skip
    found = cross.contact_conflicts(data, "pop")
    assert found["crm"] == {"records": 3, "conflicting": 1, "examples": ["C4"]}
    assert found["lib"] == {"records": 1, "conflicting": 1, "examples": ["L2"]}


def test_duplicates_inside_one_stream_but_not_in_activities():
    data = frame(
        {"system": "lib", "stream": "patrons", "source_id": "A", "resident": "r1"},
        {"system": "lib", "stream": "patrons", "source_id": "B", "resident": "r1"},
        {"system": "lib", "stream": "patrons", "source_id": "C", "resident": "r1"},
        {"system": "lib", "stream": "patrons", "source_id": "D", "resident": "r2"},
        {"system": "book", "stream": "bookings", "source_id": "E", "resident": "r2"},
        {"system": "book", "stream": "bookings", "source_id": "F", "resident": "r2"},
    )
    found = cross.duplicates(data, [("book", "bookings")])
    assert found == {
        "lib": {"records": 4, "duplicates": 2, "groups": 1, "examples": ["A", "B", "C"]}
    }


NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)  # 14:00 in Helsinki


@pytest.mark.parametrize(
    ("schedule", "last", "missed"),
    [
        ("45 6 * * *", NOW - timedelta(hours=2), 0),
        ("45 6 * * *", NOW - timedelta(days=3), 3),
        ("15 */2 * * *", NOW - timedelta(hours=5), 2),  # 10:15 and 12:15 local
        ("@hourly", NOW - timedelta(minutes=50), 0),  # the 14:00 run is still in its grace
        ("0 9 * * mon-fri", NOW - timedelta(days=7), 5),
    ],
)
def test_freshness_counts_missed_scheduled_runs(schedule, last, missed):
    found = freshness(schedule, last, NOW, "Europe/Helsinki")
    assert found["missed"] == missed
    assert found["score"] == pytest.approx(1 / (1 + missed))


def test_manual_islands_have_no_freshness_and_bad_schedules_none_either():
    assert freshness(None, NOW, NOW, "Europe/Helsinki")["score"] is None
    assert parse_cron("61 * * * *") is None and parse_cron("* * *") is None
    never = freshness("@daily", None, NOW, "Europe/Helsinki")
    assert never["score"] < 0.05  # never synced: very stale
