"""Real Airflow 3 for the DAG tests: its own AIRFLOW_HOME and SQLite metadata DB, in subprocesses.

Airflow is never imported into the test process (its configuration and logging would stay
behind for the other tests): every Airflow call runs in a subprocess of the venv's
interpreter with the environment built here, once per session.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
AIRFLOW = Path(sys.executable).with_name("airflow")

# Printed as one JSON line by a subprocess: what a real DagBag made of dags/.
DAGBAG_SCRIPT = """
import json, sys, time
started = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag
imported = time.perf_counter()
bag = DagBag(sys.argv[1])
parsed = time.perf_counter()
dags = {}
for dag_id, dag in bag.dags.items():
    dags[dag_id] = {
        "tasks": sorted(t.task_id for t in dag.tasks),
        "schedule": dag.schedule if isinstance(dag.schedule, str | None) else "assets",
        "timetable": type(dag.timetable).__name__,
        "max_active_runs": dag.max_active_runs,
        "max_active_tasks": dag.max_active_tasks,
        "catchup": dag.catchup,
        "tags": sorted(dag.tags),
        "owner": dag.owner,
        "doc_md": dag.doc_md,
        "pools": sorted({t.pool for t in dag.tasks}),
        "retries": sorted({t.retries for t in dag.tasks}),
        "backoff": sorted({float(t.retry_exponential_backoff) for t in dag.tasks}),
        "outlets": sorted(str(o.uri) for t in dag.tasks for o in t.outlets),
    }
print("DAGBAG " + json.dumps({
    "import_errors": bag.import_errors, "dags": dags,
    "import_airflow_s": imported - started, "parse_s": parsed - imported,
}))
"""


@dataclass(frozen=True)
class AirflowEnv:
    """An Airflow home with a migrated SQLite metadata DB, and the environment that uses it."""

    home: Path
    env: Mapping[str, str]

    def run(
        self, *args: str, extra: Mapping[str, str] | None = None, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        """Run `airflow ARGS...` with this environment; on failure fail the test with its output."""
        return self._run([str(AIRFLOW), *args], extra, timeout)

    def python(
        self, code: str, *args: str, extra: Mapping[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run Python code in a fresh interpreter with this environment."""
        return self._run([sys.executable, "-c", code, *args], extra, timeout)

    def dagbag(self, extra: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Parse dags/ with a real DagBag (in a subprocess); its summary as plain data."""
        done = self.python(DAGBAG_SCRIPT, str(DAGS), extra=extra)
        return json_line(done.stdout, "DAGBAG ")

    def _run(
        self, argv: list[str], extra: Mapping[str, str] | None, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        env = {**self.env, **(extra or {})}
        done = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            pytest.fail(
                f"{' '.join(a for a in argv[:4] if chr(10) not in a)} exited {done.returncode}\n"
                f"--- stdout\n{done.stdout[-6000:]}\n--- stderr\n{done.stderr[-6000:]}"
            )
        return done


def json_line(stdout: str, prefix: str = "") -> Any:
    """The JSON document on the first stdout line that starts with `prefix` (or [ / {)."""
    for line in stdout.splitlines():
        if prefix and line.startswith(prefix):
            return json.loads(line[len(prefix) :])
        if not prefix and line[:1] in "[{":
            return json.loads(line)
    raise AssertionError(f"no JSON line in the output:\n{stdout[-3000:]}")


def _airflow_environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ISLANDHUB_"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
        ISLANDHUB_WORKERS="0",  # one process per task: simpler to read in a test log
        # The national-id key, as a production worker has it (the tests' stores are sealed).
        ISLANDHUB_NATIONAL_ID_KEY=os.environ["ISLANDHUB_NATIONAL_ID_KEY"],
    )
    return env


@pytest.fixture(scope="session")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> AirflowEnv:
    """A migrated Airflow metadata DB in a temporary AIRFLOW_HOME (once per session)."""
    if not AIRFLOW.is_file():
        pytest.fail(f"the venv has no airflow executable at {AIRFLOW}")
    home = tmp_path_factory.mktemp("airflow_home")
    environment = AirflowEnv(home, _airflow_environment(home))
    environment.run("db", "migrate")
    return environment


def make_project(root: Path) -> Path:
    """A copy of the repository's config/ and mappings/ at `root` (a project folder)."""
    root.mkdir(parents=True, exist_ok=True)
    for folder in ("config", "mappings"):
        shutil.copytree(REPO / folder, root / folder)
    return root
