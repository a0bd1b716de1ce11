"""Through the public CLI: what stops a run (a refused key, data that cannot be read, duplicate ids, an empty
dataset, a data file in the wrong format, a run another process holds), and what must not (odd answers, a
context-length rejection). Real processes against the loopback fake server."""
from __future__ import annotations

import gzip
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


def harness(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*HARNESS, *args], capture_output=True, text=True, timeout=timeout, env=os.environ)


def the_error(result: subprocess.CompletedProcess) -> str:
    """Exit 2 and one `error:` line, no traceback (progress lines, if any, are not errors)."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    return errors[0]


@pytest.mark.parametrize("fake_openai", [("--faults", "401:6")], indirect=True)
def test_a_key_refused_mid_run_stops_the_run_at_once_and_keeps_what_finished(fake_openai, tmp_path):
    db = tmp_path / "h.db"
    result = harness("eval", "-m", "openai/fake", "--base-url", fake_openai, "-t", "cipherbank", "--data", "bundled",
                     "--db", f"sqlite:///{db}", "-M", "max_connections=2", "--quiet")
    assert "refused the API key (HTTP 401" in the_error(result)
    import urllib.request

    stats = json.load(urllib.request.urlopen(fake_openai.removesuffix("/v1") + "/stats"))
    assert stats["statuses"]["401"] <= 2  # not one failing call per sample (180)
    con = sqlite3.connect(db)
    # the 6 answered samples, less at most the one whose answer was still being scored when the run stopped
    # (two connections: the 7th request goes out once the 5th sample is done)
    assert con.execute("select count(*) from samples where status = 'scored'").fetchone()[0] in (5, 6)
    assert con.execute("select count(*) from samples where status = 'error'").fetchone()[0] == 0
    assert con.execute("select status from runs").fetchone()[0] == "interrupted"


@pytest.mark.parametrize("fake_openai", [("--faults", "ctx:3", "--ctx-style", "vllm")], indirect=True)
def test_a_context_length_rejection_is_scored_as_the_models_failure(fake_openai, tmp_path):
    result = harness("eval", "-m", "openai/fake", "--base-url", fake_openai, "-t", "cipherbank", "--data", "bundled",
                     "--limit", "9", "--db", f"sqlite:///{tmp_path / 'h.db'}", "--json", "-M", "max_connections=1")
    assert result.returncode == 0, result.stderr
    task = json.loads(result.stdout)["tasks"][0]
    assert task["metrics"]["counts"] == {"scored": 9, "error": 0, "planned": 9} and task["metrics"]["complete"]
    con = sqlite3.connect(tmp_path / "h.db")
    assert con.execute("select count(*), max(score) from samples where error_category = 'context_length'"
                       ).fetchone() == (3, 0.0)


@pytest.mark.parametrize("fake_openai", [("--faults", "shape:surrogate"), ("--faults", "shape:nul"),
                                  ("--faults", "shape:content_list"), ("--faults", "shape:content_num")],
                         indirect=True)
def test_odd_answers_are_stored_and_the_run_finishes(fake_openai, db_url):
    result = harness("eval", "-m", "openai/fake", "--base-url", fake_openai, "-t", "cipherbank", "--data", "bundled",
                     "--limit", "18", "--db", db_url, "--json")
    assert result.returncode == 0, result.stderr
    task = json.loads(result.stdout)["tasks"][0]
    assert task["metrics"]["counts"]["scored"] == 18
    run_id = json.loads(result.stdout)["run"]["id"]
    again = harness("eval", "--resume", run_id, "--db", db_url, "--json")  # resume reads the rows back
    assert again.returncode == 0, again.stderr


def _lines(path: Path, n: int) -> list[str]:
    return BUNDLED.read_text().splitlines()[:n]


@pytest.mark.parametrize("name, make, message", [
    ("corrupt.jsonl.gz", lambda p: p.write_bytes(gzip.compress("\n".join(_lines(p, 3)).encode())[:-40] + b"\0" * 40),
     "not a readable gzip file"),
    ("latin1.jsonl", lambda p: p.write_bytes(_lines(p, 1)[0].encode() + b"\n" + json.dumps({"x": "caf"}).encode()[:-2]
                                             + b"\xe9\"}\n"), "not valid UTF-8 text"),
    ("empty.jsonl", lambda p: p.write_text(""), "holds no records; nothing to evaluate"),
    ("wrong.jsonl", lambda p: p.write_text("".join(json.dumps({"question": f"q{i}", "answer": "a"}) + "\n"
                                                   for i in range(30))),
     "every record read (10 of 10) is unusable the same way: the records lack the field"),
    ("dups.jsonl", lambda p: p.write_text("\n".join([*_lines(p, 2), _lines(p, 2)[0]]) + "\n"),
     "more than one sample with id"),
])
def test_data_that_cannot_be_evaluated_is_one_line_naming_the_problem(tmp_path, name, make, message):
    path = tmp_path / name
    make(path)
    result = harness("eval", "-m", "reference", "-t", "cipherbank", "--data", str(path),
                     "--db", f"sqlite:///{tmp_path / 'h.db'}", "--quiet")
    line = the_error(result)
    assert message in line
    # found before the run exists (the counting pass reads every record first): no run is left behind
    assert sqlite3.connect(tmp_path / "h.db").execute("select count(*) from runs").fetchone()[0] == 0
    if name != "wrong.jsonl" and name != "empty.jsonl" and name != "dups.jsonl":
        assert name in line
    if name == "dups.jsonl":  # every duplicated id is named, with its count
        assert line.count(" x2") == 9


def test_two_resumes_at_once_one_refuses_kill_9_shows_interrupted_then_resume_works(tmp_path):
    server, url = start_server("--latency", "0.5")  # the resume lasts ~9 s: room for the second to meet it
    db_path = tmp_path / "h.db"
    db = f"sqlite:///{db_path}"
    base = ["-m", "openai/fake", "--base-url", url, "-t", "cipherbank", "--data", "bundled", "--limit", "40",
            "-M", "max_connections=2", "--db", db, "--quiet"]

    def committed() -> int:
        try:
            return sqlite3.connect(db_path).execute("select count(*) from samples").fetchone()[0]
        except sqlite3.OperationalError:
            return 0

    def wait_for(n: int) -> None:
        deadline = time.time() + 60
        while committed() < n and time.time() < deadline:
            time.sleep(0.1)

    try:
        first = subprocess.Popen([*HARNESS, "eval", *base], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(4)
        first.send_signal(signal.SIGKILL)
        first.wait()
        run_id = sqlite3.connect(db_path).execute("select id from runs").fetchone()[0]
        runs = json.loads(harness("runs", "--db", db, "--json").stdout)
        assert runs[0]["status"] == "interrupted"  # its process is gone; the stored status still says running

        resuming = subprocess.Popen([*HARNESS, "eval", "--resume", run_id, "--db", db, "--quiet"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        before = committed()
        wait_for(before + 2)  # it holds the lease and works
        second = harness("eval", "--resume", run_id, "--db", db, "--quiet")
        line = the_error(second)
        assert f"run {run_id} is being worked on by " in line and f":{resuming.pid}" in line
        assert json.loads(harness("runs", "--db", db, "--json").stdout)[0]["status"] == "running"
        _, err = resuming.communicate(timeout=120)
        assert resuming.returncode == 0, err
        con = sqlite3.connect(db_path)
        assert con.execute("select count(*), count(distinct sample_id) from samples").fetchone() == (40, 40)
        assert con.execute("select status, lease_owner from runs").fetchone() == ("finished", None)
    finally:
        server.terminate()
