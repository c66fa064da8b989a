"""Streets and postal codes of the synthetic Sipoo/Sibbo, in Finnish and Swedish."""

from __future__ import annotations

import random
from dataclasses import dataclass

from islandhub.demo.model import Address


@dataclass(frozen=True)
class PostalArea:
    """A postal code with its post office in both languages, and how many residents it has."""

    code: str
    office_fi: str
    office_sv: str
    weight: float  # share of the municipality's homes


# Only codes of the area known for certain.
AREAS: tuple[PostalArea, ...] = (
    PostalArea("04130", "SIPOO", "SIBBO", 0.46),  # Nikkilä / Nickby, the centre
    PostalArea("01150", "SÖDERKULLA", "SÖDERKULLA", 0.27),
    PostalArea("04240", "TALMA", "TALMA", 0.08),
    PostalArea("01190", "BOX", "BOX", 0.06),
    PostalArea("04170", "PAIPPINEN", "PAIPIS", 0.06),
    PostalArea("01180", "KALKKIRANTA", "KALKSTRAND", 0.07),
)

# Streets (Finnish, Swedish) by postal code.
STREETS: dict[str, tuple[tuple[str, str], ...]] = {
    "04130": (
        ("Iso Kylätie", "Stora Byvägen"),
        ("Nikkilänkaari", "Nickbybågen"),
        ("Jussaksentie", "Jussasvägen"),
        ("Kirkkotie", "Kyrkvägen"),
        ("Koulutie", "Skolvägen"),
        ("Myllytie", "Kvarnvägen"),
        ("Asematie", "Stationsvägen"),
        ("Puistotie", "Parkvägen"),
        ("Pappilantie", "Prästgårdsvägen"),
        ("Sepäntie", "Smedsvägen"),
        ("Kartanontie", "Gårdsvägen"),
        ("Lähdetie", "Källvägen"),
        ("Pihlajatie", "Rönnvägen"),
        ("Sipoonjoentie", "Sibbo ådalsvägen"),
        ("Jokipuistontie", "Åparksvägen"),
        ("Kuninkaantie", "Kungsvägen"),
    ),
    "01150": (
        ("Söderkullantie", "Söderkullavägen"),
        ("Amiraalintie", "Amiralsvägen"),
        ("Kalliotie", "Bergvägen"),
        ("Rantatie", "Strandvägen"),
        ("Koivutie", "Björkvägen"),
        ("Kuusitie", "Granvägen"),
        ("Majvikintie", "Majviksvägen"),
        ("Eriksnäsintie", "Eriksnäsvägen"),
        ("Metsätie", "Skogsvägen"),
        ("Helsingintie", "Helsingforsvägen"),
        ("Sipoonrannantie", "Sibbo strandsvägen"),
    ),
    "04240": (
        ("Talmantie", "Talmavägen"),
        ("Talmankaari", "Talmabågen"),
        ("Peltotie", "Åkervägen"),
        ("Niittytie", "Ängsvägen"),
        ("Laskettelijantie", "Slalomvägen"),
    ),
    "01190": (
        ("Boxintie", "Boxvägen"),
        ("Hindsbyntie", "Hindsbyvägen"),
        ("Mäkitie", "Backvägen"),
        ("Tallbackantie", "Tallbackavägen"),
    ),
    "04170": (
        ("Paippistentie", "Paipisvägen"),
        ("Pohjoinen Paippistentie", "Norra Paipisvägen"),
        ("Savijärventie", "Lerträskvägen"),
        ("Lillkärrintie", "Lillkärrvägen"),
    ),
    "01180": (
        ("Kalkkirannantie", "Kalkstrandsvägen"),
        ("Granöntie", "Granövägen"),
        ("Hitåntie", "Hitåvägen"),
        ("Kalkkiuunintie", "Kalkugnsvägen"),
    ),
}

# Where people moved from, outside the municipality (code, offices, a few streets).
ELSEWHERE: tuple[tuple[PostalArea, tuple[tuple[str, str], ...]], ...] = (
    (
        PostalArea("00100", "HELSINKI", "HELSINGFORS", 0.5),
        (("Mannerheimintie", "Mannerheimvägen"), ("Runeberginkatu", "Runebergsgatan")),
    ),
    (
        PostalArea("01300", "VANTAA", "VANDA", 0.2),
        (("Asematie", "Stationsvägen"), ("Peltolantie", "Peltolavägen")),
    ),
    (
        PostalArea("06100", "PORVOO", "BORGÅ", 0.15),
        (("Mannerheiminkatu", "Mannerheimgatan"), ("Rauhankatu", "Fredsgatan")),
    ),
    (
        PostalArea("04200", "KERAVA", "KERVO", 0.15),
        (("Kauppakaari", "Handelsbågen"), ("Asemantie", "Stationsvägen")),
    ),
)

_AREA_WEIGHTS = [area.weight for area in AREAS]
_ELSEWHERE_WEIGHTS = [area.weight for area, _ in ELSEWHERE]
_CENTRES = {"04130", "01150"}  # where blocks of flats stand


def street_pairs() -> list[tuple[str, str]]:
    """Every street of the municipality as a (Finnish, Swedish) pair."""
    return [pair for streets in STREETS.values() for pair in streets]


def _number(rng: random.Random, flats: bool) -> str:
    house = rng.randint(1, 60) if flats else rng.randint(1, 240)
    if flats:
        return f"{house} {rng.choice('ABCDE')} {rng.randint(1, 40)}"
    if rng.random() < 0.15:  # terraced houses and semi-detached: "12 a", "12 A 3"
        return f"{house} {rng.choice('ABC')} {rng.randint(1, 8)}"
    return str(house)


def _address(rng: random.Random, area: PostalArea, street: tuple[str, str], flat: bool) -> Address:
    number = _number(rng, flat)
    return Address(
        f"{street[0]} {number}",
        f"{street[1]} {number}",
        area.code,
        area.office_fi,
        area.office_sv,
    )


def random_address(rng: random.Random) -> Address:
    """A home in the municipality: a house, or a flat ("12 B 7") in Nikkilä or Söderkulla."""
    area = rng.choices(AREAS, _AREA_WEIGHTS)[0]
    flat = area.code in _CENTRES and rng.random() < 0.35
    return _address(rng, area, rng.choice(STREETS[area.code]), flat)


def address_elsewhere(rng: random.Random) -> Address:
    """A home in a neighbouring town (where people who moved in came from)."""
    area, streets = rng.choices(ELSEWHERE, _ELSEWHERE_WEIGHTS)[0]
    return _address(rng, area, rng.choice(streets), rng.random() < 0.7)
