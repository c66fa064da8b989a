"""Loads hub.yaml, systems/*.yaml and mappings/**.yaml; validates them against schemas/.

Settings are plain data, loaded once and passed in. Every problem found in any file is
collected and raised at once as a ConfigError naming file, line, column and path.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import json
import os
import re
import zoneinfo
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema.exceptions import best_match

from connectors import registry
from connectors.base import Connector
from islandhub.errors import STORE_URL_ADVICE, ConfigError, Problem
from islandhub.mapping import Mapping
from islandhub.quality.settings import QualitySettings
from islandhub.quality.settings import parse as parse_quality
from islandhub.quality.settings import problems as quality_problems
from islandhub.yamlsource import JsonPath, YamlDocument, load_yaml, parse_path

Environ = collections.abc.Mapping[str, str]

#: The JSON Schemas of the files users write (shipped next to the package).
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
DEFAULT_STORE_URL = "sqlite:///var/islandhub.db"
STORE_URL_ENV = "ISLANDHUB_STORE_URL"
PROJECT_ENV = "ISLANDHUB_PROJECT"
# Keys of a stream the hub reads itself; every other key is the connector kind's.
HUB_STREAM_KEYS = frozenset({"mapping", "activity"})
SECRET_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_SYSTEM_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_SOURCE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
SECRET_ADVICE = (
    "write {secret: NAME} and set NAME in the environment or as an Airflow variable; "
    "never the value itself"
)


@dataclass(frozen=True)
class HubSettings:
    """config/hub.yaml."""

    store_url: str  # resolved: a relative sqlite path is made absolute against the project
    timezone: str = "Europe/Helsinki"
    priority: tuple[str, ...] = ()  # survivorship: systems whose values win, first first
    # `api:` as written (schema-checked); islandhub.api.settings reads its key files and
    # secrets only when the API starts, so a missing key file never stops a sync.
    api: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StreamConfig:
    """One stream of a system: its mapping and the connector's own options."""

    name: str
    mapping: Mapping
    options: dict[str, Any] = field(default_factory=dict)  # without the hub's own keys
    # What the stream's records are as activities of a person (bookings, cases, signups):
    # {type, date, title} naming payload fields; empty for plain person records.
    activity: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SystemConfig:
    """config/systems/<system>.yaml: one island."""

    system: str
    connector: str
    connection: dict[str, Any]
    streams: dict[str, StreamConfig]
    title: dict[str, str] = field(default_factory=dict)
    owner: dict[str, str] = field(default_factory=dict)
    schedule: str | None = None
    quality: dict[str, Any] = field(default_factory=dict)  # as written
    quality_settings: QualitySettings = field(default_factory=QualitySettings)  # parsed
    # How long landed raw payloads and quarantined records are kept, and when the island's
    # records are anonymised (days); empty: kept while the island keeps them.
    retention: dict[str, Any] = field(default_factory=dict)
    file: Path | None = None


@dataclass(frozen=True)
class Project:
    """A hub project folder: config/ and mappings/ and everything loaded from them."""

    root: Path
    hub: HubSettings
    systems: dict[str, SystemConfig]


# --- finding and loading a project -------------------------------------------------------


def find_project(
    explicit: str | Path | None, *, environ: Environ | None = None, cwd: Path | None = None
) -> Path:
    """Find the project folder: --project, else ISLANDHUB_PROJECT, else the current folder.

    The current folder counts only if it has config/hub.yaml; `environ` and `cwd` default to
    the process's own and are parameters so that callers and tests can pass them explicitly.
    """
    environ = os.environ if environ is None else environ
    for given, origin in ((explicit, "--project"), (environ.get(PROJECT_ENV), PROJECT_ENV)):
        if given:
            folder = Path(given).expanduser().resolve()
            if folder.is_file():
                raise ConfigError(
                    f"{origin} {given}: is a file; name the project folder (the one holding "
                    "config/hub.yaml)"
                )
            if not folder.is_dir():
                raise ConfigError(f"{origin} {given}: no such folder")
            return folder
    here = (cwd or Path.cwd()).resolve()
    if (here / "config" / "hub.yaml").is_file():
        return here
    raise ConfigError(
        f"no islandhub project here: {here} has no config/hub.yaml. Run islandhub in a project "
        f"folder, or name one with `islandhub --project DIR ...` or {PROJECT_ENV}=DIR"
    )


