"""Fixtures of the hostile-input suite: one migrated store template and the fuzz project."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile.harness import Hub, migrated_store


@pytest.fixture(scope="session")
def store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite store; each example copies it (migrating costs seconds)."""
    return migrated_store(tmp_path_factory.mktemp("hostile-store") / "template.db")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, store_template: Path) -> Hub:
    """The fuzz project: one island per format, each with the mapping of harness.MAPPING."""
    return Hub.create(tmp_path_factory.mktemp("hostile-project"), store_template)
