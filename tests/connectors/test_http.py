"""The shared HTTP client against real loopback servers: errors, retries, auth, budget, limits."""

from __future__ import annotations

import email.utils
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import jsonschema
import pytest

from connectors.http import (
    AUTH_KINDS,
    HttpClient,
    RateBudget,
    auth_schema,
    backoff_delay,
    make_auth,
    parse_retry_after,
    redact,
)
from islandhub.errors import FatalSourceError, RetriableSourceError
from islandhub.secrets import Secret
from tests.fakes.http_island import (
    CLIENT_ID,
    CLIENT_SECRET,
    IslandServer,
    Reply,
    Request,
)

TOKEN = "s3cret-bearer-token-0042"
FAST = {"retries": 3, "backoff": 0.01, "max_backoff": 5.0}


@pytest.fixture
def island() -> Iterator[IslandServer]:
    with IslandServer({"type": "bearer", "token": TOKEN}) as server:
        server.route("GET", r"/ok", lambda r: Reply(200, {"hello": "world"}))
        yield server


def client_for(server: IslandServer, **options: Any) -> HttpClient:
    options = {**FAST, "auth": {"type": "bearer", "token": TOKEN}, **options}
    return HttpClient("test", base_url=server.url, **options)


def sequence(*replies: Reply) -> Callable[[Request], Reply]:
    """A route answering with each reply in turn, then the last one forever."""
    answers = itertools.chain(replies, itertools.repeat(replies[-1]))
    return lambda _request: next(answers)


OK = Reply(200, {"ok": True})


# ---------------------------------------------------------------- errors and retries


def test_a_json_answer_is_parsed(island: IslandServer) -> None:
    document, response = client_for(island).get_json("/ok")
    assert document == {"hello": "world"} and response.status_code == 200


def test_retry_after_in_seconds_is_honoured(island: IslandServer) -> None:
    island.route("GET", r"/busy", sequence(Reply(429, {}, {"Retry-After": "1"}), OK))
    started = time.monotonic()
    document, _ = client_for(island).get_json("/busy")
    assert document == {"ok": True}
    assert 0.9 <= time.monotonic() - started < 3


def test_retry_after_as_an_http_date_is_honoured(island: IslandServer) -> None:
    later = email.utils.formatdate(time.time() + 2, usegmt=True)
    island.route("GET", r"/busy", sequence(Reply(503, {}, {"Retry-After": later}), OK))
    started = time.monotonic()
    client_for(island).get_json("/busy")
    # An HTTP-date has whole seconds: the wait is between 1 and 2 s.
    assert 0.9 <= time.monotonic() - started < 3.5


def test_retry_after_is_capped_by_max_backoff(island: IslandServer) -> None:
    island.route("GET", r"/busy", sequence(Reply(429, {}, {"Retry-After": "3600"}), OK))
    started = time.monotonic()
    client_for(island, max_backoff=0.2).get_json("/busy")
    assert 0.15 <= time.monotonic() - started < 1.5


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    delays = [backoff_delay(attempt, None, 0.5, 4.0) for attempt in range(12) for _ in range(20)]
    assert all(0 <= d <= 4.0 for d in delays)
    assert max(backoff_delay(0, None, 0.5, 4.0) for _ in range(50)) <= 0.5
    assert backoff_delay(3, 2.5, 0.5, 4.0) == 2.5  # Retry-After wins over the jitter
    assert backoff_delay(3, 99, 0.5, 4.0) == 4.0


def test_parse_retry_after_reads_both_forms() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    past = email.utils.formatdate(time.time() - 100, usegmt=True)
    assert parse_retry_after(past) == 0.0
    future = parse_retry_after(email.utils.formatdate(time.time() + 30, usegmt=True))
    assert future is not None and 28 <= future <= 30


