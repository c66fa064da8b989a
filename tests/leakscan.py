"""A guard over the whole test run: no national id in the clear, no secret, in any output.

Every test's captured stdout, stderr and log records, and every log file the run leaves
under pytest's temporary folder (Airflow task logs, demo logs), are scanned for valid
national ids (HETU-shaped and with a correct check character, so masked ones such as
`131052-***T` do not count) and for the values of the secrets the demo islands and test
fakes use. Tests that show ids in full on purpose (`--reveal`, a subject access export)
are marked `reveals_national_ids`; only their own output is exempt.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from stdnum.fi import hetu as stdnum_hetu

# Looser than the masking pattern on purpose: a leak in any case, any separator.
CANDIDATE = re.compile(
    r"(?<![0-9A-Za-z])[0-3]\d[01]\d\d\d[-+A-FU-Ya-fu-y]\d{3}[0-9A-Ya-y](?![0-9A-Za-z])"
)
LOG_SUFFIXES = (".log", ".out", ".err")
MAX_LOG_BYTES = 20_000_000


def national_ids_in(text: str) -> list[str]:
    """Valid national ids (temporary ones too) appearing in clear in `text`."""
    return [m for m in CANDIDATE.findall(text) if _valid(m.upper())]


def _valid(candidate: str) -> bool:
    try:
        stdnum_hetu.validate(candidate, allow_temporary=True)
    except ValueError:
        return False
    return True


def secrets_in(text: str, secrets: Iterable[str]) -> list[str]:
    """Which of the secret values appear in `text`."""
    return [s for s in secrets if s and s in text]


@dataclass
class Findings:
    """What the scan found, where."""

    leaks: list[str] = field(default_factory=list)

    def scan(self, where: str, text: str, secrets: Iterable[str]) -> None:
        for hetu in sorted(set(national_ids_in(text))):
            self.leaks.append(f"{where}: national id {hetu[:7]}*** in clear")
        for secret in secrets_in(text, secrets):
            self.leaks.append(f"{where}: secret value {secret[:3]}... printed")

    def scan_logs(self, folder: Path, secrets: Iterable[str]) -> None:
        """Every log file under `folder` (the run's temporary files)."""
        if not folder.is_dir():
            return
        values = list(secrets)
        for path in folder.rglob("*"):
            if path.suffix in LOG_SUFFIXES and path.is_file():
                text = path.read_bytes()[:MAX_LOG_BYTES].decode("utf-8", "replace")
                self.scan(str(path), text, values)


def demo_secrets(workdir: Path) -> list[str]:
    """The secret values of the demo islands (their credentials), as a leak would show them."""
    from islandhub.demo.islands import all_islands
    from islandhub.demo.population import generate

    population = generate(30, 1)
    values: set[str] = set()
    for cls in all_islands():
        island = cls(population, workdir / cls.system, 1)
        island.workdir.mkdir(parents=True, exist_ok=True)
        island.prepare()
        values.update(v for v in island.secrets().values() if len(v) >= 8)
    return sorted(values)
