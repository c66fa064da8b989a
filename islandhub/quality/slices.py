"""A run's records cut into slices and validated: in the writer, or in a process of its own.

Rows come in a landed batch at a time (`add`); as soon as SLICE rows are gathered they are
validated together, and the slices' validations merged (`result`). The same rule cuts the
same slices wherever it runs, so both places give the same Validation
(tests/quality/test_slices.py).

Great Expectations takes seconds to import and about 0.6 s per 100,000 rows to validate
(benchmarks/quality.py), all of it in the process that writes to the store, which is the
slower half of a sync (benchmarks/ingest.py). A big run (batch.IN_PROCESS records) hands
its rows to a validator process instead, started as soon as the run is known to be big:
the writer goes on landing and publishing while GX imports and validates beside it, and
holds only the batch it is sending (a slice gathered in the writer held about 110 MB).

The process is forked, like the extract worker, and on the same terms
(`extract.worth_a_worker`: ISLANDHUB_WORKERS=1 and a second core): `spawn` would run the
calling program's main module again in the child, a sync and all where that module has no
`if __name__ == "__main__"` guard. It exits when the writer has its result, or dies.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
import weakref
from collections.abc import Sequence
from typing import Any

from islandhub.errors import RunFailed
from islandhub.extract import exit_when_orphaned
from islandhub.quality import rows
from islandhub.quality.outcome import Validation
from islandhub.quality.rows import Columns
from islandhub.quality.suites import Suite

# Rows validated together: bounds memory, and how far apart a repeat is seen. 50,000 (was
# 100,000): a municipality's run fits in one; gathered as Python values 100,000 rows held
# about 90 MB in the validator, which on the ingest benchmark was the largest process.
# Repeats further apart are counted by the review after publishing (cross.duplicates).
SLICE = 50_000
POLL_SECONDS = 1.0
# Batches on their way to the validator: enough to cover its import of GX (seconds, while
# the writer lands on) without the writer waiting; each holds a batch's rows (about 1.5 MB
# packed for 10,000 benchmark rows, several times that as Python values).
INBOX = 8


class ValidationFailed(RunFailed):
    """Great Expectations failed on a slice in the validator process, or the process died."""


class Gathered:
    """The rows of the slice being gathered, and the validations of the slices done."""

    def __init__(self, suite: Suite) -> None:
        self.suite = suite
        self.ids: list[str] = []
        self.columns: Columns = {f: [] for f in suite.fields}
        self.done: list[Validation] = []

    def add(self, columns: Columns, ids: Sequence[str]) -> None:
        """Take one batch's rows; validate the slice once SLICE rows are gathered."""
        self.ids.extend(ids)
        for name, column in self.columns.items():
            column.extend(columns[name])
        if len(self.ids) >= SLICE:
            self.validate()

    def validate(self) -> None:
        """Validate the rows gathered so far as one slice."""
        if self.ids:
            self.done.append(validate_slice(self.columns, self.suite, self.ids))
            self.ids, self.columns = [], {f: [] for f in self.suite.fields}

    def result(self) -> Validation | None:
        """The last slice validated, and every slice's validation merged (None: no rows)."""
        self.validate()
        return merged(self.done)


def validate_slice(columns: Columns, suite: Suite, source_ids: Sequence[str]) -> Validation:
    """One slice (a column per field of the suite, a source id per row) through GX."""
    import pandas as pd

    from islandhub.quality import gx

    return gx.validate(pd.DataFrame(columns, dtype=object), suite, source_ids)


def merged(found: Sequence[Validation]) -> Validation | None:
    """The slices' validations as one (None: no slice)."""
    if len(found) < 2:
        return found[0] if found else None
    from islandhub.quality import gx

    result = found[0]
    for validation in found[1:]:
        result = gx.merge(result, validation)
    return result


