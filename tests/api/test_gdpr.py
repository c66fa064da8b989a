"""The GDPR API as open-city-profile calls it: the data tree, 204 for nobody, DELETE with dry_run
refused by an open case in three languages or allowed, and a real erasure in the case island."""

from __future__ import annotations

import re
import sqlite3
import uuid

import pytest

from tests.api.conftest import ANNA, ELLA, MIKKO

KEY = re.compile(r"^[A-Z][A-Z0-9_]*$")


def _walk(node, path=()):
    """Every node of the tree with its path of keys."""
    here = (*path, node["key"])
    yield here, node
    for child in node.get("children", []):
        yield from _walk(child, here)


def _child(node, key):
    [found] = [c for c in node["children"] if c["key"] == key]
    return found


def _keycloak(served, *scopes):
    """A token as Helsinki's profile sends it: scopes in authorization.permissions."""
    return {
        "Authorization": "Bearer "
        + served.keys.token(
            None,
            issuer="ec",
            client="helsinki-profile",
            authorization={"permissions": [{"scopes": list(scopes)}, {"rsname": "x"}]},
        )
    }


@pytest.mark.reveals_national_ids  # the GET is the person's own data, national id in full
def test_get_returns_the_person_s_data_as_a_key_children_tree(served, resident_ids):
    purpose = f"profile download {uuid.uuid4()}"
    with served.client(**served.keys.header("registry"), **{"X-Purpose": purpose}) as client:
        response = client.get(f"/gdpr/{resident_ids['anna']}")
    assert response.status_code == 200
    tree = response.json()
    assert tree["key"] == "RESIDENT"
    for path, node in _walk(tree):
        assert KEY.match(node["key"]), path
        assert set(node) in ({"key", "value"}, {"key", "children"}), path
        assert isinstance(node.get("value", ""), str), path
    top = [c["key"] for c in tree["children"]]
    assert top == ["RESIDENT_ID", "RECORD", "SOURCE_RECORDS", "ACTIVITIES", "ACCESSES"]
    assert _child(tree, "RESIDENT_ID")["value"] == resident_ids["anna"]
    record = _child(tree, "RECORD")
    assert _child(record, "NATIONAL_ID")["value"] == ANNA  # her own id, in full
    assert _child(record, "GIVEN_NAME")["value"] == "Anna Maria"
    assert _child(record, "NON_DISCLOSURE")["value"] == "false"
    address = _child(_child(record, "ADDRESSES"), "ADDRESS")
    assert _child(address, "STREET")["value"] == "Iso Kylätie 12"
    sources = _child(tree, "SOURCE_RECORDS")["children"]
    assert {s["key"] for s in sources} == {"SOURCE_RECORD"}
    systems = sorted(_child(s, "SYSTEM")["value"] for s in sources)
    assert systems == ["cases", "population"]
    register = next(s for s in sources if _child(s, "SYSTEM")["value"] == "population")
    payload = _child(register, "PAYLOAD")
    assert _child(payload, "HENKILOTUNNUS")["value"] == ANNA
    assert _child(_child(payload, "VAKINAINEN_OSOITE"), "KATUOSOITE_R")["value"] == (
        "Stora Byvägen 12"
    )
    [activity] = _child(tree, "ACTIVITIES")["children"]
    assert activity["key"] == "ACTIVITY"
    assert _child(activity, "TITLE")["value"] == "SIP/2026/117"
    accesses = _child(tree, "ACCESSES")["children"]
    assert all({c["key"] for c in a["children"]} == {"AT", "ACTION", "PURPOSE"} for a in accesses)
    [row] = served.audit_rows(purpose)
    assert (row.actor, row.action) == ("registry", "export")


@pytest.mark.reveals_national_ids
def test_a_person_under_a_non_disclosure_order_gets_their_own_address(served, resident_ids):
    with served.client(**served.keys.header("registry")) as client:
        response = client.get(f"/gdpr/{resident_ids['ella']}")
    assert response.status_code == 200
    record = _child(response.json(), "RECORD")
    assert _child(record, "NATIONAL_ID")["value"] == ELLA
    assert _child(record, "NON_DISCLOSURE")["value"] == "true"
    assert "Mossentie 3 B 7" in response.text


