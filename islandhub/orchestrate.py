"""The Airflow tasks' work: thin calls into the engine, plain functions testable without Airflow.

The DAG file (dags/islandhub_dags.py) only wires these functions into tasks. Each task
loads and validates the project itself (parsing a DAG file reads the system files' YAML and
nothing else), runs one step of the engine and returns a run id: tasks pass references
through XCom, never records. Airflow itself is imported lazily, inside the functions that
need it, so this module also works (and is tested) in a process without Airflow running.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from islandhub import secrets
from islandhub.errors import ConfigError, RunFailed
from islandhub.privacy.masking import mask_text

if TYPE_CHECKING:
    from islandhub.config import Project, SystemConfig
    from islandhub.pipeline import StreamResult
    from islandhub.store import Store

# The engine (config validation, connectors, store) is imported inside the task functions:
# the DAG file imports this module at every parse, which must stay cheap.
PROJECT_ENV = "ISLANDHUB_PROJECT"  # as islandhub.config.PROJECT_ENV
# yaml.safe_load's own loader, in libyaml's C build where present: ten times faster per file.
_SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
log = logging.getLogger(__name__)

#: The Airflow Asset that publishing updates; downstream DAGs are scheduled on it.
RESIDENTS_URI = "islandhub://residents"
#: The Airflow connection that failure e-mails go through.
SMTP_CONN_ID = "islandhub_smtp"
#: The Airflow variable holding a Teams incoming-webhook URL for failure notices.
TEAMS_VARIABLE = "islandhub_teams_webhook"
#: Set to 1 once the pools exist (`airflow pools import`): tasks then run in their pool.
POOLS_ENV = "ISLANDHUB_AIRFLOW_POOLS"


class StreamBusyError(RunFailed):
    """Another run (a CLI sync, a second scheduler) holds the stream's lease: retry later."""


# --- parse time: the DAG factory's view of the system files ------------------------------


@dataclass(frozen=True)
class DagSpec:
    """What the DAG factory needs of one system file, read without validating it."""

    system: str
    connector: str
    streams: tuple[str, ...]
    schedule: str | None
    title: Mapping[str, str]
    owner: Mapping[str, str]
    rate: float | None

    @property
    def pool(self) -> str:
        """The system's Airflow pool."""
        return f"islandhub_{self.system}"

    @property
    def slots(self) -> int:
        """How many streams of the system may run at once (its pool's size).

        The connection's `rate` (requests a second) bounds it, and so do the streams; each
        task then gets an equal share of the rate (`share_rate`), so the island never sees
        more than its budget in total.
        """
        if not self.rate or self.rate < 1:
            return 1
        return max(1, min(int(self.rate), len(self.streams)))

    def doc_md(self) -> str:
        """The DAG's documentation: titles in every language given, and the owner."""
        lines = [f"# {self.system}", ""]
        lines += [f"- **{lang}**: {text}" for lang, text in sorted(self.title.items())]
        owner = self.owner.get("name", "unknown")
        email = self.owner.get("email")
        lines += ["", f"Owner: {owner}" + (f" <{email}>" if email else "")]
        lines += ["", f"Connector: `{self.connector}`; streams: {', '.join(self.streams)}."]
        return "\n".join(lines)


def project_root(default: Path) -> Path:
    """The project the DAGs serve: ISLANDHUB_PROJECT, else `default` (the repository)."""
    given = os.environ.get(PROJECT_ENV)
    return Path(given).expanduser().resolve() if given else default


def dag_specs(root: Path) -> list[DagSpec]:
    """Read config/systems/*.yaml with a safe YAML load only: cheap enough for every parse.

    A file that is not even a mapping with a system id and streams is left out here (the
    task-time validation and `islandhub check` report it in full); this keeps one broken
    file from hiding every other island's DAG.
    """
    specs = []
    for path in sorted((root / "config" / "systems").glob("*.yaml")):
        spec = _dag_spec(path)
        if spec is not None:
            specs.append(spec)
    return specs


