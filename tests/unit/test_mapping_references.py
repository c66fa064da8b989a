"""A mapping's `references:` section: what a record gets, and the exact errors of bad ones."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from islandhub.config import load_project
from islandhub.errors import ConfigError
from islandhub.mapping import Mapping
from islandhub.mapping.transforms import known_transforms

FIXTURES = Path(__file__).parent.parent / "fixtures" / "config"
PATRONS = "mappings/library/patrons.yaml"
PATRONS_TEXT = (FIXTURES / "valid" / "archipelago" / PATRONS).read_text()
VALID = "131052-308T"


def spec(**references: Any) -> dict[str, Any]:
    return {
        "source": "billing.customers",
        "entity": "resident",
        "id": "number",
        "fields": {"given_name": {"from": "name"}},
        "references": references,
    }


# --- what a record gets -----------------------------------------------------------------------


def test_each_record_gets_the_ids_it_holds_by_referenced_stream() -> None:
    mapping = Mapping.from_spec(
        spec(
            **{
                "crm.contacts": {"from": "portal", "use": ["strip"]},
                "population.persons": {"from": "hetu", "use": ["strip", "hetu"]},
            }
        )
    )
    assert mapping.references == ["crm.contacts", "population.persons"]
    batch = mapping.apply(
        [
            {"number": 1, "name": "A", "portal": " c-7 ", "hetu": VALID},
            {"number": 2, "name": "B", "portal": "   "},  # blank: no reference
            {"number": 3, "name": "C", "portal": 4711},  # a number is an id as text
        ]
    )
    assert [dict(m.references) for m in batch.mapped] == [
        {"crm.contacts": "c-7", "population.persons": VALID},
        {},
        {"crm.contacts": "4711"},
    ]
    assert [m.values for m in batch.mapped] == [{"given_name": n} for n in "ABC"]
    assert all(m.warnings == [] for m in batch.mapped)


def test_a_rejected_reference_is_dropped_with_a_masked_warning_never_quarantined() -> None:
    mapping = Mapping.from_spec(spec(**{"population.persons": {"from": "hetu", "use": ["hetu"]}}))
    batch = mapping.apply([{"number": 9, "name": "A", "hetu": "131052-308U"}])
    assert batch.quarantined == []
    [record] = batch.mapped
    assert record.references == {}
    assert record.warnings == [
        "references.population.persons (from hetu): invalid national id (check character "
        "does not match): '131052-****'"
    ]


def test_a_quarantined_record_does_not_shift_the_references_of_the_others() -> None:
    mapping = Mapping.from_spec(
        {**spec(**{"crm.contacts": {"from": "portal"}}), "fields": {
            "given_name": {"from": "name", "required": True}}}
    )  # fmt: skip
    batch = mapping.apply(
        [
            {"number": 1, "portal": "c-1"},  # no name: quarantined
            {"name": "no id", "portal": "c-2"},  # no id: quarantined
            {"number": 3, "name": "C", "portal": "c-3"},
        ]
    )
    assert [(m.source_id, dict(m.references)) for m in batch.mapped] == [
        ("3", {"crm.contacts": "c-3"})
    ]


def test_a_mapping_without_references_gives_every_record_the_shared_empty_one() -> None:
    without = spec()
    del without["references"]
    mapping = Mapping.from_spec(without)
    assert mapping.references == []
    batch = mapping.apply([{"number": 1, "name": "A"}, {"number": 2, "name": "B"}])
    first, second = batch.mapped
    assert first.references == {} and first.references is second.references
    assert "references" not in first.__dict__  # not set per record: nothing to pay for


# --- errors in a project: file, line, path, what was expected ---------------------------------


def errors_of(tmp_path: Path, references: str) -> list[str]:
    root = tmp_path / "archipelago"
    shutil.copytree(FIXTURES / "valid" / "archipelago", root)
    (root / PATRONS).write_text(PATRONS_TEXT + references, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_project(root, environ={})
    return str(caught.value).splitlines()


# (id, the `references:` section appended to the library's mapping, exact errors)
INVALID_REFERENCES: list[tuple[str, str, list[str]]] = [
    (
        "not-a-mapping",
        "references: [school.pupils]\n",
        [f"{PATRONS}:8:1 references: expected a mapping, got a list"],
    ),
    (
        "empty",
        "references: {}\n",
        [f"{PATRONS}:8:1 references: must not be empty"],
    ),
    (
        "not-system-dot-stream",
        "references:\n  pupils: {from: pupil_no}\n",
        [
            f"{PATRONS}:9:3 references: 'pupils' does not match "
            r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]* (write the <system>.<stream> of the records "
            "referred to, e.g. crm.contacts)"
        ],
    ),
    (
        "no-required",
        "references:\n  school.pupils: {from: pupil_no, required: true}\n",
        [f"{PATRONS}:9:35 references.school.pupils: unknown key 'required'"],
    ),
    (
        "from-missing",
        "references:\n  school.pupils: {use: [strip]}\n",
        [
            f"{PATRONS}:9:3 references.school.pupils.from: from is required: the source "
            "field to read"
        ],
    ),
    (
        "from-not-a-name",
        "references:\n  school.pupils: {from: 7}\n",
        [
            f"{PATRONS}:9:19 references.school.pupils.from: expected a field name or a list "
            "of field names"
        ],
    ),
    (
        "unknown-transform",
        "references:\n  school.pupils: {from: pupil_no, use: [strp]}\n",
        [
            f"{PATRONS}:9:41 references.school.pupils.use[0]: unknown transform 'strp'; "
            f"known transforms: {', '.join(known_transforms())}"
        ],
    ),
    (
        "several-fields-uncombined",
        "references:\n  school.pupils: {from: [a, b], use: [strip]}\n",
        [
            f"{PATRONS}:9:33 references.school.pupils.use: from lists several fields: the "
            "first transform must combine them (concat or coalesce)"
        ],
    ),
    (
        "unknown-stream",  # across files: no system file defines school.pupil
        "references:\n  school.pupils: {from: pupil_no}\n  school.pupil: {from: pupil_no}\n",
        [
            f"{PATRONS}:10:3 references.school.pupil: 'school.pupil' is not a stream of any "
            "system file; streams: library.patrons, school.pupils; did you mean "
            "'school.pupils'?"
        ],
    ),
    (
        "unknown-system",
        "references:\n  crm.contacts: {from: portal_no}\n",
        [
            f"{PATRONS}:9:3 references.crm.contacts: 'crm.contacts' is not a stream of any "
            "system file; streams: library.patrons, school.pupils"
        ],
    ),
]


@pytest.mark.parametrize(
    ("references", "expected"),
    [case[1:] for case in INVALID_REFERENCES],
    ids=[case[0] for case in INVALID_REFERENCES],
)
def test_bad_references_give_exact_errors(
    tmp_path: Path, references: str, expected: list[str]
) -> None:
    assert errors_of(tmp_path, references) == expected


def test_a_valid_references_section_loads(tmp_path: Path) -> None:
    root = tmp_path / "archipelago"
    shutil.copytree(FIXTURES / "valid" / "archipelago", root)
    (root / PATRONS).write_text(
        PATRONS_TEXT + "references:\n  school.pupils: {from: pupil_no, use: [strip]}\n"
    )
    project = load_project(root, environ={})
    assert project.systems["library"].streams["patrons"].mapping.references == ["school.pupils"]


# --- the engine's own checks, for specs that skip the schema (Mapping.from_spec) ---------------


@pytest.mark.parametrize(
    ("references", "expected"),
    [
        (
            ["school.pupils"],
            [("references", "references must be a mapping of <system>.<stream> -> {from, use}")],
        ),
        (
            {"pupils": {"from": "a"}},
            [
                (
                    "references.pupils",
                    "a reference names the records it points to as 'system.stream', like "
                    "crm.contacts, not 'pupils'",
                )
            ],
        ),
        (
            {"school.pupils": {"from": "a", "required": True}},
            [
                (
                    "references.school.pupils.required",
                    "unknown key 'required'; known keys: from, use",
                )
            ],
        ),
        (
            {"school.pupils": "pupil_no"},
            [
                (
                    "references.school.pupils",
                    "a field is a mapping like {from: source_field, use: [strip]}",
                )
            ],
        ),
    ],
)
def test_engine_problems(references: Any, expected: list[tuple[str, str]]) -> None:
    problems = Mapping.problems({**spec(), "references": references})
    assert [(p.path, p.message) for p in problems] == expected


def test_preview_shows_the_references_a_record_holds(tmp_path: Path, capsys) -> None:
    from islandhub.cli import main

    mapping = tmp_path / "customers.yaml"
    mapping.write_text(
        "source: billing.customers\nentity: resident\nid: number\n"
        "fields:\n  given_name: {from: name}\n"
        "references:\n  crm.contacts: {from: portal, use: [strip]}\n"
    )
    sample = tmp_path / "sample.json"
    sample.write_text('[{"number": 1, "name": "A", "portal": " c-7 "}, {"number": 2, "name": "B"}]')
    assert main(["mapping", "preview", str(mapping), "--input", str(sample), "--json"]) == 0
    first, second = json.loads(capsys.readouterr().out)["mapped"]
    assert first["references"] == {"crm.contacts": "c-7"}
    assert "references" not in second  # none held: the output is as before
