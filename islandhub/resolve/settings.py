"""Loads config/resolution.yaml, the identity resolution settings, as validated plain data."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from islandhub.config import SCHEMA_DIR, validate
from islandhub.errors import ConfigError, Problem
from islandhub.yamlsource import YamlDocument, load_yaml, parse_yaml

RESOLUTION_FILE = Path("config") / "resolution.yaml"
SCHEMA_FILE = SCHEMA_DIR / "resolution.schema.json"

#: A blocking rule: the columns two records must agree on to be compared.
Rule = tuple[str, ...]


@dataclass(frozen=True)
class ComparisonSettings:
    """Options of one comparison: Jaro-Winkler levels and term-frequency weighting."""

    jaro_winkler: tuple[float, ...] = ()
    term_frequency: bool = False


@dataclass(frozen=True)
class AdultsOnly:
    """Systems whose records describe adults only (customers, account holders, bookers)."""

    systems: tuple[str, ...] = ()
    min_age: int = 18


@dataclass(frozen=True)
class ResolutionSettings:
    """config/resolution.yaml: the threshold, blocking, training and comparisons."""

    threshold: float
    blocking: tuple[Rule, ...]
    em_blocking: tuple[Rule, ...]
    comparisons: dict[str, ComparisonSettings]
    seed: int = 753
    u_max_pairs: int = 3_000_000
    prior_rules: tuple[Rule, ...] = ()
    prior_recall: float = 0.6
    veto: tuple[str, ...] = ()
    ambiguity_margin: float = 0.0
    adults_only: AdultsOnly = AdultsOnly()
    namesake_guard: bool = False
    memory_limit: str | None = None  # DuckDB's, e.g. "3GB"; None: DuckDB's default
    max_training_records: int | None = None  # train on a seeded sample of this many
    file: str = field(default=str(RESOLUTION_FILE), compare=False)

    def to_json(self) -> str:
        """The settings as a JSON text (stored with every trained model)."""
        data = asdict(self)
        data.pop("file")
        return json.dumps(data, sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> ResolutionSettings:
        """Settings back from `to_json`."""
        data = json.loads(text)
        return cls(
            threshold=data["threshold"],
            blocking=_rules(data["blocking"]),
            em_blocking=_rules(data["em_blocking"]),
            comparisons={
                name: ComparisonSettings(tuple(c["jaro_winkler"]), c["term_frequency"])
                for name, c in data["comparisons"].items()
            },
            seed=data["seed"],
            u_max_pairs=data["u_max_pairs"],
            prior_rules=_rules(data["prior_rules"]),
            prior_recall=data["prior_recall"],
            veto=tuple(data["veto"]),
            ambiguity_margin=data["ambiguity_margin"],
            # Models stored before these rules existed load with the rules off.
            adults_only=_adults_only(data.get("adults_only") or {}),
            namesake_guard=bool(data.get("namesake_guard", False)),
            memory_limit=data.get("memory_limit"),
            max_training_records=data.get("max_training_records"),
        )


def load_settings(root: Path) -> ResolutionSettings:
    """Read and validate `root`/config/resolution.yaml; ConfigError names file:line of problems."""
    path = Path(root) / RESOLUTION_FILE
    if not path.is_file():
        raise ConfigError([Problem("no such file", file=str(RESOLUTION_FILE))])
    return settings_from(load_yaml(path, str(RESOLUTION_FILE)))


def parse_settings(text: str, file: str = str(RESOLUTION_FILE)) -> ResolutionSettings:
    """Settings from YAML text (`file` is the name errors show)."""
    return settings_from(parse_yaml(text, file))


def settings_from(doc: YamlDocument) -> ResolutionSettings:
    """Validate a parsed resolution.yaml against its schema and build the settings."""
    data = doc.data if doc.data is not None else {}
    problems = validate(doc, _schema(), data)
    problems.extend(_level_problems(doc, data) if not problems else [])
    if problems:
        raise ConfigError(sorted(problems, key=lambda p: (p.line or 0, p.column or 0)))
    training = data["training"]
    defaults = ResolutionSettings(0.5, (), (), {})
    return ResolutionSettings(
        threshold=float(data["threshold"]),
        blocking=_rules(data["blocking"]),
        em_blocking=_rules(training["em_blocking"]),
        comparisons={
            name: ComparisonSettings(
                tuple(float(t) for t in options.get("jaro_winkler", ())),
                bool(options.get("term_frequency", False)),
            )
            for name, options in data["comparisons"].items()
        },
        seed=int(data.get("seed", defaults.seed)),
        u_max_pairs=int(training.get("u_max_pairs", defaults.u_max_pairs)),
        prior_rules=_rules(training.get("prior_rules", ())),
        prior_recall=float(training.get("prior_recall", defaults.prior_recall)),
        veto=tuple(data.get("veto", ())),
        ambiguity_margin=float(data.get("ambiguity_margin", 0.0)),
        adults_only=_adults_only(data.get("adults_only") or {}),
        namesake_guard=bool(data.get("namesake_guard", False)),
        memory_limit=data.get("memory_limit"),
        max_training_records=training.get("max_records"),
        file=doc.file,
    )


def _adults_only(data: dict[str, Any]) -> AdultsOnly:
    return AdultsOnly(tuple(data.get("systems", ())), int(data.get("min_age", AdultsOnly.min_age)))


def _level_problems(doc: YamlDocument, data: dict[str, Any]) -> list[Problem]:
    """Jaro-Winkler levels strictest first (Splink takes the first that holds); vetoes used."""
    problems = [
        doc.problem(("veto", i), f"veto {name!r} is not one of the comparisons")
        for i, name in enumerate(data.get("veto", []))
        if name not in data["comparisons"]
    ]
    for name, options in data["comparisons"].items():
        levels = options.get("jaro_winkler", [])
        if list(levels) != sorted(levels, reverse=True) or len(set(levels)) != len(levels):
            path = ("comparisons", name, "jaro_winkler")
            problems.append(doc.problem(path, "Jaro-Winkler levels must be strictest first"))
    return problems


def _rules(rules: Any) -> tuple[Rule, ...]:
    return tuple(tuple(rule) for rule in rules)


def _schema() -> dict[str, Any]:
    with SCHEMA_FILE.open(encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema
