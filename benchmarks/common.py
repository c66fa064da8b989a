"""Shared pieces of the benchmarks: the synthetic resident export and child-process timing.

The export imitates what a Finnish municipal system hands over: a semicolon-separated CSV
with HETUs, Finnish and Swedish names, untidy emails and phone numbers, and Sipoo addresses.
It is generated from a seed, so every run measures the same bytes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

COLUMNS = (
    "id",
    "hetu",
    "etunimet",
    "sukunimi",
    "syntymaaika",
    "email",
    "puhelin",
    "katuosoite",
    "postinumero",
    "postitoimipaikka",
    "aidinkieli",
    "kotikunta",
)
HETU_CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"
INVALID_HETU_SHARE = 0.005
FIRST_DAY = dt.date(1925, 1, 1)
LAST_DAY = dt.date(2023, 12, 31)
INDIVIDUALS = 898  # individual numbers 002-899 (900-999 are temporary ids)

GIVEN_FI = (  # noqa: SIM905
    "Aino Eino Elina Juha Jukka Kaisa Kalle Laura Leena Liisa Matti Mikko Minna Onni "
    "Pekka Riikka Sari Satu Timo Tuula Veikko Ville Väinö Eeva Hannele Ilkka Jaana Kari "
    "Sanna Päivi Tiina Ulla Jyrki Kirsi Outi Pirjo Raimo Seppo Heikki"
).split()
GIVEN_SV = (  # noqa: SIM905
    "Anders Anna Björn Britt Carl Elin Erik Ebba Fredrik Greta Gustav Hanna Ingrid Johan "
    "Karin Lars Linnea Magnus Maja Nils Oskar Sofia Stig Sven Ulf Åsa Märta Göran "
    "Lennart Solveig"
).split()
FAMILY_FI = (  # noqa: SIM905
    "Korhonen Virtanen Mäkinen Nieminen Mäkelä Hämäläinen Laine Heikkinen Koskinen "
    "Järvinen Lehtonen Lehtinen Saarinen Salminen Heinonen Niemi Heikkilä Kinnunen "
    "Salonen Turunen Salo Laitinen Tuominen Rantanen Karjalainen Jokinen Mattila "
    "Savolainen Lahtinen Ahonen"
).split()
FAMILY_SV = (  # noqa: SIM905
    "Lindqvist Lindström Lindholm Johansson Nyström Holmberg Sjöberg Westerlund "
    "Blomqvist Eriksson Andersson Karlsson Forsman Grönroos Björklund Ekholm Sundström "
    "Åberg Öhman Lundberg Wikström Fagerström Strandberg Granholm Söderholm Nordling"
).split()
STREETS = (
    "Iso Kylätie",
    "Sipoonrannantie",
    "Talmantie",
    "Boxintie",
    "Söderkullantie",
    "Kalkkirannantie",
    "Nikkilän Pappilantie",
    "Jokipuistontie",
    "Kuninkaanportti",
    "Mäntsäläntie",
    "Amiraalintie",
    "Kirkkoniementie",
    "Hindsbyntie",
    "Paippistentie",
    "Kurvlaxintie",
    "Majvikintie",
    "Eriksnäsintie",
    "Gumbölentie",
    "Puistotie",
    "Kuusitie",
)
POSTAL = (
    ("04130", "Sipoo"),
    ("01150", "Söderkulla"),
    ("04240", "Talma"),
    ("01190", "Box"),
    ("04170", "Paippinen"),
    ("01180", "Kalkkiranta"),
)
POSTAL_WEIGHTS = (50, 25, 8, 6, 6, 5)
LANGUAGES = ("suomi", "svenska", "Suomi", "SVENSKA", "englanti", "venäjä", "viro", "arabia")
LANGUAGE_WEIGHTS = (52, 30, 3, 3, 4, 4, 2, 2)
MAIL_DOMAINS = ("gmail.com", "hotmail.com", "outlook.com", "sipoo.fi", "kolumbus.fi", "elisa.fi")
MOBILE_PREFIXES = ("040", "041", "044", "045", "046", "050")
_ASCII = str.maketrans({"ä": "a", "ö": "o", "å": "a", "Ä": "A", "Ö": "O", "Å": "A"})


@dataclass(frozen=True)
class DataFile:
    """A generated export and what a correct ingest of it must find."""

    path: Path
    rows: int
    invalid_hetu: int
    seconds: float = 0.0
    invalid_rows: frozenset[int] = frozenset()


# --- the generator -------------------------------------------------------------------------


def _days() -> list[tuple[str, str, bool]]:
    """Every birth day in range: (DDMMYY, dd.mm.yyyy, born in the 2000s)."""
    out = []
    day = FIRST_DAY
    while day <= LAST_DAY:
        out.append((day.strftime("%d%m%y"), day.strftime("%d.%m.%Y"), day.year >= 2000))
        day += dt.timedelta(days=1)
    return out


def _hetu_column(rng: random.Random, n: int) -> tuple[list[str], list[str], set[int]]:
    """Unique HETUs with their birth dates; a few with a wrong check character."""
    days = _days()
    keys = rng.sample(range(len(days) * INDIVIDUALS), n)  # unique (day, individual number)
    variants = rng.choices((0, 1), weights=(92, 8), k=n)  # 1: the 2023 signs Y / B
    bad = set(rng.sample(range(n), round(n * INVALID_HETU_SHARE)))
    hetus, births = [], []
    for i, key in enumerate(keys):
        ddmmyy, birth, modern = days[key // INDIVIDUALS]
        zzz = f"{key % INDIVIDUALS + 2:03d}"
        check = int(ddmmyy + zzz) % 31
        if i in bad:
            check = (check + 1 + i % 29) % 31
        sign = ("AB" if modern else "-Y")[variants[i]]
        hetus.append(f"{ddmmyy}{sign}{zzz}{HETU_CHECK[check]}")
        births.append(birth)
    return hetus, births, bad


def _name_columns(rng: random.Random, n: int) -> tuple[list[str], list[str]]:
    swedish = rng.choices((False, True), weights=(62, 38), k=n)
    firsts = [rng.choice(GIVEN_SV if sv else GIVEN_FI) for sv in swedish]
    seconds = rng.choices(GIVEN_FI + GIVEN_SV, k=n)
    shapes = rng.choices((0, 1, 2), weights=(35, 62, 3), k=n)  # 2: a stray double space
    given = [
        f if s == 0 else (f"{f}  {m}" if s == 2 else f"{f} {m}")
        for f, m, s in zip(firsts, seconds, shapes, strict=True)
    ]
    family = [rng.choice(FAMILY_SV if sv else FAMILY_FI) for sv in swedish]
    return given, family


def _email(first: str, last: str, shape: int, domain: str, number: int) -> str:
    local = f"{first.split()[0]}.{last}".translate(_ASCII)
    if shape == 0:
        return ""
    if shape == 1:
        local = local.lower()
    elif shape == 2:
        local = local.upper()
    address = f"{local}{number}@{domain}"
    return f"  {address} " if shape == 4 else address


def _email_column(rng: random.Random, given: list[str], family: list[str]) -> list[str]:
    n = len(given)
    shapes = rng.choices(range(5), weights=(10, 45, 5, 38, 2), k=n)
    domains = rng.choices(MAIL_DOMAINS, k=n)
    numbers = rng.choices(range(100), k=n)
    return list(map(_email, given, family, shapes, domains, numbers))


def _phone(prefix: str, number: int, shape: int) -> str:
    digits = f"{number:07d}"
    if shape == 0:
        return f"{prefix} {digits[:3]} {digits[3:]}"
    if shape == 1:
        return f"+358{prefix[1:]}{digits}"
    if shape == 2:
        return f"{prefix}-{digits}"
    if shape == 3:
        return f"+358 {prefix[1:]} {digits}"
    return ""


def _phone_column(rng: random.Random, n: int) -> list[str]:
    prefixes = rng.choices(MOBILE_PREFIXES, k=n)
    numbers = [rng.randrange(10_000_000) for _ in range(n)]
    shapes = rng.choices(range(5), weights=(40, 25, 20, 7, 8), k=n)
    return list(map(_phone, prefixes, numbers, shapes))


def _street_column(rng: random.Random, n: int) -> list[str]:
    streets = rng.choices(STREETS, k=n)
    numbers = rng.choices(range(1, 120), k=n)
    flats = rng.choices(("", "", "", " A 3", " B 12", " C 7", " as 2"), k=n)
    return [f"{s} {no}{f}" for s, no, f in zip(streets, numbers, flats, strict=True)]


def _postal_columns(rng: random.Random, n: int) -> tuple[list[str], list[str]]:
    places = rng.choices(POSTAL, weights=POSTAL_WEIGHTS, k=n)
    shout = rng.choices((False, True), weights=(80, 20), k=n)  # some exports write SIPOO
    offices = [p[1].upper() if s else p[1] for p, s in zip(places, shout, strict=True)]
    return [p[0] for p in places], offices


def resident_rows(n: int, seed: int) -> tuple[Iterator[tuple[str, ...]], set[int]]:
    """Return the export's rows (without header) and the numbers of those with a bad HETU."""
    rng = random.Random(seed)
    hetus, births, bad = _hetu_column(rng, n)
    given, family = _name_columns(rng, n)
    emails = _email_column(rng, given, family)
    phones = _phone_column(rng, n)
    streets = _street_column(rng, n)
    codes, offices = _postal_columns(rng, n)
    languages = rng.choices(LANGUAGES, weights=LANGUAGE_WEIGHTS, k=n)
    ids = [f"R{i:07d}" for i in range(1, n + 1)]
    municipality = ["753"] * n
    rows = zip(
        ids,
        hetus,
        given,
        family,
        births,
        emails,
        phones,
        streets,
        codes,
        offices,
        languages,
        municipality,
        strict=True,
    )
    return rows, bad


