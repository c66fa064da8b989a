"""The review after publishing and the report, on a small demo: three languages, offline, masked."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import sqlalchemy as sa

from islandhub.demo.islands import all_islands
from islandhub.quality.report import DOCS_DIR, write_report
from islandhub.quality.report.messages import LANGUAGES, MESSAGES, text
from islandhub.store import open_store
from islandhub.store.tables import dq_results

pytestmark = pytest.mark.slow

SECTIONS = (
    "h_overview",
    "h_scorecard",
    "h_fix",
    "h_trends",
    "h_register",
    "h_quarantine",
    "h_docs",
    "h_method",
)
RAW_HETU = re.compile(r"(?<![0-9A-Za-z])\d{6}[-+A-FU-Y]\d{3}[0-9A-Y](?![0-9A-Za-z])")
SYSTEMS = sorted(cls.system for cls in all_islands())


class Page(HTMLParser):
    """What a test needs of a page: the h2 headings, the scorecard rows, links and sources."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.headings: list[str] = []
        self.islands: list[str] = []
        self.urls: list[str] = []
        self.tags: set[str] = set()
        self.lang: str | None = None
        self._in_h2 = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.tags.add(tag)
        if tag == "html":
            self.lang = values.get("lang")
        if tag == "h2":
            self._in_h2 = True
            self.headings.append("")
        if tag == "tr" and values.get("class") == "island":
            self.islands.append(values["data-system"] or "")
        for name in ("href", "src"):
            if values.get(name):
                self.urls.append(values[name] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data: str) -> None:
        if self._in_h2:
            self.headings[-1] += data


def test_every_message_is_in_all_three_languages():
    for key, entry in MESSAGES.items():
        assert set(entry) == set(LANGUAGES), key
        assert all(entry[lang].strip() for lang in LANGUAGES), key


def test_the_demo_reviews_every_island(small_demo):
    store = open_store(small_demo["store"])
    with store.connect() as conn:
        found = conn.execute(sa.select(dq_results.c.system, dq_results.c.scope)).all()
    scopes = {scope: sorted({s for s, sc in found if sc == scope}) for _, scope in found}
    assert scopes["batch"] == SYSTEMS  # every stream's sync was validated
    assert scopes["island"] == SYSTEMS
    assert scopes["cross"] == SYSTEMS


def test_the_cross_checks_on_the_demo(small_demo):
    figures = json.loads(Path(small_demo["report"]["json"]).read_text(encoding="utf-8"))
    islands = {i["system"]: i for i in figures["islands"]}
    assert islands["population"]["scores"]["consistency"] is None  # the register itself
    for system in ("school", "daycare", "crm", "library"):
        register = islands[system]["register"]
        assert register["family_name"]["compared"] > 0, system
        assert 0.5 < islands[system]["scores"]["consistency"] <= 1.0, system
    assert all(i["scores"]["freshness"] == 1.0 for i in figures["islands"])  # synced just now
    kinds = {f["kind"] for f in figures["fix_first"]}
    assert {"quarantine", "register"} <= kinds
    # Bookings and signups name a person many times: no duplicate check, no uniqueness score.
    assert islands["booking"]["scores"]["uniqueness"] is None
    assert islands["library"]["scores"]["uniqueness"] is not None


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_report_in_each_language(small_demo, lang):
    html_path = Path(small_demo["report"]["html"][lang])
    html = html_path.read_text(encoding="utf-8")
    page = Page(html)
    assert page.lang == lang
    assert page.headings == [text(key, lang) for key in SECTIONS]
    assert sorted(page.islands) == SYSTEMS
    assert text("title", lang) in html and text("completeness", lang) in html
    # Offline: nothing is fetched, no script runs; links stay beside the report.
    assert "script" not in page.tags and "link" not in page.tags and "img" not in page.tags
    # (Namespace names are no addresses; url(#id) is a clip path within the SVG itself.)
    fetched = re.sub(r'xmlns(:\w+)?="[^"]*"', "", html)
    assert not re.search(r"url\((?!#)|@import|https?://|//cdn", fetched)
    assert all(not re.match(r"[a-z]+:", url) for url in page.urls), page.urls
    for url in page.urls:
        if not url.startswith("#"):
            assert (html_path.parent / url).is_file(), url
    assert sum(1 for u in page.urls if u.startswith(f"{DOCS_DIR}/")) >= len(SYSTEMS)
    assert html.count("<svg") == len(SYSTEMS)  # a trend plot per island, inline
    assert not RAW_HETU.search(html)


def test_the_figures_as_json(small_demo):
    path = Path(small_demo["report"]["json"])
    data = json.loads(path.read_text(encoding="utf-8"))
    assert [i["system"] for i in data["islands"]] == SYSTEMS
    for island in data["islands"]:
        assert set(island["scores"]) == {*data["dimensions"], "overall"}
        assert island["owner"]["name"] and island["title"]
        assert len(island["trend"]) == 1
        assert island["last_run"] and island["last_run"]["held"] is False
    assert data["summary"]["islands"] == len(SYSTEMS)
    assert not RAW_HETU.search(path.read_text(encoding="utf-8"))
    docs = path.parent / DOCS_DIR
    assert not any(RAW_HETU.search(p.read_text(encoding="utf-8")) for p in docs.rglob("*.html"))


def test_a_report_of_one_language_elsewhere(small_demo, tmp_path):
    from islandhub.config import load_project
    from tests.quality.conftest import REPO

    project = load_project(REPO)
    written = write_report(project, open_store(small_demo["store"]), tmp_path, ["sv"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "quality-report.json",
        "quality-report.sv.html",
    ]
    assert written.docs is None  # no Data Docs here: the page links none
    assert f'href="{DOCS_DIR}/' not in (tmp_path / "quality-report.sv.html").read_text()
