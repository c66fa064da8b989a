"""Delivery against real islands: no duplicates, backoff, dead letters, replay, supersession.

The portal is a real HTTP server on 127.0.0.1 and the case system a real SQLite database;
the hub's store runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from islandhub import orchestrate
from islandhub.errors import RunFailed
from islandhub.push.deliver import deliver, replay
from islandhub.store.db import as_utc, now
from islandhub.store.tables import audit_log, outbox
from tests.push.conftest import open_world, resident_of, rows, sync_in_order
from tests.push.world import ANNA, MIKKO, person

SECOND = timedelta(seconds=1)


def test_a_push_that_fails_then_succeeds_leaves_no_duplicate(world):
    project, store = open_world(world)
    sync_in_order(project, store)
    portal = world.portal
    portal.lose_answers = 1  # the first contact is stored, but its answer never arrives
    t0 = now()

    [first] = deliver(project, store, ["portal"], at=t0)
    assert (first.delivered, first.retrying, first.dead) == (0, 2, 0)
    assert len(portal.stored) == 1  # the portal did store it
    assert all(r.attempts == 1 and r.status == "pending" for r in rows(store, target="portal"))

    [early] = deliver(project, store, ["portal"], at=t0 + 9 * SECOND)
    assert early.delivered == 0 and early.waiting == 2  # backing off: nothing sent

    [second] = deliver(project, store, ["portal"], at=t0 + 10 * SECOND)
    assert (second.delivered, second.retrying, second.dead) == (2, 0, 0)
    assert len(portal.stored) == 2  # the lost one was not stored again
    assert len(portal.posts) == 3 and len(set(portal.posts)) == 2  # one key sent twice
    sent = rows(store, target="portal")
    assert {r.status for r in sent} == {"delivered"}
    assert sorted(portal.posts) == sorted(
        [sent[0].idempotency_key, *[r.idempotency_key for r in sent]]
    )


def test_backoff_doubles_then_the_row_is_dead_and_replay_sends_it(world):
    project, store = open_world(world)
    sync_in_order(project, store)
    world.portal.down()
    t0 = now()
    # max_attempts 3, backoff 10 s (world.DEFAULT_RETRY): tries at t0, t0+10, t0+30.
    for at, attempts in ((t0, 1), (t0 + 10 * SECOND, 2)):
        [report] = deliver(project, store, ["portal"], at=at)
        assert report.retrying == 2 and not report.ok
        for row in rows(store, target="portal"):
            wait = 10 * 2 ** (attempts - 1)
            assert (row.status, row.attempts) == ("pending", attempts)
            assert as_utc(row.next_attempt_at) == at + wait * SECOND
            assert "503" in row.last_error
    [still] = deliver(project, store, ["portal"], at=t0 + 29 * SECOND)
    assert still.retrying == 0 and still.waiting == 2
    [last] = deliver(project, store, ["portal"], at=t0 + 30 * SECOND)
    assert (last.dead, last.retrying) == (2, 0)
    dead = rows(store, target="portal")
    assert {r.status for r in dead} == {"dead"}
    assert all(r.last_error.startswith("gave up after 3 attempts: ") for r in dead)

    world.portal.up()
    [idle] = deliver(project, store, ["portal"])
    assert idle.delivered == 0 and world.portal.stored == []  # dead rows wait for a replay
    assert replay(store, "cases") == 0
    assert replay(store, "portal") == 2
    [again] = deliver(project, store, ["portal"])
    assert again.delivered == 2 and len(world.portal.stored) == 2


def test_a_refused_row_is_dead_at_once_with_the_reason_and_the_others_go(world):
    project, store = open_world(world)
    sync_in_order(project, store)
    anna = resident_of(store, "population", ANNA)
    world.portal.refuse = {anna}
    [report] = deliver(project, store, ["portal"])
    assert (report.delivered, report.dead) == (1, 1)
    [refused] = [r for r in rows(store, target="portal") if r.resident_id == anna]
    assert refused.status == "dead" and refused.attempts == 1
    assert refused.last_error.startswith("refused: ") and "422" in refused.last_error
    assert [c["hub_id"] for c in world.portal.stored] == [resident_of(store, "population", MIKKO)]


def test_a_redelivered_row_changes_nothing_in_rest_or_sql_islands(world):
    """As if the hub died after sending and before recording it: every row is sent again."""
    project, store = open_world(world)
    sync_in_order(project, store)
    reports = deliver(project, store)
    assert [(r.target, r.delivered) for r in reports] == [("cases", 5), ("portal", 2)]
    before = (
        list(world.portal.stored),
        world.cases("SELECT * FROM hub_contacts ORDER BY party_id"),
        world.cases("SELECT * FROM hub_residents ORDER BY hub_id"),
    )
    assert len(before[1]) == 2 and len(before[2]) == 3
    with store.begin() as conn:
        conn.execute(outbox.update().values(status="pending", delivered_at=None))
    again = deliver(project, store)
    assert [(r.target, r.delivered) for r in again] == [("cases", 5), ("portal", 2)]
    after = (
        list(world.portal.stored),
        world.cases("SELECT * FROM hub_contacts ORDER BY party_id"),
        world.cases("SELECT * FROM hub_residents ORDER BY hub_id"),
    )
    assert after == before


def test_only_the_newest_row_of_a_resident_and_target_is_sent(world):
    project, store = open_world(world)
    sync_in_order(project, store)
    anna = resident_of(store, "population", ANNA)
    world.register(person(ANNA, "Anna Maria", "Lindqvist", "1978-03-12", "Uusi katu 1"))
    sync_in_order(project, store, "population")
    [report] = deliver(project, store, ["portal"])
    assert (report.delivered, report.superseded) == (2, 1)
    stored = {c["hub_id"]: c for c in world.portal.stored}
    assert stored[anna]["address"] == {"street": "Uusi katu 1", "postal_code": "04130"}
    old, new = [r for r in rows(store, target="portal") if r.resident_id == anna]
    assert (old.status, new.status) == ("superseded", "delivered")

    # An older row made pending again (a replay) never overwrites the newer delivered one.
    with store.begin() as conn:
        conn.execute(outbox.update().where(outbox.c.id == old.id).values(status="dead"))
    assert replay(store, "portal") == 1
    [later] = deliver(project, store, ["portal"])
    assert (later.delivered, later.superseded) == (0, 1)


def test_every_delivery_is_written_to_the_audit_log_as_a_disclosure(world):
    project, store = open_world(world)
    sync_in_order(project, store)
    deliver(project, store, ["portal"])
    with store.connect() as conn:
        entries = conn.execute(sa.select(audit_log).where(audit_log.c.action == "push")).all()
    assert len(entries) == 2
    for entry in entries:
        assert entry.actor == "push-test"
        assert entry.purpose == "write-back of resident data to portal"
        assert json.loads(entry.detail)["fields"] == ["contact_id", "hub_id", "municipality"]


def test_the_airflow_task_delivers_and_fails_when_rows_fail(world):
    project, store = open_world(world)
    sync_in_order(project, store)
    message = orchestrate.describe_push([object()])
    assert "1 update(s)" in message
    assert "portal: 2 delivered, 0 to retry, 0 dead" in message
    assert "cases: 5 delivered" in message
    world.portal.down()
    world.register(person(ANNA, "Anna Maria", "Lindqvist", "1978-03-12", "Uusi katu 1"))
    sync_in_order(project, store, "population")
    with pytest.raises(RunFailed, match="portal: 0 delivered, 1 to retry"):
        orchestrate.describe_push([])


def test_a_second_deliverer_of_the_same_island_sends_nothing(world):
    from islandhub.store import lease

    project, store = open_world(world)
    sync_in_order(project, store)
    held = lease.acquire(store, "portal", "@push", "another-run")
    try:
        [report] = deliver(project, store, ["portal"])
    finally:
        lease.release(store, held)
    assert report.busy and not report.ok and report.delivered == 0
    assert world.portal.posts == []
    [report] = deliver(project, store, ["portal"])
    assert report.delivered == 2
