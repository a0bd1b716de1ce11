"""The agent loop on scripted models (hand-written conversations, not benchmark data): the built-in tools in a
real sandbox, every tool failure told to the model, parallel calls, submit, limits and handoffs."""
from __future__ import annotations

import asyncio
import json

import pytest

from harness import ChatMessageAssistant, ModelCall, ModelOutput, Sample, SolveContext, TaskState, ToolCall
from harness.agent import Agent, AgentLimits, bash, handoff, python, react, submit, text_editor, tool
from harness.model import MockModel
from harness.sandboxes import SandboxLimits, get_backend

LIMITS = SandboxLimits(timeout_s=10, memory_mb=512, pids=64, output_bytes=200_000)


def call(function: str, arguments, id: str | None = None) -> ToolCall:
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    from harness._messages import parse_arguments

    parsed, error = parse_arguments(raw)
    return ToolCall(id=id or f"c-{function}-{abs(hash(raw)) % 10_000}", function=function, arguments=parsed, raw=raw,
                    parse_error=error)


def scripted(*turns: list[ToolCall] | str) -> MockModel:
    """A model that answers turn k (k = assistant turns so far) with the k-th script entry: tool calls, or a text."""

    def respond(sample, messages, tools):
        k = sum(1 for m in messages if m.role == "assistant")
        turn = turns[min(k, len(turns) - 1)]
        return ChatMessageAssistant(content=turn) if isinstance(turn, str) else ChatMessageAssistant(content="", tool_calls=turn)

    return MockModel(respond)


async def solve(solver, model, *, backend=None, sample: Sample | None = None) -> TaskState:
    state = TaskState(sample=sample or Sample(id="s1", input="do the work"), epoch=0)
    ctx = SolveContext(model=model.bind(state, None), config={}, task=None, sandbox=backend)
    await solver(state, ctx)
    return state


def tool_messages(state: TaskState):
    return [m for m in state.messages if m.role == "tool"]


@pytest.fixture
async def backend(kind):
    b = get_backend(kind, limits=LIMITS, pool_size=1)
    yield b
    await b.aclose()


async def test_the_builtin_tools_share_one_sandbox_for_the_whole_trajectory(backend):
    model = scripted(
        [call("bash", {"cmd": "echo hello > notes.txt; cat notes.txt; echo err >&2"})],
        [call("python", {"code": "print(open('notes.txt').read().upper())"})],
        [call("text_editor", {"command": "create", "path": "sub/a.py", "file_text": "x = 1\ny = 2\n"})],
        [call("text_editor", {"command": "str_replace", "path": "sub/a.py", "old_str": "y = 2", "new_str": "y = 3"})],
        [call("text_editor", {"command": "insert", "path": "sub/a.py", "insert_line": 0, "new_str": "# top"})],
        [call("text_editor", {"command": "view", "path": "sub/a.py"})],
        [call("python", {"code": "import sub.a as a; print(a.x + a.y)"})],
        [call("bash", {"cmd": "exit 3"})],
        [call("submit", {"answer": "done"})],
    )
    state = await solve(react(tools=[bash(), python(), text_editor()]), model, backend=backend,
                        sample=Sample(id="s1", input="work", files={"given.txt": "from the sample"}))
    results = [m.text for m in tool_messages(state)]
    assert results[0] == "hello\nerr\n"
    assert results[1] == "HELLO\n\n"
    assert results[2].startswith("created sub/a.py")
    assert results[5] == "     1\t# top\n     2\tx = 1\n     3\ty = 3"
    assert results[6] == "4\n"
    assert results[7] == "\n[exit code 3]"
    assert state.answer == "done" and state.completion == "done" and state.limit is None
    kinds = [e.kind for e in state.events]
    assert kinds[0] == "span" and kinds.count("model") == 9 and kinds.count("tool") == 9
    assert all(e.error is None for e in state.events)


