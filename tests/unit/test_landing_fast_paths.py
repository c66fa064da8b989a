"""The shortcuts `landing.prepare` takes give exactly what the longer ways give.

- A mapped record's clear values (and its national-id lookup key) are taken from the values
  before sealing, not by opening the sealed ones: the same for every kind of value.
- `may_hold_hetu` asks a byte test before its pattern: the same answer for any text.
- The lookup hash from the key's pads hashed once is HMAC-SHA256 (hmac.new).
- A payload with nothing sealed is not serialised again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
from typing import Any

import pytest

from connectors.base import Batch
from islandhub import landing
from islandhub.mapping import Mapping
from islandhub.privacy import at_rest, crypto
from islandhub.privacy.at_rest import _CANDIDATE, may_hold_hetu, seal_source_id
from islandhub.resolve.keys import clear_national_id_key, national_id_key
from islandhub.store.db import dumps, loads
from tests.helpers import hetu

PERMANENT = hetu(13, 10, 1952, 308)
TEMPORARY = hetu(1, 2, 1990, 912)
OTHER = hetu(5, 6, 1977, 123)


def _sealed_elsewhere() -> str:
    return crypto.seal(OTHER)  # a real sealed value an island handed back


NATIONAL_IDS: list[Any] = [
    PERMANENT,
    TEMPORARY,
    hetu(1, 2, 1990, 999),
    hetu(1, 2, 1990, 900),
    PERMANENT.lower(),
    f"  {PERMANENT} ",
    "12345",  # sensitive, not HETU-shaped: sealed all the same
    "tuntematon",
    "",
    "   ",
    None,
    12345,
    1.5,
    ["a", PERMANENT],
    {"n": PERMANENT},
    "nid1:" + "A" * 30,  # looks sealed, does not open
    "nid1:" + PERMANENT,
    "SENTINEL_SEALED",  # replaced by a real sealed value
    "x" + PERMANENT,
    "123456-9000",  # temporary-shaped by length and digits
]
OTHERS: list[dict[str, Any]] = [
    {},
    {"given_name": "Elsa", "family_name": "Virtanen"},
    {"given_name": "Elsa", "note": f"see also {OTHER}"},  # a HETU in free text
    {"given_name": "Elsa", "contact": {"hetu": OTHER}},  # nested
    {"given_name": "Elsa", "contacts": [OTHER, "x"]},
    {"given_name": "nid1:" + "B" * 25},  # another value that looks sealed
    {"given_name": "SENTINEL_SEALED"},
    {"note": "population:henkilot:nid1:" + "C" * 25},
    {"note": "\x01" + OTHER},  # escaped in JSON
    {"address.street": "Puistotie 119 C 7", "phone": "+358464985479"},
    # JSON gives these back as they are, or not (a float, a tuple): see `_plain`.
    {"given_name": "Elsa", "children": 3, "non_disclosure": True, "email": None},
    {"given_name": "Elsa", "score": 1.5},
    {"given_name": "Elsa", "tags": ("a", "b")},
]
SOURCE_IDS = ["R0000001", PERMANENT, TEMPORARY, "nid1:" + "D" * 30, "SENTINEL_SEALED", "x y"]


def _real(value: Any) -> Any:
    return _sealed_elsewhere() if value == "SENTINEL_SEALED" else value


def _the_long_way(source_id: str, values: dict[str, Any]) -> tuple[str, Any]:
    """What `prepare` did before: seal, serialise, then open what was sealed."""
    stored_id = seal_source_id(source_id)
    text, stored = landing._sealed_fields(values)
    return text, landing._clear_values(stored_id, text, stored)


@pytest.mark.parametrize("national_id", NATIONAL_IDS)
def test_clear_values_from_the_values_before_sealing_are_the_opened_ones(national_id):
    for others in OTHERS:
        for raw_id in SOURCE_IDS:
            source_id = _real(raw_id)
            values = {k: _real(v) for k, v in others.items()}
            if national_id is not None:
                values["national_id"] = _real(national_id)
            expected = _the_long_way(source_id, values)
            *got, stored = landing._as_stored(source_id, seal_source_id(source_id), values)
            assert tuple(got) == expected
            # The dict handed on is the text's, loaded: same values of the same types; none
            # where JSON would not give it back (a float, a tuple, a nested value).
            loaded = loads(got[0])
            if any(type(v) in (float, tuple, list, dict) for v in values.values()):
                assert stored is None, values
            else:
                assert stored is not None, values
                assert stored == loaded
                assert [type(stored[k]) for k in loaded] == [type(v) for v in loaded.values()]
            # ClearValues is a tuple: the kind of `fields` (text or dict) matters too.
            if expected[1] is not None:
                assert type(got[1].fields) is type(expected[1].fields)


def test_the_short_way_is_taken_by_the_common_record(monkeypatch):
    """A record whose only sealed value is its national id opens nothing and hashes once."""
    opened: list[str] = []
    real_unseal = crypto.Keyring.unseal

    def counted(self: crypto.Keyring, value: str) -> str:
        opened.append(value)
        return real_unseal(self, value)

    monkeypatch.setattr(crypto.Keyring, "unseal", counted)
    values = {"national_id": PERMANENT, "given_name": "Elsa"}
    text, clear, stored = landing._as_stored("R1", "R1", values)
    assert opened == []
    assert stored == loads(text)
    assert clear is not None and clear.fields == PERMANENT
    assert clear.national_id_key == national_id_key(crypto.seal(PERMANENT))
    assert clear.source_id == "R1"
    assert PERMANENT not in text


@pytest.mark.parametrize(
    "value", [PERMANENT, TEMPORARY, PERMANENT.lower(), "12345", "   ", "", None, "a" * 11]
)
def test_the_lookup_key_of_a_clear_id_is_the_one_of_its_sealed_form(value):
    assert clear_national_id_key(value) == national_id_key(value)
    if value and value.strip():
        assert clear_national_id_key(value) == national_id_key(crypto.seal(value))


def test_the_lookup_hash_is_hmac_sha256():
    keys = crypto.current()
    for value in ["", PERMANENT, "é" * 70, "x" * 1000]:
        expected = hmac.new(keys.lookup, value.encode(), hashlib.sha256).hexdigest()
        assert keys.clear_lookup_hash(value) == expected
        assert keys.lookup_hash(value) == expected
        assert keys.lookup_hash(keys.seal(value)) == expected
    for size in (1, 32, 64, 65, 200):  # keys shorter and longer than SHA-256's block
        ring = crypto.Keyring(bytes(range(size)), keys.cipher, "test")
        expected = hmac.new(ring.lookup, b"290303A044A", hashlib.sha256).hexdigest()
        assert ring.clear_lookup_hash("290303A044A") == expected


def test_a_sealed_value_is_base64url_of_the_cipher_text():
    keys = crypto.current()
    for value in [PERMANENT, "", "é", "x" * 100]:
        token = keys.cipher.encrypt(value.encode(), [b"islandhub national id"])
        expected = crypto.PREFIX + base64.urlsafe_b64encode(token).decode().rstrip("=")
        assert keys.seal(value) == expected
        assert crypto.unseal(expected) == value


_PIECES = [
    PERMANENT,
    "0123456",
    "-",
    "+",
    "A",
    "a",
    "y",
    "Z",
    "1",
    "9",
    "٣",  # Arabic-Indic digit: \\d matches it
    "٠١٢",
    "ä",
    "😀",
    "\\u0001",
    '"',
    " ",
    "nid1:",
    "\ud800",
]


def test_may_hold_hetu_answers_as_its_pattern():
    rng = random.Random(7)
    texts = [
        PERMANENT,
        "abc",
        "",
        "٠١٠٣٠٣A٠٤٤A",  # a candidate in other digits
        "29030٣-044A",
        "290303A04",
        dumps({"a": "\x01" + PERMANENT}),
    ]
    for _ in range(20000):
        texts.append("".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 12))))
    for _ in range(20000):
        digits = "".join(rng.choice("0123456789٣") for _ in range(6))
        sign = rng.choice("-+AFUYafuyGZ ")
        texts.append(f"{digits}{sign}{rng.randint(0, 999):03d}{rng.choice('0AYaZz')}")
    found = 0
    for text in texts:
        expected = _CANDIDATE.search(text) is not None
        found += expected
        assert may_hold_hetu(text) == expected, ascii(text)
    assert found > 1000


@pytest.mark.parametrize(
    "record",
    [
        {"id": "R1", "name": "Elsa"},  # nothing to seal
        {"id": "R1", "name": f"see {PERMANENT}"},  # a HETU the quick step leaves
        {"id": PERMANENT, "hetu": PERMANENT},
        {"id": "R1", "hetu": "   "},
        {"id": "R1", "hetu": "nid1:" + "A" * 30},
    ],
)
def test_a_payload_is_sealed_as_the_general_rule_seals_it(record):
    payload = dumps(record)
    paths = ("hetu",)
    got = landing._sealed_payload(record, payload, paths, "id")
    assert got == dumps(at_rest.seal_tree(at_rest.seal_payload(record, paths), ()))
    sealed_id = at_rest.seal_known(record, paths, ("id",))
    assert sealed_id is not None
    if sealed_id is record:
        assert got == (dumps(at_rest.seal_tree(record, ())) if may_hold_hetu(payload) else payload)


# A national id, a name and a free-text note that may hold another HETU.
NOTE_MAPPING = Mapping.from_spec(
    {
        "source": "a.b",
        "id": "id",
        "fields": {
            "national_id": {"from": "hetu"},
            "given_name": {"from": "name"},
            "note": {"from": "note"},
        },
    }
)


def test_prepare_hands_over_the_same_values_as_opening_them():
    mapping = NOTE_MAPPING
    records = [
        {"id": f"R{i}", "hetu": _real(n), "name": "Elsa", "note": note}
        for i, n in enumerate(NATIONAL_IDS)
        if not isinstance(n, dict | list)
        for note in ("plain", f"see {OTHER}")
    ]
    records = [{**r, "id": f"{r['id']}-{i}"} for i, r in enumerate(records)]
    prepared = landing.prepare(Batch(records, {}), mapping)
    assert len(prepared.items) == len(records)
    for item in prepared.items:
        if item.fields is None:
            continue
        stored = landing.loads(item.fields)
        assert item.clear == landing._clear_values(item.source_id, item.fields, stored)
