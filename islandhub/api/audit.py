"""Group commit of the API's audit rows: many reads' rows in one durable commit.

A read used to commit its own audit row, a commit per request: on PostgreSQL a WAL flush each
(about 4 ms, most of a read), on SQLite the write lock taken by every reader in turn, with
SQLite's busy handler sleeping 1, 2, 5 ... 100 ms whenever two threads met on it. Here a
request hands its row to the process's one writer thread and waits; the writer takes every
row waiting, inserts them in one transaction and commits, then wakes their requests. While
it commits, the next batch gathers: the busier the server, the more rows a commit carries
(no timer: an idle server's read is a batch of one and answers at once).

The rule of law 906/2019 the design keeps: **no response is sent before its audit row is
committed.** `write()` returns only after the commit that holds the row; if the commit fails
the request fails (503) and nothing is disclosed. A server killed at any moment can only
lose rows of requests that never got an answer. On SQLite the writer's own connection
commits with `synchronous=FULL` (the WAL synced at each commit), so a sent response's row
survives a power cut too, not only a crash of the process; PostgreSQL's commit is durable as
the server is configured (synchronous_commit on by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from typing import Any

import sqlalchemy as sa

from islandhub.errors import StoreError
from islandhub.store.db import Store
from islandhub.store.tables import audit_log

log = logging.getLogger(__name__)

MAX_BATCH = 2000  # rows in one commit at most; a bound, not a target
COLUMNS = ("at", "actor", "action", "purpose", "resident_id", "detail")
_STOP = object()


class AuditWriter:
    """The one thread of a process that commits audit rows, in batches."""

    def __init__(self, store: Store, *, max_batch: int = MAX_BATCH) -> None:
        self.store = store
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._conn: Any = None  # the writer thread's driver connection
        self._sqlite = store.dialect == "sqlite"
        self._insert = _Insert(store.engine.dialect)
        self.commits = 0  # batches committed, and the rows in them (for tests and tuning)
        self.rows = 0

    async def write(self, row: dict[str, Any]) -> None:
        """Return once `row` is committed; StoreError (the request fails) if it could not be."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._submit(row, (loop, future))
        await future

    def write_sync(self, row: dict[str, Any]) -> None:
        """`write` for a caller in a thread of its own (blocks until committed)."""
        done = threading.Event()
        failure: list[BaseException] = []

        def settle(error: BaseException | None) -> None:
            if error is not None:
                failure.append(error)
            done.set()

        self._submit(row, settle)
        done.wait()
        if failure:
            raise failure[0]

    def close(self, timeout: float = 30.0) -> None:
        """Commit what is queued, then stop the thread (a new write starts it again)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout)

    # --- the writer thread ---------------------------------------------------------------

    def _submit(self, row: dict[str, Any], waiter: Any) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    # A daemon: at exit only rows whose requests were never answered can be
                    # left; close() (the app's shutdown) commits them first.
                    self._thread = threading.Thread(
                        target=self._run, name="islandhub-audit-writer", daemon=True
                    )
                    self._thread.start()
        self._queue.put((row, waiter))

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch = [self._queue.get()]
            if batch[0] is _STOP:
                break
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            error = self._commit([row for row, _ in batch])
            _settle([waiter for _, waiter in batch], error)
        self._release()

    def _commit(self, rows: list[dict[str, Any]]) -> BaseException | None:
        try:
            connection = self._connection()
            cursor = connection.cursor()
            try:
                if self._sqlite:
                    cursor.execute("BEGIN IMMEDIATE")  # the write lock first (Store.begin's way)
                cursor.executemany(self._insert.sql, self._insert.parameters(rows))
            finally:
                cursor.close()
            connection.commit()
        except Exception as exc:  # noqa: BLE001 - every waiting request is told, none answers
            log.error("audit rows could not be committed (%d requests fail): %s", len(rows), exc)
            self._release(broken=True)
            return StoreError(f"the audit log could not be written: {type(exc).__name__}")
        self.commits += 1
        self.rows += len(rows)
        return None

    def _connection(self) -> Any:
        # The writer's own driver connection (from the store's pool), kept between batches;
        # after a failure, a new one.
        if self._conn is None:
            connection = self.store.engine.raw_connection()
            if self._sqlite:
                # The WAL synced at every commit: this connection's own setting, the readers'
                # connections keep theirs. (Autocommit: the store's connect hook.)
                _pragma(connection, "synchronous=FULL")
            self._conn = connection
        return self._conn

    def _release(self, *, broken: bool = False) -> None:
        connection, self._conn = self._conn, None
        if connection is None:
            return
        if broken:
            connection.invalidate()  # not back into the pool: a new connection next time
        else:
            if self._sqlite:
                _pragma(connection, "synchronous=NORMAL")  # the store's setting, back in the pool
            connection.close()


def _pragma(connection: Any, setting: str) -> None:
    cursor = connection.cursor()
    try:
        cursor.execute(f"PRAGMA {setting}")
    finally:
        cursor.close()


class _Insert:
    """The audit row's INSERT, compiled once for the dialect.

    With SQLAlchemy's bind processors: SQLite keeps timestamps as SQLAlchemy writes and reads
    them.
    """

    def __init__(self, dialect: sa.Dialect) -> None:
        compiled = audit_log.insert().compile(
            dialect=dialect, column_keys=list(COLUMNS), for_executemany=True
        )
        self.sql = compiled.string
        self.positional = dialect.positional
        self.processors = [
            audit_log.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in COLUMNS
        ]

    def parameters(self, rows: list[dict[str, Any]]) -> list[Any]:
        """The rows as the driver's executemany takes them."""
        converted = []
        for row in rows:
            values = [row[name] for name in COLUMNS]
            converted.append(
                [v if p is None else p(v) for p, v in zip(self.processors, values, strict=True)]
            )
        if self.positional:
            return converted
        return [dict(zip(COLUMNS, values, strict=True)) for values in converted]


def _settle(waiters: list[Any], error: BaseException | None) -> None:
    """Wake the batch's requests: one call into each event loop, whatever the batch's size."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for waiter in waiters:
        if isinstance(waiter, tuple):
            loop, future = waiter
            by_loop.setdefault(loop, []).append(future)
        else:
            waiter(error)
    for loop, futures in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits there any more
            loop.call_soon_threadsafe(_resolve, futures, error)


def _resolve(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for future in futures:
        if future.done():
            continue  # the request was cancelled (its client left); the row is kept anyway
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(StoreError(str(error)))  # one each: tracebacks are per raise
