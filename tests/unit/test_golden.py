"""Survivorship and lineage of the golden record, rule by rule."""

from __future__ import annotations

from islandhub.resolve.golden import (
    Observation,
    _from_many,
    _from_one,
    build_golden,
    expand_lineage,
)


def obs(system, source_id, observed_at="2026-01-01T00:00:00+00:00", **fields):
    return Observation(system, "s", source_id, fields, observed_at, f"run-{system}")


def golden(resident_id, observations, priority):
    record, compact = build_golden(resident_id, observations, priority)
    return record, expand_lineage(compact)


def test_system_priority_wins_then_recency():
    record, lineage = golden(
        "r1",
        [
            obs("school", "2", "2026-03-01T00:00:00+00:00", given_name="Lisa"),
            obs("population", "1", "2026-01-01T00:00:00+00:00", given_name="Elisabet"),
            obs(
                "library", "3", "2026-02-01T00:00:00+00:00", given_name="Liisa", family_name="Berg"
            ),
            obs("crm", "4", "2026-04-01T00:00:00+00:00", family_name="Berg-Lind"),
        ],
        ["population", "school"],
    )
    assert record["given_name"] == "Elisabet"
    assert lineage["given_name"]["rule"] == "system_priority"
    assert record["family_name"] == "Berg-Lind"  # neither ranked: the most recent
    assert lineage["family_name"]["rule"] == "most_recent"


def test_contact_points_are_lists_with_every_source_and_one_primary():
    record, _ = golden(
        "r1",
        [
            obs("crm", "a", email="a@example.fi", phone="+358401234567"),
            obs("population", "b", email="b@example.fi"),
            obs("school", "c", email="a@example.fi"),
        ],
        ["population"],
    )
    assert record["emails"] == [
        {
            "address": "b@example.fi",
            "primary": True,
            "sources": [{"system": "population", "stream": "s", "source_id": "b"}],
        },
        {
            "address": "a@example.fi",
            "primary": False,
            "sources": [
                {"system": "crm", "stream": "s", "source_id": "a"},
                {"system": "school", "stream": "s", "source_id": "c"},
            ],
        },
    ]
    assert record["phones"][0]["number"] == "+358401234567"


def test_addresses_group_their_parts_and_merge_the_same_address():
    record, _ = golden(
        "r1",
        [
            obs(
                "population",
                "1",
                **{
                    "address.street": "Iso Kylätie 12",
                    "address.postal_code": "04130",
                    "address.street_sv": "Stora Byvägen 12",
                },
            ),
            obs(
                "school",
                "2",
                **{"address.street": "iso  kylätie 12", "address.postal_code": "04130"},
            ),
            obs("crm", "3", **{"address.street": "Boxvägen 8", "address.postal_code": "01190"}),
        ],
        ["population", "school"],
    )
    assert [(a["street"], a["primary"], len(a["sources"])) for a in record["addresses"]] == [
        ("Iso Kylätie 12", True, 2),
        ("Boxvägen 8", False, 1),
    ]
    assert record["addresses"][0]["street_sv"] == "Stora Byvägen 12"


def test_a_non_disclosure_order_from_any_island_wins():
    record, lineage = golden(
        "r1",
        [
            obs("population", "1", non_disclosure=False),
            obs("school", "2", non_disclosure=True),
        ],
        ["population"],
    )
    assert record["non_disclosure"] is True
    assert lineage["non_disclosure"] == {
        "system": "school",
        "stream": "s",
        "source_id": "2",
        "run_id": "run-school",
        "observed_at": "2026-01-01T00:00:00+00:00",
        "rule": "protective",
    }


def test_the_record_does_not_depend_on_input_order():
    items = [
        obs("a", str(i), f"2026-01-0{i + 1}T00:00:00+00:00", given_name=f"N{i}", email=f"{i}@x.fi")
        for i in range(4)
    ]
    assert build_golden("r", items, []) == build_golden("r", list(reversed(items)), [])


def test_the_single_source_fast_path_equals_the_general_rules():
    one = obs(
        "crm",
        "9",
        non_disclosure=True,
        given_name="Aino",
        email="a@x.fi",
        phone="+358401234567",
        **{
            "address.street": "Talmantie 45",
            "address.postal_code": "04240",
            "guardian.name": "Pekka",
        },
    )
    assert _from_one("r", one) == _from_many("r", [one], ["population"])
    plain = obs("crm", "8", non_disclosure=False, family_name="Berg")
    assert _from_one("r", plain) == _from_many("r", [plain], [])


