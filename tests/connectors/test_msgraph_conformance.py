"""The msgraph connector passes the conformance suite against a fake Graph, calm and throttled."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from connectors.msgraph import GraphConnector
from connectors.testing import Island, connector_test_class
from tests.fakes.graph_island import SAMPLES, GraphIsland, running_graph

MAILBOX = "kanslia@sipoo.fi"
BUSINESS = "simhallen@sipoo.fi"
PLAN = "plan-1"

STREAMS: dict[str, dict[str, Any]] = {
    "users": {"page_size": 7},
    "contacts": {"user": MAILBOX, "page_size": 6},
    "calendar_events": {"user": MAILBOX, "start": "2025-01-01T00:00:00Z",
                        "end": "2025-02-01T00:00:00Z", "page_size": 5},
    "bookings_customers": {"business": BUSINESS},
    "bookings_appointments": {"business": BUSINESS},
    "planner_tasks": {"plan": PLAN},
}
# stream -> (the island's shelf, its owner); users live on their own collection
SHELVES = {
    "contacts": ("contacts", MAILBOX),
    "calendar_events": ("calendars", MAILBOX),
    "bookings_customers": ("customers", BUSINESS),
    "bookings_appointments": ("appointments", BUSINESS),
    "planner_tasks": ("tasks", PLAN),
}


class Levers:
    """Adds and deletes items of any stream of a fake tenant."""

    def __init__(self, graph: GraphIsland) -> None:
        self.graph = graph
        self.numbers = itertools.count(1)

    def shelf(self, stream: str) -> Any:
        if stream == "users":
            return self.graph.users
        kind, owner = SHELVES[stream]
        return self.graph.collection(kind, owner)

    def add(self, stream: str, count: int) -> list[str]:
        sample = SAMPLES["users" if stream == "users" else SHELVES[stream][0]]
        with self.graph.lock:
            return [self.shelf(stream).add(sample(next(self.numbers))) for _ in range(count)]

    def delete(self, stream: str) -> str:
        with self.graph.lock:
            shelf = self.shelf(stream)
            gone = next(iter(shelf.items))
            shelf.remove(gone)
            return str(gone)

    def held(self, stream: str) -> Callable[[], list[dict[str, Any]]]:
        def pushed() -> list[dict[str, Any]]:
            with self.graph.lock:
                return sorted(copy.deepcopy(list(self.shelf(stream).items.values())),
                              key=lambda item: item["id"])

        return pushed


def push_records(stream: str, levers: Levers) -> list[dict[str, Any]]:
    """An update of an existing item and two new ones (no id: found again by their key)."""
    existing = next(iter(levers.shelf(stream).items))
    if stream == "contacts":
        return [
            {"id": existing, "mobilePhone": "+358401234567"},
            {"givenName": "Ny", "surname": "Invånare",
             "emailAddresses": [{"address": "ny.invanare@example.fi"}]},
            {"givenName": "Uusi", "surname": "Asukas",
             "emailAddresses": [{"address": "uusi.asukas@example.fi"}]},
        ]
    return [
        {"id": existing, "phones": [{"number": "+358401234567", "type": "mobile"}]},
        {"displayName": "Ny Invånare", "emailAddress": "ny.invanare@example.fi"},
        {"displayName": "Uusi Asukas", "emailAddress": "Uusi.Asukas@example.fi"},
    ]


def graph_tenant(throttle: float, push_stream: str) -> Callable[
    [Path], AbstractContextManager[Island]
]:
    """An island factory: a seeded fake tenant, optionally answering 429 to some requests."""

    @contextmanager
    def factory(tmp_path: Path) -> Iterator[Island]:
        with running_graph(GraphIsland(throttle=throttle, page_size=8, seed=11)) as graph:
            levers = Levers(graph)
            for stream, count in (("users", 23), ("contacts", 17), ("calendar_events", 12),
                                  ("bookings_customers", 19), ("bookings_appointments", 9),
                                  ("planner_tasks", 11)):
                levers.add(stream, count)
            yield Island(
                connection=graph.connection(),
                streams=copy.deepcopy(STREAMS),
                id_field=dict.fromkeys(STREAMS, "id"),
                add_records=levers.add,
                delete_record=levers.delete,
                push_stream=push_stream,
                push_records=push_records(push_stream, levers),
                pushed=levers.held(push_stream),
                broken_connection=graph.connection(client_secret="wrong-secret-value"),
                root=tmp_path,
            )

    return factory


TestGraphConformance = connector_test_class(GraphConnector, graph_tenant(0.0, "contacts"))
TestGraphConformanceThrottled = connector_test_class(
    GraphConnector, graph_tenant(0.15, "bookings_customers")
)
