"""The values that flow through a run: samples in, model outputs and scores out.

Plain dataclasses on the hot path (one of each per sample and call); pydantic is used where values
cross the persistence boundary (see harness.store).

Who a failure belongs to decides how it is stored:
- the model's (or the code it wrote): a wrong, empty, malformed or forged answer, a context-length
  rejection (ContextLengthExceeded), a hit limit. The sample is *scored* (0) with an `error_category`.
- the infrastructure's, only where the harness can prove it is not the model's: the API gave up, the
  endpoint answered something malformed or oversized, the sandbox daemon died, the record is malformed,
  a judge gave no verdict (JudgeNoVerdict). The sample is stored as `error` with its reason; a resume
  retries it, and a task with errored samples is reported as incomplete (metrics["complete"] false,
  metrics["counts"]["error"] beside the value), never as if the errored samples did not exist.
- the user's or the endpoint's configuration (a refused API key, a redirect to another host): the run
  stops (RunAborted) with the samples it finished kept.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Message = dict[str, Any]  # OpenAI chat format: {"role": ..., "content": ...}


@dataclass
class Sample:
    """One benchmark problem.

    id: stable within the task (resume and re-scoring key on it).
    input: a prompt string (sent as one user turn) or chat messages.
    target: the gold answer; None where the split hides it.
    metadata: what breakdowns group by (cipher, domain, ...); never shown to the model.
    files: files a sandboxed solver or scorer puts into the sandbox.
    invalid: why the record is unusable; such a sample is stored as errored, never as a model failure.
    """

    id: str
    input: str | list[Message]
    target: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    invalid: str | None = None

    def messages(self, system: str | None = None) -> list[Message]:
        msgs: list[Message] = [{"role": "system", "content": system}] if system else []
        if isinstance(self.input, str):
            msgs.append({"role": "user", "content": self.input})
        else:
            msgs.extend(self.input)
        return msgs


@dataclass
class Attempt:
    """One HTTP attempt of a model call: kept so retries are visible in the trace."""

    status: int | None
    error: str | None
    latency_s: float
    wait_s: float = 0.0


@dataclass
class ModelCall:
    """One logical model (or judge) call: what was asked, what came back, at what cost."""

    kind: str  # "model" | "judge"
    model: str
    messages: list[Message]
    config: dict[str, Any]
    text: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_s: float = 0.0
    attempts: list[Attempt] = field(default_factory=list)
    error: str | None = None
    started_at: float = 0.0
    raw: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "model": self.model, "messages": self.messages, "config": self.config,
            "text": self.text, "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
            "latency_s": self.latency_s, "error": self.error, "started_at": self.started_at,
            "attempts": [a.__dict__ for a in self.attempts], "raw": self.raw,
        }


@dataclass
class ModelOutput:
    text: str
    call: ModelCall
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Score:
    """A scorer's verdict on one sample.

    value: the headline value (1.0/0.0 for correct/incorrect, or a fraction).
    values: every named value the scorer computes (e.g. {"correct": 1, "levenshtein": 0.93});
        metrics read these by name.
    answer: what was extracted from the response and compared.
    error_category: why a miss is a miss (for error analysis); None when correct.
    """

    value: float | None
    values: dict[str, float] = field(default_factory=dict)
    answer: str | None = None
    explanation: str | None = None
    error_category: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


class InfraError(Exception):
    """A failure that is not the model's: the sample is stored as errored, never scored as wrong.

    call: the failed call, kept so its attempts reach the trace."""

    def __init__(self, message: str, call: ModelCall | None = None):
        super().__init__(message)
        self.call = call


class ContextLengthExceeded(InfraError):
    """The endpoint refused the prompt as longer than the model's context window (HTTP 400
    `context_length_exceeded`, or vLLM's / llama.cpp's wording of it).

    Raised by the evaluated model's call, it is the model's limit: the runner scores the sample as a
    failure with error_category "context_length" (the scorers see an empty completion), and a resume does
    not retry it. Raised by a judge's call it stays what its base class says: the judge's failure, an
    infrastructure error."""


class RunAborted(Exception):
    """A failure every further call would repeat (the endpoint refuses the API key, redirects to another
    host): the run stops at once with this one-line message (the CLI exits 2), keeping the samples it finished."""
