"""The production profile: Airflow on PostgreSQL and the CeleryExecutor with Redis, on loopback.

    python -m islandhub.production up [--project DIR] [--home DIR] [--port N] ...
    python -m islandhub.production status [--project DIR] [--home DIR]
    python -m islandhub.production down [--project DIR] [--home DIR]

`up` writes an AIRFLOW_HOME (airflow.cfg, the admin's password file, islandhub.env), creates
the PostgreSQL databases it needs, runs `airflow db migrate`, migrates the hub store, imports
one pool per island, starts the scheduler, the DAG processor, one Celery worker, Airflow's API
server and the hub's own API (`islandhub api serve`, the resident record for the portal and
other services, on the same PostgreSQL store), each in its own session, its output in
AIRFLOW_HOME/logs/<component>.log, and waits until Airflow's API server reports them healthy
and the hub API's /health answers. No triggerer: the hub's tasks never defer.

Each component runs in a session of its own, its leader (pid and start time) noted in
AIRFLOW_HOME/run/<component>.pid. `status` and `down` find every process of those sessions,
task processes included (they make process groups of their own, not sessions), and never
signal a pid that another program has reused since.

Exit codes as the islandhub CLI: 0 done, 1 failed (a service down, a component died),
2 bad input (arguments, project) with the reason on stderr. Secrets (the Fernet key, the
JWT and session secrets, the admin password, passwords in URLs) go into files readable by
the owner only and are never printed.
"""

from __future__ import annotations

import argparse
import base64
import configparser
import contextlib
import io
import json
import logging
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from islandhub import orchestrate
from islandhub.errors import ConfigError, HubError, RunFailed

COMPONENTS = ("scheduler", "dag-processor", "celery-worker", "api-server", "hub-api")
#: The API server's health report names these; each must say "healthy" before `up` returns.
HEALTH_CHECKED = ("metadatabase", "scheduler", "dag_processor")
ADMIN = "admin"
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"

LOOPBACK = "127.0.0.1"
DEFAULT_AIRFLOW_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/islandhub_airflow"
DEFAULT_STORE = "postgresql+psycopg://postgres@127.0.0.1:5432/islandhub"
# Redis db 6: the profile's own keyspace, apart from anything else on the shared server.
DEFAULT_BROKER = "redis://127.0.0.1:6379/6"
DEFAULT_HUB_API_PORT = 8753  # as `islandhub api serve`
#: In islandhub.env: where the profile's hub API listens (for `status` and the operator).
HUB_API_ENV = "ISLANDHUB_API_URL"
# The caller's own hub settings that must not reach the components: who runs a CLI command and
# why, a key rotation's new key, a CLI's worker count. Other ISLANDHUB_* variables pass on:
# they may be secrets that `{secret: NAME}` references name (API keys, island passwords).
CALLER_ONLY = frozenset(
    {"ISLANDHUB_ACTOR", "ISLANDHUB_PURPOSE", "ISLANDHUB_NATIONAL_ID_KEY_NEW", "ISLANDHUB_WORKERS"}
)
REPO_DAGS = Path(__file__).resolve().parent.parent / "dags"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Profile:
    """Where the profile lives and what it talks to: plain data, resolved once from arguments."""

    project: Path
    home: Path
    dags: Path
    airflow_db: str
    store: str
    broker: str
    port: int = 8080
    hub_api_port: int = DEFAULT_HUB_API_PORT
    hub_api_workers: int = 1
    concurrency: int = 2
    queue: str = "islandhub"
    timezone: str = orchestrate.DEFAULT_TIMEZONE

    @property
    def api_url(self) -> str:
        """The API server (UI, REST API and the workers' execution API)."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def hub_api_url(self) -> str:
        """The hub's own API (`islandhub api serve`): resident reads, search, GDPR."""
        return f"http://{LOOPBACK}:{self.hub_api_port}"

    @property
    def logs(self) -> Path:
        """Task logs and each component's own log."""
        return self.home / "logs"


# --- the AIRFLOW_HOME ----------------------------------------------------------------------


