"""The declarative REST connector, option by option, against the fake islands."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from connectors.base import StreamSpec
from connectors.rest import STREAM_SCHEMA, RestConnector, as_param, normalise, shift
from connectors.testing import pull_all
from islandhub.errors import FatalSourceError, SkippableRecordError
from tests.fakes.http_island import (
    API_KEY,
    FAST_RETRIES,
    TOKEN,
    FeedbackIsland,
    KohaIsland,
    LinkedEventsIsland,
    Open311Island,
    RespaIsland,
    feedback_island,
    koha_island,
    linked_events_island,
    open311_island,
    respa_island,
    respa_streams,
)


def connector(connection: dict[str, Any], streams: dict[str, dict[str, Any]]) -> RestConnector:
    specs = {name: StreamSpec(name, options) for name, options in streams.items()}
    return RestConnector("test", connection, specs)


@pytest.fixture
def respa() -> Iterator[RespaIsland]:
    with RespaIsland(records=24) as server:
        yield server


def respa_connector(server: RespaIsland, **overrides: Any) -> RestConnector:
    streams = respa_streams(page_size=8)
    streams["reservations"] = {**streams["reservations"], **overrides}
    connection = {**FAST_RETRIES, "base_url": f"{server.url}/v1",
                  "auth": {"type": "bearer", "token": TOKEN}}
    return connector(connection, streams)


def ids(records: list[dict[str, Any]], field: str = "id") -> list[str]:
    return [str(r[field]) for r in records]


# ---------------------------------------------------------------- paginators and selectors


@pytest.mark.parametrize(
    ("factory", "stream", "field", "paginator"),
    [
        (respa_island(), "reservations", "id", "next_url"),
        (linked_events_island(), "signups", "id", "next_url meta.next"),
        (koha_island(), "patrons", "patron_id", "link_header"),
        (open311_island(), "requests", "service_request_id", "offset"),
        (feedback_island(), "items", "uuid", "cursor"),
    ],
)
def test_each_paginator_reads_every_page(
    tmp_path: Any, factory: Any, stream: str, field: str, paginator: str
) -> None:
    with factory(tmp_path) as island:
        records, _ = pull_all(connector(island.connection, island.streams), stream)
        # Every island pages by 10 or fewer: more than 20 records means it followed pages.
        assert len(records) == len(set(ids(records, field))) > 20, paginator


def test_the_page_paginator_stops_at_the_total(respa: RespaIsland) -> None:
    paginator = {"type": "page", "param": "page", "size_param": "page_size", "size": 8,
                 "total": "count"}
    records, _ = pull_all(respa_connector(respa, paginator=paginator, params={}), "reservations")
    assert sorted(ids(records), key=int) == [str(n) for n in range(1, 25)]
    pages = [path for _, path, _ in respa.seen if path.startswith("/v1/reservation/?")]
    assert len(pages) == 3  # 24 records in pages of 8: no request for an empty 4th page


def test_without_a_total_a_page_past_the_end_is_a_clear_error(respa: RespaIsland) -> None:
    paginator = {"type": "page", "size": 8}
    with pytest.raises(FatalSourceError, match=r"HTTP 404.*Invalid page"):
        pull_all(respa_connector(respa, paginator=paginator, params={}), "reservations")


def test_the_page_paginator_stops_at_a_short_page() -> None:
    with LinkedEventsIsland(records=20) as server:
        connection = {**FAST_RETRIES, "base_url": server.url,
                      "auth": {"type": "api_key", "name": "apikey", "value": API_KEY}}
        stream = {"path": "/linkedevents/v1/signup/", "records": "data",
                  "paginator": {"type": "page", "size": 6}}
        records, batches = pull_all(connector(connection, {"s": stream}), "s")
        assert len(records) == 20 and len(batches) == 1


def test_the_record_selector_takes_a_dotted_path_or_the_whole_body() -> None:
    with LinkedEventsIsland(records=5) as server:
        connection = {**FAST_RETRIES, "base_url": server.url,
                      "auth": {"type": "api_key", "name": "apikey", "value": API_KEY}}
        streams = {
            "dotted": {"path": "/linkedevents/v1/signup/", "records": "data"},
            "meta": {"path": "/linkedevents/v1/signup/", "records": "meta", "id": "count"},
            "typo": {"path": "/linkedevents/v1/signup/", "records": "dta"},
        }
        hub = connector(connection, streams)
        assert len(pull_all(hub, "dotted")[0]) == 5
        assert pull_all(hub, "meta")[0][0]["count"] == 5  # an object is one record
        with pytest.raises(FatalSourceError, match=r"no 'dta'.*keys: meta, data"):
            pull_all(hub, "typo")


def test_records_without_an_id_or_not_objects_are_rejected_not_fatal() -> None:
    with Open311Island(records=3) as server:
        server.requests_table.rows["SR-2"]["service_request_id"] = None
        connection = {**FAST_RETRIES, "base_url": server.url, "auth": {
            "type": "api_key", "name": "api_key", "in": "query", "value": "o311-key-51c0de77"}}
        stream = {"path": "/open311/v2/requests.json", "id": "service_request_id"}
        batch = pull_all(connector(connection, {"r": stream}), "r")[1][0]
        assert ids(batch.records, "service_request_id") == ["SR-1", "SR-3"]
        [rejected] = batch.rejected
        assert rejected.reason == "no id in field 'service_request_id'"
        assert "o311-key" not in rejected.position and "record 1" in rejected.position


def test_a_query_api_key_never_lands_in_the_state() -> None:
    with LinkedEventsIsland(records=20) as server:
        server.auth = {"type": "api_key", "name": "apikey", "in": "query", "value": API_KEY}
        connection = {**FAST_RETRIES, "base_url": server.url, "auth": server.auth}
        stream = {"path": "/linkedevents/v1/signup/", "records": "data", "params": {"page_size": 5},
                  "paginator": {"type": "next_url", "path": "meta.next"}, "batch_size": 5}
        records, batches = pull_all(connector(connection, {"s": stream}), "s")
        assert len(records) == 20
        assert all(API_KEY not in str(b.state) for b in batches)
        assert "page=2" in batches[0].state["next"]["url"]


# ---------------------------------------------------------------- incremental


def test_cursor_values_are_normalised_and_shifted() -> None:
    assert normalise("2024-05-01T08:00:01.5+03:00") == "2024-05-01T05:00:01.500000Z"
    assert normalise("2024-05-01T05:00:01Z") == normalise("2024-05-01 05:00:01")
    assert normalise(17) == 17 and normalise("v17") == "v17" and normalise(None) is None
    assert shift("2024-05-01T05:00:01.000000Z", 90) == "2024-05-01T04:58:31.000000Z"
    assert shift(100, 5) == 95 and shift("v17", 5) == "v17"
    assert as_param("2024-05-01T05:00:01.000000Z") == "2024-05-01T05:00:01Z"
    assert as_param("2024-05-01T05:00:01.250000Z") == "2024-05-01T05:00:01.250000Z"
    assert as_param("2024-05-01T05:00:01.000000Z", "%Y-%m-%d") == "2024-05-01"


def test_the_lookback_catches_a_late_record_and_repeats_nothing(respa: RespaIsland) -> None:
    hub = respa_connector(respa)
    _, batches = pull_all(hub, "reservations")
    state = batches[-1].state
    assert state["cursor"] == "2024-05-01T05:00:08.000000Z"  # 24 records, 3 per second
    # A record committed late, stamped one second before the cursor: inside the 2 s lookback.
    [late] = respa.reservations.add(1)
    respa.reservations.when[late] = dt.datetime(2024, 5, 1, 5, 0, 7, tzinfo=dt.UTC)
    respa.reservations.version += 1
    records, after = pull_all(hub, "reservations", state)
    assert ids(records) == [late]
    assert "modified_after=2024-05-01T05%3A00%3A06Z" in respa.seen[-1][1]
    assert pull_all(hub, "reservations", after[-1].state)[0] == []


def test_the_incremental_start_bounds_the_first_run(respa: RespaIsland) -> None:
    incremental = {"cursor_field": "modified", "param": "modified_after",
                   "start": "2024-05-01T08:00:07+03:00"}
    records, _ = pull_all(respa_connector(respa, incremental=incremental), "reservations")
    assert sorted(ids(records), key=int) == [str(n) for n in range(19, 25)]


def test_a_numeric_cursor_works() -> None:
    with FeedbackIsland(records=10) as server:
        connection = {**FAST_RETRIES, "base_url": server.url,
                      "auth": {"type": "basic", "username": "hub",
                               "password": "feedback-pass-2c4e6a"}}
        stream = {"path": "/feedback/api/items", "records": "items", "id": "uuid",
                  "paginator": {"type": "cursor", "path": "next_cursor", "param": "cursor"},
                  "incremental": {"cursor_field": "version", "param": "updated_since"}}
        hub = connector(connection, {"items": stream})
        _, batches = pull_all(hub, "items")
        assert batches[-1].state["cursor"] == 5
        server.items.add(2)
        assert len(pull_all(hub, "items", batches[-1].state)[0]) == 2


# ---------------------------------------------------------------- child streams


def test_child_records_carry_their_parent_id(respa: RespaIsland) -> None:
    records, batches = pull_all(respa_connector(respa), "attendees")
    assert len(records) == 12
    assert {r["_parent_id"] for r in records} == {1, 2, 3, 4, 5, 6}
    assert all(r["reservation"] == r["_parent_id"] for r in records)
    assert batches[-1].state["done"] == []


def test_a_child_stream_revisits_only_changed_parents(respa: RespaIsland) -> None:
    hub = respa_connector(respa)
    _, batches = pull_all(hub, "attendees")
    added = respa.add_attendees(2)
    before = len(respa.seen)
    records, _ = pull_all(hub, "attendees", batches[-1].state)
    assert set(added) <= set(ids(records)) and {r["_parent_id"] for r in records} == {1}
    attendee_calls = [p for _, p, _ in respa.seen[before:] if "attendees" in p]
    assert attendee_calls == ["/v1/reservation/1/attendees/"]


def test_a_child_stream_resumes_after_a_mid_batch_state(respa: RespaIsland) -> None:
    hub = respa_connector(respa)
    _, batches = pull_all(hub, "attendees")
    middle = next(b for b in batches if b.state.get("done"))
    rest, _ = pull_all(hub, "attendees", middle.state)
    done = set(middle.state["done"])
    assert not {r["_parent_id"] for r in rest} & {int(d) for d in done}


# ---------------------------------------------------------------- deletes


def test_soft_deleted_records_become_deletes(respa: RespaIsland) -> None:
    hub = respa_connector(respa)
    _, batches = pull_all(hub, "reservations")
    respa.reservations.touch("5", state="cancelled")
    records, after = pull_all(hub, "reservations", batches[-1].state)
    assert records == [] and [d for b in after for d in b.deleted] == ["5"]


def test_tombstones_arrive_once() -> None:
    with KohaIsland(records=9) as server:
        stream = {"path": "patrons", "records": "", "id": "patron_id",
                  "paginator": {"type": "link_header"}, "params": {"_per_page": 4},
                  "incremental": {"cursor_field": "updated_on", "param": "updated_since"},
                  "deletes": {"tombstone": {"path": "deleted_patrons", "id": "patron_id",
                                            "cursor_field": "deleted_on"}}}
        connection = {**FAST_RETRIES, "base_url": f"{server.url}/api/v1", "auth": {
            "type": "oauth2_client_credentials", "token_url": f"{server.url}/api/v1/oauth/token",
            "client_id": "islandhub", "client_secret": "koha-secret-9e8d7c6b5a"}}
        hub = connector(connection, {"patrons": stream})
        _, batches = pull_all(hub, "patrons")
        gone = [server.delete(), server.delete()]
        _, after = pull_all(hub, "patrons", batches[-1].state)
        assert [d for b in after for d in b.deleted] == gone
        _, again = pull_all(hub, "patrons", after[-1].state)
        assert [d for b in again for d in b.deleted] == []


# ---------------------------------------------------------------- push


def test_push_sends_an_idempotency_key_per_record(respa: RespaIsland) -> None:
    hub = respa_connector(respa)
    records = [{"reserver_name": "Åsa Sjöberg"}, {"reserver_name": "Eino Laine"}]
    hub.push("reservations", records)
    hub.push("reservations", records)
    posts = [h for m, _, h in respa.seen if m == "POST"]
    keys = [h["Idempotency-Key"] for h in posts]
    assert len(posts) == 4 and keys[:2] == keys[2:] and keys[0] != keys[1]
    assert len(respa.pushed) == 2


def test_push_uses_a_given_key_and_fills_the_path_template(respa: RespaIsland) -> None:
    seen: list[Any] = []
    respa.route("PUT", r"/v1/reservation/(?P<id>\d+)", lambda r: seen.append(r) or _ok())
    push = {"method": "PUT", "path": "/reservation/{id}/", "idempotency_header": "X-Request-Id"}
    hub = respa_connector(respa, push=push)
    hub.push("reservations", [{"id": 7, "state": "confirmed", "_idempotency_key": "k-7"}])
    [request] = seen
    assert request.path == "/v1/reservation/7/" and request.headers["X-Request-Id"] == "k-7"
    assert b"_idempotency_key" not in request.body


def test_push_skips_records_without_the_id_its_path_needs(respa: RespaIsland) -> None:
    seen: list[Any] = []
    respa.route("PUT", r"/v1/reservation/(?P<id>\d+)", lambda r: seen.append(r) or _ok())
    hub = respa_connector(respa, push={"method": "PUT", "path": "/reservation/{id}/"})
    with pytest.raises(SkippableRecordError, match="1 of 3 records not pushed: record has no"):
        hub.push("reservations", [{"id": 1}, {"state": "x"}, {"id": 3}])
    assert [r.path for r in seen] == ["/v1/reservation/1/", "/v1/reservation/3/"]


def test_push_to_a_stream_without_push_settings_is_fatal(respa: RespaIsland) -> None:
    with pytest.raises(FatalSourceError, match="no push settings"):
        respa_connector(respa).push("attendees", [{"x": 1}])


def _ok() -> Any:
    from tests.fakes.http_island import Reply

    return Reply(200, {"ok": True})


# ---------------------------------------------------------------- config


VALID_STREAMS = [
    *respa_streams().values(),
    {"path": "x", "paginator": {"type": "page", "param": "p", "start": 0, "size": 50,
                                "total_header": "X-Total-Count"}},
    {"path": "x", "paginator": {"type": "offset", "size": 100, "total": "meta.count"}},
    {"path": "x", "deletes": {"tombstone": {"path": "gone", "id": "id", "records": "data"}}},
    {"path": "x", "push": {"method": "PATCH", "path": "x/{id}"}},
]

INVALID_STREAMS = [
    ({"path": "x", "paginator": {"type": "nxt"}}, "'nxt' is not one of ['next_url', 'link_"),
    ({"path": "x", "paginator": {"type": "page", "sise": 5}}, "'sise' was unexpected"),
    ({"path": "x", "paginator": {"type": "cursor", "path": "c", "param": "c", "size": 2}},
     "'size' was unexpected"),
    ({"path": "x", "incremental": {"param": "since"}}, "'cursor_field' is a required property"),
    ({"path": "x", "incremental": {"cursor_field": "m", "lookback": -1}},
     "-1 is less than the minimum of 0"),
    ({"parent": {"stream": "reservations", "path": "/reservation/attendees"}},
     "does not match"),
    ({"path": "x", "deletes": {"soft_field": "state"}}, "'soft_value' is a dependency"),
    ({"path": "x", "push": {"method": "DELETE"}}, "'DELETE' is not one of"),
    ({"path": "x", "method": "POST"}, "'POST' is not one of ['GET']"),
    ({"records": "results"}, "is not valid under any of the given schemas"),
    ({"path": "x", "batch_size": 0}, "0 is less than the minimum of 1"),
    ({"path": "x", "cursor": "modified"}, "'cursor' was unexpected"),
]


@pytest.mark.parametrize("options", VALID_STREAMS)
def test_valid_stream_options_pass_the_schema(options: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(STREAM_SCHEMA).validate(options)


@pytest.mark.parametrize(("options", "message"), INVALID_STREAMS)
def test_bad_stream_options_are_caught_by_the_schema(options: dict[str, Any], message: str) -> None:
    errors = list(jsonschema.Draft202012Validator(STREAM_SCHEMA).iter_errors(options))
    assert errors, options
    assert any(message in e.message for e in errors), [e.message for e in errors]


def test_the_connection_schema_takes_every_island(tmp_path: Any) -> None:
    validator = jsonschema.Draft202012Validator(RestConnector.connection_schema)
    for factory in (respa_island(), linked_events_island(), koha_island(), open311_island(),
                    feedback_island()):
        with factory(tmp_path) as island:
            validator.validate(island.connection)
    bad = {"base_url": "ftp://x", "auth": {"type": "bearer"}, "verify": "no", "retries": -1}
    messages = {e.message for e in validator.iter_errors(bad)}
    assert any("does not match '^https?://'" in m for m in messages)
    assert any("'token' is a required property" in m for m in messages)
    assert any("-1 is less than the minimum" in m for m in messages)


def test_check_reports_status_and_records(respa: RespaIsland) -> None:
    result = respa_connector(respa).check()
    assert result.ok and "HTTP 200, 8 records on page 1" in result.message
