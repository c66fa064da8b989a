"""The population generator: a seeded, deterministic synthetic bilingual municipality."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, timedelta

from islandhub.demo.model import Address, Person, Population
from islandhub.demo.names import family_pool, feminine, given_pool, nickname_of
from islandhub.demo.places import address_elsewhere, random_address

CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"
NEW_SIGNS = {19: "YXWVU", 20: "BCDEF"}  # the 2023 century signs
OLD_SIGNS = {18: "+", 19: "-", 20: "A"}
LANGUAGES = ("fi", "sv", "other")
LANGUAGE_WEIGHTS = (0.668, 0.265, 0.067)  # of households; mixed couples even it out
OTHER_LANGUAGES = ("ru", "et", "en", "ar", "so")
OTHER_WEIGHTS = (0.35, 0.25, 0.15, 0.15, 0.10)
# Household kinds and their shares of households.
KINDS = ("single_young", "single_mid", "single_old", "couple", "old_couple", "family", "parent")
KIND_WEIGHTS = (0.12, 0.13, 0.10, 0.17, 0.12, 0.28, 0.08)
PROVIDERS = ("gmail.com", "outlook.com", "hotmail.com", "elisanet.fi", "luukku.com",
             "kolumbus.fi", "icloud.com", "yahoo.com", "suomi24.fi")  # fmt: skip
PROVIDER_WEIGHTS_YOUNG = (45, 12, 12, 6, 3, 1, 12, 5, 4)
PROVIDER_WEIGHTS_OLD = (20, 8, 14, 25, 12, 10, 3, 4, 4)
MOBILE_PREFIXES = ("40", "41", "42", "44", "45", "46", "50")
_ASCII = str.maketrans({"ä": "a", "ö": "o", "å": "a", "é": "e", "ü": "u", "õ": "o",
                        "š": "s", "ž": "z", " ": "", "-": "", "'": ""})  # fmt: skip


def hetu(birth: date, individual: int, sign: str | None = None) -> str:
    """A valid HETU for a birth date and individual number (2-899); `sign` overrides the century."""
    sign = sign or OLD_SIGNS[birth.year // 100]
    digits = f"{birth:%d%m%y}"
    return f"{digits}{sign}{individual:03d}{CHECK[int(f'{digits}{individual:03d}') % 31]}"


def ytunnus(base: int) -> str | None:
    """The business id (Y-tunnus) for a 7-digit base, or None when the base has no check digit."""
    digits = f"{base:07d}"
    remainder = sum(int(d) * w for d, w in zip(digits, (7, 9, 10, 5, 8, 4, 2), strict=True)) % 11
    if remainder == 1:
        return None
    return f"{digits}-{0 if remainder == 0 else 11 - remainder}"


def ascii_slug(text: str) -> str:
    """Lower-case ASCII form of a name for an email address ("Hämäläinen" -> "hamalainen")."""
    return text.lower().translate(_ASCII)


@dataclass(frozen=True)
class Organisation:
    """A company or association of the area (water bills, premises bookings)."""

    org_id: str  # "ORG-0001", the ground-truth entity id
    ytunnus: str  # valid business id, "1234567-1"
    name: str
    address: Address


class _Generator:
    """Builds one population: households first, then events and contact details."""

    def __init__(self, residents: int, seed: int, today: date) -> None:
        self.residents = residents
        self.seed = seed
        self.today = today
        self.rng = random.Random(seed)
        self.people: list[Person] = []
        self.codes: set[str] = set()
        self.emails: set[str] = set()
        self.phones: set[str] = set()

    # -- people -----------------------------------------------------------------------------

    def birth(self, age: int) -> date:
        """A birth date `age` whole years before today."""
        latest = _years_before(self.today, age)
        earliest = _years_before(self.today, age + 1) + timedelta(days=1)
        return earliest + timedelta(days=self.rng.randint(0, (latest - earliest).days))

    def new_hetu(self, birth: date, sex: str, language: str) -> str:
        """A unique valid HETU; parity of the individual number follows sex."""
        century = birth.year // 100
        share = 0.10 if language not in ("fi", "sv") else 0.03
        new = self.rng.random() < share and century in NEW_SIGNS
        sign = self.rng.choice(NEW_SIGNS[century]) if new else OLD_SIGNS[century]
        while True:
            individual = self.rng.randrange(3 if sex == "M" else 2, 900, 2)
            key = f"{birth:%d%m%y}{individual:03d}"
            if key not in self.codes:
                self.codes.add(key)
                return hetu(birth, individual, sign)

    def given_names(self, language: str, sex: str) -> str:
        """One to three given names from the language's pool."""
        pool = given_pool(language, sex)
        if language in ("fi", "sv"):
            count = self.rng.choices((1, 2, 3), (0.3, 0.55, 0.15))[0]
        else:
            count = self.rng.choices((1, 2), (0.8, 0.2))[0]
        return " ".join(self.rng.sample(pool, count))

    def person(self, hh: _Household, sex: str, language: str, age: int, family: str) -> Person:
        """A new resident of household `hh`."""
        birth = self.birth(age)
        given = self.given_names(language, sex)
        person = Person(
            person_id=f"P{len(self.people):06d}",
            hetu=self.new_hetu(birth, sex, language),
            given_names=given,
            family_name=feminine(family, language) if sex == "F" else family,
            birth_date=birth,
            sex=sex,
            language=language,
            address=hh.address,
            household_id=hh.household_id,
        )
        self.people.append(person)
        hh.members.append(person)
        return person

    # -- households -------------------------------------------------------------------------

    def run(self) -> Population:
        """Households until `residents` people live here, then events and contacts."""
        while len(self.people) < self.residents:
            self.household()
        del self.people[self.residents :]
        self.drop_dangling()
        self.deaths()
        for person in self.people:
            self.contacts(person)
            self.nickname(person)
        return Population(self.people, self.today, self.seed)

    def household(self) -> None:
        """One household of a random kind, maybe with a move and a non-disclosure order."""
        hh = _Household(f"H{self.seed % 1000:03d}{len(self.people):06d}", random_address(self.rng))
        language = self.rng.choices(LANGUAGES, LANGUAGE_WEIGHTS)[0]
        if language == "other":
            language = self.rng.choices(OTHER_LANGUAGES, OTHER_WEIGHTS)[0]
        kind = self.rng.choices(KINDS, KIND_WEIGHTS)[0]
        if kind.startswith("single"):
            self.single(hh, kind, language)
        elif kind in ("couple", "old_couple"):
            ages = (25, 72) if kind == "couple" else (68, 92)
            self.couple(hh, language, self.rng.randint(*ages))
        else:
            self.family(hh, language, kind == "parent")
        self.events(hh)

    def single(self, hh: _Household, kind: str, language: str) -> None:
        """One person living alone."""
        ages = {"single_young": (19, 39), "single_mid": (40, 69), "single_old": (65, 95)}[kind]
        age = self.rng.randint(*ages)
        if kind == "single_old":  # fewer the older
            age = min(age, self.rng.randint(*ages))
        sex = "F" if kind == "single_old" and self.rng.random() < 0.65 else self.rng.choice("FM")
        self.person(hh, sex, language, age, self.rng.choice(family_pool(language)))

    def couple(self, hh: _Household, language: str, age: int) -> tuple[Person, Person]:
        """Two adults; a married woman often took her husband's name (former name kept)."""
        rng = self.rng
        other = _partner_language(rng, language)
        man_age = max(20, min(95, age + rng.randint(-2, 5)))
        first = self.person(hh, "M", language, man_age, rng.choice(family_pool(language)))
        sex = "M" if rng.random() < 0.02 else "F"
        second = self.person(hh, sex, other, age, rng.choice(family_pool(other)))
        if sex == "F" and rng.random() < 0.85 * 0.85:  # married and took the name
            keep = 0.47 if second.birth_date.year < 1990 else 0.3
            married_name = feminine(first.family_name, second.language)
            if rng.random() < keep and married_name != second.family_name:
                second.former_family_name = second.family_name
            second.family_name = married_name
        if rng.random() < 0.12:
            self.family_email(first, second)
        return first, second

    def family(self, hh: _Household, language: str, single_parent: bool) -> None:
        """Parents (one or two) and their children; twins and same-name traps among them."""
        rng = self.rng
        mother_age = min(58, max(22, int(rng.triangular(22, 58, 43))))
        if single_parent:
            sex = "F" if rng.random() < 0.85 else "M"
            adult = self.person(hh, sex, language, mother_age, rng.choice(family_pool(language)))
            parents: tuple[Person, ...] = (adult,)
        else:
            parents = self.couple(hh, language, mother_age)
        count = rng.choices((1, 2, 3, 4), (0.35, 0.42, 0.17, 0.06))[0]
        low, high = max(0, mother_age - 44), min(22, mother_age - 20)
        ages = sorted((rng.randint(low, high) for _ in range(count)), reverse=True)
        family = _children_family_name(rng, parents)  # siblings share one
        previous: Person | None = None
        for age in ages:
            previous = self.child(hh, parents, age, family, previous)

    def child(
        self,
        hh: _Household,
        parents: tuple[Person, ...],
        age: int,
        family: str,
        previous: Person | None,
    ) -> Person:
        """A child of `parents`, maybe a twin of `previous` or named after a parent."""
        rng = self.rng
        language = rng.choice(parents).language
        child = self.person(hh, rng.choice("FM"), language, age, family)
        if age < 18:
            child.guardians = [p.person_id for p in parents]
        if previous is not None and previous.twin_of is None and rng.random() < 0.035:
            self.make_twin(child, previous)
        elif age < 18 and rng.random() < 0.03:
            _name_after_parent(child, parents)
        return child

    def make_twin(self, child: Person, sibling: Person) -> None:
        """The trap: same birth date, household and family name, different given names."""
        child.birth_date = sibling.birth_date
        while child.first_name == sibling.first_name:
            child.given_names = self.given_names(child.language, child.sex)
        self.codes.discard(child.hetu[:6] + child.hetu[7:10])
        child.hetu = self.new_hetu(child.birth_date, child.sex, child.language)
        child.twin_of, sibling.twin_of = sibling.person_id, child.person_id
        child.guardians = list(sibling.guardians)

    # -- events -----------------------------------------------------------------------------

    def events(self, hh: _Household) -> None:
        """A move within the last two years (~8 %), a non-disclosure order (~0.5 %)."""
        rng = self.rng
        if rng.random() < 0.08:
            former = address_elsewhere(rng) if rng.random() < 0.3 else random_address(rng)
            for person in hh.members:
                if person.age_on(self.today) >= 1:  # babies were born after the move
                    person.former_address = former
        if rng.random() < 0.005:
            for person in hh.members:
                person.non_disclosure = True

    def drop_dangling(self) -> None:
        """Forget twins cut off with the last household (it was trimmed to size)."""
        cut = f"P{self.residents:06d}"
        for person in self.people[-5:]:
            if person.twin_of is not None and person.twin_of >= cut:
                person.twin_of = None

    def deaths(self) -> None:
        """About 0.8 % died in the last two years, the old far more likely."""
        rng = self.rng
        adults = [p for p in self.people if p.age_on(self.today) >= 40]
        if not adults:
            return
        weights = [math.exp((p.age_on(self.today) - 40) / 9) for p in adults]
        wanted = min(len(adults), round(0.008 * len(self.people)))
        chosen: set[int] = set()
        while len(chosen) < wanted:
            chosen.update(
                i for i in rng.choices(range(len(adults)), weights, k=wanted - len(chosen))
            )
        for index in sorted(chosen)[:wanted]:
            adults[index].died = self.today - timedelta(days=rng.randint(1, 730))

    # -- names and contacts -----------------------------------------------------------------

    def nickname(self, person: Person) -> None:
        """A common nickname for about a quarter of the people (when their name has one)."""
        nick = nickname_of(person.first_name)
        if nick and self.rng.random() < 0.97:
            person.nickname = nick

    def contacts(self, person: Person) -> None:
        """A personal email (~75 % of adults) and a mobile number (~85 % of adults)."""
        age = person.age_on(self.today)
        if age < 13:
            return
        adult = age >= 18
        if person.email is None and self.rng.random() < (0.75 if adult else 0.4):
            person.email = self.unique_email(person)
        if self.rng.random() < (0.85 if adult else 0.8):
            person.phone = self.unique_phone()

    def unique_email(self, person: Person) -> str:
        """A personal address in one of several formats and providers, not used by anyone."""
        local, domain = self.email_parts(person)
        email, number = f"{local}@{domain}", 1
        while email in self.emails:
            number += 1
            email = f"{local}{number}@{domain}"
        self.emails.add(email)
        return email

    def email_parts(self, person: Person) -> tuple[str, str]:
        """(local part, domain) for a person's own address."""
        rng = self.rng
        first, last = ascii_slug(person.first_name), ascii_slug(person.family_name)
        year = f"{person.birth_date:%y}"
        if 22 <= person.age_on(self.today) <= 64 and rng.random() < 0.04:
            return f"{first}.{last}", "sipoo.fi"  # municipal staff
        weights = PROVIDER_WEIGHTS_OLD if person.birth_date.year < 1965 else PROVIDER_WEIGHTS_YOUNG
        domain = rng.choices(PROVIDERS, weights)[0]
        nick = ascii_slug(nickname_of(person.first_name) or person.first_name)
        formats = (
            f"{first}.{last}",
            f"{first}{last}",
            f"{first[0]}{last[0]}{person.birth_date.year}",
            f"{first[0]}.{last}{year}",
            f"{nick}.{last}",
            f"{nick}{year}",
            f"{last}.{first}",
        )
        local = rng.choices(formats, (40, 10, 10, 10, 12, 10, 8))[0]
        return local, domain

    def family_email(self, first: Person, second: Person) -> None:
        """One address shared by a couple ("virtaset@...", "anna.ja.matti@...")."""
        rng = self.rng
        joiner = "och" if first.language == "sv" else "ja"
        a, b = ascii_slug(first.first_name), ascii_slug(second.first_name)
        local = rng.choice((f"{a}.{joiner}.{b}", f"perhe.{ascii_slug(first.family_name)}"))
        email, number = f"{local}@{rng.choice(PROVIDERS[:6])}", 1
        while email in self.emails:
            number += 1
            email = f"{local}{number}@{email.split('@')[1]}"
        self.emails.add(email)
        first.email = second.email = email

    def unique_phone(self) -> str:
        """A Finnish mobile number in E.164 (+358 40 ... 050), not used by anyone."""
        while True:
            phone = (
                f"+358{self.rng.choice(MOBILE_PREFIXES)}{self.rng.randint(1_000_000, 9_999_999)}"
            )
            if phone not in self.phones:
                self.phones.add(phone)
                return phone