def load_project(root: Path, *, environ: Environ | None = None) -> Project:
    """Load and validate every file of the project; raise ConfigError listing all problems.

    The store URL comes from hub.yaml `store` unless ISLANDHUB_STORE_URL is set in `environ`
    (default: the process environment); a relative sqlite path is made absolute against root.
    """
    environ = os.environ if environ is None else environ
    loader = _ProjectLoader(Path(root).resolve())
    hub = loader.hub(environ.get(STORE_URL_ENV) or None)
    systems = loader.systems()
    loader.check_priority(systems)
    loader.check_references(systems)
    if loader.problems or hub is None:
        raise ConfigError(_sorted(loader.problems))
    from islandhub.privacy.crypto import use_project

    # Without the secret, every caller (CLI, Airflow tasks, the demo) seals national ids with
    # the development key of this project's var/keys, never one of a working directory.
    use_project(loader.root)
    return Project(loader.root, hub, systems)


def load_system_file(root: Path, system: str) -> SystemConfig:
    """Load and validate one island's system file (and its mappings) without the others."""
    loader = _ProjectLoader(Path(root).resolve())
    path = loader.root / "config" / "systems" / f"{system}.yaml"
    if not path.is_file():
        raise ConfigError([Problem("no such file", file=loader.display(path))])
    loaded = loader.system(path)
    if loader.problems or loaded is None:
        raise ConfigError(_sorted(loader.problems))
    return loaded


def load_mapping_file(path: str | Path, root: Path | None = None) -> Mapping:
    """Load and validate one mapping file alone (`islandhub mapping check FILE`).

    Errors name the file relative to `root` when it is inside it, else as given.
    """
    path = Path(path)
    file = _display(path, root) if root else str(path)
    if not path.is_file():
        raise ConfigError([Problem("no such file", file=file)])
    problems: list[Problem] = []
    doc = _read(path, file, problems)
    mapping = _mapping_from(doc, problems) if doc else None
    if problems or mapping is None:
        raise ConfigError(_sorted(problems))
    return mapping


