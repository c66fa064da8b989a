"""`islandhub connector new` writes files whose test passes as generated, and never overwrites."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from islandhub.cli import main


@pytest.mark.parametrize("kind", ["rest", "python"])
def test_a_new_island_passes_its_generated_test(sample_project, monkeypatch, capsys, kind):
    monkeypatch.setenv("ISLANDHUB_PROJECT", str(sample_project))
    assert main(["connector", "new", "harbour", "--kind", kind]) == 0
    written = capsys.readouterr().out
    assert "wrote config/systems/harbour.yaml" in written
    assert "wrote tests/islands/test_harbour.py" in written
    assert main(["mapping", "check", str(sample_project / "mappings/harbour/persons.yaml")]) == 0
    env = {**os.environ, "ISLANDHUB_PROJECT": str(sample_project)}
    env.pop("ISLANDHUB_STORE_URL", None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(sample_project / "tests/islands"),
        ],
        cwd=sample_project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed" in result.stdout


def test_existing_files_are_never_overwritten(sample_project, monkeypatch, capsys):
    monkeypatch.setenv("ISLANDHUB_PROJECT", str(sample_project))
    assert main(["connector", "new", "school", "--kind", "rest"]) == 2
    assert "config/systems/school.yaml exists already; not overwritten" in capsys.readouterr().err


def test_a_bad_name_is_bad_input(sample_project, monkeypatch, capsys):
    monkeypatch.setenv("ISLANDHUB_PROJECT", str(sample_project))
    assert main(["connector", "new", "Harbour", "--kind", "rest"]) == 2
    assert "'Harbour' is not a system id" in capsys.readouterr().err
