"""SQLite: WAL checkpoints in a thread of their own while a sync writes (docs/store.md).

In WAL mode a committing connection checkpoints by itself once the WAL holds
`wal_autocheckpoint` pages (1000 by default): it copies the WAL's pages into the database
file and syncs it inside `commit`, and the sync waits. While `background_checkpoints` runs,
a daemon thread with a connection of its own checkpoints instead (Python's sqlite3 releases
the GIL while SQLite works, so the copy overlaps the writer's Python work), and the store's
connections checkpoint by themselves only past a safety net of `SAFETY_NET_PAGES`.

A checkpoint copies committed frames only: what a crash keeps is the same either way.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from islandhub.store.db import Store

log = logging.getLogger(__name__)

# How often the thread looks at the WAL (seconds).
TICK = 0.05
# The thread checkpoints once this many pages wait in the WAL (16 MiB at 4 KiB a page):
# fewer, larger checkpoints (each syncs the database file) than SQLite's 1000.
CHECKPOINT_PAGES = 4096
# The WAL file's limit: past it the thread checkpoints with TRUNCATE when the writer is
# between transactions and no reader is behind (else it tries again at the next tick).
WAL_LIMIT_BYTES = 64 * 1024 * 1024
# The store's connections' own checkpoint while the thread runs (pages, 128 MiB at 4 KiB):
# only if the thread falls far behind (or cannot truncate) does a commit checkpoint again.
SAFETY_NET_PAGES = 32_768
# The last checkpoint, on the way out, waits this long for the write lock (milliseconds).
FINAL_BUSY_MS = 200


@contextmanager
def background_checkpoints(store: Store) -> Iterator[Checkpointer | None]:
    """Checkpoint the store's WAL in a background thread while the block runs.

    A no-op on PostgreSQL and on a SQLite database without a file. On the way out the thread
    is stopped and joined, the connections get their own `wal_autocheckpoint` back, and the
    WAL is checkpointed (truncated when nothing else uses the database).
    """
    path = _database_file(store)
    if path is None:
        yield None
        return
    checkpointer = Checkpointer(path)
    try:
        with store.raised_autocheckpoint(SAFETY_NET_PAGES):
            checkpointer.start()
            try:
                yield checkpointer
            finally:
                checkpointer.stop()
    finally:
        checkpointer.final()


def _database_file(store: Store) -> Path | None:
    if store.dialect != "sqlite":
        return None
    database = store.engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


class Checkpointer:
    """The thread: PASSIVE checkpoints as the WAL fills, TRUNCATE past the limit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.wal = path.with_name(path.name + "-wal")
        self.shm = path.with_name(path.name + "-shm")
        self.checkpoints = 0  # checkpoints that ran (PASSIVE or TRUNCATE), for tests and logs
        self.truncated = 0  # of those, TRUNCATEs that reset the WAL
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name=f"checkpoint {path.name}", daemon=True
        )

    @property
    def alive(self) -> bool:
        """Whether the thread still runs."""
        return self._thread.is_alive()

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it (a checkpoint it is in finishes first)."""
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        conn: sqlite3.Connection | None = None
        seen: tuple[int, int] | None = None
        try:
            while not self._stop.wait(TICK):
                wal = _stat(self.wal)
                if wal is None or wal == seen:
                    continue  # no WAL, or nothing written since the WAL was all copied
                waiting = _waiting_pages(self.shm)
                if wal[0] <= WAL_LIMIT_BYTES and waiting is not None and waiting < CHECKPOINT_PAGES:
                    continue
                try:
                    if conn is None:
                        conn = _connect(self.path, busy_ms=0)
                    if self._checkpoint(conn, wal[0]):
                        seen = _stat(self.wal)
                except sqlite3.Error as exc:
                    # Busy or locked (another process migrating, a checkpoint of the
                    # writer's own): never the sync's concern. The next tick tries again.
                    self.errors += 1
                    log.debug("background checkpoint of %s: %s", self.path, exc)
        finally:
            if conn is not None:
                conn.close()

    def _checkpoint(self, conn: sqlite3.Connection, wal_bytes: int) -> bool:
        """One checkpoint; whether it copied every frame the WAL holds."""
        mode = "TRUNCATE" if wal_bytes > WAL_LIMIT_BYTES else "PASSIVE"
        busy, frames, copied = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        self.checkpoints += 1
        if mode == "TRUNCATE" and not busy:
            self.truncated += 1
        return not busy and frames == copied

    def final(self) -> None:
        """Checkpoint what is left (the thread stopped); truncate the WAL if it can."""
        try:
            conn = _connect(self.path, busy_ms=FINAL_BUSY_MS)
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            log.debug("last checkpoint of %s: %s", self.path, exc)


def _connect(path: Path, *, busy_ms: int) -> sqlite3.Connection:
    # Autocommit (isolation_level=None): the thread never holds a read transaction, which
    # would keep the writer from starting the WAL over.
    conn = sqlite3.connect(path, isolation_level=None, timeout=busy_ms / 1000)
    conn.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
    return conn


def _waiting_pages(shm: Path) -> int | None:
    """Pages in the WAL not yet copied to the database; None when that cannot be read.

    From the wal-index header in the -shm file (https://www.sqlite.org/walformat.html, 2.2):
    `mxFrame` (the WAL's last valid frame) at offset 16 and `nBackfill` (frames copied) at 96,
    native byte order. The header is kept twice; copies that differ are being written.
    """
    try:
        with open(shm, "rb") as file:
            head = file.read(104)
    except OSError:
        return None
    if len(head) < 104 or head[:48] != head[48:96]:
        return None
    version, frames = struct.unpack_from("=I12xI", head)
    if version != _WAL_INDEX_VERSION:
        return None
    (copied,) = struct.unpack_from("=I", head, 96)
    return max(frames - copied, 0)


_WAL_INDEX_VERSION = 3007000


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_size, st.st_mtime_ns
