"""School administration island: a nightly semicolon CSV export in cp1252, with guardians."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path
from typing import Any

from islandhub.demo.islands.base import DemoIsland
from islandhub.demo.model import Person, Population
from islandhub.demo.noise import (
    address_seen,
    aged,
    break_hetu,
    email_seen,
    family_name_seen,
    first_name_seen,
    maybe_typo,
    phone_seen,
    plant_share,
    post_office,
    street,
)

LANGUAGE_WORDS_FI = {"fi": "suomi", "sv": "ruotsi", "ru": "venäjä", "et": "viro", "en": "englanti"}
LANGUAGE_WORDS_SV = {
    "fi": "finska",
    "sv": "svenska",
    "ru": "ryska",
    "et": "estniska",
    "en": "engelska",
}


def grade(pupil: Person, today: date) -> int:
    """The school year (1-9) a pupil of this age is in."""
    return min(9, max(1, pupil.age_on(today) - 6))


# --- the school island ----------------------------------------------------------------------

COLUMNS = [
    "oppilas_id", "nimi", "hetu", "syntymaaika", "aidinkieli", "lahiosoite", "postinumero",
    "postitoimipaikka", "koulu", "luokka",
    "huoltaja1_nimi", "huoltaja1_puhelin", "huoltaja1_sahkoposti",
    "huoltaja2_nimi", "huoltaja2_puhelin", "huoltaja2_sahkoposti",
]  # fmt: skip
SCHOOLS_FI = ("Sipoonlahden koulu", "Nikkilän yhtenäiskoulu", "Talman koulu")
SCHOOLS_SV = ("Sibbesborgs skola", "Kyrkoby skola", "Söderkulla skola")


class SchoolIsland(DemoIsland):
    """Pupils aged 7-15 in a nightly CSV (`;`, cp1252), guardians' contacts in columns."""

    system = "school"
    title = "School administration: nightly CSV export (;, cp1252)"

    def __init__(self, population: Population, workdir: Path, seed: int) -> None:
        super().__init__(population, workdir, seed)
        self.rows: list[dict[str, str]] = []
        self.planted: dict[str, set[str]] = {"pupils": set()}  # source ids meant for quarantine

    def prepare(self) -> None:
        """Write pupils_<date>.csv into the workdir (under a .part name, then renamed)."""
        people = self.population.by_id()
        pupils = aged(self.population, 7, 15)
        twice = plant_share(len(pupils), 0.01, self.rng)  # moved school: listed in both
        broken = plant_share(len(pupils), 0.01, self.rng)
        for index, pupil in enumerate(pupils):
            for _ in range(2 if index in twice else 1):
                self._add(pupil, people, index in broken)
        self._write()

    def _add(self, pupil: Person, people: dict[str, Person], broken: bool) -> None:
        source_id = f"OP{len(self.rows) + 10001}"
        row = self._pupil_columns(pupil, source_id)
        if broken:
            row["hetu"] = break_hetu(pupil.hetu)
            self.planted["pupils"].add(source_id)
        guardians = [people[g] for g in pupil.guardians if g in people][:2]
        for number, guardian in enumerate(guardians, start=1):
            row.update(self._guardian_columns(guardian, number))
        self.rows.append(row)
        self.add_truth("pupils", source_id, pupil.person_id)

    def _pupil_columns(self, pupil: Person, source_id: str) -> dict[str, str]:
        rng = self.rng
        family = maybe_typo(pupil.family_name, rng)
        if rng.random() < 0.1:
            family = family.upper()  # some schools type the family name in capitals
        given = pupil.given_names if rng.random() < 0.6 else first_name_seen(pupil, rng)
        address = address_seen(pupil, rng, p_old=0.3)
        swedish = pupil.language == "sv"
        words = LANGUAGE_WORDS_SV if swedish and rng.random() < 0.7 else LANGUAGE_WORDS_FI
        return {
            "oppilas_id": source_id,
            "nimi": f"{family} {maybe_typo(given, rng)}",
            "hetu": pupil.hetu,
            "syntymaaika": f"{pupil.birth_date:%d.%m.%Y}",
            "aidinkieli": words.get(pupil.language, "muu" if not swedish else "annat"),
            "lahiosoite": street(pupil, address),
            "postinumero": address.postal_code,
            "postitoimipaikka": post_office(pupil, address),
            "koulu": rng.choice(SCHOOLS_SV if swedish else SCHOOLS_FI),
            "luokka": f"{grade(pupil, self.population.today)}{rng.choice('ABC')}",
        }

    def _guardian_columns(self, guardian: Person, number: int) -> dict[str, str]:
        rng = self.rng
        name = f"{family_name_seen(guardian, rng, 0.2)} {first_name_seen(guardian, rng)}"
        return {
            f"huoltaja{number}_nimi": maybe_typo(name, rng),
            f"huoltaja{number}_puhelin": phone_seen(guardian, rng),
            f"huoltaja{number}_sahkoposti": email_seen(guardian, rng, p_shared=0.25),
        }

    def _write(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        text = io.StringIO()
        writer = csv.DictWriter(
            text,
            COLUMNS,
            delimiter=";",
            lineterminator="\r\n",
            restval="",
            quoting=csv.QUOTE_MINIMAL,
        )
        writer.writeheader()
        writer.writerows(self.rows)
        final = self.workdir / f"pupils_{self.population.today:%Y%m%d}.csv"
        part = final.with_name(final.name + ".part")
        # A legacy Windows export: letters outside cp1252 come out as "?", as they really do.
        part.write_bytes(text.getvalue().encode("cp1252", errors="replace"))
        part.replace(final)

    def connection(self) -> dict[str, Any]:
        """The drop folder: the island's workdir."""
        return {"path": str(self.workdir)}
