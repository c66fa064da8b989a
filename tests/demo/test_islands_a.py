"""Islands population, cases, booking and events synced through the real pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from islandhub.config import HubSettings
from islandhub.demo.islands.base import DemoIsland
from islandhub.demo.islands.booking import Booking
from islandhub.demo.islands.case_management import CaseManagement
from islandhub.demo.islands.events import Events
from islandhub.demo.islands.population_register import CLIENT, SERVICE, PopulationRegister
from islandhub.demo.model import Population
from islandhub.demo.population import generate
from islandhub.demo.sync import sync_island
from islandhub.pipeline import StreamResult
from islandhub.privacy import crypto
from islandhub.store import Store
from islandhub.store.db import open_store

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def population() -> Population:
    """The small municipality every island here draws from."""
    return generate(400, 7)


@pytest.fixture
def hub(tmp_path: Path) -> tuple[HubSettings, Store]:
    """A fresh store in the test's folder."""
    url = f"sqlite:///{tmp_path}/hub.db"
    return HubSettings(store_url=url, priority=("population",)), open_store(url)


def running(cls: type[DemoIsland], population: Population, tmp_path: Path) -> Iterator[Any]:
    """A prepared, started island, stopped afterwards."""
    island = cls(population, tmp_path / cls.system, 7)
    island.prepare()
    island.start()
    try:
        yield island
    finally:
        island.stop()


@pytest.fixture
def register(population: Population, tmp_path: Path) -> Iterator[PopulationRegister]:
    """The population register island."""
    yield from running(PopulationRegister, population, tmp_path)


def sync(hub: tuple[HubSettings, Store], island: DemoIsland) -> StreamResult:
    """Sync the island's one stream and check its counts add up."""
    results = sync_island(ROOT, hub[0], hub[1], island)
    assert len(results) == 1
    result = results[0]
    assert result.status == "succeeded", result.error
    assert result.pulled == result.unchanged + result.mapped + result.quarantined
    return result


def landed(store: Store, system: str) -> dict[str, str]:
    """Source ids of the system's landed records, with their status."""
    with store.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT source_id, status FROM landing WHERE system = :s"), {"s": system}
        )
        # The register's source ids are HETUs, stored sealed: compared in clear with the truth.
        return {crypto.try_unseal(row[0]): row[1] for row in rows}


def assert_truth_covers(store: Store, island: DemoIsland) -> None:
    """Every landed record has exactly one truth row naming a real person."""
    truth = {row.source_id: row.entity_id for row in island.truth}
    assert len(truth) == len(island.truth)
    people = island.population.by_id()
    assert set(landed(store, island.system)) <= set(truth)
    assert all(entity in people for entity in truth.values())


def test_register_full_then_only_changes(register: PopulationRegister, hub: Any) -> None:
    first = sync(hub, register)
    assert first.pulled == len(register.records) == len(register.truth)
    assert first.quarantined == 0
    assert_truth_covers(hub[1], register)

    changed = register.apply_changes(5)
    second = sync(hub, register)
    assert len(set(changed)) == 5
    assert (second.pulled, second.mapped) == (5, 5)
    assert sync(hub, register).pulled == 0


def test_register_requires_the_x_road_client(register: PopulationRegister) -> None:
    url = f"{register.base_url}{SERVICE}/henkilot"
    refused = requests.get(url, params={"sivu": 1}, timeout=5)
    assert refused.status_code == 400
    assert refused.headers["X-Road-Error"] == "Server.ClientProxy.MissingHeader"
    answer = requests.get(url, params={"sivukoko": 3}, headers={"X-Road-Client": CLIENT}, timeout=5)
    body = answer.json()
    assert len(body["henkilot"]) == 3
    assert body["yhteensa"] == len(register.records)
    assert {"katuosoiteS", "katuosoiteR", "postitoimipaikkaR"} <= set(
        body["henkilot"][0]["vakinainenOsoite"]
    )


def test_cases_view_with_noisy_hetus(population: Population, tmp_path: Path, hub: Any) -> None:
    for island in running(CaseManagement, population, tmp_path):
        result = sync(hub, island)
        assert result.pulled == len(island.parties) == len(island.truth) > 0
        assert result.quarantined == 0  # a bad optional HETU is dropped with a warning
        assert_truth_covers(hub[1], island)
        adults = sum(1 for p in population.living() if p.age_on(population.today) >= 18)
        assert 0.04 < len({t.entity_id for t in island.truth}) / adults < 0.12
        with hub[1].connect() as conn:
            warnings = conn.execute(
                sa.text("SELECT count(*) FROM source_records WHERE warnings LIKE '%national id%'")
            ).scalar_one()
        missing = sum(1 for party in island.parties if party[4] is None)
        assert 0 < missing < len(island.parties) * 0.3
        assert warnings <= len(island.parties) * 0.1


def test_booking_reservations(population: Population, tmp_path: Path, hub: Any) -> None:
    for island in running(Booking, population, tmp_path):
        result = sync(hub, island)
        assert result.pulled == len(island.served) > 0
        assert result.quarantined == 0
        assert len(island.truth) == len(island.reservations)
        assert_truth_covers(hub[1], island)
        assert len(island.served) < len(island.reservations)  # cancelled: soft deletes
        assert sync(hub, island).pulled == 0  # modified_after with lookback repeats nothing


def test_booking_refuses_without_token(population: Population, tmp_path: Path) -> None:
    for island in running(Booking, population, tmp_path):
        answer = requests.get(f"{island.base_url}/v1/reservation/", timeout=5)
        assert answer.status_code == 401


def test_events_signups(population: Population, tmp_path: Path, hub: Any) -> None:
    for island in running(Events, population, tmp_path):
        result = sync(hub, island)
        assert result.pulled == len(island.served) > 0
        assert result.quarantined == 0
        assert len(island.truth) == len(island.signups)
        assert_truth_covers(hub[1], island)
        people = {t.entity_id for t in island.truth}
        assert 0.08 < len(people) / len(population.living()) < 0.22
        assert sync(hub, island).pulled == 0


def test_islands_are_deterministic(population: Population, tmp_path: Path) -> None:
    for cls in (CaseManagement, Booking, Events, PopulationRegister):
        first = cls(population, tmp_path / "a" / cls.system, 7)
        second = cls(population, tmp_path / "b" / cls.system, 7)
        first.prepare()
        second.prepare()
        assert first.truth == second.truth
