"""Incremental resolution: a pass resolves the records published since the last one.

Publishing queues every record it links (`resolution_queue`, in the publish transaction);
`islandhub resolve` with a trained model scores only the queued records against every
record, re-clusters only the residents they touch, and takes the queue in the transaction
that writes its result. These tests compare it with a full pass on the small demo.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import sqlalchemy as sa

from islandhub.ids import uuid7
from islandhub.resolve.matching import save_model
from islandhub.resolve.publish import Pending, publish
from islandhub.resolve.reconcile import FULL, INCREMENTAL, _dequeue, _queued, resolve
from islandhub.resolve.references import must_links
from islandhub.store import Store
from islandhub.store.db import loads, now
from islandhub.store.tables import links, resolution_queue, source_records

REPO = Path(__file__).resolve().parents[2]


def partition(store: Store) -> set[frozenset[tuple[str, str, str]]]:
    """The residents as sets of their records (ids left out: only who is with whom)."""
    members: dict[str, set[tuple[str, str, str]]] = {}
    with store.connect() as conn:
        for r in conn.execute(sa.select(links)):
            members.setdefault(r.resident_id, set()).add((r.system, r.stream, r.source_id))
    return {frozenset(m) for m in members.values()}


def resident_of(store: Store, key: tuple[str, str, str]) -> str:
    with store.connect() as conn:
        return conn.execute(
            sa.select(links.c.resident_id).where(
                links.c.system == key[0], links.c.stream == key[1], links.c.source_id == key[2]
            )
        ).scalar_one()


def queue_size(store: Store) -> int:
    with store.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(resolution_queue)).scalar_one()


def detach(store: Store, keys: list[tuple[str, str, str]], priority: tuple[str, ...]) -> None:
    """Publish `keys` again as if new: their links go, so publishing founds new residents."""
    run = uuid7()
    with store.begin() as conn:
        for system, stream, source_id in keys:
            conn.execute(
                links.delete().where(
                    links.c.system == system,
                    links.c.stream == stream,
                    links.c.source_id == source_id,
                )
            )
            fields = conn.execute(
                sa.select(source_records.c.fields).where(
                    source_records.c.system == system,
                    source_records.c.stream == stream,
                    source_records.c.source_id == source_id,
                )
            ).scalar_one()
            pending = Pending(source_id, loads(fields), now().isoformat(), run, 0)
            publish(conn, system, stream, [pending], priority, run)


@pytest.mark.slow
def test_publishing_queues_records_and_a_pass_takes_the_queue(small_demo, tmp_path):
    store = small_demo.copy(tmp_path)
    with store.connect() as conn:
        linked = conn.execute(sa.select(sa.func.count()).select_from(links)).scalar_one()
    assert queue_size(store) == linked > 0  # every published record waits for a pass
    first = resolve(REPO, store, small_demo.hub.priority)
    # Without a model the pass trains one and clusters everything.
    assert (first.mode, first.trained, first.queued) == (FULL, True, linked)
    assert queue_size(store) == 0
    again = resolve(REPO, store, small_demo.hub.priority)
    assert (again.mode, again.queued, again.relinked, again.merged) == (INCREMENTAL, 0, 0, 0)
    store.dispose()


@pytest.mark.slow
def test_an_incremental_pass_puts_changed_records_where_a_full_pass_does(small_demo, tmp_path):
    store = small_demo.copy(tmp_path)
    priority = small_demo.hub.priority
    save_model(store, small_demo.model)
    resolve(REPO, store, priority, full=True)
    settled = partition(store)
    with store.connect() as conn:
        rows = conn.execute(sa.select(links).order_by(links.c.source_id)).all()
        fields = {
            (r.system, r.stream, r.source_id): loads(r.fields)
            for r in conn.execute(sa.select(source_records))
        }
        referenced = {record for pair in must_links(conn) for record in pair}
    size: dict[str, int] = {}
    for r in rows:
        size[r.resident_id] = size.get(r.resident_id, 0) + 1
    # Records the model placed (no national id, no known cross-system id: publishing would
    # place those itself) with residents of several records.
    candidates = [
        (r.system, r.stream, r.source_id)
        for r in rows
        if size[r.resident_id] >= 3
        and not fields[(r.system, r.stream, r.source_id)].get("national_id")
        and (r.system, r.stream, r.source_id) not in referenced
    ]
    changed = random.Random(5).sample(candidates, 8)
    before = {key: resident_of(store, key) for key in changed}
    detach(store, changed, priority)
    assert all(resident_of(store, key) != before[key] for key in changed)
    assert queue_size(store) == len(changed)

    result = resolve(REPO, store, priority)
    assert (result.mode, result.queued) == (INCREMENTAL, len(changed))
    # Only the region of the changed records was clustered, not the population.
    assert 0 < result.records < len(rows) / 4
    assert {key: resident_of(store, key) for key in changed} == before
    assert partition(store) == settled
    assert queue_size(store) == 0
    # A full pass finds nothing left to do.
    full = resolve(REPO, store, priority, full=True)
    assert (full.mode, full.relinked, full.merged) == (FULL, 0, 0)
    store.dispose()


def test_a_record_queued_again_during_a_pass_stays_queued(store_url):
    from islandhub.store import open_store

    store = open_store(store_url)
    stamp = now()
    with store.begin() as conn:
        conn.execute(
            resolution_queue.insert(),
            [
                {"system": "s", "stream": "t", "source_id": "1", "run_id": "A", "queued_at": stamp},
                {"system": "s", "stream": "t", "source_id": "2", "run_id": "A", "queued_at": stamp},
            ],
        )
    taken = _queued(store)
    assert taken == {"s|t|1": "A", "s|t|2": "A"}
    with store.begin() as conn:  # a publish queues record 2 again while the pass runs
        conn.execute(
            resolution_queue.update().where(resolution_queue.c.source_id == "2").values(run_id="B")
        )
    with store.begin() as conn:
        _dequeue(conn, taken)
    assert _queued(store) == {"s|t|2": "B"}
    store.dispose()


@pytest.mark.slow
def test_the_cli_says_which_pass_it_ran(small_demo, sample_project, tmp_path, monkeypatch, capsys):
    from islandhub.cli import main

    store = small_demo.copy(tmp_path)
    save_model(store, small_demo.model)
    monkeypatch.setenv("ISLANDHUB_PROJECT", str(sample_project))
    monkeypatch.setenv("ISLANDHUB_STORE_URL", str(store.engine.url))
    capsys.readouterr()
    assert main(["resolve", "--full", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mode"] == FULL
    assert main(["resolve"]) == 0
    assert capsys.readouterr().out.startswith("incremental pass (0 records published")
    store.dispose()


@pytest.mark.slow
def test_the_blocking_candidates_give_splink_the_pairs_of_a_full_pass(small_demo, tmp_path):
    from islandhub.resolve.matching import blocking_candidates, frame_from_store, score_pairs

    store = small_demo.copy(tmp_path)
    frame = frame_from_store(store)
    store.dispose()
    model = small_demo.model
    chosen = frame["unique_id"].isin(frame["unique_id"].sample(20, random_state=3))
    everyone = score_pairs(frame[chosen], model, 0.01, against=frame[~chosen])
    candidates = blocking_candidates(frame, chosen, model.settings.blocking) & ~chosen.to_numpy()
    assert 0 < candidates.sum() < (~chosen).sum() / 2
    few = score_pairs(frame[chosen], model, 0.01, against=frame[candidates], frequencies=frame)

    def weights(pairs):
        return {
            frozenset((a, b)): round(w, 9)
            for a, b, w in zip(
                pairs["unique_id_l"], pairs["unique_id_r"], pairs["match_weight"], strict=True
            )
        }

    assert len(everyone) > 0
    assert weights(few) == weights(everyone)


def test_the_frame_is_kept_standardised_and_follows_changes_and_removals(small_demo, tmp_path):
    from islandhub.resolve.matching import COLUMNS, frame_from_store
    from islandhub.store.db import dumps
    from islandhub.store.tables import landing, resolution_frame, sync_state

    store = small_demo.copy(tmp_path)
    first = frame_from_store(store)

    def kept() -> dict[str, dict]:
        with store.connect() as conn:
            rows = [dict(zip(COLUMNS, loads(r.row), strict=True)) for r in conn.execute(
                sa.select(resolution_frame.c.row))]  # fmt: skip
        return {row["unique_id"]: row for row in rows}

    assert set(kept()) == set(first["unique_id"])
    again = frame_from_store(store)
    assert again.equals(first)  # read back from the kept rows, not standardised again
    changed, removed = first["unique_id"].iloc[3], first["unique_id"].iloc[5]
    system, stream, source_id = changed.split("|", 2)
    key = (
        (source_records.c.system == system)
        & (source_records.c.stream == stream)
        & (source_records.c.source_id == source_id)
    )
    with store.begin() as conn:
        fields = loads(conn.execute(sa.select(source_records.c.fields).where(key)).scalar_one())
        fields["family_name"] = "Uusinimi"
        conn.execute(
            source_records.update().where(key).values(fields=dumps(fields), run_id=uuid7())
        )
        gone = removed.split("|", 2)
        # As landing does: each record it lands again takes the stream's next sequence.
        for (system_, stream_, source_id_), status in ((changed.split("|", 2), "mapped"),
                                                       (gone, "deleted")):  # fmt: skip
            state = (sync_state.c.system == system_) & (sync_state.c.stream == stream_)
            seq = conn.execute(sa.select(sync_state.c.landed_seq).where(state)).scalar_one() + 1
            conn.execute(sync_state.update().where(state).values(landed_seq=seq))
            conn.execute(
                landing.update()
                .where(
                    landing.c.system == system_,
                    landing.c.stream == stream_,
                    landing.c.source_id == source_id_,
                )
                .values(status=status, seq=seq)
            )
    after = frame_from_store(store).set_index("unique_id")
    assert after.loc[changed, "family_name"] == "uusinimi"
    assert removed not in after.index
    assert kept()[changed]["family_name"] == "uusinimi"
    assert removed not in kept()  # nothing of a record that is no longer current stays
    store.dispose()
