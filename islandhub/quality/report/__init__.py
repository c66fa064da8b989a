"""The data-quality report: one offline HTML page per language, and its figures as JSON.

    <out>/quality-report.sv.html   (and .fi, .en: one per language asked for)
    <out>/quality-report.json      the same figures, language-neutral
    <out>/data-docs/               Great Expectations Data Docs of the latest review

`write_report` renders what dq_results holds (no Great Expectations needed);
`review_and_report` first reviews every island (quality/review.py), which also builds the
Data Docs, then writes the report. `islandhub report`, the demo and the daily
`islandhub__report` DAG call the latter.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from islandhub.config import Project
from islandhub.errors import ConfigError
from islandhub.privacy.masking import mask_text
from islandhub.quality.report.messages import LANGUAGES
from islandhub.store.db import Store

DOCS_DIR = "data-docs"
JSON_NAME = "quality-report.json"


@dataclass
class Written:
    """The files a report run wrote, and how long it took."""

    folder: Path
    html: dict[str, Path] = field(default_factory=dict)  # language -> page
    json: Path | None = None
    docs: Path | None = None
    seconds: float = 0.0
    review_seconds: float = 0.0


def html_name(lang: str) -> str:
    """The page of one language: quality-report.<lang>.html."""
    return f"quality-report.{lang}.html"


def write_report(
    project: Project,
    store: Store,
    out: Path,
    langs: Sequence[str] = LANGUAGES,
    *,
    at: datetime | None = None,
) -> Written:
    """Write the report of what dq_results holds into `out`."""
    from islandhub.quality.report.figures import figures
    from islandhub.quality.report.html import render
    from islandhub.quality.report.plots import trend_svgs

    unknown = [lang for lang in langs if lang not in LANGUAGES]
    if unknown:
        raise ConfigError(f"unknown language {unknown[0]!r}; languages: {', '.join(LANGUAGES)}")
    begun = time.perf_counter()
    data = figures(project, store, at=at)
    _link_docs(data, out)
    out.mkdir(parents=True, exist_ok=True)
    written = Written(out)
    written.json = out / JSON_NAME
    # Masked once more on the way out: the figures hold masked examples already.
    document = json.dumps(data, ensure_ascii=False, indent=1, default=str)
    written.json.write_text(mask_text(document) + "\n", encoding="utf-8")
    plots = trend_svgs(data["islands"], data["dimensions"])
    for lang in langs:
        timezone = project.hub.timezone
        page = render(data, lang, timezone, json_name=JSON_NAME, plots=plots)
        path = out / html_name(lang)
        path.write_text(mask_text(page), encoding="utf-8")
        written.html[lang] = path
    docs = out / DOCS_DIR / "index.html"
    written.docs = docs if docs.is_file() else None
    written.seconds = time.perf_counter() - begun
    return written


def review_and_report(
    project: Project, store: Store, out: Path, langs: Sequence[str] = LANGUAGES
) -> Written:
    """Review every island now (Data Docs into `out`/data-docs), then write the report."""
    from islandhub.quality.review import run_review

    review = run_review(project, store, docs=out / DOCS_DIR)
    written = write_report(project, store, out, langs)
    written.review_seconds = review.seconds
    return written


def _link_docs(data: dict[str, object], out: Path) -> None:
    """Give each stream a relative link to its Data Docs page when that page is there."""
    for island in data["islands"]:  # type: ignore[attr-defined]
        for stream in island["streams"]:
            page = stream.get("docs")
            found = page and (out / DOCS_DIR / page).is_file()
            stream["docs_href"] = f"{DOCS_DIR}/{page}" if found else None
