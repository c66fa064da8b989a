"""A project whose islands are the fake REST islands and the fake Microsoft Graph, with faults.

Six islands, each a real server on 127.0.0.1 (tests/fakes), each a system of the project:

- booking  (Respa):         reservations (with the reserver's national id) and attendees
- events   (Linked Events): signups, soft deletes
- library  (Koha):          patrons (with a national id), tombstones, OAuth2 client credentials
- open311  (Open311):       service requests
- feedback (feedback):      items, keyset cursor, HTTP Basic
- m365     (Graph):         users (delta) and Bookings customers, client credentials

Booking and library hold the same persons by national id, so golden records draw on both.
`Archipelago.faulty()` makes a seeded share of every island's requests fail (every fault kind,
the token endpoints too), `broken(kind)` makes all of them fail, `calm()` lifts the faults.
`change()` changes every island (new, changed and deleted records) between rounds.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from islandhub.privacy.masking import mask_text
from islandhub.store import open_store
from islandhub.store.tables import landing, resident_versions, residents, source_records, sync_state
from tests.fakes.graph_island import GraphIsland, customer, running_graph, user
from tests.fakes.http_island import (
    API_KEY,
    BASIC_PASSWORD,
    BASIC_USER,
    CLIENT_ID,
    CLIENT_SECRET,
    EVERY_FAULT_KIND,
    OPEN311_KEY,
    TOKEN,
    Faults,
    FeedbackIsland,
    IslandServer,
    KohaIsland,
    LinkedEventsIsland,
    Open311Island,
    RespaIsland,
    koha_patron,
    respa_reservation,
)
from tests.helpers import hetu

BUSINESS = "simhallen@sipoo.fi"
GIVEN = ["Aino", "Eino", "Karin", "Björn", "Liisa", "Matti", "Åsa", "Väinö", "Elin", "Onni"]
FAMILY = ["Korhonen", "Lindqvist", "Mäkinen", "Holmberg", "Virtanen", "Sjöberg", "Laine"]
# The persons booking and library share: a national id and a name each.
PEOPLE = [
    (hetu(1 + i % 28, 1 + i % 12, 1950 + i, 200 + i), GIVEN[i % 10], FAMILY[i % 7])
    for i in range(30)
]
SYSTEMS = ("booking", "events", "feedback", "library", "m365", "open311")
# Secrets by reference only: the project names them, the environment holds them.
SECRETS = {
    "FAULTS_RESPA_TOKEN": TOKEN,
    "FAULTS_LINKED_EVENTS_KEY": API_KEY,
    "FAULTS_KOHA_SECRET": CLIENT_SECRET,
    "FAULTS_OPEN311_KEY": OPEN311_KEY,
    "FAULTS_FEEDBACK_PASSWORD": BASIC_PASSWORD,
}
# Every island answers within milliseconds on loopback; a "timeout" fault sits on a request
# for HANG seconds, past the connectors' read timeout (READ_TIMEOUT).
READ_TIMEOUT = 1.0
HANG = 2.0

MAPPINGS: dict[str, str] = {
    "booking/reservations": """
source: booking.reservations
entity: resident
id: id
fields:
  national_id:         {from: reserver_ssn, use: [strip, hetu]}
  given_name:          {from: reserver_name, use: [{name: given}]}
  family_name:         {from: reserver_name, use: [{name: family}]}
  email:               {from: reserver_email_address, use: [email]}
  phone:               {from: reserver_phone_number, use: [phone]}
  address.street:      {from: reserver_address_street}
  address.postal_code: {from: reserver_address_zip, use: [postal_code]}
  address.post_office: {from: reserver_address_city, use: [upper]}
""",
    "booking/attendees": """
source: booking.attendees
entity: resident
id: id
fields:
  given_name:  {from: name, use: [{name: given}]}
  family_name: {from: name, use: [{name: family}]}
  email:       {from: email, use: [email]}
""",
    "events/signups": """
