"""The Airflow DAGs in real Airflow 3: DagBag import, the CLI's view, `dags test`, parse time."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from islandhub import orchestrate
from islandhub.demo.islands.school import SchoolIsland
from islandhub.demo.population import generate
from islandhub.store import open_store
from islandhub.store.tables import landing, links, residents, runs
from tests.airflow.conftest import REPO, AirflowEnv, json_line, make_project

SYSTEMS = sorted(p.stem for p in (REPO / "config" / "systems").glob("*.yaml"))
SYSTEM_TASKS = ["check", "land", "publish"]


# --- without Airflow: what the factory reads, and the task helpers ------------------------


def test_dag_specs_read_every_system_file_without_validating() -> None:
    specs = {spec.system: spec for spec in orchestrate.dag_specs(REPO)}
    assert sorted(specs) == SYSTEMS
    school = specs["school"]
    assert school.streams == ("pupils",)
    assert school.schedule == "30 6 * * *"
    assert school.connector == "files"
    assert school.pool == "islandhub_school" and school.slots == 1
    assert "Skoladministration" in school.doc_md() and "Koulujen hallinto" in school.doc_md()
    assert "bildning@example.fi" in school.doc_md()


def test_slots_follow_the_rate_budget_and_the_streams() -> None:
    spec = orchestrate.DagSpec("x", "rest", ("a", "b", "c"), None, {}, {}, rate=2.5)
    assert spec.slots == 2
    assert orchestrate.DagSpec("x", "rest", ("a",), None, {}, {}, rate=10).slots == 1
    assert orchestrate.DagSpec("x", "rest", ("a", "b"), None, {}, {}, rate=None).slots == 1
    assert orchestrate.DagSpec("x", "rest", ("a", "b"), None, {}, {}, rate=0.5).slots == 1
    pools = orchestrate.pool_definitions([spec])
    assert pools == {
        "islandhub_x": {"slots": 2, "description": "islandhub: x (rest)", "include_deferred": False}
    }


def test_chained_lookup_asks_in_order_and_first_found_wins() -> None:
    asked: list[str] = []

    def variables(name: str) -> str | None:
        asked.append(f"variable {name}")
        return {"A": "from-variable"}.get(name)

    def connections(name: str) -> str | None:
        asked.append(f"connection {name}")
        return {"A": "never", "B": "from-connection"}.get(name)

    lookup = orchestrate.chained_lookup(variables, connections, lambda _name: None)
    assert lookup("A") == "from-variable"
    assert lookup("B") == "from-connection"
    assert lookup("C") is None
    assert asked[:3] == ["variable A", "variable B", "connection B"]


def test_failure_notice_masks_national_ids_and_links_the_log() -> None:
    class Ti:
        dag_id, task_id, run_id, try_number = "islandhub__school", "land", "manual__1", 4
        log_url = "http://airflow.example.fi/log"

    error = ValueError("bad row 230612A123B")
    summary = orchestrate.failure_summary({"ti": Ti(), "exception": error})
    assert "230612A123B" not in json.dumps(summary)
    card = orchestrate.teams_card(summary)
    assert card["@type"] == "MessageCard"
    assert card["title"] == "islandhub: islandhub__school.land failed"
    assert card["potentialAction"][0]["targets"][0]["uri"] == Ti.log_url
    assert "<table>" in orchestrate.failure_html(summary)


# A real HTTP server on loopback receives what the Teams notifier posts; the webhook URL comes
# from the Airflow variable (through Airflow's environment secrets backend: AIRFLOW_VAR_...).
NOTIFIER_SCRIPT = """
import importlib.util, json, os, sys, threading
from http.server import BaseHTTPRequestHandler, HTTPServer
received = []
class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
server = HTTPServer(("127.0.0.1", 0), Hook)
threading.Thread(target=server.serve_forever, daemon=True).start()
spec = importlib.util.spec_from_file_location("islandhub_dags", sys.argv[1])
dags = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dags)
class Ti:
    dag_id, task_id, run_id, try_number, log_url = "islandhub__school", "land", "r1", 4, ""
