"""School administration island: a nightly semicolon CSV export in cp1252, with guardians."""

from __future__ import annotations

import csv
import hashlib
import io
import random
from datetime import date
from pathlib import Path
from typing import Any

from islandhub.demo.islands.base import DemoIsland
from islandhub.demo.model import Address, Person, Population

# --- noise shared by the islands of this module's batch (daycare, library, feedback) ------

CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"
# Finnish and Swedish forms and everyday short forms of common first names.
VARIANTS: dict[str, tuple[str, ...]] = {
    "Johannes": ("Juhani", "Johan", "Hannes"),
    "Juhani": ("Jussi", "Juha", "Johannes"),
    "Johan": ("Janne", "Juhani"),
    "Kristina": ("Kirsti", "Stina"),
    "Maria": ("Maija", "Mia"),
    "Erik": ("Eero", "Erkki"),
    "Karl": ("Kalle", "Kaarlo"),
    "Anders": ("Antti",),
    "Mikael": ("Mikko", "Micke"),
    "Elisabet": ("Liisa", "Lisa"),
    "Katarina": ("Katri", "Kaisa"),
    "Matti": ("Mattias",),
    "Henrik": ("Heikki",),
    "Aleksanteri": ("Aleksi", "Santeri"),
    "Alexander": ("Alex",),
    "Gustav": ("Kustaa", "Gösta"),
    "Oskar": ("Oskari",),
    "Emil": ("Eemeli",),
    "William": ("Ville",),
    "Sofia": ("Sohvi", "Sofie"),
    "Anna": ("Anni", "Annika"),
}
LANGUAGE_WORDS_FI = {"fi": "suomi", "sv": "ruotsi", "ru": "venäjä", "et": "viro", "en": "englanti"}
LANGUAGE_WORDS_SV = {
    "fi": "finska",
    "sv": "svenska",
    "ru": "ryska",
    "et": "estniska",
    "en": "engelska",
}


def first_name_seen(person: Person, rng: random.Random, p: float = 0.1) -> str:
    """The first name a system knows: usually the register's, sometimes a nickname or variant."""
    if rng.random() >= p:
        return person.first_name
    if person.nickname:
        return person.nickname
    return rng.choice(VARIANTS.get(person.first_name, (person.first_name,)))


def typo(text: str, rng: random.Random) -> str:
    """One keying error: swapped or doubled or dropped letter, or å/ä/ö typed without dots."""
    if len(text) < 4:
        return text
    i = rng.randrange(1, len(text) - 2)
    kind = rng.randrange(4)
    if kind == 0:
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    if kind == 1:
        return text[: i + 1] + text[i] + text[i + 1 :]
    if kind == 2:
        return text[:i] + text[i + 1 :]
    folded = text.translate(str.maketrans("äöåÄÖÅ", "aoaAOA"))
    return folded if folded != text else text[:i] + text[i + 1 :]


def maybe_typo(text: str, rng: random.Random, p: float = 0.015) -> str:
    """`text` with a typo in a share `p` of calls."""
    return typo(text, rng) if rng.random() < p else text


def family_name_seen(person: Person, rng: random.Random, p_old: float) -> str:
    """The current family name, or (older systems, share `p_old`) the one before marriage."""
    if person.former_family_name and rng.random() < p_old:
        return person.former_family_name
    return person.family_name


def address_seen(person: Person, rng: random.Random, p_old: float) -> Address:
    """The current address, or (systems not told of a move, share `p_old`) the former one."""
    if person.former_address is not None and rng.random() < p_old:
        return person.former_address
    return person.address


def street(person: Person, address: Address) -> str:
    """The street in the person's own language (Swedish speakers write the Swedish name)."""
    return address.street_sv if person.language == "sv" else address.street_fi


def post_office(person: Person, address: Address) -> str:
    """The post office in the person's own language."""
    return address.post_office_sv if person.language == "sv" else address.post_office_fi


def format_phone(e164: str, rng: random.Random) -> str:
    """A Finnish number as people type it: with spaces, a hyphen, the prefix or not."""
    if not e164.startswith("+358"):
        return e164
    national = "0" + e164[4:]
    shapes = (
        f"{national[:3]} {national[3:6]} {national[6:]}",
        e164,
        f"{national[:3]}-{national[3:]}",
        f"+358 {e164[4:6]} {e164[6:]}",
        national,
    )
    return rng.choice(shapes)


def landline(household_id: str) -> str:
    """The household's (09) landline: the same for everyone living there."""
    digits = int(hashlib.sha256(household_id.encode()).hexdigest()[:8], 16) % 7_000_000
    number = f"{2_000_000 + digits:07d}"
    return f"(09) {number[:3]} {number[3:]}"


def phone_seen(person: Person, rng: random.Random) -> str:
    """The person's phone in some format, the home landline now and then, or empty."""
    if person.phone is None:
        return landline(person.household_id) if rng.random() < 0.2 else ""
    if rng.random() < 0.05:
        return landline(person.household_id)
    return format_phone(person.phone, rng)


def household_email(person: Person) -> str:
    """The family's shared address, used by several people of one household."""
    return f"perhe.{ascii_word(person.family_name)}.{person.household_id[-4:]}@example.fi"


def ascii_word(text: str) -> str:
    """Lower-case ASCII of a name, as mail addresses write it."""
    folded = text.lower().translate(str.maketrans("äöåé", "aoae"))
    return "".join(c for c in folded if c.isalnum())


def messy_email(address: str, rng: random.Random) -> str:
    """An address as typed: mixed case now and then, stray spaces around it."""
    if rng.random() < 0.15:
        local, _, domain = address.partition("@")
        address = ".".join(p.capitalize() for p in local.split(".")) + "@" + domain.capitalize()
    if rng.random() < 0.05:
        address = f" {address} "
    return address


def email_seen(person: Person, rng: random.Random, p_shared: float = 0.1) -> str:
    """The person's email (messy), the family's shared one, or empty."""
    if person.email is None or rng.random() < p_shared:
        return messy_email(household_email(person), rng) if rng.random() < 0.5 else ""
    return messy_email(person.email, rng)


def break_hetu(hetu: str) -> str:
    """The HETU with a wrong check character (a keying error the checksum catches)."""
    right = CHECK.index(hetu[-1]) if hetu[-1] in CHECK else 0
    return hetu[:-1] + CHECK[(right + 7) % len(CHECK)]


def aged(population: Population, low: int, high: int) -> list[Person]:
    """Living residents aged `low` to `high` (inclusive) on the population's day."""
    return [p for p in population.living() if low <= p.age_on(population.today) <= high]


def plant_share(count: int, share: float, rng: random.Random) -> set[int]:
    """Indexes of a share of `count` items (at least one when there are any)."""
    k = min(count, max(1, round(count * share))) if count else 0
    return set(rng.sample(range(count), k))


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
