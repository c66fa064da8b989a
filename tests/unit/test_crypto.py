"""Sealing national ids at rest and the keyed lookup hash."""

from __future__ import annotations

import stat

import pytest

from islandhub.errors import ConfigError
from islandhub.privacy import crypto

HETU = "131052-308T"


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv(crypto.KEY_ENV, crypto.new_key())
    crypto._keys.cache_clear()
    yield
    crypto._keys.cache_clear()


def test_sealing_is_deterministic_authenticated_and_reversible(key):
    sealed = crypto.seal(HETU)
    assert sealed.startswith("nid1:") and HETU not in sealed
    assert crypto.seal(HETU) == sealed  # same bytes: an unchanged record gets no new version
    assert crypto.seal("131052-307R") != sealed
    assert crypto.unseal(sealed) == HETU
    assert crypto.unseal(HETU) == HETU  # never sealed: passed through
    tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(Exception):  # noqa: B017 - cryptography's InvalidTag
        crypto.unseal(tampered)


def test_lookup_hash_is_keyed_and_sees_through_sealing(key, monkeypatch):
    first = crypto.lookup_hash(HETU)
    assert crypto.lookup_hash(crypto.seal(HETU)) == first
    monkeypatch.setenv(crypto.KEY_ENV, crypto.new_key())
    crypto._keys.cache_clear()
    assert crypto.lookup_hash(HETU) != first  # without the key the hash cannot be made


def test_without_the_secret_a_private_development_key_file_is_made_once(tmp_path, monkeypatch):
    monkeypatch.delenv(crypto.KEY_ENV, raising=False)
    monkeypatch.setenv(crypto.KEY_FILE_ENV, str(tmp_path / "keys" / "national_id.key"))
    crypto._keys.cache_clear()
    sealed = crypto.seal(HETU)
    path = tmp_path / "keys" / "national_id.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    crypto._keys.cache_clear()
    assert crypto.unseal(sealed) == HETU  # the same key, read back
    crypto._keys.cache_clear()


@pytest.mark.parametrize(
    ("value", "message"), [("not base64!", "is not base64"), ("c2hvcnQ=", "too short")]
)
def test_a_bad_secret_is_a_clear_error(monkeypatch, value, message):
    monkeypatch.setenv(crypto.KEY_ENV, value)
    crypto._keys.cache_clear()
    with pytest.raises(ConfigError, match=message):
        crypto.seal(HETU)
    crypto._keys.cache_clear()
