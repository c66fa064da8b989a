"""Early childhood education island: an XML export of children aged 1-6 and their guardians."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

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

LANGUAGE_CODES = {"fi": "1", "sv": "2"}  # everything else is 3, "other"
UNITS = ("Päiväkoti Satakieli", "Daghemmet Solstrålen", "Päiväkoti Metsätähti", "Daghemmet Ekorren")
ROLES = ("äiti", "isä", "huoltaja")


def _child(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    element.text = text
    return element


class DaycareIsland(DemoIsland):
    """Children aged 1-6 in vaka_<date>.xml: "Family, Given", coded mother tongue, 0/false."""

    system = "daycare"
    title = "Early childhood education: XML export"

    def __init__(self, population: Population, workdir: Path, seed: int) -> None:
        super().__init__(population, workdir, seed)
        self.count = 0
        self.planted: dict[str, set[str]] = {"children": set()}  # source ids meant for quarantine

    def prepare(self) -> None:
        """Write vaka_<date>.xml into the workdir (under a .part name, then renamed)."""
        people = self.population.by_id()
        children = aged(self.population, 1, 6)
        twice = plant_share(len(children), 0.02, self.rng)  # two placements (shift care)
        broken = plant_share(len(children), 0.01, self.rng)
        root = ET.Element("varhaiskasvatus", {"tuotettu": f"{self.population.today:%Y-%m-%d}"})
        listing = _child(root, "lapset")
        for index, child in enumerate(children):
            for _ in range(2 if index in twice else 1):
                self._add(listing, child, people, index in broken)
        self._write(root)

    def _add(
        self, listing: ET.Element, child: Person, people: dict[str, Person], broken: bool
    ) -> None:
        self.count += 1
        source_id = f"L-{self.count + 1000:05d}"
        element = _child(listing, "lapsi", id=source_id, tila="aktiivinen")
        self._describe(element, child, broken)
        guardians = _child(element, "huoltajat")
        for guardian in (people[g] for g in child.guardians if g in people):
            self._guardian(guardians, guardian)
        if broken:
            self.planted["children"].add(source_id)
        self.add_truth("children", source_id, child.person_id)

    def _describe(self, element: ET.Element, child: Person, broken: bool) -> None:
        rng = self.rng
        given = maybe_typo(first_name_seen(child, rng, p=0.05), rng)
        _child(element, "nimi", f"{maybe_typo(child.family_name, rng)}, {given}")
        _child(element, "hetu", break_hetu(child.hetu) if broken else child.hetu)
        _child(element, "syntymaaika", f"{child.birth_date:%Y-%m-%d}")
        _child(element, "aidinkieli", LANGUAGE_CODES.get(child.language, "3"))
        _child(element, "kotikunta", child.municipality_code)
        _child(element, "turvakielto", "1" if child.non_disclosure else "0")
        _child(element, "erityisruokavalio", "true" if rng.random() < 0.08 else "false")
        address = address_seen(child, rng, p_old=0.2)
        place = _child(element, "osoite")
        _child(place, "katu", street(child, address))
        _child(place, "postinumero", address.postal_code)
        _child(place, "postitoimipaikka", post_office(child, address))
        _child(element, "yksikko", rng.choice(UNITS))

    def _guardian(self, guardians: ET.Element, guardian: Person) -> None:
        rng = self.rng
        role = {"F": "äiti", "M": "isä"}.get(guardian.sex, "huoltaja")
        element = _child(guardians, "huoltaja", rooli=role if rng.random() < 0.9 else ROLES[2])
        family = family_name_seen(guardian, rng, 0.2)
        _child(element, "nimi", f"{family}, {first_name_seen(guardian, rng)}")
        _child(element, "puhelin", phone_seen(guardian, rng) or None)
        _child(element, "sahkoposti", email_seen(guardian, rng, p_shared=0.25) or None)

    def _write(self, root: ET.Element) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        ET.indent(root)
        final = self.workdir / f"vaka_{self.population.today:%Y%m%d}.xml"
        part = final.with_name(final.name + ".part")
        ET.ElementTree(root).write(part, encoding="UTF-8", xml_declaration=True)
        part.replace(final)

    def connection(self) -> dict[str, Any]:
        """The drop folder: the island's workdir."""
        return {"path": str(self.workdir)}
