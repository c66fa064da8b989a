"""The mistakes and variants islands put in their records: one seeded toolbox for all of them.

Real systems hold a person as somebody once typed them in: a nickname or the Swedish form of
a Finnish name, the surname before marriage, the address before the last move, a phone
number with spaces, an email in capitals, the family's shared address. Every island draws
these from here with its own seeded random generator, so a demo run repeats exactly.
"""

from __future__ import annotations

import hashlib
import random

from islandhub.demo.model import Address, Person, Population
from islandhub.demo.names import name_variants
from islandhub.demo.population import CHECK, ascii_slug

MAIL_DOMAINS = ("gmail.com", "outlook.com", "hotmail.com", "elisanet.fi", "kolumbus.fi")


def typo(text: str, rng: random.Random) -> str:
    """One keying error: a swapped, doubled or dropped letter, or å/ä/ö typed without dots."""
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


def first_name_seen(person: Person, rng: random.Random, p: float = 0.1) -> str:
    """The first name a system knows: usually the register's, sometimes a nickname or variant."""
    if rng.random() >= p:
        return person.first_name
    if person.nickname:
        return person.nickname
    return rng.choice(name_variants(person.first_name) or [person.first_name])


def called(person: Person, rng: random.Random, rate: float = 0.3) -> str:
    """What a person goes by in an informal system: a nickname sometimes, else the first name."""
    if person.nickname and rng.random() < rate:
        return person.nickname
    return person.first_name


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
    """A Finnish number as people type it: spaces, a hyphen, the trunk 0 or +358."""
    if not e164.startswith("+358"):
        return e164  # a foreign number stays as given
    national = "0" + e164[4:]
    shapes = (
        f"{national[:3]} {national[3:6]} {national[6:]}",
        e164,
        f"{national[:3]}-{national[3:]}",
        f"+358 {e164[4:6]} {e164[6:]}",
        national,
        f"+358 ({national[1:3]}) {national[3:]}",
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


def ascii_name(text: str) -> str:
    """A name as an email address writes it: lower-case ASCII, spaces as hyphens."""
    return ascii_slug(text).replace(" ", "-")


def household_email(person: Person) -> str:
    """The family's shared address, the same for everyone in the household."""
    digits = "".join(c for c in person.household_id if c.isdigit())[-4:]
    domain = MAIL_DOMAINS[int(digits or "0") % len(MAIL_DOMAINS)]
    return f"perhe.{ascii_name(person.family_name)}{digits}@{domain}"


def messy_email(
    address: str, rng: random.Random, *, case: float = 0.15, spaces: float = 0.05
) -> str:
    """An address as typed by hand: capitalised now and then, stray spaces around it."""
    if rng.random() < case:
        local, _, domain = address.partition("@")
        address = ".".join(p.capitalize() for p in local.split(".")) + "@" + domain.capitalize()
    if rng.random() < spaces:
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


def adults(population: Population, age: int = 18) -> list[Person]:
    """Living people at least `age` years old on the population's day."""
    return [p for p in population.living() if p.age_on(population.today) >= age]


def aged(population: Population, low: int, high: int) -> list[Person]:
    """Living residents aged `low` to `high` (inclusive) on the population's day."""
    return [p for p in population.living() if low <= p.age_on(population.today) <= high]


def plant_share(count: int, share: float, rng: random.Random) -> set[int]:
    """Indexes of a share of `count` items (at least one when there are any)."""
    k = min(count, max(1, round(count * share))) if count else 0
    return set(rng.sample(range(count), k))


class Noise:
    """The toolbox bound to one island's random generator, for islands that prefer methods."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def chance(self, share: float) -> bool:
        """True with probability `share`."""
        return self.rng.random() < share

    def typo(self, text: str) -> str:
        """One keying error (see `typo`)."""
        return typo(text, self.rng)

    def given(self, person: Person, full: float = 0.0) -> str:
        """The given name an island holds: all given names, nickname, variant, or a typo."""
        if self.chance(full):
            name = person.given_names
        else:
            name = first_name_seen(person, self.rng, p=0.15)
        return maybe_typo(name, self.rng)

    def family(self, person: Person, former: float = 0.0) -> str:
        """The family name: the one before marriage on older islands, sometimes a typo."""
        return maybe_typo(family_name_seen(person, self.rng, former), self.rng)

    def address(self, person: Person, former: float = 0.0) -> Address:
        """The address an island holds: the one before the last move on older islands."""
        return address_seen(person, self.rng, former)

    def street(self, person: Person, address: Address) -> str:
        """The street in the resident's own language (see `street`)."""
        return street(person, address)

    def post_office(self, person: Person, address: Address) -> str:
        """The post office in the resident's own language."""
        return post_office(person, address)

    def phone(self, person: Person) -> str | None:
        """The person's phone in some format or the home landline; None when there is none."""
        return phone_seen(person, self.rng) or None

    def email(self, person: Person, family_share: float = 0.1) -> str | None:
        """The person's email as typed, or the household's shared one; None when none."""
        return email_seen(person, self.rng, p_shared=family_share) or None
