"""The `islandhub` command: parses arguments, calls the engine, prints. Nothing more.

Exit codes: 0 done, 1 the run failed (source down, gate tripped), 2 bad input (config,
mapping, arguments) with the reason on stderr. `--json` prints one JSON document on stdout
and nothing else there.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from islandhub import __version__, cli_privacy, cli_push, cli_quality, cli_values
from islandhub.api import command as cli_api
from islandhub.cli_privacy import add_purpose
from islandhub.errors import ConfigError, HubError
from islandhub.privacy.crypto import unseal_text
from islandhub.privacy.masking import MaskingFilter, mask_text


def _console(stderr: bool = False) -> Console:
    # Piped output (Airflow logs, CI, `| less`) gets wide tables instead of rich's 80 columns.
    probe = Console(stderr=stderr)
    width = None if probe.is_terminal else int(os.environ.get("COLUMNS", "200"))
    # No markup: what is printed is island data and messages, where `[a-z]` is text (a
    # pattern in an error message, a value in a table), not a style. Colour goes as rich Text.
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width, markup=False)


out = _console()
err = _console(stderr=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="islandhub", description="Resident-data integration hub.")
    parser.add_argument(
        "--project", help="project folder with config/ and mappings/ (or ISLANDHUB_PROJECT)"
    )
    parser.add_argument("--version", action="version", version=f"islandhub {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sync = commands.add_parser("sync", help="pull, map, resolve and publish one or more islands")
    sync.add_argument("systems", nargs="*", metavar="SYSTEM")
    sync.add_argument("--all", action="store_true", help="every configured system")
    sync.add_argument("--stream", help="only this stream")
    sync.add_argument(
        "--full-refresh",
        action="store_true",
        help="pull everything again (unchanged records are still skipped)",
    )
    sync.add_argument("--json", action="store_true")

    remap = commands.add_parser("remap", help="map landed records again after a mapping change")
    remap.add_argument("system")
    remap.add_argument("--stream", help="only this stream")
    remap.add_argument("--json", action="store_true")

    resolve = commands.add_parser(
        "resolve",
        help="match the records published since the last pass (or every record); merge residents",
    )
    resolve.add_argument(
        "--train", action="store_true", help="train the matching model again first (a full pass)"
    )
    resolve.add_argument(
        "--full", action="store_true", help="cluster every record, not only the changed ones"
    )
    resolve.add_argument("--json", action="store_true")

    evaluate = commands.add_parser("evaluate", help="score resolution against a ground truth CSV")
    evaluate.add_argument(
        "--truth",
        required=True,
        metavar="FILE.csv",
        help="columns system,stream,source_id,entity_id",
    )
    evaluate.add_argument("--json", action="store_true")

    demo = commands.add_parser(
        "demo", help="the demo archipelago: generate, serve, sync all, sum up"
    )
    demo.add_argument("action", nargs="?", choices=["serve"], help="serve: start the islands only")
    demo.add_argument("--residents", type=int, default=22_600, help="residents to generate")
    demo.add_argument("--seed", type=int, default=753)
    demo.add_argument("--workdir", type=Path, help="where the islands' files and the demo store go")
    demo.add_argument("--json", action="store_true")

    status = commands.add_parser(
        "status", help="islands, streams, last runs, quarantine, residents"
    )
    status.add_argument("--json", action="store_true")

    check = commands.add_parser("check", help="test the connection to an island")
    check.add_argument("system")

    resident = commands.add_parser(
        "resident", help="read golden resident records; a steward's corrections (audited)"
    )
    rsub = resident.add_subparsers(dest="resident_command", required=True, metavar="ACTION")
    show = rsub.add_parser("show", help="one resident's golden record with lineage")
    show.add_argument("resident_id", nargs="?", metavar="ID", type=cli_values.resident_id)
    show.add_argument(
        "--national-id", type=cli_values.national_id, help="find the resident by national id (HETU)"
    )
    add_purpose(show)
    show.add_argument(
        "--reveal", action="store_true", help="show the national id unmasked (audited)"
    )
    show.add_argument("--json", action="store_true")
    explain = rsub.add_parser("explain", help="why these records are one person")
    explain.add_argument("resident_id", metavar="ID", type=cli_values.resident_id)
    add_purpose(explain)
    explain.add_argument("--json", action="store_true")
    listing = rsub.add_parser("list", help="a page of residents")
    listing.add_argument("--limit", type=cli_values.count, default=20)
    listing.add_argument("--offset", type=cli_values.count, default=0)
    add_purpose(listing)
    listing.add_argument("--json", action="store_true")
    _steward_parsers(rsub)
    cli_privacy.add_resident_parsers(rsub)
    cli_privacy.add_commands(commands)
    cli_push.add_commands(commands)
    cli_quality.add_commands(commands)
    cli_api.add_commands(commands)

    mapping = commands.add_parser("mapping", help="check and preview mapping files")
    msub = mapping.add_subparsers(dest="mapping_command", required=True, metavar="ACTION")
    mcheck = msub.add_parser("check", help="validate mapping files")
    mcheck.add_argument("files", nargs="+", metavar="FILE")
    preview = msub.add_parser("preview", help="apply a mapping to sample records")
    preview.add_argument("file", metavar="FILE")
    preview.add_argument(
        "--input",
        required=True,
        metavar="SAMPLE.json",
        help="a JSON list of records (or JSON Lines)",
    )
    preview.add_argument("--json", action="store_true")

    connector = commands.add_parser("connector", help="connector kinds")
    csub = connector.add_subparsers(dest="connector_command", required=True, metavar="ACTION")
    clist = csub.add_parser("list", help="installed connector kinds and their options")
    clist.add_argument("--json", action="store_true")
    cnew = csub.add_parser(
        "new", help="start a new island: system file, mapping, sample and a test"
    )
    cnew.add_argument("name", help="the system id, e.g. booking")
    cnew.add_argument("--kind", required=True, choices=["rest", "python"])
    return parser


def _steward_parsers(rsub: Any) -> None:
    """The data steward's corrections: recorded with who and why, audited, kept by every run."""
    merge = rsub.add_parser(
        "merge", help="steward: A and B are one person (the older id stays, the other redirects)"
    )
    merge.add_argument("resident_id", metavar="A", type=cli_values.resident_id)
    merge.add_argument("other_id", metavar="B", type=cli_values.resident_id)
    split = rsub.add_parser("split", help="steward: these records of ID are another person")
    split.add_argument("resident_id", metavar="ID", type=cli_values.resident_id)
    split.add_argument(
        "--records",
        required=True,
        action="append",
        metavar="SYSTEM:STREAM:SOURCE_ID[,...]",
        help="the records that move (repeat or separate with commas)",
    )
    split.add_argument(
        "--into",
        metavar="ID",
        type=cli_values.resident_id,
        help="an existing resident (default: a new one)",
    )
    pin = rsub.add_parser("pin", help="steward: fix a golden field's value (rule steward-pin)")
    pin.add_argument("resident_id", metavar="ID", type=cli_values.resident_id)
    pin.add_argument("field", metavar="FIELD")
    pin.add_argument("value", metavar="VALUE")
    unpin = rsub.add_parser("unpin", help="steward: lift a pin (survivorship chooses again)")
    unpin.add_argument("resident_id", metavar="ID", type=cli_values.resident_id)
    unpin.add_argument("field", metavar="FIELD")
    for command in (merge, split, pin, unpin):
        command.add_argument(
            "--reason", required=True, help="why (recorded with the decision and audited)"
        )
        command.add_argument("--actor", help="who decides (default: ISLANDHUB_ACTOR or OS user)")
        command.add_argument("--json", action="store_true")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    _configure_logging()
    handler = _HANDLERS[args.command]
    try:
        return handler(args)
    except HubError as exc:
        err.print(Text.assemble(("error:", "red"), " ", mask_text(str(exc))))
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("interrupted; the next run resumes after the last committed batch")
        return 130


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(MaskingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=os.environ.get("ISLANDHUB_LOG_LEVEL", "WARNING"), handlers=[handler])
    # Splink's advice on term frequencies is for model builders, not for staff at the CLI.
    logging.getLogger("splink").setLevel(logging.ERROR)


