"""A killed sync leaves no extract worker behind, wherever the worker was.

With ISLANDHUB_WORKERS=1 the worker reads ahead of the writer (islandhub/extract.py). Once
it has read the whole stream it waits for its last messages to be taken; when the writer
was killed instead, a message larger than the pipe's buffer (any real batch) could never
be written and the worker waited for ever, an orphan. Here the writer is killed while it
publishes the first of two large batches: the second is queued, unread.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.crash.conftest import Reference, sync_in_process
from tests.crash.harness import Kill, Runner, collect, differences, kill_part_way
from tests.crash.islands import RECORDS, REGISTER, world


@pytest.mark.slow
def test_a_sync_killed_after_its_worker_read_everything_leaves_no_process(
    store_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    reference_for: Callable[[str, str | None], Reference],
    pycache: Path,
) -> None:
    reference = reference_for("rest", None)
    logs = tmp_path / "logs"
    logs.mkdir()
    with world("rest", tmp_path / "project", batch=RECORDS // 2) as island:
        runner = Runner(island.root, store_url, island.env, logs, pycache)
        # Killed once the first half is landed (while it is published), before the writer
        # takes the second half from the queue. kill_part_way fails when a process lingers.
        kill = Kill("landed", 0.3, workers=True)
        outcome = kill_part_way(runner, kill, (0, 0), RECORDS + REGISTER)
        assert outcome.killed and outcome.at[0] == RECORDS // 2, outcome
        runner.complete(workers=True)
        island.change()
        sync_in_process(island, store_url, monkeypatch)
    facts = collect(store_url)
    assert facts.problems == []
    # Batches of 600 instead of 40: nothing lost or doubled all the same. (Golden records
    # may pick another primary email where two records of one person share a batch.)
    assert differences(facts, reference.facts, golden=False) == []
