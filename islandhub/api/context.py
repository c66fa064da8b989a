"""What every request of one running API shares: the project, the store, the authenticator."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlalchemy as sa
from starlette.requests import Request

from islandhub.api.audit import AuditWriter
from islandhub.api.reads import ResidentReads
from islandhub.config import Project
from islandhub.store.db import Store

if TYPE_CHECKING:
    from islandhub.api.auth import Authenticator


@dataclass(frozen=True)
class ApiContext:
    """Plain data made once at start-up (STYLE: settings loaded once, then passed in).

    With two things of its own made from the store: the audit writer (group commit, see
    islandhub/api/audit.py) and the prepared read by id (islandhub/api/reads.py).
    """

    project: Project
    store: Store
    authenticator: Authenticator
    audit: AuditWriter = field(init=False, repr=False, compare=False)
    reads: ResidentReads = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "audit", AuditWriter(self.store))
        object.__setattr__(self, "reads", ResidentReads(_read_engine(self.store)))

    def close(self) -> None:
        """Commit the audit rows still queued and close the read pool (the store stays open)."""
        self.audit.close()
        if self.reads.engine is not self.store.engine:
            self.reads.engine.dispose()


def _read_engine(store: Store) -> sa.Engine:
    """The read by id's engine: on PostgreSQL a pool of its own, autocommit, no pre-ping.

    A lone SELECT needs no BEGIN and ROLLBACK around it, nor a ping before it: three round
    trips of four. A connection a database restart broke fails one read (503) and the pool
    is renewed. SQLite reads locally: the store's own engine.
    """
    if store.dialect != "postgresql":
        return store.engine
    return sa.create_engine(store.engine.url, isolation_level="AUTOCOMMIT", pool_pre_ping=False)


def context_of(request: Request) -> ApiContext:
    """The running API's context (the app factory put it on the app's state)."""
    context: ApiContext = request.app.state.context
    return context
