"""Vectorised value checks: one pandas Series in, a boolean Series (True: valid) out.

These are the rules behind the custom expectations (valid HETU, valid Y-tunnus, E.164 phone,
Finnish postal code, known municipality code). They decide a whole column at once instead
of a library call per value: python-stdnum takes about 10 µs a HETU, 5 s for a 500,000-row
batch. A HETU's shape is one regular expression per value; its calendar date and check
character are numpy arithmetic on the bytes of all values together.
tests/quality/test_values.py checks them against python-stdnum value by value.

Values that are not text are invalid (a mapped national id is always text). Missing values
never reach these functions: Great Expectations counts them apart as missing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

from islandhub.quality.codes import MUNICIPALITIES

HETU_CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"
# ASCII only, as the hub stores ids (re's \d would take any script's digits).
_HETU = re.compile(r"[0-3][0-9][01][0-9]{3}[-+A-FU-Y][0-9]{3}[0-9A-FHJ-NPR-Y]")
_YTUNNUS = re.compile(r"[0-9]{7}-[0-9]")
_YTUNNUS_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2])
# Lookup tables by byte value: the century of each sign, and the check character's byte.
_CENTURY = np.zeros(256, dtype=np.int64)
for _sign, _century in {"+": 1800, "-": 1900, "A": 2000}.items():
    _CENTURY[ord(_sign)] = _century
for _sign in "UVWXY":
    _CENTURY[ord(_sign)] = 1900
for _sign in "BCDEF":
    _CENTURY[ord(_sign)] = 2000
_CHECK_BYTES = np.frombuffer(HETU_CHECK.encode(), dtype=np.uint8)
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] + [0] * 7)
E164 = r"\+[1-9][0-9]{4,14}"
POSTAL_CODE = r"[0-9]{5}"
# The shape of an address, not its deliverability: the mapping's email transform has
# checked that with email-validator already; this catches values that bypassed it.
EMAIL = r"[^@\s]+@[^@\s]+\.[^@\s]+"
ISO_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"


def text(values: pd.Series) -> pd.Series:
    """The values as text, anything else (numbers, booleans) as missing."""
    if pd.api.types.is_string_dtype(values.dtype) and values.dtype != object:
        return values
    is_text = np.fromiter((type(v) is str for v in values.to_numpy()), bool, len(values))
    return values.where(is_text, None).astype(object)


def _digits(values: pd.Series, shape: re.Pattern[str]) -> tuple[np.ndarray, np.ndarray]:
    """Which values have `shape` (ASCII, fixed width), and their bytes as a row each."""
    items = values.to_numpy(dtype=object)
    shaped = np.fromiter(
        (type(v) is str and shape.fullmatch(v) is not None for v in items), bool, len(items)
    )
    texts = items[shaped].tolist()
    if not texts:
        return shaped, np.zeros((0, 0), dtype=np.uint8)
    size = len(texts[0])
    codes = np.array(texts, dtype=f"S{size}").view(np.uint8).reshape(-1, size)
    return shaped, codes


def valid_hetu(values: pd.Series, *, allow_temporary: bool = True) -> pd.Series:
    """Valid Finnish personal identity codes, compact and upper case (as python-stdnum).

    Temporary ids (individual number 900-999) count as valid unless `allow_temporary` is
    False: the mapping's hetu transform accepts them with a warning. The shape is checked
    with a regular expression, the rest (calendar, check character) with numpy on the bytes.
    """
    shaped, codes = _digits(values, _HETU)
    result = np.zeros(len(values), dtype=bool)
    if codes.size:
        digit = codes.astype(np.int64) - ord("0")
        day = digit[:, 0] * 10 + digit[:, 1]
        month = digit[:, 2] * 10 + digit[:, 3]
        yy = digit[:, 4] * 10 + digit[:, 5]
        individual = digit[:, 7] * 100 + digit[:, 8] * 10 + digit[:, 9]
        year = _CENTURY[codes[:, 6]] + yy
        leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
        last_day = _MONTH_DAYS[month] + (leap & (month == 2))
        number = day * 10**7 + month * 10**5 + yy * 10**3 + individual
        ok = (day >= 1) & (day <= last_day) & (individual >= 2)
        ok &= _CHECK_BYTES[number % 31] == codes[:, 10]
        if not allow_temporary:
            ok &= individual < 900
        result[shaped] = ok
    return pd.Series(result, index=values.index)


def valid_ytunnus(values: pd.Series) -> pd.Series:
    """Valid Finnish business ids in the form 1234567-8 (as python-stdnum's ytunnus)."""
    shaped, codes = _digits(values, _YTUNNUS)
    result = np.zeros(len(values), dtype=bool)
    if codes.size:
        digit = codes.astype(np.int64) - ord("0")
        remainder = (digit[:, :7] * _YTUNNUS_WEIGHTS).sum(axis=1) % 11
        expected = (11 - remainder) % 11  # remainder 0 gives check digit 0
        result[shaped] = (remainder != 1) & (expected == digit[:, 8])
    return pd.Series(result, index=values.index)


def matches(values: pd.Series, pattern: str) -> pd.Series:
    """Text values that match `pattern` as a whole."""
    return text(values).str.fullmatch(pattern).fillna(False).astype(bool)


def e164_phone(values: pd.Series) -> pd.Series:
    """Phone numbers written in E.164: +, country code, number, at most 15 digits."""
    return matches(values, E164)


def finnish_postal_code(values: pd.Series) -> pd.Series:
    """Finnish postal codes: five digits, as text (00100, not 100)."""
    return matches(values, POSTAL_CODE)


def known_municipality(values: pd.Series, codes: Iterable[str] | None = None) -> pd.Series:
    """Municipality codes in the classification (codes.MUNICIPALITIES unless given)."""
    known = list(MUNICIPALITIES if codes is None else codes)
    return text(values).isin(known)