def test_get_of_nobody_is_204(served):
    with served.client(**served.keys.header("registry")) as client:
        response = client.get(f"/gdpr/{uuid.uuid4()}")
    assert response.status_code == 204 and response.content == b""


def test_keycloak_permission_scopes_and_401_for_every_failed_authorization(served, resident_ids):
    rid = resident_ids["elsa"]
    with served.client() as client:
        query = client.get(f"/gdpr/{rid}", headers=_keycloak(served, "gdprquery"))
        assert query.status_code == 200
        # gdprdelete does not read; the contract says 401, not 403, for any failed check.
        assert (
            client.get(f"/gdpr/{rid}", headers=_keycloak(served, "gdprdelete")).status_code == 401
        )
        assert client.get(f"/gdpr/{rid}").status_code == 401
        portal = client.get(f"/gdpr/{rid}", headers=served.keys.header("portal"))
        assert portal.status_code == 401
        assert 'error="insufficient_scope"' in portal.headers["WWW-Authenticate"]
        delete = client.delete(
            f"/gdpr/{rid}", params={"dry_run": "true"}, headers=_keycloak(served, "gdprquery")
        )
        assert delete.status_code == 401


def test_parameters_that_fail_validation_are_400(served):
    with served.client(**served.keys.header("registry")) as client:
        assert client.get("/gdpr/not-a-uuid").status_code == 400
        bad = client.delete(f"/gdpr/{uuid.uuid4()}", params={"dry_run": "perhaps"})
    assert bad.status_code == 400 and bad.json()["detail"][0]["loc"] == ["query", "dry_run"]


def test_dry_run_refused_by_an_open_case_in_three_languages(served, resident_ids):
    rid = resident_ids["anna"]
    purpose = f"erasure request {uuid.uuid4()}"
    headers = {**_keycloak(served, "gdprdelete"), "X-Purpose": purpose}
    with served.client(**headers) as client:
        dry = client.delete(f"/gdpr/{rid}", params={"dry_run": "true"})
        real = client.delete(f"/gdpr/{rid}")
    for response in (dry, real):
        assert response.status_code == 403
        assert response.json() == {
            "errors": [
                {
                    "code": "OPEN_CASE",
                    "message": {
                        "fi": "Asia on vielä käsittelyssä",
                        "sv": "Ärendet är ännu under behandling",
                        "en": "The case is still open",
                    },
                }
            ]
        }
    with served.client(**served.keys.header("portal")) as client:
        assert client.get(f"/residents/{rid}").status_code == 200  # nothing was deleted
    actions = [(r.actor, r.action) for r in served.audit_rows(purpose)]
    assert actions == [("helsinki-profile", "erase-dry-run"), ("helsinki-profile", "erase-request")]


def test_erasure_allowed_then_done_in_the_hub_and_the_case_island(served, resident_ids):
    rid = resident_ids["mikko"]
    cases_db = served.project.root / "cases" / "cases.db"
    purpose = f"erasure request {uuid.uuid4()}"
    with served.client(**served.keys.header("registry"), **{"X-Purpose": purpose}) as client:
        dry = client.delete(f"/gdpr/{rid}", params={"dry_run": "true"})
        assert dry.status_code == 204 and dry.content == b""
        assert client.get(f"/residents/{rid}").status_code == 200  # a dry run deletes nothing
        done = client.delete(f"/gdpr/{rid}", params={"dry_run": "false"})
        assert done.status_code == 204
        assert client.get(f"/residents/{rid}").status_code == 404
        assert client.get(f"/gdpr/{rid}").status_code == 204
        again = client.delete(f"/gdpr/{rid}")
        assert again.status_code == 204  # nothing held any more: still "done"
    with sqlite3.connect(cases_db) as db:
        assert db.execute("SELECT count(*) FROM osapuolet WHERE hetu = ?", (MIKKO,)).fetchone() == (
            0,
        )
    actions = [r.action for r in served.audit_rows(purpose)]
    assert actions[:4] == ["erase-dry-run", "read", "erase-request", "erase"]


def test_delete_of_nobody_is_204(served):
    with served.client(**served.keys.header("registry")) as client:
        response = client.delete(f"/gdpr/{uuid.uuid4()}", params={"dry_run": "true"})
    assert response.status_code == 204
