"""Fixtures of the quality tests: a small demo reviewed and reported once, and a headless Chromium.

Chromium comes from Debian's `chromium` package. When /usr/bin/chromium is missing, the
session installs it (`apt-get update && apt-get install -y chromium`, as root); where that
is impossible the browser test is skipped with the reason, and fails under CI=true.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
INSTALL = "apt-get update && apt-get install -y chromium"


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The demo's summary for 300 residents: synced, resolved, reviewed, its report written."""
    from islandhub.demo.runner import run_demo

    workdir = tmp_path_factory.mktemp("quality-demo") / "demo"
    return run_demo(REPO, residents=300, seed=7, workdir=workdir)


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Headless Chromium, installed on first use where the session may."""
    if not CHROMIUM.exists():
        problem = _install()
        if problem:
            if os.environ.get("CI") == "true":
                pytest.fail(f"Chromium is required under CI=true: {problem}")
            pytest.skip(problem)
    return CHROMIUM


def _install() -> str | None:
    """Install Debian's chromium; the reason it could not be, or None."""
    if shutil.which("apt-get") is None:
        return f"{CHROMIUM} is missing and there is no apt-get to install it with"
    if os.geteuid() != 0:
        return f"{CHROMIUM} is missing; install it as root: {INSTALL}"
    done = subprocess.run(
        ["sh", "-c", INSTALL], capture_output=True, text=True, timeout=1800, check=False
    )
    if done.returncode != 0 or not CHROMIUM.exists():
        return f"`{INSTALL}` failed: {done.stderr.strip()[-500:]}"
    return None
