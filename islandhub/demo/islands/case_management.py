"""Case management island: a vendor-like SQLite database of cases and their parties."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import Any

from islandhub.demo.islands.base import DemoIsland
from islandhub.demo.model import Person
from islandhub.demo.noise import Noise, adults

# ---------------------------------------------------------------- the island

SCHEMA = """
CREATE TABLE asiat (
    id INTEGER PRIMARY KEY,
    diaarinumero TEXT NOT NULL UNIQUE,   -- "SIPOO/1234/2025"
    otsikko TEXT NOT NULL,
    tila TEXT NOT NULL,                  -- vireillä, käsittelyssä, ratkaistu, arkistoitu
    avattu TEXT NOT NULL,                -- date
    muokattu TEXT NOT NULL               -- set by the application on every change
);
CREATE TABLE osapuolet (
    id INTEGER PRIMARY KEY,
    asia_id INTEGER NOT NULL REFERENCES asiat(id),
    rooli TEXT NOT NULL,                 -- hakija, asianosainen, muistuttaja, edustaja
    nimi TEXT NOT NULL,                  -- "Sukunimi Etunimi", as typed by the clerk
    hetu TEXT,
    osoite TEXT,
    postinumero TEXT,
    postitoimipaikka TEXT,
    puhelin TEXT,
    sahkoposti TEXT,
    muokattu TEXT NOT NULL
);
-- The view the vendor offers the hub: a party changes when it or its case changes.
CREATE VIEW v_osapuolet AS
SELECT o.id, o.asia_id, a.diaarinumero, a.otsikko AS asia_otsikko, a.tila AS asia_tila,
       o.rooli, o.nimi, o.hetu, o.osoite, o.postinumero, o.postitoimipaikka, o.puhelin,
       o.sahkoposti, max(o.muokattu, a.muokattu) AS muokattu
FROM osapuolet o JOIN asiat a ON a.id = o.asia_id;
"""
TOPICS = (
    "Rakennuslupa",
    "Poikkeamislupa",
    "Maisematyölupa",
    "Ympäristölupa",
    "Oikaisuvaatimus",
    "Kuntalaisaloite",
    "Vahingonkorvausvaatimus",
    "Avustushakemus",
    "Tietopyyntö",
    "Ruoppausilmoitus",
)
STATES = ("vireillä", "käsittelyssä", "ratkaistu", "arkistoitu")
ROLES = ("hakija", "asianosainen", "muistuttaja", "edustaja")
CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"


class CaseManagement(DemoIsland):
    """Cases and parties in SQLite; the hub reads the view `v_osapuolet` by `muokattu`."""

    system = "cases"
    title = "Case management (SQL database, cases and parties)"

    def prepare(self) -> None:
        """Pick ~8 % of adults as parties of one to three cases and write cases.db."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.workdir / "cases.db"
        self.db_path.unlink(missing_ok=True)
        self.noise = Noise(self.rng)
        self.cases: list[tuple[Any, ...]] = []
        self.parties: list[tuple[Any, ...]] = []
        for person in adults(self.population):
            if self.noise.chance(0.08):
                for _ in range(self.rng.choice((1, 1, 1, 1, 1, 1, 2, 2, 3))):
                    self._add_case(person)
        with sqlite3.connect(self.db_path) as db:
            db.executescript(SCHEMA)
            db.executemany("INSERT INTO asiat VALUES (?, ?, ?, ?, ?, ?)", self.cases)
            db.executemany(
                "INSERT INTO osapuolet VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", self.parties
            )
        db.close()

    def _when(self) -> datetime:
        start = datetime.combine(self.population.today, datetime.min.time())
        return start - timedelta(minutes=self.rng.randint(60, 4 * 365 * 24 * 60))

    def _add_case(self, person: Person) -> None:
        case_id = len(self.cases) + 1
        opened = self._when()
        modified = opened + timedelta(minutes=self.rng.randint(0, 90 * 24 * 60))
        number = f"SIPOO/{case_id + 100:04d}/{opened.year}"
        topic = self.rng.choice(TOPICS)
        state = self.rng.choice(STATES)
        self.cases.append((case_id, number, topic, state, opened.date().isoformat(), _ts(modified)))
        self._add_party(case_id, person, modified)

    def _add_party(self, case_id: int, person: Person, modified: datetime) -> None:
        noise, party_id = self.noise, len(self.parties) + 1
        address = noise.address(person, former=0.6)  # an old system: moves reach it late
        self.parties.append(
            (
                party_id,
                case_id,
                self.rng.choice(ROLES),
                self._name(person),
                self._hetu(person),
                noise.street(person, address),
                address.postal_code,
                noise.post_office(person, address),
                noise.phone(person),
                noise.email(person) if noise.chance(0.7) else None,
                _ts(modified),
            )
        )
        self.add_truth("parties", str(party_id), person.person_id)

    def _name(self, person: Person) -> str:
        """The name as "Sukunimi Etunimi", typed by a clerk; sometimes the other way round."""
        given = self.noise.given(person, full=0.4)
        family = self.noise.family(person, former=0.7)
        if self.noise.chance(0.05):
            return f"{given} {family}"
        return f"{family.upper()} {given}" if self.noise.chance(0.1) else f"{family} {given}"

    def _hetu(self, person: Person) -> str | None:
        """Missing for ~15 %; now and then a temporary 9xx id or a typo'd check character."""
        roll = self.rng.random()
        if roll < 0.15:
            return None
        if roll < 0.17:
            head = person.hetu[:7]
            number = f"{self.rng.randint(900, 999)}"
            return head + number + CHECK[int(head[:6] + number) % 31]
        if roll < 0.19:
            wrong = CHECK[(CHECK.index(person.hetu[-1]) + 1) % 31]
            return person.hetu[:-1] + wrong
        return f" {person.hetu}" if roll < 0.2 else person.hetu  # pasted with a space

    def connection(self) -> dict[str, Any]:
        """The SQLite file in this run's workdir."""
        return {"url": f"sqlite:///{self.db_path}"}


def _ts(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S")
