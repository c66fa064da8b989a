"""The `quality:` block of a system file: valid forms, and the exact error of each mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from islandhub.config import load_project
from islandhub.errors import ConfigError
from islandhub.quality.settings import DEFAULT_MIN_RECORDS, Gate, share

SCHOOL = "config/systems/school.yaml"
LEGACY = "quality: {max_quarantine_ratio: 0.05}\n"


def with_quality(root: Path, block: str) -> Path:
    path = root / SCHOOL
    text = path.read_text(encoding="utf-8")
    assert LEGACY in text
    path.write_text(text.replace(LEGACY, block), encoding="utf-8")
    return root


def errors(root: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_project(root)
    return [str(p) for p in caught.value.problems]


def test_the_first_form_still_gates_on_quarantine(sample_project):
    school = load_project(sample_project).systems["school"]
    assert school.quality == {"max_quarantine_ratio": 0.05}  # as written
    gate = school.quality_settings.gate
    assert gate == Gate(max_quarantined=0.05, quarantine_key="quality.max_quarantine_ratio")
    assert gate.active and gate.min_records == DEFAULT_MIN_RECORDS


def test_a_full_quality_block_is_read(sample_project):
    block = (
        "quality:\n"
        "  gate:\n"
        "    max_quarantined: 5%\n"
        "    min_completeness: {given_name: 90%, address.postal_code: 0.8}\n"
        "    min_validity: 99.5 %\n"
        "    min_records: 1\n"
        "  checks:\n"
        "    - {field: language, expect: in_set, values: [fi, sv], mostly: 95%}\n"
        "    - {field: address.street, expect: matches, pattern: '[^0-9]+ [0-9]+.*'}\n"
        "    - {field: national_id, expect: hetu}\n"
    )
    settings = load_project(with_quality(sample_project, block)).systems["school"]
    gate = settings.quality_settings.gate
    assert gate.max_quarantined == pytest.approx(0.05)
    assert gate.min_completeness == (("given_name", 0.9), ("address.postal_code", 0.8))
    assert gate.min_validity == pytest.approx(0.995)
    assert gate.min_records == 1
    assert gate.quarantine_key == "quality.gate.max_quarantined"
    checks = settings.quality_settings.checks
    assert [(c.field, c.expect, c.mostly) for c in checks] == [
        ("language", "in_set", 0.95),
        ("address.street", "matches", 1.0),
        ("national_id", "hetu", 1.0),
    ]
    assert checks[0].values == ("fi", "sv")


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (
            "quality: {gate: {max_quarantined: 5}}\n",
            [
                f"{SCHOOL}:17:18 quality.gate.max_quarantined: expected a share: a number "
                "from 0 to 1 (like 0.05) or a percentage (like 5%)"
            ],
        ),
        (
            "quality: {gate: {max_quarantined: 150%}}\n",
            [f"{SCHOOL}:17:18 quality.gate.max_quarantined: '150%' is more than 100%"],
        ),
        (
            "quality: {gate: {min_completeness: {langauge: 90%}}}\n",
            [
                f"{SCHOOL}:17:37 quality.gate.min_completeness.langauge: 'langauge' is not a "
                "field this system's mappings fill; they fill: address.post_office, "
                "address.postal_code, address.street, birth_date, family_name, given_name, "
                "guardian.email, guardian.name, guardian.phone, language, national_id; "
                "did you mean 'language'?"
            ],
        ),
        (
            "quality: {gate: {max_quarantine: 5%}}\n",
            [
                f"{SCHOOL}:17:18 quality.gate: unknown key 'max_quarantine'; "
                "did you mean 'max_quarantined'?"
            ],
        ),
        (
            "quality: {max_quarantine_ratio: 0.05, gate: {max_quarantined: 5%}}\n",
            [
                f"{SCHOOL}:17:11 quality.max_quarantine_ratio: give one of them: "
                "max_quarantine_ratio is the first form of gate.max_quarantined"
            ],
        ),
        (
            "quality:\n  checks:\n    - {field: language, expect: in_set}\n",
            [
                f"{SCHOOL}:19:7 quality.checks[0]: "
                "expect: in_set needs values: [...], the allowed values"
            ],
        ),
        (
            "quality:\n  checks:\n    - {field: language, expect: matches, pattern: '[a-z'}\n",
            [
                f"{SCHOOL}:19:42 quality.checks[0].pattern: does not compile: "
                "unterminated character set at position 0"
            ],
        ),
        (
            "quality:\n  checks:\n    - {field: language, expect: valid}\n",
            [
                f"{SCHOOL}:19:25 quality.checks[0].expect: 'valid' is not one of not_null, "
                "unique, in_set, matches, hetu, ytunnus, e164_phone, postal_code, "
                "municipality_code, email, iso_date"
            ],
        ),
        (
            "quality:\n  checks:\n    - {field: phone, expect: e164_phone, values: [x]}\n",
            [
                f"{SCHOOL}:19:8 quality.checks[0].field: 'phone' is not a field this "
                "system's mappings fill; they fill: address.post_office, address.postal_code, "
                "address.street, birth_date, family_name, given_name, guardian.email, "
                "guardian.name, guardian.phone, language, national_id",
                f"{SCHOOL}:19:42 quality.checks[0].values: only for expect: in_set",
            ],
        ),
    ],
    ids=[
        "share-above-one",
        "percent-above-100",
        "unknown-field",
        "unknown-gate-key",
        "both-forms",
        "in-set-without-values",
        "pattern-does-not-compile",
        "unknown-check",
        "field-and-stray-key",
    ],
)
def test_a_bad_quality_block_names_file_line_and_path(sample_project, block, expected):
    assert errors(with_quality(sample_project, block)) == expected


def test_the_cli_exits_2_on_a_bad_quality_block(sample_project, capsys):
    from islandhub.cli import main

    with_quality(sample_project, "quality: {gate: {max_quarantined: 5}}\n")
    assert main(["--project", str(sample_project), "status"]) == 2
    assert f"{SCHOOL}:17:18 quality.gate.max_quarantined" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("given", "fraction"), [(0.05, 0.05), ("5%", 0.05), ("99.5 %", 0.995), (1, 1.0)]
)
def test_a_share_is_a_fraction_or_a_percentage(given, fraction):
    assert share(given) == pytest.approx(fraction)
