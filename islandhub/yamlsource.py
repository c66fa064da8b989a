"""Loads one YAML file as plain data, remembering the line and column of every key and item."""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from islandhub.errors import ConfigError, Problem

#: A place in the data: keys of mappings and indexes of lists, from the top down.
JsonPath = tuple[Any, ...]

_TAG = "tag:yaml.org,2002:"
_MERGE = _TAG + "merge"
#: Scalar tags that safe_load resolves and that make sense in a config file.
_SCALAR_TAGS = {_TAG + t for t in ("str", "int", "float", "bool", "null")}
_TIMESTAMP = _TAG + "timestamp"  # kept as the text written: config values are JSON-shaped
#: Values one file may expand to. Aliases are copied where they are used, so aliases of
#: aliases grow exponentially (the YAML "billion laughs"); the biggest real config file
#: holds a few hundred values.
MAX_VALUES = 100_000
TOO_DEEP = "invalid YAML: nested too deeply, or an alias (*name) used inside its own anchor"


class YamlSourceError(ConfigError):
    """One YAML file could not be read: syntax, a forbidden tag, a duplicate key."""


@dataclass(frozen=True)
class YamlDocument:
    """The plain data of one YAML file and the 1-based (line, column) of each of its paths."""

    file: str
    data: Any
    positions: dict[JsonPath, tuple[int, int]]

    def position(self, path: Iterable[Any]) -> tuple[int, int]:
        """Where `path` is written, or its nearest written ancestor (the top: 1:1)."""
        key = tuple(path)
        while key:
            if key in self.positions:
                return self.positions[key]
            key = key[:-1]
        return self.positions.get((), (1, 1))

    def problem(
        self, path: Iterable[Any], message: str, *, at: Iterable[Any] | None = None
    ) -> Problem:
        """Make a Problem named by `path`, positioned at `at` (default: `path` itself)."""
        path = tuple(path)
        line, column = self.position(path if at is None else at)
        return Problem(message, file=self.file, line=line, column=column, path=format_path(path))


def format_path(path: Iterable[Any]) -> str:
    """Write a path the way errors show it: `streams.pupils.use[0]`."""
    text = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def parse_path(dotted: str, data: Any) -> JsonPath:
    """Turn `fields.address.street.use[0]` back into keys, matching dotted keys in `data`."""
    tokens: list[str | int] = [
        int(index) if index else name for name, index in _PART.findall(dotted)
    ]
    path: list[Any] = []
    node = data
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if isinstance(node, dict) and isinstance(token, str):
            token, i = _longest_key(node, tokens, i)
        else:
            i += 1
        path.append(token)
        node = _child(node, token)
    return tuple(path)


def _longest_key(node: dict[Any, Any], tokens: list[str | int], i: int) -> tuple[str, int]:
    """Find the longest run of name tokens from i that is a key of node (keys hold dots)."""
    end = i + 1
    while end < len(tokens) and isinstance(tokens[end], str):
        end += 1
    for stop in range(end, i, -1):
        key = ".".join(str(t) for t in tokens[i:stop])
        if key in node:
            return key, stop
    return str(tokens[i]), i + 1


def _child(node: Any, token: Any) -> Any:
    if isinstance(node, dict):
        return node.get(token)
    if isinstance(node, list) and isinstance(token, int) and 0 <= token < len(node):
        return node[token]
    return None


def load_yaml(path: Path, file: str) -> YamlDocument:
    """Read and parse the YAML file at `path`; `file` is the name errors show for it."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlSourceError(
            [Problem(f"not UTF-8 text (byte {exc.start}): save the file as UTF-8", file=file)]
        ) from None
    return parse_yaml(text, file)


def parse_yaml(text: str, file: str) -> YamlDocument:
    """Parse YAML text with safe_load's rules; raise YamlSourceError naming line and column."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise YamlSourceError([_syntax_problem(exc, file)]) from None
    except yaml.YAMLError as exc:
        raise YamlSourceError([Problem(f"invalid YAML: {exc}", file=file)]) from None
    except RecursionError:
        raise YamlSourceError([Problem(TOO_DEEP, file=file)]) from None
    builder = _Builder(file)
    try:
        data = builder.build(root, ()) if root is not None else None
    except RecursionError:
        raise YamlSourceError([Problem(TOO_DEEP, file=file)]) from None
    except _TooManyValues as exc:
        raise YamlSourceError([exc.problem]) from None
    if builder.problems:
        raise YamlSourceError(builder.problems)
    if root is None:
        builder.positions[()] = (1, 1)
    return YamlDocument(file, data, builder.positions)


