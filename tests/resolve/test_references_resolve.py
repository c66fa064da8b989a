"""Known cross-system ids in the resolution pass: must-links older than any steward decision.

On the small demo (conftest.py), whose billing customers carry the portal's (crm) customer
number where they turned on e-invoicing there: a referenced pair stays one resident however
little its records agree, the incremental pass takes the referenced record into its region,
and a steward's split wins over the reference.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from islandhub.ids import uuid7
from islandhub.resolve import steward
from islandhub.resolve.matching import save_model
from islandhub.resolve.publish import Pending, publish
from islandhub.resolve.reconcile import INCREMENTAL, resolve
from islandhub.resolve.steward import load_constraints
from islandhub.store import Store, open_store
from islandhub.store.db import dumps, loads, now
from islandhub.store.tables import links, record_references, source_records
from tests.resolve.test_steward import decide

REPO = Path(__file__).resolve().parents[2]
Key = tuple[str, str, str]
# Nothing of the bill payer's own: no name, contact or address the portal profile shares.
STRANGER = {
    "address.type": "postal",
    "given_name": "Xerxes",
    "family_name": "Qvarnström",
    "address.street": "Tunturikatu 99",
    "address.postal_code": "99990",
}


def resident_of(store: Store, key: Key) -> str:
    with store.connect() as conn:
        return conn.execute(
            sa.select(links.c.resident_id).where(
                links.c.system == key[0], links.c.stream == key[1], links.c.source_id == key[2]
            )
        ).scalar_one()


def referenced_pair(store: Store) -> tuple[Key, Key]:
    """A billing customer and the portal profile it names, both linked."""
    with store.connect() as conn:
        row = conn.execute(
            sa.select(record_references)
            .where(record_references.c.system == "billing")
            .order_by(record_references.c.source_id)
        ).first()
    assert row is not None, "the demo's billing customers name portal profiles"
    return (row.system, row.stream, row.source_id), (
        row.ref_system,
        row.ref_stream,
        row.ref_source_id,
    )


def disagree(store: Store, key: Key) -> None:
    """Make the record a stranger to its profile: only the reference says they are one."""
    where = (
        (source_records.c.system == key[0])
        & (source_records.c.stream == key[1])
        & (source_records.c.source_id == key[2])
    )
    with store.begin() as conn:
        # A new run id: the kept matching frame standardises the record again.
        conn.execute(
            source_records.update().where(where).values(fields=dumps(STRANGER), run_id=uuid7())
        )


def forget_reference(store: Store, key: Key) -> list[dict]:
    where = (
        (record_references.c.system == key[0])
        & (record_references.c.stream == key[1])
        & (record_references.c.source_id == key[2])
    )
    with store.begin() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.select(record_references).where(where))]
        conn.execute(record_references.delete().where(where))
    return rows


def detach(store: Store, key: Key, priority: tuple[str, ...]) -> None:
    """Publish the record again as if new: its link goes, so publishing places it afresh."""
    run = uuid7()
    where = (links.c.system == key[0]) & (links.c.stream == key[1]) & (links.c.source_id == key[2])
    with store.begin() as conn:
        conn.execute(links.delete().where(where))
        fields = conn.execute(
            sa.select(source_records.c.fields).where(
                source_records.c.system == key[0],
                source_records.c.stream == key[1],
                source_records.c.source_id == key[2],
            )
        ).scalar_one()
        publish(
            conn,
            key[0],
            key[1],
            [Pending(key[2], loads(fields), now().isoformat(), run, 0)],
            priority,
            run,
        )


@pytest.fixture
def demo(small_demo, tmp_path):
    store = small_demo.copy(tmp_path)
    save_model(store, small_demo.model)
    resolve(REPO, store, small_demo.hub.priority, full=True)
    yield store, small_demo.hub.priority
    store.dispose()


@pytest.mark.slow
def test_a_referenced_pair_stays_one_resident_whatever_its_fields_say(demo):
    store, priority = demo
    customer, profile = referenced_pair(store)
    disagree(store, customer)
    resolve(REPO, store, priority, full=True)
    assert resident_of(store, customer) == resident_of(store, profile)
    # Without the reference the model keeps them apart: it is the reference that holds.
    forget_reference(store, customer)
    resolve(REPO, store, priority, full=True)
    assert resident_of(store, customer) != resident_of(store, profile)


@pytest.mark.slow
def test_the_incremental_pass_takes_in_the_records_a_reference_joins(demo):
    store, priority = demo
    customer, profile = referenced_pair(store)
    disagree(store, customer)
    rows = forget_reference(store, customer)
    detach(store, customer, priority)  # published without its reference: a resident of its own
    assert resident_of(store, customer) != resident_of(store, profile)
    with store.begin() as conn:
        conn.execute(record_references.insert(), rows)
    result = resolve(REPO, store, priority)
    assert (result.mode, result.queued) == (INCREMENTAL, 1)
    # The profile scores with nothing of the customer's: only the reference brought its
    # resident into the region.
    assert resident_of(store, customer) == resident_of(store, profile)


@pytest.mark.slow
def test_a_steward_split_wins_over_a_reference(demo):
    store, priority = demo
    customer, profile = referenced_pair(store)
    together = resident_of(store, profile)
    assert resident_of(store, customer) == together
    who = steward.Steward("steward-test", "the portal number was typed on the wrong customer")
    split = steward.split(store, who, together, [customer], priority)
    for full in (True, False, True):
        resolve(REPO, store, priority, full=full)
        assert resident_of(store, customer) == split.other_resident_id
        assert resident_of(store, profile) != split.other_resident_id


# --- constraints, read from the store ----------------------------------------------------------


def test_references_are_older_than_every_decision(store_url):
    store = open_store(store_url)
    a, b, c = ("billing", "customers", "1"), ("crm", "contacts", "c-1"), ("crm", "contacts", "c-2")

    reference = frozenset({a, b})
    with store.begin() as conn:
        assert load_constraints(conn, [reference]).together == (reference,)
        decide(conn, "merge", [b, c])  # a later merge joins on to the reference
        merged = load_constraints(conn, [reference])
        decide(conn, "split", [a], [b, c])  # a later split frees the customer from it
        split = load_constraints(conn, [reference])
    assert set(merged.together) == {reference, frozenset({b, c})}
    assert set(split.together) == {frozenset({b, c})}
    assert split.apart == ((frozenset({a}), frozenset({b, c})),)
    store.dispose()


def test_only_the_clusters_of_a_broken_must_link_are_formed_again():
    # Thousands of references hold already: a broken one must not re-score all their clusters.
    def uid(system: str, stream: str, source_id: str) -> str:
        return source_id

    clusters = {"a": "A", "b": "A", "c": "C", "d": "D", "e": "C"}
    held = frozenset({("s", "t", "a"), ("s", "t", "b")})
    broken = frozenset({("s", "t", "c"), ("s", "t", "d")})
    scored: list[list[str]] = []

    def score(records: list[str]) -> list[tuple[str, str, float]]:
        scored.append(records)
        return [("c", "e", 0.99)]

    result = steward.apply_constraints(
        clusters, {}, steward.Constraints(together=(held, broken)), score, uid
    )
    assert scored == [["c", "d", "e"]]
    assert result["a"] == result["b"] == "A"  # the model's cluster, untouched
    assert result["c"] == result["d"] == result["e"] != "C"