source: events.signups
entity: resident
id: id
fields:
  given_name:          {from: first_name}
  family_name:         {from: last_name}
  email:               {from: email, use: [email]}
  phone:               {from: phone_number, use: [phone]}
  language:            {from: native_language, use: [lower]}
  address.street:      {from: street_address}
  address.postal_code: {from: zipcode, use: [postal_code]}
""",
    "library/patrons": """
source: library.patrons
entity: resident
id: patron_id
fields:
  national_id:         {from: ssn, use: [strip, hetu]}
  given_name:          {from: firstname}
  family_name:         {from: surname}
  email:               {from: email, use: [email]}
  phone:               {from: phone, use: [phone]}
  address.street:      {from: address}
  address.postal_code: {from: postal_code, use: [postal_code]}
  address.post_office: {from: city, use: [upper]}
""",
    "open311/requests": """
source: open311.requests
entity: resident
id: service_request_id
fields:
  given_name:  {from: first_name}
  family_name: {from: last_name}
  email:       {from: email, use: [email]}
  phone:       {from: phone, use: [phone]}
""",
    "feedback/items": """
source: feedback.items
entity: resident
id: uuid
fields:
  email: {from: sender, use: [email]}
""",
    "m365/users": """
source: m365.users
entity: resident
id: id
fields:
  given_name:          {from: givenName, use: [collapse_spaces]}
  family_name:         {from: surname, use: [collapse_spaces]}
  email:               {from: mail, use: [strip, email]}
  phone:               {from: mobilePhone, use: [phone]}
  address.street:      {from: streetAddress, use: [collapse_spaces]}
  address.postal_code: {from: postalCode, use: [postal_code]}
""",
    "m365/bookings_customers": """
source: m365.bookings_customers
entity: resident
id: id
fields:
  given_name:  {from: displayName, use: [{name: {part: given, order: given_first}}]}
  family_name: {from: displayName, use: [{name: {part: family, order: given_first}}]}
  email:       {from: emailAddress, use: [strip, email]}
  phone:       {from: phones.0.number, use: [phone]}
