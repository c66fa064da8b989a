"""Named attack: oversized and overdeep answers and fields, refused or quarantined, memory bounded.

A REST island (a real HTTP server on 127.0.0.1) answers with a body over the connection's
`max_response_bytes`, with or without announcing its length, or with records nested deeper
than the store's JSON holds; a CSV export carries a field of many megabytes.
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from connectors.file_formats import read_items
from islandhub.errors import FatalSourceError
from islandhub.pipeline import make_connector
from islandhub.store.tables import sync_state
from tests.fakes.http_island import IslandServer, Reply
from tests.hostile.harness import MAPPING, Hub
from tests.hostile.strategies import nested

LIMIT = 1_000_000


def rest_island(url: str) -> tuple[str, str]:
    body = (
        f"connector: rest\nconnection: {{base_url: '{url}', max_response_bytes: {LIMIT},"
        " retries: 0}\n"
        "streams:\n  people: {path: /people, records: '', id: id, mapping: MAPPING}\n"
    )
    return body, MAPPING.format(system="rest")


@pytest.fixture
def server() -> Iterator[IslandServer]:
    with IslandServer() as running:
        # The hub hangs up at the size limit, which is the point: no traceback for it.
        assert running._server is not None
        running._server.handle_error = lambda *_: None  # type: ignore[method-assign]
        yield running


def answering(server: IslandServer, reply: Reply) -> None:
    server.route("GET", r"/people", lambda _request: reply)


def big_body() -> bytes:
    """About 3 MB of well-formed records: three times the limit."""
    people = [{"id": str(i), "name": "Anna Virtanen", "note": "x" * 1000} for i in range(3000)]
    return orjson.dumps(people)


@pytest.mark.parametrize("announced", [True, False], ids=["Content-Length", "no length"])
def test_an_answer_over_the_size_limit_is_refused_with_memory_bounded(
    tmp_path: Path, store_template: Path, server: IslandServer, announced: bool
) -> None:
    answering(server, Reply(raw=big_body(), length=announced))
    hub = Hub.create(tmp_path / "p", store_template, {"rest": rest_island(server.url)})
    outcome = hub.sync("rest", {}, keep=True, incremental=False)
    assert outcome.result.status == "failed"
    assert f"max_response_bytes={LIMIT}" in (outcome.result.error or "")
    assert outcome.stored.landed == {} and outcome.stored.quarantined == {}
    assert outcome.path is not None
    with sa.create_engine(f"sqlite:///{outcome.path}").connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(sync_state)).scalar() == 0
    # The client stops reading at the limit: it never holds the whole 3 MB answer.
    connector = make_connector(hub.project, hub.project.systems["rest"])
    tracemalloc.start()
    try:
        with pytest.raises(FatalSourceError, match="max_response_bytes"):
            list(connector.pull("people", None))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2.5 * LIMIT, peak


def test_records_nested_past_what_the_store_holds_are_quarantined(
    tmp_path: Path, store_template: Path, server: IslandServer
) -> None:
    # 300 levels parse (orjson allows 1024) but the store's JSON stops at 255: the record
    # used to stop the whole run with a TypeError traceback. Now it is quarantined.
    people = [
        {"id": "1", "name": "Anna Virtanen", "note": nested(300)},
        {"id": "2", "name": "Pia Öberg"},
        {"id": "3", "name": "Aino Laine", "note": nested(200)},
    ]
    answering(server, Reply(raw=json.dumps(people).encode()))  # orjson stops at 255 too
    hub = Hub.create(tmp_path / "p", store_template, {"rest": rest_island(server.url)})
    outcome = hub.sync("rest", {}, incremental=False)
    assert outcome.result.status == "succeeded"
    assert outcome.stored.landed == {"2": "mapped", "3": "mapped"}
    assert (outcome.result.pulled, outcome.result.mapped, outcome.result.quarantined) == (3, 2, 1)
    reasons = [r for rs in outcome.stored.quarantined.values() for r in rs]
    assert reasons == ["the record cannot be stored as JSON: Recursion limit reached"]


def test_a_csv_field_of_many_megabytes_is_refused_with_memory_bounded(hub: Hub) -> None:
    field = 8 << 20
    content = b"id,name\n1,Anna Virtanen\n2," + b"x" * field + b"\n3,Pia Oberg\n"
    outcome = hub.sync("csv", {"export.csv": content})
    assert outcome.result.status == "failed"
    error = outcome.result.error or ""
    assert "export.csv:3" in error and "field larger than field limit" in error
    assert outcome.stored.landed == {}
    (hub.root / "big.csv").write_bytes(content)
    tracemalloc.start()
    try:
        with pytest.raises(FatalSourceError):
            list(read_items(hub.root / "big.csv", {"format": "csv"}))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # The line is read whole (its bytes and its text), never copied over and over.
    assert peak < 4 * field, peak