def _project(args: argparse.Namespace) -> Any:
    from islandhub.config import find_project, load_project
    from islandhub.privacy.crypto import use_project

    project = load_project(find_project(args.project))
    use_project(project.root)  # the development national-id key, when no secret is set
    return project


def _store(project: Any) -> Any:
    from islandhub.store import open_store

    return open_store(project.hub.store_url)


def _print_json(value: Any, *, masked: bool = True) -> None:
    # Source ids of some islands are national ids (the register): mask every one on the way out,
    # unless the reader asked to --reveal (audited). Ids still sealed as stored are opened first.
    sys.stdout.write(
        _shown(json.dumps(value, ensure_ascii=False, indent=2, default=str), masked) + "\n"
    )


def _emit(renderable: Any, *, masked: bool = True) -> None:
    """Print a table or text to stdout with every national id masked (unless revealed)."""
    with out.capture() as captured:
        out.print(renderable)
    sys.stdout.write(_shown(captured.get(), masked))


def cmd_sync(args: argparse.Namespace) -> int:
    """`islandhub sync`."""
    from islandhub.pipeline import sync

    if args.all == bool(args.systems):
        raise ConfigError("name the systems to sync, or --all (not both)")
    project = _project(args)
    store = _store(project)
    systems = sorted(project.systems) if args.all else args.systems
    with _progress(enabled=not args.json) as progress:
        results = sync(
            project,
            store,
            systems,
            stream=args.stream,
            full_refresh=args.full_refresh,
            progress=progress,
        )
    failed = [r for r in results if r.status != "succeeded"]
    resolved = _resolve_published(project, store) if len(failed) < len(results) else None
    if args.json:
        _print_json(
            {
                "runs": [r.as_dict() for r in results],
                "ok": not failed,
                "resolution": resolved.as_dict() if resolved else None,
            }
        )
    else:
        table = Table(
            "system",
            "stream",
            "status",
            "pulled",
            "unchanged",
            "mapped",
            "quarantined",
            "published",
        )
        for r in results:
            colour = "green" if r.status == "succeeded" else "red"
            table.add_row(
                r.system,
                r.stream,
                Text(r.status, style=colour),
                *map(str, (r.pulled, r.unchanged, r.mapped, r.quarantined, r.published)),
            )
        _emit(table)
        if resolved:
            _emit(
                f"resolution: {resolved.queued:,} records matched against the residents; "
                f"{resolved.relinked:,} relinked, {resolved.merged:,} residents merged"
            )
    for r in failed:
        err.print(Text.assemble((f"{r.status}:", "red"), f" {r.system}.{r.stream}: {r.error}"))
    return 1 if failed else 0


