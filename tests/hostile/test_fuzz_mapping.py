"""Property: the mapping engine maps or quarantines every record, whatever the record or spec.

Complements tests/unit/test_mapping_engine.py (examples) and tests/unit/test_fastpaths.py
(fast paths against their libraries) with arbitrary records, arbitrary batches, and
arbitrary mapping specs, including ones no schema would let through.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from islandhub.cli import main
from islandhub.errors import ConfigError
from islandhub.mapping import Mapping
from islandhub.mapping.engine import MappedBatch
from islandhub.mapping.transforms import REGISTRY
from islandhub.privacy.masking import mask_text
from islandhub.yamlsource import parse_yaml
from tests.hostile.harness import FUZZ, MAPPING, SOURCE_FIELDS
from tests.hostile.strategies import (
    adversarial_text,
    hostile_files,
    json_files,
    json_values,
    jsonl_files,
    records,
)

MANY = settings(FUZZ, max_examples=100)
PEOPLE = Mapping.from_spec(parse_yaml(MAPPING.format(system="drop"), "people.yaml").data)
batches = st.lists(st.one_of(records(), records(), json_values), max_size=12)


def check_batch(mapping: Mapping, batch: list[Any], outcome: MappedBatch) -> None:
    """Each record once, mapped or quarantined with reasons; order kept; ids masked."""
    assert len(outcome.mapped) + len(outcome.quarantined) == len(batch)
    expected_ids = [mapping.source_id(r) for r in batch]
    mapped_ids = [m.source_id for m in outcome.mapped]
    # Mapped records keep the input order (quarantined ones are taken out of it).
    position = 0
    for source_id in mapped_ids:
        position = expected_ids.index(source_id, position) + 1
    for record in outcome.mapped:
        assert isinstance(record.source_id, str) and record.source_id.strip()
        assert None not in record.values.values()
        assert set(record.values) <= set(mapping.target_paths)
        for warning in record.warnings:
            assert warning.strip() and mask_text(warning) == warning, "a warning shows an id"
    for held in outcome.quarantined:
        assert held.reasons and all(r.strip() for r in held.reasons)
        # A reason shows a national id only masked: masking it again changes nothing.
        assert all(mask_text(r) == r for r in held.reasons), held.reasons


@MANY
@given(batches)
def test_every_record_is_mapped_or_quarantined(batch: list[Any]) -> None:
    outcome = PEOPLE.apply(batch)
    check_batch(PEOPLE, batch, outcome)
    for record in outcome.mapped:
        assert "given_name" in record.values  # required: a mapped record has it
    # A record that is not an object, or has no usable id, is quarantined without an id.
    without_id = sum(1 for r in batch if PEOPLE.source_id(r) is None)
    assert sum(1 for q in outcome.quarantined if q.source_id is None) == without_id


@MANY
@given(batches)
def test_a_record_maps_the_same_alone_or_in_any_batch(batch: list[Any]) -> None:
    # The engine maps column by column and computes each distinct value once: a memo keyed
    # by values that compare equal across types (1, 1.0, True) or an unhashable value must
    # never hand one record another's outcome.
    together = PEOPLE.apply(batch)
    alone = [PEOPLE.apply([record]) for record in batch]
    assert [m.values for m in together.mapped] == [m.values for a in alone for m in a.mapped]
    assert [q.reasons for q in together.quarantined] == [
        q.reasons for a in alone for q in a.quarantined
    ]
    reversed_outcome = PEOPLE.apply(batch[::-1])
    assert sorted(map(repr, (m.values for m in reversed_outcome.mapped))) == sorted(
        map(repr, (m.values for m in together.mapped))
    )


# --- arbitrary specs -----------------------------------------------------------------------------

transform_names = st.sampled_from(sorted(REGISTRY))
transforms = st.one_of(
    transform_names,
    st.dictionaries(transform_names, json_values, min_size=1, max_size=1),
    st.dictionaries(
        transform_names, st.sampled_from(["%d.%m.%Y", "%Q", "(", r"\d+", "SE", "given"])
    ),
    json_values,
)
sources = st.one_of(
    st.sampled_from(SOURCE_FIELDS),
    st.lists(st.sampled_from(SOURCE_FIELDS), max_size=3),
    st.sampled_from(["a.b.0", "a..b", ".", "", "note.k.k"]),
    json_values,
)
field_specs = st.one_of(
    st.fixed_dictionaries(
        {"from": sources},
        optional={"use": st.lists(transforms, max_size=3), "required": st.booleans() | json_values},
    ),
    json_values,
)
specs = st.fixed_dictionaries(
    {
        "source": st.sampled_from(["drop.people", "drop", "", "a.b.c"]) | adversarial_text,
        "id": st.sampled_from(["id", "note.k", "id.0", ""]) | json_values,
        "fields": st.dictionaries(
            st.sampled_from(["given_name", "address.street", "national_id", "note"])
            | adversarial_text,
            field_specs,
            max_size=4,
        )
        | json_values,
    },
    optional={"entity": st.sampled_from(["resident", ""]) | json_values},
)


@MANY
@given(specs, batches)
def test_any_spec_is_refused_with_reasons_or_maps_every_record(
    spec: dict[str, Any], batch: list[Any]
) -> None:
    try:
        mapping = Mapping.from_spec(spec, file="fuzz.yaml")
    except ConfigError as exc:
        assert exc.problems and all(p.message.strip() for p in exc.problems)
        assert all(p.file == "fuzz.yaml" for p in exc.problems)
        event("spec refused")
        return
    event("spec compiled")
    check_batch(mapping, batch, mapping.apply(batch))


# --- mapping preview: a user's sample file through the command line -----------------------------

PREVIEW = settings(FUZZ, max_examples=60)


@PREVIEW
@given(hostile_files(st.one_of(jsonl_files(), json_files())))
def test_mapping_preview_of_any_sample_answers_or_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sample: bytes
) -> None:
    # `islandhub mapping preview FILE --input SAMPLE` reads a file the user hands it: bad
    # JSON, wrong encoding, surrogates, deep nesting must give exit code 2 with a reason.
    mapping = tmp_path / "people.yaml"
    mapping.write_text(MAPPING.format(system="drop"))
    (tmp_path / "sample.json").write_bytes(sample)
    argv = ["mapping", "preview", str(mapping), "--input", str(tmp_path / "sample.json")]
    code = main([*argv, "--json"])
    out, err = capsys.readouterr()
    assert code in (0, 2), err
    if code == 0:
        result = json.loads(out)
        assert set(result) == {"mapped", "quarantined"}
    else:
        assert err.startswith("error: ") and "Traceback" not in err