class _ProjectLoader:
    """Reads one project's files, collecting every problem instead of stopping at the first."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.problems: list[Problem] = []
        self.hub_doc: YamlDocument | None = None
        self._mappings: dict[Path, tuple[YamlDocument | None, Mapping | None]] = {}

    def display(self, path: Path) -> str:
        return _display(path, self.root)

    def read(self, path: Path) -> YamlDocument | None:
        return _read(path, self.display(path), self.problems)

    def hub(self, store_override: str | None) -> HubSettings | None:
        path = self.root / "config" / "hub.yaml"
        if not path.is_file():
            message = f"not found in the project folder {self.root}; every project needs one"
            self.problems.append(Problem(message, file="config/hub.yaml"))
            return None
        doc = self.hub_doc = self.read(path)
        if doc is None:
            return None
        valid = self.valid(doc, _schema("hub"))
        data = doc.data if isinstance(doc.data, dict) else {}
        problems = [*_timezone_problems(doc, data), *_store_problems(doc, data)]
        if store_override:
            problems.extend(_store_kind_problems(store_override, None))
        self.problems.extend(problems)
        if problems or not valid:
            return None
        store = store_override or data.get("store", DEFAULT_STORE_URL)
        priority = tuple(data.get("survivorship", {}).get("priority", ()))
        timezone = data.get("timezone", HubSettings.timezone)
        api = data.get("api") or {}
        return HubSettings(resolve_store_url(store, self.root), timezone, priority, api)

    def valid(self, doc: YamlDocument, schema: dict[str, Any], at: JsonPath = ()) -> bool:
        data = _dig(doc.data, *at)
        problems = validate(doc, schema, {} if data is None else data, at)
        self.problems.extend(problems)
        return not problems

    def systems(self) -> dict[str, SystemConfig]:
        folder = self.root / "config" / "systems"
        for stray in sorted(folder.glob("*.yml")):
            message = f"system files end in .yaml: rename it to {stray.stem}.yaml"
            self.problems.append(Problem(message, file=self.display(stray)))
        loaded = (self.system(path) for path in sorted(folder.glob("*.yaml")))
        return {system.system: system for system in loaded if system is not None}

    def system(self, path: Path) -> SystemConfig | None:
        doc = self.read(path)
        if doc is None:
            return None
        data = doc.data if doc.data is not None else {}
        valid = self.valid(doc, _schema("system"))
        if not isinstance(data, dict):
            return None
        before = len(self.problems)
        self.problems.extend(_system_problems(doc, data, path.stem))
        kind = self.connector(doc, data)
        streams = self.streams(doc, data, path.stem, kind)
        if streams is not None:
            targets = (t for s in streams.values() for t in s.mapping.target_paths)
            self.problems.extend(quality_problems(doc, data.get("quality"), targets))
        if not valid or kind is None or streams is None or len(self.problems) > before:
            return None
        return SystemConfig(
            system=data["system"],
            connector=data["connector"],
            connection=data.get("connection", {}),
            streams=streams,
            title=data.get("title", {}),
            owner=data.get("owner", {}),
            schedule=data.get("schedule"),
            quality=data.get("quality", {}),
            quality_settings=parse_quality(data.get("quality")),
            retention=data.get("retention", {}),
            file=path,
        )

    def connector(self, doc: YamlDocument, data: dict[str, Any]) -> type[Connector] | None:
        """Look up the connector class the file names and validate its connection."""
        kind = data.get("connector")
        if not isinstance(kind, str) or not kind:
            return None
        try:
            cls = registry.connector_class(kind)
        except ConfigError as exc:
            self.problems.extend(_unknown_kind(doc, kind, exc))
            return None
        except ImportError as exc:
            message = f"connector kind {kind!r} could not be loaded: {exc}"
            self.problems.append(doc.problem(("connector",), message))
            return None
        if isinstance(data.get("connection", {}), dict):
            self.valid(doc, cls.connection_schema, ("connection",))
        return cls

    def streams(
        self, doc: YamlDocument, data: dict[str, Any], system: str, kind: type[Connector] | None
    ) -> dict[str, StreamConfig] | None:
        streams = data.get("streams")
        if not isinstance(streams, dict):
            return None
        loaded = {}
        for name, spec in streams.items():
            if not isinstance(spec, dict):
                continue
            options = {key: value for key, value in spec.items() if key not in HUB_STREAM_KEYS}
            if kind is not None:
                schema = _with_hub_keys(kind.stream_schema)
                self.problems.extend(validate(doc, schema, options, ("streams", name)))
            mapping = self.stream_mapping(doc, system, name, spec.get("mapping"))
            if mapping is not None and mapping.push is not None and kind is not None:
                self.problems.extend(_push_problems(doc, name, kind, options))
            if mapping is not None:
                loaded[name] = StreamConfig(name, mapping, options, spec.get("activity", {}))
        return loaded if len(loaded) == len(streams) else None

    def stream_mapping(
        self, doc: YamlDocument, system: str, stream: str, relative: Any
    ) -> Mapping | None:
        if not isinstance(relative, str) or not relative:
            return None
        path = (self.root / relative).resolve()
        if not path.is_file():
            message = f"mapping file {relative} not found (paths are relative to {self.root})"
            self.problems.append(doc.problem(("streams", stream, "mapping"), message))
            return None
        if path not in self._mappings:
            mapping_doc = self.read(path)
            mapping = _mapping_from(mapping_doc, self.problems) if mapping_doc else None
            self._mappings[path] = (mapping_doc, mapping)
        mapping_doc, mapping = self._mappings[path]
        if mapping_doc is None or not _source_matches(
            mapping_doc, system, stream, doc.file, self.problems
        ):
            return None
        return mapping

    def check_priority(self, systems: dict[str, SystemConfig]) -> None:
        """Survivorship may only rank systems that have a file in config/systems."""
        doc = self.hub_doc
        if doc is None:
            return
        priority = _dig(doc.data, "survivorship", "priority")
        configured = sorted(p.stem for p in (self.root / "config" / "systems").glob("*.yaml"))
        for i, name in enumerate(priority if isinstance(priority, list) else []):
            if isinstance(name, str) and name not in configured:
                message = f"{name!r} is not a configured system; configured: "
                message += (", ".join(configured) or "none") + _suggest(name, configured)
                self.problems.append(doc.problem(("survivorship", "priority", i), message))

    def check_references(self, systems: dict[str, SystemConfig]) -> None:
        """A mapping's `references:` may only name streams that a system file defines.

        A system whose file is there but did not load is not judged: its own problems are
        reported already, and its streams are unknown.
        """
        present = {p.stem for p in (self.root / "config" / "systems").glob("*.yaml")}
        known = sorted(f"{s}.{t}" for s, config in systems.items() for t in config.streams)
        for doc, mapping in self._mappings.values():
            if doc is None or mapping is None:
                continue
            for target in mapping.references:
                system = target.split(".", 1)[0]
                if target in known or (system in present and system not in systems):
                    continue
                message = f"{target!r} is not a stream of any system file; streams: "
                message += (", ".join(known) or "none") + _suggest(target, known)
                self.problems.append(doc.problem(("references", target), message))


# --- pieces of the loader ----------------------------------------------------------------


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _read(path: Path, file: str, problems: list[Problem]) -> YamlDocument | None:
    try:
        return load_yaml(path, file)
    except ConfigError as exc:
        problems.extend(exc.problems)
        return None


def _display(path: Path, root: Path | None) -> str:
    """Name a file relative to the project folder when it is inside it."""
    if root is not None:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return str(path)


def _mapping_from(doc: YamlDocument, problems: list[Problem]) -> Mapping | None:
    """Validate a mapping file (schema, then the engine's checks) and compile it."""
    spec = doc.data if doc.data is not None else {}
    schema_problems = validate(doc, _schema("mapping"), spec)
    # The engine's checks take any shape of data, so they run even when the schema found
    # something: a file's every problem is reported at once, not in two rounds. Where both
    # speak of one place, the schema's words stand.
    said = {p.path for p in schema_problems} | {(p.line, p.column) for p in schema_problems}
    engine_problems = [
        q
        for q in (_place(doc, p) for p in Mapping.problems(spec))
        if q.path not in said and (q.line, q.column) not in said
    ]
    if schema_problems or engine_problems:
        problems.extend(schema_problems + engine_problems)
        return None
    try:
        return Mapping.from_spec(spec, file=doc.file)
    except ConfigError as exc:
        problems.extend(_place(doc, p) for p in exc.problems)
        return None


def _place(doc: YamlDocument, problem: Problem) -> Problem:
    """Give a problem from the mapping engine (dotted path only) its file, line and column."""
    if problem.file is not None:
        return problem
    line, column = doc.position(parse_path(problem.path, doc.data))
    return dataclasses.replace(problem, file=doc.file, line=line, column=column)


def _source_matches(
    doc: YamlDocument, system: str, stream: str, system_file: str, problems: list[Problem]
) -> bool:
    source = doc.data.get("source") if isinstance(doc.data, dict) else None
    expected = f"{system}.{stream}"
    if not isinstance(source, str) or source == expected or not _SOURCE.match(expected):
        return True  # a malformed source or stream name is reported by the schema already
    if not _SOURCE.match(source):
        return False
    message = f"{source!r} should be {expected!r}: {system_file} uses this mapping for that stream"
    problems.append(doc.problem(("source",), message))
    return False


def _system_problems(doc: YamlDocument, data: dict[str, Any], stem: str) -> Iterator[Problem]:
    """Check beyond the schema: the id is the file name, the schedule is cron."""
    system = data.get("system")
    if isinstance(system, str) and _SYSTEM_ID.match(system) and system != stem:
        yield doc.problem(
            ("system",),
            f"{system!r} must equal the file name {stem!r}: "
            f"write system: {stem}, or rename the file to {system}.yaml",
        )
    schedule = data.get("schedule")
    if isinstance(schedule, str):
        problem = cron_problem(schedule)
        if problem:
            yield doc.problem(("schedule",), problem)


def _push_problems(
    doc: YamlDocument, stream: str, kind: type[Connector], options: dict[str, Any]
) -> list[Problem]:
    """A stream whose mapping has a `push:` section must be able to take writes."""
    problem = kind.push_problem(options)
    if problem is None:
        return []
    message = f"the mapping has a push: section, but {problem}"
    return [doc.problem(("streams", stream, "mapping"), message)]


def _unknown_kind(doc: YamlDocument, kind: str, exc: ConfigError) -> list[Problem]:
    known = registry.known_kinds()
    if kind in known:  # registered, but the entry point is broken: the registry says how
        return [doc.problem(("connector",), p.message) for p in exc.problems]
    message = f"unknown connector kind {kind!r}; known kinds: {', '.join(known) or 'none'}"
    return [doc.problem(("connector",), message + _suggest(kind, known))]


_CRON_FIELD = re.compile(r"^[0-9A-Za-z*?/,\-#]+$")
_CRON_MACROS = {"@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually"}


def cron_problem(schedule: str) -> str | None:
    """Say what is wrong with a cron schedule, or None when it has 5 sensible fields."""
    if schedule.strip() in _CRON_MACROS:
        return None
    fields = schedule.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        return (
            f"{schedule!r} is not a cron schedule: expected 5 fields "
            f"(minute hour day-of-month month day-of-week), got {len(fields)}; "
            "or null for manual runs only"
        )
    return None


def _timezone_problems(doc: YamlDocument, data: dict[str, Any]) -> Iterator[Problem]:
    name = data.get("timezone")
    if not isinstance(name, str):
        return
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        known = sorted(zoneinfo.available_timezones())
        message = f"unknown time zone {name!r}" + _suggest(name, known)
        yield doc.problem(("timezone",), message)


def _store_problems(doc: YamlDocument, data: dict[str, Any]) -> Iterator[Problem]:
    store = data.get("store")
    if isinstance(store, str) and urlsplit(store).password:
        yield doc.problem(
            ("store",),
            f"the store URL holds a password: set {STORE_URL_ENV} in the environment "
            "instead; never write the password in a file",
        )
    elif isinstance(store, str):
        yield from _store_kind_problems(store, doc)


# The databases the store is built and tested for; the scheme names the database first.
STORE_BACKENDS = ("sqlite", "postgresql")


def _store_kind_problems(url: str, doc: YamlDocument | None) -> Iterator[Problem]:
    """A store URL of a database the hub does not store in (`postgres://` is a common slip)."""
    scheme = urlsplit(url).scheme if "://" in url else ""
    if scheme.split("+")[0] in STORE_BACKENDS:
        return
    what = f"{scheme!r} is not a database islandhub stores in" if scheme else "not a URL"
    message = f"{what}: {STORE_URL_ADVICE}"
    yield doc.problem(("store",), message) if doc else Problem(f"{STORE_URL_ENV}: {message}")


_SQLITE = re.compile(r"^(sqlite(?:\+\w+)?):///(.*)$")


def resolve_store_url(url: str, root: Path) -> str:
    """Make a relative sqlite path absolute against the project folder; leave others alone."""
    match = _SQLITE.match(url)
    if not match:
        return url
    database, sep, query = match.group(2).partition("?")
    if not database or database.startswith(("/", ":memory:", "file:")):
        return url
    return f"{match.group(1)}:///{(root / database).as_posix()}{sep}{query}"


def _sorted(problems: Iterable[Problem]) -> list[Problem]:
    """Drop repeats (one file can be reached twice) and order by file, line, column."""
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.file or "", p.line or 0, p.column or 0))


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