context = {"ti": Ti(), "exception": ValueError("bad row 230612A123B")}
dags.OwnerMailNotifier("bildning@example.fi").notify(context)  # no islandhub_smtp: nothing
os.environ["AIRFLOW_VAR_ISLANDHUB_TEAMS_WEBHOOK"] = f"http://127.0.0.1:{server.server_port}/x"
dags.TeamsNotifier().notify(context)
server.shutdown()
print("TEAMS " + json.dumps(received))
"""


@pytest.mark.slow
def test_teams_notifier_posts_a_card_to_the_webhook_in_the_variable(airflow: AirflowEnv) -> None:
    done = airflow.python(NOTIFIER_SCRIPT, str(REPO / "dags" / "islandhub_dags.py"))
    [card] = json_line(done.stdout, "TEAMS ")
    assert card["title"] == "islandhub: islandhub__school.land failed"
    facts = {fact["name"]: fact["value"] for fact in card["sections"][0]["facts"]}
    assert facts["error"] == "ValueError: bad row 230612A***B"


# --- real Airflow ----------------------------------------------------------------------------


@pytest.mark.slow
def test_dagbag_imports_one_dag_per_system_without_errors(airflow: AirflowEnv) -> None:
    bag = airflow.dagbag()
    assert bag["import_errors"] == {}
    extra = {"islandhub__report", "islandhub__push", "islandhub__retention"}
    expected = {f"islandhub__{s}" for s in SYSTEMS} | extra
    assert set(bag["dags"]) == expected
    for system in SYSTEMS:
        spec = yaml.safe_load((REPO / "config" / "systems" / f"{system}.yaml").read_text("utf-8"))
        dag = bag["dags"][f"islandhub__{system}"]
        assert dag["tasks"] == SYSTEM_TASKS
        assert dag["schedule"] == spec["schedule"]
        assert dag["max_active_runs"] == 1 and dag["catchup"] is False
        assert dag["tags"] == sorted(["islandhub", spec["connector"]])
        assert dag["owner"] == spec["owner"]["name"]
        assert spec["title"]["sv"] in dag["doc_md"]
        assert dag["retries"] == [3] and dag["backoff"] == [2.0]
        assert dag["pools"] == ["default_pool"]  # until the pools exist (see operations.md)
        assert dag["outlets"] == ["islandhub://residents/"]
    assert bag["dags"]["islandhub__report"]["tasks"] == ["status_report"]
    assert bag["dags"]["islandhub__push"]["tasks"] == ["push_changes"]
    # Woken by every publish, and hourly for rows whose backoff has passed.
    assert bag["dags"]["islandhub__push"]["timetable"] == "AssetOrTimeSchedule"
    assert bag["dags"]["islandhub__report"]["schedule"] == "@daily"
    assert bag["dags"]["islandhub__retention"]["tasks"] == ["enforce_retention"]
    assert bag["dags"]["islandhub__retention"]["schedule"] == "@daily"


@pytest.mark.slow
def test_tasks_use_the_system_pools_once_switched_on(airflow: AirflowEnv) -> None:
    bag = airflow.dagbag(extra={orchestrate.POOLS_ENV: "1"})
    assert bag["import_errors"] == {}
    assert bag["dags"]["islandhub__school"]["pools"] == ["islandhub_school"]
    assert bag["dags"]["islandhub__report"]["pools"] == ["default_pool"]


@pytest.mark.slow
def test_airflow_cli_lists_every_island_and_no_import_errors(airflow: AirflowEnv) -> None:
    airflow.run("dags", "reserialize")
    errors = json_line(airflow.run("dags", "list-import-errors", "-o", "json").stdout)
    assert errors == []
    listed = {row["dag_id"] for row in json_line(airflow.run("dags", "list", "-o", "json").stdout)}
    assert {f"islandhub__{s}" for s in SYSTEMS} <= listed


def _school_project(root: Path) -> tuple[Path, SchoolIsland]:
    """A project copy with the school island's nightly export in var/demo/school."""
    project = make_project(root)
    island = SchoolIsland(generate(300, 5), project / "var" / "demo" / "school", 5)
    island.prepare()
    return project, island


@pytest.mark.slow
def test_dags_test_school_lands_and_publishes_golden_records(
    airflow: AirflowEnv, tmp_path: Path
) -> None:
    project, island = _school_project(tmp_path / "project")
    store_url = f"sqlite:///{tmp_path / 'hub.db'}"
    extra = {"ISLANDHUB_PROJECT": str(project), "ISLANDHUB_STORE_URL": store_url}
    done = airflow.run("dags", "test", "islandhub__school", extra=extra, timeout=240)
    assert re.search(r"DagRun Finished: dag_id=islandhub__school,.* state=success", done.stdout)
    listed = airflow.run("dags", "list-runs", "islandhub__school", "-o", "json", extra=extra)
    assert [run["state"] for run in json_line(listed.stdout)] == ["success"]
    store = open_store(store_url)
    try:
        with store.connect() as conn:
            landed = _count(conn, landing, "pupils")
            linked = _count(conn, links, "pupils")
            quarantined_ids = island.planted["pupils"]
            active = conn.execute(sa.select(sa.func.count()).select_from(residents)).scalar_one()
            kinds = conn.execute(sa.select(runs.c.kind, runs.c.status)).all()
    finally:
        store.dispose()
    assert landed == len(island.rows) > 0
    assert linked == landed - len(quarantined_ids)
    assert active > 0
    assert sorted(kinds) == [("publish", "succeeded"), ("sync", "succeeded")]


def _count(conn: sa.Connection, table: sa.Table, stream: str) -> int:
    query = sa.select(sa.func.count()).where(table.c.system == "school", table.c.stream == stream)
    return conn.execute(query.select_from(table)).scalar_one()


def write_systems(project: Path, count: int) -> None:
    """Replace the project's systems with `count` copies of booking.yaml under new ids."""
    folder = project / "config" / "systems"
    template = (folder / "booking.yaml").read_text(encoding="utf-8")
    for path in folder.glob("*.yaml"):
        path.unlink()
    for n in range(count):
        text = template.replace("system: booking", f"system: island{n:02d}")
        (folder / f"island{n:02d}.yaml").write_text(text, encoding="utf-8")


@pytest.mark.slow
def test_parsing_fifty_systems_stays_within_budget(airflow: AirflowEnv, tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    write_systems(project, 50)
    started = time.perf_counter()
    bag = airflow.dagbag(extra={"ISLANDHUB_PROJECT": str(project)})
    assert bag["import_errors"] == {}
    assert len(bag["dags"]) == 53  # 50 islands, report, push, retention
    # The target is 1 s (benchmarks/dag_parse.py); this bound is loose for a noisy machine.
    assert bag["parse_s"] < 5.0, f"parsing 50 systems took {bag['parse_s']:.2f} s"
    assert time.perf_counter() - started < 60
