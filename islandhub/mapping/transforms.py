"""The transform registry: the named steps a mapping's `use:` list chains together.

A transform is built once per mapping field from its argument (``build``) into a *step*,
a plain function ``value -> value``. A step rejects a value by raising TransformError with
a short reason that never repeats the value (the engine adds a masked excerpt), and may
flag a value it keeps by returning ``Noted(value, note)``. Steps never see None unless
their definition says ``sees_none`` (default, coalesce, concat): missing stays missing.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from stdnum.exceptions import InvalidChecksum, InvalidComponent, ValidationError
from stdnum.fi import hetu as stdnum_hetu
from stdnum.fi import ytunnus as stdnum_ytunnus

from islandhub.mapping import fastpaths

Step = Callable[[Any], Any]


class TransformError(ValueError):
    """A transform cannot accept a value; the message is the reason, never the value."""


class ArgumentError(ValueError):
    """A transform's argument in a mapping file has the wrong shape."""


@dataclass(frozen=True, slots=True)
class Noted:
    """A value a step keeps but flags: the engine records ``note`` as a warning."""

    value: Any
    note: str


class _NoArg:
    """Marks a transform used by name alone (``use: [strip]``), unlike ``{x: null}``."""

    def __repr__(self) -> str:
        return "NO_ARG"


NO_ARG: Any = _NoArg()


@dataclass(frozen=True)
class TransformDef:
    """One registry entry: how to build the step and what it expects."""

    name: str
    build: Callable[[Any], Step]
    sees_none: bool = False  # the step is also called for missing values
    takes_list: bool = False  # the step combines the list a `from: [a, b]` gives


REGISTRY: dict[str, TransformDef] = {}


def register(
    name: str, *, sees_none: bool = False, takes_list: bool = False
) -> Callable[[Callable[[Any], Step]], Callable[[Any], Step]]:
    """Add a step builder to the registry under ``name``."""

    def add(build: Callable[[Any], Step]) -> Callable[[Any], Step]:
        REGISTRY[name] = TransformDef(name, build, sees_none=sees_none, takes_list=takes_list)
        return build

    return add


def known_transforms() -> list[str]:
    """Return the registered transform names, sorted."""
    return sorted(REGISTRY)


def parse_use(item: Any) -> tuple[str, Any]:
    """Split one `use:` entry into (name, argument); raise ArgumentError if malformed."""
    if isinstance(item, str):
        name, arg = item, NO_ARG
    elif isinstance(item, dict) and len(item) == 1:
        name, arg = next(iter(item.items()))
        if not isinstance(name, str):
            raise ArgumentError(f"a transform name must be text, not {name!r}")
    else:
        raise ArgumentError(
            "a transform is a name like strip or a one-key mapping like {date: '%d.%m.%Y'}"
        )
    if name not in REGISTRY:
        raise ArgumentError(
            f"unknown transform '{name}'; known transforms: {', '.join(known_transforms())}"
        )
    return name, arg


def build_step(item: Any) -> tuple[TransformDef, Step]:
    """Build the step for one `use:` entry; raise ArgumentError if it cannot be built."""
    name, arg = parse_use(item)
    definition = REGISTRY[name]
    return definition, definition.build(arg)


def _no_arg(name: str, arg: Any) -> None:
    if arg is not NO_ARG:
        raise ArgumentError(f"{name} takes no argument; write it as a plain name: {name}")


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# --- text -----------------------------------------------------------------------------
# Text steps change only text: numbers and other values pass through as they are.


def _text_step(name: str, func: Callable[[str], str]) -> Callable[[Any], Step]:
    def build(arg: Any) -> Step:
        _no_arg(name, arg)

        def step(value: Any) -> Any:
            return func(value) if isinstance(value, str) else value

        return step

    return build


_SPACES = re.compile(r"\s+")
register("strip")(_text_step("strip", str.strip))
register("lower")(_text_step("lower", str.lower))
register("upper")(_text_step("upper", str.upper))
register("title")(_text_step("title", str.title))
register("collapse_spaces")(_text_step("collapse_spaces", lambda s: _SPACES.sub(" ", s)))


# --- dates ----------------------------------------------------------------------------

_DATE_ARG = "date needs a format string like '%d.%m.%Y' (or a list of them, tried in order)"


@register("date")
def _build_date(arg: Any) -> Step:
    formats = [arg] if isinstance(arg, str) else arg
    if (
        not isinstance(formats, list)
        or not formats
        or not all(isinstance(f, str) and "%" in f for f in formats)
    ):
        raise ArgumentError(_DATE_ARG)
    reason = f"not a date in the format {' or '.join(formats)}"

    def step(value: Any) -> Any:
        if isinstance(value, datetime.datetime):
            return value.date().isoformat()
        if isinstance(value, datetime.date):
            return value.isoformat()
        if not isinstance(value, str):
            raise TransformError("not a date")
        text = value.strip()
        for fmt in formats:
            parsed = _parse_date(text, fmt)
            if parsed is not None:
                return parsed
        raise TransformError(reason)

    return step


