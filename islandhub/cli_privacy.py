"""The residents' rights at the command line: export, erase, audit trail, retention, purpose.

Kept apart from cli.py (which wires these in) so that the privacy commands read as one
piece: every read of personal data states its purpose, every command is audited, and
national ids leave only masked unless `--reveal` (itself audited) is asked for.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from rich.table import Table

from islandhub import cli_values
from islandhub.errors import ConfigError

PURPOSE_ENV = "ISLANDHUB_PURPOSE"
LANGS = ("sv", "fi", "en")


def add_purpose(command: argparse.ArgumentParser) -> None:
    """`--purpose`: why personal data is read (required; asked for on a terminal)."""
    command.add_argument(
        "--purpose",
        help=f"why you read it, written to the audit log (or {PURPOSE_ENV}; asked if missing)",
    )


def reader_for(args: argparse.Namespace) -> Any:
    """Who reads and why: --purpose, else ISLANDHUB_PURPOSE, else asked on a terminal."""
    from islandhub.residents import Reader

    purpose = (getattr(args, "purpose", None) or os.environ.get(PURPOSE_ENV) or "").strip()
    if not purpose and sys.stdin.isatty():
        purpose = input("Purpose of this access (written to the audit log): ").strip()
    if not purpose:
        raise ConfigError(
            f"say why you access personal data: --purpose TEXT (or {PURPOSE_ENV}); "
            "it is written to the audit log (Act 906/2019 section 17)"
        )
    return Reader.from_environment(purpose[:255])


def add_resident_parsers(rsub: Any) -> None:
    """`resident export` and `resident erase`."""
    export = rsub.add_parser("export", help="subject access: everything held on one person")
    _who(export)
    export.add_argument("--lang", choices=LANGS, default="fi", help="language of the document")
    export.add_argument("--out", type=Path, default=Path("."), help="folder for the two files")
    add_purpose(export)
    export.add_argument("--json", action="store_true")
    erase = rsub.add_parser(
        "erase", help="erase one person in every island and the hub (a dry run first)"
    )
    _who(erase)
    erase.add_argument(
        "--dry-run", action="store_true", help="only ask every island whether it would allow it"
    )
    erase.add_argument("--lang", choices=LANGS, default="fi", help="language of the reasons")
    add_purpose(erase)
    erase.add_argument("--json", action="store_true")


def add_commands(commands: Any) -> None:
    """`audit`, `retention` and `privacy` (the national-id key)."""
    trail = commands.add_parser("audit", help="the audit log of one resident (who, when, why)")
    trail.add_argument("--resident", required=True, metavar="ID", type=cli_values.resident_id)
    trail.add_argument("--limit", type=cli_values.count, default=200)
    add_purpose(trail)
    trail.add_argument("--json", action="store_true")
    retention = commands.add_parser("retention", help="apply the islands' retention periods")
    retention.add_argument("systems", nargs="*", metavar="SYSTEM", help="default: every system")
    retention.add_argument("--dry-run", action="store_true", help="count, change nothing")
    retention.add_argument("--json", action="store_true")
    privacy = commands.add_parser("privacy", help="the key that seals national ids at rest")
    psub = privacy.add_subparsers(dest="privacy_command", required=True, metavar="ACTION")
    psub.add_parser(
        "new-key", help="print a new key once, to store as the secret ISLANDHUB_NATIONAL_ID_KEY"
    )
    rotate = psub.add_parser(
        "rotate-key",
        help="seal the store again with the key in ISLANDHUB_NATIONAL_ID_KEY_NEW (audited)",
    )
    rotate.add_argument("--actor", help="who rotates (default: ISLANDHUB_ACTOR or OS user)")
    rotate.add_argument("--json", action="store_true")


def _who(command: argparse.ArgumentParser) -> None:
    command.add_argument("resident_id", nargs="?", metavar="ID", type=cli_values.resident_id)
    command.add_argument(
        "--national-id", type=cli_values.national_id, help="find the person by national id (HETU)"
    )


def _target(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """(resident id, national id): exactly one of them given."""
    if bool(args.resident_id) == bool(args.national_id):
        raise ConfigError("give a resident ID or --national-id (one of them)")
    return args.resident_id, args.national_id


def cmd_export(project: Any, store: Any, args: argparse.Namespace) -> int:
    """`islandhub resident export`."""
    from islandhub.cli import _emit, _print_json, err
    from islandhub.privacy.access import subject_access, write_export

    rid, hetu = _target(args)
    # Before the export is built and its read audited: a folder it cannot go into is bad input.
    cli_values.writable_folder(args.out.resolve(), given=True)
    export = subject_access(project, store, reader_for(args), resident_id=rid, national_id=hetu)
    if export is None:
        err.print("no such resident")
        return 1
    json_path, html_path = write_export(export, args.out, args.lang)
    summary = {
        "resident_id": export["resident_id"],
        "sources": len(export["sources"]),
        "activities": len(export["activities"]),
        "accesses": len(export["accesses"]),
        "files": [str(json_path), str(html_path)],
    }
    if args.json:
        _print_json(summary)
    else:
        _emit(
            f"subject access export of {export['resident_id']}: {summary['sources']} source "
            f"records, {summary['activities']} activities, {summary['accesses']} accesses\n"
            f"  {json_path}\n  {html_path}\n"
            "(the files hold the national id in full: hand them to the person only)"
        )
    return 0


def cmd_erase(project: Any, store: Any, args: argparse.Namespace) -> int:
    """`islandhub resident erase`: 0 erased (or allowed, dry run), 1 refused or not found."""
    from islandhub.cli import _emit, _print_json, err
    from islandhub.privacy.erasure import erase

    rid, hetu = _target(args)
    report = erase(
        project, store, reader_for(args), resident_id=rid, national_id=hetu, dry_run=args.dry_run
    )
    if args.json:
        _print_json(report.as_dict())
    if report.resident_id is None:
        err.print("no such resident")
        return 1
    if not args.json:
        table = Table("island", "records", "answer", "in the island", "tombstones")
        for island in report.islands:
            if not island.supported:
                answer = "no deletion interface: the owner deletes by hand"
            elif island.allowed:
                answer = "allows"
            else:
                answer = "refuses: " + "; ".join(
                    f"{e['code']}: {e.get('message', {}).get(args.lang, '')}" for e in island.errors
                )
            table.add_row(
                f"{island.system}.{island.stream}",
                str(len(island.source_ids)),
                answer,
                str(island.erased),
                str(island.tombstoned),
            )
        _emit(table)
        if report.refused:
            _emit("refused: nothing was deleted anywhere")
        elif report.dry_run:
            _emit("dry run: every island allows the erasure; run again without --dry-run")
        else:
            deleted = ", ".join(f"{k} {v}" for k, v in report.erased_in_hub.items() if v)
            _emit(f"erased {report.resident_id} (erasure {report.erasure_id}): {deleted}")
    return 1 if report.refused else 0


def cmd_audit(args: argparse.Namespace) -> int:
    """`islandhub audit --resident ID`."""
    from islandhub.cli import _emit, _print_json, _project, _store
    from islandhub.privacy.audit_trail import trail

    project = _project(args)
    rows = trail(_store(project), reader_for(args), args.resident, limit=args.limit)
    if args.json:
        _print_json({"resident_id": args.resident, "entries": rows})
        return 0
    table = Table("at", "actor", "action", "purpose", "detail")
    for row in rows:
        table.add_row(row["at"][:19], row["actor"], row["action"], row["purpose"], row["detail"])
    _emit(table)
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    """`islandhub retention`."""
    from islandhub.cli import _emit, _print_json, _project, _store
    from islandhub.privacy.retention import enforce

    project = _project(args)
    unknown = sorted(set(args.systems) - set(project.systems))
    if unknown:
        raise ConfigError(
            f"unknown system {unknown[0]!r}; configured: {', '.join(sorted(project.systems))}"
        )
    results = enforce(project, _store(project), systems=args.systems, dry_run=args.dry_run)
    if args.json:
        _print_json({"dry_run": args.dry_run, "systems": [r.as_dict() for r in results]})
        return 0
    table = Table("system", "rules (days)", "payloads cleared", "quarantine deleted", "anonymised")
    for r in results:
        rules = ", ".join(f"{k} {v}" for k, v in r.rules.items())
        table.add_row(
            r.system, rules, str(r.payloads_cleared), str(r.quarantine_deleted), str(r.anonymised)
        )
    _emit(table)
    if not results:
        _emit("no system has a retention: block")
    elif args.dry_run:
        _emit("dry run: nothing was changed")
    return 0


def cmd_privacy(args: argparse.Namespace) -> int:
    """`islandhub privacy new-key | rotate-key`."""
    from islandhub.cli import _emit, _print_json, _project, _store, err
    from islandhub.privacy import crypto, rotation
    from islandhub.residents import Reader

    if args.privacy_command == "new-key":
        # Shown once, kept nowhere: the operator stores it as the secret.
        sys.stdout.write(crypto.new_key() + "\n")
        err.print(
            f"a new national-id key: store it as the secret {crypto.KEY_ENV} (Airflow "
            "variable or environment); it is not kept anywhere (docs/privacy.md)",
            markup=False,
        )
        return 0
    project = _project(args)
    after = rotation.new_keyring()
    store = _store(project)  # refuses a store not sealed with the current key
    reader = Reader.from_environment("rotation of the national-id key", actor=args.actor)
    done = rotation.rotate_key(store, reader, after)
    if args.json:
        _print_json({"rows": done.rows, "before": done.before, "after": done.after,
                     "key_file": done.key_file})  # fmt: skip
        return 0
    rows = ", ".join(f"{table} {n}" for table, n in done.rows.items() if n)
    _emit(f"sealed again with the new key (fingerprint {done.after[:12]}...): {rows or 'no rows'}")
    if done.key_file:
        _emit(f"the development key file {done.key_file} now holds the new key")
    else:
        _emit(
            f"now set {crypto.KEY_ENV} to the new key everywhere: until then every process "
            "is refused (the store's fingerprint is the new key's)"
        )
    return 0
