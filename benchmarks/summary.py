"""Bench summary: one table of every benchmark's figures, the hub next to each peer.

Reads the JSON the benchmarks write (benchmarks/out/*.json), prints one table, and saves it
with the machine's description to benchmarks/results/bench-YYYY-MM-DD.json (a committed
folder; a second run on the same day replaces that day's file):

    benchmark   measure   islandhub   peer   ratio   target   result

`ratio` is islandhub's figure divided by the peer's, whatever the unit (above 1: more
records/s, or more seconds). `result` is PASS or MISS against the benchmark's own target
(as its JSON states it), `-` where none is set. A benchmark whose JSON is missing shows a
row saying so; one whose JSON is older than the start of this `make bench` is marked stale.

    python benchmarks/summary.py --start        # first step of `make bench`: time, load
    python benchmarks/summary.py                # the table, and benchmarks/results/...json
    python benchmarks/summary.py --markdown     # also the table into README.md's section
    python benchmarks/summary.py --no-save      # only print
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "out"
RESULTS = HERE / "results"
README = REPO / "README.md"
START_FILE = "bench_start.json"
SERVER_ENV = "ISLANDHUB_BENCH_PG_SERVER"
DEFAULT_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
MARK_START, MARK_END = "<!-- bench:start -->", "<!-- bench:end -->"
HEADERS = ("benchmark", "measure", "islandhub", "peer", "ratio", "target", "result")
RIGHT = {2, 4}  # columns aligned right in the text table: islandhub, ratio
# The benchmarks of `make bench`, in its order: the JSON each writes.
BENCHMARKS = {
    "ingest": "ingest.json",
    "rest_pull": "rest_pull.json",
    "dag_parse": "dag_parse.json",
    "api_load": "api_load.json",
    "quality": "quality.json",
    "resolution": "resolution.json",
    "load": "load.json",
}
READ_ERRORS = (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError, AttributeError)


@dataclass
class Row:
    """One line of the table: a measure of islandhub, a peer's beside it, and a target."""

    benchmark: str
    measure: str
    islandhub: str = "-"
    peer: str = "-"
    ratio: str = "-"
    target: str = "-"
    result: str = "-"

    def cells(self) -> list[str]:
        return [
            self.benchmark,
            self.measure,
            self.islandhub,
            self.peer,
            self.ratio,
            self.target,
            self.result,
        ]


# --- formatting helpers -----------------------------------------------------------------------


