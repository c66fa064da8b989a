"""Fast paths for the common shapes of national ids, emails, phones and dates.

The validating transforms use the field's libraries (python-stdnum, email-validator,
phonenumbers, strptime), which cost 4-30 µs a value. Most real values have one of a few
plain ASCII shapes, so each function here decides those shapes itself and answers
``None`` ("not sure") for everything else; the caller then asks the library. A fast path
either returns exactly what the library path returns, or raises ValueError (with a reason
safe to show) where the library would reject too; the transforms turn that into a
TransformError. tests/unit/test_fastpaths.py checks that claim differentially.
"""

from __future__ import annotations

import re

from email_validator import SPECIAL_USE_DOMAIN_NAMES

# ---------------------------------------------------------------------------------------
# HETU, decided with string operations (this runs once per resident, so every 100 ns
# counts). ASCII only: stdnum's \d also accepts other scripts' digits; those go to the
# library.
_HETU_CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"
_CENTURY = {"+": 1800, "-": 1900, "U": 1900, "V": 1900, "W": 1900, "X": 1900, "Y": 1900}
_CENTURY.update(dict.fromkeys("ABCDEF", 2000))
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# Every day-month pair that exists in some year ("2902" only in leap years).
_DDMM = frozenset(
    f"{day:02d}{month:02d}"
    for month, days in enumerate(_MONTH_DAYS, start=1)
    for day in range(1, days + 1)
)

HETU_BAD_FORMAT = "invalid national id (not the form DDMMYYCZZZQ)"
HETU_BAD_DATE = "invalid national id (no such birth date)"
HETU_BAD_INDIVIDUAL = "invalid national id (individual number 000-001 is not in use)"
HETU_BAD_CHECKSUM = "invalid national id (check character does not match)"


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def hetu(value: str) -> str | None:
    """Validate an ASCII HETU like stdnum.fi.hetu.validate(allow_temporary=True).

    Returns the compact upper-case id, raises ValueError when stdnum would reject it,
    or returns None for non-ASCII input (the library decides those).
    """
    number = value.strip().upper()
    if not number.isascii():
        return None
    head, century, individual = number[:6], _CENTURY.get(number[6:7]), number[7:10]
    if (
        len(number) != 11
        or century is None
        or not head.isdigit()
        or not individual.isdigit()
        or number[10] not in _HETU_CHECK
    ):
        # On ASCII text this is exactly stdnum's regex, so stdnum rejects it too.
        raise ValueError(HETU_BAD_FORMAT)
    ddmm = head[:4]
    if ddmm not in _DDMM or (ddmm == "2902" and not _is_leap(century + int(head[4:]))):
        raise ValueError(HETU_BAD_DATE)
    if individual < "002":
        raise ValueError(HETU_BAD_INDIVIDUAL)
    if number[10] != _HETU_CHECK[int(head + individual) % 31]:
        raise ValueError(HETU_BAD_CHECKSUM)
    return number


# ---------------------------------------------------------------------------------------
# Email: a conservative subset of what email-validator accepts. Anything outside it (quoted
# local parts, non-ASCII, punycode, '--' in labels, special-use domains) goes to the library.
# Possessive quantifiers: no backtracking, and a label over 63 characters fails the match.
_EMAIL_SHAPE = re.compile(
    r"[A-Za-z0-9_+'-]++(?:\.[A-Za-z0-9_+'-]++)*+"
    r"@((?:[A-Za-z0-9-]{1,63}+\.)++([A-Za-z]{2,24}))"
)
_SPECIAL_DOMAINS = tuple(SPECIAL_USE_DOMAIN_NAMES)
# Today every special-use name is a single label, so checking the TLD is enough; should the
# library add a longer one, the full suffix check below takes over.
_SPECIAL_TLDS = frozenset(d for d in _SPECIAL_DOMAINS if "." not in d)
_SPECIAL_LONGER = tuple(d for d in _SPECIAL_DOMAINS if "." in d)


def email(value: str) -> str | None:
    """Return the lower-cased address for plain ASCII addresses, None when unsure.

    Never rejects: invalid addresses are rare and the library gives the better reason.
    """
    address = value.strip()
    if len(address) > 254:
        return None
    match = _EMAIL_SHAPE.fullmatch(address)
    if match is None or match.start(1) > 65:  # local part over 64 characters
        return None
    domain = match.group(1)
    # Hyphens: no label may start or end with one, and email-validator rejects R-LDH labels
    # ("ab--c"), so keep every '--' out of the fast path.
    if "-" in domain and (domain[0] == "-" or "-." in domain or ".-" in domain or "--" in domain):
        return None
    if match.group(2).lower() in _SPECIAL_TLDS:
        return None
    if _SPECIAL_LONGER and _is_special_longer(domain.lower()):
        return None
    return address.lower()


def _is_special_longer(domain: str) -> bool:
    return any(domain == d or domain.endswith("." + d) for d in _SPECIAL_LONGER)


# ---------------------------------------------------------------------------------------
# Phone: Finnish mobile numbers. phonenumbers' FI mobile pattern is (?:4[0-8]|50)\d{4,8},
# and is_valid_number accepts every national length 6-10 for each of these prefixes
# (the test suite re-checks that against the installed metadata). Separators (space, dash,
# parentheses) are allowed only between digits.
_FI_MOBILE = re.compile(r"(?:\+358|00358|0)[ ()-]*+((?:4[0-8]|50)(?:[ ()-]*+[0-9]){4,8})")


def phone_fi(value: str) -> str | None:
    """Return E.164 for a Finnish mobile number written plainly, None when unsure.

    Only for the default region FI; never rejects.
    """
    match = _FI_MOBILE.fullmatch(value.strip())
    if match is None:
        return None
    digits = match.group(1)
    if not digits.isdigit():
        digits = digits.replace(" ", "").replace("-", "").replace("(", "").replace(")", "")
    return "+358" + digits


# ---------------------------------------------------------------------------------------
# Dates: the two formats mappings use most, with strptime's own digit counts
# (%d and %m take one or two digits, %Y exactly four).
_DMY = re.compile(r"([0-9]{1,2})\.([0-9]{1,2})\.([0-9]{4})")
_YMD = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})")
FAST_DATE_FORMATS = ("%d.%m.%Y", "%Y-%m-%d")


def date(value: str, fmt: str) -> str | None:
    """Parse ``value`` with ``fmt`` like datetime.strptime and return ISO "YYYY-MM-DD".

    Raises ValueError where strptime would reject; None for other shapes or formats.
    """
    if fmt == "%d.%m.%Y":
        match = _DMY.fullmatch(value)
        if match is None:
            return None
        day, month, year = match.groups()
    elif fmt == "%Y-%m-%d":
        match = _YMD.fullmatch(value)
        if match is None:
            return None
        year, month, day = match.groups()
    else:
        return None
    ddmm = day.zfill(2) + month.zfill(2)
    if year == "0000" or ddmm not in _DDMM or (ddmm == "2902" and not _is_leap(int(year))):
        raise ValueError(f"not a date in the format {fmt}")
    return f"{year}-{ddmm[2:]}-{ddmm[:2]}"
