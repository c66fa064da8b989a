"""The conformance suite every connector kind passes, with one line.

    TestRestBooking = connector_test_class(RestConnector, booking_island)

`booking_island` is a context manager factory that starts a real fake island (an HTTP
server on 127.0.0.1, a database, a folder of files) and yields an `Island`: the connection
and stream options to reach it, and a few levers the suite pulls (add records, delete one,
read what was pushed). The suite then checks what every island's connector must do: check,
streams, pull returns records, unique ids, state round-trip, resume from a mid-stream state,
a second incremental run returns nothing new, new records arrive, deletes arrive, push is
idempotent and never writes the hub's idempotency key as a field. Fault-injecting variants
of an island run the same suite.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from connectors.base import IDEMPOTENCY_KEY, Batch, Connector, StreamSpec

# A kind's fixture: given a temporary folder, start the island and yield its handle.
IslandFactory = Callable[[Path], AbstractContextManager["Island"]]


@dataclass
class Island:
    """A running fake island and the levers the suite needs."""

    connection: dict[str, Any]
    streams: dict[str, dict[str, Any]]  # stream name -> stream options (without `mapping`)
    id_field: dict[str, str]  # stream name -> field holding the record's id
    add_records: Callable[[str, int], list[str]]  # add n records to a stream; their ids
    delete_record: Callable[[str], str] | None = None  # delete one; its id (None: no deletes)
    push_stream: str | None = None  # a stream that accepts writes
    push_records: list[dict[str, Any]] = field(default_factory=list)
    pushed: Callable[[], list[dict[str, Any]]] | None = None  # what the island holds after pushes
    broken_connection: dict[str, Any] | None = None  # a connection check() must reject
    root: Path | None = None  # project folder for relative paths


def pull_all(
    connector: Connector, stream: str, state: dict[str, Any] | None = None
) -> tuple[list[dict[str, Any]], list[Batch]]:
    """Every record of a pull and its batches."""
    batches = list(connector.pull(stream, state))
    return [r for b in batches for r in b.records], batches


def final_state(
    batches: list[Batch], before: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """The state after the last batch (the one the pipeline would commit last)."""
    return batches[-1].state if batches else before


def _ids(records: list[dict[str, Any]], id_field: str) -> list[str]:
    ids = []
    for record in records:
        value: Any = record
        for key in id_field.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        ids.append(str(value))
    return ids


def connector_test_class(connector_cls: type[Connector], island: IslandFactory) -> type:
    """A pytest class with the whole conformance suite for `connector_cls` against `island`."""

    class ConformanceSuite:
        @pytest.fixture
        def running(self, tmp_path: Path) -> Iterator[Island]:
            with island(tmp_path) as handle:
                yield handle

        def make(self, running: Island, connection: dict[str, Any] | None = None) -> Connector:
            specs = {name: StreamSpec(name, options) for name, options in running.streams.items()}
            return connector_cls(
                "conformance", connection or running.connection, specs, root=running.root
            )

        def test_check_accepts_a_reachable_island(self, running: Island) -> None:
            result = self.make(running).check()
            assert result.ok, result.message

        def test_check_rejects_a_broken_connection(self, running: Island) -> None:
            if running.broken_connection is None:
                pytest.skip("this island defines no broken connection")
            result = self.make(running, running.broken_connection).check()
            assert not result.ok and result.message

        def test_streams_lists_the_configured_streams(self, running: Island) -> None:
            assert set(running.streams) <= set(self.make(running).streams())

        def test_pull_returns_records_with_unique_ids(self, running: Island) -> None:
            connector = self.make(running)
            for stream in running.streams:
                records, _ = pull_all(connector, stream)
                assert records, f"{stream}: no records"
                assert all(isinstance(r, dict) for r in records)
                ids = _ids(records, running.id_field[stream])
                assert "None" not in ids, f"{stream}: a record without id"
                assert len(ids) == len(set(ids)), f"{stream}: duplicate ids"

        def test_state_is_plain_json_and_round_trips(self, running: Island) -> None:
            connector = self.make(running)
            for stream in running.streams:
                _, batches = pull_all(connector, stream)
                for batch in batches:
                    assert json.loads(json.dumps(batch.state)) == batch.state

        def test_a_second_incremental_run_returns_nothing_new(self, running: Island) -> None:
            connector = self.make(running)
            for stream in running.streams:
                _, batches = pull_all(connector, stream)
                again, _ = pull_all(connector, stream, final_state(batches))
                assert again == [], f"{stream}: {len(again)} records again"

        def test_resuming_from_any_committed_state_loses_and_doubles_nothing(
            self, running: Island
        ) -> None:
            connector = self.make(running)
            for stream in running.streams:
                field_name = running.id_field[stream]
                records, batches = pull_all(connector, stream)
                everything = set(_ids(records, field_name))
                seen: list[str] = []
                for index, batch in enumerate(batches[:-1]):
                    seen += _ids(batch.records, field_name)
                    rest, _ = pull_all(connector, stream, batch.state)
                    resumed = seen + _ids(rest, field_name)
                    # Lookback windows may repeat records; none may be missing.
                    assert set(resumed) == everything, f"{stream}: resume after batch {index}"

        def test_new_records_arrive(self, running: Island) -> None:
            connector = self.make(running)
            for stream in running.streams:
                _, batches = pull_all(connector, stream)
                added = running.add_records(stream, 3)
                news, _ = pull_all(connector, stream, final_state(batches))
                assert set(added) <= set(_ids(news, running.id_field[stream])), stream

        def test_deletes_arrive(self, running: Island) -> None:
            if running.delete_record is None:
                pytest.skip("this island cannot report deletes")
            connector = self.make(running)
            for stream in running.streams:
                _, batches = pull_all(connector, stream)
                gone = running.delete_record(stream)
                after = list(connector.pull(stream, final_state(batches)))
                assert gone in {d for b in after for d in b.deleted}, stream

        def test_push_is_idempotent(self, running: Island) -> None:
            if running.push_stream is None or running.pushed is None:
                pytest.skip("this island accepts no writes")
            connector = self.make(running)
            connector.push(running.push_stream, running.push_records)
            once = running.pushed()
            connector.push(running.push_stream, running.push_records)
            assert running.pushed() == once

        def test_push_sends_the_idempotency_key_never_as_a_field(self, running: Island) -> None:
            if running.push_stream is None or running.pushed is None:
                pytest.skip("this island accepts no writes")
            keyed = [{**r, IDEMPOTENCY_KEY: f"k{i}"} for i, r in enumerate(running.push_records)]
            self.make(running).push(running.push_stream, keyed)
            held = running.pushed()
            assert held, "nothing was pushed"
            assert IDEMPOTENCY_KEY not in json.dumps(held, default=str)

    ConformanceSuite.__name__ = f"Conformance{connector_cls.__name__}"
    return ConformanceSuite
