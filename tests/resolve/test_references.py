"""Known cross-system ids, end to end on SQLite and PostgreSQL: landed, published, erased.

A small project of two file islands: the resident portal (`portal.contacts`) and water
billing (`billing.customers`), whose customers may carry the portal's customer number
(`references: {portal.contacts: ...}`). Publishing links a record to the resident of the
record it names, whichever island is synced first; never across two national ids.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import sqlalchemy as sa

from islandhub.config import Project, load_project
from islandhub.pipeline import StreamResult, remap_stream, sync
from islandhub.privacy.erasure import erase
from islandhub.privacy.masking import mask_hetu
from islandhub.residents import Reader
from islandhub.resolve.references import must_links
from islandhub.store import Store, open_store
from islandhub.store.tables import links, record_references, residents, resolution_queue
from tests.helpers import hetu

ANNA = hetu(12, 3, 1978, 234)
OTTO = hetu(5, 6, 1961, 418)
SYSTEM = """system: {system}
connector: files
connection: {{path: samples/{system}}}
streams:
  {stream}: {{files: "*.jsonl", format: jsonl, mapping: mappings/{system}/{stream}.yaml}}
"""
PORTAL_MAPPING = """source: portal.contacts
entity: resident
id: id
fields:
  national_id: {from: hetu, use: [strip, hetu]}
  given_name:  {from: first}
  family_name: {from: last}
  email:       {from: email, use: [email]}
"""
BILLING_MAPPING = """source: billing.customers
entity: resident
id: number
fields:
  national_id: {from: hetu, use: [strip, hetu]}
  given_name:  {from: name, use: [{name: given}]}
  family_name: {from: name, use: [{name: family}]}
references:
  portal.contacts: {from: portal_no, use: [strip]}
"""
CONTACT = {"id": "c-7", "first": "Anna", "last": "Laine", "email": "anna.laine@example.fi"}
# The bill payer's name differs from the profile's (a married name, a typo): only the
# portal's customer number says they are one person.
CUSTOMER = {"number": 100123, "name": "Virtanen Annika", "portal_no": " c-7 "}
LOG = "islandhub.resolve.publish"


def write(root: Path, system: str, records: list[dict]) -> None:
    """The island's export: one JSON Lines file, replaced."""
    folder = root / "samples" / system
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.jsonl"):
        old.unlink()
    text = "".join(json.dumps(r) + "\n" for r in records)
    (folder / "export_1.jsonl").write_text(text, encoding="utf-8")


def make_project(root: Path, contacts: list[dict], customers: list[dict]) -> Path:
    (root / "config" / "systems").mkdir(parents=True)
    (root / "config" / "hub.yaml").write_text("survivorship: {priority: [portal, billing]}\n")
    for system, stream, mapping in (
        ("portal", "contacts", PORTAL_MAPPING),
        ("billing", "customers", BILLING_MAPPING),
    ):
        text = SYSTEM.format(system=system, stream=stream)
        (root / "config" / "systems" / f"{system}.yaml").write_text(text)
        (root / "mappings" / system).mkdir(parents=True)
        (root / "mappings" / system / f"{stream}.yaml").write_text(mapping)
    write(root, "portal", contacts)
    write(root, "billing", customers)
    return root


@pytest.fixture
def hub(tmp_path, store_url, monkeypatch):
    """(make(contacts, customers) -> Project, the store), on each backend."""
    monkeypatch.setenv("ISLANDHUB_STORE_URL", store_url)
    opened: list[Store] = []

    def make(contacts: list[dict], customers: list[dict]) -> tuple[Project, Store]:
        project = load_project(make_project(tmp_path / "project", contacts, customers))
        opened.append(open_store(project.hub.store_url))
        return project, opened[-1]

    yield make
    for store in opened:
        store.dispose()


def run(project: Project, store: Store, *systems: str) -> list[StreamResult]:
    results = sync(project, store, list(systems))
    assert all(r.status == "succeeded" for r in results), results
    return results


def link_of(store: Store, system: str, source_id: str) -> tuple[str, str]:
    with store.connect() as conn:
        row = conn.execute(
            sa.select(links.c.resident_id, links.c.rule).where(
                links.c.system == system, links.c.source_id == source_id
            )
        ).one()
    return row.resident_id, row.rule


def stored_references(store: Store) -> list[tuple[str, ...]]:
    with store.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(record_references))]


def active_residents(store: Store) -> int:
    with store.connect() as conn:
        query = sa.select(sa.func.count()).where(residents.c.active.is_(True))
        return int(conn.execute(query.select_from(residents)).scalar_one())


# --- publishing, in both orders -----------------------------------------------------------------


def test_a_record_that_refers_to_a_linked_record_joins_its_resident(hub):
    project, store = hub([CONTACT], [CUSTOMER])
    run(project, store, "portal")
    run(project, store, "billing")
    portal, rule = link_of(store, "portal", "c-7")
    assert rule == "new"
    assert link_of(store, "billing", "100123") == (portal, "reference")
    assert active_residents(store) == 1
    # Landed with the record: the id as text, stripped by the mapping's transform.
    assert stored_references(store) == [
        ("billing", "customers", "100123", "portal", "contacts", "c-7")
    ]


def test_a_record_published_after_the_records_that_refer_to_it_joins_their_resident(hub):
    project, store = hub([CONTACT], [CUSTOMER])
    run(project, store, "billing")
    billing, rule = link_of(store, "billing", "100123")
    assert rule == "new"  # the profile it names is not in the hub yet
    run(project, store, "portal")
    assert link_of(store, "portal", "c-7") == (billing, "reference")
    assert active_residents(store) == 1


