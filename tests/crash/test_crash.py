"""Crash trials: `islandhub sync` killed with SIGKILL at random points, then run again.

For every connector kind (files, rest, sql, msgraph) and both store backends, a trial builds
the kind's project (tests/crash/islands.py), syncs it in two phases (the islands as built,
then after edits: changes, deletes, new records), and in one of the phases starts the real
`islandhub` command and kills it once or more part way: at a random share of the landing or
publishing still to do, sometimes also a fraction of a second after the start. Then the
command runs to the end. The store must then equal an uninterrupted run's over the same
data: no record lost or doubled (landing, source records, quarantine, the counters of all
runs added up), the same residents with the same golden records and lineage, and every
invariant of a finished store; after one more sync in both, the same sync state too.

ISLANDHUB_CRASH_TRIALS sets the trials per kind and backend (3: 24 in all; `make soak`:
25, 200 in all). ISLANDHUB_CRASH_SEED changes the seeds. A failure names its seed and how to
replay it (docs/testing.md).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.crash.conftest import Reference, sync_in_process
from tests.crash.harness import (
    Facts,
    Kill,
    Outcome,
    Plan,
    Progress,
    Runner,
    collect,
    differences,
    kill_part_way,
)
from tests.crash.islands import (
    KINDS,
    SYSTEM_OF,
    World,
    changed_keys,
    deleted_keys,
    world,
)

TRIALS = int(os.environ.get("ISLANDHUB_CRASH_TRIALS", "3"))
BASE_SEED = os.environ.get("ISLANDHUB_CRASH_SEED", "753")


def _crash_phase(runner: Runner, plan: Plan, to_land: int, outcomes: list[Outcome]) -> None:
    """Kill the sync as planned (what happened goes to `outcomes`), then run it to the end."""
    watcher = Progress(runner.store_url)
    try:
        start = watcher.read()
    finally:
        watcher.close()
    for kill in plan.kills:
        outcomes.append(kill_part_way(runner, kill, start, to_land))
    runner.complete(plan.final_workers)


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(TRIALS), ids=lambda i: f"trial{i}")
@pytest.mark.parametrize("kind", KINDS)
def test_a_killed_sync_run_again_ends_as_an_uninterrupted_one(
    kind: str,
    trial: int,
    store_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    reference_for: Callable[[str, str | None], Reference],
    pycache: Path,
) -> None:
    backend = "sqlite" if store_url.startswith("sqlite") else "postgresql"
    plan = Plan.draw(f"{BASE_SEED}:{kind}:{backend}:{trial}")
    # The sql island lives in the store's kind of database: a SQLite file, or PostgreSQL.
    pg_url = (
        request.getfixturevalue("pg_base_url") if (kind, backend) == ("sql", "postgresql") else None
    )
    reference = reference_for(kind, pg_url)
    logs = tmp_path / "logs"
    logs.mkdir()
    outcomes: list[Outcome] = []
    with world(kind, tmp_path / "project", pg_url=pg_url) as island:
        runner = Runner(island.root, store_url, island.env, logs, pycache)
        try:
            if plan.phase == "initial":
                _crash_phase(runner, plan, reference.landed[0], outcomes)
                island.change()
                sync_in_process(island, store_url, monkeypatch)
            else:
                sync_in_process(island, store_url, monkeypatch)
                island.change()
                _crash_phase(runner, plan, reference.landed[1], outcomes)
        except AssertionError as exc:  # a run failed, hung, or left a process behind
            raise AssertionError(f"{exc}\n{_story(plan, outcomes, trial)}") from None
        story = _story(plan, outcomes, trial)
        assert any(o.killed and o.kill.mode != "early" for o in outcomes), (
            f"no run was killed part way, so this trial tested nothing.\n{story}"
        )
        _compare(collect(store_url), reference.facts, story, state=False)
        # The sync state is compared after one more sync, in both stores. A re-run syncs
        # again the streams the killed run had finished, and that may move their state on:
        # a drop's committed files are archived by the next pull, wherever it comes from.
        sync_in_process(island, store_url, monkeypatch)
        _compare(collect(store_url), reference.settled, story, state=True)


def _compare(facts: Facts, expected: Facts, story: str, *, state: bool) -> None:
    when = "after one more sync" if state else "after the re-run"
    assert facts.problems == [], (
        f"{when}, the store is inconsistent:\n{_lines(facts.problems)}\n{story}"
    )
    found = differences(facts, expected, state=state)
    assert found == [], (
        f"{when}, the store differs from an uninterrupted run's:\n{_lines(found)}\n{story}"
    )


def _story(plan: Plan, outcomes: list[Outcome], trial: int) -> str:
    seed, kind, backend, _ = plan.seed.rsplit(":", 3)
    return (
        f"{plan}\n"
        + "".join(f"  {o}\n" for o in outcomes)
        + f"replay: ISLANDHUB_CRASH_SEED={seed} ISLANDHUB_CRASH_TRIALS={trial + 1} "
        f".venv/bin/python -m pytest -q tests/crash -k '{backend}-{kind}-trial{trial}'"
    )


def _lines(found: list[str]) -> str:
    return "\n".join(f"  - {line}" for line in found)


# ---------------------------------------------------------------- the trials' own checks


@pytest.mark.parametrize("kind", KINDS)
def test_the_reference_holds_what_the_trials_must_keep(
    kind: str, reference_for: Callable[[str, str | None], Reference]
) -> None:
    """The data exercises merging, quarantine and deletes, and the reference is consistent."""
    reference = reference_for(kind, None)
    facts, system = reference.facts, SYSTEM_OF[kind]
    assert facts.problems == [] and reference.settled.problems == []
    assert reference.settled.sums == facts.sums  # one more sync finds nothing new
    shot = facts.snapshot
    merged = [c for c in shot["clusters"] if {s for s, *_ in c} == {system, "population"}]
    twice = [c for c in shot["clusters"] if sum(s == system for s, *_ in c) >= 2]
    assert len(merged) >= 250 and len(twice) >= 150, (len(merged), len(twice))
    assert sum(1 for s, *_ in shot["quarantine"] if s == system) >= 25
    sums = facts.sums[(system, next(s for sy, s in facts.sums if sy == system))]
    assert sums["published"] >= sums["mapped"] > 1000
    assert reference.landed[0] > 1400 and reference.landed[1] > 150
    # Every change of the second phase arrived (those without a family name are quarantined).
    changed = [
        key for key, fields in shot["source_records"].items() if "muutos" in fields.get("email", "")
    ]
    assert len(changed) == sum(k % 41 != 5 for k in changed_keys()), len(changed)
    married = [g for g in shot["golden"].values() if g.get("family_name") == "Holmberg"]
    assert len(married) == 43  # the register's new names win over the island's
    if kind != "files":  # a CSV drop has no deletes
        assert sums["deleted"] == len(deleted_keys()), sums
        deleted = [k for k, (_h, status) in shot["landing"].items() if status == "deleted"]
        assert len(deleted) == len(deleted_keys())


def test_the_comparison_finds_a_lost_and_a_doubled_record(
    reference_for: Callable[[str, str | None], Reference], tmp_path: Path
) -> None:
    """A store with a record lost and a resident doubled is told from the reference."""
    reference = reference_for("files", None)
    copy = tmp_path / "damaged.db"
    source = sqlite3.connect(reference.store_url.removeprefix("sqlite:///"))
    with sqlite3.connect(copy) as target:
        source.backup(target)
    source.close()
    with sqlite3.connect(copy) as conn:
        conn.execute("DELETE FROM landing WHERE source_id = 'D00007'")
        conn.execute(
            "INSERT INTO residents SELECT 'doubled-' || resident_id, version, active, "
            "merged_into, created_at, updated_at FROM residents LIMIT 1"
        )
        conn.execute("UPDATE runs SET mapped = mapped + 1, pulled = pulled + 1")
    conn.close()
    facts = collect(f"sqlite:///{copy}")
    assert any("without source records" in p for p in facts.problems), facts.problems
    assert any("residents without their current version" in p for p in facts.problems)
    found = "\n".join(differences(facts, reference.settled))
    assert "landing: 1 rows of the reference missing" in found, found
    assert "residents:" in found and "counters of all runs" in found, found


def test_a_kill_plan_is_the_same_for_the_same_seed_and_varies_across_seeds() -> None:
    plans = [Plan.draw(f"{BASE_SEED}:files:sqlite:{i}") for i in range(40)]
    assert plans[7] == Plan.draw(f"{BASE_SEED}:files:sqlite:7")
    assert {p.phase for p in plans} == {"initial", "incremental"}
    modes = {k.mode for p in plans for k in p.kills}
    assert modes == {"early", "landed", "published"}
    assert all(any(k.mode != "early" for k in p.kills) for p in plans)
    assert all(isinstance(k, Kill) and 0 < k.value < 2 for p in plans for k in p.kills)


def test_an_island_world_is_built_the_same_twice(tmp_path: Path) -> None:
    """Two worlds of a kind hold the same files: a reference fits every trial."""
    with world("files", tmp_path / "a") as a, world("files", tmp_path / "b") as b:
        assert _tree(a) == _tree(b)
        a.change()
        b.change()
        assert _tree(a) == _tree(b)


def _tree(island: World) -> dict[str, tuple[str, float | None]]:
    """Each file's content hash, and its time where the files connector reads it (drops)."""
    return {
        str(p.relative_to(island.root)): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mtime if "drop" in p.parts else None,
        )
        for p in sorted(island.root.rglob("*"))
        if p.is_file()
    }
