"""A big run's slices are validated in a process of their own, with the writer's results."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from islandhub.pipeline import sync
from islandhub.quality import batch, slices
from islandhub.quality.slices import Slices, ValidationFailed
from islandhub.quality.suites import Check, Suite
from islandhub.store.tables import dq_results
from tests.helpers import hetu, load

REPO = Path(__file__).resolve().parents[2]
VALID_HETU = hetu(13, 10, 1952, 308)
BROKEN_HETU = VALID_HETU[:-1] + ("X" if VALID_HETU[-1] != "X" else "Y")
SUITE = Suite(
    "test",
    "things",
    (
        Check("national_id", "hetu"),
        Check("national_id", "unique"),
        Check("email", "not_null", mostly=0.6),
        Check("language", "in_set", values=("fi", "sv")),
    ),
    ("national_id", "email", "language"),
    ("national_id", "email", "language"),
)
ROWS = {
    "national_id": [VALID_HETU, BROKEN_HETU, None, "010594Y9032", BROKEN_HETU, VALID_HETU, None],
    "email": ["a@b.fi", None, "c@d.fi", None, None, "e@f.fi", "g@h.fi"],
    "language": ["fi", "ru", "sv", None, "en", "fi", "sv"],
}
IDS = [f"R{i}" for i in range(7)]
CUTS = ((0, 3), (3, 6), (6, 7))


def validated(gathering: Slices, apart_after: int | None = None):
    for number, (a, b) in enumerate(CUTS):
        if number == apart_after:
            gathering.start_process()  # what was gathered so far goes along
        gathering.add({k: v[a:b] for k, v in ROWS.items()}, IDS[a:b])
    return gathering.result()


def plain(validation) -> tuple:
    return (
        [o.as_dict() for o in validation.outcomes],
        validation.rows,
        validation.filled,
        validation.gx["statistics"],
        [r["result"] for r in validation.gx["results"]],
    )


@pytest.mark.parametrize(("apart_after", "spare"), [(0, False), (1, False), (1, True)])
def test_the_process_gives_the_writers_validation_and_then_stops(monkeypatch, apart_after, spare):
    monkeypatch.setattr(slices, "SLICE", 3)  # three slices: 3, 3 and 1 rows
    inline = validated(Slices(SUITE))
    apart = Slices(SUITE, spare=spare)
    beside = validated(apart, apart_after)
    assert plain(beside) == plain(inline)
    assert beside.rows == 7
    hetus = {o.check: o for o in beside.outcomes}["national_id:hetu"]
    assert (hetus.elements, hetus.missing, hetus.unexpected) == (7, 2, 2)
    # The repeated ids fall in different slices: each slice finds none (SLICE's bound).
    assert {o.check: o for o in beside.outcomes}["national_id:unique"].unexpected == 0
    assert not apart.in_process and multiprocessing.active_children() == []


def test_a_spare_process_never_used_goes_and_the_writer_validates():
    idle = Slices(SUITE, spare=True)
    assert len(multiprocessing.active_children()) == 1 and not idle.in_process
    assert plain(validated(idle)) == plain(validated(Slices(SUITE)))
    assert multiprocessing.active_children() == []


def test_a_failure_in_the_process_fails_the_check_with_its_reason():
    apart = Slices(SUITE)
    apart.start_process()
    apart.add({"national_id": [VALID_HETU], "email": ["a@b.fi"], "language": []}, ["R1"])
    expected = r"the quality check of islandhub\.test\.things failed: ValueError"
    with pytest.raises(ValidationFailed, match=expected):
        apart.result()
    assert not apart.in_process and multiprocessing.active_children() == []


def stored_checks(store) -> list[tuple]:
    query = sa.select(dq_results).where(dq_results.c.scope == "batch").order_by(dq_results.c.id)
    with store.connect() as conn:
        found = conn.execute(query).all()
    return [
        (r.system, r.stream, r.batch_size, json.loads(r.scores), json.loads(r.results)["checks"])
        for r in found
    ]


def test_a_run_of_whole_slices_keeps_what_the_writer_would(sample_project, tmp_path, monkeypatch):
    monkeypatch.setattr(slices, "SLICE", 3)  # the sample islands' runs fill several slices
    monkeypatch.setattr(batch, "IN_PROCESS", 2)  # and count as big
    started: list[Suite] = []
    start = Slices.start_process

    def counted(self: Slices) -> None:
        started.append(self.suite)
        start(self)

    monkeypatch.setattr(Slices, "start_process", counted)
    packed: list[int] = []
    add_packed = Slices.add_packed

    def packed_counted(self: Slices, rows: bytes) -> None:
        packed.append(len(rows))
        add_packed(self, rows)

    monkeypatch.setattr(Slices, "add_packed", packed_counted)
    kept = {}
    # In the writer; apart, without the extract worker; apart, with the worker packing rows
    # (ISLANDHUB_WORKERS=1, quality/rows.py).
    for apart, worker in ((False, False), (True, False), (True, True)):
        monkeypatch.setattr(batch, "worth_a_worker", lambda apart=apart: apart)
        monkeypatch.setenv("ISLANDHUB_WORKERS", "1" if worker else "0")
        url = f"sqlite:///{tmp_path / f'{apart}-{worker}' / 'islandhub.db'}"
        project, store = load(sample_project, url, monkeypatch)
        results = sync(project, store, ["population", "school"])
        assert {r.status for r in results} == {"succeeded"}
        assert bool(packed) == worker  # only the worker packs the rows
        packed.clear()
        kept[apart, worker] = stored_checks(store)
        store.dispose()
        assert multiprocessing.active_children() == []
    assert kept[True, True] == kept[True, False] == kept[False, False]
    assert len(kept[False, False]) >= 2
    assert {s.system for s in started} >= {"population", "school"}  # only where asked


WRITER = """
import multiprocessing, sys, time
from islandhub.quality.slices import Slices
from tests.quality.test_slices import SUITE, ROWS, IDS
slices = Slices(SUITE)
slices.start_process()
slices.add(ROWS, IDS)
print(*[p.pid for p in multiprocessing.active_children()], flush=True)
time.sleep(600)
"""


def test_the_process_exits_when_its_writer_is_killed(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER, encoding="utf-8")
    writer = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert writer.stdout is not None
    validators = [int(pid) for pid in writer.stdout.readline().split()]
    assert len(validators) == 1 and _alive(validators[0])
    writer.kill()
    writer.wait()
    deadline = time.monotonic() + 30
    while _alive(validators[0]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(validators[0])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; init reaps it
