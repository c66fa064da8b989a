"""The synthetic municipality: deterministic, realistic shares, valid ids, and the traps."""

from __future__ import annotations

import time
from collections import Counter
from datetime import date

import pytest
from stdnum.fi import hetu as stdnum_hetu
from stdnum.fi import ytunnus as stdnum_ytunnus

from islandhub.demo.model import Person, Population
from islandhub.demo.names import FAMILY, GIVEN, name_variants, nickname_of
from islandhub.demo.places import AREAS, street_pairs
from islandhub.demo.population import generate, organisations, ytunnus

TODAY = date(2026, 11, 20)


@pytest.fixture(scope="module")
def population() -> Population:
    return generate()


@pytest.fixture(scope="module")
def people(population: Population) -> list[Person]:
    return population.people


def share(people: list[Person], test: object) -> float:
    return sum(1 for p in people if test(p)) / len(people)  # type: ignore[operator]


def adults(people: list[Person]) -> list[Person]:
    return [p for p in people if p.age_on(TODAY) >= 18]


def test_same_seed_same_population_other_seed_other() -> None:
    first, again, other = generate(800, seed=1), generate(800, seed=1), generate(800, seed=2)
    assert first.people == again.people
    assert first.people != other.people
    assert [p.hetu for p in first.people] != [p.hetu for p in other.people]


def test_size_and_languages(population: Population, people: list[Person]) -> None:
    assert len(people) == 22_600
    assert (population.seed, population.today) == (753, TODAY)
    assert len({p.person_id for p in people}) == len(people)
    assert share(people, lambda p: p.language == "fi") == pytest.approx(0.65, abs=0.03)
    assert share(people, lambda p: p.language == "sv") == pytest.approx(0.29, abs=0.03)
    assert share(people, lambda p: p.language not in ("fi", "sv")) == pytest.approx(0.06, abs=0.03)
    assert {p.language for p in people} >= {"fi", "sv", "ru", "et", "en", "ar", "so"}
    assert all(p.municipality_code == "753" for p in people)


def test_age_pyramid(people: list[Person]) -> None:
    ages = [p.age_on(TODAY) for p in people]
    assert min(ages) == 0
    assert 90 <= max(ages) <= 95
    assert 0.15 < share(people, lambda p: p.age_on(TODAY) < 15) < 0.30
    assert 0.10 < share(people, lambda p: p.age_on(TODAY) >= 65) < 0.30
    births = sum(1 for age in ages if age == 0)
    assert 100 < births < 500  # births in the last year


def test_every_hetu_valid_unique_with_sex_parity(people: list[Person]) -> None:
    assert len({p.hetu for p in people}) == len(people)
    for person in people:
        assert stdnum_hetu.is_valid(person.hetu), person.hetu
        assert int(person.hetu[7:10]) % 2 == (1 if person.sex == "M" else 0)
        assert 2 <= int(person.hetu[7:10]) <= 899
        assert person.hetu[:6] == f"{person.birth_date:%d%m%y}"
        century = person.birth_date.year // 100
        assert person.hetu[6] in {19: "-YXWVU", 20: "ABCDEF"}[century]


def test_new_century_signs_present(people: list[Person]) -> None:
    new = share(people, lambda p: p.hetu[6] in "YXWVUBCDEF")
    assert 0.02 < new < 0.05
    assert {p.hetu[6] for p in people} >= set("-AYXWVUBCDEF")


def test_households_and_guardians(population: Population, people: list[Person]) -> None:
    by_id = population.by_id()
    households = Counter(p.household_id for p in people)
    assert 7_000 < len(households) < 13_000
    children = [p for p in people if p.guardians]
    assert len(children) > 3_000
    for child in children:
        assert child.age_on(TODAY) < 18
        for guardian_id in child.guardians:
            guardian = by_id[guardian_id]
            assert guardian.household_id == child.household_id
            assert guardian.address == child.address
            assert guardian.age_on(TODAY) >= 18
            assert guardian.birth_date < child.birth_date
    assert all(p.age_on(TODAY) >= 18 for p in people if households[p.household_id] == 1)


def test_twins_are_a_trap(population: Population, people: list[Person]) -> None:
    by_id = population.by_id()
    twins = [p for p in people if p.twin_of]
    assert len(twins) >= 40
    for twin in twins:
        other = by_id[twin.twin_of]  # type: ignore[index]
        assert other.twin_of == twin.person_id
        assert other.birth_date == twin.birth_date
        assert other.household_id == twin.household_id
        assert other.first_name != twin.first_name
        assert other.hetu != twin.hetu


