"""Agent runs end to end through the CLI against the loopback OpenAI-compatible server (tests/fakeopenai.py)
answering with scripted tool calls (a hand-written script, not benchmark data)."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from harness.cli._app import app
from harness.store import Store

SCRIPT = [
    # turn 0: arguments that are not JSON, a tool that does not exist, and two parallel python calls
    {"content": "", "tool_calls": [
        {"id": "bad", "function": {"name": "python", "arguments": "{\"code\": \"print(1)\""}},
        {"id": "nope", "function": {"name": "browse", "arguments": {"url": "http://example.com"}}},
        {"id": "p1", "function": {"name": "python", "arguments": {"code": "print(6 * 7)"}}},
        {"id": "p2", "function": {"name": "python", "arguments": {"code": "import sys; print(sys.version_info[0])"}}},
    ]},
    # turn 1: a call without an id, then the answer, then a call after the submit
    {"content": "trying", "tool_calls": [
        {"function": {"name": "python", "arguments": {"code": "print('no id')"}}},
        {"id": "sub", "function": {"name": "submit", "arguments": {"answer": "<result>wrong on purpose</result>"}}},
        {"id": "late", "function": {"name": "python", "arguments": {"code": "open('/work/late', 'w')"}}},
    ]},
]


@pytest.fixture
def scripted_server(tmp_path):
    from fakeopenai import start_server

    script = tmp_path / "script.json"
    script.write_text(json.dumps(SCRIPT))
    log = tmp_path / "requests.jsonl"
    proc, url = start_server("--script", str(script), "--log", str(log))
    yield url, log
    proc.terminate()
    proc.wait(10)


def test_a_scripted_agent_run_through_the_cli_stores_every_step(scripted_server, kind, tmp_path):
    url, log = scripted_server
    db = f"sqlite:///{tmp_path / 'agent.db'}"
    result = CliRunner().invoke(app, ["eval", "--model", "openai/fake-model", "--base-url", url, "--task",
                                      "cipherbank@agent", "--data", "bundled", "--limit", "1", "--sandbox", kind,
                                      "--db", db, "--quiet"], env={"OPENAI_API_KEY": ""})
    assert result.exit_code == 0, result.output
    store = Store(db)
    run = store.list_runs()[0]
    rows = store.samples(store.run_tasks(run["id"])[0]["id"])
    assert [(r["status"], r["score"], r["answer"]) for r in rows] == [("scored", 0.0, "wrong on purpose")]
    trace = store.trace(rows[0]["trace_hash"])
    tools = [e for e in trace["events"] if e["kind"] == "tool"]
    assert [(e["name"], e["error"]) for e in tools] == [
        ("python", "parsing"), ("browse", "unknown_tool"), ("python", None), ("python", None),
        ("python", None), ("submit", None), ("python", "after_submit")]
    # the two parallel calls ran together: their events are in the order they finished
    assert sorted(e["output"] for e in tools[2:4]) == ["3\n", "42\n"] and tools[4]["output"] == "no id\n"
    # what was sent: the tools' schemas, and the assistant's tool-call turn with content "" (not null), its calls'
    # arguments as the model sent them, and each result answering its call's id
    bodies = [json.loads(line)["body"] for line in log.read_text().splitlines()]
    assert len(bodies) == 2
    assert sorted(t["function"]["name"] for t in bodies[0]["tools"]) == ["python", "submit"]
    sent = bodies[1]["messages"]
    assistant = next(m for m in sent if m["role"] == "assistant")
    assert assistant["content"] == "" and [c["id"] for c in assistant["tool_calls"]] == ["bad", "nope", "p1", "p2"]
    assert assistant["tool_calls"][0]["function"]["arguments"] == "{\"code\": \"print(1)\""
    results = [m for m in sent if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in results] == ["bad", "nope", "p1", "p2"]
    assert results[0]["content"].startswith("Error (parsing): arguments are not valid JSON")


def test_the_reference_model_scores_100_percent_on_every_agentic_variant_through_the_loop(kind, tmp_path):
    db = f"sqlite:///{tmp_path / 'ref.db'}"
    tasks = ["cipherbank@agent", "evalplus/humaneval_plus@agent", "evalplus/mbpp_plus@agent"]
    args = ["eval", "--model", "reference", "--data", "bundled", "--limit", "4", "--sandbox", kind, "--db", db, "--quiet"]
    for t in tasks:
        args += ["--task", t]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    store = Store(db)
    run = store.list_runs()[0]
    for rt in store.run_tasks(run["id"]):
        rows = store.samples(rt["id"])
        assert len(rows) == 4 and all(r["status"] == "scored" and r["score"] == 1.0 for r in rows), (rt["task"], rows)
        trace = store.trace(rows[0]["trace_hash"])
        # the answer went through the loop: one model turn that called submit, whose argument is what was scored
        assert [(e["kind"], e["name"]) for e in trace["events"]][1:] == [("model", "reference"), ("tool", "submit")]
        assert trace["answer"] == rows[0]["response"]


def test_rescoring_an_agent_run_keeps_its_answer_and_its_trajectory(tmp_path):
    db = f"sqlite:///{tmp_path / 'rescore.db'}"
    first = CliRunner().invoke(app, ["eval", "--model", "reference", "--task", "cipherbank@agent", "--data", "bundled",
                                     "--limit", "2", "--sandbox", "bwrap", "--db", db, "--quiet"])
    assert first.exit_code == 0, first.output
    store = Store(db)
    source = store.list_runs()[0]["id"]
    again = CliRunner().invoke(app, ["rescore", source, "--db", db, "--json"])
    assert again.exit_code == 0, again.output
    new = json.loads(again.stdout[again.stdout.index("{"):])["run"]["id"]
    rows = store.samples(store.run_tasks(new)[0]["id"])
    assert [r["score"] for r in rows] == [1.0, 1.0]  # the submitted answers were scored again, not the last text
    steps = lambda run: [(e["sample_id"], e["seq"], e["kind"], e["name"]) for e in store.events(run)]  # noqa: E731
    assert steps(new) == steps(source) and len(steps(new)) == 6
