"""The API served by uvicorn on loopback, against the sample project synced on each backend.

The sample project (register + school) gets one more island for the API to show: a small
case system in SQLite (the SQL connector), whose parties are activities and whose open cases
hold an erasure. Two token issuers (an RSA JWKS, an EC PEM key) and four API clients are
configured in hub.yaml the way a municipality would; the keys are made here, per session.
One server per backend serves the whole package: tests that change data (an erasure) use a
person no other test reads.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import sqlalchemy as sa
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from islandhub.api.app import create_app
from islandhub.api.auth import Authenticator
from islandhub.api.context import ApiContext
from islandhub.api.settings import load_api_settings
from islandhub.config import Project, load_project
from islandhub.pipeline import sync
from islandhub.residents import find_by_national_id
from islandhub.store import Store, open_store
from islandhub.store.tables import audit_log
from tests.conftest import SAMPLE_PROJECT, _pg_schema_url

ANNA = "120378-234U"  # party of an open case: erasure refused
MIKKO = "041181-356U"  # party of a closed case: erasure allowed (and done, in one test)
ELSA = "230612A457H"  # in the register and at school
ELLA = "020216B273U"  # non-disclosure order (turvakielto)
UNKNOWN = "100594-2349"  # valid and permanent, and nobody here (DVV's test codes are 9xx)

RSA_ISSUER = "https://login.example.fi/realms/helsinki-tunnistus"
EC_ISSUER = "https://op.example.fi"
AUDIENCE = "islandhub-test"
RSA_KID = "hub-test-rsa-1"

CLIENTS = {
    "portal": ["residents:read", "residents:search"],
    "ops": ["status:read"],
    "registry": ["residents:read", "gdpr:query", "gdpr:delete"],
    "fuzzer": ["residents:read", "residents:search", "gdpr:query", "gdpr:delete", "status:read"],
}

CASES_MAPPING = """\
source: cases.parties
entity: resident
id: id
fields:
  national_id: {from: hetu, use: [strip, upper, hetu]}
  given_name:  {from: nimi, use: [collapse_spaces, {name: {part: given, order: family_first}}]}
  family_name: {from: nimi, use: [collapse_spaces, {name: {part: family, order: family_first}}]}
"""
CASES_SYSTEM = """\
system: cases
title: {sv: Ärendehantering, fi: Asianhallinta, en: Case management}
owner: {name: Hallinto, email: registry@example.fi}
connector: sql
schedule: null
connection: {url: "sqlite:///cases/cases.db"}
streams:
  parties:
    mapping: mappings/cases/parties.yaml
    table: osapuolet
    id: id
    erase:
      table: osapuolet
      key: id
      holds:
        - where: "asia_tila = 'vireillä'"
          code: OPEN_CASE
          message:
            fi: Asia on vielä käsittelyssä
            sv: Ärendet är ännu under behandling
            en: The case is still open
    activity: {type: case, date: muokattu, title: diaarinumero}
