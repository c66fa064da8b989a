"""Serving the API with uvicorn: everything checked before a socket opens, every log line masked.

One worker serves the app object made here; more workers (`--workers N`) each build their
own from the environment (ISLANDHUB_PROJECT, ISLANDHUB_STORE_URL, the API key secrets),
which is how uvicorn starts worker processes.
"""

from __future__ import annotations

import copy
import errno
import json
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.config import LOGGING_CONFIG
from uvicorn.logging import AccessFormatter, DefaultFormatter

from islandhub.api.app import create_app
from islandhub.api.auth import Authenticator
from islandhub.api.context import ApiContext
from islandhub.api.settings import load_api_settings
from islandhub.config import PROJECT_ENV, find_project, load_project
from islandhub.errors import RunFailed
from islandhub.privacy import crypto
from islandhub.privacy.masking import mask_text
from islandhub.store import open_store


class MaskedDefaultFormatter(DefaultFormatter):
    """uvicorn's log lines, tracebacks included, with national ids masked."""

    def format(self, record: logging.LogRecord) -> str:  # noqa: D102
        return mask_text(super().format(record))


class MaskedAccessFormatter(AccessFormatter):
    """uvicorn's access log, masked: a client's mistake could put a national id in a URL."""

    def format(self, record: logging.LogRecord) -> str:  # noqa: D102
        return mask_text(super().format(record))


def log_config() -> dict[str, Any]:
    """Uvicorn's logging with masking formatters; the engine's warnings go the same way."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["default"]["()"] = f"{__name__}.MaskedDefaultFormatter"
    config["formatters"]["access"]["()"] = f"{__name__}.MaskedAccessFormatter"
    for name in ("islandhub", "connectors"):
        config["loggers"][name] = {"handlers": ["default"], "level": "WARNING", "propagate": False}
    return config


def build_context(root: str | Path | None) -> ApiContext:
    """Load the project, the API settings (keys, secrets) and open the store: exit 2 on errors."""
    project = load_project(find_project(root))
    settings = load_api_settings(project)
    crypto.use_project(project.root)  # the development national-id key, without the secret
    store = open_store(project.hub.store_url)
    return ApiContext(project, store, Authenticator(settings))


def app_from_environment() -> FastAPI:
    """Uvicorn's factory for each worker process (--workers N)."""
    return create_app(build_context(None))


def serve(root: str | Path | None, host: str, port: int, *, workers: int = 1) -> None:
    """Serve until interrupted."""
    context = build_context(root)
    _check_free(host, port)
    settings = context.authenticator.settings
    print(
        f"islandhub API on http://{host}:{port} ({len(settings.clients)} API client(s), "
        f"{len(settings.issuers)} token issuer(s), {workers} worker(s)); "
        f"OpenAPI at /openapi.json",
        file=sys.stderr,
    )
    if host not in ("127.0.0.1", "::1", "localhost"):
        print(
            "note: the API speaks plain HTTP; terminate TLS in front of it (docs/api.md)",
            file=sys.stderr,
        )
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": log_config(),
        "server_header": False,
        # uvicorn kills a worker that does not answer its supervisor's ping in time (5 s by
        # default): on a busy host a worker still starting was killed and restarted in a loop.
        "timeout_worker_healthcheck": 60,
    }
    if workers == 1:
        uvicorn.run(create_app(context), **options)
        return
    context.store.dispose()  # each worker opens its own
    os.environ[PROJECT_ENV] = str(context.project.root)
    uvicorn.run(f"{__name__}:app_from_environment", factory=True, workers=workers, **options)


def _check_free(host: str, port: int) -> None:
    # uvicorn would log the bind error and exit; say it the hub's way, with what to do.
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise RunFailed(f"{host}:{port} is in use: choose another --port") from None
            raise RunFailed(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def openapi_text() -> str:
    """The OpenAPI document as docs/openapi.json holds it."""
    return json.dumps(create_app().openapi(), indent=2, ensure_ascii=False) + "\n"
