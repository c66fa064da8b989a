"""Subject access (GDPR art. 15): everything the hub holds on one person, for that person.

The export holds the golden record, every source record (as the island sent it and as the
hub mapped it), the person's activities in the islands (bookings, cases, signups: streams
configured with `activity:`), the lineage of each golden value, and the dates and purposes
of every access to their data - not the names of the staff who accessed it (CJEU C-579/21).
It is written as JSON and as a readable HTML document in Swedish, Finnish or English.
The national id appears in full: it is the person's own; the files are readable by their
owner only. The store keeps national ids sealed; the export opens every one of them.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from islandhub.config import Project
from islandhub.privacy.at_rest import unseal_tree
from islandhub.residents import (
    Reader,
    audit,
    find_by_national_id,
    follow_redirects,
    merged_family,
)
from islandhub.resolve.golden import expand_lineage
from islandhub.store.bulk import member_of
from islandhub.store.db import Store, as_utc, loads, now
from islandhub.store.tables import (
    audit_log,
    landing,
    lineage,
    links,
    resident_versions,
    residents,
    same_source,
    source_records,
)

LANGUAGES = ("sv", "fi", "en")
LABELS: dict[str, dict[str, str]] = {
    "title": {
        "sv": "Uppgifter om dig i kommunens resident-datahubb",
        "fi": "Sinusta kunnan asukastietokeskuksessa olevat tiedot",
        "en": "Your data in the municipality's resident data hub",
    },
    "generated": {"sv": "Utdraget skapat", "fi": "Ote luotu", "en": "Extract created"},
    "record": {"sv": "Sammanställda uppgifter", "fi": "Kootut tiedot", "en": "Combined record"},
    "field": {"sv": "Uppgift", "fi": "Tieto", "en": "Field"},
    "value": {"sv": "Värde", "fi": "Arvo", "en": "Value"},
    "origin": {"sv": "Källa", "fi": "Lähde", "en": "Source"},
    "sources": {
        "sv": "Uppgifter i kommunens system",
        "fi": "Tiedot kunnan järjestelmissä",
        "en": "Records in the municipality's systems",
    },
    "system": {"sv": "System", "fi": "Järjestelmä", "en": "System"},
    "observed": {"sv": "Hämtad", "fi": "Haettu", "en": "Read"},
    "activities": {"sv": "Aktiviteter", "fi": "Asioinnit", "en": "Activities"},
    "type": {"sv": "Typ", "fi": "Tyyppi", "en": "Type"},
    "date": {"sv": "Datum", "fi": "Päivä", "en": "Date"},
    "what": {"sv": "Vad", "fi": "Mitä", "en": "What"},
    "accesses": {
        "sv": "När och varför dina uppgifter har använts",
        "fi": "Milloin ja miksi tietojasi on käytetty",
        "en": "When and why your data was accessed",
    },
    "purpose": {"sv": "Ändamål", "fi": "Käyttötarkoitus", "en": "Purpose"},
    "action": {"sv": "Åtgärd", "fi": "Toimenpide", "en": "Action"},
    "none": {"sv": "Inga", "fi": "Ei yhtään", "en": "None"},
}
ACTIVITY_TYPES = {
    "booking": {"sv": "Bokning", "fi": "Varaus", "en": "Booking"},
    "case": {"sv": "Ärende", "fi": "Asia", "en": "Case"},
    "signup": {"sv": "Anmälan", "fi": "Ilmoittautuminen", "en": "Signup"},
    "feedback": {"sv": "Respons", "fi": "Palaute", "en": "Feedback"},
    "invoice": {"sv": "Faktura", "fi": "Lasku", "en": "Invoice"},
    "membership": {"sv": "Medlemskap", "fi": "Jäsenyys", "en": "Membership"},
    "other": {"sv": "Annat", "fi": "Muu", "en": "Other"},
}


def subject_access(
    project: Project,
    store: Store,
    reader: Reader,
    *,
    national_id: str | None = None,
    resident_id: str | None = None,
) -> dict[str, Any] | None:
    """Everything the hub holds on one person (unmasked: it is for them), audited."""
    with store.begin() as conn:
        rid = (
            find_by_national_id(conn, national_id)
            if national_id
            else follow_redirects(conn, str(resident_id))
        )
        audit(conn, reader, "export", rid, {"found": rid is not None})
        if rid is None:
            return None
        family = merged_family(conn, rid)
        golden = _golden(conn, rid)
        if golden is None:
            return None  # erased
        sources = _sources(conn, project, family)
        accesses = _accesses(conn, family)
    export = {
        "generated_at": now().isoformat(),
        "resident_id": rid,
        "earlier_ids": family[1:],
        "record": golden["record"],
        "version": golden["version"],
        "lineage": golden["lineage"],
        "sources": sources,
        "activities": [a for s in sources if (a := _activity(project, s))],
        "accesses": accesses,
    }
    return dict(unseal_tree(export))


def write_export(export: dict[str, Any], folder: Path, lang: str) -> tuple[Path, Path]:
    """Write the export as JSON and as an HTML document, readable by the owner only."""
    from islandhub.store.db import dumps

    folder.mkdir(parents=True, exist_ok=True)
    stem = f"subject-access-{export['resident_id']}"
    json_path, html_path = folder / f"{stem}.json", folder / f"{stem}.html"
    _private_write(json_path, dumps(export))
    _private_write(html_path, render_html(export, lang))
    return json_path, html_path


def _private_write(path: Path, text: str) -> None:
    # Created 0600 before a byte is written: personal data never sits world-readable.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def _golden(conn: Connection, rid: str) -> dict[str, Any] | None:
    row = conn.execute(
        sa.select(residents.c.version, resident_versions.c.record, lineage.c.fields)
        .select_from(
            residents.join(
                resident_versions,
                sa.and_(
                    residents.c.resident_id == resident_versions.c.resident_id,
                    residents.c.version == resident_versions.c.version,
                ),
            ).join(
                lineage,
                sa.and_(
                    lineage.c.resident_id == residents.c.resident_id,
                    lineage.c.version == residents.c.version,
                ),
            )
        )
        .where(residents.c.resident_id == rid)
    ).one_or_none()
    if row is None:
        return None
    return {
        "version": row.version,
        "record": loads(row.record),
        "lineage": expand_lineage(loads(row.fields)),
    }


def _sources(conn: Connection, project: Project, family: list[str]) -> list[dict[str, Any]]:
    query = (
        sa.select(
            links.c.system,
            links.c.stream,
            links.c.source_id,
            source_records.c.fields,
            source_records.c.observed_at,
            landing.c.payload,
        )
        .select_from(
            links.join(source_records, same_source(links, source_records)).join(
                landing, same_source(links, landing)
            )
        )
        .where(member_of(conn, links.c.resident_id, family))
        .order_by(links.c.system, links.c.stream, links.c.source_id)
    )
    found = []
    for row in conn.execute(query):
        config = project.systems.get(row.system)
        found.append(
            {
                "system": row.system,
                "system_title": dict(config.title) if config else {},
                "owner": dict(config.owner) if config else {},
                "stream": row.stream,
                "source_id": row.source_id,
                "observed_at": as_utc(row.observed_at).isoformat(),
                "fields": loads(row.fields),
                # Cleared by retention after its period: the mapped fields remain.
                "payload": loads(row.payload) if row.payload else None,
            }
        )
    return found


def _activity(project: Project, source: dict[str, Any]) -> dict[str, Any] | None:
    config = project.systems.get(source["system"])
    stream = config.streams.get(source["stream"]) if config else None
    if stream is None or not stream.activity:
        return None
    # Opened here too: the API's activities read the same stored payloads.
    payload = unseal_tree(source["payload"] or {})
    spec = stream.activity
    return {
        "type": spec["type"],
        "system": source["system"],
        "system_title": source["system_title"],
        "stream": source["stream"],
        "source_id": unseal_tree(source["source_id"]),
        "date": _text(_dig(payload, spec.get("date"))),
        "title": _text(_dig(payload, spec.get("title"))),
    }


def _dig(payload: Any, path: str | None) -> Any:
    if not path:
        return None
    node = payload
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict):  # a translated name: {"fi": ..., "sv": ...}
        return " / ".join(str(v) for v in value.values() if v)
    return str(value)


def _accesses(conn: Connection, family: list[str]) -> list[dict[str, str]]:
    """Dates and purposes of accesses; never who (the staff's identity is not the subject's)."""
    query = (
        sa.select(audit_log.c.at, audit_log.c.action, audit_log.c.purpose)
        .where(member_of(conn, audit_log.c.resident_id, family))
        .order_by(audit_log.c.at, audit_log.c.id)
    )
    return [
        {"at": as_utc(row.at).isoformat(), "action": row.action, "purpose": row.purpose}
        for row in conn.execute(query)
    ]


# --- the readable document -----------------------------------------------------------------


def render_html(export: dict[str, Any], lang: str) -> str:
    """A plain, self-contained HTML document of the export in one language."""

    def label(key: str) -> str:
        return LABELS[key][lang]

    record, lineage_of = export["record"], export["lineage"]
    rows = [
        (name, _display(value), _origin(lineage_of.get(name)))
        for name, value in sorted(record.items())
        if name not in ("resident_id", "identifiers")
    ]
    parts = [
        f"<!doctype html><html lang='{lang}'><head><meta charset='utf-8'>",
        f"<title>{_e(label('title'))}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:60em}"
        "table{border-collapse:collapse;margin-bottom:1.5em;width:100%}"
        "td,th{border:1px solid #bbb;padding:.3em .5em;text-align:left;vertical-align:top}"
        "th{background:#eef}</style></head><body>",
        f"<h1>{_e(label('title'))}</h1>",
        f"<p>{_e(label('generated'))}: {_e(export['generated_at'][:19].replace('T', ' '))}</p>",
        f"<h2>{_e(label('record'))}</h2>",
        _table((label("field"), label("value"), label("origin")), rows),
        f"<h2>{_e(label('activities'))}</h2>",
        _table(
            (label("type"), label("system"), label("date"), label("what")),
            [
                (
                    ACTIVITY_TYPES[a["type"]][lang],
                    _title(a["system_title"], a["system"], lang),
                    a["date"] or "",
                    a["title"] or "",
                )
                for a in export["activities"]
            ],
            label("none"),
        ),
        f"<h2>{_e(label('sources'))}</h2>",
    ]
    for source in export["sources"]:
        title = _title(source["system_title"], source["system"], lang)
        parts.append(
            f"<h3>{_e(title)} ({_e(source['stream'])} {_e(source['source_id'])})</h3>"
            f"<p>{_e(label('observed'))}: {_e(source['observed_at'][:19].replace('T', ' '))}</p>"
        )
        parts.append(
            _table(
                (label("field"), label("value")),
                [
                    (k, _display(v))
                    for k, v in sorted((source["payload"] or source["fields"]).items())
                ],
            )
        )
    parts += [
        f"<h2>{_e(label('accesses'))}</h2>",
        _table(
            (label("date"), label("action"), label("purpose")),
            [
                (a["at"][:19].replace("T", " "), a["action"], a["purpose"])
                for a in export["accesses"]
            ],
            label("none"),
        ),
        "</body></html>",
    ]
    return "\n".join(parts)


def _title(titles: dict[str, str], system: str, lang: str) -> str:
    return titles.get(lang) or titles.get("fi") or system


def _origin(entry: dict[str, str] | None) -> str:
    return f"{entry['system']} ({entry['observed_at'][:10]})" if entry else ""


def _display(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(_display(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_display(v)}" for k, v in value.items() if k != "sources")
    return "" if value is None else str(value)


def _table(head: Iterable[str], rows: list[tuple[Any, ...]], empty: str = "") -> str:
    if not rows and empty:
        return f"<p>{_e(empty)}</p>"
    header = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(str(cell))}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{header}</tr>{body}</table>"


def _e(text: str) -> str:
    return html.escape(text, quote=True)
