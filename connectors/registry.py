"""Finds connector kinds registered under the entry-point group `islandhub.connectors`."""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from connectors.base import Connector
from islandhub.errors import ConfigError, Problem

GROUP = "islandhub.connectors"


@cache
def _entry_points() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def known_kinds() -> list[str]:
    """Names of every installed connector kind."""
    return sorted(_entry_points())


def connector_class(kind: str) -> type[Connector]:
    """Load the class of a connector kind, or fail naming the kinds that exist."""
    ep = _entry_points().get(kind)
    if ep is None:
        raise ConfigError(
            [Problem(f"unknown connector kind {kind!r}; known kinds: {', '.join(known_kinds())}")]
        )
    cls = ep.load()  # type: ignore[attr-defined]
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise ConfigError([Problem(f"entry point {kind!r} does not name a Connector class")])
    return cls