def airflow_config(profile: Profile, keys: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """airflow.cfg's settings, by section; `keys` holds the secrets kept across rewrites."""
    return {
        "core": {
            "dags_folder": str(profile.dags),
            "executor": "CeleryExecutor",
            "load_examples": "False",
            "default_timezone": profile.timezone,
            "fernet_key": keys["fernet_key"],
            # Celery workers run tasks through the API server's execution API.
            "execution_api_server_url": f"{profile.api_url}/execution/",
            "simple_auth_manager_users": f"{ADMIN}:admin",
            "simple_auth_manager_passwords_file": str(profile.home / PASSWORDS_FILE),
        },
        "database": {
            "sql_alchemy_conn": profile.airflow_db,
            # Else Airflow derives an asyncpg URL for its async engine; psycopg 3 does both.
            "sql_alchemy_conn_async": profile.airflow_db,
        },
        "celery": {
            "broker_url": profile.broker,
            "result_backend": f"db+{profile.airflow_db}",
            "worker_concurrency": str(profile.concurrency),
        },
        "operators": {"default_queue": profile.queue},
        "api": {
            "host": LOOPBACK,
            "port": str(profile.port),
            "base_url": profile.api_url,
            "workers": "1",
            "secret_key": keys["secret_key"],
            "expose_config": "False",
        },
        "api_auth": {"jwt_secret": keys["jwt_secret"]},
        "logging": {"base_log_folder": str(profile.logs)},
        # One parsing process (the machine is shared; parsing 50 islands takes < 1 s); new
        # system files are picked up within a minute.
        "dag_processor": {"parsing_processes": "1", "refresh_interval": "60"},
    }


def _secret_keys(cfg: Path) -> dict[str, str]:
    """The secrets of an existing airflow.cfg, new ones where missing.

    Kept across `up`s: a new Fernet key would make every stored connection unreadable.
    """
    old = configparser.ConfigParser(interpolation=None)
    old.read(cfg, encoding="utf-8")
    found = {
        "fernet_key": old.get("core", "fernet_key", fallback=""),
        "secret_key": old.get("api", "secret_key", fallback=""),
        "jwt_secret": old.get("api_auth", "jwt_secret", fallback=""),
    }
    fresh = {
        "fernet_key": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "secret_key": secrets.token_urlsafe(32),
        "jwt_secret": secrets.token_urlsafe(48),
    }
    return {name: found[name] or fresh[name] for name in found}


def _private_file(path: Path, text: str) -> None:
    """Write `text` readable by the owner only (it holds secrets)."""
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text, encoding="utf-8")


def write_home(profile: Profile) -> None:
    """Write airflow.cfg, the admin's password file and islandhub.env into the home."""
    profile.logs.mkdir(parents=True, exist_ok=True)
    cfg_path = profile.home / "airflow.cfg"
    parser = configparser.ConfigParser(interpolation=None)
    for section, options in airflow_config(profile, _secret_keys(cfg_path)).items():
        # Airflow reads the file with %-interpolation: a %-escaped password must stay as is.
        parser[section] = {key: value.replace("%", "%%") for key, value in options.items()}
    text = io.StringIO("# Written by `python -m islandhub.production up`, at every up.\n")
    text.seek(0, io.SEEK_END)
    parser.write(text)
    _private_file(cfg_path, text.getvalue())
    passwords = profile.home / PASSWORDS_FILE
    if not passwords.exists():
        # Made here, not by Airflow: its simple auth manager prints a password it generates.
        _private_file(passwords, f'{{"{ADMIN}": "{secrets.token_urlsafe(18)}"}}\n')
    env = _hub_environment(profile)
    lines = [f"{name}={shlex.quote(value)}" for name, value in env.items()]
    header = "# The profile's environment for Airflow CLI calls: set -a; . ./islandhub.env\n"
    _private_file(profile.home / "islandhub.env", header + "\n".join(lines) + "\n")


def _hub_environment(profile: Profile) -> dict[str, str]:
    return {
        "AIRFLOW_HOME": str(profile.home),
        orchestrate.PROJECT_ENV: str(profile.project),
        "ISLANDHUB_STORE_URL": profile.store,
        orchestrate.POOLS_ENV: "1",
        HUB_API_ENV: profile.hub_api_url,
    }


