"""Syncs of different islands at once, in processes of their own, sharing residents.

Two islands hold the same persons by national id: the population register (names and
address) and the library (names, email and phone), each also a few persons of its own. In
each round both exports change, and `islandhub sync register` and `islandhub sync library`
start together as real processes, so that both publish into the same residents at the same
time (the same persons in the same batches, in opposite orders within a batch). Three
rounds: the first load (both found the shared residents at once), then changed addresses,
emails and phones for overlapping persons plus new shared persons, then more changes.

After every round: both exit 0 (no deadlock, no unique-key failure); one resident per
person (none doubled); each shared resident's golden record holds exactly the register's
names and address and the library's email and phone, as a sequential sync would make it,
with lineage naming both islands; every version of a golden record follows the previous
one; and the run counts add up. On PostgreSQL and on SQLite (where the store takes the
write lock per transaction, so the publishes queue up rather than interleave).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from islandhub.store import open_store
from islandhub.store.tables import lineage, links, resident_keys, resident_versions, residents
from tests.helpers import hetu

SHARED = 150  # persons both islands hold
OWN = 20  # persons only one island holds (each)
NEW_SHARED = 20  # persons both islands add in round 2
BATCH = 10  # small batches: many short publish transactions that interleave
ROUNDS = 3
GIVEN = ["Anna", "Mikko", "Elsa", "Oskar", "Aino", "Björn", "Saga", "Väinö", "Linnea", "Eino"]
FAMILY = ["Lindqvist", "Virtanen", "Nieminen", "Sjöberg", "Mäkinen", "Holmberg", "Laine"]


def _national_id(number: int) -> str:
    return hetu(1 + number % 28, 1 + number % 12, 1940 + number % 70, 2 + number // 840)


class Person:
    """One person: what the register and the library say about them in a given round."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.national_id = _national_id(number)
        self.given = GIVEN[number % len(GIVEN)]
        self.family = FAMILY[number % len(FAMILY)]

    def street(self, round_: int) -> str:
        moves = sum(1 for r in range(2, round_ + 1) if self.number % (r + 1) == 0)
        return f"Kyrkovägen {self.number % 90 + 1}" + (f" B {moves}" if moves else "")

    def postal_code(self, round_: int) -> str:
        return "04150" if round_ >= 3 and self.number % 4 == 0 else "04130"

    def email(self, round_: int) -> str:
        changed = round_ >= 2 and self.number % 2 == 0
        return f"p{self.number}{'.new' if changed else ''}@example.fi"

    def phone(self, round_: int) -> str:
        changed = round_ >= 3 and self.number % 5 == 0
        return f"+35840{(self.number + (5000 if changed else 0)):07d}"


def _people(round_: int) -> tuple[list[Person], list[Person], list[Person]]:
    """Shared, register-only and library-only persons in a round."""
    shared = SHARED + (NEW_SHARED if round_ >= 2 else 0)
    persons = [Person(n) for n in range(1, shared + 1)]
    register_only = [Person(n) for n in range(5001, 5001 + OWN)]
    library_only = [Person(n) for n in range(7001, 7001 + OWN)]
    return persons, register_only, library_only


def _write_exports(root: Path, round_: int) -> None:
    shared, register_only, library_only = _people(round_)
    with (root / "drop" / "register" / "persons_export.csv").open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(["id", "hetu", "etunimi", "sukunimi", "katuosoite", "postinumero"])
        for p in shared + register_only:
            writer.writerow(
                [
                    f"R{p.number}",
                    p.national_id,
                    p.given,
                    p.family,
                    p.street(round_),
                    p.postal_code(round_),
                ]
            )
    with (root / "drop" / "library" / "patrons_export.csv").open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(["id", "hetu", "etunimi", "sukunimi", "email", "puhelin"])
        # The shared persons in the register's batches, but backwards within each batch: the
        # two runs publish the same residents at the same time, in opposite orders.
        rows = shared + library_only
        batches = [rows[start : start + BATCH] for start in range(0, len(rows), BATCH)]
        for p in (person for batch in batches for person in reversed(batch)):
            # The library knows some by a shorter name: the register's wins (priority).
            given = p.given[:3] if p.number % 7 == 0 else p.given
            writer.writerow(
                [f"L{p.number}", p.national_id, given, p.family, p.email(round_), p.phone(round_)]
            )


