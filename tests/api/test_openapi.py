"""The OpenAPI document: served at /openapi.json, kept in docs/openapi.json, the same bytes'
worth of JSON (regenerate: python -m islandhub.api openapi > docs/openapi.json)."""

from __future__ import annotations

import json
from pathlib import Path

from islandhub.api.serve import openapi_text

DOCS = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
REGENERATE = "regenerate it: .venv/bin/python -m islandhub.api openapi > docs/openapi.json"


def test_served_document_equals_the_one_in_docs(served):
    with served.client() as client:
        served_doc = client.get("/openapi.json").json()
    assert served_doc == json.loads(DOCS.read_text(encoding="utf-8")), REGENERATE
    assert openapi_text() == DOCS.read_text(encoding="utf-8"), REGENERATE


def test_every_operation_but_health_needs_credentials_and_says_so():
    document = json.loads(openapi_text())
    schemes = document["components"]["securitySchemes"]
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    assert schemes["APIKeyHeader"] == {
        "type": "apiKey",
        "description": "A client's API key (hub.yaml api.clients).",
        "in": "header",
        "name": "X-API-Key",
    }
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path == "/health":
                assert "security" not in operation
                continue
            assert operation["security"] == [{"HTTPBearer": []}, {"APIKeyHeader": []}], path
            assert "401" in operation["responses"], (method, path)


def test_the_gdpr_operations_follow_the_profile_s_contract():
    document = json.loads(openapi_text())
    gdpr = document["paths"]["/gdpr/{resident_id}"]
    assert gdpr["get"]["operationId"] == "getProfile"
    assert gdpr["delete"]["operationId"] == "deleteProfile"
    assert set(gdpr["get"]["responses"]) == {"200", "204", "400", "401"}
    assert set(gdpr["delete"]["responses"]) == {"204", "400", "401", "403"}
    assert gdpr["get"]["parameters"][0]["schema"]["format"] == "uuid"
    node = document["components"]["schemas"]["Node"]["properties"]
    assert node["value"] == {"type": "string", "title": "Value", "description": "Always a string."}
    assert node["children"]["items"] == {"$ref": "#/components/schemas/Node"}
