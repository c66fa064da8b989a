"""Rotating the national-id key: every sealed value and the lookup index, in one transaction.

`islandhub privacy rotate-key` with the new key in ISLANDHUB_NATIONAL_ID_KEY_NEW (the old
one where it always is): the store must be sealed with the old key; no stream may be
running (a sync would seal with the old key meanwhile); everything is sealed again with the
new key, the national-id index rebuilt under it and the store's fingerprint replaced, then
committed at once. Until the secret is switched to the new key, every process is refused
(the fingerprint no longer matches): nothing can be sealed with the old one by mistake.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from islandhub.errors import ConfigError, RunFailed
from islandhub.privacy import crypto
from islandhub.privacy.crypto import Keyring
from islandhub.residents import Reader, audit
from islandhub.store import sealing
from islandhub.store.db import Store, compact, now
from islandhub.store.tables import leases

NEW_KEY_ENV = "ISLANDHUB_NATIONAL_ID_KEY_NEW"
_ROTATION_LOCK = 7_530_002  # PostgreSQL advisory lock: one rotation at a time


@dataclass(frozen=True)
class Rotation:
    """What a rotation did: rows rewritten per table, and the two fingerprints."""

    rows: dict[str, int]
    before: str
    after: str
    key_file: str | None  # the development key file rewritten, or None (set the secret)


def new_keyring() -> Keyring:
    """The key to rotate to, from ISLANDHUB_NATIONAL_ID_KEY_NEW."""
    text = os.environ.get(NEW_KEY_ENV)
    if not text:
        raise ConfigError(
            f"set {NEW_KEY_ENV} to the new key (make one with `islandhub privacy new-key`); "
            f"the current key stays where it is ({crypto.KEY_ENV} or the development key file)"
        )
    return Keyring.from_text(text, f"the secret {NEW_KEY_ENV}")


def rotate_key(store: Store, reader: Reader, after: Keyring) -> Rotation:
    """Seal the whole store again with `after`; it must be sealed with the current key."""
    before = crypto.current()
    if after.fingerprint() == before.fingerprint():
        raise ConfigError(f"{NEW_KEY_ENV} is the key the store is sealed with already")
    where = store.engine.url.render_as_string(hide_password=True)
    with store.begin() as conn:
        if store.dialect == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ROTATION_LOCK})
        busy = conn.execute(
            sa.select(leases.c.system, leases.c.stream).where(leases.c.expires_at > now())
        ).first()
        if busy is not None:
            raise RunFailed(
                f"{busy.system}.{busy.stream} is running: stop the schedules and wait for "
                "running syncs to finish, then rotate (nothing was changed)"
            )
        rows = sealing.rotate(conn, before, after, where)
        detail = {"before": before.fingerprint(), "after": after.fingerprint(), "rows": rows}
        audit(conn, reader, "key-rotation", None, detail)
    compact(store.engine)  # values sealed with the old key must not linger in freed pages
    key_file = _rewrite_key_file()
    crypto.forget_keys()
    return Rotation(rows, before.fingerprint(), after.fingerprint(), key_file)


def _rewrite_key_file() -> str | None:
    """Without the secret the development key file holds the key: it gets the new one."""
    if os.environ.get(crypto.KEY_ENV):
        return None
    path = crypto.key_file()
    text = os.environ[NEW_KEY_ENV].strip()
    spare = path.with_suffix(".new")
    fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")
    Path(spare).replace(path)
    return str(path)
