"""The API's prepared read of a resident answers and audits exactly as residents.show does."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from islandhub.api.reads import read_resident
from islandhub.residents import Reader, show
from islandhub.store.db import now
from islandhub.store.tables import audit_log, residents


def _last_audit(served):
    with served.store.connect() as conn:
        row = conn.execute(sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(1)).one()
    return (row.actor, row.action, row.purpose, row.resident_id, row.detail)


def _resident_row(served, merged_into=None):
    """A residents row without a version of its own: merged away, or erased."""
    rid = str(uuid.uuid4())
    with served.store.begin() as conn:
        conn.execute(
            residents.insert().values(
                resident_id=rid,
                version=1,
                active=False,
                merged_into=merged_into,
                created_at=now(),
                updated_at=now(),
            )
        )
    return rid


def test_the_prepared_read_is_show(served):
    merged = _resident_row(served, served.ids["elsa"])  # both must follow it to Elsa
    twice = _resident_row(served, merged)  # and this one, two hops
    erased = _resident_row(served)  # the id remains, the record does not
    reader = Reader("equivalence-test", f"comparing reads {uuid.uuid4()}")
    for rid in [*served.ids.values(), merged, twice, erased, str(uuid.uuid4())]:
        expected = show(served.store, reader, resident_id=rid)
        audited = _last_audit(served)
        assert read_resident(served.store, reader, rid) == expected
        assert _last_audit(served) == audited
    assert read_resident(served.store, reader, twice)["requested_id"] == twice
    assert read_resident(served.store, reader, erased) is None