def _write_project(root: Path) -> None:
    (root / "config" / "systems").mkdir(parents=True)
    (root / "config" / "hub.yaml").write_text("survivorship: {priority: [register, library]}\n")
    fields = {
        "register": (
            "  address.street: {from: katuosoite}\n"
            "  address.postal_code: {from: postinumero, use: [postal_code]}\n"
        ),
        "library": (
            "  email: {from: email, use: [email]}\n  phone: {from: puhelin, use: [phone]}\n"
        ),
    }
    for system, stream, pattern in (
        ("register", "persons", "persons_*.csv"),
        ("library", "patrons", "patrons_*.csv"),
    ):
        (root / "drop" / system).mkdir(parents=True)
        (root / "mappings" / system).mkdir(parents=True)
        (root / "config" / "systems" / f"{system}.yaml").write_text(
            f"system: {system}\nconnector: files\nconnection: {{path: drop/{system}}}\n"
            f"streams:\n  {stream}:\n    files: '{pattern}'\n    format: csv\n"
            f"    delimiter: ';'\n    batch_size: {BATCH}\n"
            f"    mapping: mappings/{system}/{stream}.yaml\n"
        )
        (root / "mappings" / system / f"{stream}.yaml").write_text(
            f"source: {system}.{stream}\nentity: resident\nid: id\nfields:\n"
            "  national_id: {from: hetu, use: [strip, hetu], required: true}\n"
            "  given_name: {from: etunimi}\n  family_name: {from: sukunimi}\n" + fields[system]
        )


