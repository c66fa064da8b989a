"""Run `islandhub sync` as a real process, SIGKILL it part way, and read what the store holds.

A kill point is chosen by watching the store: the stream's `landed_seq` and `published_seq`
(sync_state) grow with every committed batch and every published chunk, so "kill when the
store has landed 37 % of what is left" cuts a run between two commits, whichever step it is
in. An early kill (up to 1.5 s after the start) cuts the start: imports, the
first migration of an empty store, the lease.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import sqlalchemy as sa

from islandhub.privacy.masking import mask_text
from islandhub.store import open_store
from islandhub.store.tables import (
    landing,
    leases,
    lineage,
    links,
    resident_keys,
    resident_versions,
    residents,
    runs,
    source_records,
    sync_state,
    sync_state_history,
)
from tests.helpers import snapshot

# The installed command, as an operator runs it (its module where no entry point is installed).
_ENTRY = Path(sys.executable).with_name("islandhub")
COMMAND = [str(_ENTRY)] if _ENTRY.exists() else [sys.executable, "-m", "islandhub.cli"]
POLL_SECONDS = 0.01
RUN_TIMEOUT = 240
_PORT = re.compile(r"127\.0\.0\.1:\d+")


# ---------------------------------------------------------------- a kill plan


@dataclass(frozen=True)
class Kill:
    """One planned kill: `early` after `value` seconds, else when the store's `landed` or
    `published` progress has grown by `value` (a fraction) of what the phase has left."""

    mode: str  # early | landed | published
    value: float
    workers: bool  # the run reads in an extract worker process (ISLANDHUB_WORKERS=1)

    def __str__(self) -> str:
        worker = " +worker" if self.workers else ""
        if self.mode == "early":
            return f"early@{self.value:.2f}s{worker}"
        return f"{self.mode}@{self.value:.0%}{worker}"


@dataclass(frozen=True)
class Plan:
    """What a trial does: in which phase it kills, and how."""

    seed: str
    phase: str  # initial | incremental
    kills: tuple[Kill, ...]
    final_workers: bool

    @classmethod
    def draw(cls, seed: str) -> Plan:
        """The plan of trial `seed` (the same seed gives the same plan)."""
        rng = random.Random(seed)
        phase = rng.choice(("initial", "incremental"))
        kills = []
        if rng.random() < 0.25:
            kills.append(Kill("early", rng.uniform(0.05, 1.5), rng.random() < 0.5))
        for _ in range(1 + (rng.random() < 0.3)):
            mode = rng.choice(("landed", "published"))
            kills.append(Kill(mode, rng.uniform(0.03, 0.9), rng.random() < 0.5))
        return cls(seed, phase, tuple(kills), rng.random() < 0.5)

    def __str__(self) -> str:
        kills = ", ".join(map(str, self.kills))
        return f"seed {self.seed!r}: kill in the {self.phase} phase at [{kills}]"


# ---------------------------------------------------------------- running the command


@dataclass
class Runner:
    """Starts `islandhub sync --all` on one project and store."""

    root: Path
    store_url: str
    env: dict[str, str]
    logs: Path
    pycache: Path
    count: int = 0

    def start(self, workers: bool) -> tuple[subprocess.Popen[bytes], Path]:
        """The sync, started; and the file its stderr goes to."""
        self.count += 1
        log = self.logs / f"sync-{self.count}.err"  # .err: the leak guard reads it
        env = {
            **os.environ,
            **self.env,
            "ISLANDHUB_STORE_URL": self.store_url,
            "ISLANDHUB_PROJECT": str(self.root),
            "ISLANDHUB_WORKERS": "1" if workers else "0",
            # Bytecode cached outside the source tree: without it every run compiles the
            # hub and its libraries again (about 1.3 s of each run here).
            "PYTHONPYCACHEPREFIX": str(self.pycache),
        }
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        with log.open("wb") as err:
            process = subprocess.Popen(
                [*COMMAND, "sync", "--all"], env=env, stdout=subprocess.DEVNULL, stderr=err
            )
        return process, log

    def complete(self, workers: bool) -> str:
        """Run the sync to the end; its stderr. Fails the test unless it exits 0."""
        process, log = self.start(workers)
        try:
            code = process.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            _kill(process)
            raise AssertionError(f"the sync did not finish in {RUN_TIMEOUT} s") from None
        stderr = mask_text(log.read_text(errors="replace"))
        assert code == 0, f"the re-run failed with exit code {code}:\n{stderr[-3000:]}"
        return stderr


@dataclass
class Outcome:
    """What happened to one planned kill."""

    kill: Kill
    killed: bool
    at: tuple[int, int] = (0, 0)  # (landed, published) progress of the phase when killed
    seconds: float = 0.0

    def __str__(self) -> str:
        if not self.killed:
            return f"{self.kill}: the run ended first"
        return (
            f"{self.kill}: killed after {self.seconds:.2f} s at landed +{self.at[0]}, "
            f"published +{self.at[1]}"
        )


def kill_part_way(runner: Runner, kill: Kill, start: tuple[int, int], total: int) -> Outcome:
    """Start a sync and SIGKILL it at the planned point; `start` is the phase's progress
    before it began and `total` how much landing the phase has to do in all."""
    watcher = Progress(runner.store_url)
    try:
        before = watcher.read()
        left = max(total - (before[0] - start[0]), 1)
        index = 0 if kill.mode == "landed" else 1
        threshold = before[index] + max(1, round(kill.value * left))
        process, log = runner.start(kill.workers)
        begun = time.monotonic()
        while process.poll() is None and time.monotonic() - begun < RUN_TIMEOUT:
            elapsed = time.monotonic() - begun
            now = before if kill.mode == "early" else watcher.read()
            due = elapsed >= kill.value if kill.mode == "early" else now[index] >= threshold
            if due:
                _kill(process)
                after = watcher.read()
                progress = (after[0] - start[0], after[1] - start[1])
                return Outcome(kill, True, progress, elapsed)
            time.sleep(POLL_SECONDS)
        if process.poll() is None:
            _kill(process)
            raise AssertionError(f"the sync to be killed at {kill} hung for {RUN_TIMEOUT} s")
        if process.returncode != 0:  # it ended before the kill: then it must have succeeded
            stderr = mask_text(log.read_text(errors="replace"))
            raise AssertionError(
                f"the sync failed, exit code {process.returncode}:\n{stderr[-3000:]}"
            )
        return Outcome(kill, False)
    finally:
        watcher.close()


def _kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the sync; its extract worker, if any, must notice and exit by itself."""
    try:
        helpers = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        helpers = []
    process.send_signal(signal.SIGKILL)
    process.wait()
    _, alive = psutil.wait_procs(helpers, timeout=15)
    left = [f"{p.pid} {p.status()}" for p in alive]
    for orphan in alive:
        orphan.kill()
    assert left == [], f"processes left behind by the killed sync (15 s later): {left}"