""",
}


def _reservation(n: int) -> dict[str, Any]:
    national_id, given, family = PEOPLE[n % len(PEOPLE)]
    return {
        **respa_reservation(n),
        "reserver_ssn": national_id,
        "reserver_name": f"{given} {family}",
    }


def _patron(n: int) -> dict[str, Any]:
    national_id, given, family = PEOPLE[(n * 7) % len(PEOPLE)]
    return {**koha_patron(n), "ssn": national_id, "firstname": given, "surname": family}


@dataclass
class Archipelago:
    """The running islands and the project folder that points at them."""

    root: Path
    respa: RespaIsland
    linked: LinkedEventsIsland
    koha: KohaIsland
    open311: Open311Island
    feedback: FeedbackIsland
    graph: GraphIsland
    faults: dict[str, Faults] = field(default_factory=dict)
    _numbers: Iterator[int] = field(default_factory=lambda: iter(range(100, 10_000)))

    @property
    def rest(self) -> dict[str, IslandServer]:
        """The REST islands by system."""
        return {
            "booking": self.respa,
            "events": self.linked,
            "library": self.koha,
            "open311": self.open311,
            "feedback": self.feedback,
        }

    # ------------------------------------------------------------ faults

    def set_faults(self, make: Any) -> None:
        """Give every island the Faults that `make(system, index)` returns."""
        self.faults = {system: make(system, i) for i, system in enumerate(SYSTEMS)}
        for system, server in self.rest.items():
            server.faults = self.faults[system]
        self.graph.faults = self.faults["m365"]

    def faulty(self, seed: int) -> None:
        """10-20 % of every island's requests fail, every kind of fault in turn."""
        # Booking makes the most requests (a child request per reservation): at 20 % it alone
        # meets every kind, so the mix does not hang on how the requests happen to be timed.
        rates = {
            "booking": 0.20,
            "events": 0.15,
            "feedback": 0.12,
            "library": 0.18,
            "m365": 0.10,
            "open311": 0.15,
        }
        self.set_faults(
            lambda system, i: Faults(
                rate=rates[system],
                kinds=EVERY_FAULT_KIND,
                seed=seed * 10 + i,
                retry_after=1,
                hang_seconds=HANG,
                cycle=True,
            )
        )

    def broken(self, kinds: dict[str, str]) -> None:
        """Every request to each island fails, with the kind `kinds` gives for its system."""
        self.set_faults(
            lambda system, i: Faults(rate=1.0, kinds=(kinds[system],), seed=i, hang_seconds=HANG)
        )

    def calm(self) -> None:
        """No faults."""
        self.set_faults(lambda _system, _i: Faults())

    def injected(self) -> Counter[str]:
        """The faults dealt so far, by kind, over every island."""
        total: Counter[str] = Counter()
        for faults in self.faults.values():
            total += faults.injected
        return total

    # ------------------------------------------------------------ the islands' data

    def change(self) -> None:
        """New, changed and deleted records on every island."""
        number = next(self._numbers)
        self.respa.reservations.add(6, per_tick=2)
        self.respa.reservations.touch("3", reserver_phone_number=f"+35850{number:07d}")
        self.respa.reservations.touch("7", state="cancelled")
        self.respa.add_attendees(2)
        self.linked.signups.add(5)
        self.linked.signups.touch("4", email=f"new.address{number}@example.fi")
        self.linked.delete()
        self.koha.patrons.add(4)
        self.koha.patrons.touch("5", phone=f"+35845{number:07d}")
        self.koha.delete()
        self.open311.requests_table.add(4)
        self.feedback.items.add(3)
        with self.graph.lock:
            self.graph.users.add(user(number))
            first = next(iter(self.graph.users.items))
            self.graph.users.update(first, mobilePhone=f"+35841{number:07d}")
            self.graph.users.remove(list(self.graph.users.items)[1])
            self.graph.collection("customers", BUSINESS).add(customer(number))

    def live_ids(self) -> dict[tuple[str, str], set[str]]:
        """The source ids of every record each island holds now and has not deleted."""

        def live(rows: dict[str, dict[str, Any]], field: str, dead: Any) -> set[str]:
            return {key for key, row in rows.items() if row.get(field) != dead}

        return {
            ("booking", "reservations"): live(self.respa.reservations.rows, "state", "cancelled"),
            ("booking", "attendees"): live(self.respa.attendees.rows, "cancelled", True),
            ("events", "signups"): live(self.linked.signups.rows, "deleted", True),
            ("library", "patrons"): set(self.koha.patrons.rows),
            ("open311", "requests"): set(self.open311.requests_table.rows),
            ("feedback", "items"): set(self.feedback.items.rows),
            ("m365", "users"): set(self.graph.users.items),
            ("m365", "bookings_customers"): set(self.graph.collection("customers", BUSINESS).items),
        }

    # ------------------------------------------------------------ the project

    def write_project(self, *, retries: int = 8, read_timeout: float = READ_TIMEOUT) -> None:
        """config/ and mappings/ for the six islands (rewritten: connection settings vary)."""
        (self.root / "config" / "systems").mkdir(parents=True, exist_ok=True)
        (self.root / "config" / "hub.yaml").write_text(
            "survivorship: {priority: [library, booking, m365, events, open311, feedback]}\n"
        )
        for name, text in MAPPINGS.items():
            path = self.root / "mappings" / f"{name}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text.lstrip())
        # Retry-After (1 s) is honoured: max_backoff does not cut it short.
        retry = {
            "retries": retries,
            "backoff": 0.01,
            "max_backoff": 1.0,
            "timeout": [2.0, read_timeout],
        }
        for system, document in self._systems(retry).items():
            path = self.root / "config" / "systems" / f"{system}.yaml"
            path.write_text(json.dumps(document, indent=2))  # JSON is YAML

    def _systems(self, retry: dict[str, Any]) -> dict[str, dict[str, Any]]:
        def system(
            name: str, kind: str, connection: dict[str, Any], streams: dict[str, dict[str, Any]]
        ) -> dict[str, Any]:
            for stream, options in streams.items():
                options["mapping"] = f"mappings/{name}/{stream}.yaml"
            return {
                "system": name,
                "connector": kind,
                "schedule": None,
                "connection": {**connection, **retry},
                "streams": streams,
            }

        return {
            "booking": system(
                "booking",
                "rest",
                {
                    "base_url": f"{self.respa.url}/v1",
                    "auth": {"type": "bearer", "token": {"secret": "FAULTS_RESPA_TOKEN"}},
                },
                {
                    "reservations": {
                        "path": "/reservation/",
                        "params": {"page_size": 4},
                        "records": "results",
                        "paginator": {"type": "next_url", "path": "next"},
                        "incremental": {
                            "cursor_field": "modified",
                            "param": "modified_after",
                            "lookback": 2,
                        },
                        "deletes": {"soft_field": "state", "soft_value": "cancelled"},
                        "batch_size": 10,
                    },
                    "attendees": {
                        "parent": {
                            "stream": "reservations",
                            "path": "/reservation/{id}/attendees/",
                        },
                        "records": "results",
                        "paginator": {"type": "next_url"},
                        "deletes": {"soft_field": "cancelled", "soft_value": True},
                        "batch_size": 6,
                    },
                },
            ),
            "events": system(
                "events",
                "rest",
                {
                    "base_url": f"{self.linked.url}/linkedevents/v1",
                    "auth": {
                        "type": "api_key",
                        "name": "apikey",
                        "value": {"secret": "FAULTS_LINKED_EVENTS_KEY"},
                    },
                },
                {
                    "signups": {
                        "path": "signup/",
                        "params": {"page_size": 2, "show_deleted": "true"},
                        "records": "data",
                        "paginator": {"type": "next_url", "path": "meta.next"},
                        "incremental": {
                            "cursor_field": "last_modified_time",
                            "param": "last_modified_since",
                        },
                        "deletes": {"soft_field": "deleted", "soft_value": True},
                    },
                },
            ),
            "library": system(
                "library",
                "rest",
                {
                    "base_url": f"{self.koha.url}/api/v1",
                    "auth": {
                        "type": "oauth2_client_credentials",
                        "token_url": f"{self.koha.url}/api/v1/oauth/token",
                        "client_id": CLIENT_ID,
                        "client_secret": {"secret": "FAULTS_KOHA_SECRET"},
                        "scope": "patrons",
                    },
                },
                {
                    "patrons": {
                        "path": "patrons",
                        "params": {"_per_page": 2},
                        "records": "",
                        "id": "patron_id",
                        "paginator": {"type": "link_header"},
                        "incremental": {"cursor_field": "updated_on", "param": "updated_since"},
                        "deletes": {
                            "tombstone": {
                                "path": "deleted_patrons",
                                "records": "",
                                "id": "patron_id",
                                "cursor_field": "deleted_on",
                            }
                        },
                    },
                },
            ),
            "open311": system(
                "open311",
                "rest",
                {
                    "base_url": f"{self.open311.url}/open311/v2",
                    "auth": {
                        "type": "api_key",
                        "name": "api_key",
                        "in": "query",
                        "value": {"secret": "FAULTS_OPEN311_KEY"},
                    },
                },
                {
                    "requests": {
                        "path": "requests.json",
                        "records": "",
                        "id": "service_request_id",
                        "paginator": {"type": "offset", "size": 2},
                        "incremental": {
                            "cursor_field": "updated_datetime",
                            "param": "updated_after",
                            "lookback": 5,
                        },
                        "batch_size": 12,
                    },
                },
            ),
            "feedback": system(
                "feedback",
                "rest",
                {
                    "base_url": f"{self.feedback.url}/feedback/api",
                    "auth": {
                        "type": "basic",
                        "username": BASIC_USER,
                        "password": {"secret": "FAULTS_FEEDBACK_PASSWORD"},
                    },
                },
                {
                    "items": {
                        "path": "items",
                        "params": {"limit": 2},
                        "records": "items",
                        "id": "uuid",
                        "paginator": {"type": "cursor", "path": "next_cursor", "param": "cursor"},
                        "incremental": {"cursor_field": "version", "param": "updated_since"},
                    },
                },
            ),
            "m365": system(
                "m365",
                "msgraph",
                {
                    "base_url": self.graph.base_url,
                    "token_url": self.graph.token_url,
                    "client_id": self.graph.client_id,
                    "client_secret": {"secret": "FAULTS_M365_SECRET"},
                },
                {
                    "users": {"page_size": 2},
                    "bookings_customers": {"business": BUSINESS, "page_size": 2},
                },
            ),
        }

    def environment(self) -> dict[str, str]:
        """The secrets the project refers to."""
        return {**SECRETS, "FAULTS_M365_SECRET": self.graph.client_secret}


