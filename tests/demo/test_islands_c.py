"""Islands billing, sports, crm and m365 through the real pipeline: counts, truth, re-runs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from islandhub.config import HubSettings, Project, load_system_file
from islandhub.demo.islands.base import DemoIsland
from islandhub.demo.islands.billing import BillingIsland
from islandhub.demo.islands.crm import CrmIsland
from islandhub.demo.islands.m365 import M365Island
from islandhub.demo.islands.sports import SportsIsland
from islandhub.demo.population import generate
from islandhub.demo.sync import sync_island
from islandhub.pipeline import StreamResult, make_connector
from islandhub.store import Store, open_store
from islandhub.store.tables import landing, quarantine

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def population():  # type: ignore[no-untyped-def]
    return generate(400, 7)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path}/hub.db")
    yield opened
    opened.dispose()


def hub(tmp_path: Path) -> HubSettings:
    return HubSettings(store_url=f"sqlite:///{tmp_path}/hub.db", priority=("population",))


def sync(tmp_path: Path, store: Store, island: DemoIsland) -> dict[str, StreamResult]:
    results = sync_island(ROOT, hub(tmp_path), store, island)
    assert all(r.status == "succeeded" for r in results), results
    for r in results:
        assert r.pulled == r.unchanged + r.mapped + r.quarantined, r
    return {r.stream: r for r in results}


def landed(store: Store, system: str) -> dict[tuple[str, str], str]:
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(landing.c.stream, landing.c.source_id, landing.c.status).where(
                landing.c.system == system
            )
        ).all()
    return {(r.stream, r.source_id): r.status for r in rows}


def quarantined(store: Store, system: str) -> dict[str, str]:
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(quarantine.c.source_id, quarantine.c.reasons).where(
                quarantine.c.system == system
            )
        ).all()
    return {r.source_id: r.reasons for r in rows}


def truth_keys(island: DemoIsland) -> set[tuple[str, str]]:
    keys = [(t.stream, t.source_id) for t in island.truth]
    assert len(keys) == len(set(keys)), "one truth row per source record"
    return set(keys)


@pytest.fixture
def started(tmp_path: Path, population):  # type: ignore[no-untyped-def]
    islands: list[DemoIsland] = []

    def start(cls: type[DemoIsland]) -> DemoIsland:
        island = cls(population, tmp_path / cls.system, 7)
        island.workdir.mkdir(parents=True)
        island.prepare()
        island.start(None)
        islands.append(island)
        return island

    yield start
    for island in islands:
        island.stop()


def test_billing_lands_persons_and_quarantines_companies(tmp_path, store, started) -> None:
    island = started(BillingIsland)
    result = sync(tmp_path, store, island)["customers"]
    assert result.pulled == island.emitted == len(island.truth)
    assert set(landed(store, "billing")) == truth_keys(island)
    held = quarantined(store, "billing")
    assert set(held) == {str(n) for n in island.companies}
    assert all("not in" in reason or "map" in reason for reason in held.values()), held
    assert result.quarantined == len(island.companies)
    companies = {t.entity_id for t in island.truth if t.source_id in held}
    assert all(e.startswith("ORG-") for e in companies)
    again = sync(tmp_path, store, island)["customers"]
    assert again.pulled == 0


def test_sports_feed_lands_one_record_per_occurrence(tmp_path, store, started) -> None:
    island = started(SportsIsland)
    result = sync(tmp_path, store, island)["bookings"]
    assert result.pulled == island.emitted == len(island.truth)
    assert set(landed(store, "sports")) == truth_keys(island)
    assert any("::" in t.source_id for t in island.truth)  # recurring occurrences
    assert quarantined(store, "sports") == {}
    again = sync(tmp_path, store, island)["bookings"]
    assert again.pulled == 0


def connector_for(tmp_path: Path, island: DemoIsland):  # type: ignore[no-untyped-def]
    system = replace(load_system_file(ROOT, island.system), connection=island.connection())
    project = Project(ROOT, hub(tmp_path), {system.system: system})
    return make_connector(project, system, island.secrets().get)


def test_crm_pulls_profiles_incrementally_and_takes_pushes_once(tmp_path, store, started) -> None:
    island = started(CrmIsland)
    result = sync(tmp_path, store, island)["contacts"]
    assert result.pulled == len(island.records) == len(island.truth) > 50  # pages of 50
    assert set(landed(store, "crm")) == truth_keys(island)
    assert quarantined(store, "crm") == {}
    assert sync(tmp_path, store, island)["contacts"].pulled == 0
    island.records[0] = {
        **island.records[0],
        "phone": "+358 50 123 4567",
        "modified": "2026-11-20T12:00:00Z",
    }
    assert sync(tmp_path, store, island)["contacts"].pulled == 1
    connector = connector_for(tmp_path, island)
    contacts = [
        {"id": "c-000001", "email": "aino.virtanen@example.fi"},
        {"id": "c-000002", "phone": "+358401234567"},
    ]
    connector.push("contacts", contacts)
    connector.push("contacts", contacts)
    assert [p["id"] for p in island.pushed] == ["c-000001", "c-000002"]


def test_m365_users_delta_and_bookings_customers(tmp_path, store, started) -> None:
    island = started(M365Island)
    island.throttle = 0.5  # Retry-After 0-1 s: the connector waits and retries
    results = sync(tmp_path, store, island)
    assert island.throttled > 0
    island.throttle = 0.0
    assert {s: r.pulled for s, r in results.items()} == island.emitted
    assert island.emitted["users"] >= 5 and island.emitted["bookings_customers"] >= 10
    assert set(landed(store, "m365")) == truth_keys(island)
    assert quarantined(store, "m365") == {}
    again = sync(tmp_path, store, island)
    assert {s: r.pulled for s, r in again.items()} == {"users": 0, "bookings_customers": 0}
    changed, removed = island.churn(changed=2, removed=1)
    third = sync(tmp_path, store, island)["users"]
    assert (third.pulled, third.deleted) == (2, 1)
    status = landed(store, "m365")
    assert status[("users", removed[0])] == "deleted"
    assert all(status[("users", c)] == "mapped" for c in changed)


@pytest.mark.parametrize("cls", [BillingIsland, CrmIsland, M365Island, SportsIsland])
def test_islands_are_the_same_for_the_same_seed(tmp_path, population, cls) -> None:
    first, second = (cls(population, tmp_path / name, 7) for name in ("a", "b"))
    for island in (first, second):
        island.workdir.mkdir()
        island.prepare()
    assert first.truth == second.truth