def component_environment(profile: Profile) -> dict[str, str]:
    """The environment of one component: the caller's, minus its Airflow config overrides.

    AIRFLOW__* variables are dropped so that airflow.cfg is the one place the settings come
    from; AIRFLOW_VAR_* and AIRFLOW_CONN_* (secrets for `{secret: NAME}`) are passed on, and
    so are the national-id key (ISLANDHUB_NATIONAL_ID_KEY, or its file: the workers and the
    hub API must seal and open national ids with the key the store was sealed with,
    docs/privacy.md) and secrets named ISLANDHUB_* (the hub API's client keys). The
    profile's own store and project replace the caller's; CALLER_ONLY settings are dropped.
    """
    inherited = {
        name: value
        for name, value in os.environ.items()
        if name not in CALLER_ONLY
        and not name.startswith(("AIRFLOW__", "AIRFLOW_HOME", "AIRFLOW_CONFIG"))
    }
    return {**inherited, **_hub_environment(profile)}


# --- services: PostgreSQL and Redis ----------------------------------------------------------


def _safe(url: str) -> str:
    """`url` fit to print: its password, if any, as ***."""
    parts = urllib.parse.urlsplit(url)
    if not parts.password:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def _retry(check: Callable[[str], None], url: str, seconds: float = 30) -> None:
    """Run `check(url)` until it passes; a service started a moment ago may need a few seconds."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            check(url)
            return
        except RunFailed:
            if time.monotonic() >= deadline:
                raise
            time.sleep(1)


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database of `url` when it is missing."""
    import sqlalchemy as sa

    target = sa.engine.make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            query = sa.text("SELECT 1 FROM pg_database WHERE datname = :d")
            if not conn.execute(query, {"d": target.database}).first():
                conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    except sa.exc.OperationalError as exc:
        first_line = str(exc.orig).strip().splitlines()[0]
        raise RunFailed(f"PostgreSQL is not reachable at {_safe(url)}: {first_line}") from exc
    finally:
        admin.dispose()


def check_broker(url: str) -> None:
    """Ping the Redis broker."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise RunFailed(f"Redis is not reachable at {_safe(url)}: {exc}") from exc
    finally:
        client.close()


def _check_port_free(port: int, flag: str = "--port") -> None:
    with socket.socket() as probe:
        try:
            probe.bind((LOOPBACK, port))
        except OSError as exc:
            raise ConfigError(f"port {port} on {LOOPBACK} is in use: give {flag} N") from exc


# --- processes -------------------------------------------------------------------------------


def _pid_file(home: Path, component: str) -> Path:
    return home / "run" / f"{component}.pid"


def _record(home: Path, component: str, pid: int) -> None:
    """Note the component's session leader: its pid and start time (to spot a reused pid)."""
    import psutil

    try:
        started = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return  # died at once: `up` reports it with its log
    path = _pid_file(home, component)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{pid} {started}\n", encoding="utf-8")


def _leaders(home: Path) -> dict[str, tuple[int, bool]]:
    """Each recorded component's session id, and whether its leader still runs.

    A pid whose process started at another time than recorded was reused: that session is
    over (the kernel reuses no pid while a session or group of that id has members).
    """
    import psutil

    found: dict[str, tuple[int, bool]] = {}
    for component in COMPONENTS:
        try:
            pid_text, started = _pid_file(home, component).read_text(encoding="utf-8").split()
            leader = psutil.Process(int(pid_text))
            if abs(leader.create_time() - float(started)) < 0.01:
                found[component] = (leader.pid, _alive(leader))
        except psutil.NoSuchProcess:
            # The leader is gone; members of its session may still run, with its pid as sid.
            found[component] = (int(pid_text), False)
        except (OSError, ValueError):
            continue
    return found


def _alive(process: Any) -> bool:
    import psutil

    try:
        return bool(process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def profile_processes(home: Path) -> list[Any]:
    """Every live process of the profile at `home` (psutil.Process): its components' sessions.

    Task processes make their own process groups, but no part of Airflow or Celery that the
    hub uses starts a session of its own, so the session finds them all.
    """
    import psutil

    sessions = {sid for sid, _ in _leaders(home).values()}
    found = []
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) in sessions and _alive(process):
                found.append(process)
        except ProcessLookupError:
            continue
    return found


def running_components(home: Path) -> dict[str, int]:
    """The pid of each component whose leading process runs."""
    return {name: pid for name, (pid, alive) in _leaders(home).items() if alive}


