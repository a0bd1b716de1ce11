"""The steps of a sample, typed: every model call, tool call, limit hit, error and span (an agent's turn at
the work, a handoff) in the order they happened. The runner stores one row per event in the `events`
table (see harness.store), so a trajectory can be queried in SQL (`events_v`); the full inputs and
outputs stay in the sample's trace, the table keeps a truncated copy."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

EventKind = Literal["model", "tool", "limit", "error", "span"]
# what the events table keeps of an input or output; the trace keeps it whole
EVENT_TEXT_MAX = 4096


@dataclass
class Event:
    """seq: 0-based position in the sample. span: the seq of the enclosing span event (None: top level).
    agent: who took the step (None: the sample's only agent). name: the model for `model`, the tool for
    `tool`, the limit for `limit`, what the span is for `span`. input / output: the tool's arguments and
    result, or for a model call the number of messages sent and the assistant's text (with its tool
    calls). error: the error's class (`timeout`, `parsing`, `unknown_tool`, ..., or an exception's name)."""

    seq: int
    kind: EventKind
    name: str | None = None
    agent: str | None = None
    span: int | None = None
    input: Any = None
    output: Any = None
    error: str | None = None
    started_at: float = field(default_factory=time.time)
    latency_s: float = 0.0
    input_tokens: int | None = None
    output_tokens: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class EventLog:
    """A sample's events, appended as they happen; `span()` opens a span that later events nest under."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._spans: list[int] = []

    def add(self, kind: EventKind, **fields: Any) -> Event:
        fields.setdefault("span", self._spans[-1] if self._spans else None)
        event = Event(seq=len(self.events), kind=kind, **fields)
        self.events.append(event)
        return event

    def span(self, name: str, *, agent: str | None = None, **fields: Any) -> "_Span":
        return _Span(self, self.add("span", name=name, agent=agent, **fields))

    def __iter__(self):
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)


class _Span:
    def __init__(self, log: EventLog, event: Event) -> None:
        self.log, self.event = log, event

    def __enter__(self) -> Event:
        self.log._spans.append(self.event.seq)
        return self.event

    def __exit__(self, *exc: object) -> None:
        self.log._spans.pop()
        self.event.latency_s = time.time() - self.event.started_at


def clip(value: Any, limit: int = EVENT_TEXT_MAX) -> str | None:
    """An event's input or output as the table stores it: text, at most `limit` characters, the cut said."""
    import json

    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    if len(text) <= limit:
        return text
    return text[:limit] + f"... [{len(text) - limit} more characters in the trace]"
