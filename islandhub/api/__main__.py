"""`python -m islandhub.api openapi > docs/openapi.json` (and `serve`), without make."""

from __future__ import annotations

import sys

from islandhub.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["api", *sys.argv[1:]]))
