"""The vectorised value checks agree with python-stdnum value by value."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.fi import hetu, ytunnus

from islandhub.quality import values
from tests.helpers import hetu as make_hetu

HETU_CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"


def stdnum_hetu(value: object) -> bool:
    # The hub stores national ids compact and upper case: anything else is not canonical.
    if not isinstance(value, str) or value != value.strip().upper() or not value.isascii():
        return False
    return hetu.is_valid(value, allow_temporary=True)


hetu_like = st.builds(
    lambda d, m, y, c, n, k: f"{d:02d}{m:02d}{y:02d}{c}{n:03d}{k}",
    st.integers(0, 39),
    st.integers(0, 19),
    st.integers(0, 99),
    st.sampled_from("+-ABCDEFUVWXYZa"),
    st.integers(0, 999),
    st.sampled_from(HETU_CHECK + "GIZ"),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(hetu_like | st.text(max_size=12), min_size=1, max_size=60))
def test_valid_hetu_agrees_with_stdnum(items):
    found = values.valid_hetu(pd.Series(items, dtype=object)).tolist()
    assert found == [stdnum_hetu(v) for v in items]


def test_valid_hetu_on_known_values():
    good = [make_hetu(13, 10, 1952, 308), make_hetu(29, 2, 2000, 123), "010594Y9032"]
    bad = ["131052-308X", "290201A123P", "010100+0011", "131052a308t", " 131052-308T", "x", 5]
    found = values.valid_hetu(pd.Series(good + bad, dtype=object)).tolist()
    assert found == [True] * len(good) + [False] * len(bad)


def test_temporary_ids_can_be_refused():
    temporary = pd.Series([make_hetu(1, 1, 1990, 901)])
    assert values.valid_hetu(temporary).tolist() == [True]
    assert values.valid_hetu(temporary, allow_temporary=False).tolist() == [False]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 9_999_999), min_size=1, max_size=40), st.integers(0, 9))
def test_valid_ytunnus_agrees_with_stdnum(numbers, check):
    items = [f"{n:07d}-{check}" for n in numbers] + ["2077474-0", "20774740", "1234567"]
    found = values.valid_ytunnus(pd.Series(items)).tolist()
    assert found == [ytunnus.is_valid(v) and "-" in v for v in items]


@pytest.mark.parametrize(
    ("check", "good", "bad"),
    [
        (
            values.e164_phone,
            ["+358401234567", "+46701234567"],
            ["0401234567", "+0401234", "+358 40"],
        ),
        (values.finnish_postal_code, ["00100", "04130"], ["100", "041300", "FI-00100", 100]),
        (values.known_municipality, ["753", "091", "005"], ["000", "75", "999", 753]),
    ],
)
def test_format_checks(check, good, bad):
    found = check(pd.Series(good + bad, dtype=object)).tolist()
    assert found == [True] * len(good) + [False] * len(bad)
