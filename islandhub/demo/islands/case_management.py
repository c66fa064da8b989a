"""Case management island: a vendor-like SQLite database of cases and their parties."""

from __future__ import annotations

import random
import sqlite3
import unicodedata
from datetime import datetime, timedelta
from typing import Any

from islandhub.demo.islands.base import DemoIsland
from islandhub.demo.model import Address, Person

# Finnish and Swedish forms of the same given name: islands write whichever the clerk heard.
NAME_VARIANTS = {
    "Johannes": "Juhani",
    "Juhani": "Johannes",
    "Erik": "Eerik",
    "Eerik": "Erik",
    "Karl": "Kaarle",
    "Kaarle": "Karl",
    "Maria": "Maija",
    "Maija": "Maria",
    "Mikael": "Mikko",
    "Mikko": "Mikael",
    "Henrik": "Heikki",
    "Heikki": "Henrik",
    "Katarina": "Katariina",
    "Katariina": "Katarina",
    "Kristina": "Kristiina",
    "Kristiina": "Kristina",
    "Jakob": "Jaakko",
    "Jaakko": "Jakob",
    "Johan": "Juha",
    "Juha": "Johan",
    "Oskar": "Oskari",
    "Oskari": "Oskar",
    "Emil": "Eemil",
    "Eemil": "Emil",
    "Anders": "Antti",
    "Antti": "Anders",
    "Tomas": "Tuomas",
    "Tuomas": "Tomas",
}
MAIL_DOMAINS = ("gmail.com", "outlook.com", "hotmail.com", "elisanet.fi", "kolumbus.fi")


class Noise:
    """Seeded, realistic mistakes and variants that islands put in their records."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def chance(self, share: float) -> bool:
        """True with probability `share`."""
        return self.rng.random() < share

    def typo(self, text: str) -> str:
        """One slip of the keyboard: a swapped, dropped, doubled or de-accented letter."""
        if len(text) < 4:
            return text
        i = self.rng.randrange(1, len(text) - 2)
        kind = self.rng.choice(("swap", "drop", "double", "plain"))
        if kind == "swap":
            return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
        if kind == "drop":
            return text[:i] + text[i + 1 :]
        if kind == "double":
            return text[: i + 1] + text[i:]
        plain = text.translate(str.maketrans("äöåÄÖÅ", "aoaAOA"))
        return plain if plain != text else text[:i] + text[i + 1] + text[i] + text[i + 2 :]

    def given(self, person: Person, full: float = 0.0) -> str:
        """The given name an island holds: first name, nickname, variant, all names, typo."""
        roll = self.rng.random()
        if roll < full:
            name = person.given_names
        elif person.nickname and roll < full + 0.1:
            name = person.nickname
        elif roll < full + 0.15:
            name = NAME_VARIANTS.get(person.first_name, person.first_name)
        else:
            name = person.first_name
        return self.typo(name) if self.chance(0.015) else name

    def family(self, person: Person, former: float = 0.0) -> str:
        """The family name: a former (pre-marriage) one on older islands, sometimes a typo."""
        name = person.family_name
        if person.former_family_name and self.chance(former):
            name = person.former_family_name
        return self.typo(name) if self.chance(0.015) else name

    def address(self, person: Person, former: float = 0.0) -> Address:
        """The address an island holds: the one before the last move on older islands."""
        if person.former_address and self.chance(former):
            return person.former_address
        return person.address

    def street(self, person: Person, address: Address) -> str:
        """The street in the resident's own language (Swedish speakers write it in Swedish)."""
        swedish = person.language == "sv" and self.chance(0.85)
        return address.street_sv if swedish else address.street_fi

    @staticmethod
    def post_office(person: Person, address: Address) -> str:
        """The post office in the resident's own language."""
        return address.post_office_sv if person.language == "sv" else address.post_office_fi

    def phone(self, e164: str | None) -> str | None:
        """A mobile number as people write it, or sometimes a landline in the 09 area."""
        if not e164:
            return self.landline() if self.chance(0.1) else None
        national = "0" + e164.removeprefix("+358")
        return self.rng.choice(
            (
                f"{national[:3]} {national[3:6]} {national[6:]}",
                e164,
                f"{national[:3]}-{national[3:]}",
                f"+358 {national[1:3]} {national[3:6]} {national[6:]}",
                national,
            )
        )

    def landline(self) -> str:
        """A Helsinki-area landline, "(09) 123 4567"."""
        return f"(09) {self.rng.randint(200, 899)} {self.rng.randint(1000, 9999)}"

    def email(self, person: Person, family_share: float = 0.1) -> str | None:
        """The person's email in mixed case with stray spaces, or the household's shared one."""
        address = person.email
        if self.chance(family_share if address else 0.3):
            address = family_email(person)
        if address is None:
            return None
        if self.chance(0.2):
            local, _, domain = address.partition("@")
            address = ".".join(p.capitalize() for p in local.split(".")) + "@" + domain
        if self.chance(0.05):
            address = address.upper()
        if self.chance(0.08):
            address = f" {address} "
        return address


def ascii_fold(text: str) -> str:
    """Text as it fits in an email address: no accents, lower case, no spaces."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return folded.lower().replace(" ", "")


def family_email(person: Person) -> str:
    """The household's shared address, the same for everyone in it."""
    digits = "".join(c for c in person.household_id if c.isdigit())[-4:]
    domain = MAIL_DOMAINS[int(digits or "0") % len(MAIL_DOMAINS)]
    return f"perhe.{ascii_fold(person.family_name)}{digits}@{domain}"


def adults(people: list[Person], day: Any) -> list[Person]:
    """Living people aged 18 or more on `day`."""
    return [p for p in people if p.died is None and p.age_on(day) >= 18]


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
        for person in adults(self.population.people, self.population.today):
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
                noise.phone(person.phone),
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
