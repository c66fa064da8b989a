"""Extract: pull batches from the island and prepare them, in a worker process beside the writer.

Reading and mapping records (CSV parsing, JSON, validation) and writing them to the store
(SQLite or PostgreSQL) each take about half of a sync's CPU. On a machine with two or more
cores the worker pulls and prepares batch k+1 while the main process writes batch k (about
15 % faster on the ingest benchmark; more where an island's answers are slow). Opt-in with
ISLANDHUB_WORKERS=1, see `worth_a_worker`. The worker never touches the store: state is
committed by the writer only, so a crash of either process loses nothing. A bounded queue
keeps memory flat.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from connectors.base import Batch, Connector
from islandhub.errors import FatalSourceError, HubError, SourceError
from islandhub.gcpause import cyclic_gc_paused
from islandhub.landing import Prepared, prepare
from islandhub.mapping import Mapping

QUEUE_DEPTH = 2  # batches prepared ahead of the writer
POLL_SECONDS = 1.0


def prepared_batches(
    connector: Connector,
    stream: str,
    state: dict[str, Any] | None,
    mapping: Mapping,
    *,
    parallel: bool,
    check_fields: Sequence[str] | None = None,
    origin: tuple[str, str] | None = None,
) -> Iterator[Prepared]:
    """Prepared batches of one pull, from a worker process when `parallel`.

    The worker also does ahead what the writer would (landing.prepare): packs the quality
    check's rows of `check_fields` (quality/rows.py) and, with `origin` (system, stream),
    the texts of the residents its records would found (golden.founding). Without a worker
    the writer does both itself, as it lands and publishes.
    """
    if not parallel:
        for batch in connector.pull(stream, state):
            yield prepare(batch, mapping)
        return
    yield from _from_worker(connector, stream, state, mapping, (check_fields, origin))


def worth_a_worker() -> bool:
    """Use a worker only when asked (ISLANDHUB_WORKERS=1) and a second core is there.

    Opt-in because the worker is forked: a process that runs other threads when it forks
    (demo islands served in-process, an Airflow task runner) can leave a lock held in the
    child, which then hangs or crashes (seen in a test run). A plain CLI sync is safe.
    """
    if os.environ.get("ISLANDHUB_WORKERS", "0") != "1":
        return False
    return (os.cpu_count() or 1) > 1 and "fork" in multiprocessing.get_all_start_methods()


def _from_worker(
    connector: Connector,
    stream: str,
    state: dict[str, Any] | None,
    mapping: Mapping,
    ahead: tuple[Sequence[str] | None, tuple[str, str] | None],
) -> Iterator[Prepared]:
    context = multiprocessing.get_context("fork")
    channel: Any = context.Queue(maxsize=QUEUE_DEPTH)
    worker = context.Process(
        target=_work,
        args=(connector, stream, state, mapping, channel, ahead),
        daemon=True,
    )
    worker.start()
    try:
        while True:
            kind, payload = _receive(channel, worker)
            if kind == "batch":
                yield payload
                payload = None  # the writer is done with it: not held while the next arrives
            elif kind == "error":
                raise payload
            else:
                return
    finally:
        if worker.is_alive():
            worker.terminate()
        worker.join()
        channel.close()


def _receive(channel: Any, worker: Any) -> tuple[str, Any]:
    while True:
        try:
            # Unpickling a batch makes several objects per record and no cycles; with the
            # collector on, it rescanned the writer's large heap several times per batch
            # (most of the time a benchmark batch took to unpickle, in a small process).
            with cyclic_gc_paused():
                return channel.get(timeout=POLL_SECONDS)
        except queue.Empty:
            if not worker.is_alive():
                raise FatalSourceError(
                    f"the extract worker stopped (exit code {worker.exitcode})"
                ) from None


def _work(
    connector: Connector,
    stream: str,
    state: dict[str, Any] | None,
    mapping: Mapping,
    channel: Any,
    ahead: tuple[Sequence[str] | None, tuple[str, str] | None] = (None, None),
) -> None:
    """The worker's whole life: pull, prepare, hand over; errors travel as messages."""
    # What the writer had built when it forked (SQLAlchemy, pandas, the project) is never
    # garbage here: frozen, the collector stops rescanning it as records are made (about a
    # tenth of the worker's time on the ingest benchmark) and stops touching, so copying,
    # the pages the worker shares with the writer.
    gc.freeze()
    parent = os.getppid()
    threading.Thread(target=exit_when_orphaned, args=(parent,), daemon=True).start()
    try:
        for batch in _pulled(connector, stream, state):
            _hand_over(channel, ("batch", prepare(batch, mapping, *ahead)), parent)
        _hand_over(channel, ("end", None), parent)
    except SourceError as exc:
        _hand_over(channel, ("error", _portable(exc)), parent)
    except (HubError, OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
        # A connector bug must fail the run with its message, not hang the writer.
        _hand_over(channel, ("error", FatalSourceError(f"{type(exc).__name__}: {exc}")), parent)
    channel.close()
    channel.join_thread()


def _pulled(connector: Connector, stream: str, state: dict[str, Any] | None) -> Iterator[Batch]:
    """The stream's batches, read and prepared with the cyclic collector paused.

    The collector runs once between batches instead, when little is alive. Left on, it ran
    whenever a few hundred containers were made while the connector read (a dict per
    record), promoted each batch's records, and rescanned them in full collections: on the
    ingest benchmark 1,900 collections and 2.1 s of the worker's 30 CPU-seconds; paused, 0.5 s.
    A connector that makes reference cycles (an HTTP client's) still has them collected.
    """
    with cyclic_gc_paused():
        for batch in connector.pull(stream, state):
            gc.collect()
            yield batch


def exit_when_orphaned(parent: int) -> None:
    """Exit the worker as soon as its writer is gone, wherever the worker is waiting.

    Checking only where it puts a message is not enough: once the worker has read the whole
    stream, `join_thread` waits for the queue's feeder thread, and that thread blocks for
    ever writing a message larger than the pipe's buffer (any real batch) that a killed
    writer will never read. An orphan stayed behind after every such kill (tests/crash).
    """
    while os.getppid() == parent:
        time.sleep(POLL_SECONDS)
    os._exit(1)  # the writer died: nothing here may be committed by anyone


def _hand_over(channel: Any, message: tuple[str, Any], parent: int) -> None:
    """Put a message on the queue; give up when the writer is gone (killed with SIGKILL)."""
    while True:
        try:
            channel.put(message, timeout=POLL_SECONDS)
            return
        except queue.Full:
            if os.getppid() != parent:
                os._exit(1)  # the writer died: nothing here may be committed by anyone


def _portable(exc: SourceError) -> SourceError:
    try:
        pickle.loads(pickle.dumps(exc))
    except (pickle.PicklingError, TypeError, AttributeError):
        return FatalSourceError(str(exc))
    return exc