"""
PARTIES = [
    (1, ANNA, "Lindqvist Anna", "SIP/2026/117", "vireillä", "2026-11-02"),
    (2, MIKKO, "Virtanen Mikko", "SIP/2025/031", "ratkaistu", "2025-03-14"),
    (3, ELLA, "Nieminen Ella", "SIP/2026/140", "ratkaistu", "2026-10-01"),
]


@dataclass
class Keys:
    """The test issuers' signing keys and the API clients' keys."""

    # Kept out of repr: a failing test's report must not print a key.
    rsa: rsa.RSAPrivateKey = field(repr=False)
    ec: ec.EllipticCurvePrivateKey = field(repr=False)
    api_keys: dict[str, str] = field(repr=False)

    def token(
        self,
        scopes: str | None = None,
        *,
        issuer: str = "rsa",
        client: str = "portal-ui",
        lifetime: int = 300,
        **claims: Any,
    ) -> str:
        """A signed JWT as the named issuer would give it."""
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": RSA_ISSUER if issuer == "rsa" else EC_ISSUER,
            "aud": AUDIENCE,
            "azp": client,
            "sub": "f611424a-9668-435e-8473-1501c4d67af5",
            "iat": now,
            "exp": now + lifetime,
            **claims,
        }
        if scopes is not None:
            body["scope"] = scopes
        body = {name: value for name, value in body.items() if value is not None}  # None: leave out
        if issuer == "rsa":
            return jwt.encode(body, self.rsa, algorithm="RS256", headers={"kid": RSA_KID})
        return jwt.encode(body, self.ec, algorithm="ES256")

    def header(self, client: str) -> dict[str, str]:
        """The X-API-Key header of a configured client."""
        return {"X-API-Key": self.api_keys[client]}


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys(
        rsa=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ec=ec.generate_private_key(ec.SECP256R1()),
        api_keys={name: secrets.token_urlsafe(32) for name in CLIENTS},
    )


def secret_name(client: str) -> str:
    return f"ISLANDHUB_TEST_API_KEY_{client.upper()}"


def write_api_project(root: Path, keys: Keys) -> Path:
    """The sample project plus the case island, key files and an `api:` section."""
    for folder in ("config", "mappings", "samples"):
        shutil.copytree(SAMPLE_PROJECT / folder, root / folder)
    (root / "mappings" / "cases").mkdir()
    (root / "mappings" / "cases" / "parties.yaml").write_text(CASES_MAPPING, encoding="utf-8")
    (root / "config" / "systems" / "cases.yaml").write_text(CASES_SYSTEM, encoding="utf-8")
    (root / "cases").mkdir()
    with sqlite3.connect(root / "cases" / "cases.db") as db:
        db.execute(
            "CREATE TABLE osapuolet (id INTEGER PRIMARY KEY, hetu TEXT, nimi TEXT, "
            "diaarinumero TEXT, asia_tila TEXT, muokattu TEXT)"
        )
        db.executemany("INSERT INTO osapuolet VALUES (?, ?, ?, ?, ?, ?)", PARTIES)
    write_keys(root / "config" / "keys", keys)
    hub = (root / "config" / "hub.yaml").read_text(encoding="utf-8")
    (root / "config" / "hub.yaml").write_text(hub + api_section(), encoding="utf-8")
    return root


def write_keys(folder: Path, keys: Keys) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(keys.rsa.public_key()))
    jwks = {"keys": [{**jwk, "kid": RSA_KID, "use": "sig", "alg": "RS256"}]}
    (folder / "tunnistus.jwks.json").write_text(json.dumps(jwks), encoding="utf-8")
    pem = keys.ec.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (folder / "op.pem").write_bytes(pem)


def api_section() -> str:
    clients = "".join(
        f"    {name}:\n      api_key: {{secret: {secret_name(name)}}}\n"
        f"      scopes: [{', '.join(scopes)}]\n"
        for name, scopes in CLIENTS.items()
    )
    return (
        "api:\n"
        "  issuers:\n"
        f"    - issuer: {RSA_ISSUER}\n"
        f"      audience: {AUDIENCE}\n"
        "      jwks: config/keys/tunnistus.jwks.json\n"
        "      algorithms: [RS256]\n"
        f"    - issuer: {EC_ISSUER}\n"
        f"      audience: [other-service, {AUDIENCE}]\n"
        "      keys: [config/keys/op.pem]\n"
        "      algorithms: [ES256]\n"
        "      scopes: [gdpr:query, gdpr:delete]\n"
        "  clients:\n" + clients + "  leeway_seconds: 5\n"
    )


def key_environment(keys: Keys) -> dict[str, str]:
    return {secret_name(name): key for name, key in keys.api_keys.items()}


@dataclass
class Served:
    """A running API and what it serves."""

    url: str
    project: Project
    store: Store
    keys: Keys
    backend: str
    ids: dict[str, str]
    context: ApiContext

    def client(self, **headers: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def audit_rows(self, purpose: str) -> list[Any]:
        with self.store.connect() as conn:
            return conn.execute(
                sa.select(audit_log).where(audit_log.c.purpose == purpose).order_by(audit_log.c.id)
            ).all()


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test process keeps its own handlers
        pass


@pytest.fixture(scope="package", params=["sqlite", "postgresql"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, keys: Keys
) -> Iterator[Served]:
    """The API on a free loopback port, serving the synced project on one backend."""
    root = write_api_project(tmp_path_factory.mktemp(f"api-{request.param}") / "project", keys)
    urls: Iterator[str]
    if request.param == "sqlite":
        urls = iter([f"sqlite:///{root / 'var' / 'islandhub.db'}"])
    else:
        urls = _pg_schema_url(request.getfixturevalue("pg_base_url"))
    store_url = next(urls)
    try:
        project = load_project(root, environ={"ISLANDHUB_STORE_URL": store_url})
        store = open_store(project.hub.store_url)
        results = sync(project, store, sorted(project.systems))
        assert all(r.status == "succeeded" for r in results), [r.as_dict() for r in results]
        settings = load_api_settings(project, key_environment(keys).get)
        context = ApiContext(project, store, Authenticator(settings))
        app = create_app(context)
        with _serving(app) as url:
            yield Served(url, project, store, keys, request.param, _resident_ids(store), context)
        context.close()  # what the app's shutdown does (the lifespan is off here)
        store.dispose()
    finally:
        next(urls, None)  # drops the PostgreSQL schema


@contextlib.contextmanager
def _serving(app: Any) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = _Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


PEOPLE = {"anna": ANNA, "mikko": MIKKO, "elsa": ELSA, "ella": ELLA}


def _resident_ids(store: Store) -> dict[str, str]:
    # Looked up once, right after the sync: a test may erase one of them later.
    with store.connect() as conn:
        found = {name: find_by_national_id(conn, hetu) for name, hetu in PEOPLE.items()}
    assert all(found.values()), "the sample project lost a person"
    return {name: str(rid) for name, rid in found.items()}


@pytest.fixture
def resident_ids(served: Served) -> dict[str, str]:
    """Resident ids by first name (never keyed by national id: reports print dicts)."""
    return served.ids