# --- JSON Schema validation with positions and plain-language messages -------------------


@cache
def _schema(name: str) -> dict[str, Any]:
    with (SCHEMA_DIR / f"{name}.schema.json").open(encoding="utf-8") as f:
        schema: dict[str, Any] = json.load(f)
    return schema


def _secret_keyword(
    validator: Any, value: Any, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    """`"secret": true`: the value must be a reference {secret: NAME}, never the value."""
    if value is not True:
        return
    if not (isinstance(instance, dict) and "secret" in instance):
        yield ValidationError(_LITERAL_SECRET)
        return
    extra = sorted(str(key) for key in instance if key != "secret")
    if extra:
        yield ValidationError(f"a secret reference has one key, secret; unknown key {extra[0]!r}")
    name = instance["secret"]
    if not (isinstance(name, str) and SECRET_NAME.match(name)):
        # the "name" may well be the secret itself pasted in: do not show it
        yield ValidationError(
            "secret names are upper case letters, digits and _, starting with a letter "
            "(like BOOKING_API_TOKEN); the value itself never goes in a file"
        )


_LITERAL_SECRET = "literal secret"
_Validator = validators.extend(Draft202012Validator, {"secret": _secret_keyword})


def _secret_aware(schema: Any) -> Any:
    """Copy a connector schema so that every `secret: true` property takes only a reference."""
    if isinstance(schema, dict):
        if schema.get("secret") is True:
            return {"secret": True}
        return {key: _secret_aware(value) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_secret_aware(item) for item in schema]
    return schema


def validate(
    doc: YamlDocument, schema: dict[str, Any], data: Any, at: JsonPath = ()
) -> list[Problem]:
    """Problems of `data` (found at path `at` in `doc`) against a JSON Schema, positioned."""
    validator = _Validator(
        _secret_aware(schema), format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    problems: list[Problem] = []
    for error in validator.iter_errors(data):
        problems.extend(_problems(doc, error, at))
    return list(dict.fromkeys(problems))


def _problems(doc: YamlDocument, error: ValidationError, at: JsonPath) -> list[Problem]:
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator in ("anyOf", "oneOf") and error.context and "x-message" not in schema:
        return _problems(doc, best_match(error.context), at)
    path = (*at, *error.absolute_path)
    instance = error.instance
    if error.validator == "required" and isinstance(instance, dict):
        required: list[str] = list(error.validator_value)  # type: ignore[arg-type]
        missing = [key for key in required if key not in instance]
        return [doc.problem(path, f"missing required key {key!r}") for key in missing]
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        return [
            doc.problem(path, _unknown_key(key, schema), at=(*path, key))
            for key in _extra_keys(instance, schema)
        ]
    if list(error.absolute_schema_path)[-2:-1] == ["propertyNames"]:
        return [doc.problem(path, _message(error, path), at=(*path, instance))]
    return [doc.problem(path, _message(error, path))]


def _with_hub_keys(stream_schema: dict[str, Any]) -> dict[str, Any]:
    """A kind's stream schema that also knows the hub's own stream keys.

    They are taken out of the options before validation, so this changes no verdict; it
    lets a typo of one (`mappng`) be answered with "did you mean 'mapping'?".
    """
    known = {**stream_schema.get("properties", {}), **{key: {} for key in HUB_STREAM_KEYS}}
    return {**stream_schema, "properties": known}


def _extra_keys(instance: dict[Any, Any], schema: dict[str, Any]) -> list[Any]:
    known = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    return [
        key
        for key in instance
        if key not in known and not any(re.search(p, str(key)) for p in patterns)
    ]


def _unknown_key(key: Any, schema: dict[str, Any]) -> str:
    return f"unknown key {key!r}" + _suggest(str(key), schema.get("properties", {}))


_EXPECTED = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
    "object": "a mapping",
    "array": "a list",
}
_FORMATS = {"email": "email address", "uri": "URL", "date": "date (YYYY-MM-DD)"}


def _message(error: ValidationError, path: JsonPath) -> str:
    """Say in plain words what a JSON Schema validator found wrong."""
    v, instance = str(error.validator), error.instance
    value: Any = error.validator_value
    schema = error.schema if isinstance(error.schema, dict) else {}
    if v == "secret" and error.message == _LITERAL_SECRET:
        key = next((p for p in reversed(path) if isinstance(p, str)), "this value")
        return f"{key} is a secret: {SECRET_ADVICE}"
    if v == "type":
        types = [value] if isinstance(value, str) else list(value)
        expected = " or ".join(_EXPECTED.get(t, t) for t in types)
        return f"expected {expected}, got {_got(instance)}"
    if v == "enum":
        return f"{_show(instance)} is not one of {', '.join(_plain(x) for x in value)}"
    if v == "const":
        return f"must be {_plain(value)}"
    if v == "pattern":
        hint = f" ({schema['x-hint']})" if "x-hint" in schema else ""
        return f"{_show(instance)} does not match {value.strip('^$')}{hint}"
    if v == "format":
        return f"{_show(instance)} is not a valid {_FORMATS.get(value, value)}"
    if v in ("anyOf", "oneOf") and "x-message" in schema:
        return str(schema["x-message"])
    return _LIMITS.get(v, lambda _: error.message)(value)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


_LIMITS = {
    "minimum": lambda n: f"must be at least {_plain(n)}",
    "maximum": lambda n: f"must be at most {_plain(n)}",
    "exclusiveMinimum": lambda n: f"must be more than {_plain(n)}",
    "exclusiveMaximum": lambda n: f"must be less than {_plain(n)}",
    "minLength": lambda n: "must not be empty" if n == 1 else f"needs {_count(n, 'character')}",
    "maxLength": lambda n: f"must be at most {_count(n, 'character')} long",
    "minItems": lambda n: "must not be empty" if n == 1 else f"needs {_count(n, 'item')}",
    "maxItems": lambda n: f"must have at most {_count(n, 'item')}",
    "minProperties": lambda n: "must not be empty" if n == 1 else f"needs {_count(n, 'key')}",
    "maxProperties": lambda n: f"must have at most {_count(n, 'key')}",
    "uniqueItems": lambda _: "must not list an item twice",
}


def _got(instance: Any) -> str:
    if isinstance(instance, bool):
        return json.dumps(instance)
    if instance is None:
        return "null"
    for kind, name in (
        (str, "a string"),
        (int, "an integer"),
        (float, "a number"),
        (dict, "a mapping"),
        (list, "a list"),
    ):
        if isinstance(instance, kind):
            return name
    return type(instance).__name__


def _plain(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    return str(value)


def _show(instance: Any) -> str:
    text = repr(instance) if isinstance(instance, str) else _plain(instance)
    return text if len(text) <= 60 else text[:57] + "..."
