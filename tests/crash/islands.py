"""The islands of the crash trials: one project per connector kind, built from fixed data.

Each project has two systems, synced in name order (`sync --all` sorts them):

- the kind's island: `daycare` (files: CSV drops), `booking` (rest: a Respa-shaped API on
  127.0.0.1), `cases` (sql: a real SQLite file, or a real PostgreSQL table; with a quality
  gate, so it publishes after its check) or `m365` (msgraph: the fake Graph on 127.0.0.1,
  users by delta query). 1,200 records of 1,000 people: 200 people have two records (one
  resident), a tenth of the records have no national id (a resident each), one in 41 has
  no family name (quarantined: the mapping requires it); the CSV drop also has a row that
  cannot be read.
- `population`, a register drop (files, JSON Lines) of 300 of the same people: their
  residents are shared with the island's records by national id.

Batches are small (40 records), so a run has many points to be killed at. `World.change()`
makes the second phase's edits: in the island a tenth of the records changed, one in 29
deleted (where the kind knows deletes), 60 new; in the register 43 new family names.
Everything is deterministic: two worlds of a kind, built apart, hold the same data, so an
uninterrupted run over one is the reference for a killed run over the other. Island URLs
differ (ports); comparisons normalise them.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tests.fakes.graph_island import GraphIsland, running_graph
from tests.fakes.http_island import (
    IslandServer,
    Reply,
    Request,
    Table,
    drf_page,
    parse_time,
    stamp_helsinki,
)
from tests.helpers import hetu

KINDS = ("files", "rest", "sql", "msgraph")
SYSTEM_OF = {"files": "daycare", "rest": "booking", "sql": "cases", "msgraph": "m365"}
PEOPLE = 1000
RECORDS = 1200
REGISTER = 300
NEW_RECORDS = 60
BATCH = 40
GIVEN = ["Aino", "Björn", "Åsa", "Väinö", "Elin", "Onni", "Saga", "Matti", "Karin", "Eino"]
FAMILY = ["Mäkinen", "Öberg", "Lindqvist", "Virtanen", "Sjöholm", "Nieminen", "Åkerlund"]
BOOKING_TOKEN = "crash-booking-token-5d1e9b"
GRAPH_SECRET = "Crash~Graph.Secret_7c4f19"
MTIME = 1_767_225_600  # 2026-01-01: drop files get fixed times, so fingerprints repeat


# ---------------------------------------------------------------- the data


@dataclass(frozen=True)
class Person:
    """Someone the islands know."""

    national_id: str
    given: str
    family: str
    born: str


def person(number: int) -> Person:
    """Person `number` (0 <= number < PEOPLE); national ids are unique below 1,680."""
    day, month, year = 1 + number % 28, 1 + number % 12, 1940 + number % 80
    return Person(
        hetu(day, month, year, 2 + number // 336),
        GIVEN[number % len(GIVEN)],
        FAMILY[(number // len(GIVEN)) % len(FAMILY)],
        f"{year}-{month:02d}-{day:02d}",
    )


@dataclass(frozen=True)
class Entry:
    """Record `key` of the kind's island, kind-neutral."""

    key: int
    national_id: str | None
    given: str
    family: str
    email: str


def entry(key: int, changed: bool = False) -> Entry:
    """The island's record `key`; `changed`: its second-phase version (a new email)."""
    someone = person((key * 7) % PEOPLE)  # a permutation below 1,000; then second records
    local = f"{someone.given}.{someone.family}.{key}".lower().translate(_ASCII)
    domain = "muutos.example.fi" if changed else "example.fi"
    return Entry(
        key,
        None if key % 10 == 3 else someone.national_id,
        someone.given,
        "" if key % 41 == 5 else someone.family,
        f"{local}@{domain}",
    )


_ASCII = str.maketrans("åäöÅÄÖ", "aaoAAO")


def changed_keys() -> list[int]:
    """Records the second phase changes."""
    return [k for k in range(RECORDS) if k % 10 == 1 and k not in set(deleted_keys())]


def deleted_keys() -> list[int]:
    """Records the second phase deletes (in kinds that know deletes)."""
    return [k for k in range(RECORDS) if k % 29 == 2]


def new_keys() -> range:
    """Records the second phase adds (people who already have records: merged)."""
    return range(RECORDS, RECORDS + NEW_RECORDS)


# ---------------------------------------------------------------- the project


@dataclass
class World:
    """A project folder, its islands serving, and the secrets a sync needs."""

    kind: str
    root: Path
    env: dict[str, str] = field(default_factory=dict)
    change: Callable[[], None] = lambda: None

    @property
    def system(self) -> str:
        """The kind's island's system id."""
        return SYSTEM_OF[self.kind]


