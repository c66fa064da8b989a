"""A small demo archipelago, synced once per session, and the matching model trained on it.

Tests of steward decisions and deterministic rules need a trained model, and the sample
project is too small to train one: the model is trained on 300 demo residents and stored
into whichever store a test uses. Tests that change the demo store itself take a copy.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from islandhub.config import HubSettings
from islandhub.demo.population import generate
from islandhub.demo.runner import running_islands
from islandhub.demo.sync import sync_island
from islandhub.resolve.matching import TrainedModel, frame_from_store, train
from islandhub.resolve.settings import load_settings
from islandhub.store import Store, open_store

REPO = Path(__file__).resolve().parents[2]
SMALL_DEMO = 300  # residents: enough pairs to train, a few seconds to sync
SEED = 21


@dataclass(frozen=True)
class SmallDemo:
    """The synced demo store (deterministic links only, no model in it) and a model."""

    database: Path
    model: TrainedModel
    hub: HubSettings

    def copy(self, folder: Path) -> Store:
        """A store of its own with the demo's content (SQLite's online backup)."""
        target = folder / "demo.db"
        with (
            closing(sqlite3.connect(self.database)) as source,
            closing(sqlite3.connect(target)) as copy,
        ):
            source.backup(copy)
        return open_store(f"sqlite:///{target}")


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory: pytest.TempPathFactory) -> SmallDemo:
    """300 demo residents synced through the real pipeline, and a model trained on them."""
    workdir = tmp_path_factory.mktemp("small_demo")
    database = workdir / "hub.db"
    store = open_store(f"sqlite:///{database}")
    hub = HubSettings(store_url=str(store.engine.url), priority=("population",))
    with running_islands(generate(SMALL_DEMO, SEED), workdir, SEED) as islands:
        for island in islands:
            sync_island(REPO, hub, store, island)
    model = train(frame_from_store(store), load_settings(REPO))
    store.dispose()
    return SmallDemo(database, model, hub)