class Progress:
    """Reads (landed, published) of every stream, summed, while a sync writes."""

    def __init__(self, store_url: str) -> None:
        self.url = store_url
        self.engine = sa.create_engine(store_url, pool_size=1)

    def read(self) -> tuple[int, int]:
        """The sums; (0, 0) before the store exists."""
        database = sa.engine.make_url(self.url).database
        if self.url.startswith("sqlite") and not (database and Path(database).exists()):
            return 0, 0  # not created yet: connecting would create it
        query = sa.select(
            sa.func.coalesce(sa.func.sum(sync_state.c.landed_seq), 0),
            sa.func.coalesce(sa.func.sum(sync_state.c.published_seq), 0),
        )
        try:
            with self.engine.connect() as conn:
                landed, published = conn.execute(query).one()
        except sa.exc.SQLAlchemyError:
            return 0, 0  # the tables are not migrated yet
        return int(landed), int(published)

    def close(self) -> None:
        """Close the connections."""
        self.engine.dispose()


# ---------------------------------------------------------------- what the store holds


@dataclass
class Facts:
    """Everything a run leaves in a store that must not depend on where it was killed."""

    snapshot: dict[str, Any]
    lineage: dict[frozenset[tuple[str, str, str]], dict[str, Any]]
    sums: dict[tuple[str, str], Counter[str]]
    resident_keys: int
    problems: list[str] = field(default_factory=list)  # broken invariants of the store


def collect(store_url: str) -> Facts:
    """Read a store whose last sync finished."""
    store = open_store(store_url)
    try:
        shot = snapshot(store)
        shot["sync_state"] = {
            key: json.loads(_PORT.sub("127.0.0.1:PORT", json.dumps(value, sort_keys=True)))
            for key, value in shot["sync_state"].items()
        }
        with store.connect() as conn:
            facts = Facts(shot, _lineage(conn), _sums(conn), _count(conn, resident_keys))
            facts.problems = _invariants(conn)
        return facts
    finally:
        store.dispose()