async def test_sample_files_go_into_the_sandbox_unless_the_solver_says_not(backend):
    sample = Sample(id="s1", input="work", files={"given.txt": "from the sample"})
    model = scripted([call("bash", {"cmd": "cat given.txt || echo absent"})], [call("submit", {"answer": "x"})])
    with_files = await solve(react(tools=[bash()]), model, backend=backend, sample=sample)
    without = await solve(react(tools=[bash()], files=False), model, backend=backend, sample=sample)
    assert tool_messages(with_files)[0].text == "from the sample"
    assert "absent" in tool_messages(without)[0].text


async def test_each_failure_goes_back_to_the_model_as_a_tool_error_and_the_loop_goes_on(backend):
    @tool
    def raiser():
        async def execute(x: int) -> str:
            """Raise.

            Args:
                x: anything
            """
            raise RuntimeError("tool bug")

        return execute

    @tool
    def not_text():
        async def execute() -> str:
            """Return a number."""
            return 42  # type: ignore[return-value]

        return execute

    @tool
    def hangs():
        async def execute() -> str:
            """Never return."""
            await asyncio.Event().wait()
            return ""

        return execute

    model = scripted(
        [call("bash", '{"cmd": "echo hi"')],  # not JSON
        [call("bash", '["echo hi"]')],  # JSON, not an object
        [call("bash", {"command": "echo hi"})],  # does not match the schema
        [call("browser", {"url": "x"})],  # no such tool
        [call("raiser", {"x": 1})],
        [call("not_text", {})],
        [call("hangs", {})],
        [call("bash", {"cmd": "echo partial; sleep 30"})],
        [call("python", {"code": "print('x' * 100000)"})],
        [call("text_editor", {"command": "view", "path": "missing.txt"})],
        [call("text_editor", {"command": "create", "path": "/etc/evil", "file_text": "x"})],
        [call("submit", {"answer": "still here"})],
    )
    solver = react(tools=[bash(timeout=1), python(), text_editor(), raiser(), not_text(), hangs()], tool_timeout_s=2,
                   tool_output_bytes=1000)
    state = await solve(solver, model, backend=backend)
    errors = [(m.error.kind if m.error else None) for m in tool_messages(state)]
    assert errors == ["parsing", "parsing", "parsing", "unknown_tool", "error", "error", "timeout", "timeout", None,
                      "file_not_found", "permission", None]
    texts = [m.text for m in tool_messages(state)]
    assert "not valid JSON" in texts[0] and "must be a JSON object" in texts[1] and "cmd" in texts[2]
    assert "the tools are: bash, hangs" in texts[3] and "RuntimeError: tool bug" in texts[4]
    assert "returned a int" in texts[5]
    assert "partial" in texts[7]  # a timed-out command keeps what it printed
    assert texts[8].startswith("x" * 1000) and "[output truncated: 99001 of 100001 bytes not shown]" in texts[8]
    truncated = [e for e in state.events if e.kind == "tool" and e.metadata.get("truncated_bytes")]
    assert [e.metadata["truncated_bytes"] for e in truncated] == [99001]
    assert state.answer == "still here"


async def test_parallel_calls_of_one_turn_run_together_and_serial_ones_alone():
    in_flight = {"now": 0, "max": 0}

    def probe(name: str, parallel: bool):
        @tool(name=name, parallel=parallel)
        def make():
            async def execute(i: int) -> str:
                """Take a moment.

                Args:
                    i: which call
                """
                in_flight["now"] += 1
                in_flight["max"] = max(in_flight["max"], in_flight["now"])
                await asyncio.sleep(0.05)
                in_flight["now"] -= 1
                return str(i)

            return execute

        return make()

    together = scripted([call("wide", {"i": i}, id=f"w{i}") for i in range(4)], [call("submit", {"answer": "ok"})])
    state = await solve(react(tools=[probe("wide", True)]), together)
    assert in_flight["max"] == 4
    assert [m.tool_call_id for m in tool_messages(state)][:4] == ["w0", "w1", "w2", "w3"]  # results keep call order
    in_flight["max"] = 0
    alone = scripted([call("narrow", {"i": i}, id=f"n{i}") for i in range(3)], [call("submit", {"answer": "ok"})])
    await solve(react(tools=[probe("narrow", False)]), alone)
    assert in_flight["max"] == 1


