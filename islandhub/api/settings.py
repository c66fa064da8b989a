"""hub.yaml `api:` read into plain data: trusted token issuers with their keys, API clients.

    api:
      issuers:
        - issuer: https://login.example.fi/realms/helsinki-tunnistus
          audience: islandhub
          jwks: config/keys/tunnistus.jwks.json     # or keys: [config/keys/op.pem]
          algorithms: [RS256]                       # default RS256, ES256
          scopes: [gdpr:query, gdpr:delete]         # the most its tokens may grant
      clients:
        portal:
          api_key: {secret: ISLANDHUB_API_KEY_PORTAL}
          scopes: [residents:read, residents:search]
      leeway_seconds: 30

The schema (schemas/hub.schema.json) checks the shapes when any command loads the project.
The key files and secrets are read here, only when the API starts: a missing key file stops
the API with file:line errors, never a sync. Every problem is collected, then raised once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from islandhub import secrets
from islandhub.config import Project
from islandhub.errors import ConfigError, Problem
from islandhub.yamlsource import YamlDocument, load_yaml

SCOPES = ("residents:read", "residents:search", "gdpr:query", "gdpr:delete", "status:read")
DEFAULT_ALGORITHMS = ("RS256", "ES256")
DEFAULT_LEEWAY = 30
# A guessable key is no key: 128 bits at least (32 hex digits, 22 base64 characters).
MIN_KEY_LENGTH = 22
HUB_FILE = "config/hub.yaml"

PublicKey = RSAPublicKey | EllipticCurvePublicKey


@dataclass(frozen=True)
class VerificationKey:
    """One public key of an issuer, with its key id when the JWKS names one."""

    key: PublicKey
    kid: str | None = None

    def fits(self, algorithm: str) -> bool:
        """Whether this key can verify `algorithm` (RSA: RS*/PS*, EC: ES*)."""
        if isinstance(self.key, RSAPublicKey):
            return algorithm.startswith(("RS", "PS"))
        return algorithm.startswith("ES")


@dataclass(frozen=True)
class Issuer:
    """A trusted OAuth2 / OpenID provider."""

    issuer: str
    audience: tuple[str, ...]
    keys: tuple[VerificationKey, ...]
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    scopes: frozenset[str] = frozenset(SCOPES)
    client_claim: str | None = None


@dataclass(frozen=True)
class ApiClient:
    """A client calling with an API key. Only the key's SHA-256 is kept in memory."""

    client_id: str
    key_digest: bytes = field(repr=False)
    scopes: frozenset[str]


@dataclass(frozen=True)
class ApiSettings:
    """Who may call the API, parsed and with its keys loaded."""

    issuers: tuple[Issuer, ...] = ()
    clients: tuple[ApiClient, ...] = ()
    leeway_seconds: int = DEFAULT_LEEWAY


def key_digest(key: str) -> bytes:
    """What an API key is compared by: fixed length, so the comparison leaks no length."""
    return hashlib.sha256(key.encode("utf-8")).digest()


def load_api_settings(
    project: Project, lookup: secrets.Lookup = secrets.from_environment
) -> ApiSettings:
    """Read the project's `api:` settings: key files, secrets; raise ConfigError with all."""
    data = project.hub.api
    doc = _hub_document(project.root)
    problems: list[Problem] = []
    issuers = [
        issuer
        for i, spec in enumerate(data.get("issuers") or [])
        if (issuer := _issuer(project.root, doc, i, spec, problems)) is not None
    ]
    clients = [
        client
        for name, spec in (data.get("clients") or {}).items()
        if (client := _client(doc, name, spec, lookup, problems)) is not None
    ]
    if not problems and not issuers and not clients:
        problems.append(
            doc.problem(
                ("api",),
                "no issuers and no clients: nobody could call the API. Add api.clients "
                "(API keys) or api.issuers (bearer tokens); see docs/api.md",
            )
        )
    if problems:
        raise ConfigError(problems)
    leeway = int(data.get("leeway_seconds", DEFAULT_LEEWAY))
    return ApiSettings(tuple(issuers), tuple(clients), leeway)


def _hub_document(root: Path) -> YamlDocument:
    # Read again for the positions of `api:` (HubSettings keeps plain data only).
    path = root / HUB_FILE
    if path.is_file():
        return load_yaml(path, HUB_FILE)
    return YamlDocument(HUB_FILE, {}, {})


