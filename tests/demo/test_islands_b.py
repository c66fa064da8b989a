"""Islands school, daycare, library and feedback through the real pipeline, with truth."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from islandhub.config import HubSettings
from islandhub.demo.islands.base import DemoIsland
from islandhub.demo.islands.daycare import DaycareIsland
from islandhub.demo.islands.feedback import FeedbackIsland
from islandhub.demo.islands.library import LibraryIsland
from islandhub.demo.islands.school import SchoolIsland
from islandhub.demo.model import Population
from islandhub.demo.population import generate
from islandhub.demo.sync import sync_island
from islandhub.store import Store, open_store
from islandhub.store.tables import landing, quarantine

ROOT = Path(__file__).resolve().parents[2]
ISLANDS = [SchoolIsland, DaycareIsland, LibraryIsland, FeedbackIsland]


@pytest.fixture(scope="module")
def population() -> Population:
    return generate(400, 7)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path}/hub.db")
    yield opened
    opened.dispose()


def started(cls: type[DemoIsland], population: Population, workdir: Path) -> DemoIsland:
    island = cls(population, workdir, 7)
    island.prepare()
    island.start()
    return island


@pytest.fixture
def running(
    request: pytest.FixtureRequest, population: Population, tmp_path: Path
) -> Iterator[DemoIsland]:
    island = started(request.param, population, tmp_path / request.param.system)
    yield island
    island.stop()


def landed(store: Store, system: str) -> dict[tuple[str, str], str]:
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(landing.c.stream, landing.c.source_id, landing.c.status).where(
                landing.c.system == system
            )
        ).all()
    return {(r.stream, r.source_id): r.status for r in rows}


def quarantined(store: Store, system: str) -> set[tuple[str, str]]:
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(quarantine.c.stream, quarantine.c.source_id).where(
                quarantine.c.system == system
            )
        ).all()
    return {(r.stream, r.source_id) for r in rows}


@pytest.mark.parametrize("running", ISLANDS, indirect=True, ids=lambda c: c.system)
def test_island_syncs_with_truth_for_every_record(
    running: DemoIsland, store: Store, tmp_path: Path
) -> None:
    hub = HubSettings(store_url=f"sqlite:///{tmp_path}/hub.db", priority=("population",))
    results = sync_island(ROOT, hub, store, running)
    assert results and all(r.status == "succeeded" for r in results), results
    truth = {(t.stream, t.source_id) for t in running.truth}
    assert len(truth) == len(running.truth), "a source id has two truth rows"
    for r in results:
        assert r.pulled == r.unchanged + r.mapped + r.quarantined, r
        assert r.pulled == sum(1 for t in running.truth if t.stream == r.stream), r
    assert set(landed(store, running.system)) == truth
    planted = running.planted  # type: ignore[attr-defined]
    expected = {(stream, sid) for stream, ids in planted.items() for sid in ids}
    assert quarantined(store, running.system) == expected
    again = sync_island(ROOT, hub, store, running)
    assert [(r.status, r.pulled) for r in again] == [("succeeded", 0)] * len(again)


def test_islands_are_deterministic(population: Population, tmp_path: Path) -> None:
    first = SchoolIsland(population, tmp_path / "a", 7)
    second = SchoolIsland(population, tmp_path / "b", 7)
    first.prepare()
    second.prepare()
    assert first.truth == second.truth
    name = f"pupils_{population.today:%Y%m%d}.csv"
    assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_school_export_is_cp1252_semicolons_with_guardian_columns(
    population: Population, tmp_path: Path
) -> None:
    island = SchoolIsland(population, tmp_path, 7)
    island.prepare()
    (path,) = tmp_path.glob("pupils_*.csv")
    with path.open(encoding="cp1252", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    assert rows and {"nimi", "hetu", "huoltaja1_sahkoposti", "huoltaja2_puhelin"} <= set(rows[0])
    ages = {population.by_id()[t.entity_id].age_on(population.today) for t in island.truth}
    assert ages <= set(range(7, 16))


def test_library_pages_with_link_headers_and_refuses_a_wrong_token(
    population: Population, tmp_path: Path
) -> None:
    island = started(LibraryIsland, population, tmp_path)
    try:
        url = f"{island.base_url}/api/v1/patrons?_per_page=10"
        assert requests.get(url, timeout=5).status_code == 401
        answer = requests.get(
            url, headers={"Authorization": "Bearer demo-koha-token-753"}, timeout=5
        )
        assert answer.status_code == 200 and len(answer.json()) == 10
        assert int(answer.headers["X-Total-Count"]) == len(island.truth)
        assert "_page=2" in answer.links["next"]["url"]
        assert all("national_id" not in p and "hetu" not in p for p in answer.json())
    finally:
        island.stop()


def test_feedback_has_anonymous_requests_as_their_own_entities(
    population: Population, tmp_path: Path
) -> None:
    island = FeedbackIsland(population, tmp_path, 7)
    island.prepare()
    anonymous = [t for t in island.truth if t.entity_id.startswith("ANON-")]
    assert anonymous and len(anonymous) < len(island.truth)
    by_id = {r["service_request_id"]: r for r in island.requests}
    assert all(by_id[t.source_id]["email"] is None for t in anonymous)
