"""`islandhub report [--out DIR] [--lang sv|fi|en]`: review every island, write the report.

Kept apart from cli.py (which wires it in), like the other command groups. The report is
one self-contained HTML page per language, the same figures as JSON and Great
Expectations Data Docs beside them; see docs/quality.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from islandhub import cli_values

LANGS = ("sv", "fi", "en")


def add_commands(commands: Any) -> None:
    """`report`."""
    report = commands.add_parser(
        "report",
        help="review every island and write the data-quality report (HTML, JSON, Data Docs)",
    )
    report.add_argument(
        "--out", type=Path, help="folder for the report (default: var/reports in the project)"
    )
    report.add_argument(
        "--lang", choices=LANGS, help="write only this language (default: sv, fi and en)"
    )


def cmd_report(project: Any, store: Any, args: argparse.Namespace) -> list[str]:
    """`islandhub report`: returns the lines to print (the files written)."""
    from islandhub.quality.report import review_and_report

    folder = (args.out or project.root / "var" / "reports").resolve()
    cli_values.writable_folder(folder, given=args.out is not None)
    langs = [args.lang] if args.lang else list(LANGS)
    written = review_and_report(project, store, folder, langs)
    lines = [f"report ({lang}): {path}" for lang, path in written.html.items()]
    lines.append(f"figures (JSON): {written.json}")
    if written.docs is not None:
        lines.append(f"Great Expectations Data Docs: {written.docs}")
    lines.append(f"reviewed in {written.review_seconds:.1f} s, written in {written.seconds:.1f} s")
    return lines