def _issuer(
    root: Path, doc: YamlDocument, index: int, spec: Mapping[str, Any], problems: list[Problem]
) -> Issuer | None:
    at = ("api", "issuers", index)
    keys: list[VerificationKey] = []
    before = len(problems)
    if "jwks" in spec:
        keys += _jwks_keys(root, doc, (*at, "jwks"), spec["jwks"], problems)
    for i, name in enumerate(spec.get("keys") or []):
        key = _pem_key(root, doc, (*at, "keys", i), name, problems)
        if key is not None:
            keys.append(VerificationKey(key))
    algorithms = tuple(spec.get("algorithms") or DEFAULT_ALGORITHMS)
    if keys and not any(k.fits(a) for k in keys for a in algorithms):
        message = f"no key of this issuer can verify {', '.join(algorithms)}"
        problems.append(doc.problem((*at, "algorithms"), message))
    if len(problems) > before:
        return None
    audience = spec["audience"]
    return Issuer(
        issuer=spec["issuer"],
        audience=(audience,) if isinstance(audience, str) else tuple(audience),
        keys=tuple(keys),
        algorithms=algorithms,
        scopes=frozenset(spec.get("scopes") or SCOPES),
        client_claim=spec.get("client_claim"),
    )


def _read(
    root: Path, doc: YamlDocument, at: tuple[Any, ...], name: str, problems: list[Problem]
) -> str | None:
    path = (root / name).resolve()
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        reason = "no such file" if isinstance(exc, FileNotFoundError) else exc.strerror
        problems.append(doc.problem(at, f"{name}: {reason} (paths are relative to {root})"))
        return None


def _jwks_keys(
    root: Path, doc: YamlDocument, at: tuple[Any, ...], name: str, problems: list[Problem]
) -> list[VerificationKey]:
    text = _read(root, doc, at, name, problems)
    if text is None:
        return []
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            raise ValueError("expected a JSON object with a list 'keys'")
        if any(isinstance(k, dict) and "d" in k for k in data["keys"]):
            # Private parts in a config folder are a leak waiting to happen: refuse them.
            raise ValueError("it holds a private key; give the issuer's public keys only")
        found = jwt.PyJWKSet.from_dict(data).keys
    except (ValueError, jwt.PyJWTError) as exc:
        problems.append(doc.problem(at, f"{name} is not a usable JWKS: {exc}"))
        return []
    keys = [
        VerificationKey(k.key, k.key_id)
        for k in found
        if isinstance(k.key, RSAPublicKey | EllipticCurvePublicKey)
    ]
    if not keys:
        problems.append(doc.problem(at, f"{name} holds no RSA or EC public key"))
    return keys


def _pem_key(
    root: Path, doc: YamlDocument, at: tuple[Any, ...], name: str, problems: list[Problem]
) -> PublicKey | None:
    text = _read(root, doc, at, name, problems)
    if text is None:
        return None
    if "PRIVATE KEY" in text:
        problems.append(doc.problem(at, f"{name} is a private key; give the public key only"))
        return None
    try:
        if "BEGIN CERTIFICATE" in text:
            key: Any = x509.load_pem_x509_certificate(text.encode()).public_key()
        else:
            key = load_pem_public_key(text.encode())
    except ValueError as exc:
        problems.append(doc.problem(at, f"{name} is not a PEM public key or certificate: {exc}"))
        return None
    if not isinstance(key, RSAPublicKey | EllipticCurvePublicKey):
        problems.append(doc.problem(at, f"{name}: only RSA and EC keys sign tokens here"))
        return None
    return key


def _client(
    doc: YamlDocument,
    name: str,
    spec: Mapping[str, Any],
    lookup: secrets.Lookup,
    problems: list[Problem],
) -> ApiClient | None:
    at = ("api", "clients", name, "api_key")
    try:
        resolved = secrets.resolve(spec["api_key"], lookup, where="api_key")
    except ConfigError as exc:
        problems.extend(doc.problem(at, p.message) for p in exc.problems)
        return None
    key = secrets.reveal(resolved)
    if len(key) < MIN_KEY_LENGTH:
        reference = spec["api_key"]["secret"]
        message = (
            f"the key in {reference} is too short: at least {MIN_KEY_LENGTH} random characters "
            '(e.g. python -c "import secrets; print(secrets.token_urlsafe(32))")'
        )
        problems.append(doc.problem(at, message))
        return None
    return ApiClient(name, key_digest(key), frozenset(spec["scopes"]))
