"""Resident routes over HTTP: read by id, find by national id (POST), activities; masking,
non-disclosure orders and the audit log, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

from tests.api.conftest import ELSA, UNKNOWN


def test_read_by_id_masks_national_ids_and_is_audited(served, resident_ids):
    rid = resident_ids["elsa"]
    purpose = f"address check {uuid.uuid4()}"
    with served.client(**served.keys.header("portal"), **{"X-Purpose": purpose}) as client:
        response = client.get(f"/residents/{rid}")
    assert response.status_code == 200
    body = response.json()
    assert body["resident_id"] == rid and body["version"] >= 1 and body["active"]
    record = body["record"]
    assert record["given_name"] == "Elsa" and record["family_name"] == "Lindqvist"
    assert record["national_id"] == "230612A***H"
    assert record["addresses"][0]["street"] == "Iso Kylätie 12"
    assert body["lineage"]["given_name"]["system"] == "population"
    # The register's source id is the national id itself: masked wherever it appears.
    assert ELSA not in response.text and "230612A***H" in response.text
    [row] = served.audit_rows(purpose)
    assert (row.actor, row.action, row.resident_id) == ("portal", "read", rid)


def test_a_non_disclosure_order_hides_the_address(served, resident_ids):
    with served.client(**served.keys.header("portal")) as client:
        response = client.get(f"/residents/{resident_ids['ella']}")
    assert response.status_code == 200
    record = response.json()["record"]
    assert record["non_disclosure"] is True
    assert "addresses" not in record
    assert "Mossen" not in response.text and "01150" not in response.text


def test_search_by_national_id_in_the_body(served, resident_ids):
    purpose = f"portal login {uuid.uuid4()}"
    with served.client(**served.keys.header("portal"), **{"X-Purpose": purpose}) as client:
        found = client.post("/residents/search", json={"national_id": ELSA.lower()})
        unknown = client.post("/residents/search", json={"national_id": UNKNOWN})
    assert found.status_code == 200 and found.json()["resident_id"] == resident_ids["elsa"]
    assert ELSA not in found.text
    assert unknown.status_code == 404 and unknown.json() == {"detail": "no such resident"}
    rows = served.audit_rows(purpose)
    assert [(r.actor, r.action) for r in rows] == [("portal", "read"), ("portal", "read")]
    assert rows[0].resident_id == resident_ids["elsa"] and rows[1].resident_id is None
    assert all(ELSA not in (r.detail or "") for r in rows)


def test_search_rejects_what_is_not_a_valid_permanent_national_id(served):
    wrong_check = ELSA[:-1] + "J"
    temporary = "010594Y9986"  # individual number 998: a temporary id identifies nobody
    bad_date = "310294-123A"
    with served.client(**served.keys.header("portal")) as client:
        for body in (
            {"national_id": wrong_check},
            {"national_id": temporary},
            {"national_id": bad_date},
            {"national_id": "not an id"},
            {},
            {"national_id": ELSA, "name": "Elsa"},
        ):
            response = client.post("/residents/search", json=body)
            assert response.status_code == 422, (body, response.text)
            assert all(set(e) == {"loc", "msg", "type"} for e in response.json()["detail"])
            # The value sent is never echoed back, not even masked.
            assert ELSA[:6] not in response.text and "010594" not in response.text
        malformed = client.post(
            "/residents/search", content=b"{", headers={"Content-Type": "application/json"}
        )
    assert malformed.status_code == 422


def test_activities_across_islands(served, resident_ids):
    purpose = f"service history {uuid.uuid4()}"
    with served.client(**served.keys.header("portal"), **{"X-Purpose": purpose}) as client:
        anna = client.get(f"/residents/{resident_ids['anna']}/activities")
        elsa = client.get(f"/residents/{resident_ids['elsa']}/activities")
        nobody = client.get(f"/residents/{uuid.uuid4()}/activities")
    assert anna.status_code == 200
    assert anna.json() == {
        "resident_id": resident_ids["anna"],
        "activities": [
            {
                "type": "case",
                "system": "cases",
                "system_title": {
                    "sv": "Ärendehantering",
                    "fi": "Asianhallinta",
                    "en": "Case management",
                },
                "stream": "parties",
                "source_id": "1",
                "date": "2026-11-02",
                "title": "SIP/2026/117",
            }
        ],
    }
    assert elsa.status_code == 200 and elsa.json()["activities"] == []
    assert nobody.status_code == 404
    rows = served.audit_rows(purpose)
    assert [r.action for r in rows] == ["activities"] * 3


def test_unknown_and_malformed_ids(served):
    with served.client(**served.keys.header("portal")) as client:
        assert client.get(f"/residents/{uuid.uuid4()}").status_code == 404
        assert client.get("/residents/not-a-uuid").status_code == 404  # only ids route there
        wrong_method = client.get("/residents/search")
    assert wrong_method.status_code == 405 and wrong_method.headers["Allow"] == "POST"
