"""The mapping engine: required vs optional failures, reasons, masking, paths, spec problems."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from islandhub.errors import ConfigError
from islandhub.mapping import MappedBatch, Mapping

VALID = "131052-308T"
BAD_CHECKSUM = "131052-308U"
TEMPORARY = "010594Y9021"


def spec(**fields: Any) -> dict[str, Any]:
    return {"source": "booking.reservations", "entity": "resident", "id": "id", "fields": fields}


def apply(fields: dict[str, Any], records: list[dict[str, Any]]) -> MappedBatch:
    batch = Mapping.from_spec(spec(**fields)).apply(records)
    assert len(batch.mapped) + len(batch.quarantined) == len(records)
    return batch


BOOKING = spec(
    national_id={"from": "reserver_ssn", "use": ["strip", "hetu"], "required": True},
    given_name={"from": "reserver_name", "use": [{"name": "given"}]},
    birth_date={"from": "birth", "use": [{"date": "%d.%m.%Y"}]},
    email={"from": "reserver.contact.email", "use": ["email"]},
    language={"from": "lang", "use": [{"map": {"suomi": "fi", "svenska": "sv"}}]},
)


def test_mapping_attributes() -> None:
    mapping = Mapping.from_spec(BOOKING, file="mappings/booking/reservations.yaml")
    assert mapping.source == "booking.reservations"
    assert mapping.entity == "resident"
    assert mapping.id_path == "id"
    assert mapping.file == "mappings/booking/reservations.yaml"
    assert mapping.target_paths == ["national_id", "given_name", "birth_date", "email", "language"]


def test_values_are_flat_and_none_is_omitted() -> None:
    mapping = Mapping.from_spec(BOOKING)
    record = {
        "id": 7,
        "reserver_ssn": " 131052-308t ",
        "reserver_name": "Matti Virtanen",
        "birth": "  ",
        "reserver": {"contact": {"email": "Matti.V@Example.FI"}},
        "lang": "Suomi",
    }
    batch = mapping.apply([record])
    assert batch.quarantined == []
    (mapped,) = batch.mapped
    assert mapped.source_id == "7"
    assert mapped.values == {
        "national_id": VALID,
        "given_name": "Matti",
        "email": "matti.v@example.fi",
        "language": "fi",
    }
    assert mapped.warnings == []


def test_optional_failure_drops_value_with_warning() -> None:
    batch = apply(
        {"birth_date": {"from": "birth", "use": [{"date": "%d.%m.%Y"}]}},
        [{"id": "a", "birth": "31.02.1990"}],
    )
    (mapped,) = batch.mapped
    assert mapped.values == {}
    assert mapped.warnings == [
        "birth_date (from birth): not a date in the format %d.%m.%Y: '31.02.1990'"
    ]


def test_required_failure_quarantines_and_lists_every_reason() -> None:
    fields = {
        "national_id": {"from": "ssn", "use": ["hetu"], "required": True},
        "birth_date": {"from": "birth", "use": [{"date": "%d.%m.%Y"}], "required": True},
        "email": {"from": "email", "use": ["email"], "required": True},
        "language": {"from": "lang", "use": [{"map": {"suomi": "fi"}}]},
    }
    batch = apply(fields, [{"id": "r1", "ssn": BAD_CHECKSUM, "birth": "x", "lang": "klingon"}])
    (quarantined,) = batch.quarantined
    assert quarantined.source_id == "r1"
    assert quarantined.reasons == [
        "national_id (from ssn): invalid national id (check character does not match): "
        "'131052-****'",
        "birth_date (from birth): not a date in the format %d.%m.%Y: 'x'",
        "email (from email): required, but missing",
    ]


@pytest.mark.parametrize(
    "bad", [BAD_CHECKSUM, "131052308T", "131052-30", "13105-2308T", "131052-308t!", "310299-123A"]
)
def test_national_ids_are_masked_in_reasons(bad: str) -> None:
    batch = apply(
        {"national_id": {"from": "ssn", "use": ["strip", "hetu"], "required": True}},
        [{"id": 1, "ssn": bad}],
    )
    (reason,) = batch.quarantined[0].reasons
    excerpt = reason.rsplit(": ", 1)[1]
    assert bad not in reason
    assert excerpt in (f"'{bad[:7]}****'", f"'{bad[:6]}****'")
    assert reason.startswith("national_id (from ssn): invalid national id")


def test_national_id_masked_in_optional_warning() -> None:
    batch = apply(
        {"national_id": {"from": "ssn", "use": ["hetu"]}}, [{"id": 1, "ssn": BAD_CHECKSUM}]
    )
    (warning,) = batch.mapped[0].warnings
    assert BAD_CHECKSUM not in warning and "'131052-****'" in warning


def test_other_fields_mask_national_ids_too() -> None:
    batch = apply(
        {"email": {"from": "note", "use": ["email"]}}, [{"id": 1, "note": f"hetu {VALID}"}]
    )
    (warning,) = batch.mapped[0].warnings
    assert VALID not in warning and "131052-***T" in warning


def test_excerpt_is_cut_to_40_characters() -> None:
    batch = apply(
        {"birth_date": {"from": "b", "use": [{"date": "%Y"}]}}, [{"id": 1, "b": "x" * 100}]
    )
    (warning,) = batch.mapped[0].warnings
    assert warning.endswith("'" + "x" * 40 + "'")


def test_temporary_national_id_is_kept_and_flagged() -> None:
    batch = apply(
        {"national_id": {"from": "ssn", "use": ["hetu"], "required": True}},
        [{"id": 1, "ssn": TEMPORARY}],
    )
    (mapped,) = batch.mapped
    assert mapped.values == {"national_id": TEMPORARY}
    assert mapped.warnings == [
        "national_id (from ssn): temporary national id (individual number 900-999)"
    ]


@pytest.mark.parametrize("record", [{}, {"id": None}, {"id": ""}, {"id": "   "}])
def test_missing_id_is_quarantined(record: dict[str, Any]) -> None:
    batch = apply({"given_name": {"from": "n"}}, [record | {"n": "Matti"}])
    assert batch.mapped == []
    assert batch.quarantined[0].source_id is None
    assert batch.quarantined[0].reasons == ["id (from id): required, but missing"]


def test_source_id() -> None:
    mapping = Mapping.from_spec(spec(x={"from": "x"}) | {"id": "meta.uuid"})
    assert mapping.source_id({"meta": {"uuid": 12}}) == "12"
    assert mapping.source_id({"meta": {"uuid": "ab"}}) == "ab"
    assert mapping.source_id({"meta": {}}) is None
    assert mapping.source_id({"meta": {"uuid": " "}}) is None


def test_dotted_paths() -> None:
    fields = {
        "email": {"from": "reserver.contact.email"},
        "phone": {"from": "contacts.1.phone"},
        "city": {"from": "address.city"},
        "zip": {"from": "a.b.c"},
    }
    records = [
        {
            "id": 1,
            "reserver": {"contact": {"email": "a@b.fi"}},
            "contacts": [{"phone": "1"}, {"phone": "2"}],
            "address.city": "Sipoo",  # a key that contains dots wins
            "a": "not a dict",
        }
    ]
    assert apply(fields, records).mapped[0].values == {
        "email": "a@b.fi",
        "phone": "2",
        "city": "Sipoo",
    }


def test_list_from_with_concat_and_coalesce() -> None:
    fields = {
        "address.street": {"from": ["street", "house_no"], "use": [{"concat": " "}]},
        "phone": {"from": ["mobile", "home_phone"], "use": ["coalesce", "phone"]},
    }
    records = [
        {
            "id": 1,
            "street": "Iso Kylätie",
            "house_no": 5,
            "mobile": " ",
            "home_phone": "09-123 456",
        },
        {"id": 2, "street": "Iso Kylätie", "mobile": "040 123 4567", "home_phone": "09-123 456"},
        {"id": 3},
    ]
    values = [m.values for m in apply(fields, records).mapped]
    assert values == [
        {"address.street": "Iso Kylätie 5", "phone": "+3589123456"},
        {"address.street": "Iso Kylätie", "phone": "+358401234567"},
        {},
    ]


def test_none_passes_transforms_except_default() -> None:
    fields = {
        "language": {"from": "lang", "use": [{"map": {"suomi": "fi"}}, {"default": "sv"}]},
        "municipality_code": {"from": "kunta", "use": ["strip", {"regex": r"\d{3}"}]},
    }
    batch = apply(fields, [{"id": 1}, {"id": 2, "lang": "suomi", "kunta": " 753 "}])
    assert [m.values for m in batch.mapped] == [
        {"language": "sv"},
        {"language": "fi", "municipality_code": "753"},
    ]


def test_counts_add_up_and_order_is_kept() -> None:
    fields = {"national_id": {"from": "ssn", "use": ["hetu"], "required": True}}
    records = [{"id": i, "ssn": VALID if i % 3 else BAD_CHECKSUM} for i in range(30)]
    batch = apply(fields, records)
    assert len(batch.quarantined) == 10 and len(batch.mapped) == 20
    assert [q.source_id for q in batch.quarantined] == [str(i) for i in range(0, 30, 3)]


def test_memo_keeps_types_apart() -> None:
    batch = apply({"flag": {"from": "f"}}, [{"id": 1, "f": 1}, {"id": 2, "f": True}])
    assert [type(m.values["flag"]) for m in batch.mapped] == [int, bool]


def test_unhashable_values_are_mapped() -> None:
    batch = apply({"tags": {"from": "tags"}}, [{"id": 1, "tags": ["a"]}, {"id": 2, "tags": []}])
    assert [m.values for m in batch.mapped] == [{"tags": ["a"]}, {"tags": []}]


def test_non_dict_record_is_quarantined() -> None:
    batch = apply({"x": {"from": "x"}}, ["not a record"])  # type: ignore[list-item]
    assert batch.quarantined[0].reasons[0] == "record is not a JSON object"


def test_empty_batch() -> None:
    assert apply({"x": {"from": "x"}}, []) == MappedBatch([], [])


# --- problems() -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad_spec", "expected"),
    [
        (
            spec(email={"from": "e", "use": ["emial"]}),
            [("fields.email.use[0]", "unknown transform 'emial'; known transforms: bool, ")],
        ),
        (
            spec(birth={"from": "b", "use": ["strip", "date"]}),
            [("fields.birth.use[1]", "date needs a format string like '%d.%m.%Y'")],
        ),
        (
            spec(birth={"from": "b", "use": [{"date": "%d", "strip": None}]}),
            [("fields.birth.use[0]", "a transform is a name like strip or a one-key mapping")],
        ),
        (spec(x={"use": ["strip"]}), [("fields.x.from", "from is required")]),
        (spec(x={"from": ["a", 3], "use": ["concat"]}), [("fields.x.from[1]", "from must be")]),
        (spec(x={"from": "a..b"}), [("fields.x.from", "from must be a field name")]),
        (spec(x={"from": ["a", "b"]}), [("fields.x.use", "from lists several fields")]),
        (spec(x={"from": "a", "form": "b"}), [("fields.x.form", "unknown key 'form'")]),
        (spec(x={"from": "a", "required": "yes"}), [("fields.x.required", "required must be")]),
        (spec(x={"from": "a", "use": "strip"}), [("fields.x.use", "use must be a list")]),
        (spec(x="a"), [("fields.x", "a field is a mapping")]),
        ({"entity": "resident", "id": "id", "fields": {}}, [("source", ""), ("fields", "")]),
        (
            {"source": "booking", "id": 5, "fields": {"x": {"from": "a"}}},
            [("id", ""), ("source", "")],
        ),
        ([], [("", "a mapping file must be a mapping")]),
    ],
)  # fmt: skip
def test_problems(bad_spec: Any, expected: list[tuple[str, str]]) -> None:
    problems = Mapping.problems(bad_spec)
    assert sorted(p.path for p in problems) == sorted(path for path, _ in expected)
    for path, message in expected:
        assert any(p.path == path and p.message.startswith(message) for p in problems)


def test_problems_collects_all() -> None:
    bad = spec(
        a={"from": "a", "use": ["emial", {"date": 5}]},
        b={"from": "b", "use": [{"phone": {"region": "XX"}}]},
    )
    assert [p.path for p in Mapping.problems(bad)] == [
        "fields.a.use[0]",
        "fields.a.use[1]",
        "fields.b.use[0]",
    ]


def test_from_spec_raises_config_error_with_file() -> None:
    with pytest.raises(ConfigError) as err:
        Mapping.from_spec(spec(email={"from": "e", "use": ["emial"]}), file="m.yaml")
    (problem,) = err.value.problems
    assert problem.file == "m.yaml" and problem.path == "fields.email.use[0]"
    assert str(problem).startswith("m.yaml fields.email.use[0]: unknown transform 'emial'")


def test_valid_spec_has_no_problems() -> None:
    assert Mapping.problems(BOOKING) == []


def hetu_id(index: int) -> str:
    base, individual = f"{1 + index // 800:02d}0190", f"{2 + index % 800:03d}"
    return f"{base}-{individual}{'0123456789ABCDEFHJKLMNPRSTUVWXY'[int(base + individual) % 31]}"


def test_large_batch_with_unique_and_repeating_columns() -> None:
    # Unique columns skip the memo, repeating ones use it: both must file every reason.
    records = [
        {"id": i, "ssn": hetu_id(i) if i % 500 else f"bad{i}", "lang": "klingon"}
        for i in range(3000)
    ]
    records[7]["lang"] = "suomi"
    fields = {
        "national_id": {"from": "ssn", "use": ["hetu"], "required": True},
        "language": {"from": "lang", "use": [{"map": {"suomi": "fi"}}]},
    }
    batch = apply(fields, records)
    assert [q.source_id for q in batch.quarantined] == [str(i) for i in range(0, 3000, 500)]
    assert all(len(m.warnings) == 1 for m in batch.mapped if m.source_id != "7")
    assert batch.mapped[6].values == {"national_id": hetu_id(7), "language": "fi"}


def test_gc_state_is_restored() -> None:
    Mapping.from_spec(BOOKING).apply([{"id": 1}])
    assert gc.isenabled()
