"""The hub's one error tree, sorted by what the caller must do.

    HubError                      anything the hub raises on purpose
    ├── ConfigError               bad input from a user: config, mapping, arguments (exit 2)
    ├── RunFailed                 a run could not finish: source down, gate tripped (exit 1)
    ├── StoreError                the store is unreachable or not migratable (exit 1)
    └── SourceError               raised by connectors while talking to an island
        ├── FatalSourceError      retrying will not help (401, 404, bad response shape)
        ├── RetriableSourceError  try again later (429, 5xx, timeouts)
        └── SkippableRecordError  one record is unusable; the rest of the batch goes on

The CLI maps the first two branches to exit codes; nothing below prints tracebacks for them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# What a store URL may be, said wherever one is refused (config.py, store/db.py).
STORE_URL_ADVICE = (
    "write sqlite:///PATH (the default, a file in the project) or "
    "postgresql+psycopg://USER@HOST:PORT/DATABASE"
)


class HubError(Exception):
    """Root of every error the hub raises deliberately."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a user's file or argument, with where it is."""

    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    path: str = ""

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
        parts = [p for p in (where, self.path) if p]
        prefix = " ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message


class ConfigError(HubError):
    """Bad input: every problem found, reported at once (exit code 2)."""

    exit_code = 2

    def __init__(self, problems: Iterable[Problem] | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(problems)]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class RunFailed(HubError):
    """A run could not finish; the store is left at the last committed batch."""

    exit_code = 1


class StoreError(HubError):
    """The store cannot be reached or brought up to date."""

    exit_code = 1


class SourceError(HubError):
    """Raised by a connector while talking to its island."""


class FatalSourceError(SourceError):
    """Retrying will not help: wrong credentials, missing resource, unusable response."""


class RetriableSourceError(SourceError):
    """Transient: rate limited, server error, timeout. The caller may retry later."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SkippableRecordError(SourceError):
    """One record cannot be read; it is quarantined and the batch goes on."""