class _Household:
    """People under one roof while they are generated."""

    def __init__(self, household_id: str, address: Address) -> None:
        self.household_id = household_id
        self.address = address
        self.members: list[Person] = []


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _partner_language(rng: random.Random, language: str) -> str:
    if language in ("fi", "sv") and rng.random() < 0.15:
        return "sv" if language == "fi" else "fi"
    if language not in ("fi", "sv") and rng.random() < 0.2:
        return "fi"
    return language


def _masculine(person: Person) -> str:
    # The base form of a family name ("Ivanova" -> "Ivanov"); `feminine` makes it again.
    name = person.family_name
    if person.sex == "F" and name.endswith(("ova", "eva", "ina")):
        return name[:-1]
    return name


def _children_family_name(rng: random.Random, parents: tuple[Person, ...]) -> str:
    names = [_masculine(p) for p in parents]
    if len(names) == 1 or names[0] == names[1]:
        return names[0]
    return names[0] if rng.random() < 0.6 else names[1]


def _name_after_parent(child: Person, parents: tuple[Person, ...]) -> None:
    # The trap islands must not merge: a child with a parent's full name, same address.
    for parent in parents:
        if parent.sex == child.sex and parent.family_name == child.family_name:
            child.given_names = parent.given_names
            return


def generate(
    residents: int = 22_600, seed: int = 753, today: date = date(2026, 11, 20)
) -> Population:
    """A population of `residents` people of municipality 753, the same for the same seed.

    About 65 % Finnish-, 29 % Swedish- and 6 % other-speaking, living in households (singles,
    couples, families, the elderly), with valid unique HETUs (~3 % with the 2023 century
    signs), moves, deaths, non-disclosure orders, contact details, and the traps islands must
    not merge: twins and children with a parent's full name at the same address.
    """
    return _Generator(residents, seed, today).run()


