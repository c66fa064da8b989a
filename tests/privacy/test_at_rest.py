"""National ids at rest (issue 8, item 5), on SQLite and PostgreSQL: sealed in every table,
found by their keyed hash, refused with the wrong key, sealed by the migration in a store
from before, rotated to a new key; and the rule itself on single values."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from islandhub.cli import main
from islandhub.errors import ConfigError
from islandhub.privacy import at_rest, crypto
from islandhub.privacy.access import subject_access
from islandhub.privacy.erasure import erase
from islandhub.privacy.masking import HETU_PATTERN
from islandhub.residents import Reader, show
from islandhub.resolve import steward
from islandhub.store import open_store
from islandhub.store.db import _alembic_config
from islandhub.store.tables import landing, resident_keys, resident_versions, source_records
from tests.helpers import load, run_all
from tests.leakscan import national_ids_in

ELSA = "230612A457H"  # in the register (whose source id it is) and at school
ANNA = "120378-234U"  # in the register only
STAFF = Reader("clerk.anna", "checking the at-rest rule")


@pytest.fixture(autouse=True)
def _keys_restored():
    """Every test starts and ends with the run's key (some switch keys on purpose)."""
    fallback = dict(crypto._fallback)
    crypto.forget_keys()
    yield
    crypto._fallback.update(fallback)
    crypto.forget_keys()


def _clear_in_store(store) -> list[str]:
    """Every text value of every table that holds a HETU-shaped token: where, masked."""
    found = []
    with store.connect() as conn:
        for name in sa.inspect(conn).get_table_names():
            table = sa.Table(name, sa.MetaData(), autoload_with=conn)
            for row in conn.execute(sa.select(table)):
                for column, value in zip(table.columns, row, strict=True):
                    if isinstance(value, str) and HETU_PATTERN.search(value):
                        token = HETU_PATTERN.search(value).group(0)
                        found.append(f"{name}.{column.name}: {token[:7]}***")
    return found


def _clear_in_files(store_url: str) -> list[str]:
    """Valid national ids in the bytes of a SQLite store's files (main file and WAL)."""
    if not store_url.startswith("sqlite"):
        return []
    path = Path(sa.engine.make_url(store_url).database or "")
    found = []
    for file in (path, path.with_name(path.name + "-wal")):
        if file.exists():
            text = file.read_bytes().decode("latin-1")
            found += [f"{file.name}: {h[:7]}***" for h in national_ids_in(text)]
    return found


def _versions(store) -> dict[str, int]:
    with store.connect() as conn:
        query = sa.select(resident_versions.c.resident_id, sa.func.max(resident_versions.c.version))
        return dict(conn.execute(query.group_by(resident_versions.c.resident_id)).all())


def _exercise(project, store) -> None:
    """Sync, read, export, ask to erase, correct: every writer of personal data once."""
    run_all(project, store)
    rid = show(store, STAFF, national_id=ELSA)["resident_id"]
    subject_access(project, store, Reader("clerk.bo", f"request about {ELSA}"), national_id=ELSA)
    erase(project, store, STAFF, national_id=ANNA, dry_run=True)
    who = steward.Steward.of("steward.sam", f"the register spells {ELSA}'s name so")
    steward.pin(store, who, rid, "given_name", "Elsa Maria", project.hub.priority)
    assert steward.parse_records([f"population:persons:{ELSA}"])[0][2] == crypto.seal(ELSA)


def test_no_national_id_is_stored_in_clear_anywhere(sample_project, store_url, monkeypatch):
    project, store = load(sample_project, store_url, monkeypatch)
    _exercise(project, store)
    assert _clear_in_store(store) == []
    assert _clear_in_files(store_url) == []
    with store.connect() as conn:
        of_register = landing.c.system == "population"
        register = conn.execute(
            sa.select(landing.c.source_id, landing.c.payload).where(of_register)
        ).all()
        fields = conn.execute(
            sa.select(source_records.c.fields).where(source_records.c.system == "school")
        ).scalars()
        school = [json.loads(text) for text in fields]
    # Sealed, not dropped: the register keys its records by the sealed HETU, and it opens.
    assert len(register) == 8 and all(crypto.is_sealed(sid) for sid, _ in register)
    assert ELSA in {crypto.unseal(sid) for sid, _ in register}
    assert all(json.loads(p)["henkilotunnus"] == sid for sid, p in register)
    assert all(crypto.is_sealed(f["national_id"]) for f in school)