def test_server_errors_are_retried_then_propagate(island: IslandServer) -> None:
    island.route("GET", r"/down", sequence(Reply(503, {"detail": "maintenance"})))
    with pytest.raises(RetriableSourceError, match=r"HTTP 503.*gave up after 3 retries"):
        client_for(island, max_backoff=0.01).get_json("/down")
    assert sum(1 for _, path, _ in island.seen if path == "/down") == 4


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_other_client_errors_are_fatal_without_retry(island: IslandServer, status: int) -> None:
    island.route("GET", r"/bad", sequence(Reply(status, {"detail": "no such thing"})))
    with pytest.raises(FatalSourceError, match=f"HTTP {status}.*no such thing"):
        client_for(island).get_json("/bad")
    assert sum(1 for _, path, _ in island.seen if path == "/bad") == 1


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_fatal_and_say_so(island: IslandServer, status: int) -> None:
    island.route("GET", r"/private", sequence(Reply(status, {"detail": "denied"})), protected=False)
    with pytest.raises(FatalSourceError, match="check the auth settings"):
        client_for(island).get_json("/private")


def test_a_reset_connection_is_retried(island: IslandServer) -> None:
    island.faults.rate, island.faults.kinds = 1.0, ("reset",)
    with pytest.raises(RetriableSourceError, match="connection failed"):
        client_for(island, retries=1).get_json("/ok")


def test_a_timeout_is_retriable(island: IslandServer) -> None:
    island.faults.rate, island.faults.kinds, island.faults.slow_seconds = 1.0, ("slow",), 0.5
    with pytest.raises(RetriableSourceError, match="timeout"):
        client_for(island, retries=0, timeout=0.1).get_json("/ok")


def test_a_truncated_json_body_is_retried(island: IslandServer) -> None:
    big = {"results": [{"id": i, "name": "Åsa Lindqvist"} for i in range(200)]}
    cut = Reply(200, raw='{"results": [{"id": 1, "name": "Åsa'.encode(), length=False)
    island.route("GET", r"/cut", sequence(cut, Reply(200, big)))
    document, _ = client_for(island).get_json("/cut")
    assert document == big
    island.faults.rate, island.faults.kinds = 1.0, ("truncate",)  # Content-Length mismatch
    with pytest.raises(RetriableSourceError):
        client_for(island, retries=1).get_json("/ok")


def test_an_html_error_page_is_fatal_with_a_masked_excerpt(island: IslandServer) -> None:
    page = (f"<html><body><h1>Login</h1><p>user 131052-308T token {TOKEN}</p></body></html>")
    island.route("GET", r"/html", sequence(Reply(200, raw=page.encode(),
                                                 headers={"Content-Type": "text/html"})))
    with pytest.raises(FatalSourceError) as caught:
        client_for(island).get_json("/html")
    message = str(caught.value)
    assert "expected JSON, got text/html" in message and "<h1>Login" in message
    assert "131052-***T" in message and "308T" not in message and TOKEN not in message


def test_an_answer_over_the_size_limit_is_fatal(island: IslandServer) -> None:
    big = {"results": ["x" * 100] * 100}
    island.route("GET", r"/big", sequence(Reply(200, big)))
    island.route("GET", r"/stream", sequence(Reply(200, big, length=False)))
    with pytest.raises(FatalSourceError, match="max_response_bytes=1000"):
        client_for(island, max_response_bytes=1000).get_json("/big")
    with pytest.raises(FatalSourceError, match="exceeds the limit max_response_bytes=1000"):
        client_for(island, max_response_bytes=1000).get_json("/stream")
    assert client_for(island, max_response_bytes=100_000).get_json("/stream")[0] == big


def test_tls_verification_is_on_unless_switched_off(island: IslandServer) -> None:
    assert client_for(island).session.verify is True
    assert client_for(island, verify=False).session.verify is False


def test_credentials_go_only_to_the_islands_own_origin(island: IslandServer) -> None:
    with IslandServer() as elsewhere:
        elsewhere.route("GET", r"/page2", sequence(OK))
        client_for(island).get_json(f"{elsewhere.url}/page2")
        assert "Authorization" not in elsewhere.seen[-1][2]
    client_for(island).get_json("/ok")
    assert island.seen[-1][2]["Authorization"] == f"Bearer {TOKEN}"


