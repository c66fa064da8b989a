"""Operations routes over HTTP: run status, data-quality summaries read from dq_results, health."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from islandhub.store.db import dumps, now
from islandhub.store.tables import dq_results, landing
from tests.leakscan import national_ids_in


def test_status_lists_every_island_with_its_last_run(served):
    purpose = f"monitoring {uuid.uuid4()}"
    with served.client(**served.keys.header("ops"), **{"X-Purpose": purpose}) as client:
        response = client.get("/status")
    assert response.status_code == 200
    body = response.json()
    systems = {s["system"]: s for s in body["systems"]}
    assert sorted(systems) == ["cases", "population", "school"]
    [persons] = systems["population"]["streams"]
    assert persons["last_run"]["status"] == "succeeded"
    assert persons["records"] == _landed(served, "population")  # 8, less any erased
    assert systems["cases"]["title"]["fi"] == "Asianhallinta"
    assert body["residents"]["active"] >= 7
    # The register's source ids are national ids; none may leave unmasked, not even in errors.
    assert national_ids_in(response.text) == []
    [row] = served.audit_rows(purpose)
    assert (row.actor, row.action, row.resident_id) == ("ops", "status", None)


def _landed(served, system):
    with served.store.connect() as conn:
        query = sa.select(sa.func.count()).select_from(landing).where(landing.c.system == system)
        return conn.execute(query).scalar_one()


def test_quality_summarises_the_newest_result_of_each_kind(served):
    system = f"apitest{uuid.uuid4().hex[:8]}"
    with served.store.begin() as conn:
        for success, completeness in ((True, 1.0), (False, 0.8), (False, 0.75)):
            conn.execute(
                dq_results.insert().values(
                    run_id=None,
                    system=system,
                    stream="pupils",
                    scope="batch",
                    suite=f"{system}.pupils",
                    validated_at=now(),
                    batch_size=40,
                    success=success,
                    scores=dumps({"completeness": completeness}),
                    results="{}",
                )
            )
    with served.client(**served.keys.header("ops")) as client:
        response = client.get("/quality")
    assert response.status_code == 200
    body = response.json()
    [mine] = [r for r in body["results"] if r["system"] == system]
    assert mine["success"] is False and mine["scores"] == {"completeness": 0.75}
    assert (mine["validations"], mine["failures"]) == (3, 2)
    assert body["validations"] >= 3 and body["failures"] >= 2


def test_health_needs_no_credentials_and_holds_no_data(served):
    with served.client() as client:
        response = client.get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
