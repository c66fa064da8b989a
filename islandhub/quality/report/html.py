"""Render the report's figures as one self-contained HTML page in one language.

Everything is inline: the style sheet, the trend SVGs, no script, no web font, no CDN, so the
file opens the same offline, attached to an email or on a shared drive. The only links are
relative ones into the Great Expectations Data Docs folder beside it, and the JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from html import escape
from typing import Any

from islandhub.quality.report import fmt
from islandhub.quality.report.messages import field_name, text
from islandhub.quality.report.plots import COLOURS

FIX_FIRST = 20  # rows of "Fix first" in the page (the JSON has every finding)

STYLE = """
:root { --ink:#1b2430; --muted:#5f6b7a; --line:#d8dee6; --bg:#f6f8fa;
  --good:#2e8540; --fair:#b7791f; --poor:#c53030; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;
  color:var(--ink); background:#fff; }
header { padding:24px 32px 12px; border-bottom:4px solid #1f6fb2; background:var(--bg); }
h1 { margin:0 0 4px; font-size:26px; } h2 { margin:28px 0 10px; font-size:19px; }
h3 { margin:0 0 4px; font-size:14px; }
.meta, small, .note { color:var(--muted); }
nav { padding:8px 32px; font-size:13px; border-bottom:1px solid var(--line); }
nav a { margin-right:14px; color:#1f6fb2; text-decoration:none; }
main { padding:0 32px 32px; max-width:1400px; }
.tiles { display:flex; gap:12px; flex-wrap:wrap; margin:8px 0; }
.tile { border:1px solid var(--line); border-radius:6px; padding:10px 14px; min-width:150px; }
.tile b { display:block; font-size:22px; }
.scroll { overflow-x:auto; }
table { border-collapse:collapse; width:100%; margin:6px 0 4px; }
table.scorecard { font-size:13px; }
table.scorecard th, table.scorecard td { padding:5px 6px; }
th, td { border-bottom:1px solid var(--line); padding:6px 8px; text-align:left;
  vertical-align:top; }
thead th { background:var(--bg); font-size:11px; text-transform:uppercase;
  letter-spacing:.02em; color:var(--muted); }
td.num, th.num { text-align:right; white-space:nowrap; }
td.score { text-align:right; font-weight:600; white-space:nowrap; }
td.good { color:var(--good); } td.fair { color:var(--fair); } td.poor { color:var(--poor); }
td.none { color:var(--muted); font-weight:400; }
td.overall { border-left:2px solid var(--line); }
.held { color:var(--poor); font-weight:600; }
.ex { font-family:ui-monospace,Menlo,Consolas,monospace; font-size:12px; color:var(--muted); }
.grid { display:grid; grid-template-columns:repeat(auto-fill,minmax(420px,1fr)); gap:14px; }
figure { margin:0; border:1px solid var(--line); border-radius:6px; padding:8px 10px; }
figure svg { width:100%; height:auto; }
.legend span { margin-right:14px; font-size:12px; }
.legend i { display:inline-block; width:12px; height:3px; margin-right:4px;
  vertical-align:middle; }
dl dt { font-weight:600; margin-top:8px; } dl dd { margin:2px 0 0 0; color:var(--muted); }
@media print { nav { display:none; } figure { break-inside:avoid; } }
"""


def render(
    data: dict[str, Any], lang: str, timezone: str, *, json_name: str, plots: dict[str, str]
) -> str:
    """The whole page; `plots`: each island's trend SVG (plots.trend_svgs)."""
    t = _translator(lang)
    islands = data["islands"]
    sections = [
        _overview(data, t, lang, timezone),
        _scorecard(islands, data["dimensions"], t, lang, timezone),
        _fix_first(data["fix_first"], islands, t, lang),
        _trends(islands, data, plots, t, lang),
        _register(islands, t, lang),
        _quarantine(islands, t, lang),
        _docs(islands, t, lang),
        _method(data["dimensions"], t),
    ]
    nav = "".join(
        f'<a href="#{anchor}">{escape(t(key))}</a>'
        for anchor, key in (
            ("overview", "h_overview"),
            ("scorecard", "h_scorecard"),
            ("fix", "h_fix"),
            ("trends", "h_trends"),
            ("register", "h_register"),
            ("quarantine", "h_quarantine"),
            ("docs", "h_docs"),
            ("method", "h_method"),
        )
    )
    generated = escape(t("generated", at=fmt.when(data["generated_at"], timezone, lang)))
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(t('title'))}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<header><h1>{escape(t('title'))}</h1><p>{escape(t('subtitle'))}</p>"
        f'<p class="meta">{generated} · <a href="{escape(json_name)}">JSON</a></p></header>\n'
        f"<nav>{nav}</nav>\n<main>\n{''.join(sections)}</main>\n</body>\n</html>\n"
    )


def _translator(lang: str) -> Callable[..., str]:
    def t(key: str, **values: Any) -> str:
        return text(key, lang, **values)

    return t


def _title(island: dict[str, Any], lang: str) -> str:
    titles = island.get("title") or {}
    for choice in (lang, "fi", "sv", "en"):
        if titles.get(choice):
            return str(titles[choice])
    return str(island["system"])


def _table(head: Iterable[tuple[str, str]], rows: Iterable[str], css: str = "") -> str:
    cells = "".join(f'<th class="{c}">{escape(h)}</th>' for h, c in head)
    body = "".join(rows)
    table = f'<table class="{css}"><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>'
    return f'<div class="scroll">{table}</div>'


def _section(anchor: str, heading: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{escape(heading)}</h2>{body}</section>\n'


def _two_lines(main: str, small: str, css: str = "") -> str:
    return f"{escape(main)}<br><small{css}>{escape(small)}</small>"


def _capital(words: str) -> str:
    return words[:1].upper() + words[1:]


def _note(message: str) -> str:
    return f'<p class="note">{escape(message)}</p>'


def _examples(items: Iterable[dict[str, Any]]) -> str:
    shown = []
    for item in items:
        value = item.get("value")
        shown.append(f"{item.get('source_id', '')}" + (f" = {value}" if value else ""))
    return f'<span class="ex">{escape("; ".join(shown))}</span>'


# --- sections --------------------------------------------------------------------------------


def _overview(data: dict[str, Any], t: Callable[..., str], lang: str, timezone: str) -> str:
    summary, islands = data["summary"], data["islands"]
    if data["reviewed_at"] is None:
        return _section("overview", t("h_overview"), f"<p>{escape(t('no_review'))}</p>")
    parts = [
        t(
            "summary",
            islands=fmt.number(summary["islands"], lang),
            records=fmt.number(summary["records"], lang),
            quarantined=fmt.number(summary["quarantined"], lang),
            overall=fmt.share(summary["overall"], lang),
        )
    ]
    weakest = summary.get("weakest")
    if weakest:
        island = next(i for i in islands if i["system"] == weakest["system"])
        parts.append(
            t(
                "weakest",
                island=_title(island, lang),
                owner=island["owner"].get("name", "–"),
                dimension=t(weakest["dimension"]).lower(),
                score=fmt.share(weakest["score"], lang),
            )
        )
    if summary["held"]:
        names = ", ".join(_title(i, lang) for i in islands if i["system"] in summary["held"])
        parts.append(t("held_now", islands=names))
    tiles = [
        (t("overall"), fmt.share(summary["overall"], lang)),
        (t("tile_islands"), fmt.number(summary["islands"], lang)),
        (t("col_records"), fmt.number(summary["records"], lang)),
        (t("col_quarantined"), fmt.number(summary["quarantined"], lang)),
    ]
    tile_html = "".join(f'<div class="tile">{escape(k)}<b>{escape(v)}</b></div>' for k, v in tiles)
    reviewed = t("reviewed", at=fmt.when(data["reviewed_at"], timezone, lang))
    paragraphs = "".join(f"<p>{escape(p)}</p>" for p in parts)
    body = f'<div class="tiles">{tile_html}</div>{paragraphs}{_note(reviewed)}'
    return _section("overview", t("h_overview"), body)


def _scorecard(
    islands: list[dict[str, Any]],
    dimensions: list[str],
    t: Callable[..., str],
    lang: str,
    timezone: str,
) -> str:
    head = [(t("col_island"), ""), (t("col_owner"), "")]
    head += [(t(d), "num") for d in (*dimensions, "overall")]
    head += [
        (t("col_change"), "num"),
        (t("col_records"), "num"),
        (t("col_quarantined"), "num"),
        (t("col_last_run"), ""),
    ]
    rows = []
    for island in islands:
        owner, scores = island["owner"], island["scores"]
        cells = "".join(_score_cell(scores.get(d), lang) for d in dimensions)
        cells += _score_cell(scores.get("overall"), lang, True)
        name = _two_lines(_title(island, lang), island["system"])
        contact = _two_lines(owner.get("name", "–"), owner.get("email", ""))
        numbers = "".join(
            f'<td class="num">{escape(value)}</td>'
            for value in (
                fmt.change(island.get("change"), lang),
                fmt.number(island["records"], lang),
                fmt.number(island["quarantined"], lang),
            )
        )
        rows.append(
            f'<tr class="island" data-system="{escape(island["system"])}">'
            f'<th scope="row">{name}</th><td>{contact}</td>{cells}{numbers}'
            f"<td>{_last_run(island.get('last_run'), t, lang, timezone)}</td></tr>"
        )
    return _section("scorecard", t("h_scorecard"), _table(head, rows, "scorecard"))


def _score_cell(value: float | None, lang: str, overall: bool = False) -> str:
    css = f"score {fmt.grade(value)}" + (" overall" if overall else "")
    return f'<td class="{css}">{escape(fmt.share(value, lang))}</td>'


def _last_run(run: dict[str, Any] | None, t: Callable[..., str], lang: str, timezone: str) -> str:
    """When the island's streams were last checked, and whether the gate held them."""
    if run is None:
        return escape(t("never"))
    verdict = t("gate_held") if run["held"] else t("gate_passed")
    css = ' class="held"' if run["held"] else ""
    return _two_lines(fmt.when(run["at"], timezone, lang), verdict, css)


def finding_label(finding: dict[str, Any], lang: str) -> str:
    """What a finding is, in words."""
    kind = finding["kind"]
    field = field_name(str(finding.get("field", "")), lang)
    if kind in ("unlinked", "contacts", "duplicates", "quarantine"):
        return text(f"finding_{kind}", lang)
    if kind == "register":
        return text("finding_register", lang, field=field)
    if kind == "stale":
        return text("finding_stale", lang, missed=finding.get("missed", "?"))
    return text(f"kind_{kind}", lang, field=field)


def _fix_first(
    findings: list[dict[str, Any]], islands: list[dict[str, Any]], t: Callable[..., str], lang: str
) -> str:
    titles = {i["system"]: _title(i, lang) for i in islands}
    head = [
        (t("col_island"), ""),
        (t("col_owner"), ""),
        (t("col_check"), ""),
        (t("col_affected"), "num"),
        ("%", "num"),
        (t("col_examples"), ""),
    ]
    rows = []
    for f in findings[:FIX_FIRST]:
        island = titles.get(f["system"], f["system"])
        where = _two_lines(island, f["stream"]) if f.get("stream") else escape(island)
        rows.append(
            f'<tr class="finding"><td>{where}</td><td>{escape(f["owner"])}</td>'
            f"<td>{escape(_capital(finding_label(f, lang)))}</td>"
            f'<td class="num">{escape(fmt.number(f["affected"], lang))}</td>'
            f'<td class="num">{escape(fmt.share(f.get("share"), lang))}</td>'
            f"<td>{_examples(f.get('examples') or [])}</td></tr>"
        )
    body = _table(head, rows, "fix") if rows else f"<p>{escape(t('no_issues'))}</p>"
    return _section("fix", t("h_fix"), body + _note(t("masking_note")))


def _trends(
    islands: list[dict[str, Any]],
    data: dict[str, Any],
    plots: dict[str, str],
    t: Callable[..., str],
    lang: str,
) -> str:
    dimensions = data["dimensions"]
    legend = "".join(
        f'<span><i style="background:{COLOURS[d]}"></i>{escape(t(d))}</span>' for d in dimensions
    )
    figures = []
    for island in islands:
        svg = plots.get(island["system"], "")
        note = _note(t("one_point")) if len(island["trend"]) == 1 else ""
        figures.append(
            f'<figure data-system="{escape(island["system"])}">'
            f"<h3>{escape(_title(island, lang))}</h3>{svg}{note}</figure>"
        )
    caption = t("trend_caption", days=data["window_days"])
    body = (
        f'<p class="legend">{legend}</p>{_note(caption)}<div class="grid">{"".join(figures)}</div>'
    )
    return _section("trends", t("h_trends"), body)


def _register(islands: list[dict[str, Any]], t: Callable[..., str], lang: str) -> str:
    from islandhub.quality.report.figures import REGISTER_FIELDS

    head = [(t("col_island"), "")] + [(field_name(f, lang), "num") for f in REGISTER_FIELDS]
    rows = []
    for island in islands:
        register = island.get("register") or {}
        if not register:
            continue
        cells = []
        for name in REGISTER_FIELDS:
            entry = register.get(name) or {}
            compared = entry.get("compared") or 0
            value = entry.get("agreed", 0) / compared if compared else None
            cells.append(_score_cell(value, lang))
        rows.append(f"<tr><td>{escape(_title(island, lang))}</td>{''.join(cells)}</tr>")
    return _section("register", t("h_register"), _table(head, rows))


def _quarantine(islands: list[dict[str, Any]], t: Callable[..., str], lang: str) -> str:
    head = [
        (t("col_island"), ""),
        (t("col_stream"), ""),
        (t("col_reason"), ""),
        (t("col_count"), "num"),
        (t("col_examples"), ""),
    ]
    rows = [
        f"<tr><td>{escape(_title(island, lang))}</td><td>{escape(stream['stream'])}</td>"
        f"<td>{escape(reason['reason'])}</td>"
        f'<td class="num">{escape(fmt.number(reason["count"], lang))}</td>'
        f"<td>{_examples({'source_id': e} for e in reason.get('examples', []))}</td></tr>"
        for island in islands
        for stream in island["streams"]
        for reason in stream.get("quarantine") or []
    ]
    body = _table(head, rows) if rows else f"<p>{escape(t('no_quarantine'))}</p>"
    return _section("quarantine", t("h_quarantine"), body + _note(t("reasons_language")))


def _docs(islands: list[dict[str, Any]], t: Callable[..., str], lang: str) -> str:
    items = [
        f'<li><a href="{escape(stream["docs_href"])}">{escape(_title(island, lang))} · '
        f"{escape(stream['stream'])}</a></li>"
        for island in islands
        for stream in island["streams"]
        if stream.get("docs_href")
    ]
    body = f"<p>{escape(t('docs_intro'))}</p><ul>{''.join(items)}</ul>" if items else ""
    return _section("docs", t("h_docs"), body)


def _method(dimensions: list[str], t: Callable[..., str]) -> str:
    items = "".join(
        f"<dt>{escape(t(d))}</dt><dd>{escape(t('method_' + d))}</dd>" for d in dimensions
    )
    return _section("method", t("h_method"), f"<dl>{items}</dl>{_note(t('masking_note'))}")