ISLAND_MAPPING = """\
source: {system}.{stream}
entity: resident
id: {id}
fields:
  national_id: {{from: {ssn}, use: [strip, hetu]}}
  given_name:  {{from: {given}}}
  family_name: {{from: {family}, required: true}}
  email:       {{from: {email}, use: [email]}}
"""

REGISTER_SYSTEM = f"""\
system: population
connector: files
schedule: null
connection: {{path: drop/population}}
streams:
  persons:
    files: "vtj_*.jsonl"
    format: jsonl
    batch_size: {BATCH}
    mapping: mappings/population/persons.yaml
"""

REGISTER_MAPPING = """\
source: population.persons
entity: resident
id: id
fields:
  national_id: {from: hetu, use: [strip, hetu], required: true}
  given_name:  {from: etunimet}
  family_name: {from: sukunimi}
  birth_date:  {from: syntymaaika, use: [{date: "%Y-%m-%d"}]}
"""


def _write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _project(
    root: Path, system: str, stream: str, system_yaml: str, mapping: dict[str, str]
) -> None:
    """The project folder: hub.yaml, the island's and the register's systems and mappings."""
    _write(root, "config/hub.yaml", f"survivorship: {{priority: [population, {system}]}}\n")
    _write(root, f"config/systems/{system}.yaml", system_yaml)
    _write(
        root,
        f"mappings/{system}/{stream}.yaml",
        ISLAND_MAPPING.format(system=system, stream=stream, **mapping),
    )
    _write(root, "config/systems/population.yaml", REGISTER_SYSTEM)
    _write(root, "mappings/population/persons.yaml", REGISTER_MAPPING)
    _register(root, "vtj_001.jsonl", [(n, person(n).family) for n in range(REGISTER)], 1)


def _register(root: Path, name: str, people: list[tuple[int, str]], day: int) -> None:
    """A register extract: people by number, each with the family name it now gives."""
    lines = []
    for number, family in people:
        someone = person(number)
        row = {
            "id": f"P{number:04d}",
            "hetu": someone.national_id,
            "etunimet": someone.given,
            "sukunimi": family,
            "syntymaaika": someone.born,
        }
        lines.append(json.dumps(row, ensure_ascii=False) + "\n")
    _write(root, f"drop/population/{name}", "".join(lines))
    stamp = MTIME + day * 86_400
    os.utime(root / "drop" / "population" / name, (stamp, stamp))


def _register_change(root: Path) -> None:
    """The second phase's register extract: 43 people married (a new family name)."""
    _register(root, "vtj_002.jsonl", [(n, "Holmberg") for n in range(0, REGISTER, 7)], 2)


@contextmanager
def world(
    kind: str, root: Path, *, pg_url: str | None = None, batch: int = BATCH
) -> Iterator[World]:
    """The project of `kind` under `root`, its islands serving while the block runs.

    `pg_url`: for the sql kind, keep the island's table in PostgreSQL (a schema of its own,
    dropped afterwards) instead of a SQLite file. `batch`: the batch size of the island (not
    msgraph's, whose pages are its batches).
    """
    builders = {"files": _files, "rest": _rest, "sql": _sql, "msgraph": _msgraph}
    with ExitStack() as stack:
        built = builders[kind](root, stack, pg_url)
        system = root / "config" / "systems" / f"{built.system}.yaml"
        system.write_text(
            system.read_text().replace(f"batch_size: {BATCH}", f"batch_size: {batch}")
        )
        island_change = built.change

        def change() -> None:
            island_change()
            _register_change(root)

        built.change = change
        yield built


# ---------------------------------------------------------------- files: a CSV drop


FILES_SYSTEM = f"""\
system: daycare
connector: files
schedule: null
connection: {{path: drop/daycare}}
streams:
  children:
    files: "children_*.csv"
    format: csv
    delimiter: ";"
    batch_size: {BATCH}
    archive: done
    mapping: mappings/daycare/children.yaml
"""


def _files(root: Path, stack: ExitStack, pg_url: str | None) -> World:
    _project(
        root,
        "daycare",
        "children",
        FILES_SYSTEM,
        {"id": "id", "ssn": "hetu", "given": "etunimi", "family": "sukunimi", "email": "email"},
    )
    _csv(root / "drop" / "daycare" / "children_1.csv", [entry(k) for k in range(RECORDS)], 1)

    def change() -> None:
        rows = [entry(k, changed=True) for k in changed_keys()] + [entry(k) for k in new_keys()]
        _csv(root / "drop" / "daycare" / "children_2.csv", rows, 2)

    return World("files", root, change=change)


