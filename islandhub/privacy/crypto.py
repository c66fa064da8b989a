"""National ids at rest: sealed (encrypted) in every stored record, found by a keyed hash.

One secret, `ISLANDHUB_NATIONAL_ID_KEY` (at least 32 random bytes, base64), gives two keys
through HKDF: one for the lookup hash (HMAC-SHA256: the same id always finds the same
resident, and without the key the hash cannot be brute-forced from the small space of
HETUs) and one for sealing (AES-SIV). AES-SIV is deterministic on purpose: the same id
seals to the same text, so a golden record that did not change keeps the same bytes and
gets no new version; it reveals equality only, which the lookup hash reveals anyway.

Sealed values read `nid1:<base64url>`; `unseal` passes anything else through unchanged,
so readers need not know whether a value was sealed.

Without the secret (a developer's machine, the demo) the key is read from, or created in,
`var/keys/national_id.key` of the project (mode 0600), with a warning: a production hub
sets the secret in the environment of every process that opens the store (docs/privacy.md).
`islandhub privacy new-key` makes one. A store remembers the fingerprint of the key it was
sealed with (islandhub/store/sealing.py): a process with another key is refused, not
silently wrong.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from islandhub.errors import ConfigError

KEY_ENV = "ISLANDHUB_NATIONAL_ID_KEY"
KEY_FILE_ENV = "ISLANDHUB_NATIONAL_ID_KEY_FILE"
PREFIX = "nid1:"
_ASSOCIATED = [b"islandhub national id"]
MIN_KEY_BYTES = 32
# A sealed value inside a longer text ("population:henkilot:nid1:..."): base64url after the prefix.
SEALED_TOKEN = re.compile(r"nid1:[A-Za-z0-9_-]{22,}")
_FINGERPRINT = b"islandhub national id key fingerprint v1"
_URLSAFE = bytes.maketrans(b"+/", b"-_")  # what base64.urlsafe_b64encode translates
log = logging.getLogger(__name__)

# Where the development key lives when no secret is set; the CLI and the API point it at the
# project (use_project) before they open its store.
_fallback: dict[str, Path] = {"file": Path("var") / "keys" / "national_id.key"}


class KeyMismatch(ConfigError):
    """The national-id key is not the one the store was sealed with (exit code 2)."""


@dataclass(frozen=True)
class Keyring:
    """The two keys one master key gives: the lookup hash's and the sealing one."""

    lookup: bytes
    cipher: AESSIV
    source: str  # where the master key came from, for error messages (never the key)
    # One record's id is sealed for its payload, its source id and its mapped fields, and
    # opened again to publish it: a small memo per key spares the cipher most of that.
    _sealed: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    _opened: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    # The lookup key's HMAC, keyed once and copied per value (hmac.new keys it every time).
    _keyed: hmac.HMAC = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_keyed", hmac.new(self.lookup, digestmod=hashlib.sha256))

    @classmethod
    def from_master(cls, master: bytes, source: str) -> Keyring:
        """The keys derived from a master key (HKDF-SHA256, one `info` per use)."""
        lookup = _derive(master, b"islandhub national id lookup v1", 32)
        sealing = _derive(master, b"islandhub national id seal v1", 64)
        return cls(lookup, AESSIV(sealing), source)

    @classmethod
    def from_text(cls, text: str, source: str) -> Keyring:
        """The keys of a master key given as base64 text (a secret's value)."""
        return cls.from_master(_decode(text.strip(), source), source)

    def seal(self, value: str) -> str:
        """`value` encrypted: deterministic, authenticated, `nid1:<base64url>`."""
        sealed = self._sealed.get(value)
        if sealed is None:
            token = self.cipher.encrypt(value.encode(), _ASSOCIATED)
            # base64.urlsafe_b64encode written out (the same bytes, one call fewer).
            encoded = binascii.b2a_base64(token, newline=False).translate(_URLSAFE)
            sealed = PREFIX + encoded.decode().rstrip("=")
            _remember(self._sealed, value, sealed)
            _remember(self._opened, sealed, value)  # publishing opens it again, soon
        return sealed

    def unseal(self, value: str) -> str:
        """The clear text of a sealed value (others pass through); KeyMismatch if it won't open."""
        if not isinstance(value, str) or not value.startswith(PREFIX):
            return value
        opened = self._opened.get(value)
        if opened is not None:
            return opened
        body = value[len(PREFIX) :]
        try:
            token = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            opened = self.cipher.decrypt(token, _ASSOCIATED).decode()
        except (InvalidTag, ValueError, binascii.Error):
            raise KeyMismatch(
                f"a sealed national id does not open with {self.source}: the store was sealed "
                f"with another key, or the value is damaged (docs/privacy.md)"
            ) from None
        _remember(self._opened, value, opened)
        return opened

    def lookup_hash(self, value: str) -> str:
        """The keyed hash (HMAC-SHA256, hex) of a national id, sealed or not."""
        return self.clear_lookup_hash(self.unseal(value))

    def clear_lookup_hash(self, value: str) -> str:
        """`lookup_hash` of a value known not to be sealed (nothing to open).

        HMAC-SHA256 as hmac.new(self.lookup, value, sha256), from a copy of the HMAC keyed
        once (`HMAC.copy`): this runs once per mapped record (tests/unit/test_crypto.py).
        """
        keyed = self._keyed.copy()
        keyed.update(value.encode())
        return keyed.hexdigest()

    def digest(self, text: str) -> str:
        """A keyed hash of any text (32 hex digits): names a record without an oracle.

        An unkeyed hash of a record beside its masked excerpt would let anyone try the
        thousand individual numbers a masked HETU hides; this one cannot be recomputed.
        """
        return hmac.new(self.lookup, b"digest\x00" + text.encode(), hashlib.sha256).hexdigest()[:32]

    def fingerprint(self) -> str:
        """A name for the key that reveals nothing of it: HMAC of a constant, 32 hex digits."""
        return hmac.new(self.lookup, _FINGERPRINT, hashlib.sha256).hexdigest()[:32]


