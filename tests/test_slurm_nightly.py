"""`harness nightly` with the Slurm executor: each model's run is queued and submitted as `harness eval --executor
slurm` submits it, the nightly follows the jobs on the real single-node Slurm of .ci/setup-slurm.sh and builds the
leaderboard from the finished runs; a job that ends with its run unfinished is the model's error, and the next
nightly submits the run's stored job script again. Against PostgreSQL and the loopback OpenAI-compatible server."""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

import harness
from harness.store import Store

from test_slurm import ENV, HARNESS, PG


def config(tmp_path: Path, url: str, *, limit: int, slurm: str, max_samples: int | None = None) -> Path:
    path = tmp_path / "nightly.toml"
    path.write_text(f"""
executor = "slurm"
out = "site"
data = "bundled"
limit = {limit}
{f"max_samples = {max_samples}" if max_samples else ""}
tasks = ["cipherbank"]

[slurm]
{slurm}

[[models]]
name = "openai/fake"
base_url = "{url}"

[[models]]
name = "reference"
slurm = {{ workers = 1 }}
""")
    return path


def nightly(path: Path, db_url: str, *extra: str, timeout: float = 300) -> tuple[int, dict, str]:
    out = subprocess.run([*HARNESS, "nightly", str(path), "--db", db_url, "--json", *extra], capture_output=True,
                         text=True, env=ENV, cwd=path.parent, timeout=timeout)
    assert out.stdout.startswith("{"), out.stderr[-3000:]
    return out.returncode, {r["model"]: r for r in json.loads(out.stdout)["runs"]}, out.stderr


def keys(store: Store, run_id: str) -> list[tuple]:
    return [(r["sample_id"], r["epoch"], r["status"])
            for rt in store.run_tasks(run_id) for r in store.samples(rt["id"])]