def _parse_date(text: str, fmt: str) -> str | None:
    """ISO date of ``text`` read with ``fmt``, or None if it does not fit."""
    try:
        fast = fastpaths.date(text, fmt)
        if fast is not None:
            return fast
        return datetime.datetime.strptime(text, fmt).date().isoformat()
    except ValueError:
        return None


# --- identifiers ------------------------------------------------------------------------

TEMPORARY_HETU = "temporary national id (individual number 900-999)"


@register("hetu")
def _build_hetu(arg: Any) -> Step:
    _no_arg("hetu", arg)
    return _hetu


def _hetu(value: Any) -> Any:
    """Validate a HETU; keep the century sign as given, flag temporary ids."""
    if not isinstance(value, str):
        raise TransformError("a national id must be text")
    try:
        number = fastpaths.hetu(value)
    except ValueError as err:
        raise TransformError(str(err)) from None
    if number is None:
        number = _hetu_by_library(value)
    if number[7] == "9":  # individual number 900-999: hospitals' temporary ids
        return Noted(number, TEMPORARY_HETU)
    return number


def _hetu_by_library(value: str) -> str:
    try:
        number: str = stdnum_hetu.validate(value, allow_temporary=True)
    except InvalidChecksum:
        raise TransformError(fastpaths.HETU_BAD_CHECKSUM) from None
    except InvalidComponent:
        raise TransformError(
            "invalid national id (no such birth date, or individual number 000-001)"
        ) from None
    except ValidationError:
        raise TransformError(fastpaths.HETU_BAD_FORMAT) from None
    # stdnum accepts other scripts' digits; an id we store and mask must be plain ASCII.
    if not number.isascii():
        raise TransformError(fastpaths.HETU_BAD_FORMAT)
    return number


@register("ytunnus")
def _build_ytunnus(arg: Any) -> Step:
    _no_arg("ytunnus", arg)

    def step(value: Any) -> Any:
        if not isinstance(value, str):
            raise TransformError("a business id must be text")
        try:
            number = stdnum_ytunnus.validate(value)
        except InvalidChecksum:
            raise TransformError("invalid business id (check digit does not match)") from None
        except ValidationError:
            raise TransformError("invalid business id (not the form 1234567-8)") from None
        return stdnum_ytunnus.format(number)

    return step


# --- contact details --------------------------------------------------------------------


@register("email")
def _build_email(arg: Any) -> Step:
    _no_arg("email", arg)
    return _email


def _email(value: Any) -> Any:
    """Validate an address and lower-case all of it.

    The whole address, local part included, is lower-cased: Finnish mail providers treat
    local parts case-insensitively, and identity resolution compares addresses across
    systems, where "Matti.M@" and "matti.m@" must be the same person.
    """
    if not isinstance(value, str):
        raise TransformError("an email address must be text")
    fast = fastpaths.email(value)
    if fast is not None:
        return fast
    try:
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as err:
        raise TransformError(f"invalid email address ({str(err)[:120]})") from None
    return result.normalized.lower()


_PHONE_ARG = "phone takes an optional region like {phone: {region: SE}} (ISO country code)"