def write_export(path: Path, n: int, seed: int, encoding: str) -> DataFile:
    """Write the export to `path` (a folder of its own) and describe it."""
    started = _clock()
    path.parent.mkdir(parents=True, exist_ok=True)
    rows, invalid = resident_rows(n, seed)
    with path.open("w", encoding=encoding, newline="") as handle:
        handle.write(";".join(COLUMNS) + "\n")
        chunk: list[str] = []
        for row in rows:
            chunk.append(";".join(row))
            if len(chunk) == 50_000:
                handle.write("\n".join(chunk) + "\n")
                chunk = []
        if chunk:
            handle.write("\n".join(chunk) + "\n")
    return DataFile(path, n, len(invalid), _clock() - started, frozenset(invalid))


def write_prefix(source: DataFile, path: Path, n: int, encoding: str) -> DataFile:
    """Copy the header and first `n` rows of `source` into `path` (a folder of its own)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        source.path.open(encoding=encoding, newline="") as src,
        path.open("w", encoding=encoding, newline="") as dst,
    ):
        for number, line in enumerate(src):
            if number > n:
                break
            dst.write(line)
    bad = frozenset(i for i in source.invalid_rows if i < n)
    return DataFile(path, n, len(bad), 0.0, bad)


# --- child processes -----------------------------------------------------------------------


@dataclass(frozen=True)
class ChildRun:
    """One measurement in its own process: its report and its own peak RSS."""

    report: dict[str, Any]
    peak_rss_mb: float
    process_seconds: float
    returncode: int


def run_child(
    args: Sequence[str], result_file: Path, env: dict[str, str] | None = None
) -> ChildRun:
    """Run this benchmark's own script as a child and take that child's peak memory.

    The child reports its own high-water mark (peak_rss_mb, VmHWM) plus its largest finished
    child's. This process samples the child's whole live tree meanwhile (TreeMemory), from
    outside: a sampler inside the measured process would take its CPU and its GIL. The
    larger of the two is the peak. The rusage os.wait4 returns is the last fallback; on
    Linux it is polluted: it starts at the parent's RSS at fork time, and RUSAGE_CHILDREN is
    even the maximum over every child so far.
    """
    result_file.unlink(missing_ok=True)
    command = [
        sys.executable,
        str(Path(__file__).with_name("ingest.py")),
        *args,
        "--result",
        str(result_file),
    ]
    started = _clock()
    proc = subprocess.Popen(command, env={**os.environ, **(env or {})})
    with TreeMemory(proc.pid) as tree:
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = _clock() - started
    report = json.loads(result_file.read_text()) if result_file.is_file() else {}
    peak = max(tree.peak_rss_mb, report.get("peak_rss_mb") or usage.ru_maxrss / 1024)
    if report:
        report["peak_pss_mb"] = round(tree.peak_pss_mb, 1)
    return ChildRun(report, peak, seconds, proc.returncode)


def cpu_seconds() -> tuple[float, float]:
    """CPU seconds (user + system) so far: this process's own, and its finished children's.

    A sync's helpers (the extract worker, the quality validator) count once they are reaped;
    multiprocessing reaps one that ended on its own only when asked, so it is asked first.
    """
    import multiprocessing
    import resource

    multiprocessing.active_children()
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


class Timed:
    """The wall and CPU seconds of one stretch of work: what a measurement reports.

    CPU counts this process and the helpers it started and reaped meanwhile (cpu_seconds),
    over exactly the stretch the wall clock times: imports and checks outside it count in
    neither.
    """

    def __enter__(self) -> Timed:
        self._cpu = cpu_seconds()
        self._started = time.perf_counter()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.seconds = time.perf_counter() - self._started
        own, helpers = cpu_seconds()
        self.cpu = {
            "own_seconds": round(own - self._cpu[0], 2),
            "helpers_seconds": round(helpers - self._cpu[1], 2),
        }


def peak_rss_mb() -> float:
    """This process's own peak RSS in MB (VmHWM on Linux; ru_maxrss elsewhere)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    scale = 1024 * 1024 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