def job_gone(job_id: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not subprocess.run(["squeue", "-h", "-j", job_id], capture_output=True, text=True).stdout.strip():
            return
        time.sleep(0.3)
    raise AssertionError(f"Slurm job {job_id} still queued or running")


@PG
@pytest.mark.parametrize("fake_openai", [("--latency", "0.05")], indirect=True)
def test_a_slurm_nightly_waits_for_its_jobs_and_builds_the_board_from_the_finished_runs(slurm, db_url, fake_openai,
                                                                                        tmp_path):
    path = config(tmp_path, fake_openai, limit=12,
                  slurm='workers = 2\ntime = "10"\nlease = 5\nsbatch_lines = ["--comment=nightly-test"]')
    code, runs, err = nightly(path, db_url, "--workers", "3")  # the flag overrides the file's [slurm] workers
    assert code == 0, err[-3000:]
    store = Store(db_url)
    fake, ref = runs["openai/fake"], runs["reference"]
    for r in (fake, ref):
        assert r["status"] == "finished" and r["error"] is None and r["job_id"] and not r["resumed"]
        job_gone(r["job_id"])
        rows = keys(store, r["run_id"])
        assert len(rows) == len({(s, e) for s, e, _ in rows}) == 12 and {s for *_, s in rows} == {"scored"}
    assert fake["job_id"] != ref["job_id"]
    # each model's job script as `harness eval --executor slurm` writes it: the CLI's 3 workers for the first,
    # the model's own table's 1 for the reference, the file's other keys for both
    fake_run, ref_run = store.get_run(fake["run_id"]), store.get_run(ref["run_id"])
    for run, array in ((fake_run, "0-2"), (ref_run, "0-0")):
        script = run["executor"]["script"]
        assert f"#SBATCH --array={array}" in script and "#SBATCH --comment=nightly-test" in script
        assert "#SBATCH --time=10" in script and f"worker {run['id']}" in script and db_url not in script
        assert run["executor"]["lease_s"] == 5
    workers = store.queue_status([fake["run_id"]])[fake["run_id"]]["workers"]
    assert len(workers) == 3 and all(f":{fake['job_id']}_" in w for w in workers)
    # the workers' metrics are those of a local run of the same plan
    local = harness.eval("cipherbank", "openai/fake", base_url=fake_openai, data="bundled", limit=12,
                         db=db_url).metrics["cipherbank"]
    queued = store.run_tasks(fake["run_id"])[0]["metrics"]
    assert {k: v["value"] for k, v in queued["overall"].items()} == {k: v["value"] for k, v in local["overall"].items()}
    index = (tmp_path / "site" / "index.html").read_text()
    assert f'data-run="{fake["run_id"]}"' in index and f'data-run="{ref["run_id"]}"' in index
    assert "submitted as Slurm job" in err and f"run {fake['run_id']} finished" in err


@PG
@pytest.mark.parametrize("fake_openai", [("--latency", "1.0")], indirect=True)
def test_a_job_that_ends_early_is_the_models_error_and_the_next_nightly_submits_its_script_again(
        slurm, db_url, fake_openai, tmp_path):
    path = config(tmp_path, fake_openai, limit=24, max_samples=2, slurm="workers = 1\nlease = 30")
    # --no-wait: the nightly submits, builds from what is finished (the reference, quick) and says how to follow
    code, runs, err = nightly(path, db_url, "--no-wait")
    assert code == 0, err[-3000:]
    fake = runs["openai/fake"]
    assert fake["status"] == "running" and fake["error"] is None
    assert f"follow it with harness show {fake['run_id']}" in err
    store = Store(db_url)
    deadline = time.time() + 60
    while time.time() < deadline and not keys(store, fake["run_id"]):
        time.sleep(0.2)
    subprocess.run(["scancel", fake["job_id"]], check=True)  # the job dies with most items still queued
    job_gone(fake["job_id"])
    done_before = len(keys(store, fake["run_id"]))
    assert 0 < done_before < 24 and store.get_run(fake["run_id"])["status"] == "running"

    # the next night finds the queued run unfinished with no job left: it submits the stored script again
    code, runs2, err2 = nightly(path, db_url)
    assert code == 0, err2[-3000:]
    again = runs2["openai/fake"]
    assert again["run_id"] == fake["run_id"] and again["resumed"] and again["status"] == "finished"
    assert again["job_id"] != fake["job_id"]
    assert f"submitted its job script again as Slurm job {again['job_id']}" in err2
    rows = keys(store, fake["run_id"])
    assert len(rows) == len({(s, e) for s, e, _ in rows}) == 24 and {s for *_, s in rows} == {"scored"}
    assert f'data-run="{fake["run_id"]}"' in (tmp_path / "site" / "index.html").read_text()

    # a job scancel'ed while the nightly follows it: that model's error, saying how to continue; exit status 1
    proc = subprocess.Popen([*HARNESS, "nightly", str(path), "--db", db_url, "--json", "-o", "site2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=tmp_path)
    deadline, job = time.time() + 60, None
    while time.time() < deadline and job is None:
        queued = [r for r in store.list_runs() if r["model"] == "openai/fake" and r["id"] != fake["run_id"]]
        job = (queued[0].get("executor") or {}).get("job_id") if queued else None
        time.sleep(0.2)
    assert job, "the third nightly submitted no job"
    subprocess.run(["scancel", job], check=True)
    out, err3 = proc.communicate(timeout=120)
    assert proc.returncode == 1, err3[-3000:]
    third = {r["model"]: r for r in json.loads(out)["runs"]}["openai/fake"]
    assert third["job_id"] == job and third["status"] == "running"
    assert f"Slurm job {job} ended with run {third['run_id']} running" in third["error"]
    assert f"the next nightly continues it, or: harness worker {third['run_id']}" in third["error"]


@pytest.mark.parametrize("toml, message", [
    ('executor = "slurm"', "--executor slurm needs a PostgreSQL store"),
    ("[slurm]\nworkers = 4", 'slurm.workers only apply to executor = "slurm"'),
    ('executor = "slurm"\n[slurm]\nworkers = 0', "slurm.workers: Input should be greater than or equal to 1"),
])
def test_slurm_settings_that_cannot_work_are_one_line_errors_before_any_run(tmp_path, toml, message):
    path = tmp_path / "nightly.toml"
    path.write_text(f'tasks = ["cipherbank"]\ndata = "bundled"\n{toml}\n[[models]]\nname = "reference"\n')
    db = tmp_path / "h.db"
    out = subprocess.run([*HARNESS, "nightly", str(path), "--db", f"sqlite:///{db}"], capture_output=True, text=True,
                         env=ENV, cwd=tmp_path, timeout=60)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], out.stderr
    assert not (tmp_path / "harness-slurm").exists() and not (tmp_path / "site").exists()
