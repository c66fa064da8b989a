"""The msgraph connector against a fake Graph: paging, delta, resync, $batch, 429s, secrets."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.base import Batch, StreamSpec
from connectors.msgraph import GraphConnector, PushRejected
from connectors.testing import final_state, pull_all
from islandhub.errors import ConfigError, FatalSourceError, RetriableSourceError
from islandhub.secrets import Secret
from tests.fakes.graph_island import (
    SAMPLES,
    GraphIsland,
    contact,
    customer,
    running_graph,
    task,
    user,
)

MAILBOX = "kanslia@sipoo.fi"
BUSINESS = "simhallen@sipoo.fi"


@pytest.fixture
def graph() -> Iterator[GraphIsland]:
    with running_graph(GraphIsland(page_size=8)) as island:
        for n in range(23):
            island.users.add(user(n))
        for n in range(9):
            island.collection("contacts", MAILBOX).add(contact(n))
            island.collection("customers", BUSINESS).add(customer(n))
            island.collection("tasks", "plan-1").add(task(n))
        yield island


def connector(graph: GraphIsland, streams: dict[str, dict[str, Any]] | None = None,
              **connection: Any) -> GraphConnector:
    streams = streams if streams is not None else {"users": {"page_size": 5}}
    specs = {name: StreamSpec(name, options) for name, options in streams.items()}
    return GraphConnector("m365", graph.connection(**connection), specs)


def ids(batches: list[Batch]) -> list[str]:
    return [r["id"] for b in batches for r in b.records]


# ---------------------------------------------------------------- delta paging


def test_paging_follows_next_links_until_the_delta_link(graph: GraphIsland) -> None:
    records, batches = pull_all(connector(graph), "users")
    assert len(records) == 23 and len(set(ids(batches))) == 23
    assert [len(b.records) for b in batches] == [5, 5, 5, 5, 3]
    assert all(set(b.state) == {"next_link"} for b in batches[:-1])
    assert set(batches[-1].state) == {"delta_link"}
    assert "$deltatoken=" in batches[-1].state["delta_link"]
    calls = graph.requests_to("/users/delta")
    assert calls[0].query["$top"] == "5" and all("$skiptoken" in c.query for c in calls[1:])


def test_a_mid_round_state_resumes_the_round(graph: GraphIsland) -> None:
    everything, batches = pull_all(connector(graph), "users")
    rest, after = pull_all(connector(graph), "users", batches[1].state)
    assert ids(batches[:2]) + [r["id"] for r in rest] == [r["id"] for r in everything]
    assert set(after[-1].state) == {"delta_link"}


def test_the_delta_link_brings_changes_and_removals(graph: GraphIsland) -> None:
    graph_connector = connector(graph)
    _, batches = pull_all(graph_connector, "users")
    first_user = next(iter(graph.users.items))
    graph.users.update(first_user, city="Porvoo")
    graph.users.remove("user-2")
    graph.users.remove("user-3", reason="changed")  # left the app's scope
    news, after = pull_all(graph_connector, "users", final_state(batches))
    assert [(r["id"], r["city"]) for r in news] == [(first_user, "Porvoo")]
    assert sorted(d for b in after for d in b.deleted) == ["user-2", "user-3"]


def test_an_item_twice_in_one_round_is_emitted_once_last_wins(graph: GraphIsland) -> None:
    graph_connector = connector(graph, {"users": {}})
    _, batches = pull_all(graph_connector, "users")
    graph.repeat_changes = True
    graph.users.update("user-4", city="Borgå")
    graph.users.update("user-4", city="Helsingfors")
    graph.users.update("user-5", city="Kerava")
    graph.users.remove("user-5")
    after = list(graph_connector.pull("users", final_state(batches)))
    page = graph.requests_to("/users/delta")[-1]
    assert "$deltatoken" in page.query  # one page, in which both came twice
    assert [(r["id"], r["city"]) for r in after[0].records] == [("user-4", "Helsingfors")]
    assert after[0].deleted == ["user-5"]


def test_select_holds_exactly_the_configured_fields(graph: GraphIsland) -> None:
    fields = ["id", "displayName", "mail", "postalCode"]
    records, _ = pull_all(connector(graph, {"users": {"select": fields}}), "users")
    sent = graph.requests_to("/users/delta")[0].query["$select"]
    assert sent.split(",") == fields
    assert all(set(r) <= set(fields) for r in records)


def test_select_is_applied_here_where_graph_has_no_select(graph: GraphIsland) -> None:
    streams = {"bookings_customers": {"business": BUSINESS, "select": ["id", "emailAddress"]}}
    records, _ = pull_all(connector(graph, streams), "bookings_customers")
    assert records and all(set(r) == {"id", "emailAddress"} for r in records)
    assert all("$select" not in r.query for r in graph.requests_to("/customers"))


# ---------------------------------------------------------------- resync


@pytest.mark.parametrize(
    ("status", "code"), [(410, "syncStateNotFound"), (400, "resyncRequired")]
)
def test_an_expired_delta_token_starts_a_full_round_again(
    graph: GraphIsland, caplog: pytest.LogCaptureFixture, status: int, code: str
) -> None:
    graph_connector = connector(graph)
    _, batches = pull_all(graph_connector, "users")
    graph.expire_delta_tokens(status, code)
    with caplog.at_level(logging.WARNING, logger="connectors.msgraph"):
        again, after = pull_all(graph_connector, "users", final_state(batches))
    assert len({r["id"] for r in again}) == 23  # everything once more, no crash
    assert "starting a full round again" in caplog.text
    assert set(after[-1].state) == {"delta_link"}


def test_an_expired_page_token_mid_round_restarts_the_round(graph: GraphIsland) -> None:
    graph_connector = connector(graph)
    _, batches = pull_all(graph_connector, "users")
    graph.expire_delta_tokens()
    rest, _ = pull_all(graph_connector, "users", batches[2].state)
    assert len({r["id"] for r in rest}) == 23


def test_an_expired_page_token_falls_back_to_the_last_delta_link(
    graph: GraphIsland, caplog: pytest.LogCaptureFixture
) -> None:
    graph_connector = connector(graph)
    _, batches = pull_all(graph_connector, "users")
    added = [graph.users.add(user(100 + n)) for n in range(12)]
    first = next(graph_connector.pull("users", final_state(batches)))
    assert set(first.state) == {"next_link", "delta_link"}
    graph.expire_delta_tokens(pages_only=True)
    with caplog.at_level(logging.WARNING, logger="connectors.msgraph"):
        rest, _ = pull_all(graph_connector, "users", first.state)
    assert sorted(r["id"] for r in rest) == sorted(added)  # the changes again, not everyone
    assert "replaying the last delta link" in caplog.text


def test_a_fresh_round_that_is_refused_is_not_retried_forever(graph: GraphIsland) -> None:
    graph.denied.add("users")
    with pytest.raises(FatalSourceError, match="HTTP 403"):
        pull_all(connector(graph), "users")


# ---------------------------------------------------------------- snapshot streams


def test_snapshot_streams_return_only_changes_and_report_vanished_ids(
    graph: GraphIsland,
) -> None:
    streams = {"contacts": {"user": MAILBOX, "page_size": 4}}
    graph_connector = connector(graph, streams)
    records, batches = pull_all(graph_connector, "contacts")
    assert len(records) == 9 and "personalNotes" not in records[0]
    assert graph.requests_to("/contacts")[0].query["$top"] == "4"
    shelf = graph.collection("contacts", MAILBOX)
    changed, gone = list(shelf.items)[2], list(shelf.items)[5]
    shelf.update(changed, mobilePhone="+358409999999")
    shelf.remove(gone)
    news, after = pull_all(graph_connector, "contacts", final_state(batches))
    assert [r["id"] for r in news] == [changed]
    assert [d for b in after for d in b.deleted] == [gone]
    assert gone not in after[-1].state["fingerprints"]


def test_planner_tasks_keep_their_etag_and_a_changed_etag_alone_is_no_change(
    graph: GraphIsland,
) -> None:
    streams = {"planner_tasks": {"plan": "plan-1"}}
    records, batches = pull_all(connector(graph, streams), "planner_tasks")
    assert all(r["@odata.etag"].startswith('W/"') for r in records)
    again, _ = pull_all(connector(graph, streams), "planner_tasks", final_state(batches))
    assert again == []


def test_calendar_events_send_the_window_and_the_page_size_header(graph: GraphIsland) -> None:
    for n in range(7):
        graph.collection("calendars", MAILBOX).add(SAMPLES["calendars"](n))
    graph.collection("calendars", MAILBOX).add(
        {**SAMPLES["calendars"](99), "start": {"dateTime": "2026-06-01T09:00:00"}}
    )
    streams = {"calendar_events": {"user": MAILBOX, "start": "2025-01-01T00:00:00Z",
                                   "end": "2025-02-01T00:00:00Z", "page_size": 3}}
    records, batches = pull_all(connector(graph, streams), "calendar_events")
    first = graph.requests_to("/calendarView/delta")[0]
    assert first.query["startDateTime"] == "2025-01-01T00:00:00Z"
    assert first.headers["prefer"] == "odata.maxpagesize=3"
    assert len(records) == 7 and len(batches) == 3 and "body" not in records[0]


# ---------------------------------------------------------------- push through $batch


def test_batch_splits_45_updates_into_3_requests_of_at_most_20(graph: GraphIsland) -> None:
    shelf = graph.collection("contacts", MAILBOX)
    for n in range(36):
        shelf.add(contact(100 + n))
    updates = [{"id": i, "jobTitle": "Invånare"} for i in list(shelf.items)[:45]]
    connector(graph, {"contacts": {"user": MAILBOX}}).push("contacts", updates)
    assert graph.batch_sizes == [20, 20, 5]
    assert all(item["jobTitle"] == "Invånare" for item in shelf.items.values())


def test_one_refused_item_is_named_and_the_others_are_written(graph: GraphIsland) -> None:
    shelf = graph.collection("contacts", MAILBOX)
    first = next(iter(shelf.items))
    records = [{"id": first, "jobTitle": "Kanslist"}, {"id": "contact-missing", "jobTitle": "x"}]
    with pytest.raises(PushRejected) as caught:
        connector(graph, {"contacts": {"user": MAILBOX}}).push("contacts", records)
    assert "record 1" in str(caught.value) and "HTTP 404" in str(caught.value)
    assert [r.position for r in caught.value.rejected] == ["record 1 (id contact-missing)"]
    assert shelf.items[first]["jobTitle"] == "Kanslist"


def test_new_records_are_found_again_by_their_key(graph: GraphIsland) -> None:
    streams = {"bookings_customers": {"business": BUSINESS}}
    new = [{"displayName": "Ny Kund", "emailAddress": "ny.kund@example.fi"}]
    shelf = graph.collection("customers", BUSINESS)
    for _ in range(3):
        connector(graph, streams).push("bookings_customers", new)
    assert [c["emailAddress"] for c in shelf.items.values()].count("ny.kund@example.fi") == 1
    posts = [r for r in graph.requests if r.method == "POST" and r.path.endswith("/customers")]
    assert len(posts) == 1


def test_a_post_answered_503_after_it_landed_is_not_created_twice(graph: GraphIsland) -> None:
    graph.lose_post_answers = 1
    streams = {"bookings_customers": {"business": BUSINESS}}
    new = [{"displayName": "Ny Kund", "emailAddress": "ny.kund@example.fi"}]
    connector(graph, streams).push("bookings_customers", new)
    shelf = graph.collection("customers", BUSINESS)
    assert [c["emailAddress"] for c in shelf.items.values()].count("ny.kund@example.fi") == 1


def test_a_new_record_without_its_key_is_rejected(graph: GraphIsland) -> None:
    with pytest.raises(PushRejected, match=r"needs its key emailAddresses\.0\.address"):
        connector(graph, {"contacts": {"user": MAILBOX}}).push("contacts", [{"surname": "X"}])


def test_throttled_batch_items_are_retried(graph: GraphIsland) -> None:
    graph.throttle, graph.retry_after = 0.3, "0"
    shelf = graph.collection("contacts", MAILBOX)
    updates = [{"id": i, "jobTitle": "Rådgivare"} for i in shelf.items]
    connector(graph, {"contacts": {"user": MAILBOX}}, retries=10).push("contacts", updates)
    assert graph.throttled > 0
    assert all(item["jobTitle"] == "Rådgivare" for item in shelf.items.values())


def test_read_only_streams_refuse_pushes(graph: GraphIsland) -> None:
    with pytest.raises(FatalSourceError, match="read-only"):
        connector(graph).push("users", [{"id": "user-1"}])


# ---------------------------------------------------------------- failures


def test_throttling_everything_fails_after_retries_without_a_batch(graph: GraphIsland) -> None:
    graph.throttle, graph.retry_after = 1.0, "0"
    pulled: list[Batch] = []
    with pytest.raises(RetriableSourceError, match="gave up after 2 retries"):
        for batch in connector(graph, retries=2).pull("users", None):
            pulled.append(batch)
    assert pulled == []  # no batch, so no new state: the committed one stays


def test_an_access_token_revoked_mid_pull_is_fetched_again(graph: GraphIsland) -> None:
    pulled = connector(graph).pull("users", None)
    first = next(pulled)
    graph.revoke_access_tokens()
    rest = list(pulled)
    assert len(first.records) + sum(len(b.records) for b in rest) == 23
    assert graph.tokens_issued == 2


def test_a_stream_missing_its_owner_is_a_config_error(graph: GraphIsland) -> None:
    with pytest.raises(ConfigError) as caught:
        connector(graph, {"contacts": {}, "kalender": {"resource": "calendar"}})
    text = str(caught.value)
    assert "streams.contacts.user: a contacts stream needs `user`" in text
    assert "unknown Graph resource 'calendar'" in text and "calendar_events" in text


# ---------------------------------------------------------------- check and secrets


def test_check_accepts_the_app_and_names_what_it_read(graph: GraphIsland) -> None:
    result = connector(graph, {"users": {}, "contacts": {"user": MAILBOX}}).check()
    assert result.ok, result.message
    assert "users" in result.message and "contacts" in result.message


def test_check_with_a_wrong_client_secret_says_so_without_the_secret(
    graph: GraphIsland,
) -> None:
    result = connector(graph, client_secret="Wr0ng~secret.value").check()
    assert not result.ok
    assert "AADSTS7000215" in result.message and "client secret is wrong" in result.message
    assert "Wr0ng~secret.value" not in result.message


def test_check_names_the_missing_permission(graph: GraphIsland) -> None:
    graph.denied.add("bookings")
    streams = {"users": {}, "bookings_customers": {"business": BUSINESS}}
    result = connector(graph, streams).check()
    assert not result.ok
    assert "missing permission" in result.message and "Bookings.Read.All" in result.message


def test_check_of_an_unreachable_endpoint_fails_quickly(graph: GraphIsland) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = f"http://127.0.0.1:{port}"
    result = connector(graph, token_url=f"{closed}/t/oauth2/v2.0/token").check()
    assert not result.ok and "cannot reach the token endpoint" in result.message
    result = connector(graph, base_url=f"{closed}/v1.0").check()
    assert not result.ok and "cannot be reached" in result.message


def test_secrets_and_tokens_never_reach_logs_or_errors(
    graph: GraphIsland, caplog: pytest.LogCaptureFixture
) -> None:
    secret = Secret("M365_CLIENT_SECRET", graph.client_secret)
    graph.throttle, graph.retry_after = 0.3, "0"
    streams = {"users": {}, "contacts": {"user": MAILBOX}}
    messages: list[str] = []
    with caplog.at_level(logging.DEBUG):
        graph_connector = connector(graph, streams, client_secret=secret, retries=10)
        assert graph_connector.check().ok
        pull_all(graph_connector, "users")
        with pytest.raises(PushRejected) as refused:
            graph_connector.push("contacts", [{"id": "contact-missing", "surname": "X"}])
        messages.append(str(refused.value))
        messages.append(connector(graph, client_secret="Wr0ng~secret.value").check().message)
        with pytest.raises(FatalSourceError) as bad_link:
            pull_all(connector(graph), "users", {"next_link": f"{graph.base_url}/nowhere"})
        messages.append(str(bad_link.value))
    assert graph.throttled and "retry" in caplog.text  # the logs were exercised
    text = caplog.text + "\n".join(messages) + repr(graph_connector.connection)
    assert graph.client_secret not in text and "Wr0ng~secret.value" not in text
    assert graph.issued and not any(token in text for token in graph.issued)
