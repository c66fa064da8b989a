"""Fixtures of the crash trials: the uninterrupted reference of each kind, a bytecode cache."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from islandhub.config import load_project
from islandhub.pipeline import sync
from islandhub.store import open_store
from tests.crash.harness import Facts, Progress, collect
from tests.crash.islands import World, world


@dataclass(frozen=True)
class Reference:
    """An uninterrupted two-phase run of a kind's project: what every trial must end with."""

    store_url: str
    facts: Facts
    landed: tuple[int, int]  # what each phase landed (sequence numbers, all streams)
    settled: Facts  # after one more sync, which finds nothing new


def sync_in_process(world: World, store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An uninterrupted `sync --all`, in this process (the engine call the CLI makes)."""
    for name, value in world.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ISLANDHUB_STORE_URL", store_url)
    monkeypatch.setenv("ISLANDHUB_WORKERS", "0")  # no fork beside the islands' threads
    project = load_project(world.root)
    store = open_store(project.hub.store_url)
    try:
        results = sync(project, store, sorted(project.systems))
    finally:
        store.dispose()
    failed = [(r.system, r.stream, r.status, r.error) for r in results if r.status != "succeeded"]
    assert failed == [], failed


def landed(store_url: str) -> int:
    """Sequence numbers landed so far, all streams."""
    watcher = Progress(store_url)
    try:
        return watcher.read()[0]
    finally:
        watcher.close()


@pytest.fixture(scope="session")
def _references() -> dict[tuple[str, bool], Reference]:
    return {}


@pytest.fixture
def reference_for(
    _references: dict[tuple[str, bool], Reference],
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[str, str | None], Reference]:
    """The reference of a kind (its island in PostgreSQL when a URL is given), made once."""

    def get(kind: str, pg_url: str | None) -> Reference:
        key = (kind, pg_url is not None)
        if key not in _references:
            folder = tmp_path_factory.mktemp(f"reference-{kind}")
            url = f"sqlite:///{folder / 'reference.db'}"
            with world(kind, folder / "project", pg_url=pg_url) as island:
                sync_in_process(island, url, monkeypatch)
                first = landed(url)
                island.change()
                sync_in_process(island, url, monkeypatch)
                second = landed(url) - first
                facts = collect(url)
                sync_in_process(island, url, monkeypatch)
            _references[key] = Reference(url, facts, (first, second), collect(url))
        return _references[key]

    return get


@pytest.fixture(scope="session")
def pycache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the killed and re-run processes keep their bytecode (outside the source tree)."""
    return tmp_path_factory.mktemp("pycache")
