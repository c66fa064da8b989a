"""`islandhub api serve` as a process on loopback, and the errors it gives before it listens:
every `api:` mistake with file:line, path and what to do (exit 2), a busy port (exit 1)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from islandhub.cli import main
from islandhub.config import load_project
from islandhub.pipeline import sync
from islandhub.store import open_store
from tests.api.conftest import ELSA, api_section, key_environment, secret_name, write_api_project
from tests.api.test_openapi import DOCS

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def project(tmp_path, keys, monkeypatch):
    monkeypatch.delenv("ISLANDHUB_STORE_URL", raising=False)
    for name, value in key_environment(keys).items():
        monkeypatch.setenv(name, value)
    return write_api_project(tmp_path / "project", keys)


def _replace_api(root: Path, api: str) -> None:
    hub = root / "config" / "hub.yaml"
    text = hub.read_text(encoding="utf-8")
    hub.write_text(text[: text.index("api:\n")] + api, encoding="utf-8")


def test_serve_runs_as_a_process_until_interrupted(project, keys):
    loaded = load_project(project)
    store = open_store(loaded.hub.store_url)
    sync(loaded, store, sorted(loaded.systems))
    store.dispose()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "ISLANDHUB_STORE_URL"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "islandhub.cli",
            "--project",
            str(project),
            "api",
            "serve",
            "--port",
            str(port),
        ],
        env={**env, **key_environment(keys)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, server.communicate()[1][-2000:]
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the API did not come up"
            time.sleep(0.3)
        found = httpx.post(
            f"{url}/residents/search", json={"national_id": ELSA}, headers=keys.header("portal")
        )
        assert found.status_code == 200 and found.json()["record"]["given_name"] == "Elsa"
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=60)
    assert server.returncode == 0
    assert f"islandhub API on http://127.0.0.1:{port} (4 API client(s), 2 token issuer(s)" in err
    assert 'POST /residents/search HTTP/1.1" 200' in out  # the access log, on stdout
    for text in (out, err):
        assert ELSA not in text and all(key not in text for key in keys.api_keys.values())


def _client(key: str, scopes: str = "residents:read") -> str:
    return f"api:\n  clients:\n    portal: {{api_key: {key}, scopes: [{scopes}]}}\n"


def _issuer(extra: str) -> str:
    return "api:\n  issuers:\n    - issuer: https://op.example.fi\n      audience: hub\n" + extra


CASES = [
    pytest.param(
        _issuer("      jwks: config/keys/missing.jwks.json\n"),
        "config/hub.yaml:12:7 api.issuers[0].jwks: config/keys/missing.jwks.json: no such file",
        id="missing-jwks",
    ),
    pytest.param(
        _issuer("      keys: [config/keys/op.pem]\n      algorithms: [RS256]\n"),
        "config/hub.yaml:13:7 api.issuers[0].algorithms: no key of this issuer can verify RS256",
        id="algorithm-without-key",
    ),
    pytest.param(
        _issuer("      keys: [config/keys/private.pem]\n"),
        "api.issuers[0].keys[0]: config/keys/private.pem is a private key; give the public "
        "key only",
        id="private-key",
    ),
    pytest.param(
        _issuer(""),
        "config/hub.yaml:10:7 api.issuers[0]: give the issuer's public keys: jwks: FILE or "
        "keys: [PEM FILE, ...] (one of them)",
        id="no-keys",
    ),
    pytest.param(
        _client("{secret: UNSET_API_KEY}"),
        "config/hub.yaml:10:14 api.clients.portal.api_key: secret UNSET_API_KEY is not set",
        id="secret-not-set",
    ),
    pytest.param(
        _client("{secret: SHORT_API_KEY}"),
        "api.clients.portal.api_key: the key in SHORT_API_KEY is too short: at least 22",
        id="short-key",
    ),
    pytest.param(
        _client("abcdefabcdefabcdefabcdef"),
        "config/hub.yaml:10:14 api.clients.portal.api_key: api_key is a secret: write "
        "{secret: NAME}",
        id="literal-key",
    ),
    pytest.param(
        _client("{secret: X_KEY}", "residents:write"),
        "api.clients.portal.scopes[0]: 'residents:write' is not one of residents:read, "
        "residents:search, gdpr:query, gdpr:delete, status:read",
        id="unknown-scope",
    ),
    pytest.param(
        "api: {}\n",
        "config/hub.yaml:8:1 api: no issuers and no clients: nobody could call the API",
        id="nobody",
    ),
]


@pytest.mark.parametrize("api, message", CASES)
def test_api_settings_errors_name_file_line_and_path(
    project, keys, api, message, monkeypatch, capsys
):
    _replace_api(project, api)
    private = keys.ec.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (project / "config" / "keys" / "private.pem").write_bytes(private)
    monkeypatch.setenv("SHORT_API_KEY", "too-short")
    monkeypatch.delenv("UNSET_API_KEY", raising=False)
    code = main(["--project", str(project), "api", "serve", "--port", str(_free_port())])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in " ".join(err.split()), err
    assert "too-short" not in err and "abcdefabcdef" not in err


def test_a_busy_port_is_a_failed_run(project, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["--project", str(project), "api", "serve", "--port", str(port)])
    assert code == 1
    assert f"127.0.0.1:{port} is in use: choose another --port" in capsys.readouterr().err


def test_bad_arguments_exit_2(project, capsys):
    assert main(["--project", str(project), "api", "serve", "--port", "0"]) == 2
    assert main(["--project", str(project), "api", "serve", "--workers", "0"]) == 2
    assert "--port 0: a port is 1-65535" in capsys.readouterr().err


def test_openapi_command_prints_the_kept_document(capsys):
    assert main(["api", "openapi"]) == 0
    assert capsys.readouterr().out == DOCS.read_text(encoding="utf-8")


def test_the_api_section_is_valid_config_for_every_other_command(project):
    assert load_project(project).hub.api["clients"]["portal"]["api_key"] == {
        "secret": secret_name("portal")
    }
    assert "issuers:" in api_section()
