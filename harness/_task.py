"""What a benchmark suite declares: its data, how a sample is solved, how it is scored, what the paper reported."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Protocol

from harness._dataset import Dataset
from harness._events import EventLog
from harness._types import Message, ModelCall, ModelOutput, Sample, Score
from harness.scoring._metrics import Metric

if TYPE_CHECKING:
    from harness.model import ModelClient
    from harness.model._builtin import ReplayRow


@dataclass
class TaskState:
    """A sample being worked on: the conversation so far, every call made for it and every step taken.

    answer: what an agent submitted (the `submit` tool); None when it did not, and scorers read the last
    message instead. limit: the name of the limit that ended the sample, if one did."""

    sample: Sample
    epoch: int
    messages: list[Message] = field(default_factory=list)
    output: ModelOutput | None = None
    calls: list[ModelCall] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    events: EventLog = field(default_factory=EventLog)
    answer: str | None = None
    limit: str | None = None

    @property
    def completion(self) -> str:
        """What scorers read: the submitted answer, else the last assistant text."""
        if self.answer is not None:
            return self.answer
        return self.output.text if self.output else ""

    def record(self, output: ModelOutput, *, agent: str | None = None) -> ModelOutput:
        """Keep a model call: on the state, and as a `model` event."""
        call = output.call
        self.calls.append(call)
        self.events.add("model", name=call.model, agent=agent, input=len(call.messages),
                        output={"text": output.text, "tool_calls": [c.model_dump(exclude_none=True) for c in output.tool_calls]},
                        started_at=call.started_at, latency_s=call.latency_s, input_tokens=call.input_tokens,
                        output_tokens=call.output_tokens, error=call.error and "model_error",
                        metadata={"stop_reason": output.stop_reason})
        return output


@dataclass
class SolveContext:
    """What solvers and scorers may use: the evaluated model, its settings, and shared resources."""

    model: "ModelClient"  # for reference / replay / mock: bound to the sample being solved (AnswersFromData)
    config: dict[str, Any]
    task: "Task"
    judges: dict[str, "ModelClient"] = field(default_factory=dict)
    sandbox: Any = None  # a harness.sandboxes.SandboxBackend when the task needs one
    judge_cache: Any = None  # a harness.judge.JudgeCache: repeated judge requests are answered from the store


class Solver(Protocol):
    async def __call__(self, state: TaskState, ctx: SolveContext) -> TaskState: ...


class Scorer(Protocol):
    async def __call__(self, state: TaskState, ctx: SolveContext) -> Score: ...


@dataclass
class generate:
    """The single-turn solver: send the sample's messages (after an optional system prompt) once."""

    system: str | None = None

    async def __call__(self, state: TaskState, ctx: SolveContext) -> TaskState:
        state.messages = state.sample.messages(self.system)
        state.output = state.record(await ctx.model.generate(state.messages, ctx.config))
        state.messages.append(state.output.message)
        return state


@dataclass(frozen=True)
class Reference:
    """A number the paper reported, shown beside ours and labelled as reported, never as measured here."""

    model: str
    metric: str
    value: float
    group: str | None = None  # e.g. "cipher=Rot13"; None for the overall figure
    source: str = ""
    note: str = ""


@dataclass
class Task:
    """A benchmark suite, configured (a variant and its arguments applied).

    metrics: aggregated over all samples and, for every key in `breakdowns`, per metadata value.
    headline: the metric leaderboards rank by.
    """

    name: str
    version: str
    dataset: Dataset
    solver: Solver
    scorers: list[Scorer]
    metrics: list[Metric]
    headline: str
    breakdowns: list[str] = field(default_factory=list)
    reference: list[Reference] = field(default_factory=list)
    description: str = ""
    config: dict[str, Any] = field(default_factory=dict)  # sampling defaults the paper used
    needs_sandbox: bool = False
    sandbox_limits: dict[str, Any] = field(default_factory=dict)  # overrides of SandboxLimits, e.g. {"memory_mb": 4096}
    # what the reference model answers: the gold answer in the response format the task parses. It gets the state,
    # so a multi-call solver can say in state.metadata what each call asks (see tasks/_multiagent/solvers.py)
    reference_answer: Callable[[TaskState], str] = lambda state: str(state.sample.target)
    sandbox_image: str = "harness-python"  # the Docker image a sandboxed task runs in (bwrap uses the host's tools)
    read_replay: Callable[[Path], Iterator["ReplayRow"]] | None = None  # the suite's upstream response formats
    judge_roles: list[str] = field(default_factory=list)  # judges the scorers need; checked before any work
    judges: dict[str, str] = field(default_factory=dict)  # role -> model spec the task (variant) proposes
    # after the task's samples are stored: (task, run facts, stored rows) -> lines to tell the user (e.g. files written)
    on_finish: Callable[["Task", dict[str, Any], list[dict[str, Any]]], list[str]] | None = None
    # set by the registry when it builds the task, so a stored run can be rebuilt
    variant: str = "default"
    args: dict[str, Any] = field(default_factory=dict)