def _csv(path: Path, rows: list[Entry], day: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(["id", "hetu", "etunimi", "sukunimi", "email"])
        for index, row in enumerate(rows):
            if index == len(rows) // 2:
                writer.writerow(["broken", "row", "with", "too", "many", "columns"])
            writer.writerow(
                [f"D{row.key:05d}", row.national_id or "", row.given, row.family, row.email]
            )
    stamp = MTIME + day * 86_400
    os.utime(path, (stamp, stamp))


# ---------------------------------------------------------------- rest: a Respa-shaped API


class BookingIsland(IslandServer):
    """Reservations as Respa serves them: DRF pages, `modified_after`, cancelled = deleted."""

    def __init__(self) -> None:
        super().__init__({"type": "bearer", "token": BOOKING_TOKEN})
        self.reservations = Table(
            self.clock,
            lambda n: _reservation(entry(n - 1)),
            id_field="id",
            modified_field="modified",
            stamp=stamp_helsinki,
        )
        self.reservations.add(RECORDS, per_tick=3)  # three share each modification time
        self.route("GET", r"/v1/reservation", self.list_reservations)

    def list_reservations(self, request: Request) -> Reply:
        """A DRF page of the reservations changed since `modified_after` (inclusive)."""
        since = request.query.get("modified_after")
        return drf_page(request, self.reservations.select(parse_time(since) if since else None))

    def change(self) -> None:
        """The second phase: changed, cancelled and new reservations."""
        for key in changed_keys():
            self.reservations.touch(str(key + 1), reserver_email_address=entry(key, True).email)
        for key in deleted_keys():
            self.reservations.touch(str(key + 1), state="cancelled")
        self.reservations.add(NEW_RECORDS, per_tick=3)


def _reservation(row: Entry) -> dict[str, Any]:
    return {
        "id": row.key + 1,
        "resource": f"sali-{row.key % 5}",
        "state": "confirmed",
        "reserver_ssn": row.national_id,
        "reserver_first_name": row.given,
        "reserver_last_name": row.family,
        "reserver_email_address": row.email,
    }


REST_SYSTEM = f"""\
system: booking
connector: rest
schedule: null
connection:
  base_url: {{url}}/v1
  auth: {{{{type: bearer, token: {{{{secret: CRASH_BOOKING_TOKEN}}}}}}}}
  retries: 4
  backoff: 0.01
  max_backoff: 0.05
  timeout: [5, 10]
streams:
  reservations:
    path: /reservation/
    params: {{{{page_size: 20}}}}
    records: results
    paginator: {{{{type: next_url, path: next}}}}
    incremental: {{{{cursor_field: modified, param: modified_after, lookback: 2}}}}
    deletes: {{{{soft_field: state, soft_value: cancelled}}}}
    batch_size: {BATCH}
    mapping: mappings/booking/reservations.yaml
"""


def _rest(root: Path, stack: ExitStack, pg_url: str | None) -> World:
    server = BookingIsland()
    stack.enter_context(server)
    _project(
        root,
        "booking",
        "reservations",
        REST_SYSTEM.format(url=server.url),
        {
            "id": "id",
            "ssn": "reserver_ssn",
            "given": "reserver_first_name",
            "family": "reserver_last_name",
            "email": "reserver_email_address",
        },
    )
    return World("rest", root, {"CRASH_BOOKING_TOKEN": BOOKING_TOKEN}, server.change)


# ---------------------------------------------------------------- sql: a case database


T0 = dt.datetime(2026, 1, 5, 8, 30)


def _parties_table(metadata: sa.MetaData, schema: str | None) -> sa.Table:
    return sa.Table(
        "parties",
        metadata,
        sa.Column("party_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("hetu", sa.String(11)),
        sa.Column("given_names", sa.String(80)),
        sa.Column("family_name", sa.String(80)),
        sa.Column("email", sa.String(120)),
        sa.Column("removed", sa.Boolean, nullable=False),
        sa.Column("modified_at", sa.DateTime, nullable=False),
        schema=schema,
    )


def _party(row: Entry, modified: dt.datetime, removed: bool = False) -> dict[str, Any]:
    return {
        "party_id": row.key + 1,
        "hetu": row.national_id,
        "given_names": row.given,
        "family_name": row.family,
        "email": row.email,
        "removed": removed,
        "modified_at": modified,
    }


def _sql(root: Path, stack: ExitStack, pg_url: str | None) -> World:
    schema = None
    if pg_url is None:
        url = f"sqlite:///{root / 'cases.db'}"
        root.mkdir(parents=True, exist_ok=True)
    else:
        url, schema = pg_url, f"island_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    stack.callback(engine.dispose)
    if schema is not None:
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

        def drop() -> None:
            with engine.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))

        stack.callback(drop)
    metadata = sa.MetaData()
    parties = _parties_table(metadata, schema)
    metadata.create_all(engine)
    with engine.begin() as conn:
        # The first 400 rows share one modification time (a bulk import), the rest five a
        # minute: equal cursor values straddle many batch boundaries.
        conn.execute(
            parties.insert(),
            [
                _party(entry(k), T0 + dt.timedelta(minutes=max(0, k - 400) // 5 + (k >= 400)))
                for k in range(RECORDS)
            ],
        )

    def change() -> None:
        later = T0 + dt.timedelta(days=1)
        with engine.begin() as conn:
            for key in changed_keys():
                conn.execute(
                    parties.update()
                    .where(parties.c.party_id == key + 1)
                    .values(email=entry(key, True).email, modified_at=later)
                )
            for index, key in enumerate(deleted_keys()):
                conn.execute(
                    parties.update()
                    .where(parties.c.party_id == key + 1)
                    .values(removed=True, modified_at=later + dt.timedelta(minutes=index // 4))
                )
            conn.execute(
                parties.insert(),
                [_party(entry(k), later + dt.timedelta(hours=1)) for k in new_keys()],
            )

    where = f"    schema: {schema}\n" if schema else ""
    system_yaml = (
        f'system: cases\nconnector: sql\nschedule: null\nconnection: {{url: "{url}"}}\n'
        f"streams:\n  parties:\n    table: parties\n{where}    id: party_id\n"
        f"    cursor: modified_at\n    batch_size: {BATCH}\n"
        "    deleted: {column: removed, value: true}\n"
        "    mapping: mappings/cases/parties.yaml\n"
        # A gate: the stream publishes only after its quality check, all at the end.
        "quality: {gate: {max_quarantined: 50%}}\n"
    )
    _project(
        root,
        "cases",
        "parties",
        system_yaml,
        {
            "id": "party_id",
            "ssn": "hetu",
            "given": "given_names",
            "family": "family_name",
            "email": "email",
        },
    )
    return World("sql", root, change=change)


# ---------------------------------------------------------------- msgraph: Entra ID users


def _user(row: Entry) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"crash-user-{row.key}")),
        "displayName": f"{row.given} {row.family}".strip(),
        "givenName": row.given,
        "surname": row.family,
        "mail": row.email,
        "city": "Sipoo",
        "accountEnabled": True,
        # Where a municipality keeps the national id of an account synced from its HR system.
        "onPremisesExtensionAttributes": {"extensionAttribute1": row.national_id},
    }


MSGRAPH_SYSTEM = f"""\
system: m365
connector: msgraph
schedule: null
connection:
  base_url: {{base_url}}
  token_url: {{token_url}}
  client_id: {{client_id}}
  client_secret: {{{{secret: CRASH_M365_SECRET}}}}
  retries: 4
  backoff: 0.01
  max_backoff: 0.05
  timeout: 10
streams:
  users:
    select: [id, givenName, surname, mail, onPremisesExtensionAttributes]
    page_size: {BATCH}
    mapping: mappings/m365/users.yaml
"""


def _msgraph(root: Path, stack: ExitStack, pg_url: str | None) -> World:
    graph = GraphIsland(page_size=BATCH)
    graph.client_secret = GRAPH_SECRET
    stack.enter_context(running_graph(graph))
    for key in range(RECORDS):
        graph.users.add(_user(entry(key)))
    _project(
        root,
        "m365",
        "users",
        MSGRAPH_SYSTEM.format(
            base_url=graph.base_url, token_url=graph.token_url, client_id=graph.client_id
        ),
        {
            "id": "id",
            "ssn": "onPremisesExtensionAttributes.extensionAttribute1",
            "given": "givenName",
            "family": "surname",
            "email": "mail",
        },
    )

    def change() -> None:
        with graph.lock:
            for key in changed_keys():
                graph.users.update(_user(entry(key))["id"], mail=entry(key, True).email)
            for key in deleted_keys():
                graph.users.remove(_user(entry(key))["id"])
            for key in new_keys():
                graph.users.add(_user(entry(key)))

    return World("msgraph", root, {"CRASH_M365_SECRET": GRAPH_SECRET}, change)
