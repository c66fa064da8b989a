"""One run at a time per stream: a lease in the store, renewed with every batch.

Two runs of one stream must never interleave (two schedulers, a CLI run beside Airflow).
The lease names its holder (host:pid) and expires unless renewed; a run may take it over
when it has expired, or at once when its holder is a process of this host that no longer
exists (a run killed part way). Taking a lease over marks the dead holder's run as
`interrupted`, so `islandhub status` does not show it running forever.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from islandhub.errors import RunFailed
from islandhub.store.db import Store, as_utc, now
from islandhub.store.tables import leases, runs

LEASE_TIME = timedelta(minutes=10)


class StreamBusy(RunFailed):
    """Another run of the same stream holds the lease."""


@dataclass(frozen=True)
class Lease:
    """A held lease: the stream and the run holding it."""

    system: str
    stream: str
    run_id: str
    holder: str


def this_process() -> str:
    """The holder name of this process: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _gone(holder: str) -> bool:
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another host: only expiry tells
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def acquire(store: Store, system: str, stream: str, run_id: str) -> Lease:
    """Take the stream's lease for `run_id`, or raise StreamBusy naming who holds it."""
    holder = this_process()
    with store.begin() as conn:
        row = conn.execute(
            sa.select(leases)
            .where(leases.c.system == system, leases.c.stream == stream)
            .with_for_update()
        ).one_or_none()
        stamp = now()
        if row is not None:
            if as_utc(row.expires_at) > stamp and not _gone(row.holder):
                raise StreamBusy(
                    f"{system}.{stream} is being synced by run {row.run_id} ({row.holder}); "
                    "this run stops without changing anything. Try again when it has finished."
                )
            _interrupt(conn, row.run_id)
            conn.execute(
                leases.delete().where(leases.c.system == system, leases.c.stream == stream)
            )
        try:
            conn.execute(
                leases.insert().values(
                    system=system,
                    stream=stream,
                    run_id=run_id,
                    holder=holder,
                    expires_at=stamp + LEASE_TIME,
                )
            )
        except IntegrityError as exc:  # another run inserted it between our read and write
            raise StreamBusy(
                f"{system}.{stream} is being synced by another run; this run stops"
            ) from exc
    return Lease(system, stream, run_id, holder)


def renew(conn: Connection, lease: Lease) -> None:
    """Extend the lease, inside the batch's transaction; fail if another run took it over."""
    updated = conn.execute(
        leases.update()
        .where(
            leases.c.system == lease.system,
            leases.c.stream == lease.stream,
            leases.c.run_id == lease.run_id,
        )
        .values(expires_at=now() + LEASE_TIME)
    ).rowcount
    if updated != 1:
        raise StreamBusy(
            f"{lease.system}.{lease.stream}: the lease of run {lease.run_id} was taken over"
        )


def release(store: Store, lease: Lease) -> None:
    """Give the lease back at the end of the run."""
    with store.begin() as conn:
        conn.execute(
            leases.delete().where(
                leases.c.system == lease.system,
                leases.c.stream == lease.stream,
                leases.c.run_id == lease.run_id,
            )
        )


def _interrupt(conn: Connection, run_id: str) -> None:
    conn.execute(
        runs.update()
        .where(runs.c.run_id == run_id, runs.c.status == "running")
        .values(status="interrupted", finished_at=now(), error="the run stopped without finishing")
    )
