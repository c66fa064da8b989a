"""Fixtures of the push tests: the small archipelago of world.py on each store backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from islandhub.config import Project, load_project
from islandhub.pipeline import sync
from islandhub.store import Store, open_store
from islandhub.store.tables import outbox
from tests.push.world import ANNA, ELSA, MIKKO, REGISTER, TOKEN, PortalIsland, World, build, contact


@pytest.fixture
def portal() -> Iterator[PortalIsland]:
    with PortalIsland() as server:
        yield server


@pytest.fixture
def world(tmp_path: Path, portal: PortalIsland, store_url: str, monkeypatch: Any) -> World:
    """The project, its store on this backend, and islands holding three residents."""
    monkeypatch.setenv("PORTAL_TOKEN", TOKEN)
    monkeypatch.setenv("ISLANDHUB_STORE_URL", store_url)
    monkeypatch.setenv("ISLANDHUB_PROJECT", str(tmp_path / "project"))
    monkeypatch.setenv("ISLANDHUB_ACTOR", "push-test")
    world = build(tmp_path / "project", portal)
    world.register(*REGISTER)
    portal.contacts = [
        contact("c-1", ANNA, "Anna", "Lindqvist", "anna@example.fi"),
        contact("c-2", MIKKO, "Mikko", "Virtanen", "mikko@example.fi"),
    ]
    world.cases("INSERT INTO parties VALUES ('p-1', :h, 'anna.case@example.fi')", h=ANNA)
    world.cases("INSERT INTO parties VALUES ('p-3', :h, NULL)", h=ELSA)
    return world


def open_world(world: World) -> tuple[Project, Store]:
    project = load_project(world.root)
    return project, open_store(project.hub.store_url)


def sync_in_order(project: Project, store: Store, *systems: str) -> None:
    """Sync the systems one after another (their observations get that order in time)."""
    for system in systems or ("population", "portal", "cases"):
        results = sync(project, store, [system])
        assert all(r.status == "succeeded" for r in results), results


def rows(store: Store, **where: Any) -> list[Any]:
    """Outbox rows in id order, optionally filtered by column values."""
    query = sa.select(outbox).order_by(outbox.c.id)
    for column, value in where.items():
        query = query.where(outbox.c[column] == value)
    with store.connect() as conn:
        return list(conn.execute(query))


def resident_of(store: Store, system: str, source_id: str) -> str:
    from islandhub.privacy.at_rest import seal_source_id
    from islandhub.store.tables import links

    # The register's source ids are HETUs: the store keys them sealed.
    with store.connect() as conn:
        return conn.execute(
            sa.select(links.c.resident_id).where(
                links.c.system == system, links.c.source_id == seal_source_id(source_id)
            )
        ).scalar_one()
