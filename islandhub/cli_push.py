"""`islandhub push`: deliver golden-record changes to subscribed islands, preview, replay.

    islandhub push SYSTEM | --all [--dry-run] [--json]
    islandhub push replay [--target SYSTEM] [--json]

Kept apart from cli.py (which wires it in) like the privacy commands. Every value printed
goes through cli.py's masking output (national ids masked); a dry run is a read of personal
data and states its purpose like every other one.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.table import Table
from rich.text import Text

from islandhub.cli_privacy import add_purpose, reader_for
from islandhub.errors import ConfigError
from islandhub.privacy.masking import mask_text

REPLAY = "replay"


def add_commands(commands: Any) -> None:
    """The `push` command and its options."""
    push = commands.add_parser(
        "push", help="send golden-record changes to subscribed islands (docs/push.md)"
    )
    push.add_argument(
        "system",
        nargs="?",
        metavar="SYSTEM|replay",
        help="the island to push to; `replay`: dead rows become pending again",
    )
    push.add_argument("--all", action="store_true", help="every island with pending changes")
    push.add_argument(
        "--dry-run", action="store_true", help="print the field-level diff; send nothing"
    )
    push.add_argument("--target", metavar="SYSTEM", help="with replay: only this island's rows")
    add_purpose(push)
    push.add_argument("--json", action="store_true")


def cmd_push(args: argparse.Namespace) -> int:
    """`islandhub push SYSTEM|--all [--dry-run]`, `islandhub push replay [--target X]`."""
    from islandhub.cli import _project, _store

    project = _project(args)
    if args.system == REPLAY:
        return _replay(project, _store(project), args)
    if args.target:
        raise ConfigError("--target goes with `islandhub push replay`; to push: push SYSTEM")
    if args.all == bool(args.system):
        raise ConfigError("name the island to push to, or --all (not both)")
    if args.system and args.system not in project.systems:
        known = ", ".join(sorted(project.systems)) or "none"
        raise ConfigError(f"unknown system {args.system!r}; configured systems: {known}")
    store = _store(project)
    targets = [args.system] if args.system else None
    if args.dry_run:
        return _preview(store, targets, args)
    return _deliver(project, store, targets, args)


def _deliver(project: Any, store: Any, targets: list[str] | None, args: argparse.Namespace) -> int:
    from islandhub.cli import _emit, _print_json, err
    from islandhub.push.deliver import deliver

    reports = deliver(project, store, targets)
    if args.json:
        _print_json({"targets": [r.as_dict() for r in reports], "ok": all(r.ok for r in reports)})
    else:
        table = Table("island", "delivered", "retrying", "dead", "superseded", "waiting")
        for r in reports:
            counts = (r.delivered, r.retrying, r.dead, r.superseded, r.waiting)
            table.add_row(r.target, *map(str, counts))
        _emit(table if reports else "nothing to push")
    for r in reports:
        for error in r.errors:
            err.print(Text.assemble((f"{r.target}:", "red"), " ", mask_text(error)))
    return 0 if all(r.ok for r in reports) else 1


def _preview(store: Any, targets: list[str] | None, args: argparse.Namespace) -> int:
    from islandhub.cli import _emit, _print_json
    from islandhub.push.deliver import pending_targets, preview

    reader = reader_for(args)
    previews = [preview(store, t, reader) for t in targets or pending_targets(store)]
    if args.json:
        _print_json({"dry_run": True, "targets": previews})
        return 0
    for p in previews:
        _emit(
            f"{p['target']}: would send {len(p['would_send'])}, supersede "
            f"{p['would_supersede']}; {p['waiting']} waiting for a retry, {p['dead']} dead"
        )
        for send in p["would_send"]:
            _emit(_diff_table(p["target"], send))
    return 0


def _diff_table(target: str, send: dict[str, Any]) -> Table:
    title = f"{target}.{send['stream']} resident {send['resident_id']} version {send['version']}"
    if send["attempts"]:
        title += f" (attempt {send['attempts'] + 1}; last error: {send['last_error']})"
    table = Table("", "field", "island has (from the hub)", "would get", title=title)
    for f in send["fields"]:
        mark = "~" if f["changed"] else "="
        table.add_row(mark, f["field"], _show(f["before"]), _show(f["after"]))
    return table


def _show(value: Any) -> str:
    if value is None:
        return "-"
    # Island data is text, not rich markup: the CLI's consoles print no markup (cli._console).
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _replay(project: Any, store: Any, args: argparse.Namespace) -> int:
    from islandhub.cli import _emit, _print_json
    from islandhub.push.deliver import replay

    if args.dry_run or args.all:
        raise ConfigError("replay takes only --target SYSTEM (and --json)")
    if args.target and args.target not in project.systems:
        known = ", ".join(sorted(project.systems)) or "none"
        raise ConfigError(f"unknown system {args.target!r}; configured systems: {known}")
    moved = replay(store, args.target)
    if args.json:
        _print_json({"replayed": moved, "target": args.target})
    else:
        where = f" of {args.target}" if args.target else ""
        _emit(f"{moved} dead row(s){where} are pending again; `islandhub push` sends them")
    return 0
