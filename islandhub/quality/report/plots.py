"""Trend plots: a small static SVG per island, its five scores over the reviews.

matplotlib's object API (Figure, no pyplot state) on the Agg backend, written as SVG with
text left as text: the SVG is inlined in the HTML, so it needs no file, font or script.
Each plot gets its own hash salt, because the ids matplotlib writes (clip paths) must not
repeat between the SVGs of one page.
"""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display, no GUI toolkit: the report is written by servers

from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

COLOURS = {
    "completeness": "#1f6fb2",
    "validity": "#2e8540",
    "uniqueness": "#8a4fbf",
    "consistency": "#d9822b",
    "freshness": "#5f6b7a",
}
MIN_SPAN = timedelta(days=4)
MARKED = 31  # series up to this long get a marker per review
_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.S)
# matplotlib describes each SVG in RDF (format, creator): nothing a reader sees, and it
# names vocabularies by URL, which an offline page had better not carry.
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.S)


def trend_svgs(islands: list[dict[str, Any]], dimensions: list[str]) -> dict[str, str]:
    """Each island's trend as an inline <svg> element, by system (languages share them)."""
    plotter = _Plotter()
    return {i["system"]: plotter.svg(i["system"], i["trend"], dimensions) for i in islands}


class _Plotter:
    """One figure drawn again for each island: building a figure costs more than drawing."""

    def __init__(self) -> None:
        self.figure = Figure(figsize=(4.2, 1.9), dpi=96)
        self.axes = self.figure.add_axes((0.11, 0.17, 0.86, 0.78))
        self.axes.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        locator = AutoDateLocator(minticks=2, maxticks=6)
        self.axes.xaxis.set_major_locator(locator)
        self.axes.xaxis.set_major_formatter(ConciseDateFormatter(locator, show_offset=False))
        self.axes.tick_params(labelsize=7, length=2)
        self.axes.grid(axis="y", linewidth=0.4, alpha=0.5)
        for side in ("top", "right"):
            self.axes.spines[side].set_visible(False)

    def svg(self, system: str, points: list[dict[str, Any]], dimensions: list[str]) -> str:
        """The island's trend (empty string without points)."""
        if not points:
            return ""
        axes = self.axes
        for line in list(axes.lines):
            line.remove()
        times = [datetime.fromisoformat(p["at"]) for p in points]
        for dimension in dimensions:
            pairs = [(t, p[dimension]) for t, p in zip(times, points, strict=True)
                     if p.get(dimension) is not None]  # fmt: skip
            if pairs:
                xs, ys = zip(*pairs, strict=True)
                # Markers tell single reviews apart; on a long series they only cost ink.
                marker = "o" if len(pairs) <= MARKED else ""
                axes.plot(xs, ys, "-" if len(pairs) > 1 else "", marker=marker or "o",
                          markersize=3 if marker else 0, linewidth=1.5,
                          color=COLOURS[dimension])  # fmt: skip
        axes.set_ylim(min(0.5, _lowest(points, dimensions)) - 0.02, 1.02)
        if times[-1] - times[0] < MIN_SPAN:  # one review, or a few within hours: show days
            middle = times[0] + (times[-1] - times[0]) / 2
            axes.set_xlim(date2num(middle - MIN_SPAN / 2), date2num(middle + MIN_SPAN / 2))
        else:
            axes.set_xlim(date2num(times[0]), date2num(times[-1]))
        buffer = io.StringIO()
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"trend-{system}"}):
            self.figure.savefig(buffer, format="svg", metadata={"Date": None})
        return _METADATA.sub("", _PROLOGUE.sub("", buffer.getvalue(), count=1), count=1)


def _lowest(points: list[dict[str, Any]], dimensions: list[str]) -> float:
    values = [p[d] for p in points for d in dimensions if p.get(d) is not None]
    return min(values, default=1.0)
