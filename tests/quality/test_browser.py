"""The report of a small demo in a real browser: headless Chromium renders it, offline."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from islandhub.demo.islands import all_islands
from islandhub.quality.report.messages import text
from tests.quality.test_report import SECTIONS, Page

pytestmark = pytest.mark.slow
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking")


def browse(chromium: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(chromium), *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


@pytest.mark.parametrize("lang", ["en", "fi"])
def test_chromium_renders_the_headings_and_a_scorecard_row_per_island(
    small_demo, chromium, tmp_path, lang
):
    page = Path(small_demo["report"]["html"][lang]).as_uri()
    dom = browse(chromium, tmp_path / "profile", "--dump-dom", page)
    assert dom.returncode == 0, dom.stderr[-2000:]
    rendered = Page(dom.stdout)
    assert rendered.headings == [text(key, lang) for key in SECTIONS]
    assert sorted(rendered.islands) == sorted(cls.system for cls in all_islands())
    assert dom.stdout.count("<svg") == len(rendered.islands)

    shot = tmp_path / f"report-{lang}.png"
    taken = browse(
        chromium, tmp_path / "profile", "--hide-scrollbars", "--window-size=1400,2400",
        f"--screenshot={shot}", page,
    )  # fmt: skip
    assert taken.returncode == 0, taken.stderr[-2000:]
    image = shot.read_bytes()
    assert image[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(image[16:20], "big"), int.from_bytes(image[20:24], "big")
    assert (width, height) == (1400, 2400)
    assert len(image) > 50_000  # a rendered page, not a blank one
