"""YAML is read as plain data with positions; anything beyond plain YAML is a clear error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from islandhub.errors import ConfigError
from islandhub.yamlsource import format_path, load_yaml, parse_path, parse_yaml

# (id, text, data it must give)
VALID: list[tuple[str, str, Any]] = [
    ("empty", "", None),
    ("comment-only", "# nothing yet\n", None),
    (
        "scalars",
        "a: 1\nb: 0.5\nc: true\nd: null\ne: text\n",
        {"a": 1, "b": 0.5, "c": True, "d": None, "e": "text"},
    ),
    ("yaml-1.1-booleans-as-safe-load", "on: yes\n", {True: True}),
    ("dates-stay-text", "born: 2014-03-01\n", {"born": "2014-03-01"}),
    ("explicit-standard-tag", "zip: !!str 22100\n", {"zip": "22100"}),
    ("flow-and-block", "s:\n  - {a: [1, 2]}\n  - b\n", {"s": [{"a": [1, 2]}, "b"]}),
    (
        "anchor-and-merge",
        "x: &d {a: 1, b: 2}\ny:\n  <<: *d\n  b: 3\n",
        {"x": {"a": 1, "b": 2}, "y": {"a": 1, "b": 3}},
    ),
    (
        "merge-list-first-wins",
        "p: &p {a: 1}\nq: &q {a: 2, c: 3}\nr: {<<: [*p, *q]}\n",
        {"p": {"a": 1}, "q": {"a": 2, "c": 3}, "r": {"a": 1, "c": 3}},
    ),
]


@pytest.mark.parametrize(("text", "data"), [c[1:] for c in VALID], ids=[c[0] for c in VALID])
def test_valid_yaml_gives_plain_data(text: str, data: Any) -> None:
    assert parse_yaml(text, "f.yaml").data == data


# (id, text, exact errors)
INVALID: list[tuple[str, str, list[str]]] = [
    ("syntax", "a: 1\n b: 2\n", ["f.yaml:2:3: invalid YAML: mapping values are not allowed here"]),
    (
        "unclosed-flow",
        "a: [1, 2\nb: 3\n",
        [
            "f.yaml:2:2: invalid YAML: expected ',' or ']', but got ':' "
            "(while parsing a flow sequence at line 1)"
        ],
    ),
    (
        "two-documents",
        "a: 1\n---\na: 2\n",
        ["f.yaml:2:1: invalid YAML: one document per file; remove the second '---'"],
    ),
    (
        "python-tag",
        "x:\n  - !!python/object/apply:os.system [echo hi]\n",
        [
            "f.yaml:2:5 x[0]: YAML tag !!python/object/apply:os.system is not allowed: "
            "config files hold plain data"
        ],
    ),
    (
        "python-name-tag",
        "x: !!python/name:os.system\n",
        [
            "f.yaml:1:4 x: YAML tag !!python/name:os.system is not allowed: "
            "config files hold plain data"
        ],
    ),
    (
        "local-tag",
        "a: !secret TOKEN\n",
        [
            "f.yaml:1:4 a: unsupported YAML tag !secret: config files take plain YAML "
            "(strings, numbers, true/false, null, lists, mappings)"
        ],
    ),
    (
        "binary-tag",
        "a: !!binary aGk=\n",
        [
            "f.yaml:1:4 a: unsupported YAML tag !!binary: config files take plain YAML "
            "(strings, numbers, true/false, null, lists, mappings)"
        ],
    ),
    ("bad-explicit-int", "a: !!int many\n", ["f.yaml:1:4 a: cannot read 'many' as !!int"]),
    (
        "duplicate-keys-everywhere",
        "a: 1\nb:\n  c: 1\n  c: 2\na: 3\n",
        [
            "f.yaml:4:3 b: duplicate key 'c' (first at line 3)",
            "f.yaml:5:1: duplicate key 'a' (first at line 1)",
        ],
    ),
    (
        "complex-key",
        "? [a, b]\n: 1\n",
        ["f.yaml:1:3: a key must be a plain value, not a list or a mapping"],
    ),
    ("merge-of-scalar", "a: {<<: 1}\n", ["f.yaml:1:9 a: '<<' merges mappings only"]),
]


@pytest.mark.parametrize(("text", "errors"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_yaml_gives_exact_errors(text: str, errors: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_yaml(text, "f.yaml")
    assert [str(p) for p in caught.value.problems] == errors


def test_positions_are_one_based_keys_and_items() -> None:
    doc = parse_yaml("system: booking\nstreams:\n  pupils:\n    use: [strip, hetu]\n", "f")
    assert doc.positions == {
        (): (1, 1),
        ("system",): (1, 1),
        ("streams",): (2, 1),
        ("streams", "pupils"): (3, 3),
        ("streams", "pupils", "use"): (4, 5),
        ("streams", "pupils", "use", 0): (4, 11),
        ("streams", "pupils", "use", 1): (4, 18),
    }


def test_position_falls_back_to_nearest_ancestor() -> None:
    doc = parse_yaml("streams:\n  pupils: {mapping: m.yaml}\n", "f")
    assert doc.position(("streams", "pupils", "paginator", "type")) == (2, 3)
    assert doc.position(("nothing", "here")) == (1, 1)
    assert doc.problem(("streams", "pupils", "x"), "bad").line == 2


def test_position_of_merged_keys_is_where_they_are_written() -> None:
    doc = parse_yaml("d: &d {a: 1}\ne:\n  b: 2\n  <<: *d\n", "f")
    assert doc.position(("e", "a")) == (1, 8)
    assert doc.position(("e", "b")) == (3, 3)


PATHS: list[tuple[str, Any, tuple[Any, ...]]] = [
    ("fields.email.use[0]", {"fields": {"email": {}}}, ("fields", "email", "use", 0)),
    (
        "fields.address.street.use[1]",
        {"fields": {"address.street": {"use": ["a", "b"]}}},
        ("fields", "address.street", "use", 1),
    ),
    ("a.b.c", None, ("a", "b", "c")),
    ("", {}, ()),
]


@pytest.mark.parametrize(("dotted", "data", "path"), PATHS)
def test_parse_path_matches_dotted_keys(dotted: str, data: Any, path: tuple[Any, ...]) -> None:
    assert parse_path(dotted, data) == path
    if data:
        assert format_path(path) == dotted


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("title: {sv: Skolan, fi: Kansakoulu Åbo}\n".encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_yaml(path, "latin1.yaml")
    assert str(caught.value) == "latin1.yaml: not UTF-8 text (byte 35): save the file as UTF-8"
