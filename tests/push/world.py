"""A small archipelago for push tests: a register drop, a REST portal and a case database.

- population: the register as JSON Lines (files connector); authoritative for names,
  municipality, address and the non-disclosure order; one resident is protected.
- portal: a real HTTP server on 127.0.0.1 (tests/fakes' IslandServer): GET /contacts pages,
  POST /contacts stores a contact once per Idempotency-Key. Levers make it store a contact and
  lose the answer, refuse, or be down.
- cases: a SQLite database with a `parties` table (read, pushed back to `hub_contacts` by
  party) and an empty `feed` whose push table `hub_residents` takes every resident.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from tests.fakes.http_island import Faults, IslandServer, Reply, Request, always
from tests.helpers import hetu

TOKEN = "portal-token-7f3e9a1c"
ANNA = hetu(12, 3, 1978, 234)
MIKKO = hetu(4, 11, 1981, 356)  # under a non-disclosure order (turvakielto)
ELSA = hetu(23, 6, 2012, 457)
HETUS = (ANNA, MIKKO, ELSA)


def person(
    national_id: str, given: str, family: str, born: str, street: str, *, protected: bool = False
) -> dict[str, Any]:
    """A register extract row, as DVV delivers it."""
    return {
        "henkilotunnus": national_id,
        "etunimet": given,
        "sukunimi": family,
        "syntymaaika": born,
        "kotikunta": {"koodi": "753"},
        "osoite": {"katu": street, "postinumero": "04130", "toimipaikka": "SIPOO"},
        "turvakielto": protected,
    }


REGISTER = [
    person(ANNA, "Anna Maria", "Lindqvist", "1978-03-12", "Iso Kylätie 12"),
    person(MIKKO, "Mikko", "Virtanen", "1981-11-04", "Salainen polku 3", protected=True),
    person(ELSA, "Elsa", "Nieminen", "2012-06-23", "Kirkkotie 5"),
]


class PortalIsland(IslandServer):
    """The resident portal: contacts to read, and a POST that dedupes by Idempotency-Key."""

    def __init__(self) -> None:
        super().__init__(auth={"type": "bearer", "token": TOKEN})
        self.contacts: list[dict[str, Any]] = []
        self.stored: list[dict[str, Any]] = []  # contacts the hub pushed, once per key
        self.posts: list[str] = []  # the Idempotency-Key of every POST that arrived
        self.answers: dict[str, Reply] = {}
        self.lose_answers = 0  # the next n new contacts are stored, but answered 503
        self.refuse: set[str] = set()  # hub ids the portal refuses (422)
        self._guard = threading.Lock()
        self.route("GET", r"/contacts", self.list_contacts)
        self.route("POST", r"/contacts", self.receive)

    def down(self) -> None:
        """Every request fails with 503 before it reaches the portal's code."""
        self.faults = always("503")

    def up(self) -> None:
        """Requests reach the portal again."""
        self.faults = Faults()

    def list_contacts(self, request: Request) -> Reply:
        return Reply(200, {"count": len(self.contacts), "next": None, "results": self.contacts})

    def receive(self, request: Request) -> Reply:
        key = request.headers.get("Idempotency-Key")
        body = orjson.loads(request.body)
        with self._guard:
            self.posts.append(key)
            if not key:
                return Reply(400, {"detail": "Idempotency-Key required"})
            if key in self.answers:
                return self.answers[key]
            if body.get("hub_id") in self.refuse:
                return Reply(422, {"detail": "the portal does not take this contact"})
            self.stored.append(body)
            self.answers[key] = Reply(201, {**body, "push_id": len(self.stored)})
            if self.lose_answers:
                self.lose_answers -= 1
                return Reply(503, {"detail": "stored, but the answer was lost"})
            return self.answers[key]


def contact(contact_id: str, national_id: str, first: str, last: str, email: str) -> dict[str, Any]:
    """A portal profile (no address: the profile leaves it optional)."""
    return {
        "id": contact_id,
        "national_id": national_id,
        "first_name": first,
        "last_name": last,
        "email": email,
        "modified": "2026-11-01T10:00:00Z",
    }


CASES_SCHEMA = [
    "CREATE TABLE parties (party_id TEXT PRIMARY KEY, hetu TEXT, email TEXT)",
    "CREATE TABLE hub_contacts (party_id TEXT PRIMARY KEY, hub_id TEXT, email TEXT,"
    " municipality TEXT)",
    "CREATE TABLE feed (hetu TEXT PRIMARY KEY, name TEXT)",
    "CREATE TABLE hub_residents (hub_id TEXT PRIMARY KEY, hetu TEXT, name TEXT,"
    " municipality TEXT, street TEXT, born TEXT)",
]


@dataclass
class World:
    """The project folder and the islands it reaches."""

    root: Path
    portal: PortalIsland
    cases_url: str
    register_files: list[Path] = field(default_factory=list)

    def register(self, *people: dict[str, Any]) -> None:
        """Drop a new register extract (the next sync reads it)."""
        path = self.root / "samples" / "population" / f"vtj_{len(self.register_files):03d}.jsonl"
        path.write_text("".join(json.dumps(p) + "\n" for p in people), encoding="utf-8")
        self.register_files.append(path)

    def cases(self, sql: str, **params: Any) -> list[Any]:
        """Run SQL in the case database; the rows of a SELECT."""
        engine = sa.create_engine(self.cases_url)
        try:
            with engine.begin() as conn:
                result = conn.execute(sa.text(sql), params)
                return [tuple(r) for r in result] if result.returns_rows else []
        finally:
            engine.dispose()