_ORG_TRADES_FI = ("Sähkö", "Rakennus", "Kiinteistöhuolto", "Putki", "Maalaus", "Tilitoimisto",
                  "Puutarha", "Kuljetus", "Kahvila", "Leipomo", "Autokorjaamo", "Kukka",
                  "Hammashoitola", "Parturi-Kampaamo", "Kone", "Metsäpalvelu", "LVI",
                  "Siivous", "Talli", "Eläinlääkäri")  # fmt: skip
_ORG_TRADES_SV = ("El", "Bygg", "Fastighetsservice", "Rör", "Måleri", "Bokföring", "Trädgård",
                  "Transport", "Café", "Bageri", "Bilverkstad", "Blommor", "Tandvård", "Frisör",
                  "Maskin", "Skogstjänst", "VVS", "Städ", "Stall", "Veterinär")  # fmt: skip
_PLACES_FI = ("Sipoon", "Nikkilän", "Söderkullan", "Talman", "Boxin", "Paippisten",
              "Kalkkirannan")  # fmt: skip
_PLACES_SV = ("Sibbo", "Nickby", "Söderkulla", "Talma", "Box", "Paipis", "Kalkstrand")
_ASSOC_FI = ("Urheilijat", "Eläkeläiset", "Kyläyhdistys", "Partiolaiset", "Marttayhdistys",
             "VPK", "Reserviläiset", "Kotiseutuyhdistys")  # fmt: skip
