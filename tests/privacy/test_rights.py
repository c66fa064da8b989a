"""Residents' rights on the sample file islands, on SQLite and PostgreSQL: subject access,
erasure with tombstones, the audit trail, purposes, --reveal and retention."""

from __future__ import annotations

import json
import os
import stat
from datetime import timedelta

import pytest
import sqlalchemy as sa

from connectors.base import Batch, CheckResult, Connector
from islandhub.cli import main
from islandhub.pipeline import sync, sync_stream
from islandhub.privacy.access import render_html, subject_access, write_export
from islandhub.privacy.audit_trail import trail
from islandhub.privacy.erasure import erase
from islandhub.privacy.retention import enforce
from islandhub.residents import Reader, show
from islandhub.store.db import now
from islandhub.store.tables import (
    audit_log,
    landing,
    links,
    quarantine,
    resident_versions,
    residents,
    source_records,
    tombstones,
)
from tests.helpers import assert_counts_add_up, load, run_all

ELSA = "230612A457H"  # in the register and at school
STAFF = Reader("clerk.anna", "answering a subject access request")


def _count(store, table, *where):
    with store.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).select_from(table).where(*where)
        ).scalar_one()


def test_subject_access_holds_everything_and_only_dates_and_purposes_of_accesses(
    sample_project, store_url, monkeypatch, tmp_path
):
    project, store = load(sample_project, store_url, monkeypatch)
    run_all(project, store)
    show(store, Reader("clerk.bo", "checking an address change"), national_id=ELSA)
    export = subject_access(project, store, STAFF, national_id=ELSA)
    assert export["record"]["national_id"] == ELSA  # the person's own id, in full
    assert sorted(s["system"] for s in export["sources"]) == ["population", "school"]
    register = next(s for s in export["sources"] if s["system"] == "population")
    assert register["payload"]["henkilotunnus"] == ELSA  # as the island sent it
    assert register["fields"]["given_name"] == "Elsa"  # as the hub mapped it
    assert register["system_title"]["sv"] == "Befolkningsregisterutdrag"
    assert export["lineage"]["given_name"]["system"] == "population"
    purposes = [a["purpose"] for a in export["accesses"]]
    assert purposes == ["checking an address change", "answering a subject access request"]
    assert all(set(a) == {"at", "action", "purpose"} for a in export["accesses"])  # no staff
    json_path, html_path = write_export(export, tmp_path / "out", "sv")
    for path in (json_path, html_path):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert json.loads(json_path.read_text())["resident_id"] == export["resident_id"]
    page = html_path.read_text()
    assert "Uppgifter om dig" in page and "checking an address change" in page
    assert "clerk.bo" not in page and "clerk.bo" not in json_path.read_text()
    assert "Sinusta kunnan" in render_html(export, "fi")
    assert "When and why your data was accessed" in render_html(export, "en")


def test_erasure_in_file_islands_leaves_tombstones_that_keep_the_person_out(
    sample_project, store_url, monkeypatch
):
    project, store = load(sample_project, store_url, monkeypatch)
    run_all(project, store)
    rid = show(store, STAFF, national_id=ELSA)["resident_id"]
    dry = erase(project, store, STAFF, national_id=ELSA, dry_run=True)
    assert not dry.refused and not dry.done
    assert [(i.system, i.supported) for i in dry.islands] == [
        ("population", False),
        ("school", False),
    ]
    assert _count(store, links, links.c.resident_id == rid) == 2  # a dry run deletes nothing
    report = erase(project, store, STAFF, national_id=ELSA, dry_run=False)
    assert report.done and report.erased_in_hub["tombstones"] == 2
    assert show(store, STAFF, national_id=ELSA) is None
    assert show(store, STAFF, resident_id=rid) is None
    assert _count(store, links, links.c.resident_id == rid) == 0
    assert _count(store, resident_versions, resident_versions.c.resident_id == rid) == 0
    for table in (landing, source_records):
        assert _count(store, table, table.c.source_id == ELSA) == 0  # the register's id is it
    # The islands still hold her: a full re-sync must not bring her back; counts add up.
    results = run_all(project, store, full_refresh=True)
    assert_counts_add_up(results)
    assert all(r.status == "succeeded" for r in results)
    assert show(store, STAFF, national_id=ELSA) is None
    assert _count(store, tombstones) == 2
    with store.connect() as conn:
        actions = [r.action for r in conn.execute(sa.select(audit_log.c.action))]
    assert "erase-dry-run" in actions and "erase" in actions