def build(root: Path, portal: PortalIsland, *, retry: str = "") -> World:
    """Write the project folder for `portal` (already serving) under `root`."""
    (root / "config" / "systems").mkdir(parents=True)
    (root / "samples" / "population").mkdir(parents=True)
    (root / "mappings" / "population").mkdir(parents=True)
    (root / "mappings" / "portal").mkdir(parents=True)
    (root / "mappings" / "cases").mkdir(parents=True)
    cases_url = f"sqlite:///{root / 'cases.db'}"
    files = {
        "config/hub.yaml": HUB,
        "config/systems/population.yaml": POPULATION_SYSTEM,
        "config/systems/portal.yaml": PORTAL_SYSTEM.format(url=portal.url),
        "config/systems/cases.yaml": CASES_SYSTEM.format(url=cases_url),
        "mappings/population/persons.yaml": POPULATION_MAPPING,
        "mappings/portal/contacts.yaml": PORTAL_MAPPING.format(retry=retry or DEFAULT_RETRY),
        "mappings/cases/parties.yaml": PARTIES_MAPPING,
        "mappings/cases/feed.yaml": FEED_MAPPING,
    }
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    world = World(root, portal, cases_url)
    for statement in CASES_SCHEMA:
        world.cases(statement)
    return world


DEFAULT_RETRY = "{max_attempts: 3, backoff: 10, max_backoff: 100}"

HUB = """\
store: sqlite:///var/islandhub.db
timezone: Europe/Helsinki
survivorship: {priority: [population, cases, portal]}
"""

POPULATION_SYSTEM = """\
system: population
connector: files
schedule: null
connection: {path: samples/population}
streams:
  persons: {files: "vtj_*.jsonl", format: jsonl, mapping: mappings/population/persons.yaml}
"""

POPULATION_MAPPING = """\
source: population.persons
entity: resident
id: henkilotunnus
fields:
  national_id:         {from: henkilotunnus, use: [strip, hetu], required: true}
  given_name:          {from: etunimet}
  family_name:         {from: sukunimi}
  birth_date:          {from: syntymaaika, use: [{date: "%Y-%m-%d"}]}
  municipality_code:   {from: kotikunta.koodi}
  non_disclosure:      {from: turvakielto, use: [bool]}
  address.street:      {from: osoite.katu}
  address.postal_code: {from: osoite.postinumero, use: [postal_code]}
  address.post_office: {from: osoite.toimipaikka, use: [title]}
"""

PORTAL_SYSTEM = """\
system: portal
connector: rest
schedule: null
connection:
  base_url: {url}
  auth: {{type: bearer, token: {{secret: PORTAL_TOKEN}}}}
  retries: 0            # a failed request fails the push at once: the outbox retries it
  timeout: [2, 2]
streams:
  contacts:
    mapping: mappings/portal/contacts.yaml
    path: /contacts
    records: results
    paginator: {{type: next_url, path: next}}
    push: {{method: POST, path: /contacts}}
"""

PORTAL_MAPPING = """\
source: portal.contacts
entity: resident
id: id
fields:
  national_id:         {{from: national_id, use: [hetu]}}
  given_name:          {{from: first_name}}
  family_name:         {{from: last_name}}
  email:               {{from: email, use: [email]}}
  address.street:      {{from: address.street}}
  address.postal_code: {{from: address.postal_code, use: [postal_code]}}
push:
  retry: {retry}
  fields:
    contact_id:          {{from: $source_id}}
    hub_id:              {{from: resident_id}}
    first_name:          {{from: given_name}}
    last_name:           {{from: family_name}}
    email:               {{from: email}}
    address.street:      {{from: address.street}}
    address.postal_code: {{from: address.postal_code}}
    municipality:        {{from: municipality_code}}
"""

CASES_SYSTEM = """\
system: cases
connector: sql
schedule: null
connection: {{url: "{url}"}}
streams:
  parties:
    mapping: mappings/cases/parties.yaml
    table: parties
    id: party_id
    push_table: hub_contacts
    push_key: [party_id]
  feed:
    mapping: mappings/cases/feed.yaml
    table: feed
    id: hetu
    push_table: hub_residents
    push_key: [hub_id]
"""

PARTIES_MAPPING = """\
source: cases.parties
entity: resident
id: party_id
fields:
  national_id: {from: hetu, use: [hetu]}
  email:       {from: email, use: [email]}
push:
  fields:
    party_id:     {from: $source_id}
    hub_id:       {from: resident_id}
    email:        {from: email}
    municipality: {from: municipality_code}
"""

FEED_MAPPING = """\
source: cases.feed
entity: resident
id: hetu
fields:
  national_id: {from: hetu, use: [hetu]}
push:
  residents: all
  fields:
    hub_id:       {from: resident_id}
    hetu:         {from: national_id}
    name:         {from: [given_name, family_name], use: [{concat: " "}]}
    municipality: {from: municipality_code}
    street:       {from: address.street}
    born:         {from: birth_date, use: [{format_date: "%d.%m.%Y"}]}
"""
