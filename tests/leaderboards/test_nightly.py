"""`harness nightly`: the declared models x tasks matrix, resuming what an earlier night left unfinished,
then the leaderboard."""
from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import delete, func, select, update
from typer.testing import CliRunner

from conftest import Page
from harness.cli._app import app
from harness.store import Run, RunTask, SampleRow, Store

CONFIG = """
out = "site"
data = "bundled"
limit = 18
tasks = ["cipherbank"]

[[models]]
name = "reference"

[[models]]
name = "mock"
args = { text = "<result>nothing</result>" }
tasks = ["cipherbank", "cipherbank@hint"]
"""


def _nightly(config, db_url):
    result = CliRunner().invoke(app, ["nightly", str(config), "--db", db_url, "--json"])
    assert result.stdout.startswith("{"), (result.output, result.exception)
    return result.exit_code, json.loads(result.stdout)


def _samples(store: Store, run_id: str) -> dict[str, int]:
    with store.engine.connect() as conn:
        return dict(conn.execute(select(RunTask.variant, func.count()).join(SampleRow, SampleRow.run_task_id == RunTask.id)
                                 .where(RunTask.run_id == run_id).group_by(RunTask.variant)).all())


def test_nightly_runs_the_matrix_and_resumes_unfinished_runs(db_url, tmp_path):
    config = tmp_path / "nightly.toml"
    config.write_text(CONFIG)
    code, night1 = _nightly(config, db_url)
    assert code == 0, night1
    runs = {r["model"]: r for r in night1["runs"]}
    assert set(runs) == {"reference", "mock"} and not any(r["resumed"] or r["error"] for r in runs.values())
    store = Store(db_url)
    assert _samples(store, runs["reference"]["run_id"]) == {"default": 18}
    assert _samples(store, runs["mock"]["run_id"]) == {"default": 18, "hint": 18}
    index = Page((tmp_path / "site" / "index.html").read_text())
    assert float(index.cell("reference", "cipherbank")["attrs"]["data-value"]) == 100.0
    assert float(index.cell("mock", "cipherbank@hint")["attrs"]["data-value"]) == 0.0

    # the mock run died half-way through its second task last night
    mock_run = runs["mock"]["run_id"]
    with store.engine.begin() as conn:
        conn.execute(update(Run).where(Run.id == mock_run).values(status="interrupted"))
        hint = conn.execute(select(RunTask.id).where(RunTask.run_id == mock_run, RunTask.variant == "hint")).scalar()
        conn.execute(delete(SampleRow).where(SampleRow.run_task_id == hint, SampleRow.sample_id.like("Rot13-%")))
    assert _samples(store, mock_run) == {"default": 18, "hint": 16}

    code, night2 = _nightly(config, db_url)
    assert code == 0, night2
    runs2 = {r["model"]: r for r in night2["runs"]}
    assert runs2["mock"] == {"model": "mock", "run_id": mock_run, "resumed": True, "error": None, "job_id": None,
                             "status": "finished"}
    assert not runs2["reference"]["resumed"] and runs2["reference"]["run_id"] != runs["reference"]["run_id"]
    assert _samples(store, mock_run) == {"default": 18, "hint": 18}
    assert store.get_run(mock_run)["status"] == "finished"
    index = Page((tmp_path / "site" / "index.html").read_text())
    assert index.cell("reference", "cipherbank")["attrs"]["data-run"] == runs2["reference"]["run_id"]
    assert index.cell("mock", "cipherbank")["attrs"]["data-run"] == mock_run


def test_one_failing_model_does_not_stop_the_night(db_url, tmp_path):
    config = tmp_path / "nightly.toml"
    config.write_text('out = "site"\ndata = "bundled"\nlimit = 9\ntasks = ["cipherbank"]\n'
                      '[[models]]\nname = "nosuchprovider/x"\n[[models]]\nname = "reference"\n')
    code, night = _nightly(config, db_url)
    assert code == 1
    runs = {r["model"]: r for r in night["runs"]}
    assert "unknown model" in runs["nosuchprovider/x"]["error"] and runs["reference"]["error"] is None
    assert Page((tmp_path / "site" / "index.html").read_text()).cell("reference", "cipherbank") is not None


def test_bad_nightly_file(tmp_path):
    config = tmp_path / "n.toml"
    config.write_text('tasks = ["cipherbank"]\n')
    result = CliRunner().invoke(app, ["nightly", str(config)])
    assert result.exit_code != 0 and "models" in str(result.exception)


def test_docker_files_agree_with_the_code():
    """The shipped nightly matrix loads and names registered suites; compose wires the harness to its database
    and runs that file."""
    import yaml

    from harness import get_task
    from harness._nightly import load_nightly

    docker = Path(__file__).resolve().parents[2] / "docker"
    spec = load_nightly(docker / "nightly.toml")
    for plan in spec.plans():
        for ref in plan.tasks:
            get_task(ref.name).build(ref.variant)
    compose = yaml.safe_load((docker / "compose.yaml").read_text())
    services = compose["services"]
    assert {"db", "harness", "vllm", "site"} <= set(services) and services["vllm"]["profiles"] == ["vllm"]
    harness = services["harness"]
    assert harness["environment"]["HARNESS_DB_URL"].startswith("postgresql+psycopg://harness:")
    assert "@db:5432/harness" in harness["environment"]["HARNESS_DB_URL"]
    assert harness["command"][:2] == ["nightly", "/config/nightly.toml"]
    assert "./nightly.toml:/config/nightly.toml:ro" in harness["volumes"]
    assert harness["build"]["dockerfile"] == "docker/Dockerfile" and (docker / "Dockerfile").is_file()
