"""The Great Expectations adapter and the custom expectations, run by real GX 1.x."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pandas as pd
import pytest

from islandhub.quality import gx
from islandhub.quality.suites import Check, Suite
from tests.helpers import hetu

VALID_HETU = hetu(13, 10, 1952, 308)  # 131052-308T
BROKEN_HETU = VALID_HETU[:-1] + ("X" if VALID_HETU[-1] != "X" else "Y")
# Not inside a longer token: a UUID such as "...a401503-4142-..." is not a national id.
RAW_HETU = re.compile(r"(?<![0-9A-Za-z])\d{6}[-+A-FU-Y]\d{3}[0-9A-Y](?![0-9A-Za-z])")


def suite_of(*checks: Check, fields: tuple[str, ...] = ()) -> Suite:
    names = tuple(dict.fromkeys([*fields, *(c.field for c in checks)]))
    return Suite("test", "things", checks, names, names)


def run(check: Check, column: list[object], ids: list[str] | None = None):
    frame = pd.DataFrame({check.field: column}, dtype=object)
    ids = ids or [f"R{i}" for i in range(len(column))]
    return gx.validate(frame, suite_of(check), ids).outcomes[0]


@pytest.mark.parametrize(
    ("check", "good", "bad"),
    [
        (Check("national_id", "hetu"), [VALID_HETU, "010594Y9032"], [BROKEN_HETU, "131052-308"]),
        (Check("business_id", "ytunnus"), ["2077474-0", "1572860-0"], ["2077474-1", "20774740"]),
        (Check("phone", "e164_phone"), ["+358401234567"], ["040 123 4567", "+358"]),
        (Check("address.postal_code", "postal_code"), ["00100", "04130"], ["100", "FI-04130"]),
        (Check("municipality_code", "municipality_code"), ["753", "091"], ["000", "7530"]),
        (Check("email", "email"), ["anna@example.fi"], ["anna.example.fi", "a@b"]),
        (Check("birth_date", "iso_date"), ["2012-06-23"], ["23.06.2012", "2012-6-23"]),
        (Check("language", "in_set", values=("fi", "sv")), ["fi", "sv"], ["ru", "FI"]),
        (Check("street", "matches", pattern="[^0-9]+ [0-9]+"), ["Kirkkotie 5"], ["5", "Tie"]),
    ],
    ids=lambda value: value.kind if isinstance(value, Check) else None,
)
def test_each_check_passes_valid_and_fails_invalid_values(check, good, bad):
    passed = run(check, [*good, None])
    assert (passed.success, passed.unexpected, passed.missing) == (True, 0, 1)
    failed = run(check, [*good, *bad, None])
    assert not failed.success
    assert failed.unexpected == len(bad)
    assert failed.elements == len(good) + len(bad) + 1
    failing_rows = {f"R{len(good) + i}" for i in range(len(bad))}
    assert {e["source_id"] for e in failed.examples} == failing_rows


def test_mostly_lets_a_share_fail():
    check = Check("email", "not_null", mostly=0.75)
    assert run(check, ["a@b.fi", "c@d.fi", "e@f.fi", None]).success
    assert not run(check, ["a@b.fi", "c@d.fi", None, None]).success


def test_uniqueness_counts_every_repeated_value():
    outcome = run(Check("national_id", "unique"), [VALID_HETU, VALID_HETU, "010594Y9032"])
    assert (outcome.success, outcome.unexpected) == (False, 2)


def test_examples_are_masked_by_what_the_value_is():
    check = Check("national_id", "hetu")
    outcome = run(check, [BROKEN_HETU, "310299A9"], ids=[VALID_HETU, "P2"])
    shown = {e["source_id"]: e["value"] for e in outcome.examples}
    assert shown == {"131052-***T": BROKEN_HETU[:7] + "***" + BROKEN_HETU[-1], "P2": "310299A***"}
    email = run(Check("email", "email"), ["matti.meikalainen.example.fi"]).examples[0]
    assert email["value"] == "m… (28)"
    phone = run(Check("phone", "e164_phone"), ["0401234567"]).examples[0]
    assert phone["value"] == "0401***67"


def test_nothing_gx_keeps_shows_a_national_id():
    suite = suite_of(Check("national_id", "hetu"), Check("national_id", "unique"))
    frame = pd.DataFrame({"national_id": [BROKEN_HETU, VALID_HETU, VALID_HETU]}, dtype=object)
    validation = gx.validate(frame, suite, [VALID_HETU, "010594Y9032", "R3"])
    assert not RAW_HETU.search(json.dumps(validation.gx))
    assert not RAW_HETU.search(json.dumps([o.as_dict() for o in validation.outcomes]))


def test_a_field_the_batch_lacks_counts_as_missing():
    suite = suite_of(Check("email", "not_null", mostly=0.5), fields=("given_name",))
    validation = gx.validate(pd.DataFrame({"given_name": ["A", "B"]}), suite, ["1", "2"])
    [outcome] = validation.outcomes
    assert (outcome.error, outcome.success, outcome.unexpected) == (None, False, 2)
    assert validation.filled == {"given_name": 2, "email": 0}


def test_slices_merge_into_the_result_of_the_whole_batch():
    suite = suite_of(
        Check("national_id", "hetu"),
        Check("email", "not_null", mostly=0.6),
        Check("language", "in_set", values=("fi", "sv")),
    )
    rows = {
        "national_id": [VALID_HETU, BROKEN_HETU, None, "010594Y9032", BROKEN_HETU, None],
        "email": ["a@b.fi", None, "c@d.fi", None, None, "e@f.fi"],
        "language": ["fi", "ru", "sv", None, "en", "fi"],
    }
    ids = [f"R{i}" for i in range(6)]
    whole = gx.validate(pd.DataFrame(rows, dtype=object), suite, ids)
    halves = [
        gx.validate(
            pd.DataFrame({k: v[a:b] for k, v in rows.items()}, dtype=object), suite, ids[a:b]
        )
        for a, b in ((0, 3), (3, 6))
    ]
    merged = gx.merge(*halves)
    counts = [(o.check, o.elements, o.missing, o.unexpected, o.success) for o in merged.outcomes]
    assert counts == [
        (o.check, o.elements, o.missing, o.unexpected, o.success) for o in whole.outcomes
    ]
    assert merged.rows == 6 and merged.filled == whole.filled
    assert merged.gx["statistics"] == whole.gx["statistics"]
    results = {r["expectation_config"]["meta"]["islandhub_check"]: r for r in merged.gx["results"]}
    assert results["national_id:hetu"]["result"]["unexpected_count"] == 2


def test_data_docs_are_built_from_stored_results(tmp_path):
    suite = suite_of(Check("national_id", "hetu"), Check("address.postal_code", "postal_code"))
    frame = pd.DataFrame(
        {"national_id": [BROKEN_HETU, VALID_HETU], "address.postal_code": ["100", "00100"]},
        dtype=object,
    )
    stored = json.loads(json.dumps(gx.validate(frame, suite, [VALID_HETU, "R2"]).gx))
    at = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
    pages = gx.build_data_docs(tmp_path / "docs", [(suite, stored, "review-1", at)])
    page = tmp_path / "docs" / pages["islandhub.test.things"]
    assert page.is_file() and (tmp_path / "docs" / "index.html").is_file()
    html = page.read_text(encoding="utf-8")
    assert "valid Finnish personal identity codes (HETU)" in html
    assert "Finnish postal codes (five digits)" in html
    assert not RAW_HETU.search(html)
