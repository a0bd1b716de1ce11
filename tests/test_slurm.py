"""`harness eval --executor slurm` on the real single-node Slurm cluster .ci/setup-slurm.sh starts (sbatch array
jobs of `harness worker`), against PostgreSQL and the loopback OpenAI-compatible server."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import harness
from harness.store import Store

HARNESS = [str(Path(sys.executable).parent / "harness")]
ENV = {**os.environ, "OPENAI_API_KEY": "sk-test"}
PG = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)


def submit(db_url: str, url: str, tmp_path: Path, *extra: str) -> dict:
    result = subprocess.run([*HARNESS, "eval", "-m", "openai/fake", "--base-url", url, "-t", "cipherbank",
                             "--data", "bundled", "--executor", "slurm", "--db", db_url, "--json", *extra],
                            capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def wait_finished(store: Store, run_id: str, timeout: float = 180) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        run = store.get_run(run_id)
        if run["status"] != "running":
            return run
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} still running after {timeout} s: {store.queue_status([run_id])}")


def job_gone(job_id: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = subprocess.run(["squeue", "-h", "-j", job_id], capture_output=True, text=True).stdout
        if not out.strip():
            return
        time.sleep(0.3)
    raise AssertionError(f"Slurm job {job_id} still queued or running")


def keys(store: Store, run_id: str) -> list[tuple]:
    return [(r["sample_id"], r["epoch"], r["status"]) for rt in store.run_tasks(run_id) for r in store.samples(rt["id"])]


@PG
@pytest.mark.parametrize("fake_openai", [("--latency", "0.05")], indirect=True)
def test_four_slurm_workers_store_every_sample_once_with_the_metrics_of_a_local_run(slurm, db_url, fake_openai,
                                                                                     tmp_path):
    submitted = submit(db_url, fake_openai, tmp_path, "--workers", "4", "--limit", "30", "--epochs", "2",
                       "--lease", "5", "--sbatch-line", "--comment=harness-test", "--time", "10")
    assert submitted["items"] == 60 and submitted["job_id"]
    store = Store(db_url)
    run = wait_finished(store, submitted["run_id"])
    assert run["status"] == "finished"
    job_gone(submitted["job_id"])
    rows = keys(store, run["id"])
    assert len(rows) == len({(s, e) for s, e, _ in rows}) == 60 and {s for *_, s in rows} == {"scored"}
    # the job script is stored with the run, as submitted: an array of 4, the options and extra lines in it
    script = run["executor"]["script"]
    assert "#SBATCH --array=0-3" in script and "#SBATCH --comment=harness-test" in script
    assert "#SBATCH --time=10" in script and f"worker {run['id']}" in script and db_url not in script
    queue = store.queue_status([run["id"]])[run["id"]]
    assert len(queue["workers"]) == 4 and all(f":{submitted['job_id']}_" in w for w in queue["workers"])
    assert sum(w["done"] for w in queue["workers"].values()) == 60
    local = harness.eval("cipherbank", "openai/fake", base_url=fake_openai, data="bundled", limit=30, epochs=2,
                         db=db_url).metrics["cipherbank"]
    queued = store.run_tasks(run["id"])[0]["metrics"]
    assert {k: v["value"] for k, v in queued["overall"].items()} == {k: v["value"] for k, v in local["overall"].items()}
    assert queued["counts"] == local["counts"]


@PG
@pytest.mark.parametrize("fake_openai", [("--latency", "1.0")], indirect=True)
def test_scancel_leaves_nothing_half_written_and_a_later_worker_finishes(slurm, db_url, fake_openai, tmp_path):
    submitted = submit(db_url, fake_openai, tmp_path, "--workers", "2", "--limit", "40", "--max-samples", "4",
                       "--lease", "30")
    store = Store(db_url)
    run_id = submitted["run_id"]
    deadline = time.time() + 60
    while time.time() < deadline and not any(r for r in keys(store, run_id)):
        time.sleep(0.2)
    subprocess.run(["scancel", submitted["job_id"]], check=True)
    job_gone(submitted["job_id"])
    queue = store.queue_status([run_id])[run_id]
    # SIGTERM reached the workers: they stopped claiming, stored what finished and gave the rest back at once
    # (a lease of 30 s has not expired: nothing is left leased only because the workers released it)
    assert set(queue["items"]) <= {"done", "queued"} and queue["items"].get("queued")
    assert {w["status"] for w in queue["workers"].values()} == {"stopped"}
    assert len(keys(store, run_id)) == queue["items"]["done"]
    assert store.get_run(run_id)["status"] == "running"
    out = subprocess.run([*HARNESS, "worker", run_id, "--db", db_url, "--json"], capture_output=True, text=True,
                         env=ENV, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout)["finished_run"]
    rows = keys(store, run_id)
    assert len(rows) == len({(s, e) for s, e, _ in rows}) == 40 and {s for *_, s in rows} == {"scored"}
    assert store.get_run(run_id)["status"] == "finished"


@PG
def test_a_job_sbatch_refuses_is_a_one_line_error_and_the_run_is_not_left_running(slurm, db_url, tmp_path):
    result = subprocess.run([*HARNESS, "eval", "-m", "mock", "-t", "cipherbank", "--data", "bundled", "--limit", "3",
                             "--executor", "slurm", "--workers", "2", "--partition", "no-such-partition",
                             "--db", db_url], capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: sbatch refused the job:") and "partition" in line.lower()
    (run,) = Store(db_url).list_runs()
    assert run["status"] == "interrupted"
    assert "#SBATCH --partition=no-such-partition" in Store(db_url).get_run(run["id"])["executor"]["script"]