def stop(home: Path, grace: float = 30.0) -> int:
    """SIGTERM every component, SIGKILL what is left after `grace` s; the number stopped."""
    import psutil

    processes = profile_processes(home)
    for pid in running_components(home).values():
        # Components stop their own children on SIGTERM (a worker ends its tasks first).
        with contextlib.suppress(psutil.NoSuchProcess):
            _signal(psutil.Process(pid), signal.SIGTERM)
    if not _wait_gone(home, grace):
        for process in profile_processes(home):
            _signal(process, signal.SIGKILL)
        if not _wait_gone(home, 10):
            left = ", ".join(str(p.pid) for p in profile_processes(home))
            raise RunFailed(f"processes of {home} survived SIGKILL: {left}")
    for component in COMPONENTS:
        _pid_file(home, component).unlink(missing_ok=True)
    return len(processes)


def _wait_gone(home: Path, seconds: float) -> bool:
    # Polled rather than waited for: the components are not our children after `up` exits.
    deadline = time.monotonic() + seconds
    while profile_processes(home):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)
    return True


def _signal(process: Any, signum: int) -> None:
    import psutil

    with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
        process.send_signal(signum)


def _airflow(*args: str) -> list[str]:
    return [sys.executable, "-m", "airflow", *args]


def _commands(profile: Profile) -> dict[str, list[str]]:
    # No log-serving sub-servers (they listen on every interface): the API server reads the
    # task logs from the shared AIRFLOW_HOME/logs directly.
    worker = ["celery", "worker", "--queues", profile.queue, "--skip-serve-logs"]
    hub_api = ["--host", LOOPBACK, "--port", str(profile.hub_api_port)]
    hub_api += ["--workers", str(profile.hub_api_workers)]
    return {
        "scheduler": _airflow("scheduler", "--skip-serve-logs"),
        "dag-processor": _airflow("dag-processor"),
        "celery-worker": _airflow(*worker, "--concurrency", str(profile.concurrency)),
        "api-server": _airflow(
            "api-server", "--host", LOOPBACK, "--port", str(profile.port), "--workers", "1"
        ),
        # The hub's API on the profile's store: the project and store come from the
        # environment (ISLANDHUB_PROJECT, ISLANDHUB_STORE_URL), as for the workers.
        "hub-api": [sys.executable, "-m", "islandhub.cli", "api", "serve", *hub_api],
    }


def _run_setup(profile: Profile, name: str, argv: list[str]) -> None:
    """Run one setup command to its end, its output in logs/<name>.log."""
    log_path = profile.logs / f"{name}.log"
    with log_path.open("w", encoding="utf-8") as out:
        done = subprocess.run(
            argv,
            env=component_environment(profile),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=profile.home,
            check=False,
        )
    if done.returncode != 0:
        raise RunFailed(f"{name} exited {done.returncode}:\n{_tail(log_path)}")