def _dag_spec(path: Path) -> DagSpec | None:
    with path.open(encoding="utf-8") as handle:
        data = yaml.load(handle, Loader=_SAFE_LOADER)
    if not isinstance(data, dict) or not isinstance(data.get("streams"), dict):
        log.warning("%s: not a system file (no system and streams); no DAG for it", path)
        return None
    connection = data.get("connection") if isinstance(data.get("connection"), dict) else {}
    rate = connection.get("rate") if isinstance(connection, dict) else None
    return DagSpec(
        system=str(data.get("system") or path.stem),
        connector=str(data.get("connector", "unknown")),
        streams=tuple(str(name) for name in data["streams"]),
        schedule=data.get("schedule"),
        title=_strings(data.get("title")),
        owner=_strings(data.get("owner")),
        rate=float(rate) if isinstance(rate, int | float) else None,
    )


def _strings(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


#: The zone of schedules when hub.yaml names none (as islandhub.config.HubSettings.timezone).
DEFAULT_TIMEZONE = "Europe/Helsinki"


def hub_timezone(root: Path) -> str:
    """The IANA zone the DAGs' schedules are read in: hub.yaml's `timezone`, safe-loaded only.

    A missing, unreadable or unknown value gives the default with a warning instead of
    failing the parse: one bad hub.yaml must not hide every DAG (`islandhub check` reports it).
    """
    import zoneinfo

    try:
        with (root / "config" / "hub.yaml").open(encoding="utf-8") as handle:
            data = yaml.load(handle, Loader=_SAFE_LOADER)
    except (OSError, yaml.YAMLError) as exc:
        log.warning("config/hub.yaml unreadable (%s); schedules in %s", exc, DEFAULT_TIMEZONE)
        return DEFAULT_TIMEZONE
    name = data.get("timezone") if isinstance(data, dict) else None
    if name is None:
        return DEFAULT_TIMEZONE
    try:
        zoneinfo.ZoneInfo(str(name))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        log.warning(
            "unknown time zone %r in config/hub.yaml; schedules in %s", name, DEFAULT_TIMEZONE
        )
        return DEFAULT_TIMEZONE
    return str(name)


def pools_enabled() -> bool:
    """True when the operator has created the pools and switched them on (POOLS_ENV=1)."""
    return os.environ.get(POOLS_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def pool_definitions(specs: Iterable[DagSpec]) -> dict[str, dict[str, Any]]:
    """The pools for `airflow pools import FILE`: one per system, sized by `slots`."""
    return {
        spec.pool: {
            "slots": spec.slots,
            "description": f"islandhub: {spec.system} ({spec.connector})",
            "include_deferred": False,
        }
        for spec in specs
    }


# --- secrets ------------------------------------------------------------------------------


def airflow_variable(name: str) -> str | None:
    """An Airflow variable's value, or None when it is not set."""
    from airflow.sdk import Variable

    value = Variable.get(name, default=None)
    return None if value is None else str(value)


def airflow_connection_password(name: str) -> str | None:
    """The password of the Airflow connection with conn_id `name`, or None."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        connection = Connection.get(name)
    except AirflowNotFoundException:
        return None
    return connection.password or None


def chained_lookup(*lookups: secrets.Lookup) -> secrets.Lookup:
    """A lookup that asks each of `lookups` in turn; the first value found wins."""

    def lookup(name: str) -> str | None:
        for each in lookups:
            found = each(name)
            if found is not None:
                return found
        return None

    return lookup


#: Where the tasks find `{secret: NAME}`: Airflow variables, connections, the environment.
AIRFLOW_SECRETS = chained_lookup(
    airflow_variable, airflow_connection_password, secrets.from_environment
)


# --- the tasks ----------------------------------------------------------------------------


def open_project(root: Path, system: str | None = None) -> tuple[Project, Store]:
    """Load and validate the whole project (full validation happens here), open its store."""
    from islandhub.config import load_project
    from islandhub.store import open_store

    project = load_project(root)
    if system is not None and system not in project.systems:
        known = ", ".join(sorted(project.systems)) or "none"
        raise ConfigError(f"unknown system {system!r}; configured systems: {known}")
    return project, open_store(project.hub.store_url)


def check_system(root: Path, system: str, lookup: secrets.Lookup = secrets.from_environment) -> str:
    """Validate the project and reach the island; raise RunFailed saying why it cannot."""
    from islandhub.pipeline import make_connector

    project, store = open_project(root, system)
    store.dispose()
    result = make_connector(project, project.systems[system], lookup).check()
    message = mask_text(result.message)
    if not result.ok:
        raise RunFailed(f"{system}: the island cannot be reached: {message}")
    log.info("%s: ok: %s", system, message)
    return message


def share_rate(system: SystemConfig, slots: int) -> SystemConfig:
    """The system with its `rate` divided among `slots` tasks running at once."""
    rate = system.connection.get("rate")
    if not isinstance(rate, int | float) or slots <= 1:
        return system
    return replace(system, connection={**system.connection, "rate": rate / slots})


def land_stream(
    root: Path,
    system: str,
    stream: str,
    lookup: secrets.Lookup = secrets.from_environment,
    *,
    slots: int = 1,
) -> str:
    """Extract, land and map one stream (no publishing); return its run id.

    Raises StreamBusyError when another run holds the stream, so that Airflow retries it.
    """
    from islandhub.pipeline import make_connector, sync_stream

    project, store = open_project(root, system)
    try:
        config = share_rate(project.systems[system], slots)
        if stream not in config.streams:
            raise ConfigError(f"system {system!r} has no stream {stream!r}")
        connector = make_connector(project, config, lookup)
        result = sync_stream(
            project, store, connector, config, config.streams[stream], publish=False
        )
    finally:
        store.dispose()
    return _checked(result)


def publish_runs(root: Path, run_ids: Sequence[str]) -> list[str]:
    """Resolve and publish what the landing runs `run_ids` landed; return the publish run ids."""
    from islandhub.pipeline import publish_stream
    from islandhub.push.outbox import plan_for
    from islandhub.resolve.reconcile import resolve_published

    project, store = open_project(root)
    try:
        published = []
        for system, stream in _streams_of(store, run_ids):
            published.append(_checked(publish_stream(project, store, system, stream)))
        # What was published is matched against the residents now, when a model is trained.
        resolved = resolve_published(project.root, store, project.hub.priority, plan_for(project))
        if resolved:
            log.info(
                "resolution: %d records matched, %d relinked, %d residents merged",
                resolved.queued,
                resolved.relinked,
                resolved.merged,
            )
    finally:
        store.dispose()
    return published


def _streams_of(store: Store, run_ids: Sequence[str]) -> list[tuple[str, str]]:
    """The (system, stream) of each run, in order, each once."""
    import sqlalchemy as sa

    from islandhub.store.tables import runs

    with store.connect() as conn:
        rows = conn.execute(
            sa.select(runs.c.run_id, runs.c.system, runs.c.stream).where(
                runs.c.run_id.in_(list(run_ids))
            )
        ).all()
    found = {row.run_id: (row.system, row.stream) for row in rows}
    missing = [run_id for run_id in run_ids if run_id not in found]
    if missing:
        raise RunFailed(f"no such runs in the store: {', '.join(missing)}")
    return list(dict.fromkeys(found[run_id] for run_id in run_ids))


def _checked(result: StreamResult) -> str:
    """The run id of a finished run; a busy stream raises so that Airflow retries."""
    log.info(
        "%s.%s run %s: %s (pulled %d, unchanged %d, mapped %d, quarantined %d, published %d)",
        result.system,
        result.stream,
        result.run_id,
        result.status,
        result.pulled,
        result.unchanged,
        result.mapped,
        result.quarantined,
        result.published,
    )
    if result.status == "busy":
        raise StreamBusyError(mask_text(f"{result.system}.{result.stream}: {result.error}"))
    if result.status != "succeeded":
        raise RunFailed(mask_text(f"{result.system}.{result.stream}: {result.error}"))
    return result.run_id


def write_status_report(root: Path, out_dir: Path | None = None) -> Path:
    """The daily data-quality report: review every island, write it into var/reports/.

    Writes quality-report.{sv,fi,en}.html, quality-report.json and the Great Expectations
    Data Docs (data-docs/) into `out_dir` (default var/reports in the project) and returns
    that folder. The name stays from when this task wrote a JSON status summary.
    """
    from islandhub.quality.report import review_and_report

    project, store = open_project(root)
    try:
        folder = out_dir or project.root / "var" / "reports"
        written = review_and_report(project, store, folder)
    finally:
        store.dispose()
    log.info(
        "data-quality report written to %s (review %.1f s, report %.1f s)",
        folder,
        written.review_seconds,
        written.seconds,
    )
    return folder


def describe_push(asset_events: Iterable[Any]) -> str:
    """Deliver the outbox to every subscribed island (islandhub.push.deliver); say what went.

    The asset events only wake the task: what to send is in the outbox, written with each
    publish. Rows that failed (the island asked to wait, or refused) raise RunFailed, so that
    Airflow retries the task with its backoff and finally notifies the owners; a dead row
    waits for `islandhub push replay`.
    """
    from islandhub.push.deliver import deliver

    count = sum(1 for _ in asset_events)
    project, store = open_project(project_root(Path(__file__).resolve().parent.parent))
    try:
        reports = deliver(project, store, lookup=AIRFLOW_SECRETS)
    finally:
        store.dispose()
    done = "; ".join(
        f"{r.target}: {r.delivered} delivered, {r.retrying} to retry, {r.dead} dead"
        + (" (busy: another push holds it)" if r.busy else "")
        for r in reports
    )
    message = mask_text(f"{count} update(s) of {RESIDENTS_URI} received; {done or 'nothing due'}")
    errors = [f"{r.target}: {e}" for r in reports for e in r.errors]
    if any(not r.ok for r in reports):
        raise RunFailed(mask_text(message + "\n" + "\n".join(errors)))
    return message


def enforce_retention(root: Path) -> str:
    """The daily retention run: each island's periods from its system file (docs/privacy.md)."""
    from islandhub.privacy.retention import enforce

    project, store = open_project(root)
    try:
        results = enforce(project, store)
    finally:
        store.dispose()
    done = "; ".join(
        f"{r.system}: {r.payloads_cleared} payloads cleared, {r.quarantine_deleted} quarantined "
        f"deleted, {r.anonymised} anonymised"
        for r in results
    )
    return done or "no system has a retention: block"


# --- failure notifications ---------------------------------------------------------------


def failure_summary(context: Mapping[str, Any]) -> dict[str, str]:
    """What a failure notice says: which island, task and run, and the error (masked)."""
    ti = context.get("ti") or context.get("task_instance")
    error = context.get("exception")
    text = mask_text(f"{type(error).__name__}: {error}") if error is not None else "see the log"
    return {
        "dag": str(getattr(ti, "dag_id", "?")),
        "task": str(getattr(ti, "task_id", "?")),
        "run": str(getattr(ti, "run_id", "?")),
        "try": str(getattr(ti, "try_number", "?")),
        "log": str(getattr(ti, "log_url", "") or ""),
        "error": text[:500],
    }


def failure_subject(summary: Mapping[str, str]) -> str:
    """The one-line subject of a failure notice."""
    return f"islandhub: {summary['dag']}.{summary['task']} failed"


def failure_html(summary: Mapping[str, str]) -> str:
    """The body of a failure e-mail (plain values, HTML-escaped)."""
    import html

    rows = "".join(
        f"<tr><th align=left>{html.escape(key)}</th><td>{html.escape(value)}</td></tr>"
        for key, value in summary.items()
    )
    return f"<p>{html.escape(failure_subject(summary))}</p><table>{rows}</table>"


def teams_card(summary: Mapping[str, str]) -> dict[str, Any]:
    """A Teams MessageCard for an incoming webhook."""
    card: dict[str, Any] = {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": failure_subject(summary),
        "themeColor": "D13438",
        "title": failure_subject(summary),
        "sections": [{"facts": [{"name": key, "value": value} for key, value in summary.items()]}],
    }
    if summary.get("log"):
        card["potentialAction"] = [
            {
                "@type": "OpenUri",
                "name": "Open the log",
                "targets": [{"os": "default", "uri": summary["log"]}],
            }
        ]
    return card


def post_webhook(url: str, payload: Mapping[str, Any], timeout: float = 10.0) -> bool:
    """POST `payload` as JSON; True when accepted. The URL (a secret) is never logged."""
    import requests

    try:
        response = requests.post(url, json=payload, timeout=timeout)
        response.raise_for_status()
    except requests.RequestException as exc:
        status = getattr(exc.response, "status_code", None)
        log.warning(
            "the Teams webhook did not accept the notice (%s)", status or type(exc).__name__
        )
        return False
    return True


def smtp_connection_exists() -> bool:
    """True when the Airflow connection for failure e-mails is defined."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        Connection.get(SMTP_CONN_ID)
    except AirflowNotFoundException:
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m islandhub.orchestrate pools`: print the pools file for `airflow pools import`."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if args != ["pools"]:
        sys.stderr.write("usage: python -m islandhub.orchestrate pools > pools.json\n")
        return 2
    specs = dag_specs(project_root(Path.cwd()))
    sys.stdout.write(json.dumps(pool_definitions(specs), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