def test_children_with_a_parents_full_name(population: Population, people: list[Person]) -> None:
    by_id = population.by_id()
    children = [p for p in people if p.guardians]
    same = [
        child
        for child in children
        if any(
            (by_id[g].given_names, by_id[g].family_name, by_id[g].address)
            == (child.given_names, child.family_name, child.address)
            for g in child.guardians
        )
    ]
    assert len(same) >= 0.005 * len(children)
    assert any(child.sex == "M" for child in same)


def test_names_nicknames_and_former_names(people: list[Person]) -> None:
    assert share(people, lambda p: len(p.given_names.split()) >= 2) > 0.4
    assert 0.20 < share(people, lambda p: p.nickname is not None) < 0.30
    assert all(p.nickname == nickname_of(p.first_name) for p in people if p.nickname)
    women = [p for p in people if p.sex == "F" and p.birth_date.year < 1990]
    former = [p for p in women if p.former_family_name]
    assert 0.15 < len(former) / len(women) < 0.40  # ~40 % of the married ones
    assert all(p.former_family_name != p.family_name for p in former)
    assert any(any(ch in p.family_name for ch in "åäö") for p in people)


def test_moves_deaths_and_non_disclosure(people: list[Person]) -> None:
    moved = [p for p in people if p.former_address]
    assert 0.05 < len(moved) / len(people) < 0.11
    assert all(p.former_address != p.address for p in moved)
    dead = [p for p in people if p.died]
    assert 0.006 < len(dead) / len(people) < 0.01
    assert all(p.birth_date < p.died <= TODAY for p in dead)  # type: ignore[operator]
    assert 0.002 < share(people, lambda p: p.non_disclosure) < 0.01


def test_addresses_are_bilingual_and_local(people: list[Person]) -> None:
    codes = {area.code: area for area in AREAS}
    for person in people[:2000]:
        area = codes[person.address.postal_code]
        assert (person.address.post_office_fi, person.address.post_office_sv) == (
            area.office_fi,
            area.office_sv,
        )
        assert person.address.street_fi.split()[-1] == person.address.street_sv.split()[-1]
    assert any(len(p.address.street_fi.split()) >= 4 for p in people)  # "Iso Kylätie 12 B 7"
    assert len(street_pairs()) >= 40


def test_contacts(people: list[Person]) -> None:
    grown = adults(people)
    assert share(grown, lambda p: p.email is not None) == pytest.approx(0.75, abs=0.05)
    assert share(grown, lambda p: p.phone is not None) == pytest.approx(0.85, abs=0.05)
    phones = [p.phone for p in people if p.phone]
    assert len(set(phones)) == len(phones)
    assert all(ph.startswith("+3584") or ph.startswith("+35850") for ph in phones)
    assert all(len(ph) == 13 and ph[1:].isdigit() for ph in phones)
    emails = Counter(p.email for p in people if p.email)
    assert any(count == 2 for count in emails.values())  # shared family emails
    domains = {email.split("@")[1] for email in emails}
    assert {"gmail.com", "elisanet.fi", "sipoo.fi", "luukku.com"} <= domains
    assert all(email.isascii() for email in emails)


def test_name_pools_and_variants() -> None:
    for language in ("fi", "sv"):
        assert len(FAMILY[language]) >= 120
        for sex in "FM":
            assert len(set(GIVEN[language, sex])) >= 80
    assert "Juha" in name_variants("Johan")
    assert "Karin" in name_variants("Kaarina")
    assert "Eerikki" in name_variants("Erik")
    assert "Johan" not in name_variants("Johan")
    assert name_variants("Zyxw") == []
    assert (nickname_of("Juhani"), nickname_of("Gustav"), nickname_of("Zyxw")) == (
        "Jussi",
        "Gösta",
        None,
    )


def test_organisations() -> None:
    orgs = organisations(753)
    assert len(orgs) == 300
    assert orgs == organisations(753)
    assert len({o.ytunnus for o in orgs}) == len({o.name for o in orgs}) == 300
    assert all(stdnum_ytunnus.is_valid(o.ytunnus) for o in orgs)
    assert orgs[0].org_id == "ORG-0001"
    assert ytunnus(737546) == "0737546-2"  # Nokia's business id, a known check digit


def test_generation_is_fast() -> None:
    started = time.perf_counter()
    generate()
    assert time.perf_counter() - started < 10