def num(value: Any, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def ratio(hub: Any, peer: Any) -> str:
    if not hub or not peer:
        return "-"
    return f"{hub / peer:.2f}x"


def verdict(ok: Any) -> str:
    if ok is None:
        return "-"
    return "PASS" if ok else "MISS"


class Rows:
    """The rows of one benchmark, with its own targets to name beside its figures."""

    def __init__(self, benchmark: str, targets: Any = None) -> None:
        self.benchmark, self.targets = benchmark, targets
        self.rows: list[Row] = []

    def add(
        self,
        measure: str,
        value: Any,
        digits: int = 0,
        peer: tuple[str, Any] | None = None,
        target: tuple[str, ...] = (),
    ) -> Row:
        """A figure of the hub; with `peer` (name, figure) the peer's and the ratio; with
        `target` the benchmark's own target whose name holds those words, PASS or MISS."""
        made = Row(self.benchmark, measure, value if isinstance(value, str) else num(value, digits))
        if peer is not None:
            made.peer, made.ratio = f"{peer[0]} {num(peer[1], digits)}", ratio(value, peer[1])
        found = find_target(self.targets, *target) if target else None
        if found:
            made.target, made.result = found["target"], verdict(found["pass"])
        self.rows.append(made)
        return made

    def note(self, measure: str, text: str = "-", peer: str = "-", result: str = "-") -> None:
        """A row without a figure to compare: a count, a missing section, a missing peer."""
        self.rows.append(Row(self.benchmark, measure, text, peer, result=result))

    def checks(self, checks: list[dict[str, Any]], what: str) -> None:
        """The benchmark's correctness checks as one row: n of m ok."""
        ok = sum(1 for c in checks if c.get("ok"))
        failed = [c.get("check", "?") for c in checks if not c.get("ok")]
        text = f"{ok} of {len(checks)} ok" + (
            f"; failed: {'; '.join(failed[:3])}" if failed else ""
        )
        self.note(f"correctness checks: {what}", text, result=verdict(not failed))


def find_target(targets: Any, *words: str) -> dict[str, Any] | None:
    """The benchmark's own target whose name holds every word (case-insensitive)."""
    for t in _target_list(targets):
        name = t["target"].lower()
        if all(w.lower() in name for w in words):
            return t
    return None


def _target_list(targets: Any) -> list[dict[str, Any]]:
    """Targets as a list of {target, pass, detail}: benchmarks write lists or {name: bool}."""
    if isinstance(targets, dict):
        return [{"target": k, "pass": v, "detail": ""} for k, v in targets.items()]
    out = []
    for t in targets or []:
        ok = t.get("pass", t.get("ok"))
        out.append({"target": t.get("target", "?"), "pass": ok, "detail": t.get("detail", "")})
    return out


# --- one function per benchmark: its JSON -> rows ---------------------------------------------


def ingest_rows(d: dict[str, Any]) -> list[Row]:
    by = {r["method"]: r for r in d["results"]}
    hub, dlt, raw = by.get("islandhub"), by.get("dlt"), by.get("raw")
    out = Rows("ingest", d.get("targets"))
    if hub is None:
        out.note(f"islandhub sync of {d['rows']:,} rows: no figures", result="missing")
        return out.rows
    speed, memory = hub["rows_per_s"], hub["peak_rss_mb"]
    out.add(f"rows/s, {d['rows']:,} rows", speed, target=("rows/s",))
    if dlt:
        name = f"dlt ({dlt['note']})" if dlt.get("note") else "dlt"
        out.add("rows/s vs dlt", speed, peer=(name, dlt["rows_per_s"]), target=("dlt",))
        out.add(
            "peak RSS MB vs dlt", memory, peer=(name, dlt["peak_rss_mb"]), target=("peak rss <=",)
        )
    else:
        out.note("rows/s vs dlt", num(speed), "dlt not run (--skip-dlt)")
    if raw:
        out.add(
            "rows/s vs raw SQLite insert (the floor)", speed, peer=("raw insert", raw["rows_per_s"])
        )
    floor = by.get("store_floor")
    if floor:
        out.add(
            "rows/s vs the store floor (the sync's own rows written by SQLite alone)",
            speed,
            peer=("store floor", floor["rows_per_s"]),
        )
    prefix, again = by.get("islandhub_prefix"), by.get("resync")
    if prefix:
        growth = f"{memory / prefix['peak_rss_mb']:.2f}x"
        out.add(f"peak RSS, full / {prefix['rows']:,}-row prefix", growth, target=("flat",))
    if again:
        share = f"{again['seconds'] / hub['seconds']:.1%}"
        out.add("re-sync of the unchanged file / first sync", share, target=("re-sync",))
    out.checks(d.get("checks", []), "counts add up, tables hold them")
    return out.rows


def rest_pull_rows(d: dict[str, Any]) -> list[Row]:
    res, out = d["results"], Rows("rest_pull", d.get("targets"))
    dlt = res.get("dlt")
    peer = ("dlt rest_api", dlt["records_per_s"]) if dlt else None
    out.add(
        f"records/s, {d['records']:,} records",
        res["islandhub"]["records_per_s"],
        peer=peer,
        target=("dlt",),
    )
    if res.get("islandhub_incremental"):
        out.add(
            "records/s, with an incremental cursor",
            res["islandhub_incremental"]["records_per_s"],
            peer=peer,
        )
    return out.rows


def dag_parse_rows(d: dict[str, Any]) -> list[Row]:
    target, out = d["target_s"], Rows("dag_parse")
    for mode, what in (("import", "DAG module import"), ("dagbag", "DagBag")):
        seconds = d[mode]["max_s"]
        made = out.add(f"{what}, {d['systems']} systems, max of {d['repeat']} (s)", seconds, 3)
        made.target, made.result = f"<= {target:g} s", verdict(seconds <= target)
    return out.rows


def api_load_rows(d: dict[str, Any]) -> list[Row]:
    by: dict[str, list[dict[str, Any]]] = {}
    for r in d["results"]:
        by.setdefault(r["backend"], []).append(r)
    out = Rows("api_load", d.get("targets"))
    for backend, runs in by.items():
        p99 = sorted(r["p99_ms"] for r in runs)[len(runs) // 2]
        rate = runs[0]["target_rate"]
        out.add(
            f"{backend}: p99 ms at {rate:g} requests/s (median of {len(runs)} runs)",
            p99,
            1,
            target=(backend,),
        )
    return out.rows


def quality_rows(d: dict[str, Any]) -> list[Row]:
    v, rep, out = d["validate"], d["report"], Rows("quality", d.get("targets"))
    prefix, full = v["prefix"], v["full"]
    out.add(
        f"validate {prefix['rows']:,} rows, {v['checks']} checks (s)",
        prefix["seconds"],
        2,
        target=("validated",),
    )
    out.add(f"validate {full['rows']:,} rows (rows/s)", full["rows_per_s"])
    out.add(
        f"report, {rep['islands']} islands x {rep['days']} days (s)",
        rep["seconds"],
        2,
        target=("report",),
    )
    return out.rows


def resolution_rows(d: dict[str, Any]) -> list[Row]:
    res, out = d["results"], Rows("resolution", d.get("targets"))
    sections = {"scale": _scale, "splink": _splink, "febrl": _febrl, "demo": _demo}
    for section, add in sections.items():
        if res.get(section):
            add(res[section], out)
        else:
            state = "crashed" if section in res else "not run"
            out.note(f"{section}: {state} (not in resolution.json)", result="missing")
    return out.rows


def _scale(r: dict[str, Any], out: Rows) -> None:
    out.add(
        f"scale: {r['records']:,} records resolved (min)",
        r["seconds"] / 60,
        1,
        target=("records in",),
    )
    out.add("scale: peak RSS GB", r["peak_rss_mb"] / 1024, 2, target=("peak rss",))
    out.add("scale: F1 against the truth", r["accuracy"]["f1"], 4)


def _splink(r: dict[str, Any], out: Rows) -> None:
    seconds = r["seconds"]
    out.add(
        f"splink: score + cluster, {r['records']:,} records (s, median)",
        seconds["hub"],
        1,
        peer=("Splink direct", seconds["splink"]),
        target=("splink",),
    )


def _febrl(r: dict[str, Any], out: Rows) -> None:
    hub = r["hub"]["f1"]
    out.add("FEBRL4 F1", hub, 4, peer=("Splink direct", r["splink"]["f1"]), target=("febrl",))
    linkage = r.get("recordlinkage")
    if isinstance(linkage, dict) and linkage.get("f1") is not None:
        out.add("FEBRL4 F1", hub, 4, peer=("recordlinkage", linkage["f1"]))
    else:
        out.note("FEBRL4 F1", num(hub, 4), "recordlinkage: not measured in this run")


def _demo(r: dict[str, Any], out: Rows) -> None:
    traps = r["twins_merged"] + r["parent_child_merged"]
    out.add(f"demo F1 ({r['records']:,} records)", r["f1"], 4, target=("demo f1",))
    out.add("demo: twins and parent/child pairs merged", traps, target=("trap",))
    out.add("demo: full resolution (s)", r["resolve_seconds"], 1, target=("full resolution",))
    if r.get("incremental_seconds") is not None:
        out.add(
            "demo: incremental pass, 1 % changed (s)",
            r["incremental_seconds"],
            1,
            target=("incremental",),
        )


def load_rows(d: dict[str, Any]) -> list[Row]:
    modes, out = d["modes"], Rows("load", d.get("targets"))
    main = modes.get("concurrent") or modes.get("sequential")
    if main is None:
        out.note("no mode ran", result="missing")
        return out.rows
    label = main["mode"]
    # The sequential syncs are the concurrent ones' peer: the same islands one at a time.
    other = modes.get("sequential") if label == "concurrent" else None

    def peer(key: str) -> tuple[str, Any] | None:
        return ("sequential", other[key]) if other else None

    size = f"{d['residents']:,} residents, {main['records']:,} records"
    out.add(
        f"records/s, {label} ({size})",
        main["records_per_s"],
        peer=peer("records_per_s"),
        target=("no slower",),
    )
    out.add(f"wall seconds, {label}", main["seconds"], 1, peer=peer("seconds"))
    out.add(
        f"peak RSS MB, sum of the {len(main['islands'])} sync processes, {label}",
        main["peak_rss_mb_sum"],
        peer=peer("peak_rss_mb_sum"),
    )
    out.add(
        f"peak RSS MB, largest sync process, {label}",
        main["peak_rss_mb_max"],
        peer=peer("peak_rss_mb_max"),
        target=(label, "peak rss"),
    )
    out.checks(d.get("checks", []), "counts add up, residents, both modes")
    return out.rows


BUILDERS: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
    "ingest": ingest_rows,
    "rest_pull": rest_pull_rows,
    "dag_parse": dag_parse_rows,
    "api_load": api_load_rows,
    "quality": quality_rows,
    "resolution": resolution_rows,
    "load": load_rows,
}


# --- reading the benchmarks' JSON -------------------------------------------------------------


def read_inputs(out: Path, since: float | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each benchmark's JSON (None when missing or unreadable) and where it came from."""
    found: dict[str, Any] = {}
    sources: dict[str, Any] = {}
    for name, file in BENCHMARKS.items():
        path = out / file
        info: dict[str, Any] = {
            "file": str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)
        }
        if not path.is_file():
            info["state"] = "missing"
            found[name] = None
        else:
            modified = path.stat().st_mtime
            info["modified"] = _iso(modified)
            info["state"] = _freshness(modified, since)
            try:
                found[name] = json.loads(path.read_text(encoding="utf-8"))
            except ValueError as exc:
                info["state"], info["error"] = "unreadable", str(exc)
                found[name] = None
        sources[name] = info
    return found, sources


def _freshness(modified: float, since: float | None) -> str:
    """fresh / stale against this bench run's --start; just present without one."""
    if since is None:
        return "present"
    return "stale" if modified < since else "fresh"


def build_rows(found: dict[str, Any], sources: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for name, data in found.items():
        state = sources[name]["state"]
        if data is None:
            what = "no JSON: not run, or it crashed" if state == "missing" else f"JSON {state}"
            rows.append(Row(name, f"{what} ({sources[name]['file']})", result="missing"))
            continue
        try:
            made = BUILDERS[name](data)
        except READ_ERRORS as exc:
            made = [
                Row(name, f"figures not readable ({type(exc).__name__}: {exc})", result="missing")
            ]
        made += leftover_targets(name, data, made)
        if state == "stale":
            for row in made:
                row.benchmark = f"{name} (stale)"
        rows += made
    return rows


def leftover_targets(name: str, data: Any, rows: list[Row]) -> list[Row]:
    """A benchmark's targets that no figure row shows: each as a row of its own."""
    used = {r.target for r in rows}
    targets = data.get("targets") if isinstance(data, dict) else None
    return [
        Row(name, "target", t.get("detail") or "-", target=t["target"], result=verdict(t["pass"]))
        for t in _target_list(targets)
        if t["target"] not in used
    ]


# --- the machine ------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """CPU model and count, memory, Python, OS, PostgreSQL, and the load average now."""
    return {
        "cpu_model": _cpu_model(),
        "cpus": os.cpu_count(),
        "memory_gb": _memory_gb(),
        "python": platform.python_version(),
        "os": _os_name(),
        "platform": platform.platform(),
        "postgresql": _postgresql(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _os_name() -> str:
    try:
        release = platform.freedesktop_os_release()
        return f"{release.get('PRETTY_NAME', release.get('NAME', ''))}, kernel {platform.release()}"
    except OSError:
        return f"{platform.system()} {platform.release()}"


def _postgresql() -> str:
    """The server's version() (the one the load benchmark uses), or why it is missing."""
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(os.environ.get(SERVER_ENV, DEFAULT_SERVER))
        try:
            with engine.connect() as conn:
                return str(conn.execute(sa.text("SELECT version()")).scalar_one())
        finally:
            engine.dispose()
    except (sa.exc.SQLAlchemyError, ImportError) as exc:  # ImportError: no driver
        return f"unavailable ({type(exc).__name__})"


def _iso(stamp: float) -> str:
    return dt.datetime.fromtimestamp(stamp).astimezone().isoformat(timespec="seconds")


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --- output -----------------------------------------------------------------------------------


def text_table(rows: list[Row]) -> str:
    """Plain text for terminals and CI logs; the figures and ratios right-aligned."""
    body = [r.cells() for r in rows]
    widths = [max(len(c) for c in col) for col in zip(HEADERS, *body, strict=True)]

    def line(cells: list[str] | tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i in RIGHT else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [line(HEADERS), "  ".join("-" * w for w in widths)]
    return "\n".join(out + [line(cells) for cells in body])


def markdown_table(rows: list[Row]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    out = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    out += ["| " + " | ".join(cell(c) for c in r.cells()) + " |" for r in rows]
    return "\n".join(out)


def inputs_text(sources: dict[str, Any], started: str | None) -> str:
    """Where the figures came from; stale ones are older than this bench run's --start."""
    since = f" (this run started {started})" if started else " (no --start recorded)"
    lines = [f"figures from{since}:"]
    for info in sources.values():
        lines.append(f"  {info['file']}: {info['state']}, {info.get('modified', '-')}")
    return "\n".join(lines)


def machine_line(summary: dict[str, Any]) -> str:
    m = summary["machine"]
    load = m.get("load_average", {})
    return (
        f"{m['cpu_model']}, {m['cpus']} CPUs, {m['memory_gb']} GB; {m['os']}; Python "
        f"{m['python']}; {_short_pg(m['postgresql'])}; load average "
        f"{_first(load.get('start'))} -> {_first(load.get('end'))} (start -> end)"
    )


def _short_pg(version: str) -> str:
    match = re.match(r"PostgreSQL [\d.]+", version)
    return match.group(0) if match else f"PostgreSQL {version}"


def _first(load: list[float] | None) -> str:
    return "-" if not load else f"{load[0]:.2f}"


def markdown_section(summary: dict[str, Any], rows: list[Row], results_file: str | None) -> str:
    saved = f" Saved as `{results_file}`." if results_file else ""
    return (
        f"{MARK_START}\n"
        f"Last run {summary['finished_at'][:10]}.{saved} Machine: {machine_line(summary)}.\n"
        "Ratio: islandhub's figure divided by the peer's (above 1: more records/s, or more "
        f"seconds).{_stale_note(summary['inputs'])}\n\n"
        f"{markdown_table(rows)}\n"
        f"{MARK_END}"
    )


def _stale_note(sources: dict[str, Any]) -> str:
    old = [
        f"`{Path(i['file']).name}` of {i['modified'][:16]}"
        for i in sources.values()
        if i["state"] == "stale"
    ]
    missing = [
        f"`{Path(i['file']).name}`"
        for i in sources.values()
        if i["state"] in ("missing", "unreadable")
    ]
    note = f" Stale (from before this run): {', '.join(old)}." if old else ""
    return note + (f" Missing: {', '.join(missing)}." if missing else "")


def update_readme(readme: Path, section: str) -> None:
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(MARK_START), text.find(MARK_END)
    if start < 0 or end < start:
        raise SystemExit(f"{readme}: no {MARK_START} ... {MARK_END} section to update")
    readme.write_text(text[:start] + section + text[end + len(MARK_END) :], encoding="utf-8")


# --- the two steps ----------------------------------------------------------------------------


def record_start(out: Path) -> int:
    """`--start`: when this `make bench` began, and the load average then."""
    out.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now().astimezone()
    mark = {
        "started_at": now.isoformat(timespec="seconds"),
        "timestamp": now.timestamp(),
        "load_average": _load(),
    }
    (out / START_FILE).write_text(json.dumps(mark, indent=2) + "\n", encoding="utf-8")
    print(f"bench started {mark['started_at']}, load average {mark['load_average']}")
    return 0


def summarise(args: argparse.Namespace) -> int:
    start = _read_start(args.out)
    found, sources = read_inputs(args.out, start.get("timestamp"))
    rows = build_rows(found, sources)
    now = dt.datetime.now().astimezone()
    summary: dict[str, Any] = {
        "date": now.date().isoformat(),
        "started_at": start.get("started_at"),
        "finished_at": now.isoformat(timespec="seconds"),
        "machine": {
            **machine(),
            "load_average": {"start": start.get("load_average"), "end": _load()},
        },
        "columns": list(HEADERS),
        "rows": [asdict(r) for r in rows],
        "inputs": sources,
        "figures": found,
    }
    print(text_table(rows))
    print(f"\nmachine: {machine_line(summary)}")
    print(inputs_text(sources, summary["started_at"]))
    results_file = None
    if args.save:
        args.results.mkdir(parents=True, exist_ok=True)
        path = args.results / f"bench-{summary['date']}.json"
        path.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", "utf-8")
        results_file = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)
        print(f"saved to {results_file}")
    if args.markdown:
        update_readme(args.readme, markdown_section(summary, rows, results_file))
        print(f"updated the benchmark section of {args.readme}")
    return 0


def _read_start(out: Path) -> dict[str, Any]:
    path = out / START_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--start",
        action="store_true",
        help="record the start of a bench run (time, load average) and exit",
    )
    parser.add_argument(
        "--markdown",
        action="store_true",
        help=f"also write the table between {MARK_START} and {MARK_END}",
    )
    parser.add_argument(
        "--no-save", dest="save", action="store_false", help="print only; write no results file"
    )
    parser.add_argument("--out", type=Path, default=OUT, help="the benchmarks' JSON folder")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where results go")
    parser.add_argument("--readme", type=Path, default=README, help="the README to update")
    args = parser.parse_args(argv)
    return record_start(args.out) if args.start else summarise(args)


if __name__ == "__main__":
    sys.exit(main())
