"""Masked examples of failing values: enough for an owner to find the record, no more.

An example is the record's source id (a national id among them masked like 131052-***T)
and its value, shortened by what the value is: a national id shows its birth date, century
sign and check character; an email its first letter and domain; a phone its country code
and last two digits; names and addresses their first letter. Codes (postal, municipality,
language) and dates are shown as they are: they identify nobody on their own and are what
is wrong. Every text also passes the hub's HETU mask, whatever field it came from.
"""

from __future__ import annotations

import math
from typing import Any

from islandhub.privacy.masking import mask_text

MAX_CHARS = 40
_CENTURY_SIGNS = frozenset("-+ABCDEFUVWXYabcdefuvwxy")
_SHOWN_AS_IS = frozenset(
    {
        "address.postal_code",
        "address.country",
        "address.type",
        "municipality_code",
        "language",
        "birth_date",
        "death_date",
        "non_disclosure",
    }
)
MISSING = "∅"


def source_id(value: Any) -> str:
    """A source id as shown in a report: national ids masked."""
    return mask_text(str(value))[:MAX_CHARS]


def value(field: str, raw: Any, *, sensitive: bool = False) -> str:
    """A failing value of `field` as shown in a report (see the module docstring)."""
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return MISSING
    text = raw if isinstance(raw, str) else repr(raw)
    if sensitive:
        return _national_id(text)
    leaf = field.rsplit(".", 1)[-1]
    if field in _SHOWN_AS_IS or isinstance(raw, bool | int | float):
        shown = text
    elif leaf == "email":
        shown = _email(text)
    elif leaf == "phone":
        shown = _phone(text)
    else:
        shown = _initial(text)
    return mask_text(shown)[:MAX_CHARS]


def _national_id(text: str) -> str:
    masked = mask_text(text)
    if masked != text:
        return masked[:MAX_CHARS]
    # Malformed ids escape the HETU-shaped mask: keep at most what the mask would show.
    keep = 7 if len(text) > 6 and text[6] in _CENTURY_SIGNS else 6
    return text[:keep] + "***"


def _email(text: str) -> str:
    local, at, domain = text.partition("@")
    return f"{local[:1]}***{at}{domain}" if at else _initial(text)


def _phone(text: str) -> str:
    if len(text) <= 6:
        return "***"
    return f"{text[:4]}***{text[-2:]}"


def _initial(text: str) -> str:
    stripped = text.strip()
    return f"{stripped[:1]}… ({len(stripped)})" if stripped else repr(text)
