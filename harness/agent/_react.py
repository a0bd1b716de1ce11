"""The agent loop: generate, run the tool calls, append their results, repeat, until the agent submits (or,
without a submit tool, answers without calling a tool), or a limit ends it.

Limits (AgentLimits) are checked at one checkpoint, before each turn's model call: turns, messages, total
tokens, wall time, and working time (wall time less the time spent waiting on the endpoint: queued behind
its rate limit, failed attempts and the sleeps between retries, ModelCall.wait_s). A hit limit ends the
sample with what it has (its last answer), scored, with `limit:<name>` recorded: the model's budget, never
an infrastructure error. A prompt over the model's context ends it the same way (`limit:context_length`).

`handoff(agent)` offers another agent (its own prompt, tools, limits, optionally its own model) as a tool:
it works on the task it is given in its own conversation, in the same sandbox, and its answer is the
tool's result. Every event and assistant message records which agent took it.
"""
from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness._messages import (ChatMessageAssistant, ChatMessageSystem, ChatMessageTool, ChatMessageUser, ContentText,
                               ToolCall, ToolError)
from harness._types import ContextLengthExceeded, InfraError
from harness.agent._tool import _SANDBOX, FunctionTool, Tool, ToolFailure, function_tool, info
from harness.agent._tools import SUBMIT, submit

if TYPE_CHECKING:
    from harness._task import SolveContext, TaskState
    from harness.model import ModelClient

TOOL_OUTPUT_BYTES = 16 << 10  # what the model is shown of one tool result; the cut is said and recorded
TOOL_TIMEOUT_S = 600.0  # any tool call, including ones that do not time themselves out
CONTINUE = ("Please proceed to the next step using your best judgement. If you believe you have completed the task, "
            f"call the `{SUBMIT}` tool with your final answer.")


@dataclass(frozen=True)
class AgentLimits:
    """None: no limit. turns: model calls; messages: the conversation's length; tokens: input + output tokens
    of all model calls; wall_time_s / working_time_s: seconds since the agent started (working: less the time
    spent waiting on the endpoint)."""

    turns: int | None = 50
    messages: int | None = None
    tokens: int | None = None
    wall_time_s: float | None = None
    working_time_s: float | None = None

    def exceeded(self, usage: "_Usage") -> tuple[str, str] | None:
        now = time.monotonic()
        checks = [("turns", usage.turns, self.turns), ("messages", usage.messages, self.messages),
                  ("tokens", usage.tokens, self.tokens), ("wall_time", now - usage.started, self.wall_time_s),
                  ("working_time", now - usage.started - usage.waited, self.working_time_s)]
        for name, used, limit in checks:
            if limit is not None and used >= limit:
                return name, f"{name} limit reached: {used:g} of {limit:g}"
        return None


@dataclass
class _Usage:
    started: float = field(default_factory=time.monotonic)
    turns: int = 0
    messages: int = 0
    tokens: int = 0
    waited: float = 0.0


@dataclass
class Agent:
    """An agent that a react solver runs, or that another agent hands work to (handoff). model: None for the
    evaluated model."""

    name: str
    prompt: str | None = None
    tools: list[Tool] = field(default_factory=list)
    limits: AgentLimits = AgentLimits()
    model: "ModelClient | None" = None
    description: str = ""
    submit: bool = True
    tool_choice: Any = None


@dataclass
class _Run:
    """What the tools of one sample's trajectory share: its state, its context and the output cap."""

    state: "TaskState"
    ctx: "SolveContext"
    tool_output_bytes: int
    tool_timeout_s: float


_RUN: contextvars.ContextVar[_Run | None] = contextvars.ContextVar("harness_agent_run", default=None)


@dataclass
class react:
    """The agent solver. tools: what the agent may call (a submit tool is added unless submit=False).
    prompt: the system prompt. files: whether the sample's files go into its sandbox (False where they hold
    what only the scorer may see). tool_choice: sent with every model call ("auto", "required", or
    {"type": "function", "function": {"name": ...}} to force one tool; None: the endpoint's default).
    A sample gets a fresh sandbox of its own for its whole trajectory."""

    tools: list[Tool] = field(default_factory=list)
    prompt: str | None = None
    submit: bool = True
    limits: AgentLimits = AgentLimits()
    name: str | None = None
    files: bool = True
    tool_choice: Any = None
    tool_output_bytes: int = TOOL_OUTPUT_BYTES
    tool_timeout_s: float = TOOL_TIMEOUT_S

    async def __call__(self, state: "TaskState", ctx: "SolveContext") -> "TaskState":
        agent = Agent(self.name or "agent", self.prompt, list(self.tools), self.limits, submit=self.submit,
                      tool_choice=self.tool_choice)
        run = _Run(state, ctx, self.tool_output_bytes, self.tool_timeout_s)
        token = _RUN.set(run)
        try:
            if ctx.sandbox is None:
                await self._solve(agent, state, ctx)
                return state
            async with ctx.sandbox.acquire(fresh=True) as sb:
                for path, content in (state.sample.files.items() if self.files else ()):
                    await sb.write_file(path, content)
                sandbox_token = _SANDBOX.set(sb)
                try:
                    await self._solve(agent, state, ctx)
                finally:
                    _SANDBOX.reset(sandbox_token)
            return state
        finally:
            _RUN.reset(token)

    async def _solve(self, agent: Agent, state: "TaskState", ctx: "SolveContext") -> None:
        state.messages = state.sample.messages(agent.prompt)
        answer, limit = await _loop(agent, state.messages, ctx.model, named=self.name is not None)
        state.answer, state.limit = answer, limit


