"""`harness export RUN --format who_and_when` (harness/cli/_export.py): a run's scored samples as Who&When
failure-attribution cases, which the `who_and_when` suite loads with `--data FILE.jsonl`.

Most stored runs here are FIXTURES written through the Store's public write path: the hand-written two-agent
trajectory of tests/trajectory_fixture.py (a solver hands off to a researcher whose turns exist only as events), plus
hand-written samples of this file: a single-generate sample without events that the harness scored correct, and an
errored one. The last test exports a real cipherbank@agent run (the loopback server's scripted tool calls, python
run in a bwrap sandbox)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import harness
from fakeopenai import start_server
from trajectory_fixture import HOSTILE_OUTPUT, HOSTILE_TEXT, LONG_CODE, agent_result, new_run

from harness.store import SampleResult, Store

HARNESS = [sys.executable, "-m", "harness.cli"]


def harness_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*HARNESS, *args], capture_output=True, text=True, timeout=180, env=dict(os.environ))


def stored_run(url: str) -> None:
    store = Store(url)
    rt = new_run(store, "run-fixture")
    plain = {"messages": [{"role": "system", "content": "Decrypt."}, {"role": "user", "content": "Uryyb"},
                          {"role": "assistant", "content": "<result>Hello</result>"}],
             "calls": [], "scores": [], "metadata": {}}
    store.write([
        agent_result(rt),
        SampleResult(rt, {"sample_id": "plain-1", "epoch": 0, "status": "scored", "score": 1.0, "target": "Hello",
                          "answer": "Hello"}, [], plain),
        SampleResult(rt, {"sample_id": "broken-1", "epoch": 0, "status": "error", "error": "sandbox died"}, [],
                     {"messages": [{"role": "user", "content": "never finished"}], "calls": []}),
    ])
    store.close()


def export(url: str, out) -> list[dict]:
    done = harness_cli("export", "run-fix", "--format", "who_and_when", "--out", str(out), "--db", url)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == f"{out}: 2 cases"
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def test_each_scored_sample_becomes_a_case_with_every_agents_steps(db_url, tmp_path):
    stored_run(db_url)
    agent, plain = export(db_url, tmp_path / "cases.jsonl")  # the errored sample is left out
    assert agent["question"] == "Find the key in notes.txt." and agent["ground_truth"] == "K3Y"
    assert agent["is_correct"] is False and plain["is_correct"] is True
    assert agent["question_ID"] == "cipherbank/agent-1"
    assert agent["system_prompt"] == {"solver": "You are a careful solver."}
    assert (agent["mistake_agent"], agent["mistake_step"], agent["mistake_reason"]) == (None, None, None)
    assert agent["harness"] == {"run": "run-fixture", "model": "mock-model", "task": "cipherbank",
                                "variant": "default", "sample_id": "agent-1", "epoch": 0, "score": 0.0,
                                "answer": None, "error_category": "limit:turns"}
    steps = [(s["name"], s["role"], s["content"], s.get("error")) for s in agent["history"]]
    assert steps == [
        ("user", "user", "Find the key in notes.txt.", None),
        ("solver", "assistant", "Let me read the notes.", None),
        ("solver", "assistant", 'bash({"cmd": "cat notes.txt"})', None),
        ("bash", "tool", "[missing_file] notes.txt does not exist in the sandbox\n"
                         "cat: notes.txt: No such file or directory", "missing_file"),
        # a turn of tool calls alone has no text step
        ("solver", "assistant", 'transfer_to_researcher({"task": "find the key"})', None),
        # the handed-off agent's turns, which only the events hold
        ("researcher", "assistant", HOSTILE_TEXT, None),
        ("researcher", "assistant", "python(" + json.dumps({"code": LONG_CODE}) + ")", None),
        ("python", "tool", "[timeout] no answer within 3 s\n" + HOSTILE_OUTPUT, "timeout"),
        ("transfer_to_researcher", "tool", "researcher stopped: time limit", None),
    ]
    assert [s["tool_call_id"] for s in agent["history"] if s["role"] == "tool"] == ["c1", "c3", "c2"]
    # a run without events: its conversation, the system message kept apart as upstream keeps system prompts
    assert [(s["name"], s["content"]) for s in plain["history"]] == [("user", "Uryyb"),
                                                                     ("assistant", "<result>Hello</result>")]
    assert plain["system_prompt"] == {"assistant": "Decrypt."}


def test_the_who_and_when_suite_loads_the_export_and_says_unlabelled_cases_are_unlabelled(tmp_path):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    stored_run(url)
    cases = export(url, tmp_path / "cases.jsonl")
    scoring = f"sqlite:///{tmp_path / 'attribution.db'}"

    unlabelled = harness_cli("eval", "--model", "reference", "--task", "who_and_when", "--data",
                         str(tmp_path / "cases.jsonl"), "--db", scoring, "--quiet")
    assert unlabelled.returncode == 2
    assert unlabelled.stderr.strip().splitlines() == [
        "error: who_and_when: every record read (2 of 2) is unusable the same way: no fault label: the case was "
        "exported from harness run run-fixture without one; fill in its mistake_agent and mistake_step, a 0-based "
        "index into history, to score it"]

    # a person labels the agent case: the researcher's hostile turn (step 5) is where it went wrong
    cases[0].update(mistake_agent="researcher", mistake_step="5", mistake_reason="ran an endless loop")
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text("".join(json.dumps(c) + "\n" for c in cases), encoding="utf-8")
    done = harness_cli("eval", "--model", "reference", "--task", "who_and_when", "--data", str(labelled), "--db", scoring,
                   "--quiet", "--json")
    assert done.returncode == 0, done.stderr
    store = Store(scoring, create=False)
    (run,) = store.list_runs()
    rows = {r["sample_id"]: r for r in store.samples(store.run_tasks(run["id"])[0]["id"])}
    assert set(rows) == {"harness/run-fixture/cipherbank/agent-1/0", "harness/run-fixture/cipherbank/plain-1/0"}
    scored = rows["harness/run-fixture/cipherbank/agent-1/0"]
    assert scored["status"] == "scored" and scored["score"] == 1.0  # the reference names the labelled agent and step
    assert scored["metadata"]["subset"] == "harness" and scored["metadata"]["benchmark"] == "cipherbank"
    assert json.loads(scored["target"])["faults"] == [{"agent": "researcher", "step": 5, "mode": None}]
    # the model is shown every step, the researcher's included, each named by its speaker
    assert "researcher: " + HOSTILE_TEXT in scored["prompt"]
    assert "transfer_to_researcher: researcher stopped" in scored["prompt"]
    unscored = rows["harness/run-fixture/cipherbank/plain-1/0"]
    assert unscored["status"] == "error" and unscored["error"].startswith("no fault label: the case was exported")
    metrics = store.run_tasks(run["id"])[0]["metrics"]
    assert metrics["counts"]["scored"] == 1 and metrics["counts"]["error"] == 1 and metrics["complete"] is False


def test_bad_export_requests_are_one_line_errors(tmp_path):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    stored_run(url)
    wrong_name = harness_cli("export", "run-fixture", "--format", "who_and_when", "--out", str(tmp_path / "c.json"),
                         "--db", url)
    assert wrong_name.returncode == 2 and wrong_name.stderr.count("\n") == 1
    assert "must end in .jsonl" in wrong_name.stderr and not (tmp_path / "c.json").exists()
    unknown = harness_cli("export", "nope", "--format", "who_and_when", "--db", url)
    assert unknown.returncode == 2 and "no run 'nope'" in unknown.stderr
    bad_format = harness_cli("export", "run-fixture", "--format", "who-and-when", "--db", url)
    assert bad_format.returncode == 2 and "'who_and_when'" in bad_format.stderr  # the choices are listed


def test_a_real_agent_run_exports_and_loads_as_a_case(tmp_path):
    script = tmp_path / "script.json"
    script.write_text(json.dumps([
        {"content": "Let me try.",
         "tool_calls": [{"id": "c1", "function": {"name": "python", "arguments": {"code": "print(6 * 7)"}}}]},
        {"content": "", "tool_calls": [{"id": "c2", "function": {"name": "python", "arguments": "{not json"}}]},
        {"content": "Done.", "tool_calls": [{"id": "c3", "function": {"name": "submit",
                                                                      "arguments": {"answer": "<result>42</result>"}}}]}]))
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    proc, base_url = start_server("--script", str(script))
    try:
        run = harness.eval("cipherbank@agent", "openai/fake", base_url=base_url, db=url, data="bundled", limit=1,
                           sandbox="bwrap")
    finally:
        proc.terminate()
        proc.wait(10)
    out = tmp_path / "cases.jsonl"
    done = harness_cli("export", run.run_id, "--format", "who_and_when", "--out", str(out), "--db", url)
    assert done.returncode == 0, done.stderr
    (case,) = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    (row,) = run.samples()
    assert case["question"] == row["prompt"] and case["ground_truth"] == row["target"] and case["is_correct"] is False
    steps = [(s["name"], s["role"], s["content"].split(" (")[0], s.get("error")) for s in case["history"][1:]]
    assert steps == [("agent", "assistant", "Let me try.", None),
                     ("agent", "assistant", 'python({"code": "print(6 * 7)"})', None),
                     ("python", "tool", "42\n", None),  # the sandbox's real output
                     ("agent", "assistant", "python({not json)", None),
                     ("python", "tool", "[parsing] arguments are not valid JSON", "parsing"),
                     ("agent", "assistant", "Done.", None),
                     ("agent", "assistant", 'submit({"answer": "<result>42</result>"})', None),
                     ("submit", "tool", "<result>42</result>", None)]
    assert case["history"][0] == {"content": row["prompt"], "name": "user", "role": "user"}

    case.update(mistake_agent="agent", mistake_step=4)  # the malformed call
    out.write_text(json.dumps(case) + "\n", encoding="utf-8")
    scored = harness.eval("who_and_when", "reference", db=url, data=str(out)).samples()
    assert [(r["sample_id"], r["status"], r["score"]) for r in scored] == [
        (f"harness/{run.run_id}/cipherbank@agent/{row['sample_id']}/0", "scored", 1.0)]
    assert "python: 42" in scored[0]["prompt"]
