"""Shared fixtures: a store on every backend, and a copy of the sample project to run against.

Store tests run on SQLite and on PostgreSQL (STYLE: one test, every backend). PostgreSQL
comes from ISLANDHUB_TEST_PG_URL (set by .ci/run), else the local server. When CI=true a
PostgreSQL test that cannot connect fails; elsewhere it is skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from _pytest.capture import CaptureFixture

from islandhub.privacy import crypto
from tests import leakscan

REPO = Path(__file__).resolve().parent.parent
# One national-id key for the whole run, inherited by every process a test starts: a store a
# test opens and the CLI runs it starts must be sealed alike (docs/privacy.md). Its value is
# a secret like any other: the leak guard below fails the run if it is ever printed.
os.environ.setdefault(crypto.KEY_ENV, crypto.new_key())
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/islandhub_test"


def _pg_base_url() -> str:
    return os.environ.get("ISLANDHUB_TEST_PG_URL", DEFAULT_PG)


def _ensure_database(url: str) -> None:
    """Create the test database when it is missing (a developer's first run)."""
    target = sa.engine.make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": target.database}
            ).first()
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def pg_base_url() -> str:
    """The PostgreSQL test database, reachable, or a failure under CI."""
    url = _pg_base_url()
    try:
        _ensure_database(url)
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except sa.exc.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(
                f"PostgreSQL is required under CI=true and cannot be reached at {url}: {exc}"
            )
        pytest.skip(f"PostgreSQL not reachable at {url}")
    return url


def _pg_schema_url(base: str) -> Iterator[str]:
    """A fresh schema per test: isolated and cheap, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.engine.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store URL on each backend, empty."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'var' / 'islandhub.db'}"
        return
    base = request.getfixturevalue("pg_base_url")
    yield from _pg_schema_url(base)


SAMPLE_PROJECT = REPO / "tests" / "fixtures" / "sample_project"


@pytest.fixture
def sample_project(tmp_path: Path) -> Path:
    """A copy of the small sample project: two overlapping file islands (register, school)."""
    root = tmp_path / "project"
    for folder in ("config", "mappings", "samples"):
        shutil.copytree(SAMPLE_PROJECT / folder, root / folder)
    return root


# --- started `islandhub` processes (tests/faults, tests/concurrency) ----------------------------


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


# --- the leak guard: no national id in clear, no secret, in any output of the run ------------

_LEAKS = leakscan.Findings()
_SECRETS: list[str] = []
_CURRENT: dict[str, pytest.Item | None] = {"item": None}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "reveals_national_ids: shows national ids in full on purpose (--reveal)"
    )
    # Output a test reads through capsys never reaches the report: scan it where it is read.
    original = CaptureFixture.readouterr

    def readouterr(self: CaptureFixture[Any]) -> Any:
        result = original(self)
        item = _CURRENT["item"]
        if item is not None and item.get_closest_marker("reveals_national_ids") is None:
            _LEAKS.scan(f"{item.nodeid} [capsys]", f"{result.out}\n{result.err}", _SECRETS)
        return result

    CaptureFixture.readouterr = readouterr  # type: ignore[method-assign]


def pytest_sessionstart(session: pytest.Session) -> None:
    folder = Path(tempfile.mkdtemp(prefix="islandhub-leakscan-"))
    _SECRETS.append(os.environ[crypto.KEY_ENV])
    try:
        _SECRETS.extend(leakscan.demo_secrets(folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    _CURRENT["item"] = item
    yield
    _CURRENT["item"] = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if item.get_closest_marker("reveals_national_ids") is None:
        for name, text in report.sections:
            _LEAKS.scan(f"{item.nodeid} [{name}]", text, _SECRETS)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is not None:
        _LEAKS.scan_logs(factory.getbasetemp(), _SECRETS)
    leaks = sorted(set(_LEAKS.leaks))
    if leaks:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = ["national ids or secrets leaked into output or logs:", *leaks[:50]]
        if reporter is not None:
            reporter.write_line("\n".join(lines), red=True, bold=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