def test_show_export_and_erase_by_national_id_still_find_the_person(
    sample_project, store_url, monkeypatch, capsys, tmp_path
):
    monkeypatch.setenv("ISLANDHUB_STORE_URL", store_url)
    monkeypatch.setenv("ISLANDHUB_PURPOSE", "at-rest lookups")
    root = ["--project", str(sample_project)]
    assert main([*root, "sync", "--all"]) == 0
    capsys.readouterr()
    assert main([*root, "resident", "show", "--national-id", ELSA, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["record"]["national_id"] == "230612A***H"  # opened, then masked
    sources = {f"{i['system']}:{i['source_id']}" for i in shown["record"]["identifiers"]}
    assert sources == {"population:230612A***H", "school:P1001"}
    assert shown["lineage"]["given_name"]["source_id"] == "230612A***H"
    out = tmp_path / "sar"
    assert main([*root, "resident", "export", "--national-id", ELSA, "--out", str(out)]) == 0
    capsys.readouterr()
    export = json.loads(next(out.glob("*.json")).read_text())  # the person's own: in full
    assert export["record"]["national_id"] == ELSA
    register = next(s for s in export["sources"] if s["system"] == "population")
    assert register["source_id"] == ELSA and register["payload"]["henkilotunnus"] == ELSA
    assert main([*root, "resident", "erase", "--national-id", ELSA, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["erased"] and report["erased_in_hub"]["tombstones"] == 2
    assert main([*root, "resident", "show", "--national-id", ELSA]) == 1
    capsys.readouterr()
    # The register still sends her: the tombstone keyed by the sealed id keeps her out.
    assert main([*root, "sync", "--all", "--full-refresh"]) == 0
    capsys.readouterr()
    assert main([*root, "resident", "show", "--national-id", ELSA]) == 1
    capsys.readouterr()


def test_the_lookup_index_holds_keyed_hashes_only(sample_project, store_url, monkeypatch):
    project, store = load(sample_project, store_url, monkeypatch)
    run_all(project, store)
    with store.connect() as conn:
        keys = set(conn.execute(sa.select(resident_keys.c.key)).scalars())
    assert crypto.lookup_hash(ELSA) in keys
    assert all(len(k) == 64 for k in keys)
    monkeypatch.setenv(crypto.KEY_ENV, crypto.new_key())
    crypto.forget_keys()
    assert crypto.lookup_hash(ELSA) not in keys  # without the key nobody can make it


def test_a_store_sealed_with_another_key_is_refused_clearly(
    sample_project, store_url, monkeypatch, capsys
):
    project, store = load(sample_project, store_url, monkeypatch)
    run_all(project, store)
    store.dispose()
    monkeypatch.setenv(crypto.KEY_ENV, crypto.new_key())
    crypto.forget_keys()
    with pytest.raises(crypto.KeyMismatch, match="sealed with another key") as caught:
        open_store(store_url)
    assert isinstance(caught.value, ConfigError)  # exit code 2: the operator's setting
    assert crypto.KEY_ENV in str(caught.value)
    monkeypatch.setenv("ISLANDHUB_STORE_URL", store_url)
    code = main(["--project", str(sample_project), "status"])
    assert code == 2
    assert "sealed with another key" in capsys.readouterr().err


def test_a_store_from_before_sealing_is_sealed_by_its_migration(
    sample_project, store_url, monkeypatch
):
    project, store = load(sample_project, store_url, monkeypatch)
    run_all(project, store)
    rid = show(store, STAFF, national_id=ELSA)["resident_id"]
    versions = _versions(store)
    # Back to the revision before sealing: the store as an earlier version left it.
    with store.engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "0007")
    assert any("230612A" in hit for hit in _clear_in_store(store))
    with store.connect() as conn:
        register = set(
            conn.execute(
                sa.select(landing.c.source_id).where(landing.c.system == "population")
            ).scalars()
        )
    assert ELSA in register
    store.dispose()
    store = open_store(store_url)  # migrates: seals everything, rebuilds the index
    assert _clear_in_store(store) == []
    assert _clear_in_files(store_url) == []
    assert show(store, STAFF, national_id=ELSA)["resident_id"] == rid
    assert _versions(store) == versions  # the same records, sealed: no new version
    again = run_all(project, store, full_refresh=True)
    # Every record still hashes the same: nothing is landed again.
    assert all(r.status == "succeeded" and r.pulled == r.unchanged for r in again)
    assert _versions(store) == versions


def test_rotating_the_key_seals_everything_again(sample_project, store_url, monkeypatch, capsys):
    monkeypatch.setenv("ISLANDHUB_STORE_URL", store_url)
    monkeypatch.setenv("ISLANDHUB_PURPOSE", "key rotation test")
    root = ["--project", str(sample_project)]
    assert main([*root, "sync", "--all"]) == 0
    capsys.readouterr()
    store = open_store(store_url)
    before = _versions(store)
    with store.connect() as conn:
        old_ids = set(conn.execute(sa.select(landing.c.source_id)).scalars())
    store.dispose()
    assert main([*root, "privacy", "rotate-key"]) == 2  # no new key given
    assert "ISLANDHUB_NATIONAL_ID_KEY_NEW" in capsys.readouterr().err
    new = crypto.new_key()
    monkeypatch.setenv("ISLANDHUB_NATIONAL_ID_KEY_NEW", new)
    assert main([*root, "privacy", "rotate-key", "--json"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["before"] != done["after"] and done["rows"]["landing"] > 0
    assert main([*root, "status"]) == 2  # the old key is refused from now on
    capsys.readouterr()
    monkeypatch.setenv(crypto.KEY_ENV, new)
    crypto.forget_keys()
    store = open_store(store_url)
    with store.connect() as conn:
        new_ids = set(conn.execute(sa.select(landing.c.source_id)).scalars())
    assert new_ids != old_ids and len(new_ids) == len(old_ids)
    assert _clear_in_store(store) == [] and _clear_in_files(store_url) == []
    assert show(store, STAFF, national_id=ELSA) is not None
    assert _versions(store) == before
    store.dispose()
    assert main([*root, "sync", "--all", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert all(r["mapped"] == 0 for r in runs)  # nothing looks changed under the new key


def test_without_the_secret_the_development_key_lives_in_the_project(
    sample_project, monkeypatch, tmp_path, caplog
):
    monkeypatch.delenv(crypto.KEY_ENV, raising=False)
    monkeypatch.delenv(crypto.KEY_FILE_ENV, raising=False)
    monkeypatch.setenv("ISLANDHUB_STORE_URL", f"sqlite:///{tmp_path / 'dev.db'}")
    monkeypatch.setenv("ISLANDHUB_PURPOSE", "development")
    assert main(["--project", str(sample_project), "status", "--json"]) == 0
    key = sample_project / "var" / "keys" / "national_id.key"
    assert key.is_file() and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "development key" in caplog.text


def test_new_key_prints_one_fresh_key(capsys):
    assert main(["privacy", "new-key"]) == 0
    first = capsys.readouterr()
    assert main(["privacy", "new-key"]) == 0
    second = capsys.readouterr().out.strip()
    key = first.out.strip()
    assert len(first.out.splitlines()) == 1 and key != second
    assert crypto.Keyring.from_text(key, "test").fingerprint()  # a usable key
    assert crypto.KEY_ENV in first.err


# --- the rule on single values ----------------------------------------------------------------


def test_payload_sealing_follows_the_mappings_paths_and_the_hetu_shape():
    record = {
        "henkilotunnus": ELSA,
        "huoltaja": {"hetu": "131052308T"},  # malformed: not HETU-shaped, but a hetu path
        "lapset": [{"tunnus": ANNA}],
        "viesti": f"call me, my id is {ELSA.lower()}",
        ELSA: "a key",
        "nimi": "Elsa",
        "numero": 1234,
    }
    sealed = at_rest.seal_payload(record, ["huoltaja.hetu"])
    text = json.dumps(sealed)
    assert not HETU_PATTERN.search(text) and "131052308T" not in text
    assert sealed["nimi"] == "Elsa" and sealed["numero"] == 1234
    assert at_rest.seal_payload(record, ["huoltaja.hetu"]) == sealed  # deterministic
    assert at_rest.unseal_tree(sealed) == record


def test_text_that_only_looks_sealed_is_kept_and_still_sealed_if_it_holds_a_hetu():
    assert at_rest.unseal_tree({"a": "nid1:not-really-sealed-at-all-xx"}) == {
        "a": "nid1:not-really-sealed-at-all-xx"
    }
    tricky = f"nid1:{ELSA}"
    assert crypto.is_sealed(at_rest.seal_text(tricky)) and at_rest.seal_text(tricky) != tricky
    assert crypto.unseal_text(f"population:persons:{crypto.seal(ELSA)}") == (
        f"population:persons:{ELSA}"
    )


def test_mapped_fields_seal_the_national_id_whatever_it_holds():
    fields = {"national_id": "010190-900P", "given_name": "Anna", "email": "a@example.fi"}
    sealed = at_rest.seal_tree(fields)
    assert crypto.is_sealed(sealed["national_id"]) and sealed["given_name"] == "Anna"
    assert at_rest.unsealed_fields(sealed) == fields


@pytest.mark.skipif(os.name != "posix", reason="file modes")
def test_the_development_key_file_is_read_back_not_made_again(tmp_path, monkeypatch):
    monkeypatch.delenv(crypto.KEY_ENV, raising=False)
    crypto.use_project(tmp_path)
    first = crypto.fingerprint()
    crypto.forget_keys()
    assert crypto.fingerprint() == first  # read back, not made again