def _count(conn: sa.Connection, table: sa.Table) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _lineage(conn: sa.Connection) -> dict[frozenset[tuple[str, str, str]], dict[str, Any]]:
    """The current lineage of every active resident, keyed by its source records.

    Run ids and times of observation differ from run to run; which record gave each field,
    by which rule, must not.
    """
    groups: dict[str, set[tuple[str, str, str]]] = {}
    for link in conn.execute(
        sa.select(links.c.resident_id, links.c.system, links.c.stream, links.c.source_id)
    ):
        groups.setdefault(link.resident_id, set()).add((link.system, link.stream, link.source_id))
    current = (
        sa.select(residents.c.resident_id, lineage.c.fields)
        .join(
            lineage,
            sa.and_(
                lineage.c.resident_id == residents.c.resident_id,
                lineage.c.version == residents.c.version,
            ),
        )
        .where(residents.c.active.is_(True))
    )
    found = {}
    for r in conn.execute(current):
        document = json.loads(r.fields)
        sources = [tuple(s[:3]) for s in document.get("sources", [])]
        found[frozenset(groups.get(r.resident_id, set()))] = {
            name: (sources[index] if isinstance(index, int) else index, rule)
            for name, (index, rule) in document.get("fields", {}).items()
        }
    return found


def _sums(conn: sa.Connection) -> dict[tuple[str, str], Counter[str]]:
    """Per stream, the counters of all its sync runs added up.

    Every landed change is counted once, by the run that committed it, in the same
    transaction; a record mapped or published twice would show here.
    """
    sums: dict[tuple[str, str], Counter[str]] = {}
    for r in conn.execute(sa.select(runs).where(runs.c.kind == "sync")):
        total = sums.setdefault((r.system, r.stream), Counter())
        for name in ("mapped", "quarantined", "published", "deleted"):
            total[name] += getattr(r, name)
    return sums