def _syntax_problem(exc: yaml.MarkedYAMLError, file: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    message = f"invalid YAML: {exc.problem or exc.context}"
    if exc.problem == "but found another document":
        message = "invalid YAML: one document per file; remove the second '---'"
    elif exc.context and exc.problem and exc.context_mark is not None:
        message += f" ({exc.context} at line {exc.context_mark.line + 1})"
    if "'\\t'" in (exc.problem or ""):  # the scanner shows the tab it met as '\t'"
        message += "; indent with spaces, not tabs"
    if mark is None:
        return Problem(message, file=file)
    return Problem(message, file=file, line=mark.line + 1, column=mark.column + 1)


class _TooManyValues(Exception):
    """The file expands to more than MAX_VALUES values; stops the build at once."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


class _Builder:
    """Turns a composed node tree into plain data, recording positions and problems."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.positions: dict[JsonPath, tuple[int, int]] = {}
        self.problems: list[Problem] = []
        self._constructor = yaml.SafeLoader("")  # only its scalar constructors are used
        self._built = 0

    def build(self, node: Node, path: JsonPath) -> Any:
        self._built += 1
        if self._built > MAX_VALUES:
            line, column = _where(node)
            message = (
                f"the file expands to more than {MAX_VALUES} values: "
                "aliases (*name) that repeat other aliases? Write the values out instead"
            )
            raise _TooManyValues(Problem(message, self.file, line, column, format_path(path)))
        self.positions.setdefault(path, _where(node))
        if isinstance(node, MappingNode):
            return self._mapping(node, path)
        if isinstance(node, SequenceNode):
            return self._sequence(node, path)
        return self._scalar(node, path)

    def _problem(self, node: Node, path: JsonPath, message: str) -> None:
        line, column = _where(node)
        self.problems.append(Problem(message, self.file, line, column, format_path(path)))

    def _tag_ok(self, node: Node, path: JsonPath, standard: str) -> bool:
        if node.tag == standard:
            return True
        if node.tag.startswith(_TAG + "python/") or node.tag.startswith("!!python/"):
            message = f"YAML tag {_short(node.tag)} is not allowed: config files hold plain data"
        else:
            message = (
                f"unsupported YAML tag {_short(node.tag)}: config files take plain YAML "
                "(strings, numbers, true/false, null, lists, mappings)"
            )
        self._problem(node, path, message)
        return False

    def _scalar(self, node: Node, path: JsonPath) -> Any:
        if node.tag == _TIMESTAMP and isinstance(node, ScalarNode) and not node.style:
            return node.value
        if node.tag not in _SCALAR_TAGS:
            self._tag_ok(node, path, _TAG + "str")
            return None
        try:
            return self._constructor.construct_object(node, deep=True)
        except (ValueError, yaml.constructor.ConstructorError):
            self._problem(node, path, f"cannot read {node.value!r} as {_short(node.tag)}")
            return None

    def _sequence(self, node: SequenceNode, path: JsonPath) -> list[Any] | None:
        if not self._tag_ok(node, path, _TAG + "seq"):
            return None
        return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]

    def _mapping(self, node: MappingNode, path: JsonPath) -> dict[Any, Any] | None:
        if not self._tag_ok(node, path, _TAG + "map"):
            return None
        own: dict[Any, Any] = {}
        first_line: dict[Any, int] = {}
        merges = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merges.append(value_node)
                continue
            ok, key = self._key(key_node, path)
            if not ok:
                continue
            if key in own:
                message = f"duplicate key {key!r} (first at line {first_line[key]})"
                self._problem(key_node, path, message)
                continue
            first_line[key] = key_node.start_mark.line + 1
            self.positions.setdefault((*path, key), _where(key_node))
            own[key] = self.build(value_node, (*path, key))
        merged: dict[Any, Any] = {}
        for merge in merges:
            self._merge(merge, path, merged)
        return {**merged, **own}

    def _key(self, node: Node, path: JsonPath) -> tuple[bool, Hashable]:
        if not isinstance(node, ScalarNode):
            self._problem(node, path, "a key must be a plain value, not a list or a mapping")
            return False, None
        before = len(self.problems)
        key = self._scalar(node, path)
        return len(self.problems) == before, key

    def _merge(self, node: Node, path: JsonPath, merged: dict[Any, Any]) -> None:
        """`<<: *anchor` (or a list of anchors): earlier ones win, the mapping's own keys win."""
        sources = node.value if isinstance(node, SequenceNode) else [node]
        for source in reversed(sources):
            if not isinstance(source, MappingNode):
                self._problem(source, path, "'<<' merges mappings only")
                continue
            merged.update(self._mapping(source, path) or {})


def _where(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _short(tag: str) -> str:
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag
