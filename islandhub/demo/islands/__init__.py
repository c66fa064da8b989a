"""The demo islands, found by looking: every DemoIsland subclass in this package's modules."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from islandhub.demo.islands.base import DemoIsland, HttpIsland


def all_islands() -> list[type[DemoIsland]]:
    """Every island class, ordered by system id."""
    found: dict[str, type[DemoIsland]] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(cls, DemoIsland)
                and cls not in (DemoIsland, HttpIsland)
                and not inspect.isabstract(cls)
            ):
                found[cls.system] = cls
    return [found[s] for s in sorted(found)]