def _invariants(conn: sa.Connection) -> list[str]:
    """What must hold in any store after a finished sync, killed or not before."""
    problems = []
    for r in conn.execute(sa.select(runs)):
        if r.status not in ("succeeded", "interrupted"):
            problems.append(f"run {r.run_id} of {r.system}.{r.stream} is {r.status}")
        if r.pulled != r.unchanged + r.mapped + r.quarantined:
            problems.append(
                f"run {r.run_id} ({r.status}) of {r.system}.{r.stream}: pulled {r.pulled} != "
                f"unchanged {r.unchanged} + mapped {r.mapped} + quarantined {r.quarantined}"
            )
    if held := conn.execute(sa.select(leases)).all():
        problems.append(f"leases still held after the last run: {[tuple(h) for h in held]}")
    for s in conn.execute(sa.select(sync_state)):
        seqs = (
            conn.execute(
                sa.select(landing.c.seq).where(
                    landing.c.system == s.system, landing.c.stream == s.stream
                )
            )
            .scalars()
            .all()
        )
        where = f"{s.system}.{s.stream}"
        if s.published_seq != s.landed_seq:
            problems.append(f"{where}: published_seq {s.published_seq} != landed {s.landed_seq}")
        if seqs and max(seqs) != s.landed_seq:
            problems.append(f"{where}: landed_seq {s.landed_seq} but highest seq {max(seqs)}")
        if len(set(seqs)) != len(seqs):
            problems.append(f"{where}: {len(seqs) - len(set(seqs))} landing seqs used twice")
        last = conn.execute(
            sa.select(sync_state_history.c.state)
            .where(
                sync_state_history.c.system == s.system,
                sync_state_history.c.stream == s.stream,
            )
            .order_by(sync_state_history.c.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        if last != s.state:
            problems.append(f"{where}: the state history's last state is not the state")
    problems += _link_problems(conn)
    return problems


def _link_problems(conn: sa.Connection) -> list[str]:
    problems = []
    keyed = (links.c.system, links.c.stream, links.c.source_id)
    linked = Counter(tuple(r) for r in conn.execute(sa.select(*keyed)))
    mapped = {
        tuple(r)
        for r in conn.execute(
            sa.select(source_records.c.system, source_records.c.stream, source_records.c.source_id)
        )
    }
    if unlinked := mapped - set(linked):
        problems.append(f"{len(unlinked)} mapped source records without a resident")
    if stray := set(linked) - mapped:
        problems.append(f"{len(stray)} links to no mapped source record")
    holders = {r.resident_id for r in conn.execute(sa.select(links.c.resident_id))}
    for r in conn.execute(sa.select(residents.c.resident_id, residents.c.active)):
        if r.active and r.resident_id not in holders:
            problems.append(f"resident {r.resident_id} is active without source records")
        if not r.active and r.resident_id in holders:
            problems.append(f"resident {r.resident_id} is retired but has source records")
    versions = conn.execute(
        sa.select(residents.c.resident_id)
        .outerjoin(
            resident_versions,
            sa.and_(
                resident_versions.c.resident_id == residents.c.resident_id,
                resident_versions.c.version == residents.c.version,
            ),
        )
        .where(resident_versions.c.record.is_(None))
    ).all()
    if versions:
        problems.append(f"{len(versions)} residents without their current version")
    return problems


# ---------------------------------------------------------------- comparing two stores


def differences(
    actual: Facts, expected: Facts, *, state: bool = True, golden: bool = True, limit: int = 12
) -> list[str]:
    """How `actual` differs from `expected`, national ids masked; empty when equal.

    `state=False` leaves out the streams' sync state. `golden=False` leaves out golden
    records and lineage: for runs with other batch sizes, where records observed in one
    batch tie in time and a tie may pick another primary.
    """
    found: list[str] = []
    a, e = actual.snapshot, expected.snapshot
    for name in ("landing", "source_records", "quarantine", "sync_state"):
        if state or name != "sync_state":
            found += _keyed(name, a[name], e[name], limit)
    clusters_a = {frozenset(map(tuple, c)) for c in a["clusters"]}
    clusters_e = {frozenset(map(tuple, c)) for c in e["clusters"]}
    for extra in list(clusters_a - clusters_e)[:limit]:
        found.append(f"clusters: a resident of {_records(extra)} is not in the reference")
    for lost in list(clusters_e - clusters_a)[:limit]:
        found.append(f"clusters: the reference's resident of {_records(lost)} is missing")
    for group in sorted(set(a["golden"]) & set(e["golden"]), key=sorted) if golden else []:
        if a["golden"][group] != e["golden"][group]:
            fields = _changed_fields(a["golden"][group], e["golden"][group])
            found.append(f"golden record of {_records(group)} differs in {fields}")
        if actual.lineage.get(group) != expected.lineage.get(group):
            fields = _changed_fields(actual.lineage.get(group), expected.lineage.get(group))
            found.append(f"lineage of {_records(group)} differs in {fields}")
    if a["residents"] != e["residents"]:
        found.append(f"residents: {a['residents']} rows, the reference {e['residents']}")
    if actual.resident_keys != expected.resident_keys:
        found.append(
            f"resident_keys: {actual.resident_keys} rows, the reference {expected.resident_keys}"
        )
    if actual.sums != expected.sums:
        found.append(
            f"counters of all runs, added up: {_plain(actual.sums)}, "
            f"the reference {_plain(expected.sums)}"
        )
    return [mask_text(line) for line in found[: limit * 4]]


def _keyed(name: str, actual: dict[Any, Any], expected: dict[Any, Any], limit: int) -> list[str]:
    lines = []
    extra = sorted(set(actual) - set(expected))
    lost = sorted(set(expected) - set(actual))
    changed = sorted(k for k in set(actual) & set(expected) if actual[k] != expected[k])
    if extra:
        lines.append(f"{name}: {len(extra)} rows not in the reference, e.g. {extra[:3]}")
    if lost:
        lines.append(f"{name}: {len(lost)} rows of the reference missing, e.g. {lost[:3]}")
    for key in changed[:limit]:
        what = _changed_fields(actual[key], expected[key])
        lines.append(f"{name}: {key} differs in {what}")
    return lines


def _changed_fields(actual: Any, expected: Any) -> str:
    """Names of the differing fields (never their values: they may hold national ids)."""
    if isinstance(actual, dict) and isinstance(expected, dict):
        names = sorted(k for k in set(actual) | set(expected) if actual.get(k) != expected.get(k))
        return ", ".join(map(str, names))
    if isinstance(actual, tuple | list) and isinstance(expected, tuple | list):
        if len(actual) != len(expected):
            return "its length"
        pairs = enumerate(zip(actual, expected, strict=True))
        return ", ".join(f"item {i}" for i, (x, y) in pairs if x != y)
    return "its value"


def _records(group: frozenset[tuple[str, ...]]) -> str:
    return ", ".join(":".join(r) for r in sorted(group)) or "no records"


def _plain(sums: dict[tuple[str, str], Counter[str]]) -> dict[str, dict[str, int]]:
    return {".".join(k): dict(v) for k, v in sorted(sums.items())}
