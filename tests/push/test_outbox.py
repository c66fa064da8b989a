"""The outbox is written with the publish: a row per target whose payload changed, atomically.

Every test runs on SQLite and PostgreSQL (the `store_url` fixture behind `world`).
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from islandhub.pipeline import sync
from islandhub.push.outbox import ROW_COLUMNS, idempotency_key
from islandhub.store.bulk import insert_rows, timestamp
from islandhub.store.db import now
from islandhub.store.tables import outbox, resident_versions, residents, sync_state
from tests.push.conftest import open_world, resident_of, rows, sync_in_order
from tests.push.world import ANNA, MIKKO, person


def payloads(store, target, stream, resident_id):
    return [
        json.loads(r.payload)
        for r in rows(store, target=target, stream=stream)
        if r.resident_id == resident_id
    ]


def test_a_row_per_subscribed_target_whose_payload_changed(world):
    project, store = open_world(world)
    sync_in_order(project, store)
    anna = resident_of(store, "population", ANNA)
    written = rows(store)
    # Every resident to the feed (residents: all); to the portal and the parties only the
    # residents they hold a record of (residents: linked).
    assert sorted((r.target, r.stream) for r in written) == [
        ("cases", "feed"),
        ("cases", "feed"),
        ("cases", "feed"),
        ("cases", "parties"),
        ("cases", "parties"),
        ("portal", "contacts"),
        ("portal", "contacts"),
    ]
    for r in written:
        assert r.status == "pending" and r.attempts == 0
        assert r.idempotency_key == idempotency_key(r.target, r.stream, r.resident_id, r.version)
    # Anna's golden record got three versions (register, portal, cases); the feed's fields
    # did not change after the first, so it has one row.
    assert [
        r.version for r in rows(store, target="cases", stream="feed") if r.resident_id == anna
    ] == [1]

    sync_in_order(project, store)
    assert len(rows(store)) == len(written), "nothing changed: no new rows"

    world.register(person(ANNA, "Anna Maria", "Lindqvist", "1978-03-12", "Uusi katu 1"))
    sync_in_order(project, store, "population")
    new = rows(store)[len(written) :]
    assert sorted((r.target, r.stream, r.resident_id) for r in new) == [
        ("cases", "feed", anna),
        ("portal", "contacts", anna),
    ]
    [feed] = [json.loads(r.payload) for r in new if r.stream == "feed"]
    assert feed["street"] == "Uusi katu 1"


def test_an_island_never_gets_a_field_it_owns_overwritten_nor_an_older_value(world):
    project, store = open_world(world)
    sync_in_order(project, store)
    anna = resident_of(store, "population", ANNA)
    # The portal's own mapping reads names, email and address: it owns them. It holds
    # "Anna" and an email: the register's "Anna Maria" and the case email never replace them.
    # Its record (no address) was observed after the register's address: that address is
    # older than the portal's own record and is not sent either. The municipality it does
    # not own: it gets it.
    [portal] = payloads(store, "portal", "contacts", anna)
    assert portal == {"contact_id": "c-1", "hub_id": anna, "municipality": "753"}
    [party] = payloads(store, "cases", "parties", anna)
    assert party == {"party_id": "p-1", "hub_id": anna, "municipality": "753"}

    # A move the register reports now is newer than the portal's record: the empty address
    # is filled. Names and email stay the portal's own.
    world.register(person(ANNA, "Anna Maria", "Lindqvist", "1978-03-12", "Uusi katu 1"))
    sync_in_order(project, store, "population")
    latest = payloads(store, "portal", "contacts", anna)[-1]
    assert latest == {
        "contact_id": "c-1",
        "hub_id": anna,
        "municipality": "753",
        "address": {"street": "Uusi katu 1", "postal_code": "04130"},
    }


def test_a_protected_residents_address_goes_nowhere(world):
    project, store = open_world(world)
    sync_in_order(project, store)
    mikko = resident_of(store, "population", MIKKO)
    [feed] = payloads(store, "cases", "feed", mikko)
    assert "street" not in feed and feed["name"] == "Mikko Virtanen"
    # A later move would fill the portal's empty address for anyone else; not for Mikko.
    world.register(person(MIKKO, "Mikko", "Virtanen", "1981-11-04", "Uusi piilo 9", protected=True))
    sync_in_order(project, store, "population")
    for target, stream in (("portal", "contacts"), ("cases", "feed")):
        for payload in payloads(store, target, stream, mikko):
            assert "address" not in payload and "street" not in payload, payload
    assert "Uusi piilo" not in json.dumps([json.loads(r.payload) for r in rows(store)])


def test_a_failure_between_publish_and_outbox_leaves_neither(world):
    """The outbox insert fails inside the publish's transaction: no version, no row."""
    project, store = open_world(world)
    sync_in_order(project, store)
    anna = resident_of(store, "population", ANNA)
    before = rows(store)
    with store.connect() as conn:
        version = conn.execute(
            sa.select(residents.c.version).where(residents.c.resident_id == anna)
        ).scalar_one()
    # A row already holding the key the next version's portal row will get: the outbox
    # insert violates the unique key, as a crash at that point would stop the transaction.
    with store.begin() as conn:
        stamp = timestamp(conn, now())
        key = idempotency_key("portal", "contacts", anna, version + 1)
        blocking = ("x", "x", "x", 0, key, "{}", "dead", 0, stamp, None, "x", stamp, None)
        insert_rows(conn, outbox, ROW_COLUMNS, [blocking])
    world.register(person(ANNA, "Anna Maria", "Lindqvist", "1978-03-12", "Uusi katu 1"))
    with pytest.raises(sa.exc.IntegrityError):
        sync(project, store, ["population"])

    def published(conn):
        return conn.execute(
            sa.select(sync_state.c.published_seq, sync_state.c.landed_seq).where(
                sync_state.c.system == "population"
            )
        ).one()

    with store.connect() as conn:
        assert (
            conn.execute(
                sa.select(sa.func.max(resident_versions.c.version)).where(
                    resident_versions.c.resident_id == anna
                )
            ).scalar_one()
            == version
        )
        seq = published(conn)
        assert seq.published_seq < seq.landed_seq  # landed, left to publish
    assert len(rows(store)) == len(before) + 1  # only the blocking row

    with store.begin() as conn:
        conn.execute(outbox.delete().where(outbox.c.idempotency_key == key))
    sync_in_order(project, store, "population")  # finishes the publish it left
    new = rows(store)[len(before) :]
    assert {(r.target, r.resident_id, r.version) for r in new} == {
        ("cases", anna, version + 1),
        ("portal", anna, version + 1),
    }


def test_erasure_can_forget_a_residents_rows(world):
    from islandhub.push.outbox import forget

    project, store = open_world(world)
    sync_in_order(project, store)
    anna = resident_of(store, "population", ANNA)
    total = len(rows(store))
    with store.begin() as conn:
        assert forget(conn, [anna]) == 3  # feed, parties, portal
    assert len(rows(store)) == total - 3
    assert all(r.resident_id != anna for r in rows(store))
