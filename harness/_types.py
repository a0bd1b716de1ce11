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

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from harness._messages import ChatMessageAssistant, ChatMessageSystem, ChatMessageUser, ToolCall, parse_message, to_openai

Message = Any  # a harness._messages.ChatMessage, or its OpenAI dict form


@dataclass
class Sample:
    """One benchmark problem.

    id: stable within the task (resume and re-scoring key on it).
    input: a prompt string (sent as one user turn) or chat messages (ChatMessage, or OpenAI dicts).
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
        msgs: list[Message] = [ChatMessageSystem(content=system)] if system else []
        if isinstance(self.input, str):
            msgs.append(ChatMessageUser(content=self.input))
        else:
            msgs.extend(parse_message(m) for m in self.input)
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
    """One logical model (or judge) call: what was asked (messages, the tools offered, the tool choice, the
    settings), what came back (text, tool calls, why it stopped), at what cost."""

    kind: str  # "model" | "judge"
    model: str
    messages: list[Message]
    config: dict[str, Any]
    text: str | None = None
    tools: list[dict[str, Any]] | None = None  # the tools' JSON schemas as sent
    tool_choice: Any = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    stop_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_s: float = 0.0
    attempts: list[Attempt] = field(default_factory=list)
    error: str | None = None
    started_at: float = 0.0
    raw: dict[str, Any] | None = None
    # seconds of latency_s spent waiting on the endpoint rather than working: queued for a connection slot (the
    # limiter, which also holds calls through a 429's Retry-After), failed attempts and the sleeps between them;
    # an agent's working-time limit leaves them out
    wait_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "model": self.model, "messages": dump_messages(self.messages), "config": self.config,
            "tools": self.tools, "tool_choice": self.tool_choice, "text": self.text,
            "tool_calls": [c.model_dump(exclude_none=True) for c in self.tool_calls], "stop_reason": self.stop_reason,
            "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
            "latency_s": self.latency_s, "wait_s": self.wait_s, "error": self.error, "started_at": self.started_at,
            "attempts": [a.__dict__ for a in self.attempts], "raw": self.raw,
            "request_key": request_key(self.messages, self.tools, self.tool_choice, self.config),
        }


    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ModelCall":
        """A call as to_json() stored it (traces written before tool calls existed read too)."""
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["attempts"] = [Attempt(**a) for a in data.get("attempts") or []]
        fields["tool_calls"] = [ToolCall.model_validate(c) for c in data.get("tool_calls") or []]
        return cls(**fields)


def dump_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Messages as the trace stores them: each ChatMessage's JSON, without unset fields."""
    return [parse_message(m).model_dump(exclude_none=True) for m in messages]


def request_key(messages: list[Message], tools: list[dict[str, Any]] | None, tool_choice: Any,
                config: dict[str, Any]) -> str:
    """What identifies a model request: a hash of what is sent (the messages as OpenAI reads them, the tools, the
    tool choice and the settings). `replay-run:` answers a request whose key a stored run has."""
    canonical = json.dumps({"messages": to_openai(messages), "tools": tools or None, "tool_choice": tool_choice,
                            "config": config}, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class ModelOutput:
    """What a model answered: text and/or tool calls, and why it stopped (stop, tool_calls, max_tokens,
    content_filter, context_length, unknown)."""

    text: str
    call: ModelCall
    tool_calls: list[ToolCall] = field(default_factory=list)
    stop_reason: str = "stop"

    @property
    def message(self) -> ChatMessageAssistant:
        return ChatMessageAssistant(content=self.text, tool_calls=self.tool_calls or None)


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