class DeletingSchool(Connector):
    """The school island, now reporting the pupil deleted (as an island with deletes would)."""

    kind = "scripted"

    def __init__(self, deleted):
        super().__init__("school", {}, {})
        self.deleted = deleted

    def check(self):
        return CheckResult(True, "scripted")

    def pull(self, stream, state):
        yield Batch([], {"deleted": True}, deleted=self.deleted)


def test_a_tombstone_goes_when_the_island_deletes_the_record(
    sample_project, store_url, monkeypatch
):
    project, store = load(sample_project, store_url, monkeypatch)
    run_all(project, store)
    report = erase(project, store, STAFF, national_id=ELSA, dry_run=False)
    school = next(i for i in report.islands if i.system == "school")
    system = project.systems["school"]
    sync_stream(project, store, DeletingSchool(school.source_ids), system, system.streams["pupils"])
    assert _count(store, tombstones, tombstones.c.system == "school") == 0
    assert _count(store, tombstones, tombstones.c.system == "population") == 1


def test_audit_trail_names_who_read_and_is_itself_audited(sample_project, store_url, monkeypatch):
    project, store = load(sample_project, store_url, monkeypatch)
    run_all(project, store)
    rid = show(store, Reader("clerk.bo", "address change"), national_id=ELSA)["resident_id"]
    rows = trail(store, Reader("dpo.eva", "supervision of use"), rid)
    assert [(r["actor"], r["action"], r["purpose"]) for r in rows] == [
        ("clerk.bo", "read", "address change")
    ]
    again = trail(store, Reader("dpo.eva", "supervision of use"), rid)
    assert again[0]["actor"] == "dpo.eva" and again[0]["action"] == "audit-read"


@pytest.mark.reveals_national_ids
def test_cli_reads_need_a_purpose_and_reveal_is_audited(sample_project, capsys, monkeypatch):
    monkeypatch.delenv("ISLANDHUB_PURPOSE", raising=False)
    monkeypatch.delenv("ISLANDHUB_STORE_URL", raising=False)
    root = ["--project", str(sample_project)]
    assert main([*root, "sync", "--all"]) == 0
    capsys.readouterr()
    code = main([*root, "resident", "show", "--national-id", ELSA])
    assert code == 2
    assert "--purpose" in capsys.readouterr().err
    assert main([*root, "resident", "show", "--national-id", ELSA, "--purpose", "call"]) == 0
    shown = capsys.readouterr().out
    assert ELSA not in shown and "230612A***H" in shown
    assert (
        main(
            [*root, "resident", "show", "--national-id", ELSA, "--reveal", "--purpose", "id check"]
        )
        == 0
    )
    assert ELSA in capsys.readouterr().out
    monkeypatch.setenv("ISLANDHUB_PURPOSE", "reviewing access")
    rid = json.loads(_out(capsys, main, [*root, "resident", "list", "--json"]))["residents"][0][
        "resident_id"
    ]
    assert rid
    for found in json.loads(_out(capsys, main, [*root, "resident", "list", "--json"]))["residents"]:
        entries = json.loads(
            _out(capsys, main, [*root, "audit", "--resident", found["resident_id"], "--json"])
        )["entries"]
        if any(e["action"] == "reveal" for e in entries):
            reveal = next(e for e in entries if e["action"] == "reveal")
            assert reveal["purpose"] == "id check"
            break
    else:
        pytest.fail("the reveal was not audited")


def _out(capsys, run, argv):
    assert run(argv) == 0
    return capsys.readouterr().out


