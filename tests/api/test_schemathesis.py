"""schemathesis against the running API's own OpenAPI document: every check, no failures.

Runs the schemathesis CLI as a child process against the server on loopback (SQLite only:
the document and the handlers are the same on both backends, and the machine is shared).
A bounded number of examples per operation keeps it to about a minute.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.mark.slow
def test_schemathesis_finds_nothing(served, resident_ids, tmp_path):
    if served.backend != "sqlite":
        pytest.skip("run once, on SQLite")
    schemathesis = Path(sys.executable).with_name("schemathesis")
    env = {
        **os.environ,
        "ISLANDHUB_SCHEMATHESIS_API_KEY": served.keys.api_keys["fuzzer"],
        "ISLANDHUB_SCHEMATHESIS_RESIDENT_ID": resident_ids["anna"],
        "NO_COLOR": "1",
    }
    result = subprocess.run(
        [
            str(schemathesis),
            "--config-file",
            str(HERE / "schemathesis.toml"),
            "run",
            f"{served.url}/openapi.json",
            "--checks",
            "all",
            "--report-dir",
            str(tmp_path / "report"),
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    summary = result.stdout[-6000:]
    assert result.returncode == 0, summary
    assert "No issues found" in result.stdout or " passed" in result.stdout, summary
