"""A known cross-system id that is a HETU is sealed at rest and follows a key rotation.

The sample project's school records name the register's record of the pupil by the register's
own id, the HETU: the reference is stored sealed, equal to the sealed source id it names,
on SQLite and PostgreSQL; `privacy rotate-key` seals both again alike.
"""

from __future__ import annotations

import json

import sqlalchemy as sa

from islandhub.cli import main
from islandhub.privacy import crypto
from islandhub.resolve.references import must_links
from islandhub.store import open_store
from islandhub.store.tables import landing, record_references

# _keys_restored: autouse here too (rotation switches keys).
from tests.privacy.test_at_rest import _clear_in_files, _clear_in_store, _keys_restored  # noqa: F401

ELSA = "230612A457H"  # in the register (keyed by it) and at school (pupil P1001)
LUKAS = "010413A568J"  # at school only (P1004): his reference names no record the hub holds
REFERENCES = "references:\n  population.persons: {from: hetu, use: [strip, hetu]}\n"


def register_ids(store) -> set[str]:
    with store.connect() as conn:
        query = sa.select(landing.c.source_id).where(landing.c.system == "population")
        return set(conn.execute(query).scalars())


def school_references(store) -> dict[str, str]:
    with store.connect() as conn:
        rows = conn.execute(sa.select(record_references)).all()
    assert all((r.system, r.ref_system) == ("school", "population") for r in rows)
    return {r.source_id: r.ref_source_id for r in rows}


def test_a_hetu_shaped_reference_is_sealed_and_rotated_with_the_id_it_names(
    sample_project, store_url, monkeypatch, capsys
):
    mapping = sample_project / "mappings" / "school" / "pupils.yaml"
    mapping.write_text(mapping.read_text() + REFERENCES)
    monkeypatch.setenv("ISLANDHUB_STORE_URL", store_url)
    monkeypatch.setenv("ISLANDHUB_PURPOSE", "references at rest")
    root = ["--project", str(sample_project)]
    assert main([*root, "sync", "--all"]) == 0
    capsys.readouterr()
    store = open_store(store_url)
    named = school_references(store)
    assert named["P1001"] == crypto.seal(ELSA)  # sealed, as the register's source id
    assert len(named) == 4  # every pupil whose national id is valid names the register's record
    assert set(named.values()) - register_ids(store) == {crypto.seal(LUKAS)}
    assert _clear_in_store(store) == [] and _clear_in_files(store_url) == []
    with store.connect() as conn:
        pairs = must_links(conn)
    assert (
        frozenset({("school", "pupils", "P1001"), ("population", "persons", named["P1001"])})
        in pairs
    )
    store.dispose()

    new = crypto.new_key()
    monkeypatch.setenv("ISLANDHUB_NATIONAL_ID_KEY_NEW", new)
    assert main([*root, "privacy", "rotate-key", "--json"]) == 0
    rotated = json.loads(capsys.readouterr().out)
    assert rotated["rows"]["record_references"] == 4
    monkeypatch.setenv(crypto.KEY_ENV, new)
    crypto.forget_keys()
    store = open_store(store_url)
    again = school_references(store)
    assert again["P1001"] == crypto.seal(ELSA) != named["P1001"]
    # Still equal to the ids they name.
    assert set(again.values()) - register_ids(store) == {crypto.seal(LUKAS)}
    assert _clear_in_store(store) == [] and _clear_in_files(store_url) == []
    with store.connect() as conn:
        assert len(must_links(conn)) == len(pairs) == 3
    store.dispose()
    assert main([*root, "sync", "--all", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert all(r["mapped"] == 0 for r in runs)  # nothing looks changed under the new key