@contextlib.contextmanager
def archipelago(root: Path) -> Iterator[Archipelago]:
    """Start the six islands with their first records; write the project into `root`."""
    respa = RespaIsland(records=0)
    respa.reservations.make = _reservation
    respa.reservations.add(40, per_tick=3)
    for number in range(1, 7):
        respa.attendees.add(2, reservation=number)
    koha = KohaIsland(records=0)
    koha.patrons.make = _patron
    koha.patrons.add(33)
    graph = GraphIsland(page_size=5, seed=5)
    for n in range(1, 21):
        graph.users.add(user(n))
    for n in range(1, 16):
        graph.collection("customers", BUSINESS).add(customer(n))
    linked, open311, feedback = LinkedEventsIsland(), Open311Island(), FeedbackIsland()
    with contextlib.ExitStack() as stack:
        for server in (respa, linked, koha, open311, feedback):
            stack.enter_context(server)
        stack.enter_context(running_graph(graph))
        arch = Archipelago(root, respa, linked, koha, open311, feedback, graph)
        arch.calm()
        arch.write_project()
        yield arch


# ---------------------------------------------------------------- running the CLI


@dataclass
class Outcome:
    """A finished `islandhub sync`: its exit code and output."""

    code: int
    stdout: str
    stderr: str


def sync_cli(
    arch: Archipelago,
    store_url: str,
    *args: str,
    process_env: Callable[..., dict[str, str]],
    timeout: float = 120,
) -> Outcome:
    """`islandhub sync ARGS` in a process of its own, as an operator or Airflow runs it."""
    env = process_env(
        **arch.environment(),
        ISLANDHUB_PROJECT=str(arch.root),
        ISLANDHUB_STORE_URL=store_url,
        COLUMNS="200",
    )
    done = subprocess.run(
        [sys.executable, "-m", "islandhub.cli", "sync", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


# ---------------------------------------------------------------- reading the store

WATCHED = {
    "sync_state": sync_state,
    "landing": landing,
    "source_records": source_records,
    "residents": residents,
    "resident_versions": resident_versions,
}


def tables(store_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tables a failed run must leave alone, in a stable order."""
    store = open_store(store_url)
    try:
        with store.connect() as conn:
            return {
                name: sorted(
                    (tuple(str(v) for v in row) for row in conn.execute(sa.select(table))),
                )
                for name, table in WATCHED.items()
            }
    finally:
        store.dispose()


def differences(actual: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """What differs between two snapshots, masked (a diff may hold national ids)."""
    found = []
    for key in sorted(set(actual) | set(expected)):
        mine, theirs = actual.get(key), expected.get(key)
        if mine == theirs:
            continue
        if isinstance(mine, dict) and isinstance(theirs, dict):
            extra = sorted(map(str, set(mine) - set(theirs)))[:5]
            missing = sorted(map(str, set(theirs) - set(mine)))[:5]
            changed = sorted(str(k) for k in set(mine) & set(theirs) if mine[k] != theirs[k])[:5]
            found.append(f"{key}: extra {extra}, missing {missing}, changed {changed}")
        else:
            found.append(f"{key}: {str(mine)[:300]} != {str(theirs)[:300]}")
    return [mask_text(line) for line in found]