def test_a_redirect_elsewhere_carries_no_credential_header(island: IslandServer) -> None:
    key = {"type": "api_key", "name": "X-Api-Key", "value": "redirected-key-31"}
    island.auth = key
    with IslandServer() as elsewhere:
        elsewhere.route("GET", r"/landing", sequence(OK))
        island.route("GET", r"/moved", sequence(
            Reply(302, {}, {"Location": f"{elsewhere.url}/landing"})))
        assert client_for(island, auth=key).get_json("/moved")[0] == {"ok": True}
        assert "X-Api-Key" not in elsewhere.seen[-1][2]
    assert island.seen[-1][2]["X-Api-Key"] == "redirected-key-31"


def test_a_base_url_path_is_kept(island: IslandServer) -> None:
    client = HttpClient("test", base_url=f"{island.url}/v1/")
    assert client.url("reservation/") == f"{island.url}/v1/reservation/"
    assert client.url("/reservation/") == f"{island.url}/v1/reservation/"
    assert client.url("https://other.example/x") == "https://other.example/x"


# ---------------------------------------------------------------- auth


@pytest.fixture
def oauth_island() -> Iterator[IslandServer]:
    with IslandServer({"type": "oauth2"}) as server:
        server.route("GET", r"/patrons", lambda r: Reply(200, [{"patron_id": 1}]))
        yield server


def oauth_client(server: IslandServer, secret: Any = CLIENT_SECRET) -> HttpClient:
    auth = {"type": "oauth2_client_credentials", "token_url": f"{server.url}/api/v1/oauth/token",
            "client_id": CLIENT_ID, "client_secret": secret, "scope": "patrons"}
    return HttpClient("koha", base_url=server.url, auth=auth, **FAST)


def test_the_oauth2_token_is_cached(oauth_island: IslandServer) -> None:
    client = oauth_client(oauth_island, Secret("KOHA_SECRET", CLIENT_SECRET))
    for _ in range(20):
        client.get_json("/patrons")
    assert oauth_island.token_requests == 1


def test_a_401_refreshes_the_oauth2_token_once(oauth_island: IslandServer) -> None:
    client = oauth_client(oauth_island)
    client.get_json("/patrons")
    oauth_island.revoke_tokens()
    assert client.get_json("/patrons")[0] == [{"patron_id": 1}]
    assert oauth_island.token_requests == 2


def test_a_401_after_the_refresh_is_fatal(oauth_island: IslandServer) -> None:
    oauth_island.route("GET", r"/never", sequence(Reply(401, {"detail": "no"})), protected=False)
    with pytest.raises(FatalSourceError, match="check the auth settings"):
        oauth_client(oauth_island).get_json("/never")
    assert oauth_island.token_requests == 2
    assert sum(1 for _, path, _ in oauth_island.seen if path == "/never") == 2


def test_a_refused_client_secret_is_fatal(oauth_island: IslandServer) -> None:
    with pytest.raises(FatalSourceError, match=r"token.*HTTP 401.*check the auth") as caught:
        oauth_client(oauth_island, "wrong-secret-value").get_json("/patrons")
    assert "wrong-secret-value" not in str(caught.value)


@pytest.mark.parametrize(
    ("auth", "check"),
    [
        ({"type": "basic", "username": "hub", "password": "pw-123456"},
         lambda seen: seen[2]["Authorization"] == "Basic aHViOnB3LTEyMzQ1Ng=="),
        ({"type": "api_key", "name": "X-Api-Key", "value": "key-123456"},
         lambda seen: seen[2]["X-Api-Key"] == "key-123456"),
        ({"type": "api_key", "name": "api_key", "in": "query", "value": "key-654321"},
         lambda seen: seen[1] == "/ok?api_key=key-654321"),
    ],
)
def test_each_auth_kind_sends_its_credential(
    island: IslandServer, auth: dict[str, Any], check: Callable[[Any], bool]
) -> None:
    island.auth = auth
    client_for(island, auth=auth).get_json("/ok")
    assert check(island.seen[-1])