_ASSOC_SV = ("Idrottsförening", "Pensionärer", "Byaförening", "Scoutkår", "Marthaförening",
             "FBK", "Hembygdsförening", "Ungdomsförening")  # fmt: skip


def _org_name(rng: random.Random) -> str:
    swedish = rng.random() < 0.35
    roll = rng.random()
    if roll < 0.15:  # an association
        place = rng.choice(_PLACES_SV if swedish else _PLACES_FI)
        return (
            f"{place} {rng.choice(_ASSOC_SV if swedish else _ASSOC_FI)} {'rf' if swedish else 'ry'}"
        )
    trade = rng.choice(_ORG_TRADES_SV if swedish else _ORG_TRADES_FI)
    form = rng.choice(("Ab", "Ab", "Kb")) if swedish else rng.choice(("Oy", "Oy", "Ky", "Tmi"))
    if roll < 0.55:
        return f"{rng.choice(_PLACES_SV if swedish else _PLACES_FI)} {trade} {form}"
    family = rng.choice(family_pool("sv" if swedish else "fi"))
    return f"{family} {trade} {form}" if swedish else f"{trade} {family} {form}"


def organisations(seed: int = 753, count: int = 300) -> list[Organisation]:
    """Companies and associations of the area with valid, unique Y-tunnus; same for a seed."""
    rng = random.Random(f"{seed}:organisations")
    names: set[str] = set()
    ids: set[str] = set()
    result: list[Organisation] = []
    while len(result) < count:
        name, code = _org_name(rng), ytunnus(rng.randint(100_000, 3_299_999))
        if code is None or code in ids or name in names:
            continue
        names.add(name)
        ids.add(code)
        result.append(Organisation(f"ORG-{len(result) + 1:04d}", code, name, random_address(rng)))
    return result