async def test_calls_after_submit_in_the_same_turn_are_not_run():
    ran: list[str] = []

    @tool
    def mark():
        async def execute(label: str) -> str:
            """Leave a mark.

            Args:
                label: the mark
            """
            ran.append(label)
            return label

        return execute

    model = scripted([call("mark", {"label": "before"}), call("submit", {"answer": "final"}),
                      call("mark", {"label": "after-submit"})],
                     [call("mark", {"label": "later-turn"})])
    state = await solve(react(tools=[mark()]), model)
    assert state.answer == "final"
    assert ran == ["before"]  # the control ran; nothing after the submit did
    assert tool_messages(state)[2].error.kind == "after_submit"
    assert sum(1 for m in state.messages if m.role == "assistant") == 1  # no further turn was asked for


async def test_a_model_that_never_stops_ends_at_the_turn_limit_with_what_it_has():
    loops = scripted([call("note", {})])
    state = await solve(react(tools=[note()], limits=AgentLimits(turns=4)), loops)
    assert state.limit == "turns" and state.answer is None
    assert sum(1 for e in state.events if e.kind == "model") == 4
    limit = [e for e in state.events if e.kind == "limit"]
    assert [(e.name, e.output) for e in limit] == [("turns", "turns limit reached: 4 of 4")]


async def test_without_a_submit_tool_a_turn_without_tool_calls_ends_the_agent():
    state = await solve(react(submit=False), scripted("the answer is 7"))
    assert state.completion == "the answer is 7" and state.limit is None
    with_submit = await solve(react(limits=AgentLimits(turns=3)), scripted("talking", [call("submit", {"answer": "7"})]))
    # with a submit tool, a text-only turn is answered with a request to go on, then the agent submits
    assert with_submit.answer == "7"
    assert [m.role for m in with_submit.messages][-4:] == ["assistant", "user", "assistant", "tool"]


class Metered:
    """A model whose calls cost tokens and time: `wait` seconds of each call are waiting on the endpoint."""

    name = "metered"

    def __init__(self, tokens: int = 0, latency: float = 0.0, wait: float = 0.0):
        self.tokens, self.latency, self.wait, self.calls = tokens, latency, wait, 0

    async def generate(self, messages, config=None, *, tools=None, tool_choice=None, kind="model"):
        self.calls += 1
        await asyncio.sleep(self.latency)
        c = call("note", {})
        mc = ModelCall(kind, self.name, list(messages), config or {}, text="", input_tokens=self.tokens,
                       output_tokens=0, tool_calls=[c], latency_s=self.latency, wait_s=self.wait)
        return ModelOutput(text="", call=mc, tool_calls=[c], stop_reason="tool_calls")


@tool
def note():
    async def execute() -> str:
        """Note something."""
        return "noted"

    return execute


@pytest.mark.parametrize("limits, model, expected, turns", [
    (AgentLimits(turns=None, tokens=250), Metered(tokens=100), "tokens", 3),
    (AgentLimits(turns=None, messages=6), Metered(), "messages", 3),  # 1 + 2 per turn: 7 messages after 3 turns
    (AgentLimits(turns=None, wall_time_s=0.25), Metered(latency=0.1), "wall_time", 3),
    # 0.1 s per call, all of it waiting on the endpoint: working time never reaches its limit; the turn limit ends it
    (AgentLimits(turns=6, working_time_s=0.25), Metered(latency=0.1, wait=0.1), "turns", 6),
    (AgentLimits(turns=6, working_time_s=0.25), Metered(latency=0.1, wait=0.0), "working_time", 3),
])
async def test_each_limit_is_enforced_at_the_turn_checkpoint(limits, model, expected, turns):
    state = TaskState(sample=Sample(id="s", input="go"), epoch=0)
    await react(tools=[note()], limits=limits)(state, SolveContext(model=model, config={}, task=None))
    assert state.limit == expected
    assert model.calls == turns


