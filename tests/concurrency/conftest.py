"""The environment of the `islandhub` processes these tests start, with a bytecode cache."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest


@pytest.fixture(scope="session")
def process_env(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., dict[str, str]]:
    """This process's environment plus `extra`, for a started `islandhub` process.

    The test environment sets PYTHONDONTWRITEBYTECODE, so without a cache every process
    compiles the hub and its libraries (Great Expectations, Splink) again: most of a short
    run's time on this machine. The cache lives outside the source tree. The national-id key
    (tests/conftest.py) is inherited, so processes and this one seal alike.
    """
    cache = tmp_path_factory.getbasetemp() / "islandhub-pycache"
    cache.mkdir(exist_ok=True)

    def environment(**extra: str) -> dict[str, str]:
        env = {**os.environ, **extra, "PYTHONPYCACHEPREFIX": str(cache)}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.pop("ISLANDHUB_WORKERS", None)  # no extract worker forked
        return env

    return environment
