"""Secrets by reference: `{secret: NAME}` in a config file is resolved at run time, never printed.

A resolved secret is a `Secret`: its repr and str are '***', so it cannot leak through a log
line, an error or an f-string by accident; code that needs the value calls `reveal()`.
Values come from the environment (`NAME`), or from the callers' own lookup (the Airflow
DAGs add Airflow variables and connections in front of it).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from islandhub.errors import ConfigError, Problem

Lookup = Callable[[str], str | None]


class Secret:
    """A secret value that prints as '***'."""

    __slots__ = ("_name", "_value")

    def __init__(self, name: str, value: str) -> None:
        self._name = name
        self._value = value

    @property
    def name(self) -> str:
        """The reference's name (safe to print)."""
        return self._name

    def reveal(self) -> str:
        """The value itself: only for the request that needs it."""
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def is_reference(value: Any) -> bool:
    """True for a `{secret: NAME}` reference."""
    return (
        isinstance(value, Mapping) and set(value) == {"secret"} and isinstance(value["secret"], str)
    )


def from_environment(name: str) -> str | None:
    """The default lookup: an environment variable of the same name."""
    return os.environ.get(name)


def resolve(config: Any, lookup: Lookup = from_environment, *, where: str = "connection") -> Any:
    """A copy of `config` with every `{secret: NAME}` replaced by a Secret; all missing listed."""
    missing: list[Problem] = []
    resolved = _resolve(config, lookup, where, missing)
    if missing:
        raise ConfigError(missing)
    return resolved


def _resolve(value: Any, lookup: Lookup, path: str, missing: list[Problem]) -> Any:
    if is_reference(value):
        name = value["secret"]
        found = lookup(name)
        if found is None:
            missing.append(
                Problem(
                    f"secret {name} is not set: export {name}=... in the environment "
                    "of the hub (or set an Airflow variable of that name)",
                    path=path,
                )
            )
            return None
        return Secret(name, found)
    if isinstance(value, Mapping):
        return {k: _resolve(v, lookup, f"{path}.{k}", missing) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, lookup, f"{path}[{i}]", missing) for i, v in enumerate(value)]
    return value


def reveal(value: Any) -> Any:
    """The plain value of a Secret; anything else as it is."""
    return value.reveal() if isinstance(value, Secret) else value
