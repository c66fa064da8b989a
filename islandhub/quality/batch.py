"""The pipeline's quality hook: validate what a run lands, keep the result, hold the gate.

A run checks the records landed since the stream last published: the ones a crash or a
tripped gate left unpublished, and the ones it lands itself. They are validated as pandas
DataFrames in slices of up to SLICE rows (one slice for any ordinary run; a first load of
500,000 records takes ten, so memory stays flat) and the slices' results merged into one
`batch` row of dq_results. Where the extract worker is used, a run that lands at least
IN_PROCESS records validates its slices in a process of its own, beside the writer
(slices.py). When the system has a gate, the pipeline publishes nothing before `finish`,
and `finish` raises GateTripped if the records fall short: the run fails with the reason
and the records wait, landed, for the next run (or a changed gate).

    check = StreamCheck.begin(project, store, result)   # before landing
    check.add(landed.pending)                           # after each landed batch
    check.finish()                                      # before publishing
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from islandhub.config import Project, SystemConfig
from islandhub.errors import RunFailed
from islandhub.extract import worth_a_worker
from islandhub.landing import sequence
from islandhub.quality import results, scores
from islandhub.quality import rows as check_rows
from islandhub.quality.outcome import Validation
from islandhub.quality.slices import Slices
from islandhub.quality.suites import Suite, suite_for
from islandhub.resolve.publish import Pending, pending_records
from islandhub.store.db import Store, now
from islandhub.store.tables import landing

# From this many records a run validates in a process of its own, started then: Great
# Expectations imports there while the writer lands the rest (slices.py). Scheduled syncs
# of a few changed records stay below it and start no process.
IN_PROCESS = 20_000
log = logging.getLogger(__name__)


class GateTripped(RunFailed):
    """A run's records fall short of their system's quality gate; none was published."""


class StreamCheck:
    """The quality check of one run of one stream (see the module docstring)."""

    def __init__(
        self, store: Store, result: Any, system: SystemConfig | None, suite: Suite | None
    ) -> None:
        self.store, self.result, self.system, self.suite = store, result, system, suite
        self.since = 0  # the stream's published_seq when the run began
        # Where a big run would validate apart, the process is forked now, while the writer
        # is small (slices.py); it stays idle, and goes, unless the run proves big.
        self._apart = worth_a_worker()  # big runs validate in a process of their own
        self._slices = Slices(suite, spare=self._apart) if suite else None
        self._added = 0  # records taken so far
        self.seconds = 0.0  # spent validating (or waiting for it), for the log and the benchmark

    @classmethod
    def begin(cls, project: Project, store: Store, result: Any) -> StreamCheck:
        """Start the check of a run (`result`: its StreamResult) before it lands anything."""
        system = project.systems.get(result.system)
        stream = system.streams.get(result.stream) if system else None
        suite = suite_for(project.root, system, stream) if system and stream else None
        check = cls(store, result, system, suite)
        with store.connect() as conn:
            check.since = sequence(conn, result.system, result.stream)[1]
        check._add_unpublished()
        return check

    @property
    def holds(self) -> bool:
        """Whether publishing must wait for `finish`: the system has a gate."""
        return bool(self.system and self.system.quality_settings.gate.active)

    @property
    def fields(self) -> tuple[str, ...] | None:
        """The fields the check validates (None: the stream has no check)."""
        return self.suite.fields if self.suite is not None else None

    def add(self, pending: Sequence[Pending], packed: bytes | None = None) -> None:
        """Take the mapped records of a landed batch (deletions have nothing to check).

        `packed`: the same records' rows as the extract worker packed them (Landed.check_rows);
        the writer then builds nothing and hands the bytes on.
        """
        if self.suite is None:
            return
        present = [p for p in pending if not p.deleted]
        if not present:
            return
        self._added += len(present)
        assert self._slices is not None
        if self._added >= IN_PROCESS and self._apart:
            self._slices.start_process()  # a big run: GX beside the writer, not in it
        begun = time.perf_counter()
        if packed is not None:
            self._slices.add_packed(packed)
        else:
            # National ids are stored sealed: the checks (HETU validity) read them in clear,
            # as the extract worker handed them over, or opened here (read from the store).
            ids, columns = check_rows.of_pending(present, self.suite.fields)
            self._slices.add(columns, ids)
        self.seconds += time.perf_counter() - begun

    def finish(self) -> None:
        """Validate the rest, keep the result, and raise GateTripped if the gate holds."""
        if self.suite is None or self.system is None:
            return
        assert self._slices is not None
        begun = time.perf_counter()
        validation = self._slices.result()
        self.seconds += time.perf_counter() - begun
        quarantined = self._quarantined()
        if validation is None and not quarantined:
            return  # nothing new: no row, nothing to hold
        validation = validation or Validation(self.suite.name, 0, [])
        found = scores.of_validation(validation, self.suite, quarantined)
        reasons = scores.gate_reasons(self.system.quality_settings.gate, found)
        self._keep(validation, found, reasons)
        log.info(
            "%s: %d records checked in %.2f s; gate %s",
            self.suite.name,
            found["records"],
            self.seconds,
            "held" if reasons else "passed",
        )
        if reasons:
            raise GateTripped(self._message(found, reasons))

    # --- internals -----------------------------------------------------------------------

    def _add_unpublished(self) -> None:
        """Records landed before this run but not published: a crash or a held gate."""
        after = self.since
        while self.suite is not None:
            with self.store.connect() as conn:
                chunk = pending_records(conn, self.result.system, self.result.stream, after)
            if not chunk:
                return
            self.add(chunk)
            after = chunk[-1].seq

    def _quarantined(self) -> int:
        """Records of the stream quarantined since it last published."""
        query = (
            sa.select(sa.func.count())
            .select_from(landing)
            .where(
                landing.c.system == self.result.system,
                landing.c.stream == self.result.stream,
                landing.c.seq > self.since,
                landing.c.status == "quarantined",
            )
        )
        with self.store.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def _keep(self, validation: Validation, found: dict[str, Any], reasons: list[str]) -> None:
        assert self.suite is not None
        outcome = {
            "checks": [o.as_dict() for o in validation.outcomes],
            "gate": {"held": bool(reasons), "reasons": reasons},
            "gx": validation.gx,
        }
        with self.store.begin() as conn:
            results.record(
                conn,
                run_id=self.result.run_id,
                system=self.result.system,
                stream=self.result.stream,
                scope="batch",
                suite=self.suite.name,
                at=now(),
                size=found["records"],
                success=validation.success and not reasons,
                scores=found,
                results=outcome,
            )

    def _message(self, found: dict[str, Any], reasons: list[str]) -> str:
        system = self.result.system
        file = f"config/systems/{system}.yaml"
        return (
            f"{system}.{self.result.stream}: the quality gate holds the {found['records']:,} "
            f"records of this run: {'; '.join(reasons)}. Nothing was published: fix the "
            f"records in {system}, or change the gate in {file}, then sync again"
        )
