"""Named attack: YAML tags and alias bombs in the files users write (hub, system, mapping).

Each file is fed to the real command line (`islandhub --project P sync ...`, `mapping check`)
in this process: the answer must be exit code 2 with the file, line and reason on stderr,
within seconds, and a tag that would run code under an unsafe loader must never run it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from islandhub.cli import main
from tests.hostile.harness import ISLANDS, MAPPING, write_project

SYSTEM = "config/systems/csv.yaml"
MAPPING_FILE = "mappings/csv/people.yaml"
# Tags that construct Python objects under yaml.load/FullLoader/UnsafeLoader (the last ones
# are harmless there but still no plain data); `{marker}` is a file the code would create.
TAGS = {
    "object/apply": "!!python/object/apply:os.system ['touch {marker}']",
    "object/new": "!!python/object/new:subprocess.check_call [['touch', '{marker}']]",
    "name": "!!python/name:os.system",
    "module": "!!python/module:os",
    "long form": "!<tag:yaml.org,2002:python/object/apply:os.system> ['touch {marker}']",
    "on a key": None,  # written below: a tagged mapping key
    "binary": "!!binary dG91Y2g=",
    "custom": "!Ref AWS::Region",
}
# Where a value goes in each file: a key every file accepts, read or not (x- keys of a
# mapping are ignored by its schema, yet still parsed).
PLACES = {
    "config/hub.yaml": "timezone: {value}\n",
    SYSTEM: "title: {value}\n",
    MAPPING_FILE: "x-extra: {value}\n",
}


def project_with(tmp_path: Path, file: str, text: str) -> Path:
    """The fuzz project's csv island, with `text` appended to `file`."""
    root = tmp_path / "project"
    root.mkdir()
    write_project(root, {"csv": (ISLANDS["csv"], MAPPING.format(system="csv"))})
    with (root / file).open("a") as handle:
        handle.write(text)
    return root


def run(root: Path, *argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["--project", str(root), *argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("file", PLACES)
@pytest.mark.parametrize("tag", TAGS)
def test_a_yaml_tag_is_refused_with_its_place_and_never_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], file: str, tag: str
) -> None:
    marker = tmp_path / "pwned"
    if TAGS[tag] is None:
        key = PLACES[file].split(":")[0]
        text = f"{key}:\n  ? !!python/name:os.system k\n  : v\n"
    else:
        text = PLACES[file].format(value=str(TAGS[tag]).format(marker=marker))
    root = project_with(tmp_path, file, text)
    code, err = run(root, "sync", "csv", capsys=capsys)
    assert code == 2, err
    assert f"{file}:" in err  # file:line:column
    assert "not allowed" in err or "unsupported YAML tag" in err or "plain value" in err
    assert "Traceback" not in err
    if file == MAPPING_FILE:
        code, err = run(root, "mapping", "check", str(root / file), capsys=capsys)
        assert code == 2 and "Traceback" not in err
    assert not marker.exists()


def laughs(levels: int) -> str:
    """Aliases of aliases: 10 levels of ten copies is ten billion strings once built."""
    lines = ["  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels + 1):
        lines.append(f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]")
    return "x-laughs:\n" + "\n".join(lines) + "\n"


BOMBS = {
    "billion laughs": (laughs(10), "expands to more than"),
    "alias inside its own anchor": ("x-loop: &loop [*loop]\n", "nested too deeply"),
    "deep nesting": ("x-deep: " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply"),
}


@pytest.mark.parametrize("file", [SYSTEM, MAPPING_FILE])
@pytest.mark.parametrize("bomb", BOMBS)
def test_alias_bombs_and_deep_nesting_are_refused_in_seconds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], file: str, bomb: str
) -> None:
    text, reason = BOMBS[bomb]
    if file == SYSTEM:
        text = text.replace("x-", "title_")  # a system file has no x- keys; any key will do
    root = project_with(tmp_path, file, text)
    began = time.process_time()  # CPU time: other processes on the machine do not count
    code, err = run(root, "sync", "csv", capsys=capsys)
    assert time.process_time() - began < 20
    assert code == 2, err
    assert file in err and reason in err, err
    assert "Traceback" not in err
