"""Authorization over HTTP: API keys, bearer JWTs from two issuers (RSA JWKS, EC PEM), scopes,
and what a rejected caller is told; the client and purpose each call leaves in the audit log."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.api.conftest import AUDIENCE, EC_ISSUER, RSA_ISSUER, RSA_KID


def _get(served, path, **headers):
    with served.client(**headers) as client:
        return client.get(path)


def _bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    "headers, reason",
    [
        ({}, "credentials are needed"),
        ({"X-API-Key": "not-a-key-of-anyone-here-at-all"}, "unknown API key"),
        ({"Authorization": "Basic cG9ydGFsOnNlY3JldA=="}, "must be 'Bearer <token>'"),
        ({"Authorization": "Bearer not.a.jwt"}, "not a JWT"),
    ],
)
def test_missing_or_unknown_credentials_are_401(served, resident_ids, headers, reason):
    response = _get(served, f"/residents/{resident_ids['elsa']}", **headers)
    assert response.status_code == 401
    assert reason in response.json()["detail"]
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="islandhub"')


def test_one_credential_at_a_time(served, resident_ids):
    token = served.keys.token("residents:read")
    headers = {**served.keys.header("portal"), **_bearer(token)}
    response = _get(served, f"/residents/{resident_ids['elsa']}", **headers)
    assert response.status_code == 401 and "not both" in response.json()["detail"]


def test_a_key_is_never_echoed(served, resident_ids):
    key = served.keys.api_keys["portal"][:-2] + "xx"
    response = _get(served, f"/residents/{resident_ids['elsa']}", **{"X-API-Key": key})
    assert response.status_code == 401 and key not in response.text


def test_scopes_per_purpose(served, resident_ids):
    rid = resident_ids["elsa"]
    ops, portal = served.keys.header("ops"), served.keys.header("portal")
    denied = _get(served, f"/residents/{rid}", **ops)
    assert denied.status_code == 403
    assert denied.json() == {"detail": "client 'ops' lacks the scope residents:read"}
    assert 'scope="residents:read"' in denied.headers["WWW-Authenticate"]
    assert _get(served, "/status", **portal).status_code == 403
    assert _get(served, "/status", **ops).status_code == 200
    with served.client(**ops) as client:
        search = client.post("/residents/search", json={"national_id": "131052-308T"})
    assert search.status_code == 403


def test_a_jwt_from_the_jwks_issuer_reads_and_the_client_is_the_actor(served, resident_ids):
    purpose = f"case work {uuid.uuid4()}"
    token = served.keys.token("openid residents:read", client="crm-backend")
    response = _get(
        served, f"/residents/{resident_ids['elsa']}", **_bearer(token), **{"X-Purpose": purpose}
    )
    assert response.status_code == 200
    [row] = served.audit_rows(purpose)
    assert (row.actor, row.action) == ("crm-backend", "read")


def test_scp_lists_are_scopes_too(served, resident_ids):
    token = served.keys.token(None, scp=["residents:read"])
    assert _get(served, f"/residents/{resident_ids['elsa']}", **_bearer(token)).status_code == 200


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"lifetime": -120}, "expired"),
        ({"aud": "another-service"}, "Audience"),
        ({"iss": "https://evil.example.com"}, "issuer is not trusted"),
        ({"azp": None, "sub": None}, "names no client"),
    ],
)
def test_tokens_that_do_not_verify_are_401(served, resident_ids, change, reason):
    claims = dict(change)  # the parameter is shared by both backends' runs: never mutate it
    lifetime = claims.pop("lifetime", 300)
    token = served.keys.token("residents:read", lifetime=lifetime, **claims)
    response = _get(served, f"/residents/{resident_ids['elsa']}", **_bearer(token))
    assert response.status_code == 401
    assert reason in response.json()["detail"]
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_forged_tokens_are_401(served, resident_ids):
    rid = resident_ids["elsa"]
    now = int(time.time())
    claims = {
        "iss": RSA_ISSUER,
        "aud": AUDIENCE,
        "azp": "x",
        "exp": now + 300,
        "scope": "residents:read",
    }
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = [
        jwt.encode(claims, other_key, algorithm="RS256", headers={"kid": RSA_KID}),
        jwt.encode(claims, other_key, algorithm="RS256", headers={"kid": "unknown-kid"}),
        # alg none, and a shared secret where the issuer signs with RSA: never accepted.
        jwt.encode(claims, None, algorithm="none"),
        jwt.encode(claims, "a shared secret, long enough for HS256 to sign", algorithm="HS256"),
    ]
    for token in forged:
        response = _get(served, f"/residents/{rid}", **_bearer(token))
        assert response.status_code == 401, response.text


def test_the_ec_issuer_only_grants_gdpr_scopes(served, resident_ids):
    rid = resident_ids["elsa"]
    wide = served.keys.token("residents:read gdpr:query", issuer="ec")
    assert _get(served, f"/residents/{rid}", **_bearer(wide)).status_code == 403
    assert _get(served, f"/gdpr/{rid}", **_bearer(wide)).status_code == 200


def test_a_pem_key_verifies_tokens_whatever_key_id_they_name(served, resident_ids):
    now = int(time.time())
    claims = {"iss": EC_ISSUER, "aud": AUDIENCE, "azp": "profile", "exp": now + 300}
    token = jwt.encode(
        {**claims, "scope": "gdpr:query"}, served.keys.ec, algorithm="ES256", headers={"kid": "k1"}
    )
    assert _get(served, f"/gdpr/{resident_ids['elsa']}", **_bearer(token)).status_code == 200


def test_purpose_header_is_read_as_utf8_and_masked(served, resident_ids):
    marker = uuid.uuid4().hex[:8]
    purpose = f"osoitteenmuutos – ändring av adress {marker} 131052-308T"
    with served.client(**served.keys.header("portal")) as client:
        response = client.get(
            f"/residents/{resident_ids['elsa']}",
            headers={"X-Purpose": purpose.encode("utf-8")},
        )
    assert response.status_code == 200
    [row] = served.audit_rows(f"osoitteenmuutos – ändring av adress {marker} 131052-***T")
    assert row.actor == "portal"


def test_without_a_purpose_the_scope_says_why(served, resident_ids):
    rid = resident_ids["ella"]
    assert _get(served, f"/residents/{rid}", **served.keys.header("portal")).status_code == 200
    rows = served.audit_rows("reading a resident's record through the API (residents:read)")
    assert any(r.resident_id == rid and r.actor == "portal" for r in rows)
    too_long = _get(
        served, f"/residents/{rid}", **served.keys.header("portal"), **{"X-Purpose": "x" * 256}
    )
    assert too_long.status_code == 422


def test_a_verified_token_is_remembered_until_it_expires(served, resident_ids, monkeypatch):
    from islandhub.api import auth

    authenticator = served.context.authenticator
    token = served.keys.token("residents:read", lifetime=60)
    assert _get(served, f"/residents/{resident_ids['elsa']}", **_bearer(token)).status_code == 200
    verified = []
    verify = authenticator._verify
    monkeypatch.setattr(authenticator, "_verify", lambda t: verified.append(t) or verify(t))
    caller = authenticator.bearer(token)
    assert (caller.client_id, verified) == ("portal-ui", [])  # not verified again
    # Past exp and the leeway (5 s here) the cached verdict is gone: verified anew.
    later = time.time() + 60 + 5 + 1
    monkeypatch.setattr(auth, "_now", lambda: later)
    authenticator.bearer(token)
    assert verified == [token]