def test_cli_export_and_erase(sample_project, capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("ISLANDHUB_STORE_URL", raising=False)
    monkeypatch.setenv("ISLANDHUB_PURPOSE", "subject access request 2026/17")
    root = ["--project", str(sample_project)]
    assert main([*root, "sync", "--all"]) == 0
    capsys.readouterr()
    out = tmp_path / "sar"
    assert (
        main(
            [*root, "resident", "export", "--national-id", ELSA, "--lang", "sv", "--out", str(out)]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert ELSA not in printed and "subject access export" in printed
    assert len(list(out.glob("subject-access-*.html"))) == 1
    # A folder the export cannot go into is bad input, said before the export is built.
    afile = tmp_path / "a-file"
    afile.write_text("x")
    assert main([*root, "resident", "export", "--national-id", ELSA, "--out", str(afile)]) == 2
    assert f"error: --out {afile}: is a file; name a folder" in capsys.readouterr().err
    assert main([*root, "resident", "erase", "--national-id", ELSA, "--dry-run"]) == 0
    assert "dry run" in capsys.readouterr().out
    assert main([*root, "resident", "erase", "--national-id", ELSA, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["erased"] and report["erased_in_hub"]["tombstones"] == 2
    assert main([*root, "resident", "show", "--national-id", ELSA]) == 1


def test_retention_clears_payloads_expires_quarantine_and_anonymises(
    sample_project, store_url, monkeypatch
):
    systems = sample_project / "config" / "systems"
    school = systems / "school.yaml"
    school.write_text(
        school.read_text()
        + "retention: {raw_payload_days: 10, quarantine_days: 20, anonymise_after_days: 30}\n"
    )
    project, store = load(sample_project, store_url, monkeypatch)
    run_all(project, store)
    elsa_before = show(store, STAFF, national_id=ELSA)["record"]
    assert "birth_date" in elsa_before  # only the school gives it
    school_rows = _count(store, source_records, source_records.c.system == "school")
    assert _count(store, quarantine, quarantine.c.system == "school") == 1

    # 15 days on: payloads cleared only.
    later = enforce(project, store, at=now() + timedelta(days=15))
    assert [(r.system, r.payloads_cleared, r.quarantine_deleted, r.anonymised) for r in later] == [
        ("school", 5, 0, 0)
    ]
    assert _count(store, landing, landing.c.system == "school", landing.c.payload != "") == 0
    assert show(store, STAFF, national_id=ELSA)["record"] == elsa_before  # fields stay

    # A dry run 40 days on counts, changes nothing.
    dry = enforce(project, store, at=now() + timedelta(days=40), dry_run=True)
    assert (dry[0].quarantine_deleted, dry[0].anonymised) == (1, school_rows)
    assert _count(store, source_records, source_records.c.system == "school") == school_rows

    enforce(project, store, at=now() + timedelta(days=40))
    assert _count(store, quarantine, quarantine.c.system == "school") == 0
    assert _count(store, source_records, source_records.c.system == "school") == 0
    assert _count(store, links, links.c.system == "school") == 0
    elsa = show(store, STAFF, national_id=ELSA)["record"]
    assert "birth_date" not in elsa  # rebuilt without the school
    with store.connect() as conn:
        statuses = set(
            conn.execute(sa.select(landing.c.status).where(landing.c.system == "school")).scalars()
        )
    assert statuses <= {"anonymised", "quarantined"}
    # The island still sends the same records: unchanged, not taken in again.
    results = sync(project, store, ["school"], full_refresh=True)
    assert_counts_add_up(results)
    assert results[0].mapped == 0 and results[0].unchanged == results[0].pulled
    assert _count(store, residents, residents.c.active.is_(True)) >= 8


def test_retention_config_errors_name_the_file_and_path(sample_project, capsys, monkeypatch):
    school = sample_project / "config" / "systems" / "school.yaml"
    school.write_text(school.read_text() + "retention: {raw_payload_days: 0, forever: true}\n")
    code = main(["--project", str(sample_project), "retention", "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2
    assert "config/systems/school.yaml" in err and "retention" in err


def test_unknown_activity_type_is_a_config_error(sample_project, capsys):
    school = sample_project / "config" / "systems" / "school.yaml"
    text = school.read_text().replace(
        "    mapping: mappings/school/pupils.yaml",
        "    mapping: mappings/school/pupils.yaml\n    activity: {type: party}",
    )
    school.write_text(text)
    code = main(["--project", str(sample_project), "status"])
    err = capsys.readouterr().err
    assert code == 2 and "streams.pupils.activity.type" in err
