"""Data-quality benchmark: validating big batches with Great Expectations, and the report.

    validate   a mapped batch of --rows records (default 500,000; and its 100,000-row prefix)
               validated as the pipeline's hook does it: slices of 100,000 rows through the
               real GX adapter, merged into one result. Target: 100,000 rows in <= 15 s.
    report     the report (sv, fi and en pages and the JSON) of --islands islands (default
               50) with --days days (default 90) of daily reviews in dq_results, from a
               fresh SQLite store. Target: <= 10 s.

Great Expectations' own import (seconds on a cold interpreter) is reported beside the
figures, not in them: a process pays it once. Writes benchmarks/out/quality.json.

    python benchmarks/quality.py [--rows 500000] [--islands 50] [--days 90]
    python benchmarks/quality.py --only report     # one of the two, printed as JSON
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.common import FAMILY_FI, GIVEN_FI, HETU_CHECK  # noqa: E402

OUT = HERE / "out" / "quality.json"
SLICE_TARGET_S = 15.0
PREFIX_ROWS = 100_000
REPORT_TARGET_S = 10.0


def mapped_columns(rows: int, seed: int = 753) -> tuple[list[str], dict[str, list[Any]]]:
    """Resident fields as a mapping leaves them; 0.5 % broken ids, gaps in contacts."""
    rng = random.Random(seed)
    ids, columns = [], {name: [] for name in FIELDS}
    for i in range(rows):
        day, month, year = rng.randint(1, 28), rng.randint(1, 12), rng.randint(1930, 2020)
        digits = f"{day:02d}{month:02d}{year % 100:02d}"
        individual = 2 + i % 898
        check = HETU_CHECK[int(f"{digits}{individual:03d}") % 31]
        if rng.random() < 0.005:
            check = "Z"
        sign = "-" if year < 2000 else "A"
        given, family = rng.choice(GIVEN_FI), rng.choice(FAMILY_FI)
        ids.append(f"R{i:07d}")
        values = {
            "national_id": f"{digits}{sign}{individual:03d}{check}",
            "given_name": given,
            "family_name": family,
            "birth_date": f"{year}-{month:02d}-{day:02d}",
            "email": f"{given}.{family}{i}@example.fi".lower() if rng.random() < 0.9 else None,
            "phone": f"+35840{rng.randint(1000000, 9999999)}" if rng.random() < 0.8 else None,
            "address.street": f"Iso Kylätie {rng.randint(1, 99)}",
            "address.postal_code": rng.choice(("04130", "04150", "04200", "0413")),
            "address.post_office": "SIPOO",
            "language": rng.choice(("fi", "fi", "sv", "en")),
            "municipality_code": rng.choice(("753", "753", "091", "999")),
        }
        for name, value in values.items():
            columns[name].append(value)
    return ids, columns


FIELDS = (
    "national_id",
    "given_name",
    "family_name",
    "birth_date",
    "email",
    "phone",
    "address.street",
    "address.postal_code",
    "address.post_office",
    "language",
    "municipality_code",
)


def bench_suite() -> Any:
    from islandhub.quality.suites import Check, Suite

    checks = (
        Check("national_id", "not_null"),
        Check("national_id", "hetu"),
        Check("national_id", "unique"),
        Check("birth_date", "iso_date"),
        Check("email", "email"),
        Check("email", "not_null", mostly=0.85),
        Check("phone", "e164_phone"),
        Check("address.postal_code", "postal_code"),
        Check("municipality_code", "municipality_code"),
        Check("language", "in_set", values=("fi", "sv", "en")),
        Check("language", "matches", pattern="[a-z]{2}"),
    )
    return Suite("bench", "residents", checks, FIELDS, FIELDS)


def validate(rows: int) -> dict[str, Any]:
    import pandas as pd

    begun = time.perf_counter()
    from islandhub.quality import gx
    from islandhub.quality.slices import SLICE

    imported = time.perf_counter() - begun
    suite = bench_suite()
    ids, columns = mapped_columns(rows)
    warm = {k: v[:1000] for k, v in columns.items()}
    gx.validate(pd.DataFrame(warm, dtype=object), suite, ids[:1000])  # GX builds its suite once
    figures: dict[str, Any] = {"gx_import_s": round(imported, 2), "checks": len(suite.checks)}
    # The target's 100,000 records, validated in slices as a run validates them.
    for label, count in (("prefix", min(rows, PREFIX_ROWS)), ("full", rows)):
        begun, cpu = time.perf_counter(), time.process_time()
        merged = None
        for start in range(0, count, SLICE):
            part = {k: v[start : min(count, start + SLICE)] for k, v in columns.items()}
            frame = pd.DataFrame(part, dtype=object)
            found = gx.validate(frame, suite, ids[start : start + len(frame)])
            merged = found if merged is None else gx.merge(merged, found)
        seconds, cpu = time.perf_counter() - begun, time.process_time() - cpu
        assert merged is not None and merged.rows == count
        failed = {o.check: o.unexpected for o in merged.outcomes if o.unexpected}
        figures[label] = {
            "rows": count,
            "seconds": round(seconds, 2),
            "cpu_s": round(cpu, 2),  # this process's CPU time: steadier on a shared machine
            "rows_per_s": round(count / seconds),
            "unexpected": failed,
        }
    return figures


def report(islands: int, days: int) -> dict[str, Any]:
    from islandhub.config import HubSettings, Project, StreamConfig, SystemConfig
    from islandhub.mapping import Mapping
    from islandhub.quality import results
    from islandhub.quality.report import write_report
    from islandhub.store import open_store

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store = open_store(f"sqlite:///{folder / 'hub.db'}")
        spec = {"source": "x.a", "id": "id", "fields": {"given_name": {"from": "n"}}}
        streams = {name: StreamConfig(name, Mapping(spec)) for name in ("a", "b")}
        systems = {
            f"island{i:02d}": SystemConfig(
                system=f"island{i:02d}",
                connector="files",
                connection={},
                streams=streams,
                title={"sv": f"Ö {i}", "fi": f"Saari {i}", "en": f"Island {i}"},
                owner={"name": f"Sektor {i % 7}", "email": f"owner{i}@example.fi"},
                schedule="30 5 * * *",
            )
            for i in range(islands)
        }
        project = Project(folder, HubSettings(f"sqlite:///{folder / 'hub.db'}"), systems)
        begun = time.perf_counter()
        written_rows = _history(store, results, list(systems), days)
        filled = time.perf_counter() - begun
        begun, cpu = time.perf_counter(), time.process_time()
        written = write_report(project, store, folder / "report")
        seconds, cpu = time.perf_counter() - begun, time.process_time() - cpu
        size = sum(p.stat().st_size for p in written.html.values())
        store.dispose()
    return {
        "islands": islands,
        "days": days,
        "dq_results_rows": written_rows,
        "history_written_s": round(filled, 2),
        "seconds": round(seconds, 2),
        "cpu_s": round(cpu, 2),
        "html_bytes_per_language": size // 3,
    }


def _history(store: Any, results: Any, systems: list[str], days: int) -> int:
    """A review a day for `days` days: two streams and a cross row per island."""
    rng = random.Random(7)
    end = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0)
    checks = [
        {
            "check": f"{field}:{kind}",
            "field": field,
            "kind": kind,
            "dimension": "validity",
            "mostly": 1.0,
            "origin": "mapping",
            "elements": 20000,
            "missing": 300,
            "unexpected": rng.randint(0, 40),
            "examples": [{"source_id": f"S{n}", "value": "0413"} for n in range(5)],
            "error": None,
            "success": False,
        }
        for field, kind in (("address.postal_code", "postal_code"), ("phone", "e164_phone"))
    ]
    count = 0
    with store.begin() as conn:
        for day in range(days):
            at = end - timedelta(days=days - 1 - day)
            for system in systems:
                drift = rng.uniform(-0.02, 0.02)
                for stream in ("a", "b"):
                    scores = {
                        "records": 20000,
                        "mapped": 19800,
                        "quarantined": 200,
                        "quarantined_share": 0.01,
                        "completeness": 0.9 + drift,
                        "validity": 0.97 + drift / 2,
                        "uniqueness": 0.99,
                    }
                    reason = {"reason": "national_id: invalid", "count": 200, "examples": ["S1"]}
                    quarantine = {"count": 200, "reasons": [reason]}
                    outcome = {"checks": checks, "quarantine": quarantine, "docs": None}
                    results.record(
                        conn, run_id=f"r{day}", system=system, stream=stream, scope="island",
                        suite=f"islandhub.{system}.{stream}", at=at, size=20000, success=False,
                        scores=scores, results=outcome,
                    )  # fmt: skip
                    count += 1
                cross = {
                    "records": 40000,
                    "consistency": 0.93 + drift,
                    "uniqueness": 0.98,
                    "freshness": 1.0 if rng.random() < 0.9 else 0.5,
                }
                findings = {
                    "unlinked": {"records": 40000, "unlinked": 800, "examples": ["S3"]},
                    "duplicates": {"records": 40000, "duplicates": 300, "examples": ["S4"]},
                    "register": {
                        f: {"compared": 30000, "agreed": 28000, "examples": ["S5"]}
                        for f in ("given_name", "family_name", "address", "language")
                    },
                    "freshness": {"missed": 0, "score": 1.0},
                }
                results.record(
                    conn, run_id=f"r{day}", system=system, stream=None, scope="cross",
                    suite=f"islandhub.{system}.cross", at=at, size=40000, success=True,
                    scores=cross, results=findings,
                )  # fmt: skip
                count += 1
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--islands", type=int, default=50)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--only", choices=["validate", "report"], help="one measurement")
    args = parser.parse_args()
    if args.only:
        measure = (
            validate(args.rows) if args.only == "validate" else report(args.islands, args.days)
        )
        print(json.dumps(measure, indent=2))
        return 0
    found = {
        "validate": validate(args.rows),
        "report": report(args.islands, args.days),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
    }
    prefix, full, rep = found["validate"]["prefix"], found["validate"]["full"], found["report"]
    targets = {
        f"{prefix['rows']:,} rows validated in <= {SLICE_TARGET_S:.0f} s": prefix["seconds"]
        <= SLICE_TARGET_S,
        f"report of {rep['islands']} islands x {rep['days']} days in <= {REPORT_TARGET_S:.0f} s": (
            rep["seconds"] <= REPORT_TARGET_S
        ),
    }
    found["targets"] = targets
    print(f"Great Expectations import: {found['validate']['gx_import_s']} s (not counted)")
    for label, item in (("prefix", prefix), ("full", full)):
        print(
            f"validate {label:6} {item['rows']:>9,} rows  {item['seconds']:>7.2f} s "
            f"(CPU {item['cpu_s']:.2f} s)  {item['rows_per_s']:>9,} rows/s  "
            f"({found['validate']['checks']} checks)"
        )
    print(
        f"report   {rep['islands']} islands x {rep['days']} days ({rep['dq_results_rows']:,} "
        f"dq_results rows): {rep['seconds']:.2f} s (CPU {rep['cpu_s']:.2f} s) for sv, fi, en "
        "and the JSON"
    )
    for target, ok in targets.items():
        print(f"{'PASS' if ok else 'MISS'}  {target}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(found, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
