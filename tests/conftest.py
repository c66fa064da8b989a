"""Shared fixtures: a store on every backend, and a copy of the sample project to run against.

Store tests run on SQLite and on PostgreSQL (STYLE: one test, every backend). PostgreSQL
comes from ISLANDHUB_TEST_PG_URL (set by .ci/run), else the local server. When CI=true a
PostgreSQL test that cannot connect fails; elsewhere it is skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
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
