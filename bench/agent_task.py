"""bench/agent_loop.py's workload as a harness task: a react agent with `bash` (and submit) in a sandbox of its own.

Records are {"id", "input", "target"} lines, given with --data PATH; the input's last line is the code word, which
the loopback server (tests/fakeopenai.py --agent-turns N) submits as `<result>WORD</result>` after N `bash` turns.
The score checks that the submitted answer is that word and that every turn's `echo` really ran in the sandbox.
"""
import re

from harness import Dataset, Sample, Score, Task, accuracy, task
from harness.agent import AgentLimits, bash, react


def _to_samples(record, config):
    yield Sample(id=record["id"], input=record["input"], target=record["target"])


async def submitted_word(state, ctx) -> Score:
    found = re.fullmatch(r"<result>(.*)</result>", (state.answer or "").strip(), re.S)
    answer = found.group(1) if found else (state.answer or "")
    tools = [e for e in state.events if e.kind == "tool" and e.name == "bash"]
    # the server asks for `echo turn-K`, K = tool results so far: each output proves its exec happened
    echoed = all(e.error is None and e.output == f"turn-{k}\n" for k, e in enumerate(tools))
    return Score(value=float(answer == state.sample.target and echoed), answer=answer,
                 metadata={"bash_calls": len(tools), "echoes_ok": echoed})


@task("bench_agent_loop")
def bench_agent_loop() -> Task:
    return Task(name="bench_agent_loop", version="1", dataset=Dataset(to_samples=_to_samples),
                solver=react(tools=[bash()], limits=AgentLimits(turns=50)), scorers=[submitted_word],
                metrics=[accuracy()], headline="accuracy", needs_sandbox=True)
