"""The API's read of a resident by id answers and audits exactly as residents.show does.

Through all three ways in: the prepared read itself, the fast path (a GET as clients send
it) and the FastAPI route (a GET the fast path passes on: an uppercase id), for a resident,
ids merged once and twice, an id erased on request and an unknown one.
"""

from __future__ import annotations

import uuid

import orjson
import sqlalchemy as sa

from islandhub.api.reads import answer, audit_row
from islandhub.api.responses import MaskedJSONResponse
from islandhub.residents import Reader, show
from islandhub.store.db import now
from islandhub.store.tables import audit_log, residents

AUDITED = ("actor", "action", "purpose", "resident_id", "detail")


def _last_audit(served):
    with served.store.connect() as conn:
        row = conn.execute(sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(1)).one()
    return tuple(getattr(row, name) for name in AUDITED)


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


def _ids(served):
    merged = _resident_row(served, served.ids["elsa"])  # both must follow it to Elsa
    twice = _resident_row(served, merged)  # and this one, two hops
    erased = _resident_row(served)  # the id remains, the record does not
    return [*served.ids.values(), merged, twice, erased, str(uuid.uuid4())], twice, erased


def test_the_prepared_read_is_show(served):
    ids, twice, erased = _ids(served)
    reader = Reader("equivalence-test", f"comparing reads {uuid.uuid4()}")
    reads = served.context.reads
    for rid in ids:
        expected = show(served.store, reader, resident_id=rid)
        audited = _last_audit(served)
        found, row = reads.lookup(rid)
        assert answer(rid, found, row) == expected
        written = audit_row(reader, found)
        assert tuple(written[name] for name in AUDITED) == audited
    found, row = reads.lookup(twice)
    assert answer(twice, found, row)["requested_id"] == twice
    assert answer(erased, *reads.lookup(erased)) is None


def test_the_fast_path_and_the_route_answer_and_audit_as_show(served):
    ids, _twice, _erased = _ids(served)
    purpose = f"comparing answers {uuid.uuid4()}"
    reader = Reader("portal", purpose)
    headers = {**served.keys.header("portal"), "X-Purpose": purpose}
    with served.client(**headers) as client:
        for rid in ids:
            expected = show(served.store, reader, resident_id=rid)
            audited = _last_audit(served)
            for path in (f"/residents/{rid}", f"/residents/{rid.upper()}"):  # fast, FastAPI
                response = client.get(path)
                if expected is None:
                    assert response.status_code == 404, path
                    assert response.json() == {"detail": "no such resident"}
                else:
                    assert response.status_code == 200, path
                    assert response.headers["content-type"] == "application/json"
                    assert response.content == MaskedJSONResponse(expected).body
                    assert orjson.loads(response.content)["resident_id"] == expected["resident_id"]
                assert _last_audit(served) == audited, path