async def _loop(agent: Agent, messages: list[Any], model: "ModelClient", *, named: bool = False,
                nested: bool = False) -> tuple[str | None, str | None]:
    """Run one agent on `messages` (extended in place) until it submits, answers or hits a limit.
    Returns (submitted answer or None, limit name or None). The events and messages of a handed-off
    (nested) or named agent carry its name; a sample's only, unnamed agent leaves it None."""
    run = _RUN.get()
    assert run is not None, "agent loops run inside a react solver"
    state, ctx = run.state, run.ctx
    tools = list(agent.tools) + ([_submit_tool()] if agent.submit else [])
    by_name = {t.name: t for t in tools}
    infos = [info(t) for t in tools] or None
    who = agent.name if (named or nested) else None
    usage = _Usage()
    with state.events.span(f"agent:{agent.name}", agent=who):
        while True:
            usage.messages = len(messages)
            hit = agent.limits.exceeded(usage)
            if hit is not None:
                state.events.add("limit", name=hit[0], agent=who, output=hit[1])
                return None, hit[0]
            try:
                output = await model.generate(messages, ctx.config, tools=infos, tool_choice=agent.tool_choice)
            except ContextLengthExceeded as e:
                if e.call is not None:
                    state.calls.append(e.call)
                state.events.add("limit", name="context_length", agent=who, output=str(e))
                return None, "context_length"
            state.record(output, agent=who)
            if not nested:
                state.output = output
            call = output.call
            usage.turns += 1
            usage.tokens += (call.input_tokens or 0) + (call.output_tokens or 0)
            usage.waited += call.wait_s
            messages.append(ChatMessageAssistant(content=output.text, tool_calls=output.tool_calls or None, agent=who))
            if not output.tool_calls:
                if agent.submit:
                    messages.append(ChatMessageUser(content=CONTINUE))
                    continue
                return None, None
            results, answer = await _run_calls(output.tool_calls, by_name, run, who)
            messages.extend(results)
            if answer is not None:
                return answer, None


@functools.cache
def _submit_tool() -> FunctionTool:
    """One submit tool for every agent: it is stateless, and building one (a pydantic model) costs milliseconds."""
    return submit()


async def _run_calls(calls: list[ToolCall], by_name: dict[str, Tool], run: _Run,
                     who: str | None) -> tuple[list[ChatMessageTool], str | None]:
    """Run one turn's calls in order; consecutive calls of parallel tools run concurrently. After a submit,
    the turn's later calls are not run (and told so)."""
    results: list[ChatMessageTool | None] = [None] * len(calls)
    answer: str | None = None
    i = 0
    while i < len(calls):
        if answer is not None:
            results[i] = _failed(calls[i], "after_submit", "not run: the answer was already submitted", run, who)
            i += 1
            continue
        group = [i]
        if _parallel(calls[i], by_name):
            while group[-1] + 1 < len(calls) and _parallel(calls[group[-1] + 1], by_name):
                group.append(group[-1] + 1)
        done = await asyncio.gather(*(_call(calls[j], by_name, run, who) for j in group))
        for j, (message, submitted) in zip(group, done):
            results[j] = message
            if submitted is not None:
                answer = submitted
        i = group[-1] + 1
    return [r for r in results if r is not None], answer


def _parallel(call: ToolCall, by_name: dict[str, Tool]) -> bool:
    tool = by_name.get(call.function)
    return tool is not None and getattr(tool, "parallel", False) and call.parse_error is None


