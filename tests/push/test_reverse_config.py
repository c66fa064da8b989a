"""Reverse mappings: table-driven config errors (file:line:col path: message, exit 2) and values."""

from __future__ import annotations

from pathlib import Path

import pytest

from islandhub.cli import main
from islandhub.config import load_mapping_file, load_project
from islandhub.errors import ConfigError
from islandhub.push.reverse import ReverseMapping, resident_values
from tests.push.world import PortalIsland, build

HEAD = """\
source: portal.contacts
entity: resident
id: id
fields:
  email: {from: email, use: [email]}
"""

VALID = [
    "push:\n  fields:\n    mail: {from: email}\n",
    "push:\n  residents: all\n  fields:\n"
    "    born: {from: birth_date, use: [{format_date: '%d.%m.%Y'}]}\n",
    "push:\n  retry: {max_attempts: 2, backoff: 0.5}\n  fields:\n    id: {from: $source_id}\n"
    "    name: {from: [given_name, family_name], use: [{concat: ' '}]}\n",
    "push:\n  fields:\n    emailAddresses.0.address: {from: email, use: [lower]}\n",
]

# (the push section, the line:column and path of the error, what it says)
INVALID = [
    (
        "push:\n  fields:\n    mail: {from: email, use: [shout]}\n",
        "8:31 push.fields.mail.use[0]",
        "unknown transform 'shout'; known transforms: ",
    ),
    (
        "push:\n  fields:\n    mail: {from: Email}\n",
        "8:12 push.fields.mail.from",
        "expected a resident field (like email or address.street), $source_id, or a list",
    ),
    (
        "push:\n  fields:\n    name: {from: [given_name, family_name]}\n",
        "8:5 push.fields.name.use",
        "the first transform must combine them (concat or coalesce)",
    ),
    (
        "push:\n  fields:\n    id: {from: $source_id}\n    hub: {from: resident_id}\n",
        "7:3 push.fields",
        "every field comes from resident_id or $source_id: nothing would be sent",
    ),
    (
        "push:\n  residents: everyone\n  fields:\n    mail: {from: email}\n",
        "7:3 push.residents",
        "'everyone' is not one of linked, all",
    ),
    (
        "push:\n  retry: {attempts: 3}\n  fields:\n    mail: {from: email}\n",
        "7:11 push.retry",
        "unknown key 'attempts'; did you mean 'max_attempts'?",
    ),
    (
        "push:\n  fields:\n    _idempotency_key: {from: email}\n",
        "8:5 push.fields._idempotency_key",
        "_idempotency_key is reserved for the delivery's key",
    ),
    (
        "push:\n  fields:\n    born: {from: birth_date, use: [{format_date: 12}]}\n",
        "8:36 push.fields.born.use[0]",
        "format_date needs a strftime format",
    ),
    (
        "push:\n  fieldz:\n    mail: {from: email}\n",
        "7:3 push",
        "unknown key 'fieldz'; did you mean 'fields'?",
    ),
]


def write(tmp_path: Path, push: str) -> Path:
    path = tmp_path / "mappings" / "portal" / "contacts.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEAD + push, encoding="utf-8")
    return path


@pytest.mark.parametrize("push", VALID)
def test_valid_push_sections_load(tmp_path: Path, push: str) -> None:
    mapping = load_mapping_file(write(tmp_path, push), root=tmp_path)
    assert mapping.push is not None and mapping.push.fields


@pytest.mark.parametrize(("push", "where", "says"), INVALID)
def test_invalid_push_sections_name_file_line_and_path(
    tmp_path: Path, push: str, where: str, says: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_mapping_file(write(tmp_path, push), root=tmp_path)
    text = str(caught.value)
    assert f"mappings/portal/contacts.yaml:{where}: " in text, text
    assert says in text, text


def test_mapping_check_exits_2_with_the_reason(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, INVALID[0][0])
    assert main(["mapping", "check", "mappings/portal/contacts.yaml"]) == 2
    err = " ".join(capsys.readouterr().err.split())  # rich may wrap the line
    assert "contacts.yaml:8:31 push.fields.mail.use[0]: unknown transform 'shout'" in err


def test_a_push_section_needs_a_stream_that_takes_writes(tmp_path: Path) -> None:
    with PortalIsland() as portal:
        world = build(tmp_path / "project", portal)
    system = world.root / "config" / "systems" / "portal.yaml"
    system.write_text(system.read_text().replace("    push: {method: POST, path: /contacts}\n", ""))
    population = world.root / "mappings" / "population" / "persons.yaml"
    population.write_text(population.read_text() + "push:\n  fields:\n    x: {from: email}\n")
    with pytest.raises(ConfigError) as caught:
        load_project(world.root)
    text = str(caught.value)
    assert (
        "config/systems/population.yaml:6:50 streams.persons.mapping: the mapping has a push: "
        "section, but connector kind 'files' does not accept writes"
    ) in text, text
    assert (
        "config/systems/portal.yaml:11:5 streams.contacts.mapping: the mapping has a push: "
        "section, but the stream has no push settings: add push: {method: POST}"
    ) in text, text


def test_resident_values_read_the_primary_contact_entries() -> None:
    record = {
        "resident_id": "r1",
        "given_name": "Anna",
        "guardian": {"email": "g@example.fi"},
        "emails": [
            {"address": "b@example.fi", "primary": False, "sources": []},
            {"address": "a@example.fi", "primary": True, "sources": []},
        ],
        "phones": [{"number": "+358401234567", "primary": True, "sources": []}],
        "addresses": [{"street": "Kirkkotie 5", "postal_code": "04130", "primary": True}],
        "identifiers": [{"system": "population"}],
    }
    assert resident_values(record) == {
        "resident_id": "r1",
        "given_name": "Anna",
        "guardian.email": "g@example.fi",
        "email": "a@example.fi",
        "phone": "+358401234567",
        "address.street": "Kirkkotie 5",
        "address.postal_code": "04130",
    }


def test_fields_run_their_transforms_and_drop_what_they_reject() -> None:
    reverse = ReverseMapping.from_spec(
        {
            "fields": {
                "born": {"from": "birth_date", "use": [{"format_date": "%d.%m.%Y"}]},
                "name": {"from": ["given_name", "family_name"], "use": [{"concat": " "}]},
                "lang": {"from": "language", "use": [{"map": {"fi": "suomi", "sv": "ruotsi"}}]},
            }
        }
    )
    values = {"birth_date": "1978-03-12", "given_name": "Anna", "language": "sv"}
    born, name, lang = (f.value(values) for f in reverse.fields)
    assert (born, name, lang) == ("12.03.1978", "Anna", "ruotsi")
    assert reverse.retry.delay(1).total_seconds() == 60
    assert reverse.retry.delay(3).total_seconds() == 240
    assert reverse.retry.delay(30).total_seconds() == 3600