def _resolve_published(project: Any, store: Any) -> Any:
    """The incremental resolution pass after a sync (when a model is trained)."""
    from islandhub.push.outbox import plan_for
    from islandhub.resolve.reconcile import resolve_published

    return resolve_published(project.root, store, project.hub.priority, plan_for(project))


class _progress:
    """A progress display on a terminal; a line per step otherwise (Airflow logs, CI)."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.live = enabled and err.is_terminal
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Callable[[str, dict[str, Any]], None]:
        if self.live:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err
            )
            self._bar.__enter__()
        return self.update

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)

    def update(self, event: str, data: dict[str, Any]) -> None:
        if not self.enabled:
            return
        where = f"{data.get('system')}.{data.get('stream')}"
        if event == "start":
            text = f"{where}: starting"
        else:
            text = (
                f"{where}: {event} - pulled {data['pulled']}, unchanged {data['unchanged']}, "
                f"mapped {data['mapped']}, quarantined {data['quarantined']}, "
                f"published {data['published']}"
            )
        if self._bar is not None:
            if self._task is None:
                self._task = self._bar.add_task(text)
            self._bar.update(self._task, description=text)
        elif event in ("done", "start"):
            err.print(text)


def cmd_status(args: argparse.Namespace) -> int:
    """`islandhub status`."""
    from islandhub.status import hub_status

    project = _project(args)
    data = hub_status(project, _store(project))
    if args.json:
        _print_json(data)
        return 0
    table = Table(
        "system", "owner", "stream", "last run", "status", "pulled", "quarantined now", "records"
    )
    for system in data["systems"]:
        for stream in system["streams"]:
            run = stream["last_run"] or {}
            table.add_row(
                system["system"],
                system["owner"].get("name", ""),
                stream["stream"],
                (run.get("started_at") or "never")[:19],
                run.get("status", "-"),
                str(run.get("pulled", "-")),
                str(stream["quarantined"]),
                str(stream["records"]),
            )
    _emit(table)
    out.print(f"residents: {data['residents']['active']}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """`islandhub check SYSTEM`."""
    from islandhub.pipeline import make_connector

    project = _project(args)
    if args.system not in project.systems:
        raise ConfigError(
            f"unknown system {args.system!r}; "
            f"configured systems: {', '.join(sorted(project.systems))}"
        )
    result = make_connector(project, project.systems[args.system]).check()
    verdict = ("ok", "green") if result.ok else ("failed", "red")
    out.print(Text.assemble(f"{args.system}: ", verdict, f": {mask_text(result.message)}"))
    return 0 if result.ok else 1


def cmd_resident(args: argparse.Namespace) -> int:
    """`islandhub resident show|list|explain|merge|split|pin|unpin`."""
    from islandhub.residents import list_residents, show

    project = _project(args)
    store = _store(project)
    if args.resident_command in _STEWARD_COMMANDS:
        return _steward(project, store, args)
    if args.resident_command == "export":
        return cli_privacy.cmd_export(project, store, args)
    if args.resident_command == "erase":
        return cli_privacy.cmd_erase(project, store, args)
    reader = cli_privacy.reader_for(args)
    if args.resident_command == "explain":
        return _explain(project, store, reader, args)
    if args.resident_command == "list":
        rows = list_residents(store, reader, limit=args.limit, offset=args.offset)
        if args.json:
            _print_json({"residents": rows})
        else:
            _print_resident_table(rows)
        return 0
    if bool(args.resident_id) == bool(args.national_id):
        raise ConfigError("give a resident ID or --national-id (one of them)")
    found = show(
        store,
        reader,
        resident_id=args.resident_id,
        national_id=args.national_id,
        reveal=args.reveal,
    )
    if found is None:
        err.print("no such resident")
        return 1
    if args.json:
        _print_json(found, masked=not args.reveal)
    else:
        _print_resident(found, masked=not args.reveal)
    return 0


_STEWARD_COMMANDS = ("merge", "split", "pin", "unpin")


def _steward(project: Any, store: Any, args: argparse.Namespace) -> int:
    from islandhub.push.outbox import plan_for
    from islandhub.resolve import steward

    who = steward.Steward.of(args.actor, args.reason)
    priority = project.hub.priority
    push = plan_for(project)  # steward changes owe the subscribed islands their pushes too
    command = args.resident_command
    if command == "merge":
        decision = steward.merge(store, who, args.resident_id, args.other_id, priority, push)
        done = (
            f"merged {decision.other_resident_id} into {decision.resident_id} "
            f"({len(decision.records)} source records); {decision.other_resident_id} redirects"
        )
    elif command == "split":
        records = steward.parse_records(args.records)
        decision = steward.split(store, who, args.resident_id, records, priority, args.into, push)
        done = (
            f"moved {len(decision.records)} record(s) of {decision.resident_id} to "
            f"{decision.other_resident_id}: "
            + ", ".join(steward.record_text(r) for r in decision.records)
        )
    elif command == "pin":
        decision = steward.pin(store, who, args.resident_id, args.field, args.value, priority, push)
        done = f"pinned {decision.field} of {decision.resident_id}"
    else:
        decision = steward.unpin(store, who, args.resident_id, args.field, priority, push)
        done = f"unpinned {decision.field} of {decision.resident_id}"
    if args.json:
        _print_json({"decision": decision.as_dict()})
    else:
        _emit(f"{done} (decision {decision.id}, by {decision.actor})")
    return 0


def _explain(project: Any, store: Any, reader: Any, args: argparse.Namespace) -> int:
    from islandhub.resolve.explain import explain

    found = explain(store, reader, args.resident_id, project.hub.priority)
    if found is None:
        err.print("no such resident")
        return 1
    if args.json:
        _print_json(found)
        return 0
    table = Table("record", "linked by")
    for r in found["records"]:
        table.add_row(f"{r['system']}.{r['stream']}:{r['source_id']}", r["rule"])
    _emit(table)
    if not found["model"]:
        _emit("no matching model yet (islandhub resolve trains one)")
    for d in found.get("decisions", []):
        what = d["field"] or d["other_resident_id"] or ""
        state = "" if d["active"] else " (lifted)"
        _emit(f"steward {d['kind']} {what}{state}: {d['reason']} ({d['actor']}, {d['at'][:19]})")
    if found.get("non_disclosure"):
        _emit("non-disclosure order (turvakielto): address values are not shown")
    for pair in found["comparisons"]:
        detail = Table("comparison", "level", "weight", "values")
        for c in pair["comparisons"]:
            values = " | ".join(v or "-" for v in c["values"])
            detail.add_row(c["comparison"], str(c["level"]), str(c["match_weight"]), values)
        _emit(
            f"{pair['record']} ~ {pair['with']}: weight {pair['match_weight']}, "
            f"probability {pair['match_probability']}"
        )
        _emit(detail)
    return 0


def _print_resident_table(rows: list[dict[str, Any]]) -> None:
    table = Table("resident", "national id", "name", "born", "lang", "emails", "phones", "sources")
    for row in rows:
        r = row["record"]
        name = " ".join(filter(None, (r.get("given_name"), r.get("family_name"))))
        table.add_row(
            row["resident_id"],
            r.get("national_id", ""),
            name,
            r.get("birth_date", ""),
            r.get("language", ""),
            ", ".join(e["address"] for e in r.get("emails", [])),
            ", ".join(p["number"] for p in r.get("phones", [])),
            ", ".join(sorted({i["system"] for i in r.get("identifiers", [])})),
        )
    _emit(table)


def _print_resident(found: dict[str, Any], *, masked: bool = True) -> None:
    record, lineage = found["record"], found["lineage"]
    if found.get("requested_id"):
        _emit(f"{found['requested_id']} was merged into {found['resident_id']}", masked=masked)
    _emit(
        f"resident {found['resident_id']}  version {found['version']}  "
        f"updated {found['updated_at'][:19]}"
    )
    table = Table("field", "value", "from", "rule")
    for name, value in _flatten(record):
        if name in ("resident_id", "identifiers"):
            continue
        source = lineage.get(name, {})
        origin = f"{source['system']}.{source['stream']}:{source['source_id']}" if source else ""
        # Opened and masked before the table sizes its column to it (a sealed id is longer).
        origin = _shown(origin, masked)
        table.add_row(name, _display(value), origin, source.get("rule", ""))
    _emit(table, masked=masked)
    ids = ", ".join(
        f"{i['system']}.{i['stream']}:{i['source_id']}" for i in record.get("identifiers", [])
    )
    _emit(f"source records: {ids}", masked=masked)


def _shown(text: str, masked: bool) -> str:
    """A sealed value opened, then masked unless the reader revealed it (audited)."""
    text = unseal_text(text)
    return mask_text(text) if masked else text


def _flatten(record: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested groups (guardian.name, ...) as dotted rows, the way lineage names them."""
    rows: list[tuple[str, Any]] = []
    for name, value in record.items():
        if isinstance(value, dict):
            rows.extend(_flatten(value, f"{prefix}{name}."))
        else:
            rows.append((f"{prefix}{name}", value))
    return rows


