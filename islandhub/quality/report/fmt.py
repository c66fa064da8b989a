"""Numbers, shares and times the way each language writes them (22 600 / 22,600; 95,7 %)."""

from __future__ import annotations

import zoneinfo
from datetime import datetime

_NBSP = "\u00a0"
_THIN = "\u202f"  # the narrow no-break space Finnish and Swedish group digits with


def number(value: int | float | None, lang: str) -> str:
    """A count: 22 600 in sv and fi, 22,600 in en."""
    if value is None:
        return "–"
    text = f"{int(value):,}"
    return text if lang == "en" else text.replace(",", _THIN)


def share(value: float | None, lang: str, decimals: int = 1) -> str:
    """A share as a percentage: 95,7 % in sv and fi, 95.7 % in en; None as a dash."""
    if value is None:
        return "–"
    text = f"{value * 100:.{decimals}f}"
    return (text if lang == "en" else text.replace(".", ",")) + _NBSP + "%"


def change(value: float | None, lang: str) -> str:
    """A change in percentage points, with its direction: ▲ +1,2 / ▼ −0,4 / ▶ 0,0."""
    if value is None:
        return "–"
    points = value * 100
    arrow = "▲" if points >= 0.05 else "▼" if points <= -0.05 else "▶"
    text = f"{abs(points):.1f}"
    text = text if lang == "en" else text.replace(".", ",")
    sign = "+" if points >= 0.05 else "−" if points <= -0.05 else ""
    return f"{arrow}{_NBSP}{sign}{text}{_NBSP}pp"


def when(value: str | datetime | None, timezone: str, lang: str) -> str:
    """A time in the hub's zone: 27.11.2026 14.05 (fi), 27.11.2026 14:05 (sv, en)."""
    if value is None:
        return "–"
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    local = at.astimezone(zoneinfo.ZoneInfo(timezone))
    clock = local.strftime("%H.%M") if lang == "fi" else local.strftime("%H:%M")
    return f"{local.day}.{local.month}.{local.year} {clock}"


def grade(value: float | None) -> str:
    """The CSS class of a score: good from 95 %, fair from 85 %, else poor."""
    if value is None:
        return "none"
    return "good" if value >= 0.95 else "fair" if value >= 0.85 else "poor"
