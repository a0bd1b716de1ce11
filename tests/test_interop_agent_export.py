"""An agent run's trajectory in the shared formats: Inspect's log (ChatMessageAssistant.tool_calls, ChatMessageTool
with its ToolCallError, a ToolEvent per tool call, the offered tools and the calls' tool calls on each ModelEvent)
read back with inspect_ai itself, and EEE's agentic instance record (tool calls, tool results, available tools)
checked by the every-eval-ever validator. The run is the hand-written FIXTURE of trajectory_fixture.py."""
from __future__ import annotations

import json
import os
import sys
import subprocess
from pathlib import Path

import pytest

from harness.store import Store
from trajectory_fixture import HOSTILE_OUTPUT, LONG_CODE, agent_result, new_run

try:
    from every_eval_ever.validator.validate import main as eee_validate
    from inspect_ai.log import read_eval_log
except ImportError:
    if os.environ.get("CI"):
        raise
    pytest.skip("needs inspect-ai and every-eval-ever (pip install -e '.[test]')", allow_module_level=True)

BASH = {"type": "function", "function": {"name": "bash", "description": "Run a shell command.",
                                         "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}},
                                                        "required": ["cmd"]}}}


def _db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    store = Store(url)
    rt = new_run(store)
    result = agent_result(rt)
    # the solver's first model call as ModelCall.to_json() writes it: the tools offered, the tool call made
    result.trace["calls"] = [{
        "kind": "model", "model": "mock-model", "messages": result.trace["messages"][:2], "config": {},
        "tools": [BASH], "tool_choice": "auto", "text": "Let me read the notes.",
        "tool_calls": [{"id": "c1", "function": "bash", "arguments": {"cmd": "cat notes.txt"}}],
        "stop_reason": "tool_calls", "input_tokens": 120, "output_tokens": 15, "latency_s": 0.5, "error": None,
        "started_at": result.events[1]["started_at"], "attempts": [], "raw": None}]
    store.write([result])
    store.set_metrics(rt, {"overall": {"accuracy": {"value": 0.0, "ci_low": 0.0, "ci_high": 79.35, "n": 1}},
                           "headline": "accuracy", "counts": {"scored": 1, "error": 0, "planned": 1}, "complete": True})
    store.set_run_status("run-fixture", "finished")
    store.close()
    return url


def _export(url: str, fmt: str, out: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "harness.cli", "export", "run-fixture", "--format", fmt, "--out",
                           str(out), "--db", url], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_inspect_log_carries_tool_calls_tool_results_and_tool_events(tmp_path):
    _export(_db(tmp_path), "inspect", tmp_path / "logs")
    (path,) = (tmp_path / "logs").glob("*.eval")
    (sample,) = read_eval_log(str(path)).samples
    roles = [m.role for m in sample.messages]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "tool"]
    first, handoff = sample.messages[2], sample.messages[4]
    assert [(c.id, c.function, c.arguments) for c in first.tool_calls] == [("c1", "bash", {"cmd": "cat notes.txt"})]
    assert first.metadata == {"agent": "solver"}
    assert handoff.tool_calls[0].function == "transfer_to_researcher"
    bash = sample.messages[3]
    assert (bash.tool_call_id, bash.function) == ("c1", "bash")
    assert (bash.error.type, bash.error.message) == ("file_not_found", "notes.txt does not exist in the sandbox")
    assert sample.messages[5].error is None
    # one ToolEvent per tool call (the researcher's inside the handoff too), in order with the model call
    tools = [e for e in sample.events if e.event == "tool"]
    assert [(e.id, e.function, e.agent) for e in tools] == [("c1", "bash", "solver"), ("c3", "python", "researcher"),
                                                           ("c2", "transfer_to_researcher", "solver")]
    assert tools[1].arguments == {"code": LONG_CODE} and tools[1].result == HOSTILE_OUTPUT
    assert (tools[1].error.type, tools[1].error.message) == ("timeout", "no answer within 3 s")
    assert [e.event for e in sample.events if e.event in ("model", "tool")][:2] == ["model", "tool"]
    (model,) = [e for e in sample.events if e.event == "model"]
    assert [t.name for t in model.tools] == ["bash"] and model.tools[0].parameters.required == ["cmd"]
    assert model.tool_choice == "auto" and model.output.choices[0].stop_reason == "tool_calls"
    assert model.output.choices[0].message.tool_calls[0].arguments == {"cmd": "cat notes.txt"}


def test_eee_agentic_record_carries_tool_calls_and_passes_the_validator(tmp_path, capsys):
    _export(_db(tmp_path), "eee", tmp_path / "eee")
    (aggregate,) = sorted((tmp_path / "eee").glob("data/*/*/*/*.json"))
    samples = aggregate.with_name(aggregate.stem + "_samples.jsonl")
    capsys.readouterr()
    code = eee_validate([str(aggregate.resolve()), str(samples.resolve()), "--format", "json"])
    reports = json.loads(capsys.readouterr().out)
    assert code == 0 and not any(r["warnings"] for r in reports), json.dumps(reports)[:3000]
    (record,) = [json.loads(line) for line in samples.read_text().splitlines()]
    assert record["interaction_type"] == "agentic" and record["evaluation"]["tool_calls_count"] == 2
    calls = [c for m in record["messages"] for c in m.get("tool_calls") or []]
    assert calls == [{"id": "c1", "name": "bash", "arguments": {"cmd": '"cat notes.txt"'}},
                     {"id": "c2", "name": "transfer_to_researcher", "arguments": {"task": '"find the key"'}}]
    assert [m["tool_call_id"] for m in record["messages"] if m["role"] == "tool"] == [["c1"], ["c2"]]
    meta = record["metadata"]
    assert json.loads(meta["agents"]) == {"2": "solver", "4": "solver"} and meta["limit"] == "turns"
    assert json.loads(meta["tool_errors"]) == {"3": {"kind": "missing_file",
                                                     "message": "notes.txt does not exist in the sandbox"}}
    (result,) = json.loads(aggregate.read_text())["evaluation_results"]
    (tool,) = result["generation_config"]["generation_args"]["agentic_eval_config"]["available_tools"]
    assert tool["name"] == "bash" and json.loads(tool["parameters"]["json_schema"])["required"] == ["cmd"]
