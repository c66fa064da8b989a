"""The production profile for real: Airflow on PostgreSQL, a Celery worker on Redis, the API server.

The smoke test brings the profile up with `python -m islandhub.production up` in a temporary
AIRFLOW_HOME, on a free port, with databases of its own on the PostgreSQL server and a Celery
queue of its own on a Redis db of the tests; runs the school island's DAG through the real
scheduler and worker; checks the golden records in the PostgreSQL hub store; and tears
everything down, even when it fails. When CI=true, PostgreSQL and Redis must be reachable;
elsewhere the test is skipped without them (as tests/conftest.py does for PostgreSQL).

Also here, without services: the launcher's arguments, the home it writes, and the time zone
the DAGs' schedules are read in.
"""

from __future__ import annotations

import configparser
import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
import sqlalchemy as sa

from islandhub import production
from islandhub.demo.islands.school import SchoolIsland
from islandhub.privacy import crypto
from islandhub.store import open_store
from islandhub.store.tables import landing, lineage, links, residents, runs
from tests.airflow.conftest import REPO, AirflowEnv, json_line
from tests.airflow.test_dags import _count, _school_project

REDIS_URL = os.environ.get("ISLANDHUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")
DAG_ID = "islandhub__school"


# --- without services: arguments, the home, the time zone ---------------------------------