async def test_a_handoff_runs_another_agent_in_the_same_sandbox_and_records_who_did_what(backend):
    helper_model = scripted([call("bash", {"cmd": "echo 42 > answer.txt; cat answer.txt"})],
                            [call("submit", {"answer": "the helper found 42"})])
    helper = Agent("helper", prompt="You help.", tools=[bash()], model=helper_model.bind(None),
                   description="Ask the helper to look something up.")
    main = scripted([call("transfer_to_helper", {"task": "find the number"})],
                    [call("bash", {"cmd": "cat answer.txt"})],
                    [call("submit", {"answer": "42"})])
    state = await solve(react(tools=[handoff(helper), bash()], name="lead"), main, backend=backend)
    assert state.answer == "42"
    results = [m.text for m in tool_messages(state)]
    assert results == ["the helper found 42", "42\n", "42"]
    by_agent = {(e.kind, e.agent) for e in state.events if e.kind in ("model", "tool")}
    assert by_agent == {("model", "lead"), ("tool", "lead"), ("model", "helper"), ("tool", "helper")}
    helper_span = next(e for e in state.events if e.kind == "span" and e.name == "agent:helper")
    assert all(e.span == helper_span.seq for e in state.events if e.agent == "helper" and e is not helper_span)
    assert state.metadata["agents"][0]["agent"] == "helper"
    assert [m.agent for m in state.messages if m.role == "assistant"] == ["lead"] * 3


async def test_a_tool_schema_comes_from_the_signature_and_docstring():
    @tool
    def lookup():
        async def execute(query: str, limit: int = 5, exact: bool = False) -> str:
            """Look a word up in the dictionary.

            More text that is not the description.

            Args:
                query: the word to look up,
                    possibly with a wildcard
                limit: how many entries at most
                exact: match the whole word only
            """
            return query

        return execute

    t = lookup()
    assert t.name == "lookup" and t.description == "Look a word up in the dictionary."
    props = t.parameters["properties"]
    assert props["query"] == {"type": "string", "description": "the word to look up, possibly with a wildcard"}
    assert props["limit"] == {"type": "integer", "default": 5, "description": "how many entries at most"}
    assert t.parameters["required"] == ["query"]
    assert await t(query="cat") == "cat"
    assert submit().parameters["required"] == ["answer"]


async def test_a_tool_asking_for_a_sandbox_in_a_task_without_one_errors_the_sample_as_infrastructure():
    from harness import InfraError

    with pytest.raises(InfraError, match="needs_sandbox"):
        await solve(react(tools=[bash()]), scripted([call("bash", {"cmd": "true"})]))


async def test_a_sandbox_the_model_broke_is_its_failure_and_one_the_harness_lost_is_an_infrastructure_error(kind):
    from harness import InfraError
    from harness.agent import sandbox as current_sandbox

    if kind != "docker":
        pytest.skip("a container the harness kills: Docker only")
    b = get_backend("docker", limits=LIMITS, pool_size=1)
    try:
        # the command stops the `timeout` that guards it: the exec outlives its deadline and the harness kills the
        # whole container, so the next call finds no sandbox
        escapes = scripted([call("bash", {"cmd": "kill -STOP $PPID; sleep 60"})], [call("bash", {"cmd": "echo still-there"})],
                           [call("submit", {"answer": "gave up"})])
        state = await solve(react(tools=[bash(timeout=1)]), escapes, backend=b)
        assert [m.error.kind for m in tool_messages(state)[:2]] == ["timeout", "sandbox"]
        assert state.answer == "gave up"  # the model's doing: scored, not an infrastructure error

        @tool
        def daemon_loses_it():
            async def execute() -> str:
                """Stand in for a Docker daemon that loses the container (what no sandboxed code can do)."""
                await asyncio.to_thread(current_sandbox().container.kill)
                return "gone"

            return execute

        lost = scripted([call("daemon_loses_it", {})], [call("bash", {"cmd": "echo hi"})])
        with pytest.raises(InfraError, match="sandbox failed"):
            await solve(react(tools=[bash(), daemon_loses_it()]), lost, backend=b)
    finally:
        await b.aclose()