class TreeMemory:
    """The peak memory of a process and every process it started, sampled while it runs.

    A sync with ISLANDHUB_WORKERS=1 runs three processes (the writer, the extract worker and,
    for a big run, the quality validator); the rusage of finished children gives only the
    largest one. Every SAMPLE_S this sums, over the live tree, RSS (an upper bound: pages a
    forked child shares with its parent count in both) and PSS (each shared page split among
    its sharers: the tree's actual footprint), and keeps the peak of each sum.
    """

    SAMPLE_S = 0.25

    def __init__(self, root: int) -> None:
        self.root = root
        self.peak_rss_mb = 0.0
        self.peak_pss_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_until_stopped, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample_until_stopped(self) -> None:
        while not self._stop.wait(self.SAMPLE_S):
            rss = pss = 0
            for pid in _tree(self.root):
                found = _rollup(pid)
                rss, pss = rss + found.get("Rss", 0), pss + found.get("Pss", 0)
            self.peak_rss_mb = max(self.peak_rss_mb, rss / 1024)
            self.peak_pss_mb = max(self.peak_pss_mb, pss / 1024)


def _tree(root: int) -> list[int]:
    """`root` and its live descendants (Linux /proc; just `root` elsewhere)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                    # the command may hold spaces and parentheses: the ppid follows the last ")"
                    parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        found += frontier
    return found


def _rollup(pid: int) -> dict[str, int]:
    """A process's memory totals in KiB (Rss, Pss, ...) from smaps_rollup; {} if gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as rollup:
            lines = rollup.read().splitlines()[1:]
    except OSError:
        return {}
    return {name.rstrip(":"): int(kib) for name, kib, *_ in (line.split() for line in lines)}


def workers_peak_rss_mb() -> float:
    """The largest peak RSS in MB among this process's finished children (0 without any)."""
    import resource

    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / scale


def _clock() -> float:
    return time.perf_counter()


# --- output --------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain text table, right-aligned numbers, for terminals and CI logs."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=True)]
    lines = [
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(headers, widths, strict=True))
        ),
        "  ".join("-" * w for w in widths),
    ]
    for row in rows:
        cells = zip(row, widths, strict=True)
        lines.append(
            "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(cells))
        )
    return "\n".join(lines)