def test_a_record_without_a_reference_founds_its_own_resident(hub):
    project, store = hub([CONTACT], [{**CUSTOMER, "portal_no": None}])
    run(project, store, "portal", "billing")
    assert link_of(store, "billing", "100123")[0] != link_of(store, "portal", "c-7")[0]
    assert stored_references(store) == []


def test_the_national_id_rule_comes_first(hub):
    # The bill payer's national id is already the portal profile's: rule national_id.
    project, store = hub([{**CONTACT, "hetu": ANNA}], [{**CUSTOMER, "hetu": ANNA}])
    run(project, store, "portal", "billing")
    assert link_of(store, "billing", "100123") == (
        link_of(store, "portal", "c-7")[0],
        "national_id",
    )


@pytest.mark.parametrize("first", ["portal", "billing"])
def test_a_reference_never_joins_two_national_ids(hub, first, caplog):
    project, store = hub([{**CONTACT, "hetu": ANNA}], [{**CUSTOMER, "hetu": OTTO}])
    caplog.set_level(logging.WARNING, logger=LOG)
    run(project, store, first)
    run(project, store, "billing" if first == "portal" else "portal")
    assert link_of(store, "billing", "100123")[0] != link_of(store, "portal", "c-7")[0]
    assert link_of(store, "billing", "100123")[1] == "national_id"
    assert link_of(store, "portal", "c-7")[1] == "national_id"
    [warning] = [r.getMessage() for r in caplog.records if r.name == LOG]
    assert "not linked" in warning
    assert mask_hetu(ANNA) in warning and mask_hetu(OTTO) in warning
    assert ANNA not in warning and OTTO not in warning


def test_references_are_replaced_when_a_record_changes(hub):
    project, store = hub([CONTACT, {**CONTACT, "id": "c-8"}], [CUSTOMER])
    run(project, store, "portal", "billing")
    write(project.root, "billing", [{**CUSTOMER, "portal_no": "c-8", "name": "Virtanen Anni"}])
    run(project, store, "billing")
    assert stored_references(store) == [
        ("billing", "customers", "100123", "portal", "contacts", "c-8")
    ]
    write(project.root, "billing", [{**CUSTOMER, "portal_no": "", "name": "Virtanen Ann"}])
    run(project, store, "billing")
    assert stored_references(store) == []  # a missing value is no reference


def test_a_reference_the_mapping_rejects_is_dropped_with_a_warning(hub):
    mapping = BILLING_MAPPING.replace("use: [strip]}", "use: [strip, {regex: '^c-[0-9]+$'}]}")
    project, store = hub([CONTACT], [{**CUSTOMER, "portal_no": "n/a"}])
    (project.root / "mappings" / "billing" / "customers.yaml").write_text(mapping)
    project = load_project(project.root)
    [result] = run(project, store, "billing")
    assert (result.mapped, result.quarantined) == (1, 0)  # never quarantined for it
    assert stored_references(store) == []
    with store.connect() as conn:
        warnings = conn.execute(sa.text("SELECT warnings FROM source_records")).scalar_one()
    assert json.loads(warnings) == [
        "references.portal.contacts (from portal_no): does not match the expected pattern: 'n/a'"
    ]


def test_must_links_name_both_records_once_both_are_linked(hub):
    project, store = hub([CONTACT], [CUSTOMER])
    run(project, store, "billing")
    with store.connect() as conn:
        assert must_links(conn) == []  # the profile is not in the hub yet
    run(project, store, "portal")
    with store.connect() as conn:
        assert must_links(conn) == [
            frozenset({("billing", "customers", "100123"), ("portal", "contacts", "c-7")})
        ]


def test_a_remap_lands_a_new_references_section_and_queues_the_records(hub):
    without = BILLING_MAPPING.split("references:")[0]
    project, store = hub([CONTACT], [CUSTOMER])
    (project.root / "mappings" / "billing" / "customers.yaml").write_text(without)
    project = load_project(project.root)
    run(project, store, "portal", "billing")
    assert stored_references(store) == []
    (project.root / "mappings" / "billing" / "customers.yaml").write_text(BILLING_MAPPING)
    project = load_project(project.root)
    with store.begin() as conn:
        conn.execute(resolution_queue.delete())  # as after a resolution pass
    billing = project.systems["billing"]
    result = remap_stream(project, store, billing, billing.streams["customers"])
    assert (result.mapped, result.published) == (1, 1)  # the same fields, a new reference
    assert stored_references(store) == [
        ("billing", "customers", "100123", "portal", "contacts", "c-7")
    ]
    # Published again, it keeps its resident; the resolution pass it is queued for joins it.
    assert link_of(store, "billing", "100123")[1] == "kept"
    with store.connect() as conn:
        queued = conn.execute(sa.select(resolution_queue.c.source_id)).scalars().all()
        assert must_links(conn) == [
            frozenset({("billing", "customers", "100123"), ("portal", "contacts", "c-7")})
        ]
    assert queued == ["100123"]
    again = remap_stream(project, store, billing, billing.streams["customers"])
    assert again.mapped == 0  # nothing changed the second time


# --- erasure ----------------------------------------------------------------------------------


def test_erasure_removes_the_references_the_person_s_records_held(hub):
    project, store = hub([CONTACT], [{**CUSTOMER, "hetu": ANNA}])
    run(project, store, "portal", "billing")
    assert stored_references(store) != []
    report = erase(project, store, Reader("registry", "erasure request"), national_id=ANNA,
                   dry_run=False)  # fmt: skip
    assert report.done and report.erased_in_hub["record_references"] == 1
    assert stored_references(store) == []
