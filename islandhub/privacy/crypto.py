"""National ids at rest: sealed (encrypted) in every stored record, found by a keyed hash.

One secret, `ISLANDHUB_NATIONAL_ID_KEY` (at least 32 random bytes, base64), gives two keys
through HKDF: one for the lookup hash (HMAC-SHA256: the same id always finds the same
resident, and without the key the hash cannot be brute-forced from the small space of
HETUs) and one for sealing (AES-SIV). AES-SIV is deterministic on purpose: the same id
seals to the same text, so a golden record that did not change keeps the same bytes and
gets no new version; it reveals equality only, which the lookup hash reveals anyway.

Sealed values read `nid1:<base64url>`; `unseal` passes anything else through unchanged,
so readers need not know whether a value was sealed.

Without the secret (a developer's machine, the demo, the tests) the key is read from, or
created in, `var/keys/national_id.key` of the project (mode 0600), with a warning: a
production hub sets the secret (Airflow variable or environment; docs/privacy.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from islandhub.errors import ConfigError

KEY_ENV = "ISLANDHUB_NATIONAL_ID_KEY"
KEY_FILE_ENV = "ISLANDHUB_NATIONAL_ID_KEY_FILE"
PREFIX = "nid1:"
_ASSOCIATED = [b"islandhub national id"]
MIN_KEY_BYTES = 32
log = logging.getLogger(__name__)

# Where the development key lives when no secret is set; load_project points it at the project.
_fallback: dict[str, Path] = {"file": Path("var") / "keys" / "national_id.key"}


@dataclass(frozen=True)
class _Keys:
    lookup: bytes
    seal: AESSIV


def use_project(root: Path) -> None:
    """Keep the development key in this project's var/keys (when no secret is set)."""
    path = (Path(root) / "var" / "keys" / "national_id.key").resolve()
    if path != _fallback["file"]:
        _fallback["file"] = path
        _keys.cache_clear()


def seal(value: str) -> str:
    """The national id as stored: encrypted, deterministic, authenticated."""
    token = _keys().seal.encrypt(value.encode(), _ASSOCIATED)
    return PREFIX + base64.urlsafe_b64encode(token).decode().rstrip("=")


def unseal(value: str) -> str:
    """The national id in clear (a value that was never sealed is returned as it is)."""
    if not isinstance(value, str) or not value.startswith(PREFIX):
        return value
    body = value[len(PREFIX) :]
    token = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    return _keys().seal.decrypt(token, _ASSOCIATED).decode()


def is_sealed(value: object) -> bool:
    """Whether a stored value is a sealed national id."""
    return isinstance(value, str) and value.startswith(PREFIX)


def lookup_hash(value: str) -> str:
    """The keyed hash that finds a resident by national id (never the id itself)."""
    return hmac.new(_keys().lookup, unseal(value).encode(), hashlib.sha256).hexdigest()


@lru_cache(maxsize=1)
def _keys() -> _Keys:
    master = _master_key()
    lookup = _derive(master, b"islandhub national id lookup v1", 32)
    sealing = _derive(master, b"islandhub national id seal v1", 64)
    return _Keys(lookup, AESSIV(sealing))


def _derive(master: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(master)


def _master_key() -> bytes:
    text = os.environ.get(KEY_ENV)
    if text:
        return _decode(text, f"the secret {KEY_ENV}")
    path = Path(os.environ.get(KEY_FILE_ENV) or _fallback["file"])
    if not path.exists():
        _create_key_file(path)
        log.warning(
            "no %s set: national ids are sealed with a development key in %s; "
            "set the secret in production (docs/privacy.md)",
            KEY_ENV,
            path,
        )
    return _decode(path.read_text().strip(), f"the key file {path}")


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