class Slices:
    """A run's validation: gathered in the writer until `start_process` moves it out."""

    def __init__(self, suite: Suite, *, spare: bool = False) -> None:
        """With `spare`, fork the validator process now, idle until `start_process`.

        Forked at the start of a run, the child shares the writer's small early heap; forked
        when the run has proved big, it would share (and its RSS would count again) the
        writer's grown one: about 170 MB more on the ingest benchmark.
        """
        self.suite = suite
        self._here = Gathered(suite)
        self._process: Any = None
        self._inbox: Any = None
        self._outbox: Any = None
        self._started = False
        if spare:
            self._fork()

    @property
    def in_process(self) -> bool:
        """Whether rows go to the validator process."""
        return self._started

    def start_process(self) -> None:
        """Validate in a process of its own from now on; what was gathered here goes along."""
        if self._started:
            return
        if self._process is None:
            self._fork()
        self._send(("take", self._here, None))
        self._here = Gathered(self.suite)  # the child has the rows and slices so far
        self._started = True

    def _fork(self) -> None:
        context = multiprocessing.get_context("fork")
        self._inbox, self._outbox = context.Queue(maxsize=INBOX), context.Queue(maxsize=1)
        self._process = context.Process(
            target=_serve, args=(self._inbox, self._outbox, os.getpid()), daemon=True
        )
        self._process.start()
        # A run that fails before `result` leaves no process behind.
        weakref.finalize(self, _stop, self._process)

    def add(self, columns: Columns, ids: Sequence[str]) -> None:
        """One batch's rows: gathered (and sliced) here, or sent to the process."""
        if self._started:
            self._send(("rows", columns, list(ids)))
        else:
            self._here.add(columns, ids)

    def add_packed(self, packed: bytes) -> None:
        """One batch's rows as the extract worker packed them (quality/rows.py)."""
        if self._started:
            self._send(("packed", packed, None))  # the bytes go on as they came
        else:
            ids, columns = rows.unpack(packed)
            self._here.add(columns, ids)

    def result(self) -> Validation | None:
        """Every slice's validation merged; the process, if any, has ended."""
        if not self._started:
            self.close()  # a spare never used
            return self._here.result()
        try:
            self._send(("end", None, None))
            kind, found = self._receive()
        finally:
            self.close()
        if kind == "error":
            raise ValidationFailed(f"the quality check of {self.suite.name} failed: {found}")
        return found

    def close(self) -> None:
        """Stop the process, if one runs."""
        if self._process is None:
            return
        _stop(self._process)
        for channel in (self._inbox, self._outbox):
            channel.close()
            channel.cancel_join_thread()  # rows never taken must not hold the writer
        self._process, self._started = None, False

    def _send(self, message: tuple[str, Any, Any]) -> None:
        while True:
            try:
                self._inbox.put(message, timeout=POLL_SECONDS)
                return
            except queue.Full:
                self._check_alive()

    def _receive(self) -> tuple[str, Any]:
        while True:
            try:
                return self._outbox.get(timeout=POLL_SECONDS)
            except queue.Empty:
                self._check_alive()

    def _check_alive(self) -> None:
        if self._process.is_alive():
            return
        try:
            _, why = self._outbox.get(timeout=POLL_SECONDS)  # it failed, and said why
        except queue.Empty:
            why = f"its validator process stopped (exit code {self._process.exitcode})"
        self.close()
        raise ValidationFailed(f"the quality check of {self.suite.name} failed: {why}")


def _stop(process: Any) -> None:
    if process.is_alive():
        process.terminate()
        process.join()


def _serve(inbox: Any, outbox: Any, writer: int) -> None:
    """The validator process: idle until it takes the run's rows, then validates them."""
    # A forked child holds both ends of its pipes, so a killed writer never shows as the
    # pipe's end: without the watch, it would wait for rows for ever (tests/quality).
    threading.Thread(target=exit_when_orphaned, args=(writer,), daemon=True).start()
    gathered: Gathered | None = None
    try:
        while True:
            kind, batch, ids = inbox.get()
            if kind == "take":
                import islandhub.quality.gx  # noqa: F401  (at once: the writer goes on)

                gathered = batch
            elif kind == "rows" and gathered is not None:
                gathered.add(batch, ids)
            elif kind == "packed" and gathered is not None:
                packed_ids, columns = rows.unpack(batch)
                gathered.add(columns, packed_ids)
            else:  # the end: the result, if the run's rows ever came here
                if gathered is not None:
                    outbox.put(("done", gathered.result()))
                break
    except Exception as exc:  # noqa: BLE001  (GX or pandas failed: the writer fails the run)
        outbox.put(("error", f"{type(exc).__name__}: {exc}"))
    outbox.close()
    outbox.join_thread()