def _display(value: Any) -> str:
    if isinstance(value, list):
        parts = []
        for entry in value:
            main = (
                entry.get("address")
                or entry.get("number")
                or " ".join(
                    str(entry[k]) for k in ("street", "postal_code", "post_office") if entry.get(k)
                )
            )
            marks = " (primary)" if entry.get("primary") else ""
            systems = dict.fromkeys(s["system"] for s in entry.get("sources", []))  # in order, once
            parts.append(f"{main}{marks} <- {', '.join(systems)}")
        return "\n".join(parts)
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else str(value)


def cmd_mapping(args: argparse.Namespace) -> int:
    """`islandhub mapping check|preview`."""
    from islandhub.config import load_mapping_file

    root = _optional_root(args)
    if args.mapping_command == "check":
        problems = []
        for file in args.files:
            try:
                load_mapping_file(Path(file), root=root)
            except ConfigError as exc:
                problems.extend(exc.problems)
        if problems:
            raise ConfigError(problems)
        out.print(f"{len(args.files)} mapping file(s) ok")
        return 0
    mapping = load_mapping_file(Path(args.file), root=root)
    records = _read_sample(Path(args.input))
    batch = mapping.apply(records)
    result = {
        "mapped": [
            {
                "source_id": m.source_id,
                "fields": m.values,
                "warnings": m.warnings,
                # Only where the mapping has a `references:` section and the record holds one.
                **({"references": dict(m.references)} if m.references else {}),
            }
            for m in batch.mapped
        ],
        "quarantined": [
            {"source_id": q.source_id, "reasons": q.reasons} for q in batch.quarantined
        ],
    }
    if args.json:
        _print_json(json.loads(mask_text(json.dumps(result, ensure_ascii=False))))
    else:
        _emit(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


def _optional_root(args: argparse.Namespace) -> Path | None:
    from islandhub.config import find_project

    try:
        return find_project(args.project)
    except ConfigError:
        return None


def _read_sample(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:  # (issue 9, hostile input: no traceback for a bad file)
        raise ConfigError(f"{path}: not UTF-8 (byte {exc.start}): save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    unusable = False  # (issue 9, hostile input) JSON that Python parses but cannot use
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{path}:{exc.lineno}:{exc.colno}: not JSON or JSON Lines: {exc.msg}"
            ) from exc
        except (ValueError, RecursionError):  # as below, in one of its lines
            unusable = True
    except (ValueError, RecursionError):  # too deep, or a number of 4300+ digits
        unusable = True
    try:  # a lone surrogate ("\\ud800") parses, but cannot be printed
        json.dumps(None if unusable else data, ensure_ascii=False).encode()
    except (UnicodeEncodeError, RecursionError):
        unusable = True
    if unusable:
        raise ConfigError(
            f"{path}: not usable JSON: nested too deeply, a number too long, "
            "or text that is not Unicode (a lone surrogate)"
        )
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise ConfigError(f"{path}: expected a JSON object or a list of objects")
    return data


def cmd_connector(args: argparse.Namespace) -> int:
    """`islandhub connector list`."""
    from connectors.registry import connector_class, known_kinds

    if args.connector_command == "new":
        return _new_island(args)
    kinds = []
    for kind in known_kinds():
        cls = connector_class(kind)
        kinds.append(
            {
                "kind": kind,
                "doc": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "",
                "connection": cls.connection_schema.get("properties", {}),
                "stream": cls.stream_schema.get("properties", {}),
                "push": "push" in cls.__dict__,
            }
        )
    if args.json:
        _print_json({"connectors": kinds})
        return 0
    table = Table("kind", "what", "connection options", "stream options", "push")
    for k in kinds:
        table.add_row(
            k["kind"],
            k["doc"],
            ", ".join(k["connection"]),
            ", ".join(k["stream"]),
            "yes" if k["push"] else "no",
        )
    _emit(table)
    return 0


def _new_island(args: argparse.Namespace) -> int:
    from islandhub.config import find_project
    from islandhub.scaffold import new_island

    root = find_project(args.project)
    for path in new_island(root, args.name, args.kind):
        out.print(f"wrote {path.relative_to(root)}")
    if args.kind == "python":
        out.print(f"install the kind: .venv/bin/python -m pip install -e plugins/{args.name}")
    out.print(f"run its test: .venv/bin/python -m pytest tests/islands/test_{args.name}.py")
    return 0


def cmd_remap(args: argparse.Namespace) -> int:
    """`islandhub remap SYSTEM`."""
    from islandhub.pipeline import remap_stream

    project = _project(args)
    if args.system not in project.systems:
        known = ", ".join(sorted(project.systems))
        raise ConfigError(f"unknown system {args.system!r}; configured systems: {known}")
    system = project.systems[args.system]
    if args.stream and args.stream not in system.streams:
        raise ConfigError(f"system {args.system!r} has no stream {args.stream!r}")
    store = _store(project)
    names = [args.stream] if args.stream else list(system.streams)
    results = [remap_stream(project, store, system, system.streams[n]) for n in names]
    if args.json:
        _print_json({"runs": [r.as_dict() for r in results]})
    else:
        table = Table("system", "stream", "status", "records", "unchanged", "mapped", "quarantined")
        for r in results:
            counts = (r.pulled, r.unchanged, r.mapped, r.quarantined)
            table.add_row(r.system, r.stream, r.status, *map(str, counts))
        _emit(table)
    return 0 if all(r.status == "succeeded" for r in results) else 1


def cmd_resolve(args: argparse.Namespace) -> int:
    """`islandhub resolve [--train] [--full]`."""
    from islandhub.push.outbox import plan_for
    from islandhub.resolve.reconcile import resolve

    project = _project(args)
    store, push = _store(project), plan_for(project)
    result = resolve(
        project.root, store, project.hub.priority, retrain=args.train, full=args.full, push=push
    )
    if args.json:
        _print_json(result.as_dict())
    else:
        _emit(
            f"{result.mode} pass ({result.queued:,} records published since the last): "
            f"{result.records:,} records in {result.clusters:,} clusters; "
            f"{result.relinked:,} relinked, {result.merged:,} residents merged (their ids "
            f"redirect), {result.founded:,} founded" + ("; model trained" if result.trained else "")
        )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """`islandhub evaluate --truth FILE.csv`."""
    from islandhub.resolve.evaluate import evaluate, format_report

    project = _project(args)
    result = evaluate(_store(project), Path(args.truth))
    if args.json:
        _print_json(result)
    else:
        _emit(format_report(result))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """`islandhub demo [serve]`."""
    from islandhub.config import find_project
    from islandhub.demo.runner import run_demo, serve
    from islandhub.privacy import crypto

    if args.residents < 1:
        raise ConfigError("--residents must be at least 1")
    root = find_project(args.project)
    crypto.use_project(root)  # the demo's store is sealed with the project's development key
    say = (lambda _text: None) if args.json else (lambda text: err.print(text, markup=False))
    if args.action == "serve":
        serve(root, residents=args.residents, seed=args.seed, workdir=args.workdir, say=say)
        return 0
    summary = run_demo(
        root, residents=args.residents, seed=args.seed, workdir=args.workdir, say=say
    )
    failed = [i for i in summary["islands"] if i["status"] != "succeeded"]
    if args.json:
        _print_json(summary)
        return 1 if failed else 0
    table = Table("island", "what", "status", "pulled", "mapped", "quarantined")
    for island in summary["islands"]:
        counts = (f"{island[k]:,}" for k in ("pulled", "mapped", "quarantined"))
        table.add_row(island["system"], island["title"], island["status"], *counts)
    _emit(table)
    if summary["examples"]:
        _emit(
            f"\n{len(summary['examples'])} residents that several islands describe, a file island "
            "among them (golden records as `islandhub resident show` prints them):"
        )
    for found in summary["examples"]:
        _emit("")
        _print_resident(found)
    scores = ("precision", "recall", "f1")
    accuracy = ", ".join(f"{k} {summary[k]:.4f}" for k in scores if summary.get(k) is not None)
    _emit(
        f"islands {len(summary['islands'])}, records pulled {summary['records_pulled']:,}, "
        f"residents {summary['residents']:,}, quarantined {summary['quarantined']:,}"
        + (f"; against the ground truth: {accuracy}" if accuracy else "")
    )
    _emit(f"ground truth: {summary['truth']}; store: {summary['store']}; {summary['seconds']} s")
    return 1 if failed else 0


def _report(args: argparse.Namespace) -> int:
    """`islandhub report`."""
    project = _project(args)
    for line in cli_quality.cmd_report(project, _store(project), args):
        out.print(line, markup=False)
    return 0


_HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "demo": cmd_demo,
    "evaluate": cmd_evaluate,
    "resolve": cmd_resolve,
    "remap": cmd_remap,
    "sync": cmd_sync,
    "status": cmd_status,
    "check": cmd_check,
    "resident": cmd_resident,
    "mapping": cmd_mapping,
    "connector": cmd_connector,
    "audit": cli_privacy.cmd_audit,
    "retention": cli_privacy.cmd_retention,
    "privacy": cli_privacy.cmd_privacy,
    "push": cli_push.cmd_push,
    "report": _report,
    "api": cli_api.cmd_api,
}


if __name__ == "__main__":
    raise SystemExit(main())
