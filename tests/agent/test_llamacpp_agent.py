"""An agent run against a real LLM server with a real model: llama.cpp's server (llama-cpp-python) serving
SmolLM2-135M-Instruct, which .ci/setup-llamacpp.sh starts (fixture `llamacpp_url`). The task is a hand-written
fixture defined in a file, as a user's own task would be; prompts are kept short (prompt processing is slow on
two cores)."""
from __future__ import annotations

import json
import textwrap

from typer.testing import CliRunner

from harness.cli._app import app
from harness.store import Store

TASK_FILE = '''
from harness import Dataset, Sample, Score, Task, accuracy, task
from harness.agent import AgentLimits, python, react


def samples(record, config):
    yield Sample(id=record["id"], input=record["question"], target=record["answer"])


class Contains:
    async def __call__(self, state, ctx):
        ok = state.sample.target in state.completion
        return Score(value=float(ok), values={"correct": float(ok)}, answer=state.completion[:200])


@task("tiny_agent")
def tiny_agent() -> Task:
    return Task(
        name="tiny_agent", version="1", dataset=Dataset(to_samples=samples),
        # one tool, forced on every turn, so a 135M model calls it; the turn limit ends the sample
        solver=react(tools=[python(timeout=20)], submit=False, limits=AgentLimits(turns=2),
                     tool_choice={"type": "function", "function": {"name": "python"}}),
        scorers=[Contains()], metrics=[accuracy()], headline="accuracy", needs_sandbox=True)
'''


def test_an_agent_eval_against_a_real_llm_server_stores_its_tool_calls(llamacpp_url, tmp_path):
    data = tmp_path / "tiny.jsonl"
    # hand-written fixture records, not benchmark data
    data.write_text("\n".join(json.dumps(r) for r in [{"id": "t1", "question": "Print 6*7 with Python.", "answer": "42"},
                                                         {"id": "t2", "question": "Print 2+3 with Python.", "answer": "5"}]))
    task_file = tmp_path / "tiny_task.py"
    task_file.write_text(textwrap.dedent(TASK_FILE))
    db = f"sqlite:///{tmp_path / 'llama.db'}"
    result = CliRunner().invoke(app, ["eval", "--model", "openai/smollm2", "--base-url", llamacpp_url, "--task",
                                      str(task_file), "--data", str(data), "-M", "max_tokens=48", "-M", "temperature=0",
                                      "--sandbox", "bwrap", "--db", db, "--quiet"], env={"OPENAI_API_KEY": ""})
    assert result.exit_code == 0, result.output
    store = Store(db)
    run = store.list_runs()[0]
    rows = store.samples(store.run_tasks(run["id"])[0]["id"])
    assert len(rows) == 2
    for row in rows:  # every sample ends scored, or errored with a reason
        assert row["status"] == "scored" or (row["status"] == "error" and row["error"]), row
    scored = [r for r in rows if r["status"] == "scored"]
    assert scored, rows
    with store.engine.connect() as conn:
        from sqlalchemy import text

        events = conn.execute(text("select sample_id, kind, name, error from events_v where run_id = :r order by "
                                   "sample_id, seq"), {"r": run["id"]}).all()
    for row in scored:  # two forced turns: two model calls, each followed by its python call
        mine = [(k, n) for sid, k, n, _ in events if sid == row["sample_id"] and k in ("model", "tool", "limit")]
        assert mine == [("model", "openai/smollm2"), ("tool", "python"), ("model", "openai/smollm2"), ("tool", "python"),
                        ("limit", "turns")], mine
        assert row["error_category"] in (None, "limit:turns")