# Sealed and opened values remembered per process: one batch's worth (the files connector's
# default is 5,000 records) is what helps, since a record's id is sealed and opened again
# within its batch. Each entry costs about 250 bytes in each of the two memos: 65,536 held
# 30 MB more in the extract worker on the ingest benchmark than this, for no speed.
MEMO_SIZE = 16384


def _remember(memo: dict[str, str], key: str, value: str) -> None:
    if len(memo) >= MEMO_SIZE:
        memo.clear()  # a batch's worth is what helps; older entries are not worth keeping
    memo[key] = value


def use_project(root: Path) -> None:
    """Keep the development key in this project's var/keys (when no secret is set)."""
    path = (Path(root) / "var" / "keys" / "national_id.key").resolve()
    if path != _fallback["file"]:
        _fallback["file"] = path
        _keys.cache_clear()


def seal(value: str) -> str:
    """The national id as stored: encrypted, deterministic, authenticated."""
    return _keys().seal(value)


def unseal(value: str) -> str:
    """The national id in clear (a value that was never sealed is returned as it is).

    Raises KeyMismatch when a sealed value does not open with this process's key.
    """
    if not isinstance(value, str) or not value.startswith(PREFIX):
        return value
    return _keys().unseal(value)


def try_unseal(value: str) -> str:
    """Like `unseal`, but a value that does not open is returned as it is.

    For text an island sent that merely looks sealed ("nid1:..." typed into a field): the
    store's own values always open, since opening the store checks the key (sealing.py).
    """
    try:
        return unseal(value)
    except KeyMismatch:
        return value


def unseal_text(text: str) -> str:
    """Free text (a printed table, a JSON document) with every sealed token opened."""
    if not isinstance(text, str) or PREFIX not in text:
        return text
    return SEALED_TOKEN.sub(lambda m: try_unseal(m.group(0)), text)


def is_sealed(value: object) -> bool:
    """Whether a stored value is a sealed national id."""
    return isinstance(value, str) and value.startswith(PREFIX)


def lookup_hash(value: str) -> str:
    """The keyed hash that finds a resident by national id (never the id itself)."""
    return _keys().lookup_hash(value)


def digest(text: str) -> str:
    """A keyed hash of a text (see Keyring.digest)."""
    return _keys().digest(text)


def fingerprint() -> str:
    """The fingerprint of this process's key, as the store keeps it (sealing.py)."""
    return _keys().fingerprint()


def key_source() -> str:
    """Where this process's key comes from, in words (never the key)."""
    return _keys().source


def current() -> Keyring:
    """The keyring of this process (the secret, or the development key file)."""
    return _keys()


def key_file() -> Path:
    """The development key file, read when no secret is set (ISLANDHUB_NATIONAL_ID_KEY_FILE)."""
    return Path(os.environ.get(KEY_FILE_ENV) or _fallback["file"])


def forget_keys() -> None:
    """Read the key again at its next use (after a rotation)."""
    _keys.cache_clear()


@lru_cache(maxsize=1)
def _keys() -> Keyring:
    text = os.environ.get(KEY_ENV)
    if text:
        return Keyring.from_text(text, f"the secret {KEY_ENV}")
    path = key_file()
    if not path.exists():
        _create_key_file(path)
        log.warning(
            "no %s set: national ids are sealed with a development key in %s; "
            "set the secret in production (docs/privacy.md)",
            KEY_ENV,
            path,
        )
    return Keyring.from_text(path.read_text(), f"the key file {path}")


def _derive(master: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(master)


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two processes starting at once must not each write a different key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.urlsafe_b64encode(secrets.token_bytes(48)).decode() + "\n")


def _decode(text: str, where: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ConfigError(f"{where} is not base64 (make one: islandhub privacy new-key)") from None
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"{where} is too short: at least {MIN_KEY_BYTES} random bytes")
    return key


def new_key() -> str:
    """A fresh master key, base64, for `ISLANDHUB_NATIONAL_ID_KEY`."""
    return base64.urlsafe_b64encode(secrets.token_bytes(48)).decode()
