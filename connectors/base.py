"""The connector interface every island's connector implements, and what it yields.

A connector kind is a class registered under the entry-point group `islandhub.connectors`.
It declares JSON Schemas for its `connection` and stream options (secret fields carry
`"secret": true`) and implements `check()`, `streams()`, `pull(stream, state)` and, where
the island accepts writes, `push(stream, records)`; where it can erase a person's records
on request, `erase(stream, source_ids, dry_run=...)` (the GDPR API's DELETE).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from islandhub.errors import (
    FatalSourceError,
    RetriableSourceError,
    SkippableRecordError,
    SourceError,
)

__all__ = [
    "IDEMPOTENCY_KEY",
    "Batch",
    "CheckResult",
    "Connector",
    "ErasureAnswer",
    "FatalSourceError",
    "Rejected",
    "RetriableSourceError",
    "SkippableRecordError",
    "SourceError",
    "StreamSpec",
]

State = dict[str, Any]
#: The field of a pushed record that carries its idempotency key (never written as a field).
IDEMPOTENCY_KEY = "_idempotency_key"


@dataclass(frozen=True)
class StreamSpec:
    """One stream of a system as configured: its name and connector-specific options."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rejected:
    """A source record the connector could not read: quarantined with its reason."""

    reason: str
    excerpt: str
    position: str  # where in the source: file and line, page and index, ...


@dataclass
class Batch:
    """Records pulled together, and the stream's state once they are safely landed.

    The pipeline commits the batch and `state` in one transaction, so a crash between
    batches resumes exactly after the last committed one.
    """

    records: list[dict[str, Any]]
    state: State
    rejected: list[Rejected] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)  # source ids the island removed


@dataclass(frozen=True)
class CheckResult:
    """The verdict of `check()`: can the hub reach the island with these settings."""

    ok: bool
    message: str


@dataclass(frozen=True)
class ErasureAnswer:
    """An island's answer to "erase these records" (or, with dry_run, "may you?").

    The shape of Helsinki's open-city-profile GDPR API: allowed, or refused with errors, each
    `{"code": ..., "message": {"fi": ..., "sv": ..., "en": ...}}` (an open case, an unpaid
    invoice: art. 17(3)(b)). `supported` is False for islands with no deletion interface:
    their owner deletes by hand, and the hub's tombstone keeps the records out meanwhile.
    """

    allowed: bool
    errors: tuple[dict[str, Any], ...] = ()
    supported: bool = True
    erased: int = 0  # records deleted (0 on a dry run)


class Connector(ABC):
    """Base of every connector kind: a few methods, no hooks to remember."""

    kind: ClassVar[str]
    #: JSON Schema of the `connection` block of a system file.
    connection_schema: ClassVar[dict[str, Any]] = {"type": "object"}
    #: JSON Schema of one stream's options (the `mapping` key is the hub's, not the kind's).
    stream_schema: ClassVar[dict[str, Any]] = {"type": "object"}

    def __init__(
        self,
        system: str,
        connection: Mapping[str, Any],
        streams: Mapping[str, StreamSpec],
        *,
        root: Path | None = None,
    ) -> None:
        self.system = system
        self.connection = connection
        self.stream_specs = dict(streams)
        self.root = root  # the project folder: relative paths in the config start here

    @abstractmethod
    def check(self) -> CheckResult:
        """Tell whether the island can be reached with this configuration."""

    def streams(self) -> list[str]:
        """Name the streams this connector offers (by default: the configured ones)."""
        return sorted(self.stream_specs)

    @abstractmethod
    def pull(self, stream: str, state: State | None) -> Iterator[Batch]:
        """Yield batches of source records after `state`, each with the state it reaches."""

    def push(self, stream: str, records: list[dict[str, Any]]) -> None:
        """Write records back to the island; kinds that accept writes override this.

        A record may carry IDEMPOTENCY_KEY (the hub's outbox sets one per resident,
        version and target). It is never written as a field: the kind sends it the way its
        island dedupes (a header, an upsert key), so a redelivered record changes nothing.
        """
        raise FatalSourceError(f"connector kind {self.kind!r} does not accept writes")

    @classmethod
    def push_problem(cls, options: Mapping[str, Any]) -> str | None:
        """Why a stream with these options cannot accept writes, or None when it can.

        The config loader asks this of every stream whose mapping has a `push:` section.
        """
        if cls.push is Connector.push:
            return f"connector kind {cls.kind!r} does not accept writes"
        return None

    def erase(self, stream: str, source_ids: list[str], *, dry_run: bool) -> ErasureAnswer:
        """Erase a person's records in the island, or (dry_run) say whether it would.

        Kinds with a deletion interface override this; by default an island has none.
        """
        return ErasureAnswer(allowed=True, supported=False)
