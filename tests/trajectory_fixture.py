"""FIXTURE: a hand-written two-agent trajectory, shaped as the runner stores one (Event.to_json() events, the trace's
ChatMessage dumps), for the store, `harness show` and the leaderboard to be tested on before and besides real agent
runs. What happens in it, in order (seq):

 0 span  agent:solver                     (agent solver)
 1 model solver: "Let me read the notes."  calls bash(cmd="cat notes.txt")          id c1
 2 tool  bash -> error missing_file        "cat: notes.txt: No such file or directory"
 3 model solver: hands off                 calls transfer_to_researcher(task=...)    id c2
 4 span  agent:researcher                 (agent researcher, inside the handoff, span 0)
 5 model researcher: hostile text          calls python(code=<two lines>)           id c3
 6 tool  python -> error timeout           hostile output (markup, <script>, an ANSI escape), partial
 7 tool  transfer_to_researcher -> "researcher stopped: time limit"
 8 limit turns                             (agent solver): the sample ends, scored 0
"""
from __future__ import annotations

from harness.store import SampleResult, Store

HOSTILE_TEXT = "[bold red]FAKE[/] <script>alert('x')</script> &amp;"
HOSTILE_OUTPUT = "partial \x1b]0;pwned\x07\x1b[2J [link=http://evil]click[/link] <script>document.title='pwned'</script>"
LONG_CODE = "for i in range(10**9):\n    pass"


def agent_events(t0: float = 1_764_590_000.0) -> list[dict]:
    def ev(seq, kind, **kw):
        base = {"seq": seq, "kind": kind, "name": None, "agent": None, "span": None, "input": None, "output": None,
                "error": None, "started_at": t0 + seq, "latency_s": 0.5, "input_tokens": None, "output_tokens": None,
                "metadata": {}}
        return {**base, **kw}

    return [
        ev(0, "span", name="agent:solver", agent="solver", latency_s=8.0),
        ev(1, "model", name="mock-model", agent="solver", span=0, input=2, input_tokens=120, output_tokens=15,
           output={"text": "Let me read the notes.",
                   "tool_calls": [{"id": "c1", "function": "bash", "arguments": {"cmd": "cat notes.txt"}}]}),
        ev(2, "tool", name="bash", agent="solver", span=0, input={"cmd": "cat notes.txt"},
           output="cat: notes.txt: No such file or directory", error="missing_file",
           metadata={"call_id": "c1", "message": "notes.txt does not exist in the sandbox"}),
        ev(3, "model", name="mock-model", agent="solver", span=0, input=4, input_tokens=160, output_tokens=20,
           output={"text": "", "tool_calls": [{"id": "c2", "function": "transfer_to_researcher",
                                              "arguments": {"task": "find the key"}}]}),
        ev(4, "span", name="agent:researcher", agent="researcher", span=0, latency_s=5.0),
        ev(5, "model", name="mock-model", agent="researcher", span=4, input=2, input_tokens=80, output_tokens=30,
           output={"text": HOSTILE_TEXT, "tool_calls": [{"id": "c3", "function": "python",
                                                         "arguments": {"code": LONG_CODE}}]}),
        ev(6, "tool", name="python", agent="researcher", span=4, input={"code": LONG_CODE}, output=HOSTILE_OUTPUT,
           error="timeout", latency_s=3.0, metadata={"call_id": "c3", "message": "no answer within 3 s"}),
        ev(7, "tool", name="transfer_to_researcher", agent="solver", span=0, input={"task": "find the key"},
           output="researcher stopped: time limit", metadata={"call_id": "c2"}),
        ev(8, "limit", name="turns", agent="solver", span=0, output="3 turns of 3"),
    ]


def agent_messages() -> list[dict]:
    return [
        {"role": "system", "content": "You are a careful solver."},
        {"role": "user", "content": "Find the key in notes.txt."},
        {"role": "assistant", "content": "Let me read the notes.", "agent": "solver",
         "tool_calls": [{"id": "c1", "function": "bash", "arguments": {"cmd": "cat notes.txt"}}]},
        {"role": "tool", "content": "Error (missing_file): notes.txt does not exist in the sandbox\nOutput before the "
                                    "error:\ncat: notes.txt: No such file or directory", "tool_call_id": "c1",
         "function": "bash", "error": {"kind": "missing_file", "message": "notes.txt does not exist in the sandbox"}},
        {"role": "assistant", "content": "", "agent": "solver",
         "tool_calls": [{"id": "c2", "function": "transfer_to_researcher", "arguments": {"task": "find the key"}}]},
        {"role": "tool", "content": "researcher stopped: time limit", "tool_call_id": "c2",
         "function": "transfer_to_researcher"},
    ]


def agent_result(run_task_id: int, sample_id: str = "agent-1", epoch: int = 0) -> SampleResult:
    events = agent_events()
    row = {"sample_id": sample_id, "epoch": epoch, "status": "scored", "score": 0.0, "scores": {"accuracy": 0.0},
           "answer": None, "target": "K3Y", "prompt": "Find the key in notes.txt.", "response": "",
           "error_category": "limit:turns", "error": None, "explanation": None, "metadata": {},
           "input_tokens": 360, "output_tokens": 65, "latency_s": 8.0}
    trace = {"messages": agent_messages(), "calls": [], "scores": [], "metadata": {}, "events": events}
    return SampleResult(run_task_id, row, [], trace, events)


def new_run(store: Store, run_id: str = "run-fixture", task: str = "cipherbank", variant: str = "default") -> int:
    """A run and its run-task row, as the runner makes them; returns the run task's id."""
    store.create_run(id=run_id, model="mock-model", model_info={}, generate_config={}, epochs=1, plan={},
                     limiters={}, environment={}, command="fixture")
    return store.run_task(run_id, task, variant, task_args={}, task_version="1.0", dataset={"kind": "fixture"},
                          samples_planned=1)
