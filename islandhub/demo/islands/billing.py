"""Water utility billing: a nightly XLSX export of customers, persons and companies mixed.

A customer who turned on e-invoicing in the resident portal has the portal's customer number
on file (`portaali_id`): a known cross-system id, the same person as that portal profile.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from openpyxl import Workbook

from islandhub.demo.islands import crm
from islandhub.demo.islands.base import DemoIsland
from islandhub.demo.model import Address, Person, Population
from islandhub.demo.noise import adults, format_phone, maybe_typo, messy_email
from islandhub.demo.population import organisations

STREAM = "customers"
SHEET = "Asiakkaat"
HEADER = (
    "asiakasnumero",
    "asiakastyyppi",  # H = henkilö (person), Y = yritys (company or housing company)
    "tunnus",  # HETU of a person (when known), Y-tunnus of a company
    "nimi",  # persons "FAMILY Given Names", companies their registered name
    "katuosoite",
    "postinumero",
    "postitoimipaikka",
    "puhelin",
    "sahkoposti",
    "kieli",  # language of service: suomi | ruotsi
    "portaali_id",  # the resident portal's customer number, for e-invoicing through it
)
# Of the customers with a portal profile, those who turned on e-invoicing there.
E_INVOICING = 0.6
COTTAGE = Address("Kesäpolku 3", "Sommarstigen 3", "01190", "BOX", "BOX")


# --- the island ---------------------------------------------------------------------------------


class BillingIsland(DemoIsland):
    """Water billing's customer register, exported nightly as one XLSX workbook."""

    system = "billing"
    title = "water utility billing: XLSX export, persons and companies (Y-tunnus) mixed"

    def __init__(self, population: Population, workdir: Path, seed: int) -> None:
        super().__init__(population, workdir, seed)
        self._seed = seed
        # A stream of its own: billing's other draws, and so its other columns, stay as they were.
        self._invoicing = random.Random(f"{seed}:{self.system}:e-invoicing")
        self._portal: dict[str, str] = {}  # person -> their portal profile's id
        self._last_number = 100_000
        self.emitted = 0  # rows written
        self.companies: list[int] = []  # customer numbers of company rows (quarantined)

    def prepare(self) -> None:
        """Write `asiakkaat_<date>.xlsx` into the island's folder (renamed when complete)."""
        self._portal = self._portal_profiles()
        rows = self._person_rows() + self._company_rows()
        self.rng.shuffle(rows)
        self.workdir.mkdir(parents=True, exist_ok=True)
        name = f"asiakkaat_{self.population.today:%Y-%m-%d}.xlsx"
        partial = self.workdir / f"{name}.part"
        self._write(rows, partial)
        partial.replace(self.workdir / name)
        self.emitted = len(rows)
        self.companies = [row[0] for row in rows if row[1] == "Y"]

    def connection(self) -> dict[str, Any]:
        """The drop folder."""
        return {"path": str(self.workdir)}

    def _write(self, rows: list[tuple[Any, ...]], path: Path) -> None:
        book = Workbook()
        sheet = book.active
        assert sheet is not None
        sheet.title = SHEET
        sheet.append([f"Sipoon Vesi – asiakasrekisteri {self.population.today:%d.%m.%Y}"])
        sheet.append(list(HEADER))
        for row in rows:
            sheet.append(list(row))
        book.save(path)

    def _portal_profiles(self) -> dict[str, str]:
        """Person -> the id of their first portal profile, as the portal island makes them."""
        portal = crm.CrmIsland(self.population, self.workdir, self._seed)
        portal.prepare()  # the same seed: the same profiles, held in memory only
        first: dict[str, str] = {}
        for row in portal.truth:
            first.setdefault(row.entity_id, row.source_id)
        return first

    def _portal_id(self, person: Person) -> str | None:
        profile = self._portal.get(person.person_id)
        if profile is None or self._invoicing.random() >= E_INVOICING:
            return None
        return profile

    def _customer_number(self) -> int:
        self._last_number += self.rng.randint(1, 7)
        return self._last_number

    def _person_rows(self) -> list[tuple[Any, ...]]:
        """One bill payer for about 55 % of households; a few with a second property."""
        households: dict[str, Person] = {}
        for person in sorted(adults(self.population), key=lambda p: p.birth_date):
            households.setdefault(person.household_id, person)  # the eldest adult pays
        rows = []
        for person in households.values():
            if self.rng.random() < 0.55:
                rows.append(self._person_row(person, self._home(person)))
                if self.rng.random() < 0.03:  # a summer cottage: a second customer number
                    rows.append(self._person_row(person, COTTAGE))
        return rows

    def _home(self, person: Person) -> Address:
        if person.former_address and self.rng.random() < 0.3:
            return person.former_address  # the move never reached billing
        return person.address

    def _person_row(self, person: Person, address: Address) -> tuple[Any, ...]:
        number = self._customer_number()
        self.add_truth(STREAM, str(number), person.person_id)
        family = person.family_name
        if person.former_family_name and self.rng.random() < 0.6:
            family = person.former_family_name  # married since the contract was signed
        swedish = person.language == "sv"
        return (
            number,
            "H",
            person.hetu if self.rng.random() < 0.6 else None,
            maybe_typo(f"{family.upper()} {person.given_names}", self.rng),
            address.street_sv if swedish and self.rng.random() < 0.5 else address.street_fi,
            self._postal_code(address.postal_code),
            address.post_office_sv if swedish else address.post_office_fi,
            format_phone(person.phone, self.rng) if person.phone else None,
            messy_email(person.email, self.rng) if person.email else None,
            "ruotsi" if swedish else "suomi",
            self._portal_id(person),
        )

    def _postal_code(self, code: str) -> Any:
        """Half the codes were typed into Excel as numbers: 04130 became 4130."""
        return int(code) if self.rng.random() < 0.5 else code

    def _company_rows(self) -> list[tuple[Any, ...]]:
        """Companies and associations with a water connection: about one row in twelve."""
        known = organisations(self.population.seed)
        count = min(len(known), max(3, len(self.population.people) // 60))
        rows = []
        for index, company in enumerate(self.rng.sample(known, count)):
            number = self._customer_number()
            self.add_truth(STREAM, str(number), company.org_id)
            address = company.address
            rows.append(
                (
                    number,
                    "Y",
                    company.ytunnus,
                    company.name,
                    address.street_fi,
                    self._postal_code(address.postal_code),
                    address.post_office_fi,
                    f"09 {self.rng.randint(100, 999)} {self.rng.randint(1000, 9999)}",
                    f"laskutus{index}@yritys{index}.example.fi",
                    "suomi",
                    None,
                )
            )
        return rows
