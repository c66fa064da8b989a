"""Erasure against running demo islands: the portal's GDPR API (REST), the case system's
holds (SQL) and the events API's refusal; a refusal anywhere deletes nothing anywhere."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from islandhub.config import Project, load_project, load_system_file
from islandhub.demo.islands.case_management import CaseManagement
from islandhub.demo.islands.crm import CrmIsland
from islandhub.demo.islands.events import UPCOMING_REGISTRATION, Events
from islandhub.demo.population import generate
from islandhub.demo.sync import sync_island
from islandhub.pipeline import make_connector
from islandhub.privacy.erasure import erase
from islandhub.residents import Reader
from islandhub.resolve.keys import NATIONAL_ID, national_id_key
from islandhub.resolve.matching import frame_from_store, frame_spec
from islandhub.resolve.settings import load_settings
from islandhub.store import open_store
from islandhub.store.tables import (
    links,
    resident_keys,
    resolution_frame,
    resolution_keys,
    tombstones,
)

REPO = Path(__file__).resolve().parents[2]
CLERK = Reader("clerk.anna", "erasure request 2026/31")
OPEN = ("vireillä", "käsittelyssä")


@pytest.fixture(scope="module")
def archipelago(tmp_path_factory):
    """The portal, the case system and the events API, running, synced into one store."""
    workdir = tmp_path_factory.mktemp("islands")
    population = generate(1500, 29)
    islands = {
        cls.system: cls(population, workdir / cls.system, 29)
        for cls in (CrmIsland, CaseManagement, Events)
    }
    for island in islands.values():
        island.workdir.mkdir(parents=True)
        island.prepare()
        island.start(None)
    store = open_store(f"sqlite:///{workdir / 'hub.db'}")
    hub = load_project(REPO).hub
    try:
        for island in islands.values():
            assert all(r.status == "succeeded" for r in sync_island(REPO, hub, store, island))
        yield islands, store
    finally:
        for island in islands.values():
            island.stop()
        store.dispose()


def _rows_of(store, table, system, stream, source_ids):
    with store.connect() as conn:
        return conn.execute(
            sa.select(table.c.source_id).where(
                table.c.system == system,
                table.c.stream == stream,
                table.c.source_id.in_(source_ids),
            )
        ).all()


def _connect(islands):
    hub = load_project(REPO).hub

    def connect(config):
        island = islands[config.system]
        system = replace(load_system_file(REPO, config.system), connection=island.connection())
        lookup = island.secrets().get
        return make_connector(Project(REPO, hub, {system.system: system}), system, lookup)

    return connect


def _parties(islands, states):
    """(hetu, party id) of case parties whose case is in one of `states`."""
    with sqlite3.connect(islands["cases"].db_path) as db:
        marks = ",".join("?" * len(states))
        return db.execute(
            "SELECT o.hetu, o.id FROM osapuolet o JOIN asiat a ON a.id = o.asia_id "
            f"WHERE a.tila IN ({marks}) AND o.hetu IS NOT NULL",
            states,
        ).fetchall()


def _resident_with_crm(store, islands, states):
    """A national id whose resident has a CRM account and only case parties in `states`."""
    closed_or_open = {h for h, _ in _parties(islands, states)}
    other = {
        h for h, _ in _parties(islands, tuple({*OPEN, "ratkaistu", "arkistoitu"} - set(states)))
    }
    with store.connect() as conn:
        for hetu in sorted(closed_or_open - other):
            key = national_id_key(hetu)
            rid = conn.execute(
                sa.select(resident_keys.c.resident_id).where(
                    resident_keys.c.kind == NATIONAL_ID, resident_keys.c.key == key
                )
            ).scalar_one_or_none()
            systems = {
                r.system
                for r in conn.execute(sa.select(links.c.system).where(links.c.resident_id == rid))
            }
            if {"crm", "cases"} <= systems:
                return hetu, rid
    pytest.skip("the generated population has no such resident")  # pragma: no cover


def _links_of(store, rid):
    with store.connect() as conn:
        return sorted(
            (r.system, r.source_id)
            for r in conn.execute(sa.select(links).where(links.c.resident_id == rid))
        )


@pytest.mark.slow
def test_an_open_case_refuses_and_nothing_is_deleted_anywhere(archipelago):
    islands, store = archipelago
    project = load_project(REPO)
    hetu, rid = _resident_with_crm(store, islands, OPEN)
    before = _links_of(store, rid)
    crm_ids = [sid for system, sid in before if system == "crm"]
    report = erase(
        project, store, CLERK, national_id=hetu, dry_run=False, connect=_connect(islands)
    )
    assert report.refused and not report.done
    cases = next(i for i in report.islands if i.system == "cases")
    assert [e["code"] for e in cases.errors] == ["OPEN_CASE"]
    assert cases.errors[0]["message"]["sv"] == "Ärendet är ännu under behandling"
    crm = next(i for i in report.islands if i.system == "crm")
    assert crm.allowed and crm.erased == 0  # it allowed, but was never asked to delete
    assert islands["crm"].erased == []
    assert {str(r["id"]) for r in islands["crm"].records} >= set(crm_ids)
    assert len([p for p in _parties(islands, OPEN) if p[0] == hetu]) >= 1
    assert _links_of(store, rid) == before
    with store.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tombstones)).scalar_one() == 0


@pytest.mark.slow
def test_when_every_island_allows_the_person_is_erased_in_the_islands_and_the_hub(archipelago):
    islands, store = archipelago
    project = load_project(REPO)
    hetu, rid = _resident_with_crm(store, islands, ("ratkaistu", "arkistoitu"))
    connect = _connect(islands)
    # The matching frame keeps each record standardised, with the hashes of its values.
    frame_from_store(store, frame_spec(load_settings(REPO)))
    dry = erase(project, store, CLERK, national_id=hetu, dry_run=True, connect=connect)
    assert not dry.refused and not dry.done and islands["crm"].erased == []
    for island in dry.islands:  # before: the person's records are in the frame, with keys
        for kept in (resolution_frame, resolution_keys):
            assert _rows_of(store, kept, island.system, island.stream, island.source_ids)
    report = erase(project, store, CLERK, national_id=hetu, dry_run=False, connect=connect)
    assert report.done and not report.refused
    assert all(i.supported and i.erased == len(i.source_ids) for i in report.islands)
    assert report.erased_in_hub["tombstones"] == 0  # both islands deleted: nothing to guard
    assert islands["crm"].erased  # the portal's account is gone
    assert not [p for p in _parties(islands, ("ratkaistu", "arkistoitu")) if p[0] == hetu]
    assert _links_of(store, rid) == []
    for island in report.islands:
        for kept in (resolution_frame, resolution_keys):
            assert not _rows_of(store, kept, island.system, island.stream, island.source_ids)
    # The next syncs do not bring the person back.
    hub = load_project(REPO).hub
    for name in ("crm", "cases"):
        sync_island(REPO, hub, store, islands[name])
    with store.connect() as conn:
        key = national_id_key(hetu)
        assert (
            conn.execute(sa.select(resident_keys).where(resident_keys.c.key == key)).first() is None
        )


@pytest.mark.slow
def test_the_events_gdpr_api_refuses_an_upcoming_signup_in_three_languages(archipelago):
    islands, _store = archipelago
    events = islands["events"]
    connector = _connect(islands)(load_project(REPO).systems["events"])
    upcoming = next(s for s in events.served if s["registration"]["id"] == UPCOMING_REGISTRATION)
    answer = connector.erase("signups", [str(upcoming["id"])], dry_run=True)
    assert not answer.allowed and answer.errors[0]["code"] == "UPCOMING_SIGNUP"
    assert set(answer.errors[0]["message"]) == {"fi", "sv", "en"}
    past = next(s for s in events.served if s["registration"]["id"] != UPCOMING_REGISTRATION)
    assert connector.erase("signups", [str(past["id"])], dry_run=True).allowed
    assert not past["deleted"]  # a dry run changes nothing
    done = connector.erase("signups", [str(past["id"])], dry_run=False)
    assert done.allowed and done.erased == 1
    assert past["deleted"] and past["first_name"] is None
