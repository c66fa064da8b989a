"""The population generator: a seeded, deterministic synthetic bilingual municipality.

PLACEHOLDER: a simple version so islands can be built against the model; the realistic
generator (households, name pools, moves, deaths, guardians, twins) replaces it.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from islandhub.demo.model import Address, Person, Population

CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"
GIVEN_FI = ["Aino", "Eino", "Helmi", "Onni", "Sofia", "Leo", "Aada", "Väinö", "Ella", "Juhani"]
GIVEN_SV = ["Elsa", "Oskar", "Alva", "Hugo", "Saga", "William", "Ebba", "Emil", "Stina", "Anders"]
FAMILY_FI = [
    "Virtanen",
    "Korhonen",
    "Mäkinen",
    "Nieminen",
    "Mäkelä",
    "Hämäläinen",
    "Laine",
    "Koskinen",
]
FAMILY_SV = [
    "Lindqvist",
    "Sjöberg",
    "Holmström",
    "Åberg",
    "Nyström",
    "Lindholm",
    "Eriksson",
    "Berg",
]
STREETS = [("Iso Kylätie", "Stora Byvägen"), ("Talmantie", "Talmavägen"), ("Boxintie", "Boxvägen")]
POSTAL = [
    ("04130", "SIPOO", "SIBBO"),
    ("01150", "SÖDERKULLA", "SÖDERKULLA"),
    ("04240", "TALMA", "TALMA"),
]


def hetu(birth: date, individual: int) -> str:
    """A valid HETU for a birth date and individual number (2-899)."""
    sign = {18: "+", 19: "-", 20: "A"}[birth.year // 100]
    digits = f"{birth:%d%m%y}"
    return f"{digits}{sign}{individual:03d}{CHECK[int(f'{digits}{individual:03d}') % 31]}"


def generate(
    residents: int = 22_600, seed: int = 753, today: date = date(2026, 11, 20)
) -> Population:
    """A population of `residents` people, the same for the same seed."""
    rng = random.Random(seed)
    people = []
    used: set[str] = set()
    for index in range(residents):
        swedish = rng.random() < 0.29
        birth = today - timedelta(days=rng.randint(0, 95 * 365))
        while True:
            code = hetu(birth, rng.randint(2, 899))
            if code not in used:
                used.add(code)
                break
        street = rng.choice(STREETS)
        number = rng.randint(1, 120)
        postal = rng.choice(POSTAL)
        given = rng.choice(GIVEN_SV if swedish else GIVEN_FI)
        family = rng.choice(FAMILY_SV if swedish else FAMILY_FI)
        people.append(
            Person(
                person_id=f"P{index:06d}",
                hetu=code,
                given_names=given,
                family_name=family,
                birth_date=birth,
                sex=rng.choice("FM"),
                language="sv" if swedish else "fi",
                address=Address(
                    f"{street[0]} {number}",
                    f"{street[1]} {number}",
                    postal[0],
                    postal[1],
                    postal[2],
                ),
                household_id=f"H{index:06d}",
                email=f"{given}.{family}{index}@example.fi".lower() if rng.random() < 0.7 else None,
                phone=f"+35840{rng.randint(1000000, 9999999)}" if rng.random() < 0.8 else None,
                non_disclosure=rng.random() < 0.005,
            )
        )
    return Population(people, today, seed)