def _start(profile: Profile, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
    with (profile.logs / f"{name}.log").open("ab") as out:
        # A session of its own: the component outlives `up` and a Ctrl-C in its terminal.
        return subprocess.Popen(
            argv,
            env=component_environment(profile),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=profile.home,
            start_new_session=True,
        )


def _tail(path: Path, lines: int = 12) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(f"  | {line}" for line in text.splitlines()[-lines:]) + f"\n  (log: {path})"


def _json_answer(url: str) -> dict[str, Any] | None:
    """The JSON object a health endpoint answers, or None while it does not answer."""
    import requests

    try:
        response = requests.get(url, timeout=5)
        response.raise_for_status()
        answer: Any = response.json()
    except (requests.RequestException, ValueError):
        return None
    return answer if isinstance(answer, dict) else None


def health(api_url: str) -> dict[str, Any] | None:
    """The API server's health report, or None while it does not answer."""
    return _json_answer(f"{api_url}/api/v2/monitor/health")


def hub_api_health(url: str) -> str | None:
    """The hub API's /health status ("ok"), or None while it does not answer."""
    answer = _json_answer(f"{url}/health")
    return str(answer.get("status")) if answer is not None else None


def is_healthy(report: Mapping[str, Any] | None) -> bool:
    """True when the metadata database, the scheduler and the DAG processor report healthy."""
    return report is not None and all(
        (report.get(part) or {}).get("status") == "healthy" for part in HEALTH_CHECKED
    )


def _wait_healthy(
    profile: Profile, started: Mapping[str, subprocess.Popen[bytes]], wait: float
) -> None:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        for name, process in started.items():
            if process.poll() is not None:
                log_path = profile.logs / f"{name}.log"
                raise RunFailed(f"{name} exited ({process.returncode}):\n{_tail(log_path)}")
        if is_healthy(health(profile.api_url)) and hub_api_health(profile.hub_api_url) == "ok":
            return
        time.sleep(2)
    raise RunFailed(
        f"not healthy after {wait:.0f} s: Airflow {health(profile.api_url)}, hub API "
        f"{hub_api_health(profile.hub_api_url)}; see the logs in {profile.logs}"
    )


# --- the commands ----------------------------------------------------------------------------


def up(profile: Profile, wait: float = 240.0) -> None:
    """Set the home up and start every component; return once they are healthy."""
    running = running_components(profile.home)
    if running:
        raise ConfigError(
            f"the profile in {profile.home} is already running ({', '.join(sorted(running))}): "
            "`python -m islandhub.production down` first"
        )
    _check_port_free(profile.port)
    _check_port_free(profile.hub_api_port, "--hub-api-port")
    islands = prepare(profile)
    started: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, argv in _commands(profile).items():
            started[name] = _start(profile, name, argv)
            _record(profile.home, name, started[name].pid)
        _say(f"started {', '.join(started)}; waiting for {profile.api_url} to report healthy")
        _wait_healthy(profile, started, wait)
    except BaseException:
        # Half a profile helps no one: stop what did start (also on Ctrl-C).
        stop(profile.home, grace=10)
        raise
    _say(
        f"up: {profile.api_url} (user {ADMIN}, password in {profile.home / PASSWORDS_FILE}); "
        f"hub API {profile.hub_api_url}; "
        f"islands {', '.join(islands) or 'none'}; logs in {profile.logs}; "
        f"Airflow CLI: set -a; . {profile.home / 'islandhub.env'}; set +a"
    )


def prepare(profile: Profile) -> list[str]:
    """Check the project and the services, write the home, migrate, import the pools.

    Returns the islands that get DAGs.
    """
    from islandhub.config import load_project
    from islandhub.store import open_store

    # Every config problem now, with file and line, rather than in a task's log later.
    load_project(profile.project, environ={"ISLANDHUB_STORE_URL": profile.store})
    for url in dict.fromkeys((profile.airflow_db, profile.store)):
        _retry(ensure_database, url)
    _retry(check_broker, profile.broker)
    write_home(profile)
    _say(f"AIRFLOW_HOME {profile.home}: airflow db migrate (log: logs/db-migrate.log)")
    _run_setup(profile, "db-migrate", _airflow("db", "migrate"))
    open_store(profile.store).dispose()  # migrates the hub store
    specs = orchestrate.dag_specs(profile.project)
    pools = profile.home / "pools.json"
    pools.write_text(json.dumps(orchestrate.pool_definitions(specs), indent=2), encoding="utf-8")
    _run_setup(profile, "pools-import", _airflow("pools", "import", str(pools)))
    return [spec.system for spec in specs]


def status(home: Path) -> bool:
    """Print each component's state and both APIs' health; True when all is well."""
    running = running_components(home)
    for name in COMPONENTS:
        pid = running.get(name)
        _say(f"{name:14} {f'running (pid {pid})' if pid else 'stopped'}")
    api_url = f"http://{LOOPBACK}:{_configured_port(home)}"
    report = health(api_url)
    if report is None:
        _say(f"{'health':14} no answer at {api_url}")
    else:
        parts = (f"{part} {(report.get(part) or {}).get('status')}" for part in HEALTH_CHECKED)
        _say(f"{'health':14} {', '.join(parts)} ({api_url})")
    hub_api = _configured_hub_api(home)
    answer = hub_api_health(hub_api)
    _say(f"{'hub API':14} {answer or 'no answer'} ({hub_api}/health)")
    running_all = all(name in running for name in COMPONENTS)
    return running_all and is_healthy(report) and answer == "ok"


def _say(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


# --- the command line ------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m islandhub.production",
        description="Airflow on PostgreSQL with the CeleryExecutor and Redis, on 127.0.0.1.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("up", "write AIRFLOW_HOME, migrate, import the pools, start every component"),
        ("status", "show which components run and what the API server's health says"),
        ("down", "stop every component of the profile"),
    ):
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument(
            "--project", help="the hub project (default: $ISLANDHUB_PROJECT, else this folder)"
        )
        command.add_argument(
            "--home", type=Path, help="AIRFLOW_HOME (default: PROJECT/var/airflow)"
        )
        if name == "up":
            _up_arguments(command)
    return parser


def _up_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--dags", type=Path, default=REPO_DAGS, help="the DAG folder")
    command.add_argument("--airflow-db", default=DEFAULT_AIRFLOW_DB, help="metadata database")
    command.add_argument(
        "--store", help="hub store (default: $ISLANDHUB_STORE_URL, else the loopback PostgreSQL)"
    )
    command.add_argument("--broker", default=DEFAULT_BROKER, help="Redis URL with its db number")
    command.add_argument("--port", type=int, default=8080, help="Airflow's API server's port")
    command.add_argument(
        "--hub-api-port",
        type=int,
        default=DEFAULT_HUB_API_PORT,
        help=f"the hub API's port (`islandhub api serve`; default {DEFAULT_HUB_API_PORT})",
    )
    command.add_argument(
        "--hub-api-workers", type=int, default=1, help="the hub API's worker processes"
    )
    command.add_argument("--concurrency", type=int, default=2, help="tasks the worker runs at once")
    command.add_argument("--queue", default="islandhub", help="the Celery queue of the tasks")
    command.add_argument("--wait", type=float, default=240.0, help="seconds to wait for health")


def home_of(args: argparse.Namespace) -> Path:
    """The AIRFLOW_HOME the arguments name: --home, else PROJECT/var/airflow."""
    from islandhub.config import find_project

    if args.home:
        return Path(args.home).expanduser().resolve()
    return find_project(args.project) / "var" / "airflow"


def resolve(args: argparse.Namespace) -> Profile:
    """The profile `up`'s arguments describe; every problem with them at once (ConfigError)."""
    from islandhub.config import find_project

    project = find_project(args.project)
    home = home_of(args)
    store = args.store or os.environ.get("ISLANDHUB_STORE_URL") or DEFAULT_STORE
    problems = []
    if not (args.dags / "islandhub_dags.py").is_file():
        problems.append(f"no islandhub_dags.py in {args.dags}: give --dags DIR")
    for flag, url in (("--airflow-db", args.airflow_db), ("--store", store)):
        if not url.startswith("postgresql"):
            problems.append(f"{flag}: the production profile runs on PostgreSQL, not {_safe(url)}")
    if not args.broker.startswith("redis://"):
        problems.append(f"--broker: a redis:// URL, not {_safe(args.broker)}")
    for flag, port in (("--port", args.port), ("--hub-api-port", args.hub_api_port)):
        if not 1 <= port <= 65535:
            problems.append(f"{flag}: {port} is not a port number")
    if args.port == args.hub_api_port:
        problems.append(f"--port and --hub-api-port: both {args.port}; give two ports")
    if args.concurrency < 1:
        problems.append("--concurrency: at least 1")
    if args.hub_api_workers < 1:
        problems.append("--hub-api-workers: at least 1")
    if problems:
        raise ConfigError("\n".join(problems))
    return Profile(
        project=project,
        home=home,
        dags=args.dags.expanduser().resolve(),
        airflow_db=args.airflow_db,
        store=store,
        broker=args.broker,
        port=args.port,
        hub_api_port=args.hub_api_port,
        hub_api_workers=args.hub_api_workers,
        concurrency=args.concurrency,
        queue=args.queue,
        timezone=orchestrate.hub_timezone(project),
    )


def _configured_hub_api(home: Path) -> str:
    """The hub API's URL as `up` wrote it into islandhub.env (the default port without one)."""
    with contextlib.suppress(OSError):
        for line in (home / "islandhub.env").read_text(encoding="utf-8").splitlines():
            name, _, value = line.partition("=")
            if name == HUB_API_ENV:
                return shlex.split(value)[0]
    return f"http://{LOOPBACK}:{DEFAULT_HUB_API_PORT}"


def _configured_port(home: Path) -> int:
    """The API server's port as `up` wrote it into the home (8080 when there is none)."""
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(home / "airflow.cfg", encoding="utf-8")
    return cfg.getint("api", "port", fallback=8080)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m islandhub.production up|status|down`; the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "up":
            up(resolve(args), args.wait)
            return 0
        home = home_of(args)
        if args.command == "status":
            return 0 if status(home) else 1
        stopped = stop(home)
        _say(f"down: {stopped} process(es) of {home} stopped" if stopped else "down: not running")
        return 0
    except HubError as exc:
        sys.stderr.write(f"islandhub.production {args.command}: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
