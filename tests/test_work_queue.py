"""The work queue in PostgreSQL (harness._worker, Store.claim / renew / reap / write(worker=)): real `harness worker`
processes against the loopback OpenAI-compatible server, killed, stopped and crowded. Slurm itself is in
tests/test_slurm.py; here the run is queued through harness.eval with an executor that submits nothing, and the
workers are started as plain processes (as an array task would start them)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

import harness
from harness.store import RunTask, SampleResult, SampleRow, Store
from harness.store._schema import WorkItem

HARNESS = [str(Path(sys.executable).parent / "harness")]
PG = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)  # the db_url fixture, PostgreSQL only
ENV = {**os.environ, "OPENAI_API_KEY": "sk-test"}


@dataclass
class QueueOnly:
    """Queues the run for workers and submits nothing: the test starts the workers itself."""

    lease_s: float = 60.0
    max_attempts: int = 3

    def submit(self, runner) -> None:
        runner.store.set_executor(runner.run_id, {"kind": "test", "workers": 0, "lease_s": self.lease_s,
                                                  "max_attempts": self.max_attempts})


def queue(db_url: str, url: str, *, limit: int, epochs: int = 1, max_samples: int = 8, **executor) -> str:
    result = harness.eval("cipherbank", "openai/fake", base_url=url, data="bundled", limit=limit, epochs=epochs,
                          max_samples=max_samples, db=db_url, executor=QueueOnly(**executor))
    assert result.status == "running"
    return result.run_id


def local(db_url: str, url: str, *, limit: int, epochs: int = 1) -> dict:
    result = harness.eval("cipherbank", "openai/fake", base_url=url, data="bundled", limit=limit, epochs=epochs,
                          max_samples=8, db=db_url)
    return result.metrics["cipherbank"]


def worker(db_url: str, run_id: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([*HARNESS, "worker", run_id, "--db", db_url, "--json", *extra], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(procs: list[subprocess.Popen], timeout: float = 240) -> list[dict]:
    reports = []
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        assert p.returncode == 0, err[-3000:]
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports


def stored(db_url: str, run_id: str) -> list[tuple]:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(select(SampleRow.sample_id, SampleRow.epoch, SampleRow.status)
                            .join(RunTask, RunTask.id == SampleRow.run_task_id).where(RunTask.run_id == run_id)).all()
    engine.dispose()
    return [tuple(r) for r in rows]


def items(db_url: str, run_id: str) -> list[dict]:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(WorkItem.__table__).where(WorkItem.run_id == run_id)).mappings()]
    engine.dispose()
    return rows


def comparable(metrics: dict) -> dict:
    return {name: (m["value"], m.get("n")) for name, m in metrics["overall"].items()}


def assert_each_once(db_url: str, run_id: str, n: int) -> None:
    rows = stored(db_url, run_id)
    keys = [(sid, epoch) for sid, epoch, _ in rows]
    assert len(keys) == len(set(keys)) == n  # nothing twice, nothing lost
    assert {status for *_, status in rows} == {"scored"}
    assert {i["state"] for i in items(db_url, run_id)} == {"done"}


@PG
@pytest.mark.parametrize("fake_openai", [("--latency", "0.05")], indirect=True)
def test_four_workers_store_every_sample_once_and_match_a_local_run(db_url, fake_openai):
    run_id = queue(db_url, fake_openai, limit=30, epochs=2)
    reports = finish([worker(db_url, run_id, "--batch", "4") for _ in range(4)])
    assert_each_once(db_url, run_id, 60)
    assert sum(r["solved"] for r in reports) == 60
    assert sum(r["finished_run"] for r in reports) == 1  # exactly one worker computed the metrics
    store = Store(db_url)
    run = store.get_run(run_id)
    assert run["status"] == "finished"
    queued = store.run_tasks(run_id)[0]["metrics"]
    assert queued["counts"] == {"scored": 60, "error": 0, "planned": 60} and queued["complete"]
    assert comparable(queued) == comparable(local(db_url, fake_openai, limit=30, epochs=2))
    # every worker is listed with what it stored; together they stored every item
    workers = store.queue_status([run_id])[run_id]["workers"]
    assert len(workers) == 4 and sum(w["done"] for w in workers.values()) == 60
    assert {w["status"] for w in workers.values()} == {"finished"}
    listed = subprocess.run([*HARNESS, "show", run_id, "--db", db_url], capture_output=True, text=True, env=ENV)
    assert "queue 60/60 done" in listed.stdout and "4 seen" in listed.stdout


@PG
@pytest.mark.parametrize("fake_openai", [("--latency", "1.0")], indirect=True)
def test_a_worker_killed_mid_batch_loses_its_leases_to_the_others(db_url, fake_openai):
    run_id = queue(db_url, fake_openai, limit=24, max_samples=4, lease_s=2.0)
    victim = worker(db_url, run_id, "--batch", "4")
    deadline = time.time() + 60
    while time.time() < deadline and not any(i["state"] == "leased" for i in items(db_url, run_id)):
        time.sleep(0.05)
    held = {i["id"] for i in items(db_url, run_id) if i["state"] == "leased"}
    assert held, "the victim never claimed anything"
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    assert not stored(db_url, run_id), "the victim was to die mid-batch, before storing anything"
    finish([worker(db_url, run_id, "--batch", "4") for _ in range(2)])
    assert_each_once(db_url, run_id, 24)
    # the victim's items were claimed again after its leases expired: a second attempt each
    retried = {i["id"]: i["attempts"] for i in items(db_url, run_id) if i["id"] in held}
    assert retried and all(a == 2 for a in retried.values())
    assert Store(db_url).get_run(run_id)["status"] == "finished"


@PG
@pytest.mark.parametrize("fake_openai", [("--latency", "1.0")], indirect=True)
def test_a_hung_worker_is_reaped_and_its_late_results_are_not_stored_twice(db_url, fake_openai):
    run_id = queue(db_url, fake_openai, limit=16, max_samples=4, lease_s=1.5)
    hung = worker(db_url, run_id, "--batch", "4")
    deadline = time.time() + 60
    while time.time() < deadline and not any(i["state"] == "leased" for i in items(db_url, run_id)):
        time.sleep(0.05)
    hung.send_signal(signal.SIGSTOP)  # alive but silent: no heartbeat, its leases expire
    try:
        held = {i["id"] for i in items(db_url, run_id) if i["state"] == "leased"}
        finish([worker(db_url, run_id, "--batch", "4")])
        assert_each_once(db_url, run_id, 16)
    finally:
        hung.send_signal(signal.SIGCONT)
    (report,) = finish([hung])  # it wakes, finishes its stale items, and its writes are skipped
    assert report["solved"] == len(held) and not report["finished_run"]
    assert_each_once(db_url, run_id, 16)


@PG
@pytest.mark.parametrize("fake_openai", [("--latency", "4.0")], indirect=True)
def test_sigterm_gives_unfinished_items_back_and_writes_nothing_half(db_url, fake_openai):
    run_id = queue(db_url, fake_openai, limit=6, max_samples=6)
    proc = worker(db_url, run_id, "--grace", "0.5")
    deadline = time.time() + 60
    while time.time() < deadline and sum(i["state"] == "leased" for i in items(db_url, run_id)) < 6:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    (report,) = finish([proc], timeout=30)
    assert report["stopped"] and report["released"] == 6
    left = items(db_url, run_id)
    assert {i["state"] for i in left} == {"queued"} and {i["attempts"] for i in left} == {0}  # not counted
    assert stored(db_url, run_id) == []
    assert Store(db_url).queue_status([run_id])[run_id]["workers"][report["name"]]["status"] == "stopped"
    local = subprocess.run([*HARNESS, "eval", "--resume", run_id, "--db", db_url], capture_output=True, text=True,
                           env=ENV)  # solving it here beside the queue would store samples twice: refused
    assert local.returncode != 0 and f"continue it with harness worker {run_id}" in local.stderr
    finish([worker(db_url, run_id)])
    assert_each_once(db_url, run_id, 6)


@PG
@pytest.mark.parametrize("fake_openai", [("--latency", "0.2", "--faults", "401:4")], indirect=True)
def test_a_revoked_key_stops_the_worker_with_one_line_and_gives_its_items_back(db_url, fake_openai):
    run_id = queue(db_url, fake_openai, limit=20, max_samples=2)
    proc = worker(db_url, run_id, "--batch", "2")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    line = err.strip().splitlines()[-1]
    assert line.startswith("error:") and f"run {run_id} stopped" in line and "gave its items back" in line
    states = [i["state"] for i in items(db_url, run_id)]
    rows = stored(db_url, run_id)
    assert states.count("done") == len(rows) == 4 and states.count("queued") == 16  # nothing left leased
    assert {status for *_, status in rows} == {"scored"}
    assert Store(db_url).get_run(run_id)["status"] == "interrupted"


@PG
@pytest.mark.parametrize("fake_openai", [("--latency", "0.05")], indirect=True)
def test_sixteen_workers_at_once_no_deadlock_nothing_lost(db_url, fake_openai):
    run_id = queue(db_url, fake_openai, limit=60, epochs=2, max_samples=4)
    reports = finish([worker(db_url, run_id, "--batch", "2") for _ in range(16)], timeout=400)
    assert_each_once(db_url, run_id, 120)
    assert sum(r["solved"] for r in reports) == 120 and sum(r["finished_run"] for r in reports) == 1
    assert Store(db_url).run_tasks(run_id)[0]["metrics"]["counts"]["scored"] == 120


@PG
@pytest.mark.parametrize("fake_openai", [("--latency", "0")], indirect=True)
def test_lease_expiring_on_the_last_attempt_stores_an_errored_sample_with_the_reason(db_url, fake_openai):
    run_id = queue(db_url, fake_openai, limit=3, lease_s=0.2, max_attempts=2)
    store = Store(db_url)
    for attempt in (1, 2):
        claimed = store.claim(run_id, f"lost-{attempt}", 10, 0.2)
        assert len(claimed) == 3 and {c["attempts"] for c in claimed} == {attempt}
        assert store.claim(run_id, "other", 10, 0.2) == []  # leased items are never claimed twice
        time.sleep(0.3)
        assert store.reap(run_id, max_attempts=2) == ((3, 0) if attempt == 1 else (0, 3))
    rows = store.samples(store.run_tasks(run_id)[0]["id"])
    assert [r["status"] for r in rows] == ["error"] * 3
    assert all("no result after 2 attempts" in r["error"] and "lost-2" in r["error"] for r in rows)
    assert {i["state"] for i in items(db_url, run_id)} == {"failed"}
    # the last worker finds the queue drained and finishes the run: errored samples counted, not dropped
    finish([worker(db_url, run_id)])
    metrics = store.run_tasks(run_id)[0]["metrics"]
    assert metrics["counts"] == {"scored": 0, "error": 3, "planned": 3} and not metrics["complete"]


@PG
@pytest.mark.parametrize("fake_openai", [("--latency", "0")], indirect=True)
def test_a_result_written_by_two_workers_is_stored_once(db_url, fake_openai):
    run_id = queue(db_url, fake_openai, limit=2)
    store = Store(db_url)
    (first,) = store.claim(run_id, "a", 1, 60)
    row = {"sample_id": first["sample_id"], "epoch": first["epoch"], "status": "scored", "score": 1.0}
    events = [{"seq": 0, "kind": "model", "name": "fake"}]
    result = SampleResult(first["run_task_id"], row, [], {"by": "a"}, events)
    assert store.write([result], worker="a") == []
    # b's lease on the same item came after a's expired (faked here by writing as b): b's copy is skipped
    assert store.write([SampleResult(first["run_task_id"], {**row, "score": 0.0}, [], {"by": "b"}, events)],
                       worker="b") == []
    rows = store.samples(first["run_task_id"])
    assert [(r["sample_id"], r["score"]) for r in rows] == [(first["sample_id"], 1.0)]
    engine = create_engine(db_url)
    with engine.connect() as conn:
        from harness.store import EventRow

        assert conn.execute(select(func.count()).select_from(EventRow)).scalar() == 1
    engine.dispose()


def test_sqlite_refuses_the_slurm_executor_in_one_line(tmp_path):
    db = tmp_path / "h.db"
    result = subprocess.run([*HARNESS, "eval", "-m", "mock", "-t", "cipherbank", "--data", "bundled",
                             "--executor", "slurm", "--workers", "2", "--db", f"sqlite:///{db}"],
                            capture_output=True, text=True, env=ENV)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--executor slurm needs a PostgreSQL store" in lines[0]
    assert not db.exists()  # refused before the database was created
    local_only = subprocess.run([*HARNESS, "eval", "-m", "mock", "-t", "cipherbank", "--data", "bundled",
                                 "--workers", "2", "--db", f"sqlite:///{db}"], capture_output=True, text=True, env=ENV)
    assert "--workers only apply to --executor slurm" in local_only.stderr


def stand_in_vllm(tmp_path: Path, monkeypatch, latency: float = 0.0) -> Path:
    """A `vllm` on PATH that notes each start (argv) and then serves the tests' fake OpenAI-compatible server."""
    starts = tmp_path / "starts.txt"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "vllm"
    exe.write_text(f"#!{sys.executable}\nimport os, sys\nopen({str(starts)!r}, 'a').write(' '.join(sys.argv) + '\\n')\n"
                   f"port = sys.argv[sys.argv.index('--port') + 1]\nfake = {str(Path(__file__).parent / 'fakeopenai.py')!r}\n"
                   f"os.execv(sys.executable, [sys.executable, fake, '--port', port, '--answer', 'x', '--latency', "
                   f"'{latency}'])\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("HARNESS_SERVER_DIR", str(tmp_path / "servers"))
    return starts


@PG
def test_a_managed_server_starts_on_the_worker_not_where_the_run_is_queued(db_url, tmp_path, monkeypatch):
    starts = stand_in_vllm(tmp_path, monkeypatch)
    result = harness.eval("cipherbank", "vllm/some/model", data="bundled", limit=4, db=db_url, executor=QueueOnly())
    assert not starts.exists()  # queued on a machine without the GPU: nothing started there
    proc = subprocess.Popen([*HARNESS, "worker", result.run_id, "--db", db_url, "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**ENV, **os.environ})
    finish([proc])
    assert len(starts.read_text().splitlines()) == 1
    assert_each_once(db_url, result.run_id, 4)


@PG
def test_workers_of_one_node_share_one_managed_server_and_the_last_stops_it(db_url, tmp_path, monkeypatch):
    import socket

    starts = stand_in_vllm(tmp_path, monkeypatch, latency=0.3)
    result = harness.eval("cipherbank", "vllm/some/model", data="bundled", limit=40, max_samples=4, db=db_url,
                          model_args={"max_model_len": 4096}, executor=QueueOnly())
    procs = [subprocess.Popen([*HARNESS, "worker", result.run_id, "--db", db_url, "--json", "--batch", "2"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**ENV, **os.environ})
             for _ in range(3)]
    reports = finish(procs)
    assert_each_once(db_url, result.run_id, 40)
    assert sum(1 for r in reports if r["solved"]) >= 2  # more than one worker used it
    (argv,) = starts.read_text().splitlines()  # one server for the node
    assert "serve some/model" in argv and "--max-model-len 4096" in argv
    port = int(argv.split("--port ")[1].split()[0])
    with socket.socket() as s:  # stopped once the last worker left
        assert s.connect_ex(("127.0.0.1", port)) != 0
    assert not list((tmp_path / "servers").glob("*.json"))  # no user left recorded
