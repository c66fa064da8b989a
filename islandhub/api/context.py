"""What every request of one running API shares: the project, the store, the authenticator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request

from islandhub.config import Project
from islandhub.store.db import Store

if TYPE_CHECKING:
    from islandhub.api.auth import Authenticator


@dataclass(frozen=True)
class ApiContext:
    """Plain data made once at start-up (STYLE: settings loaded once, then passed in)."""

    project: Project
    store: Store
    authenticator: Authenticator


def context_of(request: Request) -> ApiContext:
    """The running API's context (the app factory put it on the app's state)."""
    context: ApiContext = request.app.state.context
    return context
