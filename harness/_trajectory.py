"""Multi-agent trajectories and fault labels: one shape for every error-identification suite (AEGIS, Who&When,
CORRECT-Error) and for the agent traces the harness records itself.

A `Trajectory` is the ordered `Step`s of a run (who spoke, in which role and phase, what was said) with the task it
was solving. A `FaultLabel` says which agents went wrong, each optionally at a step (a `Step.index`) and with an error
mode. Labels live in `Sample.target`, never in what a prompt renders.

Agent names are compared after `normalize_agent` (see there). Long trajectories are checked against the evaluated
model's context with `ContextBudget`: a prompt that does not fit raises `ContextExceeded` (an InfraError, so the sample
is stored as errored with the reason) unless the caller asks for the step contents to be clipped to fit.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable

from harness._types import InfraError, Sample


@dataclass
class Step:
    """One turn of a multi-agent run.

    index: the step number as the source numbers it (Who&When: 0-based position; AEGIS: 1-based, may skip);
        labels refer to steps by this number.
    agent: the speaker as written in the source (e.g. "Orchestrator (-> WebSurfer)").
    role: the chat role or the agent's persona, where the source has one.
    phase: the stage of the protocol (AEGIS: initialization, reasoning, discussion, evaluation).
    """

    index: int
    agent: str
    content: str
    role: str | None = None
    phase: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Trajectory:
    """task: what the agents were asked to do. participants: agents declared by the system even if they never speak
    (e.g. the experts of a system prompt). final_output: the system's answer, where recorded."""

    steps: list[Step]
    task: str = ""
    participants: list[str] = field(default_factory=list)
    final_output: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Trajectory":
        return cls(**{**data, "steps": [Step(**s) for s in data["steps"]]})

    def agents(self) -> set[str]:
        """Every agent that speaks or is declared, normalised."""
        return {normalize_agent(s.agent) for s in self.steps} | {normalize_agent(a) for a in self.participants}

    def step(self, index: int) -> Step | None:
        return next((s for s in self.steps if s.index == index), None)

    def clip_contents(self, max_chars: int) -> tuple["Trajectory", int]:
        """The same trajectory with the longest step contents cut so that all contents together take at most
        `max_chars` (each cut content keeps its head and a marker). Returns it and the number of characters cut.
        Every step stays, so the model can still name any step and agent."""
        lengths = [len(s.content) for s in self.steps]
        if sum(lengths) <= max_chars:
            return self, 0
        usable = max_chars - len(_cut_marker(10**9)) * len(lengths)
        if usable < len(lengths):
            raise ContextExceeded(f"the trajectory's {len(lengths)} steps cannot be shown in the context at all")
        low, high = 0, max(lengths)  # the largest per-step cap whose total fits (water-filling)
        while low < high:
            mid = (low + high + 1) // 2
            if sum(min(n, mid) for n in lengths) <= usable:
                low = mid
            else:
                high = mid - 1
        steps = [s if len(s.content) <= low else replace(s, content=s.content[:low] + _cut_marker(len(s.content) - low))
                 for s in self.steps]
        return replace(self, steps=steps), sum(max(0, n - low) for n in lengths)

    def prefix(self, count: int) -> "Trajectory":
        """The first `count` steps (what an observer has seen up to a point)."""
        return replace(self, steps=self.steps[:count])


@dataclass
class Fault:
    """One labelled error: who, optionally at which step and of which kind (e.g. "FM-2.2")."""

    agent: str
    step: int | None = None
    mode: str | None = None


@dataclass
class FaultLabel:
    """The gold answer of an error-identification sample; `reason` is the annotator's explanation, kept for analysis."""

    faults: list[Fault]
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "FaultLabel":
        return cls([Fault(**f) for f in data["faults"]], data.get("reason"))


@dataclass
class TrajectorySample(Sample):
    """A sample whose input is a trajectory. Solvers render it (the prompt in `input` is the single-call rendering).
    task_answer: the correct answer to the trajectory's task, shown only by variants that give the model the answer."""

    trajectory: Trajectory | None = None
    task_answer: str | None = None


_QUALIFIER = re.compile(r"\s*\([^()]*\)\s*$")
_SPACE = re.compile(r"\s+")


def normalize_agent(name: str) -> str:
    """The comparison key of an agent name: a trailing parenthesised qualifier is dropped (Magentic-One's
    "Orchestrator (thought)" and "Orchestrator (-> WebSurfer)" are the Orchestrator speaking), surrounding whitespace,
    quotes and markdown emphasis are stripped, inner whitespace is collapsed, and case is folded (AEGIS labels say
    "assistant1" where the trace says "Assistant1"; Who&When once said "Websurfer"). Nothing else is merged:
    "Node-1" and "Node1" stay different agents."""
    key = name.strip().strip("*_`'\" ").strip()
    key = _QUALIFIER.sub("", key)
    return _SPACE.sub(" ", key).casefold()


CHARS_PER_TOKEN = 4.0  # OpenAI's rule of thumb for English text; lower it for code- or URL-heavy traces


@dataclass(frozen=True)
class ContextBudget:
    """How much prompt the evaluated model takes. context_tokens: its context window (0: no check);
    reserve_tokens: kept free for the answer; chars_per_token: the estimate that converts characters to tokens."""

    context_tokens: int
    reserve_tokens: int = 2048
    chars_per_token: float = CHARS_PER_TOKEN

    @property
    def max_prompt_chars(self) -> int | None:
        if self.context_tokens <= 0:
            return None
        return int((self.context_tokens - self.reserve_tokens) * self.chars_per_token)

    def for_config(self, config: dict[str, Any]) -> "ContextBudget":
        """The answer's reserve is the run's max_tokens when one is set."""
        return replace(self, reserve_tokens=int(config["max_tokens"])) if config.get("max_tokens") else self

    def fit(self, render: Callable[[Trajectory], str], trajectory: Trajectory, *, system: str = "",
            truncate: bool = False) -> tuple[str, int]:
        """The rendered prompt and how many characters of step content were cut to fit (0 when it fits).
        Raises ContextExceeded when it does not fit and `truncate` is off."""
        text = render(trajectory)
        limit = self.max_prompt_chars
        if limit is None or len(system) + len(text) <= limit:
            return text, 0
        estimate = int((len(system) + len(text)) / self.chars_per_token)
        if not truncate:
            raise ContextExceeded(
                f"the prompt is ~{estimate:,} tokens ({len(system) + len(text):,} characters at "
                f"{self.chars_per_token:g} characters per token), over the context of {self.context_tokens:,} tokens "
                f"less {self.reserve_tokens:,} reserved for the answer; raise -T context_tokens=N or choose the "
                f"truncating variant")
        overhead = len(system) + len(text) - sum(len(s.content) for s in trajectory.steps)
        clipped, cut = trajectory.clip_contents(limit - overhead)
        return render(clipped), cut


class ContextExceeded(InfraError):
    """The trajectory does not fit the evaluated model's context: the sample is stored as errored, not as wrong."""


def _cut_marker(count: int) -> str:
    return f" [... {count} characters cut to fit the context ...]"
