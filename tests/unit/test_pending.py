"""A landed record's fields are parsed when first read, and it is the record read back."""

from __future__ import annotations

import pytest

from islandhub.resolve import publish
from islandhub.resolve.publish import Pending
from islandhub.store.db import dumps, loads

FIELDS = {"given_name": "Elsa", "national_id": "nid1:AbC", "birth_date": "2003-03-29"}


def test_a_landed_record_parses_its_fields_once_and_only_when_read(monkeypatch):
    parsed: list[str] = []
    real = publish.loads

    def counted(text: str) -> object:
        parsed.append(text)
        return real(text)

    monkeypatch.setattr(publish, "loads", counted)
    landed = Pending.landed("R1", dumps(FIELDS), "2026-11-27T20:00:00", "run", 7, None, None)
    assert not landed.deleted
    assert parsed == []  # publishing a founder never reads them
    assert landed.fields == FIELDS
    assert landed.fields is landed.fields
    assert parsed == [dumps(FIELDS)]


def test_a_landed_record_equals_the_same_record_read_back_from_the_store():
    landed = Pending.landed("R1", dumps(FIELDS), "t", "run", 7, None, None)
    read_back = Pending("R1", loads(dumps(FIELDS)), "t", "run", 7)  # as pending_records reads it
    assert landed == read_back
    assert repr(landed) == repr(read_back)
    assert landed != Pending("R1", {**FIELDS, "given_name": "Märta"}, "t", "run", 7)
    assert landed != Pending("R1", dict(FIELDS), "t", "run", 8)
    with pytest.raises(TypeError):
        hash(landed)  # as the frozen dataclass it was: its fields are a dict
    assert hash(Pending("R1", None, "t", "run", 7)) == hash(Pending("R1", None, "t", "run", 7))


def test_a_deleted_record_has_no_fields():
    gone = Pending("R1", None, "t", "run", 3)
    assert gone.deleted and gone.fields is None
    assert not Pending("R2", {}, "t", "run", 4).deleted  # mapped, with nothing in it
