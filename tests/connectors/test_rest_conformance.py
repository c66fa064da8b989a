"""The REST connector passes the conformance suite against every fake island, faults or not."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from connectors.base import StreamSpec
from connectors.rest import RestConnector
from connectors.testing import connector_test_class, pull_all
from islandhub.errors import FatalSourceError, RetriableSourceError, SourceError
from tests.fakes.http_island import (
    FAULT_KINDS,
    Faults,
    always,
    feedback_island,
    koha_island,
    linked_events_island,
    open311_island,
    respa_island,
)

# Every shape, clean.
TestRespa = connector_test_class(RestConnector, respa_island())
TestLinkedEvents = connector_test_class(RestConnector, linked_events_island())
TestKoha = connector_test_class(RestConnector, koha_island())
TestOpen311 = connector_test_class(RestConnector, open311_island())
TestFeedback = connector_test_class(RestConnector, feedback_island())


def _faulty(kind: str, seed: int) -> Faults:
    return Faults(rate=0.15, kinds=(kind,), seed=seed, retry_after=1 if kind == "429" else 0)


# Respa (bearer, child stream, push) with 15 % of each fault kind.
TestRespa429 = connector_test_class(RestConnector, respa_island(_faulty("429", 1)))
TestRespa429Date = connector_test_class(RestConnector, respa_island(_faulty("429_date", 2)))
TestRespa503 = connector_test_class(RestConnector, respa_island(_faulty("503", 3)))
TestRespaReset = connector_test_class(RestConnector, respa_island(_faulty("reset", 4)))
TestRespaTruncated = connector_test_class(RestConnector, respa_island(_faulty("truncate", 5)))
TestRespaSlow = connector_test_class(RestConnector, respa_island(_faulty("slow", 6)))

# The other shapes with a 20 % mix of every fault (the OAuth2 token endpoint suffers too).
MIXED = Faults(rate=0.2, kinds=FAULT_KINDS, seed=7)
TestKohaFaults = connector_test_class(RestConnector, koha_island(MIXED))
TestLinkedEventsFaults = connector_test_class(
    RestConnector, linked_events_island(Faults(rate=0.2, kinds=FAULT_KINDS, seed=8))
)
TestOpen311Faults = connector_test_class(
    RestConnector, open311_island(Faults(rate=0.2, kinds=FAULT_KINDS, seed=9))
)
TestFeedbackFaults = connector_test_class(
    RestConnector, feedback_island(Faults(rate=0.2, kinds=FAULT_KINDS, seed=10))
)


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("429", RetriableSourceError),
        ("429_date", RetriableSourceError),
        ("503", RetriableSourceError),
        ("reset", RetriableSourceError),
        ("truncate", RetriableSourceError),
    ],
)
def test_a_pull_against_a_broken_island_fails_clearly(
    tmp_path: Path, kind: str, error: type[SourceError]
) -> None:
    with respa_island(always(kind, retry_after=1))(tmp_path) as island:
        connector = _connector(island.connection, island.streams)
        started = time.monotonic()
        with pytest.raises(error) as caught:
            pull_all(connector, "reservations")
        assert time.monotonic() - started < 5, "retries must be capped, not hang"
        assert "gave up after 8 retries" in str(caught.value)
        assert "reservation" in str(caught.value)
        assert not connector.check().ok


def test_a_slow_island_past_the_timeout_is_retriable(tmp_path: Path) -> None:
    with respa_island(always("slow", slow_seconds=0.3))(tmp_path) as island:
        connection = {**island.connection, "timeout": [1, 0.1], "retries": 2}
        with pytest.raises(RetriableSourceError, match="no answer within the timeout"):
            pull_all(_connector(connection, island.streams), "reservations")


def test_wrong_credentials_fail_at_once_and_say_so(tmp_path: Path) -> None:
    with koha_island()(tmp_path) as island:
        assert island.broken_connection is not None
        connector = _connector(island.broken_connection, island.streams)
        with pytest.raises(FatalSourceError, match="check the auth settings") as caught:
            pull_all(connector, "patrons")
        assert "wrong-secret" not in str(caught.value)


def test_deletes_arrive_from_every_island_that_reports_them(tmp_path: Path) -> None:
    for factory, stream in [
        (respa_island(), "reservations"),
        (linked_events_island(), "signups"),
        (koha_island(), "patrons"),
    ]:
        with factory(tmp_path) as island:
            connector = _connector(island.connection, island.streams)
            _, batches = pull_all(connector, stream)
            assert island.delete_record is not None
            gone = island.delete_record(stream)
            records, after = pull_all(connector, stream, batches[-1].state)
            assert [gone] == [d for b in after for d in b.deleted], stream
            assert gone not in {str(r.get("id", r.get("patron_id"))) for r in records}


def _connector(connection: dict, streams: dict) -> RestConnector:
    specs = {name: StreamSpec(name, options) for name, options in streams.items()}
    return RestConnector("conformance", connection, specs)
