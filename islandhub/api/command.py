"""The `islandhub api` command: `serve` (uvicorn) and `openapi` (print the document).

Kept light: cli.py imports it for every command, so FastAPI and uvicorn load only when the
`api` command runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from islandhub.errors import ConfigError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8753  # Sipoo's municipality code, after 8: clear of Airflow's 8080


def add_commands(commands: Any) -> None:
    """`api serve` and `api openapi`."""
    api = commands.add_parser("api", help="the HTTP API: serve it, print its OpenAPI document")
    sub = api.add_subparsers(dest="api_command", required=True, metavar="ACTION")
    serve = sub.add_parser("serve", help="serve the API on the project's store (uvicorn)")
    serve.add_argument(
        "--host", default=DEFAULT_HOST, help=f"interface to listen on (default {DEFAULT_HOST})"
    )
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    serve.add_argument(
        "--workers", type=int, default=1, help="worker processes (default 1; about one per core)"
    )
    sub.add_parser("openapi", help="print the OpenAPI document (kept in docs/openapi.json)")


def cmd_api(args: argparse.Namespace) -> int:
    """`islandhub api serve|openapi`."""
    if args.api_command == "openapi":
        from islandhub.api.serve import openapi_text

        sys.stdout.write(openapi_text())
        return 0
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port {args.port}: a port is 1-65535")
    if args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: at least 1")
    from islandhub.api.serve import serve

    serve(args.project, args.host, args.port, workers=args.workers)
    return 0