@register("phone")
def _build_phone(arg: Any) -> Step:
    region = "FI"
    if isinstance(arg, dict) and set(arg) == {"region"}:
        region = arg["region"]
    elif isinstance(arg, str):
        region = arg
    elif arg is not NO_ARG:
        raise ArgumentError(_PHONE_ARG)
    if not isinstance(region, str) or region.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise ArgumentError(_PHONE_ARG)
    region = region.upper()
    # The fast path knows Finnish numbers only; elsewhere "040..." means something else.
    fast = fastpaths.phone_fi if region == "FI" else None

    def step(value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise TransformError("a phone number must be text")
        if _is_national_id(value):
            # phonenumbers (and the fast path, for 04.../05...) read a HETU typed in the phone
            # column as a number: +358 and its digits, stored and shown unmasked.
            raise TransformError(
                "looks like a national id (HETU), not a phone number; write a phone number "
                "that looks like one with spaces (040 190 0120)"
            )
        if fast is not None:
            e164 = fast(value)
            if e164 is not None:
                return e164
        return _phone_by_library(value, region)

    return step


_CENTURY_SIGNS = frozenset("-+ABCDEFUVWXYabcdefuvwxy")


def _is_national_id(value: str) -> bool:
    """Whether `value` is a valid HETU (its shape looked at first: a phone almost never has it)."""
    text = value.strip()
    if len(text) != 11 or text[6] not in _CENTURY_SIGNS:
        return False
    try:
        _hetu(text)  # the `hetu` transform's own check
    except TransformError:
        return False
    return True


def _phone_by_library(value: str, region: str) -> str:
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise TransformError("not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise TransformError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_POSTAL = re.compile(r"(?:FI-?)?([0-9]{5})", re.IGNORECASE)


@register("postal_code")
def _build_postal_code(arg: Any) -> Step:
    _no_arg("postal_code", arg)
    return _postal_code


def _postal_code(value: Any) -> Any:
    """Read a Finnish postal code: five digits, as text."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        # Spreadsheets store 00100 as the number 100: give the zeros back.
        if 0 <= value <= 99999:
            return f"{value:05d}"
        raise TransformError("not a Finnish postal code (five digits)")
    if not isinstance(value, str):
        raise TransformError("not a Finnish postal code (five digits)")
    match = _POSTAL.fullmatch(value.replace(" ", ""))
    if match is None:
        raise TransformError("not a Finnish postal code (five digits)")
    return match.group(1)


# --- tables and defaults ------------------------------------------------------------------

_MAP_ARG = (
    "map needs a value table like {map: {suomi: fi, svenska: sv}} "
    "or {map: {values: {suomi: fi}, default: fi}}"
)


@register("map")
def _build_map(arg: Any) -> Step:
    if not isinstance(arg, dict) or not arg:
        raise ArgumentError(_MAP_ARG)
    long_keys = {"values", "default"}
    long_form = "values" in arg and isinstance(arg["values"], dict) and set(arg) <= long_keys
    table: dict[Any, Any] = arg["values"] if long_form else arg
    if not table:
        raise ArgumentError(_MAP_ARG)
    has_default = long_form and "default" in arg
    default = arg.get("default") if long_form else None
    # Second chance for typed data: " Suomi " and "SUOMI" find the key suomi.
    folded = {_fold(k): v for k, v in table.items() if not isinstance(k, bool)}

    def step(value: Any) -> Any:
        if isinstance(value, str | int | float | bool):
            if value in table:
                return table[value]
            key = _fold(value)
            if key in folded:
                return folded[key]
        if has_default:
            return default
        raise TransformError("not in the value table")

    return step


def _fold(key: Any) -> str:
    return str(key).strip().casefold()


@register("default", sees_none=True)
def _build_default(arg: Any) -> Step:
    if arg is NO_ARG:
        raise ArgumentError("default needs the value to use when missing, like {default: fi}")

    def step(value: Any) -> Any:
        return arg if _is_blank(value) else value

    return step


_REGEX_ARG = "regex needs a pattern, like {regex: '\\d{3}'} or {regex: {pattern: ..., group: 1}}"


@register("regex")
def _build_regex(arg: Any) -> Step:
    pattern_text, group = arg, None
    if isinstance(arg, dict) and "pattern" in arg and set(arg) <= {"pattern", "group"}:
        pattern_text, group = arg["pattern"], arg.get("group")
    if not isinstance(pattern_text, str) or not pattern_text:
        raise ArgumentError(_REGEX_ARG)
    try:
        pattern = re.compile(pattern_text)
    except re.error as err:
        raise ArgumentError(f"regex pattern does not compile: {err}") from None
    if group is None:
        group = 1 if pattern.groups else 0
    valid_group = (
        isinstance(group, int) and not isinstance(group, bool) and 0 <= group <= pattern.groups
    ) or (isinstance(group, str) and group in pattern.groupindex)
    if not valid_group:
        raise ArgumentError(f"regex group {group!r} is not a group of the pattern")

    def step(value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise TransformError("not text")
        match = pattern.fullmatch(value)
        if match is None:
            raise TransformError("does not match the expected pattern")
        return match.group(group)

    return step


# --- combining several source fields ----------------------------------------------------------


@register("concat", sees_none=True, takes_list=True)
def _build_concat(arg: Any) -> Step:
    separator = " " if arg is NO_ARG else arg
    if not isinstance(separator, str):
        raise ArgumentError("concat needs a separator string, like {concat: ' '}")

    def step(value: Any) -> Any:
        items = value if isinstance(value, list) else [value]
        parts = [str(item).strip() for item in items if not _is_blank(item)]
        return separator.join(parts) if parts else None

    return step


@register("coalesce", sees_none=True, takes_list=True)
def _build_coalesce(arg: Any) -> Step:
    _no_arg("coalesce", arg)

    def step(value: Any) -> Any:
        items = value if isinstance(value, list) else [value]
        return next((item for item in items if not _is_blank(item)), None)

    return step


# --- names ------------------------------------------------------------------------------

_NAME_ARG = (
    "name needs the part to take: {name: given}, {name: family}, or "
    "{name: {part: given, order: family_first}}"
)
# Family-name particles: they belong to the family name ("Carl Gustaf af Ugglas").
PARTICLES = frozenset(
    {
        "af", "av", "von", "van", "der", "den", "de", "del", "della",
        "di", "da", "du", "la", "le", "zu", "ter", "ten", "dos", "das", "do",
    }
)  # fmt: skip


@register("name")
def _build_name(arg: Any) -> Step:
    part, order = arg, "given_first"
    if isinstance(arg, dict) and "part" in arg and set(arg) <= {"part", "order"}:
        part, order = arg["part"], arg.get("order", "given_first")
    if part not in ("given", "family") or order not in ("given_first", "family_first"):
        raise ArgumentError(_NAME_ARG)
    index = 0 if part == "given" else 1

    def step(value: Any) -> Any:
        if not isinstance(value, str):
            raise TransformError("a name must be text")
        return _split_name_cached(value, order)[index]

    return step


def split_name(text: str, order: str = "given_first") -> tuple[str | None, str | None]:
    """Split a full name into (given names, family name), tidying ALL-CAPS parts.

    "Family, Given Second" splits at the comma; "FAMILY Given" (leading upper-case words,
    the rest not) takes the upper-case words as the family name; otherwise ``order``
    (given_first or family_first) decides. A single word is taken as the family name.
    """
    tokens = text.split()
    if not tokens:
        return None, None
    # Most names have no upper-case word: then the parts need no tidying, only joining.
    tidy = _tidy if any(map(str.isupper, tokens)) else _join
    if "," in text:
        family, _, given = " ".join(tokens).partition(",")
        return tidy(given.replace(",", " ").split()), tidy(family.split())
    if tidy is _tidy and _is_shouted(tokens[0]):
        shouting = 1
        while shouting < len(tokens) and _is_shouted(tokens[shouting]):
            shouting += 1
        if shouting < len(tokens) and not any(map(_is_shouted, tokens[shouting:])):
            return tidy(tokens[shouting:]), tidy(tokens[:shouting])
    if len(tokens) == 1:
        return None, tidy(tokens)
    if order == "family_first":
        cut = 0
        while cut < len(tokens) - 2 and tokens[cut].lower() in PARTICLES:
            cut += 1
        return tidy(tokens[cut + 1 :]), tidy(tokens[: cut + 1])
    cut = len(tokens) - 1
    while cut > 1 and tokens[cut - 1].lower() in PARTICLES:
        cut -= 1
    return tidy(tokens[:cut]), tidy(tokens[cut:])


# Mappings split one full-name column twice (given_name and family_name): the second field
# finds the first one's splits here. The engine empties it after each batch; the cap only
# guards against a caller that never does.
_SPLITS: dict[str, dict[str, tuple[str | None, str | None]]] = {
    "given_first": {},
    "family_first": {},
}
_SPLITS_CAP = 1 << 18


def _split_name_cached(text: str, order: str) -> tuple[str | None, str | None]:
    cache = _SPLITS[order]
    parts = cache.get(text)
    if parts is None:
        parts = split_name(text, order)
        if len(cache) < _SPLITS_CAP:
            cache[text] = parts
    return parts


def clear_batch_caches() -> None:
    """Forget values cached for the batch just mapped (called by the engine)."""
    for cache in _SPLITS.values():
        cache.clear()


def _is_shouted(token: str) -> bool:
    """Tell an upper-case word of two or more letters (not an initial like "J.")."""
    return token.isupper() and sum(c.isalpha() for c in token) >= 2


def _join(tokens: list[str]) -> str | None:
    return " ".join(tokens) or None


def _tidy(tokens: list[str]) -> str | None:
    """Join name words, title-casing ALL-CAPS words and lower-casing shouted particles."""
    if not tokens:
        return None
    last = len(tokens) - 1
    words = []
    for i, token in enumerate(tokens):
        if token.isupper():
            lower = token.lower()
            token = lower if i < last and lower in PARTICLES else token.title()
        words.append(token)
    return " ".join(words)


# --- booleans ---------------------------------------------------------------------------

_TRUE = {"true", "1", "yes", "y", "kyllä", "k", "ja", "j", "x", "sant", "tosi"}
_FALSE = {"false", "0", "no", "n", "ei", "e", "nej", "", "falskt", "epätosi"}
_BOOL = {**dict.fromkeys(_TRUE, True), **dict.fromkeys(_FALSE, False)}


@register("bool")
def _build_bool(arg: Any) -> Step:
    _no_arg("bool", arg)
    return _bool


def _bool(value: Any) -> Any:
    """Read yes/no in Finnish, Swedish and English; 'x' marks a ticked box."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        result = _BOOL.get(value.strip().casefold())
        if result is not None:
            return result
    raise TransformError("not a yes/no value")
