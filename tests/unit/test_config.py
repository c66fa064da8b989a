"""Valid projects load into plain settings; the store URL and the project folder are found."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from islandhub.config import (
    DEFAULT_STORE_URL,
    HubSettings,
    Project,
    find_project,
    load_mapping_file,
    load_project,
    resolve_store_url,
)
from islandhub.errors import ConfigError

FIXTURES = Path(__file__).parent.parent / "fixtures" / "config"
ARCHIPELAGO = FIXTURES / "valid" / "archipelago"


def copy_of(tmp_path: Path, base: str, changes: dict[str, str] | None = None) -> Path:
    root = tmp_path / base
    shutil.copytree(FIXTURES / "valid" / base, root)
    for name, text in (changes or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def summary(project: Project) -> dict[str, object]:
    """What a loaded project says, in a form a table can spell out."""
    return {
        "timezone": project.hub.timezone,
        "priority": project.hub.priority,
        "systems": {
            system.system: {
                "connector": system.connector,
                "schedule": system.schedule,
                "streams": {
                    name: (stream.mapping.source, stream.options)
                    for name, stream in system.streams.items()
                },
            }
            for system in project.systems.values()
        },
    }


SCHOOL = "config/systems/school.yaml"
SCHOOL_TEXT = (ARCHIPELAGO / SCHOOL).read_text()
SCHOOL_SUMMARY = {
    "connector": "files",
    "schedule": "30 2 * * *",
    "streams": {
        "pupils": (
            "school.pupils",
            {"files": "pupils_*.csv", "format": "csv", "delimiter": ";", "encoding": "cp1252"},
        )
    },
}
LIBRARY_SUMMARY = {
    "connector": "files",
    "schedule": None,
    "streams": {
        "patrons": (
            "library.patrons",
            {"format": "jsonl", "encoding": "utf-8", "files": "patrons_*.jsonl"},
        )
    },
}

# (id, base project, changed files, what must load)
VALID_PROJECTS: list[tuple[str, str, dict[str, str], dict[str, object]]] = [
    (
        "archipelago",
        "archipelago",
        {},
        {
            "timezone": "Europe/Helsinki",
            "priority": ("school", "library"),
            "systems": {"library": LIBRARY_SUMMARY, "school": SCHOOL_SUMMARY},
        },
    ),
    (
        "empty-hub-yaml-no-systems",
        "minimal",
        {},
        {"timezone": "Europe/Helsinki", "priority": (), "systems": {}},
    ),
    (
        "cron-macro-and-other-timezone",
        "archipelago",
        {
            "config/hub.yaml": "timezone: Europe/Mariehamn\n",
            SCHOOL: SCHOOL_TEXT.replace('"30 2 * * *"', "'@daily'"),
        },
        {
            "timezone": "Europe/Mariehamn",
            "priority": (),
            "systems": {
                "library": LIBRARY_SUMMARY,
                "school": {**SCHOOL_SUMMARY, "schedule": "@daily"},
            },
        },
    ),
]


@pytest.mark.parametrize(
    ("base", "changes", "expected"),
    [case[1:] for case in VALID_PROJECTS],
    ids=[case[0] for case in VALID_PROJECTS],
)
def test_valid_project_loads(
    tmp_path: Path, base: str, changes: dict[str, str], expected: dict[str, object]
) -> None:
    project = load_project(copy_of(tmp_path, base, changes), environ={})
    assert summary(project) == expected


def test_loaded_system_keeps_every_setting() -> None:
    school = load_project(ARCHIPELAGO, environ={}).systems["school"]
    assert school.title == {"sv": "Skolan", "fi": "Koulu", "en": "School"}
    assert school.owner == {"name": "Bildningssektorn", "email": "skola@example.fi"}
    assert school.connection == {"path": "/srv/exports/school"}
    assert school.quality == {"max_quarantine_ratio": 0.05}
    assert school.file == ARCHIPELAGO.resolve() / SCHOOL
    assert "mapping" not in school.streams["pupils"].options


# (store in hub.yaml or None for no key, ISLANDHUB_STORE_URL or None, resolved URL)
STORE_URLS: list[tuple[str | None, str | None, str]] = [
    (None, None, "sqlite:///{root}/var/islandhub.db"),
    ("sqlite:///data/hub.db", None, "sqlite:///{root}/data/hub.db"),
    ("sqlite:///var/hub.db?timeout=5", None, "sqlite:///{root}/var/hub.db?timeout=5"),
    ("sqlite+pysqlite:///hub.db", None, "sqlite+pysqlite:///{root}/hub.db"),
    ("sqlite:////srv/islandhub/hub.db", None, "sqlite:////srv/islandhub/hub.db"),
    ("sqlite://", None, "sqlite://"),
    ("sqlite:///:memory:", None, "sqlite:///:memory:"),
    ("postgresql+psycopg://hub@db/islandhub", None, "postgresql+psycopg://hub@db/islandhub"),
    (None, "postgresql+psycopg://hub:pw@db/hub", "postgresql+psycopg://hub:pw@db/hub"),
    ("sqlite:///var/hub.db", "sqlite:///other.db", "sqlite:///{root}/other.db"),
    ("sqlite:///var/hub.db", "", "sqlite:///{root}/var/hub.db"),  # empty: not set
]


@pytest.mark.parametrize(("store", "env", "expected"), STORE_URLS)
def test_store_url(tmp_path: Path, store: str | None, env: str | None, expected: str) -> None:
    hub = f"store: '{store}'\n" if store else ""
    root = copy_of(tmp_path, "minimal", {"config/hub.yaml": hub})
    environ = {} if env is None else {"ISLANDHUB_STORE_URL": env}
    project = load_project(root, environ=environ)
    assert project.hub.store_url == expected.replace("{root}", str(root.resolve()))


def test_store_url_override_is_read_from_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ISLANDHUB_STORE_URL", "postgresql+psycopg://hub@db/islandhub")
    project = load_project(copy_of(tmp_path, "minimal"))
    assert project.hub == HubSettings(store_url="postgresql+psycopg://hub@db/islandhub")


def test_resolve_store_url_default_is_under_the_project() -> None:
    assert resolve_store_url(DEFAULT_STORE_URL, Path("/srv/hub")) == (
        "sqlite:////srv/hub/var/islandhub.db"
    )


# (--project, ISLANDHUB_PROJECT, folder run in, which folder is the project)
FIND_PROJECT: list[tuple[str | None, str | None, str, str]] = [
    ("explicit", "from_env", "with_hub", "explicit"),
    (None, "from_env", "with_hub", "from_env"),
    (None, None, "with_hub", "with_hub"),
    (None, "", "with_hub", "with_hub"),
]


@pytest.mark.parametrize(("explicit", "env", "cwd", "expected"), FIND_PROJECT)
def test_find_project(
    tmp_path: Path, explicit: str | None, env: str | None, cwd: str, expected: str
) -> None:
    for name in ("explicit", "from_env", "with_hub"):
        (tmp_path / name / "config").mkdir(parents=True)
    (tmp_path / "with_hub" / "config" / "hub.yaml").write_text("")
    environ = {} if env is None else {"ISLANDHUB_PROJECT": str(tmp_path / env) if env else ""}
    given = tmp_path / explicit if explicit else None
    found = find_project(given, environ=environ, cwd=tmp_path / cwd)
    assert found == (tmp_path / expected).resolve()


def test_find_project_without_any_hint_says_how_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        find_project(None, environ={}, cwd=tmp_path)
    assert str(caught.value) == (
        f"no islandhub project here: {tmp_path.resolve()} has no config/hub.yaml. Run "
        "islandhub in a project folder, or name one with `islandhub --project DIR ...` or "
        "ISLANDHUB_PROJECT=DIR"
    )


@pytest.mark.parametrize(
    ("explicit", "env", "message"),
    [
        ("nowhere", None, "--project {tmp}/nowhere: no such folder"),
        (None, "nowhere", "ISLANDHUB_PROJECT {tmp}/nowhere: no such folder"),
        (
            "hub.yaml",
            None,
            "--project {tmp}/hub.yaml: is a file; name the project folder (the one holding "
            "config/hub.yaml)",
        ),
        (
            None,
            "hub.yaml",
            "ISLANDHUB_PROJECT {tmp}/hub.yaml: is a file; name the project folder (the one "
            "holding config/hub.yaml)",
        ),
    ],
)
def test_find_project_named_folder_must_exist(
    tmp_path: Path, explicit: str | None, env: str | None, message: str
) -> None:
    (tmp_path / "hub.yaml").write_text("# a file, not the project folder\n")
    environ = {"ISLANDHUB_PROJECT": str(tmp_path / env)} if env else {}
    given = str(tmp_path / explicit) if explicit else None
    with pytest.raises(ConfigError) as caught:
        find_project(given, environ=environ, cwd=tmp_path)
    assert str(caught.value) == message.replace("{tmp}", str(tmp_path))


VALID_MAPPING_FILES = [
    ("valid/archipelago/mappings/school/pupils.yaml", "school.pupils"),
    ("valid/archipelago/mappings/library/patrons.yaml", "library.patrons"),
    ("valid/booking/mappings/booking/reservations.yaml", "booking.reservations"),
]


@pytest.mark.parametrize(("name", "source"), VALID_MAPPING_FILES)
def test_valid_mapping_file_loads(name: str, source: str) -> None:
    mapping = load_mapping_file(FIXTURES / name, root=FIXTURES)
    assert mapping.source == source
    assert mapping.file == name