def test_up_lists_every_bad_argument_and_exits_2(
    sample_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["up", "--project", str(sample_project), "--store", "sqlite:///x.db", "--port", "0"]
    code = production.main([*args, "--broker", "amqp://guest:hunter2@mq/", "--dags", "/tmp"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--store: the production profile runs on PostgreSQL, not sqlite:///x.db" in err
    assert "--broker: a redis:// URL, not amqp://guest:***@mq/" in err
    assert "--port: 0 is not a port number" in err
    assert "no islandhub_dags.py in /tmp: give --dags DIR" in err
    assert "hunter2" not in err and "Traceback" not in err


def test_the_hub_api_needs_a_port_of_its_own(
    sample_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["up", "--project", str(sample_project), "--port", "8753", "--hub-api-port", "8753"]
    assert production.main(args) == 2
    assert "--port and --hub-api-port: both 8753; give two ports" in capsys.readouterr().err


def test_components_get_secrets_but_not_the_callers_settings(
    sample_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = production.Profile(
        project=sample_project,
        home=tmp_path / "home",
        dags=REPO / "dags",
        airflow_db="postgresql+psycopg://hub@db.example.fi/airflow",
        store="postgresql+psycopg://hub@db.example.fi/hub",
        broker="redis://127.0.0.1:6379/6",
        hub_api_port=18753,
    )
    monkeypatch.setenv("ISLANDHUB_API_KEY_PORTAL", "a-client-key-by-reference")
    monkeypatch.setenv("ISLANDHUB_PURPOSE", "the caller's own purpose")
    monkeypatch.setenv("ISLANDHUB_STORE_URL", "sqlite:///the-callers.db")
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "SequentialExecutor")
    env = production.component_environment(profile)
    assert env["ISLANDHUB_API_KEY_PORTAL"] == "a-client-key-by-reference"
    assert env["ISLANDHUB_STORE_URL"] == profile.store
    assert env[production.HUB_API_ENV] == "http://127.0.0.1:18753"
    assert "ISLANDHUB_PURPOSE" not in env and "AIRFLOW__CORE__EXECUTOR" not in env
    hub_api = production._commands(profile)["hub-api"]
    assert hub_api[-8:] == [
        *("api", "serve", "--host", "127.0.0.1", "--port", "18753", "--workers", "1")
    ]


def test_status_and_down_of_a_home_that_never_ran(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert production.main(["status", "--home", str(tmp_path)]) == 1
    assert "scheduler      stopped" in capsys.readouterr().out
    assert production.main(["down", "--home", str(tmp_path)]) == 0
    assert "down: not running" in capsys.readouterr().out


def test_the_home_keeps_its_secrets_private_and_across_rewrites(
    sample_project: Path, tmp_path: Path
) -> None:
    profile = production.Profile(
        project=sample_project,
        home=tmp_path / "home",
        dags=REPO / "dags",
        airflow_db="postgresql+psycopg://hub:p%40ss@db.example.fi/airflow",
        store="postgresql+psycopg://hub@db.example.fi/hub",
        broker="redis://127.0.0.1:6379/6",
        port=18080,
    )
    production.write_home(profile)
    first = _config(profile.home)
    production.write_home(profile)
    again = _config(profile.home)
    assert first["core"]["fernet_key"] == again["core"]["fernet_key"]
    assert first["api_auth"]["jwt_secret"] == again["api_auth"]["jwt_secret"]
    assert again["core"]["executor"] == "CeleryExecutor"
    assert again["core"]["default_timezone"] == "Europe/Helsinki"
    assert again["core"]["execution_api_server_url"] == "http://127.0.0.1:18080/execution/"
    assert again["api"]["host"] == "127.0.0.1"
    # Airflow reads airflow.cfg with %-interpolation: a %-escaped password is written as %%.
    assert again["database"]["sql_alchemy_conn"].endswith("hub:p%%40ss@db.example.fi/airflow")
    assert again["celery"]["result_backend"].startswith("db+postgresql+psycopg://")
    for name in ("airflow.cfg", production.PASSWORDS_FILE, "islandhub.env"):
        assert stat.S_IMODE((profile.home / name).stat().st_mode) == 0o600, name
    env = (profile.home / "islandhub.env").read_text(encoding="utf-8")
    assert f"ISLANDHUB_PROJECT={sample_project}" in env and "ISLANDHUB_AIRFLOW_POOLS=1" in env
    assert production._configured_hub_api(profile.home) == "http://127.0.0.1:8753"


def _config(home: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(home / "airflow.cfg", encoding="utf-8")
    return parser


# The time zone the scheduler reads a DAG's cron in: its serialized timetable's next runs.
SCHEDULE_SCRIPT = """
import json, sys
import pendulum
from airflow.dag_processing.dagbag import DagBag
from airflow.serialization.serialized_objects import DagSerialization
from airflow.timetables.base import TimeRestriction
dag = DagBag(sys.argv[1]).dags["islandhub__school"]
timetable = DagSerialization.from_dict(DagSerialization.to_dict(dag)).timetable
runs = {}
for day in ("2026-01-10", "2026-07-10"):
    after = pendulum.parse(day)
    restriction = TimeRestriction(earliest=after, latest=None, catchup=True)
    info = timetable.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    runs[day] = info.run_after.isoformat()
print("SCHEDULE " + json.dumps({"timezone": dag.timezone.name, "runs": runs}))
"""


@pytest.mark.slow
def test_schedules_are_read_in_helsinki_time(airflow: AirflowEnv) -> None:
    done = airflow.python(SCHEDULE_SCRIPT, str(REPO / "dags"))
    schedule = json_line(done.stdout, "SCHEDULE ")
    assert schedule["timezone"] == "Europe/Helsinki"
    # school.yaml: "30 6 * * *" is 06:30 in Helsinki: 04:30 UTC in winter, 03:30 in summer.
    assert schedule["runs"] == {
        "2026-01-10": "2026-01-10T04:30:00+00:00",
        "2026-07-10": "2026-07-10T03:30:00+00:00",
    }


# --- the smoke test: the whole profile --------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The tests' Redis db, reachable, or a failure under CI."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(
                f"Redis is required under CI=true and cannot be reached at {REDIS_URL}: {exc}"
            )
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def databases(pg_base_url: str) -> Iterator[tuple[str, str]]:
    """A metadata database and a hub store database of this test's own, dropped afterwards."""
    token = uuid.uuid4().hex[:10]
    base = sa.engine.make_url(pg_base_url)
    urls = [base.set(database=f"islandhub_smoke_{token}_{part}") for part in ("airflow", "store")]
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        yield urls[0].render_as_string(False), urls[1].render_as_string(False)
    finally:
        with admin.connect() as conn:
            for url in urls:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        admin.dispose()


class Profile:
    """The profile under test: its launcher, its processes, its REST API."""

    def __init__(self, home: Path, port: int, hub_api_port: int) -> None:
        self.home = home
        self.api = f"http://127.0.0.1:{port}"
        self.hub_api = f"http://127.0.0.1:{hub_api_port}"
        self.sessions: set[int] = set()
        self.headers: dict[str, str] = {}

    def launch(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        """`python -m islandhub.production ARGS...` in a clean environment."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ISLANDHUB_"))}
        # The national-id secret, as an operator sets it: the store is sealed with it.
        env[crypto.KEY_ENV] = os.environ[crypto.KEY_ENV]
        # The hub API's client key, a secret named ISLANDHUB_*: it must reach the component.
        env[SMOKE_KEY_ENV] = SMOKE_KEY
        argv = [sys.executable, "-m", "islandhub.production", *args, "--home", str(self.home)]
        return subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def note_sessions(self) -> None:
        """Remember the components' sessions (from their pid files) for the leak check."""
        for pid_file in (self.home / "run").glob("*.pid"):
            self.sessions.add(int(pid_file.read_text(encoding="utf-8").split()[0]))

    def kill_leftovers(self) -> list[psutil.Process]:
        """SIGKILL live processes of the noted sessions (there should be none); those found."""
        found = []
        for process in psutil.process_iter():
            try:
                ours = os.getsid(process.pid) in self.sessions
                if ours and process.status() != psutil.STATUS_ZOMBIE:
                    process.send_signal(signal.SIGKILL)
                    found.append(process)
            except (ProcessLookupError, psutil.NoSuchProcess):
                continue
        return found

    def log_in(self) -> None:
        """A bearer token for the admin whose password `up` wrote into the home."""
        secret = json.loads((self.home / production.PASSWORDS_FILE).read_text(encoding="utf-8"))
        body = {"username": production.ADMIN, "password": secret[production.ADMIN]}
        response = requests.post(f"{self.api}/auth/token", json=body, timeout=60)
        response.raise_for_status()
        self.headers = {"Authorization": f"Bearer {response.json()['access_token']}"}

    def call(self, method: str, path: str, body: Any = None) -> requests.Response:
        """One REST API call under /api/v2."""
        url = f"{self.api}/api/v2/{path}"
        # A generous timeout: the API server has one worker on a machine that may be busy.
        return requests.request(method, url, json=body, headers=self.headers, timeout=60)

    def assert_secrets_unprinted(self, output: str) -> None:
        """Neither the launcher's output nor any log holds the admin password or Fernet key."""
        passwords = json.loads((self.home / production.PASSWORDS_FILE).read_text("utf-8"))
        fernet_key = _config(self.home)["core"]["fernet_key"]
        logs = [p.read_text("utf-8", errors="replace") for p in self.home.glob("logs/**/*.log")]
        for text in (output, *logs):
            assert passwords[production.ADMIN] not in text and fernet_key not in text

    def logs(self) -> str:
        """The tail of each component's log and task log, for a failure message."""
        parts = []
        for path in sorted(self.home.glob("logs/**/*.log")):
            text = path.read_text(encoding="utf-8", errors="replace")
            parts.append(f"--- {path.relative_to(self.home)}\n{text[-1500:]}")
        return "\n".join(parts)[-12000:]


SMOKE_KEY_ENV = "ISLANDHUB_API_KEY_SMOKE"
SMOKE_KEY = "smoke-" + uuid.uuid4().hex  # random per run, never a real credential


def _with_api_client(project: Path) -> None:
    """An API client for the smoke test in the project's hub.yaml, its key by reference."""
    hub = project / "config" / "hub.yaml"
    section = (
        "api:\n  clients:\n    smoke:\n"
        f"      api_key: {{secret: {SMOKE_KEY_ENV}}}\n      scopes: [residents:read]\n"
    )
    hub.write_text(hub.read_text(encoding="utf-8") + section, encoding="utf-8")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _manual_only(project: Path, system: str) -> None:
    """No schedule: unpausing a scheduled DAG would also start the last missed run."""
    path = project / "config" / "systems" / f"{system}.yaml"
    text = path.read_text(encoding="utf-8")
    assert 'schedule: "30 6 * * *"' in text
    path.write_text(text.replace('schedule: "30 6 * * *"', "schedule: null"), encoding="utf-8")


def _drop_queue(queue: str) -> None:
    """Remove the test's queue from Redis, with any message a stopped worker left unacked."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        for key in client.scan_iter(match=f"*{queue}*"):
            client.delete(key)
        for tag, message in client.hscan_iter("unacked"):
            if queue.encode() in message:
                client.hdel("unacked", tag)
                client.zrem("unacked_index", tag)
    finally:
        client.close()


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(300)
def test_school_dag_runs_through_scheduler_celery_worker_and_api_server(
    databases: tuple[str, str], redis_url: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    project, island = _school_project(tmp_path / "project")
    _manual_only(project, "school")
    _with_api_client(project)
    airflow_db, store_url = databases
    queue = f"islandhub_smoke_{uuid.uuid4().hex[:10]}"
    profile = Profile(tmp_path / "airflow", _free_port(), _free_port())
    try:
        up = profile.launch(
            "up",
            *("--project", str(project), "--airflow-db", airflow_db, "--store", store_url),
            *("--broker", redis_url, "--port", profile.api.rsplit(":", 1)[1]),
            *("--hub-api-port", profile.hub_api.rsplit(":", 1)[1]),
            *("--queue", queue, "--concurrency", "1", "--wait", "150"),
            timeout=200,
        )
        assert up.returncode == 0, f"{up.stdout}\n{up.stderr}\n{profile.logs()}"
        profile.assert_secrets_unprinted(up.stdout + up.stderr)
        print(f"up after {time.monotonic() - started:.0f} s")
        _run_school_dag(profile, queue, deadline=started + 240)
        print(f"the run succeeded after {time.monotonic() - started:.0f} s")
        resident_id = _check_golden_records(store_url, island)
        _check_hub_api(profile, resident_id)
        _check_celery_results(airflow_db)
    finally:
        profile.note_sessions()
        try:
            down = profile.launch("down", timeout=90)
        finally:
            leftovers = profile.kill_leftovers()
            _drop_queue(queue)
            print(f"down after {time.monotonic() - started:.0f} s")
    assert down.returncode == 0, down.stderr
    assert profile.sessions and not leftovers, f"left running: {leftovers}"


def _run_school_dag(profile: Profile, queue: str, deadline: float) -> None:
    """Trigger the school island's DAG through the REST API; wait for it to succeed."""
    status = profile.launch("status", timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    health = requests.get(f"{profile.api}/api/v2/monitor/health", timeout=60).json()
    assert {health[part]["status"] for part in production.HEALTH_CHECKED} == {"healthy"}
    profile.log_in()
    while profile.call("GET", f"dags/{DAG_ID}").status_code == 404:  # not parsed yet
        assert time.monotonic() < deadline, "the DAG processor never parsed the school DAG"
        time.sleep(2)
    assert profile.call("PATCH", f"dags/{DAG_ID}", {"is_paused": False}).ok
    triggered = profile.call("POST", f"dags/{DAG_ID}/dagRuns", {"logical_date": None})
    assert triggered.ok, triggered.text
    run_id = triggered.json()["dag_run_id"]
    state = "queued"
    while state not in ("success", "failed") and time.monotonic() < deadline:
        time.sleep(3)
        with contextlib.suppress(requests.RequestException):  # busy: ask again
            state = profile.call("GET", f"dags/{DAG_ID}/dagRuns/{run_id}").json()["state"]
    assert state == "success", f"the run is {state}\n{profile.logs()}"
    tasks = profile.call("GET", f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances").json()
    ran = sorted((t["task_id"], t["state"], t["queue"]) for t in tasks["task_instances"])
    # The queue only a Celery worker of this test consumes: the tasks ran on that worker.
    assert ran == [(task, "success", queue) for task in ("check", "land", "publish")]


def _check_hub_api(profile: Profile, resident_id: str) -> None:
    """The profile's hub API answers /health and serves a golden record the DAG published."""
    assert requests.get(f"{profile.hub_api}/health", timeout=60).json() == {"status": "ok"}
    headers = {"X-API-Key": SMOKE_KEY, "X-Purpose": "smoke test"}
    response = requests.get(
        f"{profile.hub_api}/residents/{resident_id}", headers=headers, timeout=60
    )
    assert response.status_code == 200, response.text
    assert response.json()["resident_id"] == resident_id
    refused = requests.get(f"{profile.hub_api}/residents/{resident_id}", timeout=60)
    assert refused.status_code == 401


def _check_golden_records(store_url: str, island: SchoolIsland) -> str:
    """As the `airflow dags test` test checks them, here in the PostgreSQL hub store.

    Returns one active resident's id (for the hub API's read).
    """
    store = open_store(store_url)
    try:
        with store.connect() as conn:
            landed = _count(conn, landing, "pupils")
            linked = _count(conn, links, "pupils")
            active = conn.execute(
                sa.select(sa.func.count()).select_from(residents).where(residents.c.active)
            ).scalar_one()
            golden = (
                conn.execute(
                    sa.select(lineage.c.fields)
                    .select_from(residents.join(lineage, _same_version))
                    .where(residents.c.active)
                )
                .scalars()
                .all()
            )
            kinds = conn.execute(sa.select(runs.c.kind, runs.c.status)).all()
            one = conn.execute(
                sa.select(residents.c.resident_id).where(residents.c.active).limit(1)
            ).scalar_one()
    finally:
        store.dispose()
    assert landed == len(island.rows) > 0
    assert linked == landed - len(island.planted["pupils"])
    assert active > 0 and len(golden) == active
    assert all('"school"' in fields for fields in golden)  # lineage names the island
    assert sorted(kinds) == [("publish", "succeeded"), ("sync", "succeeded")]
    return str(one)


_same_version = sa.and_(
    lineage.c.resident_id == residents.c.resident_id, lineage.c.version == residents.c.version
)


def _check_celery_results(airflow_db: str) -> None:
    """The result backend is the metadata database: one SUCCESS per task the worker ran."""
    engine = sa.create_engine(airflow_db)
    # Airflow may see the last task succeed a moment before the worker has stored its result
    # as SUCCESS (it reads STARTED until then): wait for it, within a bound.
    deadline = time.monotonic() + 60
    try:
        while True:
            with engine.connect() as conn:
                query = sa.text("SELECT status FROM celery_taskmeta")
                statuses = conn.execute(query).scalars().all()
            if statuses == ["SUCCESS"] * 3 or time.monotonic() > deadline:
                break
            time.sleep(1)
    finally:
        engine.dispose()
    assert statuses == ["SUCCESS"] * 3
