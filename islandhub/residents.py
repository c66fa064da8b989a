"""Reading golden resident records: find, show, list. Every read is written to the audit log."""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from islandhub.errors import ConfigError
from islandhub.privacy.at_rest import unseal_tree
from islandhub.privacy.masking import mask_hetu, mask_text
from islandhub.resolve.golden import expand_lineage
from islandhub.resolve.keys import NATIONAL_ID, national_id_key
from islandhub.store.bulk import member_of
from islandhub.store.db import Store, as_utc, dumps, now
from islandhub.store.tables import (
    audit_log,
    is_current,
    lineage,
    resident_keys,
    resident_versions,
    residents,
)

MAX_REDIRECTS = 20


@dataclass(frozen=True)
class Reader:
    """Who reads personal data, and why: what the audit log records."""

    actor: str
    purpose: str

    def __post_init__(self) -> None:
        # Both end up in the audit log, which must hold no national id in clear: a purpose
        # typed as "request of 131052-308T" (a CLI flag, the API's X-Purpose) is masked.
        object.__setattr__(self, "purpose", mask_text(self.purpose))
        object.__setattr__(self, "actor", mask_text(self.actor))

    @classmethod
    def from_environment(cls, purpose: str, actor: str | None = None) -> Reader:
        """Who runs the command: `actor` (--actor), else ISLANDHUB_ACTOR, else the OS user."""
        return cls(actor or os.environ.get("ISLANDHUB_ACTOR") or getpass.getuser(), purpose)


def audit(
    conn: Connection, reader: Reader, action: str, resident_id: str | None, detail: dict[str, Any]
) -> None:
    """Record one access to personal data (a national id in the purpose or detail masked)."""
    conn.execute(
        audit_log.insert().values(
            at=now(),
            actor=reader.actor,
            action=action,
            purpose=mask_text(reader.purpose),
            resident_id=resident_id,
            detail=mask_text(dumps(detail)),
        )
    )


def follow_redirects(conn: Connection, resident_id: str) -> str | None:
    """The current id of a resident: merged residents point to the one they became."""
    seen = 0
    current: str | None = resident_id
    while current is not None and seen < MAX_REDIRECTS:
        row = conn.execute(
            sa.select(residents.c.merged_into).where(residents.c.resident_id == current)
        ).one_or_none()
        if row is None:
            return None
        if row.merged_into is None:
            return current
        current, seen = row.merged_into, seen + 1
    return current


def merged_family(conn: Connection, rid: str) -> list[str]:
    """The resident and every resident ever merged into them (their old versions too)."""
    family, frontier = [rid], [rid]
    while frontier:
        found = list(
            conn.execute(
                sa.select(residents.c.resident_id).where(
                    member_of(conn, residents.c.merged_into, frontier)
                )
            ).scalars()
        )
        frontier = [r for r in found if r not in family]
        family.extend(frontier)
    return family


def find_by_national_id(conn: Connection, national_id: str) -> str | None:
    """The resident with this national id, if the hub knows one (by its keyed hash)."""
    key = national_id_key(national_id.strip().upper())
    if key is None:
        raise ConfigError(
            "a permanent national id is needed (temporary ids 900-999 identify nobody)"
        )
    found = conn.execute(
        sa.select(resident_keys.c.resident_id).where(
            resident_keys.c.kind == NATIONAL_ID, resident_keys.c.key == key
        )
    ).scalar_one_or_none()
    return follow_redirects(conn, found) if found else None


def show(
    store: Store,
    reader: Reader,
    *,
    resident_id: str | None = None,
    national_id: str | None = None,
    reveal: bool = False,
) -> dict[str, Any] | None:
    """A resident's current golden record with version and lineage, masked for display.

    `reveal` leaves the national id unmasked; the access is audited as a reveal. Lineage
    names source records as the store keys them (a register's HETU sealed): the CLI and the
    API open sealed values in what they print, then mask them.
    """
    with store.begin() as conn:
        rid = (
            find_by_national_id(conn, national_id)
            if national_id
            else follow_redirects(conn, str(resident_id))
        )
        audit(
            conn,
            reader,
            "reveal" if reveal else "read",
            rid,
            {"by": "national_id" if national_id else "resident_id", "found": rid is not None},
        )
        if rid is None:
            return None
        row = conn.execute(
            sa.select(residents, resident_versions.c.record, lineage.c.fields)
            .select_from(
                residents.join(
                    resident_versions,
                    sa.and_(
                        residents.c.resident_id == resident_versions.c.resident_id,
                        residents.c.version == resident_versions.c.version,
                    ),
                ).join(
                    lineage,
                    sa.and_(
                        lineage.c.resident_id == residents.c.resident_id,
                        lineage.c.version == residents.c.version,
                    ),
                )
            )
            .where(residents.c.resident_id == rid)
        ).one_or_none()
    if row is None:
        return None  # erased on the resident's request: the id remains, the record does not
    record = present(json.loads(row.record), reveal=reveal)
    return {
        "resident_id": rid,
        "requested_id": resident_id if resident_id and resident_id != rid else None,
        "version": row.version,
        "active": row.active,
        "updated_at": as_utc(row.updated_at).isoformat(),
        "record": record,
        "lineage": expand_lineage(json.loads(row.fields)),
    }


def list_residents(
    store: Store, reader: Reader, *, limit: int = 20, offset: int = 0
) -> list[dict[str, Any]]:
    """A page of active residents, oldest first, masked for display."""
    query = (
        sa.select(residents.c.resident_id, residents.c.version, resident_versions.c.record)
        .select_from(
            residents.join(
                resident_versions,
                sa.and_(
                    residents.c.resident_id == resident_versions.c.resident_id,
                    residents.c.version == resident_versions.c.version,
                ),
            )
        )
        .where(is_current())
        .order_by(residents.c.resident_id)
        .limit(limit)
        .offset(offset)
    )
    with store.begin() as conn:
        rows = conn.execute(query).all()
        audit(conn, reader, "list", None, {"count": len(rows), "offset": offset})
    return [
        {
            "resident_id": r.resident_id,
            "version": r.version,
            "record": present(json.loads(r.record)),
        }
        for r in rows
    ]


def present(record: dict[str, Any], *, reveal: bool = False) -> dict[str, Any]:
    """The record as staff may see it: national id masked, addresses hidden under turvakielto.

    The stored record holds national ids sealed (its own, register source ids): opened here,
    then masked unless `reveal`.
    """
    shown = unseal_tree(record)
    if shown.get("national_id") and not reveal:
        shown["national_id"] = mask_hetu(shown["national_id"])
    if shown.get("non_disclosure"):
        # A non-disclosure order (turvakielto): the address must not leave the hub.
        shown.pop("addresses", None)
    return shown
