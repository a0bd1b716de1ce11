"""The CLI as a user meets it: real processes, one-line errors, resume after kill -9."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fakeopenai import start_server

HARNESS = [sys.executable, "-m", "harness.cli"]
BUNDLED = Path(__file__).parent.parent / "tasks" / "cipherbank" / "data" / "test.jsonl"


def harness(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*HARNESS, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize("args, message", [
    (["eval", "--model", "reference", "--task", "cipherbnk"], "unknown task 'cipherbnk' (did you mean 'cipherbank'?)"),
    (["eval", "--model", "reference", "--task", "cipherbank@hnt"], "no variant 'hnt' (did you mean 'hint'?)"),
    (["eval", "--model", "refrence", "--task", "cipherbank"], "unknown model 'refrence' (did you mean 'reference'?)"),
    (["eval", "--model", "reference", "--task", "cipherbank", "-T", "shots=2"], "takes no argument 'shots'"),
    (["eval", "--model", "reference", "--task", "cipherbank", "--data", "/nonexistent.jsonl"], "no such file"),
    (["eval", "--resume", "nope"], "no run 'nope'"),
    (["show", "nope"], "no run 'nope'"),
    (["runs", "--db", "postgresql+psycopg://x@127.0.0.1:1/db"], "cannot open database"),
])
def test_bad_input_is_one_clear_line(args, message, tmp_path):
    db = [] if "--db" in args else ["--db", f"sqlite:///{tmp_path / 'h.db'}"]
    assert message in one_line_error(harness(*args, *db))


def test_missing_api_key_stops_before_any_work(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    result = subprocess.run([*HARNESS, "eval", "--model", "openai/gpt-4o-mini", "--task", "cipherbank", "--data",
                             "bundled", "--db", f"sqlite:///{tmp_path / 'h.db'}"], capture_output=True, text=True, env=env)
    assert "OPENAI_API_KEY is not set" in one_line_error(result)
    assert not (tmp_path / "h.db").exists() or sqlite3.connect(tmp_path / "h.db").execute(
        "select count(*) from runs").fetchone()[0] == 0


def test_unreachable_endpoint_is_one_line(tmp_path):
    result = harness("eval", "--model", "openai/m", "--base-url", "http://127.0.0.1:9/v1", "--task", "cipherbank",
                     "--data", "bundled", "--db", f"sqlite:///{tmp_path / 'h.db'}")
    assert "cannot reach http://127.0.0.1:9/v1" in one_line_error(result)


def test_a_malformed_record_errors_its_sample_and_the_run_goes_on(tmp_path):
    lines = BUNDLED.read_text().splitlines()[:3]
    broken = json.loads(lines[1])
    del broken["Atbash"]  # a record missing a cipher column
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join([lines[0], json.dumps(broken), "{not json", lines[2]]) + "\n")
    db = f"sqlite:///{tmp_path / 'h.db'}"
    result = harness("eval", "--model", "reference", "--task", "cipherbank", "--data", str(data), "--db", db, "--json")
    assert result.returncode == 0, result.stderr
    task = json.loads(result.stdout)["tasks"][0]
    assert task["counts"] == {"scored": 18, "error": 2}  # two good records x 9 ciphers; one error per bad record
    assert task["metrics"]["overall"]["accuracy"]["value"] == 100.0
    con = sqlite3.connect(tmp_path / "h.db")
    errors = sorted(r[0] for r in con.execute("select error from samples where status = 'error'"))
    assert any("KeyError: 'Atbash'" in e for e in errors) and any("data.jsonl:3: not JSON" in e for e in errors)


def test_tasks_runs_and_show_agree_with_eval(tmp_path):
    db = ["--db", f"sqlite:///{tmp_path / 'h.db'}"]
    tasks = json.loads(harness("tasks", "--json").stdout)
    cb = next(t for t in tasks if t["name"] == "cipherbank")
    assert cb["size"] == 2358 and cb["bundled_samples"] == 180 and set(cb["variants"]) == {"default", "hint", "no_system"}
    out = json.loads(harness("eval", "-m", "reference", "-t", "cipherbank@hint", "--data", "bundled", "--limit", "9",
                             *db, "--json").stdout)
    run_id = out["run"]["id"]
    runs = json.loads(harness("runs", *db, "--json").stdout)
    assert runs[0]["id"] == run_id and runs[0]["tasks"] == ["cipherbank@hint"] and runs[0]["counts"] == {"scored": 9}
    shown = json.loads(harness("show", run_id, *db, "--json").stdout)
    assert shown["tasks"] == out["tasks"]
    table = harness("show", run_id, *db).stdout
    assert "cipherbank@hint" in table and "100.00" in table and "reported in the paper" in table


def test_kill_9_halfway_then_resume_does_every_sample_exactly_once(tmp_path):
    log = tmp_path / "requests.jsonl"
    server, url = start_server("--latency", "0.05", "--log", str(log))
    db_path = tmp_path / "h.db"
    db = f"sqlite:///{db_path}"
    try:
        proc = subprocess.Popen([*HARNESS, "eval", "-m", "openai/fake", "--base-url", url, "-t", "cipherbank",
                                 "--data", "bundled", "--db", db, "-M", "max_connections=4"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        committed = 0
        deadline = time.time() + 60
        while committed < 60 and time.time() < deadline:
            time.sleep(0.1)
            try:
                committed = sqlite3.connect(db_path).execute("select count(*) from samples").fetchone()[0]
            except sqlite3.OperationalError:
                pass  # the schema is not there yet
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        con = sqlite3.connect(db_path)
        run_id, status = con.execute("select id, status from runs").fetchone()
        assert status == "running"  # killed: nothing had the chance to mark it
        done_before = {r[0] for r in con.execute("select prompt from samples")}
        assert 60 <= len(done_before) < 180
        requests_before = len(log.read_text().splitlines())

        result = harness("eval", "--resume", run_id[:12], "--db", db, "--json")
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout)
        assert summary["tasks"][0]["counts"] == {"scored": 180}
        rows = con.execute("select sample_id, epoch, count(*) from samples group by 1, 2").fetchall()
        assert len(rows) == 180 and all(n == 1 for *_, n in rows)
        # the resumed process asked only for what had no committed row
        resumed = [json.loads(line)["prompt"] for line in log.read_text().splitlines()[requests_before:]]
        assert not set(resumed) & done_before
        assert len(resumed) == 180 - len(done_before)
        assert con.execute("select status from runs").fetchone()[0] == "finished"
    finally:
        server.terminate()


def test_ctrl_c_keeps_finished_samples_and_says_how_to_resume(tmp_path):
    db_path = tmp_path / "h.db"
    proc = subprocess.Popen([*HARNESS, "eval", "-m", "mock", "-M", "latency=0.05", "-M", "text=x", "-t", "cipherbank",
                             "--data", "bundled", "--db", f"sqlite:///{db_path}", "--max-samples", "4"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    committed = 0
    while committed < 20 and time.time() < deadline:
        time.sleep(0.1)
        try:
            committed = sqlite3.connect(db_path).execute("select count(*) from samples").fetchone()[0]
        except sqlite3.OperationalError:
            pass
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    con = sqlite3.connect(db_path)
    run_id, status = con.execute("select id, status from runs").fetchone()
    assert status == "interrupted"
    kept = con.execute("select count(*) from samples").fetchone()[0]
    assert 20 <= kept < 180
    assert f"harness eval --resume {run_id}" in err


def test_sample_ids_and_epochs(tmp_path):
    db = ["--db", f"sqlite:///{tmp_path / 'h.db'}"]
    ids = ["Rot13-e41d18004b", "Vigenere-6c9cbf5d1a"]
    out = json.loads(harness("eval", "-m", "reference", "-t", "cipherbank", "--data", "bundled", "--epochs", "3",
                             *[a for i in ids for a in ("--sample-id", i)], *db, "--json").stdout)
    assert out["tasks"][0]["counts"] == {"scored": 6}
    assert out["tasks"][0]["metrics"]["overall"]["accuracy"]["n"] == 2  # epochs average within a sample


def test_a_third_party_package_registers_a_suite_by_entry_point(tmp_path):
    pkg = tmp_path / "site" / "thirdparty_suite"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        "from harness import Dataset, Sample, Score, Task, accuracy, generate, task\n"
        "@task('thirdparty/echo')\n"
        "def echo() -> Task:\n"
        "    async def exact(state, ctx):\n"
        "        return Score(value=float(state.completion == state.sample.target))\n"
        "    return Task(name='thirdparty/echo', version='0', dataset=Dataset(to_samples=lambda r, c: "
        "[Sample(id=r['id'], input=r['q'], target=r['a'])]), solver=generate(), scorers=[exact], "
        "metrics=[accuracy()], headline='accuracy')\n")
    dist = tmp_path / "site" / "thirdparty_suite-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-suite\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[harness.tasks]\necho = thirdparty_suite\n")
    data = tmp_path / "d.jsonl"
    data.write_text('{"id": "1", "q": "2+2", "a": "4"}\n{"id": "2", "q": "3+3", "a": "6"}\n')
    env = {"PYTHONPATH": str(tmp_path / "site")}
    listed = json.loads(harness("tasks", "--json", env=env).stdout)
    assert "thirdparty/echo" in [t["name"] for t in listed]
    out = harness("eval", "-m", "reference", "-t", "thirdparty/echo", "--data", str(data),
                  "--db", f"sqlite:///{tmp_path / 'h.db'}", "--json", env=env)
    assert json.loads(out.stdout)["tasks"][0]["metrics"]["overall"]["accuracy"]["value"] == 100.0
