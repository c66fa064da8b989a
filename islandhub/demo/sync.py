"""Syncing a demo island through the real pipeline, with its connection of this run."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from islandhub.config import HubSettings, Project, load_system_file
from islandhub.demo.islands.base import DemoIsland
from islandhub.pipeline import Progress, StreamResult, make_connector, sync_stream
from islandhub.store import Store


def sync_island(
    root: Path, hub: HubSettings, store: Store, island: DemoIsland, progress: Progress | None = None
) -> list[StreamResult]:
    """Sync every stream of the island's system file, reaching the island where it runs now."""
    system = load_system_file(root, island.system)
    system = replace(system, connection=island.connection())
    project = Project(root, hub, {system.system: system})
    demo_secrets = island.secrets()

    def lookup(name: str) -> str | None:
        return demo_secrets.get(name) or os.environ.get(name)

    connector = make_connector(project, system, lookup)
    report = progress or (lambda _event, _data: None)
    return [
        sync_stream(project, store, connector, system, stream, progress=report)
        for stream in system.streams.values()
    ]
