"""What every demo island provides: its records (from the population), and where they are served.

An island is prepared once from the population (files written, a database filled, or
records held for a server), then started (servers bind 127.0.0.1) and stopped. Its
`connection()` gives the values that replace the system file's `connection` for this run,
so the same config/systems/<system>.yaml works on the fixed demo ports and in tests on
free ports and temporary folders.
"""

from __future__ import annotations

import random
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

from islandhub.demo.model import Population, TruthRow


class DemoIsland(ABC):
    """One simulated island: a system id, its records and truth, and how to reach it."""

    system: ClassVar[str]  # the system id of its config/systems/<system>.yaml
    title: ClassVar[str]  # one line for the demo summary
    default_port: ClassVar[int | None] = None  # fixed port for `islandhub demo serve`

    def __init__(self, population: Population, workdir: Path, seed: int) -> None:
        self.population = population
        self.workdir = workdir
        self.rng = random.Random(f"{seed}:{self.system}")
        self.truth: list[TruthRow] = []

    @abstractmethod
    def prepare(self) -> None:
        """Build the island's records from the population (write files, fill databases)."""

    def start(self, port: int | None = None) -> None:  # noqa: B027 - most islands serve nothing
        """Start serving (HTTP islands); file and database islands need nothing."""

    def stop(self) -> None:  # noqa: B027
        """Stop serving."""

    @abstractmethod
    def connection(self) -> dict[str, Any]:
        """The `connection` block that reaches this island now (after prepare/start).

        Secret values stay references (`{secret: NAME}`), as in the system file; the island
        gives their values in `secrets()`.
        """

    def secrets(self) -> dict[str, str]:
        """Values of the secrets its connection refers to (demo credentials only)."""
        return {}

    def add_truth(self, stream: str, source_id: str, entity_id: str) -> None:
        """Record which person (or organisation) a source record describes."""
        self.truth.append(TruthRow(self.system, stream, str(source_id), entity_id))


class HttpIsland(DemoIsland):
    """An island served over HTTP on 127.0.0.1 by a handler class of its own."""

    @abstractmethod
    def handler(self) -> type[BaseHTTPRequestHandler]:
        """The request handler class; it reaches the island as `self.server.island`."""

    def start(self, port: int | None = None) -> None:  # noqa: D102
        server = ThreadingHTTPServer(("127.0.0.1", port or 0), self.handler())
        server.daemon_threads = True
        server.island = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name=f"demo-{self.system}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:  # noqa: D102
        server = getattr(self, "_server", None)
        if server is not None:
            server.shutdown()
            server.server_close()

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:<port> of the running server."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"


IslandFactory = Callable[[Population, Path, int], DemoIsland]