def test_lineage_is_stored_with_each_source_once():
    _, compact = build_golden(
        "r", [obs("a", "1", given_name="X", family_name="Y"), obs("b", "2", email="e@x.fi")], []
    )
    assert len(compact["sources"]) == 2
    assert expand_lineage(compact)["family_name"]["source_id"] == "1"


# --- a resident founded from one record: texts made ahead (golden.founding) ---------------

FOUNDERS = [
    {},
    {"given_name": "Elsa", "family_name": "Virtanen"},
    {
        "national_id": "nid1:AbC",
        "given_name": "Märta Åsa",
        "family_name": 'O"Brien \\ Söderholm',
        "birth_date": "2003-03-29",
        "email": "a@b.fi",
        "phone": "+358401234567",
        "address.street": "Puistotie 1",
        "address.postal_code": "04130",
        "address.post_office": "Sipoo",
        "language": "sv",
        "municipality_code": "753",
    },
    {"non_disclosure": True, "given_name": None, "email": None},
    {"non_disclosure": False, "x.resident_id": "nested", "zzz": [1, 2], "n": 1.5},
    {"given_name": "\x00run", "family_name": "\x00observed"},  # the stand-ins as values
    {"sources": ["x"], "fields": {"a": 1}},  # the lineage's own keys as fields
    # Names where the golden record puts its own lists, or an address's own keys.
    {"email": "a@b.fi", "emails": "x", "phone": "+358401234567", "phones": ["y"]},
    {"identifiers": "x", "addresses": "y", "address.street": "Puistotie 1"},
    {"address.primary": "no", "address.sources": "x", "address.street": "Puistotie 1"},
    {"names.given": "Elsa", "address.street": "Puistotie 1"},  # a nested path
    # Not in sorted order, as a mapping may list them: the store's order decides.
    {"emails": "x", "email": "a@b.fi", "phones": ["y"], "phone": "+358401234567"},
    {"given_name": "Elsa", "address.street": "Puistotie 1", "birth_date": "2003-03-29"},
]


def test_founding_texts_filled_in_are_build_goldens():
    """The worker's texts (from the fields in the mapping's order) are those the writer
    builds from the fields it reads back from the store (sorted)."""
    from islandhub.resolve.golden import filled, founding
    from islandhub.store.db import dumps, loads

    for fields in FOUNDERS:
        stored = loads(dumps(fields))
        for source_id in ("R1", "nid1:sealed", 'odd "id"'):
            parts = founding("population", "persons", source_id, fields)
            assert parts is not None, fields
            rid, run, at = "01a2-rid", "01a2-run", "2026-11-27T17:00:00.123456+00:00"
            record, lineage = build_golden(
                rid, [Observation("population", "persons", source_id, stored, at, run)], []
            )
            assert filled(parts, rid, run, at) == (dumps(record), dumps(lineage))


def test_founding_lays_out_plain_shapes_by_a_plan_and_odd_ones_the_general_way():
    from islandhub.resolve.golden import _shape_of

    assert _shape_of(FOUNDERS[2]) is not None  # a mapping's fields, all present
    assert _shape_of({"given_name": "Elsa", "email": "a@b.fi"}) is not None
    for odd in (FOUNDERS[3], FOUNDERS[4], FOUNDERS[7], FOUNDERS[8], FOUNDERS[10], FOUNDERS[11]):
        assert _shape_of(odd) is None, odd
    assert _shape_of(FOUNDERS[12]) is not None


def test_past_its_cap_the_plan_cache_leaves_new_shapes_to_the_general_way(monkeypatch):
    from islandhub.resolve import golden

    monkeypatch.setattr(golden, "_SHAPES", {})
    monkeypatch.setattr(golden, "_MAX_SHAPES", 2)
    assert golden._shape_of({"a": "1"}) is not None
    assert golden._shape_of({"b": "1"}) is not None
    assert golden._shape_of({"c": "1"}) is None  # not built, not kept
    assert len(golden._SHAPES) == 2
    assert golden._shape_of({"a": "2"}) is not None  # a known one still has its plan


def test_a_value_that_holds_the_stand_in_id_leaves_the_record_to_the_writer():
    from islandhub.resolve.golden import founding

    assert founding("population", "persons", "R1", {"given_name": "\x00resident"}) is None
    # A field of that name would stand where the id stands: built by the writer as well.
    assert founding("population", "persons", "R1", {"resident_id": "an island's own"}) is None