def _start(env: dict[str, str], system: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "islandhub.cli", "sync", system, "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _source(system: str, number: int) -> dict[str, str]:
    stream = "persons" if system == "register" else "patrons"
    prefix = "R" if system == "register" else "L"
    return {"system": system, "stream": stream, "source_id": f"{prefix}{number}"}


def _expected_golden(p: Person, round_: int, *, register: bool, library: bool) -> dict[str, Any]:
    """The golden record a sequential sync makes (national id and resident id aside)."""
    record: dict[str, Any] = {"given_name": p.given, "family_name": p.family}
    if library:
        if not register and p.number % 7 == 0:
            record["given_name"] = p.given[:3]
        source = [_source("library", p.number)]
        record["emails"] = [{"address": p.email(round_), "primary": True, "sources": source}]
        record["phones"] = [{"number": p.phone(round_), "primary": True, "sources": source}]
    if register:
        address = {"street": p.street(round_), "postal_code": p.postal_code(round_)}
        sources = [_source("register", p.number)]
        record["addresses"] = [{**address, "primary": True, "sources": sources}]
    record["identifiers"] = [
        _source(s, p.number) for s, held in (("library", library), ("register", register)) if held
    ]
    return record


def _golden_records(store_url: str) -> dict[frozenset[tuple[str, str]], Any]:
    """Each active resident's current golden record and lineage, by its linked source ids."""
    store = open_store(store_url)
    try:
        with store.connect() as conn:
            members: dict[str, set[tuple[str, str]]] = defaultdict(set)
            for row in conn.execute(
                sa.select(links.c.resident_id, links.c.system, links.c.source_id)
            ):
                members[row.resident_id].add((row.system, row.source_id))
            current = (
                sa.select(
                    residents.c.resident_id,
                    residents.c.version,
                    resident_versions.c.record,
                    lineage.c.fields,
                )
                .join(
                    resident_versions,
                    sa.and_(
                        resident_versions.c.resident_id == residents.c.resident_id,
                        resident_versions.c.version == residents.c.version,
                    ),
                )
                .join(
                    lineage,
                    sa.and_(
                        lineage.c.resident_id == residents.c.resident_id,
                        lineage.c.version == residents.c.version,
                    ),
                )
                .where(residents.c.active.is_(True))
            )
            found = {}
            for row in conn.execute(current):
                key = frozenset(members[row.resident_id])
                assert key not in found, f"two residents hold {sorted(key)}"
                found[key] = (row.resident_id, json.loads(row.record), json.loads(row.fields))
            return found
    finally:
        store.dispose()


def _store_facts(store_url: str) -> dict[str, Any]:
    store = open_store(store_url)
    try:
        with store.connect() as conn:
            keys = conn.execute(
                sa.select(resident_keys.c.resident_id, sa.func.count()).group_by(
                    resident_keys.c.resident_id
                )
            ).all()
            versions: dict[str, list[int]] = defaultdict(list)
            for row in conn.execute(
                sa.select(resident_versions.c.resident_id, resident_versions.c.version)
            ):
                versions[row.resident_id].append(row.version)
            current = dict(
                conn.execute(sa.select(residents.c.resident_id, residents.c.version)).all()
            )
            all_residents = conn.execute(
                sa.select(sa.func.count()).select_from(residents)
            ).scalar_one()
        return {"keys": keys, "versions": versions, "current": current, "residents": all_residents}
    finally:
        store.dispose()


def _check_round(store_url: str, round_: int) -> None:
    shared, register_only, library_only = _people(round_)
    golden = _golden_records(store_url)
    expected: dict[frozenset[tuple[str, str]], dict[str, Any]] = {}
    for p in shared:
        key = frozenset({("register", f"R{p.number}"), ("library", f"L{p.number}")})
        expected[key] = _expected_golden(p, round_, register=True, library=True)
    for p in register_only:
        key = frozenset({("register", f"R{p.number}")})
        expected[key] = _expected_golden(p, round_, register=True, library=False)
    for p in library_only:
        key = frozenset({("library", f"L{p.number}")})
        expected[key] = _expected_golden(p, round_, register=False, library=True)

    # One resident per person: the clusters are exactly the persons, none doubled or lost.
    assert set(golden) == set(expected), (
        f"round {round_}: {len(set(golden) - set(expected))} unexpected clusters, "
        f"{len(set(expected) - set(golden))} missing"
    )
    wrong = []
    for key, (_rid, record, fields) in golden.items():
        record = {k: v for k, v in record.items() if k not in ("national_id", "resident_id")}
        if record != expected[key]:
            wrong.append(sorted(key))
            continue
        if len(key) == 2:
            # Lineage names both islands: each field's value from the island that holds it.
            systems = [source[0] for source in fields["sources"]]
            by_field = {name: systems[index] for name, (index, _rule) in fields["fields"].items()}
            assert by_field["addresses"] == "register" and by_field["given_name"] == "register"
            assert by_field["emails"] == "library" and by_field["phones"] == "library"
    assert not wrong, f"round {round_}: {len(wrong)} golden records differ, e.g. {wrong[:3]}"

    facts = _store_facts(store_url)
    persons = len(shared) + len(register_only) + len(library_only)
    assert facts["residents"] == persons, "residents founded twice or lost"
    assert len(facts["keys"]) == persons and all(count == 1 for _rid, count in facts["keys"])
    for rid, numbers in facts["versions"].items():
        # Every version follows the previous one; the resident points at its newest.
        assert sorted(numbers) == list(range(1, len(numbers) + 1)), rid
        assert facts["current"][rid] == len(numbers), rid


@pytest.mark.slow
def test_syncs_of_two_islands_at_once_share_residents_without_lost_updates(
    tmp_path, store_url, process_env
):
    root = tmp_path / "project"
    _write_project(root)
    env = process_env(ISLANDHUB_PROJECT=str(root), ISLANDHUB_STORE_URL=store_url)
    for round_ in range(1, ROUNDS + 1):
        _write_exports(root, round_)
        started = {system: _start(env, system) for system in ("register", "library")}
        done = {system: process.communicate(timeout=300) for system, process in started.items()}
        for system, (out, err) in done.items():
            assert started[system].returncode == 0, f"round {round_}, {system}: {err[-3000:]}"
            assert "Traceback" not in err
            (run,) = json.loads(out)["runs"]
            assert run["status"] == "succeeded", run
            assert run["pulled"] == run["unchanged"] + run["mapped"] + run["quarantined"], run
            shared, register_only, library_only = _people(round_)
            own = register_only if system == "register" else library_only
            assert run["pulled"] == len(shared) + len(own), run  # a full export each round
            assert run["quarantined"] == 0, run
        _check_round(store_url, round_)
