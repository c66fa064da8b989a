"""The synthetic municipality's people: what every demo island draws its records from.

The generator (population.py) makes a `Population`; each island (islands/) turns it into
records in its own shape, with its own noise, and says which person each record is
(ground truth for `islandhub evaluate`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class Address:
    """A home address in Finnish and Swedish (the register's S and R fields)."""

    street_fi: str  # "Iso Kylätie 12 B 7"
    street_sv: str  # "Stora Byvägen 12 B 7"
    postal_code: str  # "04130"
    post_office_fi: str  # "SIPOO"
    post_office_sv: str  # "SIBBO"


@dataclass
class Person:
    """One resident (or former resident) of the municipality, as the truth knows them."""

    person_id: str  # ground-truth entity id, e.g. "P000123"
    hetu: str  # valid; some with the 2023 century signs; a few temporary ids exist only in islands
    given_names: str  # all first names, "Anna Maria"
    family_name: str  # current surname
    birth_date: date
    sex: str  # "F" | "M"
    language: str  # mother tongue: "fi", "sv", or another ISO 639-1 code
    address: Address
    household_id: str
    municipality_code: str = "753"
    email: str | None = None  # personal address, if any
    phone: str | None = None  # mobile in E.164, if any
    nickname: str | None = None  # what some islands call them ("Jussi" for Juhani)
    former_family_name: str | None = None  # before marriage; older islands still have it
    former_address: Address | None = None  # before the last move; older islands still have it
    non_disclosure: bool = False  # turvakielto
    died: date | None = None
    guardians: list[str] = field(default_factory=list)  # person_ids of guardians (children)
    twin_of: str | None = None  # a trap: same birth date, same family, same address

    @property
    def first_name(self) -> str:
        """The first of the given names (what most systems call a person)."""
        return self.given_names.split()[0]

    def age_on(self, day: date) -> int:
        """Age in whole years on `day`."""
        years = day.year - self.birth_date.year
        return years - ((day.month, day.day) < (self.birth_date.month, self.birth_date.day))


@dataclass
class Population:
    """Everyone the demo knows, the day the data is drawn, and the seed it came from."""

    people: list[Person]
    today: date
    seed: int

    def by_id(self) -> dict[str, Person]:
        """People by person_id."""
        return {p.person_id: p for p in self.people}

    def living(self) -> list[Person]:
        """People alive on `today`."""
        return [p for p in self.people if p.died is None]


@dataclass(frozen=True)
class TruthRow:
    """Ground truth for one source record: which person it describes."""

    system: str
    stream: str
    source_id: str
    entity_id: str  # a person_id, or an organisation id ("ORG-...") for companies