def test_auth_schema_marks_secrets_and_validates_blocks() -> None:
    schema = auth_schema()
    secrets = {
        (branch["then"]["properties"]["type"]["const"], name)
        for branch in schema["allOf"]
        for name, prop in branch["then"]["properties"].items()
        if isinstance(prop, dict) and prop.get("secret")
    }
    assert secrets == {("bearer", "token"), ("basic", "password"), ("api_key", "value"),
                       ("oauth2_client_credentials", "client_secret")}
    jsonschema.validate({"type": "api_key", "name": "k", "in": "query", "value": "v"}, schema)
    with pytest.raises(jsonschema.ValidationError, match="is not one of"):
        jsonschema.validate({"type": "beare", "token": "t"}, schema)
    with pytest.raises(jsonschema.ValidationError, match="'token' is a required property"):
        jsonschema.validate({"type": "bearer"}, schema)
    assert set(AUTH_KINDS) == {"bearer", "basic", "api_key", "oauth2_client_credentials"}


def test_an_unknown_auth_type_names_the_known_ones() -> None:
    with pytest.raises(FatalSourceError, match="api_key, basic, bearer"):
        make_auth({"type": "kerberos"}, HttpClient("x", base_url="http://127.0.0.1:9"))


# ---------------------------------------------------------------- rate budget


def test_the_rate_budget_is_shared_by_clients_with_the_same_key(island: IslandServer) -> None:
    clients = [client_for(island, rate=20, rate_key="tenant-753") for _ in range(2)]

    def work(client: HttpClient) -> None:
        for _ in range(10):
            client.get_json("/ok")

    started = time.monotonic()
    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 20 requests at 20 a second, shared: at least 19 intervals of 50 ms.
    assert time.monotonic() - started >= 0.9
    assert clients[0].budget is clients[1].budget


def test_a_rate_budget_spaces_requests_and_separate_keys_do_not_share() -> None:
    assert RateBudget.shared("k-a", 10) is not RateBudget.shared("k-b", 10)
    assert RateBudget.shared("k-c", 10).interval == pytest.approx(0.1)
    assert RateBudget.shared("k-c", 5).interval == pytest.approx(0.2)  # the lowest rate wins
    budget = RateBudget(50)
    started = time.monotonic()
    for _ in range(6):
        budget.acquire()
    assert time.monotonic() - started >= 0.09


# ---------------------------------------------------------------- redaction


SECRETS = ["s3cret-bearer-token-0042", "pw-abcdef-777", "key-in-query-99", CLIENT_SECRET]


def test_no_secret_reaches_a_log_line_or_an_error(
    island: IslandServer, oauth_island: IslandServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    island.route("GET", r"/boom", sequence(Reply(500, raw=b"<html>oops</html>")))
    errors = []
    auths = [
        {"type": "bearer", "token": Secret("T", SECRETS[0])},
        {"type": "basic", "username": "hub", "password": Secret("P", SECRETS[1])},
        {"type": "api_key", "name": "api_key", "in": "query", "value": SECRETS[2]},
    ]
    for auth in auths:
        island.auth = {k: v.reveal() if isinstance(v, Secret) else v for k, v in auth.items()}
        client = client_for(island, auth=auth, retries=1, max_backoff=0.01)
        client.get_json("/ok")
        with pytest.raises(RetriableSourceError) as caught:
            client.get_json("/boom")
        errors.append(str(caught.value))
        errors.append(repr(client.auth))
    with pytest.raises(FatalSourceError) as caught:
        oauth_client(oauth_island).get_json("/missing")
    errors.append(str(caught.value))
    text = caplog.text + "\n".join(errors)
    assert "api_key=***" in caplog.text  # urllib3 logged the URL, redacted
    for secret in SECRETS:
        assert secret not in text
    assert "Authorization" not in caplog.text


def test_redact_masks_national_ids_too() -> None:
    assert redact("hetu 010594Y9021 here") == "hetu 010594Y***1 here"