async def _call(call: ToolCall, by_name: dict[str, Tool], run: _Run,
                who: str | None) -> tuple[ChatMessageTool, str | None]:
    """One tool call -> its result message (and the answer, for a valid submit). Every failure the model can
    cause is a tool error it is told of; only an InfraError (the sandbox itself failed) ends the sample."""
    started, t0 = time.time(), time.perf_counter()
    if call.parse_error is not None:
        return _failed(call, "parsing", call.parse_error, run, who), None
    tool = by_name.get(call.function)
    if tool is None:
        known = ", ".join(sorted(by_name)) or "none"
        return _failed(call, "unknown_tool", f"there is no tool {call.function!r}; the tools are: {known}", run,
                       who), None
    partial = ""
    try:
        result = await asyncio.wait_for(tool(**call.arguments), run.tool_timeout_s)
    except ToolFailure as e:
        return _failed(call, e.kind, str(e), run, who, output=e.output, started=started, t0=t0), None
    except asyncio.TimeoutError:
        return _failed(call, "timeout", f"{call.function} did not finish within {run.tool_timeout_s:g} s", run, who,
                       started=started, t0=t0), None
    except InfraError:
        raise
    except Exception as e:  # a tool that raises: the model is told, the run goes on
        return _failed(call, "error", f"{call.function} raised {type(e).__name__}: {e}", run, who,
                       started=started, t0=t0), None
    if isinstance(result, list) and all(isinstance(p, ContentText) or hasattr(p, "image") for p in result):
        content: Any = result
        text = "".join(p.text for p in result if isinstance(p, ContentText))
    elif isinstance(result, str):
        content = text = result
    else:
        return _failed(call, "error", f"{call.function} returned a {type(result).__name__}, not text", run, who,
                       output=partial, started=started, t0=t0), None
    shown, cut = _cap(text, run.tool_output_bytes)
    if isinstance(content, str):
        content = shown
    run.state.events.add("tool", name=call.function, agent=who, input=call.arguments, output=shown,
                         started_at=started, latency_s=time.perf_counter() - t0,
                         metadata={"call_id": call.id, **({"truncated_bytes": cut} if cut else {})})
    message = ChatMessageTool(content=content, tool_call_id=call.id, function=call.function)
    return message, (text if call.function == SUBMIT and isinstance(tool, FunctionTool) else None)


def _failed(call: ToolCall, kind: str, message: str, run: _Run, who: str | None, *, output: str = "",
            started: float | None = None, t0: float | None = None) -> ChatMessageTool:
    shown, cut = _cap(output, run.tool_output_bytes)
    content = f"Error ({kind}): {message}" + (f"\nOutput before the error:\n{shown}" if shown else "")
    run.state.events.add("tool", name=call.function, agent=who, input=call.arguments or call.raw, output=shown or None,
                         error=kind, started_at=started or time.time(),
                         latency_s=(time.perf_counter() - t0) if t0 is not None else 0.0,
                         metadata={"call_id": call.id, "message": message, **({"truncated_bytes": cut} if cut else {})})
    return ChatMessageTool(content=content, tool_call_id=call.id, function=call.function,
                           error=ToolError(kind=kind, message=message))


def _cap(text: str, limit: int) -> tuple[str, int]:
    """At most `limit` bytes of UTF-8 (cut at a character boundary), with the cut said in the text."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text, 0
    head = data[:limit].decode("utf-8", "ignore")
    cut = len(data) - len(head.encode("utf-8", "surrogatepass"))
    return head + f"\n[output truncated: {cut} of {len(data)} bytes not shown]", cut


def handoff(agent: Agent) -> FunctionTool:
    """Another agent as a tool (`transfer_to_<name>`): it works on the task it is given in a conversation of its
    own (its prompt, tools, limits and model), in the same sandbox; its answer (what it submits, or its last
    message) is the tool's result. A limit it hits ends its work, not the caller's."""

    async def execute(task: str) -> str:
        run = _RUN.get()
        assert run is not None, "a handoff runs inside a react solver"
        messages: list[Any] = ([ChatMessageSystem(content=agent.prompt)] if agent.prompt else [])
        messages.append(ChatMessageUser(content=task))
        model = agent.model or run.ctx.model
        answer, limit = await _loop(agent, messages, model, nested=True)
        transcripts = run.state.metadata.setdefault("agents", [])
        transcripts.append({"agent": agent.name, "messages": [m.model_dump(exclude_none=True) for m in messages]})
        if answer is None:
            last = next((m for m in reversed(messages) if isinstance(m, ChatMessageAssistant)), None)
            answer = last.text if last is not None else ""
        return answer + (f"\n[{agent.name} stopped: {limit} limit reached]" if limit else "")

    execute.__doc__ = (f"{agent.description or f'Hand a task to the {agent.name} agent.'}\n\n"
                       f"Args:\n    task: what {agent.name} should do, with everything it needs to know\n")
    return function_tool(execute, name=f"transfer_to_{agent.name}", parallel=False)

