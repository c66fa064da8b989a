"""Airflow DAG factory: one DAG per config/systems/*.yaml, plus the daily report and push DAGs.

Parsing reads the system files' YAML and nothing else (no validation, no connectors, no
store, no Airflow variables): the tasks call islandhub.orchestrate, which loads and checks
the project itself. Tasks pass run ids through XCom, never records.

    islandhub__<system>   check -> land (one mapped task per stream) -> publish => Asset
                          (publish checks quality first: a tripped gate fails the task)
    islandhub__report     daily: the data-quality report into var/reports/ (sv, fi, en)
    islandhub__push       on the Asset islandhub://residents, and hourly for retries:
                          delivers the outbox to subscribed islands
    islandhub__retention  daily: each island's retention periods (docs/privacy.md)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import (
    Asset,
    AssetOrTimeSchedule,
    BaseNotifier,
    CronTriggerTimetable,
    dag,
    get_current_context,
    task,
)
from airflow.sdk.exceptions import AirflowFailException

from islandhub import orchestrate
from islandhub.errors import ConfigError

log = logging.getLogger(__name__)
ROOT = orchestrate.project_root(Path(__file__).resolve().parent.parent)
RESIDENTS = Asset(orchestrate.RESIDENTS_URI)
POOLS = orchestrate.pools_enabled()
# Airflow reads a cron schedule in the zone of the DAG's start_date (else in its
# default_timezone, UTC unless set): the hub's zone makes "30 6 * * *" mean 06:30 in Helsinki,
# summer and winter alike. The date itself only needs to be in the past (catchup is off).
TIMEZONE = pendulum.timezone(orchestrate.hub_timezone(ROOT))
START = pendulum.datetime(2025, 1, 1, tz=TIMEZONE)


class TeamsNotifier(BaseNotifier):
    """Posts a MessageCard to the Teams incoming webhook in Variable islandhub_teams_webhook.

    The variable is read when a task fails, never at parse time; without it, nothing is sent.
    """

    def notify(self, context: Any) -> None:
        """Send the failure notice, if a webhook is configured."""
        url = orchestrate.airflow_variable(orchestrate.TEAMS_VARIABLE)
        if url:
            summary = orchestrate.failure_summary(context)
            orchestrate.post_webhook(url, orchestrate.teams_card(summary))


class OwnerMailNotifier(BaseNotifier):
    """E-mails the system's owner through the SMTP provider, if connection islandhub_smtp exists."""

    def __init__(self, to: str) -> None:
        super().__init__()
        self.to = to

    def notify(self, context: Any) -> None:
        """Send the failure e-mail, if the SMTP connection is defined."""
        if not orchestrate.smtp_connection_exists():
            return
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        summary = orchestrate.failure_summary(context)
        SmtpNotifier(
            to=self.to,
            smtp_conn_id=orchestrate.SMTP_CONN_ID,
            subject=orchestrate.failure_subject(summary),
            html_content=orchestrate.failure_html(summary),
        ).notify(context)


def _default_args(owner: str, email: str | None) -> dict[str, Any]:
    notifiers: list[Callable[..., None]] = [TeamsNotifier()]
    if email:
        notifiers.append(OwnerMailNotifier(email))
    return {
        "owner": owner,
        "retries": 3,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=30),
        "on_failure_callback": notifiers,
    }


@contextmanager
def _no_retry_on_bad_config() -> Iterator[None]:
    """A config error will not mend itself: fail the task at once instead of retrying."""
    try:
        yield
    except ConfigError as exc:
        raise AirflowFailException(str(exc)) from exc


def system_dag(spec: orchestrate.DagSpec) -> Any:
    """The DAG of one island: check -> land each stream -> publish."""
    pool = {"pool": spec.pool} if POOLS else {}

    @dag(
        dag_id=f"islandhub__{spec.system}",
        schedule=spec.schedule,
        start_date=START,
        catchup=False,
        max_active_runs=1,
        max_active_tasks=spec.slots,
        tags=["islandhub", spec.connector],
        doc_md=spec.doc_md(),
        default_args=_default_args(spec.owner.get("name", "islandhub"), spec.owner.get("email")),
    )
    def island() -> None:
        @task(**pool)
        def check() -> str:
            with _no_retry_on_bad_config():
                return orchestrate.check_system(ROOT, spec.system, orchestrate.AIRFLOW_SECRETS)

        @task(**pool)
        def land(stream: str) -> str:
            with _no_retry_on_bad_config():
                return orchestrate.land_stream(
                    ROOT, spec.system, stream, orchestrate.AIRFLOW_SECRETS, slots=spec.slots
                )

        @task(outlets=[RESIDENTS], **pool)
        def publish(run_ids: list[str]) -> list[str]:
            with _no_retry_on_bad_config():
                published = orchestrate.publish_runs(ROOT, list(run_ids[:]))
            events = get_current_context()["outlet_events"]
            events[RESIDENTS].extra = {"system": spec.system, "runs": published}
            return published

        landed = land.expand(stream=list(spec.streams))
        check() >> landed
        publish(landed)

    return island()


@dag(
    dag_id="islandhub__report",
    schedule="@daily",
    start_date=START,
    catchup=False,
    max_active_runs=1,
    tags=["islandhub", "report"],
    default_args=_default_args("islandhub", None),
)
def report() -> None:
    """Daily: the data-quality report the Chief Digital Officer reads, into var/reports/."""

    @task
    def status_report() -> str:
        return str(orchestrate.write_status_report(ROOT))

    status_report()


@dag(
    dag_id="islandhub__push",
    # Each publish wakes it; the hourly run delivers rows whose backoff has passed meanwhile.
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("17 * * * *", timezone=TIMEZONE), assets=RESIDENTS
    ),
    start_date=START,
    catchup=False,
    max_active_runs=1,
    tags=["islandhub", "push"],
    default_args=_default_args("islandhub", None),
)
def push() -> None:
    """On each update of islandhub://residents (and hourly): deliver the outbox."""

    @task
    def push_changes() -> str:
        events = get_current_context().get("triggering_asset_events") or {}
        message = orchestrate.describe_push(e for batch in events.values() for e in batch)
        log.info(message)
        return message

    push_changes()


@dag(
    dag_id="islandhub__retention",
    schedule="@daily",
    start_date=START,
    catchup=False,
    max_active_runs=1,
    tags=["islandhub", "privacy"],
    default_args=_default_args("islandhub", None),
)
def retention() -> None:
    """Daily: clear, delete and anonymise what each island's retention period has passed."""

    @task
    def enforce_retention() -> str:
        message = orchestrate.enforce_retention(ROOT)
        log.info(message)
        return message

    enforce_retention()


for _spec in orchestrate.dag_specs(ROOT):
    system_dag(_spec)
report()
push()
retention()
