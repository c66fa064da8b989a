"""Invalid projects and mapping files, each with the exact errors it must give (STYLE 6)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, ClassVar

import pytest

from connectors import registry
from connectors.base import CheckResult, Connector
from connectors.files import FilesConnector
from islandhub.config import load_mapping_file, load_project
from islandhub.errors import ConfigError
from islandhub.mapping.transforms import known_transforms

FIXTURES = Path(__file__).parent.parent / "fixtures" / "config"
SECRET_ADVICE = (
    "write {secret: NAME} and set NAME in the environment or as an Airflow variable; "
    "never the value itself"
)


class FakeRestConnector(Connector):
    """A tiny REST-like kind: a secret in its connection, a paginator in its streams."""

    kind = "rest"
    connection_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": ["base_url"],
        "additionalProperties": False,
        "properties": {
            "base_url": {"type": "string"},
            "auth": {
                "type": "object",
                "properties": {
                    "type": {"enum": ["bearer", "basic"]},
                    "token": {"type": "string", "secret": True},
                },
            },
        },
    }
    stream_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "paginator": {
                "type": "object",
                "properties": {
                    "type": {"enum": ["next_url", "page", "offset", "cursor", "link_header"]}
                },
            },
        },
    }

    def check(self) -> CheckResult:
        return CheckResult(True, "fake")

    def pull(self, stream, state):  # type: ignore[no-untyped-def]
        return iter(())


KINDS: dict[str, type[Connector]] = {"files": FilesConnector, "rest": FakeRestConnector}


@pytest.fixture(autouse=True)
def fixed_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """The connector kinds these tests see: the real files kind and the fake rest kind."""

    def connector_class(kind: str) -> type[Connector]:
        if kind not in KINDS:
            raise ConfigError(f"unknown connector kind {kind!r}")
        return KINDS[kind]

    monkeypatch.setattr(registry, "connector_class", connector_class)
    monkeypatch.setattr(registry, "known_kinds", lambda: sorted(KINDS))


def project(tmp_path: Path, base: str, changes: dict[str, str | None]) -> Path:
    """A copy of a valid fixture project with some files replaced (None: removed)."""
    root = tmp_path / base
    shutil.copytree(FIXTURES / "valid" / base, root)
    for name, text in changes.items():
        if text is None:
            (root / name).unlink()
        else:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text, encoding="utf-8")
    return root


def errors_of(root: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_project(root, environ={})
    assert str(caught.value) == "\n".join(str(p) for p in caught.value.problems)
    return str(caught.value).splitlines()


SCHOOL = "config/systems/school.yaml"
SCHOOL_TEXT = (FIXTURES / "valid/archipelago" / SCHOOL).read_text()
PUPILS = "mappings/school/pupils.yaml"
PUPILS_TEXT = (FIXTURES / "valid/archipelago" / PUPILS).read_text()
BOOKING = "config/systems/booking.yaml"
BOOKING_TEXT = (FIXTURES / "valid/booking" / BOOKING).read_text()


def edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


# (id, base project, changed files, exact errors)
INVALID_PROJECTS: list[tuple[str, str, dict[str, str | None], list[str]]] = [
    (
        "yaml-syntax",
        "archipelago",
        {SCHOOL: "system: school\nconnector: files\n  streams: {}\n"},
        [f"{SCHOOL}:3:10: invalid YAML: mapping values are not allowed here"],
    ),
    (
        "tab-indent",
        "archipelago",
        {SCHOOL: edit(SCHOOL_TEXT, "  pupils:", "\tpupils:")},
        [
            f"{SCHOOL}:8:1: invalid YAML: found character '\\t' that cannot start any token"
            "; indent with spaces, not tabs"
        ],
    ),
    (
        "python-tag",
        "archipelago",
        {"config/hub.yaml": "store: !!python/object/apply:os.system ['touch pwned']\n"},
        [
            "config/hub.yaml:1:8 store: YAML tag !!python/object/apply:os.system is not "
            "allowed: config files hold plain data"
        ],
    ),
    (
        "custom-tag",
        "archipelago",
        {"config/hub.yaml": "store: !env ISLANDHUB_STORE\n"},
        [
            "config/hub.yaml:1:8 store: unsupported YAML tag !env: config files take plain "
            "YAML (strings, numbers, true/false, null, lists, mappings)"
        ],
    ),
    (
        "duplicate-key",
        "archipelago",
        {SCHOOL: edit(SCHOOL_TEXT, "connector: files\n", "connector: files\nconnector: sql\n")},
        [f"{SCHOOL}:5:1: duplicate key 'connector' (first at line 4)"],
    ),
    (
        "unknown-key-with-suggestion",
        "archipelago",
        {SCHOOL: edit(SCHOOL_TEXT, "schedule:", "shedule:")},
        [f"{SCHOOL}:5:1: unknown key 'shedule'; did you mean 'schedule'?"],
    ),
    (
        # The hub's own stream keys are suggested too, not only the connector kind's.
        "stream-mapping-key-typo",
        "archipelago",
        {SCHOOL: edit(SCHOOL_TEXT, "    mapping: mappings", "    mappng: mappings")},
        [
            f"{SCHOOL}:8:3 streams.pupils: missing required key 'mapping'",
            f"{SCHOOL}:9:5 streams.pupils: unknown key 'mappng'; did you mean 'mapping'?",
        ],
    ),
    (
        "unknown-nested-key",
        "archipelago",
        {SCHOOL: edit(SCHOOL_TEXT, "email: skola", "mail: skola")},
        [
            f"{SCHOOL}:3:1 owner: missing required key 'email'",
            f"{SCHOOL}:3:33 owner: unknown key 'mail'; did you mean 'email'?",
        ],
    ),
    (
        "wrong-type",
        "archipelago",
        {SCHOOL: edit(SCHOOL_TEXT, "max_quarantine_ratio: 0.05", 'max_quarantine_ratio: "5%"')},
        [f"{SCHOOL}:14:11 quality.max_quarantine_ratio: expected a number, got a string"],
    ),
    (
        "out-of-range",
        "archipelago",
        {SCHOOL: edit(SCHOOL_TEXT, "max_quarantine_ratio: 0.05", "max_quarantine_ratio: 5")},
        [f"{SCHOOL}:14:11 quality.max_quarantine_ratio: must be at most 1"],
    ),
    (
        "system-id-pattern",
        "archipelago",
        {SCHOOL: edit(SCHOOL_TEXT, "system: school", "system: School")},
        [
            f"{SCHOOL}:1:1 system: 'School' does not match [a-z][a-z0-9_]* (system ids are "
            "lower case letters, digits and _, starting with a letter)"
        ],
    ),
    (
        "system-id-not-file-name",
        "archipelago",
        {SCHOOL: edit(SCHOOL_TEXT, "system: school", "system: schools")},
        [
            f"{SCHOOL}:1:1 system: 'schools' must equal the file name 'school': "
            "write system: school, or rename the file to schools.yaml"
        ],
    ),
    (
        "empty-system-file",
        "archipelago",
        {SCHOOL: "# to do\n"},
        [
            f"{SCHOOL}:1:1: missing required key 'system'",
            f"{SCHOOL}:1:1: missing required key 'connector'",
            f"{SCHOOL}:1:1: missing required key 'streams'",
        ],
    ),
    (
        "stream-without-mapping",
        "archipelago",
        {SCHOOL: edit(SCHOOL_TEXT, "    mapping: mappings/school/pupils.yaml\n", "")},
        [f"{SCHOOL}:8:3 streams.pupils: missing required key 'mapping'"],
    ),
    (
        "stream-name-pattern",
        "archipelago",
        {SCHOOL: edit(SCHOOL_TEXT, "  pupils:", "  Pupils:")},
        [
            f"{SCHOOL}:8:3 streams: 'Pupils' does not match [a-z][a-z0-9_]* (stream names are "
            "lower case letters, digits and _, starting with a letter)"
        ],
    ),
    (
        "missing-mapping-file",
        "archipelago",
        {PUPILS: None},
        [
            f"{SCHOOL}:9:5 streams.pupils.mapping: mapping file mappings/school/pupils.yaml "
            "not found (paths are relative to {root})"
        ],
    ),
    (
        "mapping-source-mismatch",
        "archipelago",
        {PUPILS: edit(PUPILS_TEXT, "source: school.pupils", "source: school.pupil")},
        [
            f"{PUPILS}:1:1 source: 'school.pupil' should be 'school.pupils': "
            f"{SCHOOL} uses this mapping for that stream"
        ],
    ),
    (
        "mapping-source-pattern",
        "archipelago",
        {PUPILS: edit(PUPILS_TEXT, "source: school.pupils", "source: pupils")},
        [
            f"{PUPILS}:1:1 source: 'pupils' does not match "
            r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]* (write <system>.<stream>, e.g. "
            "booking.reservations)"
        ],
    ),
    (
        "unknown-transform",
        "archipelago",
        {PUPILS: edit(PUPILS_TEXT, "use: [strip, hetu]", "use: [strip, hetuu]")},
        [
            f"{PUPILS}:5:43 fields.national_id.use[1]: unknown transform 'hetuu'; "
            f"known transforms: {', '.join(known_transforms())}"
        ],
    ),
    (
        "transform-position-in-dotted-target",
        "archipelago",
        {PUPILS: edit(PUPILS_TEXT, "use: [postal_code]", "use: [zip_code]")},
        [
            f"{PUPILS}:11:42 fields.address.postal_code.use[0]: unknown transform 'zip_code'; "
            f"known transforms: {', '.join(known_transforms())}"
        ],
    ),
    (
        "mapping-field-unknown-key",
        "archipelago",
        {PUPILS: edit(PUPILS_TEXT, "{from: first_names}", "{from: first_names, uses: [strip]}")},
        [f"{PUPILS}:6:37 fields.given_name: unknown key 'uses'; did you mean 'use'?"],
    ),
    (
        "mapping-entity-enum",
        "archipelago",
        {PUPILS: edit(PUPILS_TEXT, "entity: resident", "entity: person")},
        [f"{PUPILS}:2:1 entity: 'person' is not one of resident"],
    ),
    (
        "mapping-transform-shape",
        "archipelago",
        {PUPILS: edit(PUPILS_TEXT, '[{date: "%d.%m.%Y"}]', '[{date: "%d.%m.%Y", lenient: 1}]')},
        [
            f"{PUPILS}:8:36 fields.birth_date.use[0]: a transform is a name (strip) or a "
            'mapping with one key, its name ({date: "%d.%m.%Y"})'
        ],
    ),
    (
        "unknown-connector-kind",
        "archipelago",
        {SCHOOL: edit(SCHOOL_TEXT, "connector: files", "connector: file")},
        [
            f"{SCHOOL}:4:1 connector: unknown connector kind 'file'; known kinds: files, rest; "
            "did you mean 'files'?"
        ],
    ),
    (
        "connector-stream-option",
        "archipelago",
        {SCHOOL: edit(SCHOOL_TEXT, "format: csv", "format: xls")},
        [f"{SCHOOL}:11:5 streams.pupils.format: 'xls' is not one of csv, json, jsonl, xlsx, xml"],
    ),
    (
        "connector-connection-required",
        "archipelago",
        {SCHOOL: edit(SCHOOL_TEXT, "connection: {path: /srv/exports/school}", "connection: {}")},
        [f"{SCHOOL}:6:1 connection: missing required key 'path'"],
    ),
    (
        "bad-cron",
        "archipelago",
        {SCHOOL: edit(SCHOOL_TEXT, '"30 2 * * *"', '"30 2 * *"')},
        [
            f"{SCHOOL}:5:1 schedule: '30 2 * *' is not a cron schedule: expected 5 fields "
            "(minute hour day-of-month month day-of-week), got 4; or null for manual runs only"
        ],
    ),
    (
        "paginator-enum",  # the example of STYLE.md point 2, to the character
        "booking",
        {BOOKING: edit(BOOKING_TEXT, "type: next_url", "type: nxt")},
        [
            f"{BOOKING}:12:7 streams.reservations.paginator.type: 'nxt' is not one of "
            "next_url, page, offset, cursor, link_header"
        ],
    ),
    (
        "literal-secret",
        "booking",
        {BOOKING: edit(BOOKING_TEXT, "{secret: BOOKING_API_TOKEN}", "s3cr3t-T0ken")},
        [f"{BOOKING}:8:24 connection.auth.token: token is a secret: {SECRET_ADVICE}"],
    ),
    (
        "secret-name-pattern",
        "booking",
        {BOOKING: edit(BOOKING_TEXT, "{secret: BOOKING_API_TOKEN}", "{secret: s3cr3t-T0ken}")},
        [
            f"{BOOKING}:8:24 connection.auth.token: secret names are upper case letters, "
            "digits and _, starting with a letter (like BOOKING_API_TOKEN); the value itself "
            "never goes in a file"
        ],
    ),
    (
        "store-password",
        "booking",
        {"config/hub.yaml": "store: postgresql+psycopg://hub:s3cr3t-T0ken@db/islandhub\n"},
        [
            "config/hub.yaml:1:1 store: the store URL holds a password: set "
            "ISLANDHUB_STORE_URL in the environment instead; never write the password in a file"
        ],
    ),
    (
        "store-not-a-database-of-the-hub",
        "archipelago",
        {"config/hub.yaml": "store: postgres://db/islandhub\n"},
        [
            "config/hub.yaml:1:1 store: 'postgres' is not a database islandhub stores in: write "
            "sqlite:///PATH (the default, a file in the project) or "
            "postgresql+psycopg://USER@HOST:PORT/DATABASE"
        ],
    ),
    (
        "store-not-a-url",
        "archipelago",
        {"config/hub.yaml": "store: var/islandhub.db\n"},
        [
            "config/hub.yaml:1:1 store: not a URL: write sqlite:///PATH (the default, a file in "
            "the project) or postgresql+psycopg://USER@HOST:PORT/DATABASE"
        ],
    ),
    (
        "timezone-typo",
        "archipelago",
        {"config/hub.yaml": "timezone: Europe/Helsinky\n"},
        [
            "config/hub.yaml:1:1 timezone: unknown time zone 'Europe/Helsinky'; "
            "did you mean 'Europe/Helsinki'?"
        ],
    ),
    (
        "priority-unknown-system",
        "archipelago",
        {"config/hub.yaml": "survivorship: {priority: [school, libary]}\n"},
        [
            "config/hub.yaml:1:35 survivorship.priority[1]: 'libary' is not a configured "
            "system; configured: library, school; did you mean 'library'?"
        ],
    ),
    (
        "missing-hub-yaml",
        "archipelago",
        {"config/hub.yaml": None},
        ["config/hub.yaml: not found in the project folder {root}; every project needs one"],
    ),
    (
        "yml-extension",
        "archipelago",
        {"config/systems/daycare.yml": "system: daycare\n"},
        ["config/systems/daycare.yml: system files end in .yaml: rename it to daycare.yaml"],
    ),
    (
        "several-files-at-once",
        "archipelago",
        {
            "config/hub.yaml": "store: sqlite:///var/hub.db\ntimezone: 3\n",
            SCHOOL: edit(SCHOOL_TEXT, "schedule:", "shedule:"),
            PUPILS: edit(PUPILS_TEXT, "use: [strip, hetu]", "use: [strip, hetuu]"),
            "config/systems/library.yaml": "system: library\nconnector: files\nstreams: []\n",
        },
        [
            "config/hub.yaml:2:1 timezone: expected a string, got an integer",
            "config/systems/library.yaml:1:1 connection: missing required key 'path'",
            "config/systems/library.yaml:3:1 streams: expected a mapping, got a list",
            f"{SCHOOL}:5:1: unknown key 'shedule'; did you mean 'schedule'?",
            f"{PUPILS}:5:43 fields.national_id.use[1]: unknown transform 'hetuu'; "
            f"known transforms: {', '.join(known_transforms())}",
        ],
    ),
]


@pytest.mark.parametrize(
    ("base", "changes", "expected"),
    [case[1:] for case in INVALID_PROJECTS],
    ids=[case[0] for case in INVALID_PROJECTS],
)
def test_invalid_project_gives_exact_errors(
    tmp_path: Path, base: str, changes: dict[str, str | None], expected: list[str]
) -> None:
    root = project(tmp_path, base, changes)
    assert errors_of(root) == [line.replace("{root}", str(root)) for line in expected]


def test_python_tag_is_never_run(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        "archipelago",
        {"config/hub.yaml": f"store: !!python/object/apply:os.system ['touch {tmp_path}/pwned']\n"},
    )
    errors_of(root)
    assert not (tmp_path / "pwned").exists()


def test_literal_secret_is_never_echoed(tmp_path: Path) -> None:
    for literal in ("s3cr3t-T0ken", "{secret: s3cr3t-T0ken}", "{value: s3cr3t-T0ken}"):
        root = project(
            tmp_path / str(abs(hash(literal))),
            "booking",
            {BOOKING: edit(BOOKING_TEXT, "{secret: BOOKING_API_TOKEN}", literal)},
        )
        assert "s3cr3t" not in "\n".join(errors_of(root))


def test_project_folder_that_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    assert errors_of(missing) == [
        f"config/hub.yaml: not found in the project folder {missing}; every project needs one"
    ]


# (fixture file under invalid/mappings, exact errors) for `islandhub mapping check FILE`
INVALID_MAPPING_FILES: list[tuple[str, list[str]]] = [
    (
        "missing_keys.yaml",
        [
            "invalid/mappings/missing_keys.yaml:2:1: missing required key 'id'",
            "invalid/mappings/missing_keys.yaml:2:1: missing required key 'fields'",
        ],
    ),
    (
        "bad_target.yaml",
        [
            "invalid/mappings/bad_target.yaml:5:3 fields: 'Email' does not match "
            r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)* (target paths are lower case names joined "
            "by dots, e.g. address.street)",
            "invalid/mappings/bad_target.yaml:6:11 fields.phone.from: expected a field name "
            "or a list of field names",
        ],
    ),
    (
        # Every problem in one round: the engine's checks run even where the schema found some,
        # and where both speak of one place (language.use) only the schema's words are given.
        "schema_and_transforms.yaml",
        [
            "invalid/mappings/schema_and_transforms.yaml:6:3 fields: 'Email' does not match "
            r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)* (target paths are lower case names joined "
            "by dots, e.g. address.street)",
            "invalid/mappings/schema_and_transforms.yaml:7:30 fields.phone.use[0]: phone takes "
            "an optional region like {phone: {region: SE}} (ISO country code)",
            "invalid/mappings/schema_and_transforms.yaml:8:35 fields.birth_date.use[0]: date "
            "needs a format string like '%d.%m.%Y' (or a list of them, tried in order)",
            "invalid/mappings/schema_and_transforms.yaml:9:26 fields.language.use: expected a "
            "list, got a string",
        ],
    ),
    (
        "unknown_transform.yaml",
        [
            "invalid/mappings/unknown_transform.yaml:6:36 fields.email.use[1]: unknown "
            f"transform 'emial'; known transforms: {', '.join(known_transforms())}",
        ],
    ),
    (
        "duplicate_field.yaml",
        [
            "invalid/mappings/duplicate_field.yaml:7:3 fields: duplicate key 'email' "
            "(first at line 5)",
        ],
    ),
]


@pytest.mark.parametrize(("name", "expected"), INVALID_MAPPING_FILES)
def test_invalid_mapping_file_gives_exact_errors(name: str, expected: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        load_mapping_file(FIXTURES / "invalid" / "mappings" / name, root=FIXTURES)
    assert [str(p) for p in caught.value.problems] == expected


def test_mapping_file_outside_root_is_named_as_given(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("source: a.b\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_mapping_file(path, root=FIXTURES)
    assert str(caught.value).splitlines()[0] == f"{path}:1:1: missing required key 'entity'"


def test_missing_mapping_file() -> None:
    with pytest.raises(ConfigError, match=r"^nowhere\.yaml: no such file$"):
        load_mapping_file("nowhere.yaml")


def test_booking_with_secret_reference_loads() -> None:
    project = load_project(FIXTURES / "valid" / "booking", environ={})
    booking = project.systems["booking"]
    assert booking.connection["auth"]["token"] == {"secret": "BOOKING_API_TOKEN"}
    assert booking.streams["reservations"].options == {"paginator": {"type": "next_url"}}
    assert project.hub.store_url == "postgresql+psycopg://islandhub@db.example.fi/islandhub"


def test_cli_prints_each_error_as_it_is(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A pattern in a message is text: the terminal output keeps `[a-z]` (it is not a style)."""
    from islandhub.cli import main

    changes = {SCHOOL: edit(SCHOOL_TEXT, "system: school", "system: School")}
    root = project(tmp_path, "archipelago", changes)
    assert main(["--project", str(root), "status"]) == 2
    assert (
        f"error: {SCHOOL}:1:1 system: 'School' does not match [a-z][a-z0-9_]* (system ids"
        in capsys.readouterr().err
    )


def test_store_url_from_the_environment_of_another_database(tmp_path: Path) -> None:
    root = project(tmp_path, "archipelago", {})
    with pytest.raises(ConfigError) as caught:
        load_project(root, environ={"ISLANDHUB_STORE_URL": "mysql://hub@db/islandhub"})
    assert str(caught.value) == (
        "ISLANDHUB_STORE_URL: 'mysql' is not a database islandhub stores in: write "
        "sqlite:///PATH (the default, a file in the project) or "
        "postgresql+psycopg://USER@HOST:PORT/DATABASE"
    )


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+nosuchdriver://hub@127.0.0.1/islandhub",  # no such dialect driver
        "postgresql+psycopg2://hub@127.0.0.1/islandhub",  # a real one, not installed here
        "postgresql+pg8000://hub@127.0.0.1/islandhub",
    ],
)
def test_store_driver_that_is_not_installed_is_bad_input(url: str) -> None:
    from islandhub.store import open_store

    with pytest.raises(ConfigError, match=r"no such database driver here .*postgresql\+psycopg://"):
        open_store(url)
