"""Where a run's slices are validated: in the writer, or in a process of their own.

Great Expectations takes seconds to import and about 1.7 s per 100,000 rows to validate
(benchmarks/quality.py), all of it in the process that writes to the store, which is the
slower half of a sync (benchmarks/ingest.py). A big run (a first load, a full refresh that
changed much: batch.IN_PROCESS records) hands its slices to a validator process instead,
started as soon as the run is known to be big: the writer goes on landing and publishing
while GX imports and validates beside it. Smaller runs (nearly every scheduled sync)
validate in the writer as before, with no process to start.

Either way each slice is validated alone and the results merged in slice order, so both
give the same Validation (tests/quality/test_slices.py). The process is forked, like the
extract worker, and on the same terms (`extract.worth_a_worker`: ISLANDHUB_WORKERS=1 and a
second core): `spawn` would run the calling program's main module again in the child, a
sync and all where that module has no `if __name__ == "__main__"` guard. It takes slices
from its pipe and exits when the writer shuts it down, or dies.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import weakref
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from islandhub.errors import RunFailed
from islandhub.extract import exit_when_orphaned
from islandhub.quality.outcome import Validation
from islandhub.quality.suites import Suite

Columns = dict[str, list[Any]]


class ValidationFailed(RunFailed):
    """Great Expectations failed on a slice in the validator process."""


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
    """The validations of one run's slices, inline until `in_process` starts the process."""

    def __init__(self, suite: Suite) -> None:
        self.suite = suite
        self._done: list[Validation] = []
        self._pending: list[Future[Validation]] = []
        self._executor: ProcessPoolExecutor | None = None

    @property
    def in_process(self) -> bool:
        """Whether slices go to the validator process."""
        return self._executor is not None

    def start_process(self) -> None:
        """Validate every later slice in a process of its own (started now, GX imported)."""
        if self._executor is not None:
            return
        executor = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_begin,
            initargs=(os.getpid(),),
        )
        self._executor = executor
        # A run that fails before `result` leaves no process behind.
        weakref.finalize(self, executor.shutdown, wait=False, cancel_futures=True)

    def add(self, columns: Columns, source_ids: list[str]) -> None:
        """Validate one slice: now, or in the process (the result is taken by `result`)."""
        if self._executor is None:
            self._done.append(validate_slice(columns, self.suite, source_ids))
        else:
            self._pending.append(
                self._executor.submit(validate_slice, columns, self.suite, source_ids)
            )

    def result(self) -> Validation | None:
        """Every slice's validation merged, after waiting for the process (then stopped)."""
        if self._executor is None:
            return merged(self._done)
        try:
            found = [*self._done, *(future.result() for future in self._pending)]
            # Merged where GX is imported already: the writer never imports it.
            return (
                self._executor.submit(merged, found).result() if len(found) > 1 else merged(found)
            )
        except Exception as exc:  # GX raised in the process, or the process died
            raise ValidationFailed(
                f"the quality check of {self.suite.name} failed: {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            self._pending = []
            self.close()

    def close(self) -> None:
        """Stop the process, if one runs (slices not yet taken are dropped)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


def _begin(writer: int) -> None:
    """The process's first acts: watch for its writer's death, and import GX at once."""
    # A forked child holds both ends of its task pipe, so a killed writer never shows as the
    # pipe's end: without the watch, it would wait for a slice for ever (tests/crash).
    threading.Thread(target=exit_when_orphaned, args=(writer,), daemon=True).start()
    import islandhub.quality.gx  # noqa: F401
