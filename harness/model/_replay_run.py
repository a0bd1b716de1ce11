"""`--model replay-run:RUN_ID`: answer every model request of a new run from a run stored before.

Each stored call carries its `request_key` (harness._types.request_key: a hash of the messages as sent, the tools,
the tool choice and the settings). Before any work (`check`) the stored run's traces are read and every call is
indexed by (kind, key); a request is answered with the stored call's text, tool calls, stop reason and token counts,
so an agent run is re-scored, or its tools re-executed, offline and bit for bit. A request the stored run never made
is an InfraError saying where it diverged: never a made-up answer.

Decisions:
- Order. Bound to a sample (the runner binds it, AnswersFromData), a request is answered from that same sample and
  epoch of the stored run (same task and variant), and identical requests within it answer in their stored order.
  So epochs and repeated prompts replay exactly, whatever order concurrent samples run in (each binding replays
  its sample from the start). Unbound (a judge, a direct caller), identical requests anywhere in the run form one
  queue in stored order (task, sample, epoch).
- Exhausted. A request asked more often than the stored run asked it is a miss, not the last answer again: asking
  again means the new run has diverged, and repeating an answer could keep an agent looping until a limit.
- Judges. The kind is part of the key: a judge request (kind "judge") is answered only from stored judge calls,
  a model request only from model calls. `--judge-model replay-run:RUN` so replays a run's judges as well.
- Failures. A stored call that failed replays as the same failure: a context-length rejection as
  ContextLengthExceeded (the model's limit, scored as before), anything else as an InfraError quoting it.
"""
from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness._messages import ToolCall, ToolInfo
from harness._registry import UsageError
from harness._types import (ContextLengthExceeded, InfraError, Message, ModelCall, ModelOutput, dump_messages,
                            request_key)

if TYPE_CHECKING:
    from harness._task import Task, TaskState

Scope = tuple[str, str, str, int]  # (task, variant, sample id, epoch) of a stored sample


@dataclass
class _Shape:
    """What a request looked like, kept to say where a missed request departs from the stored one: a hash per
    message (of its stored JSON), the tools', the tool choice and the settings. Hashes, so that the index stays
    small when every call of a long agent run resends the whole conversation."""

    messages: list[int]
    roles: list[str]
    tools: int
    tool_choice: str
    config: dict[str, Any]

    @classmethod
    def of(cls, messages: list[dict[str, Any]], tools: Any, tool_choice: Any, config: dict[str, Any]) -> "_Shape":
        return cls([hash(_canonical(m)) for m in messages], [str(m.get("role")) for m in messages],
                   hash(_canonical(tools)), _canonical(tool_choice), dict(config or {}))

    def difference(self, stored: "_Shape") -> str:
        for i, (now, then) in enumerate(zip(self.messages, stored.messages)):
            if now != then:
                return f"message {i + 1} ({self.roles[i]}) differs from the stored call's"
        if len(self.messages) != len(stored.messages):
            return (f"its first {min(len(self.messages), len(stored.messages))} messages match, but it has "
                    f"{len(self.messages)} where the stored call has {len(stored.messages)}")
        parts = []
        if self.tools != stored.tools:
            parts.append("the tools offered")
        if self.tool_choice != stored.tool_choice:
            parts.append("the tool choice")
        keys = sorted(k for k in self.config.keys() | stored.config.keys()
                      if _canonical(self.config.get(k)) != _canonical(stored.config.get(k)))
        if keys:
            parts.append(f"the settings ({', '.join(keys)})")
        if parts:
            return f"{' and '.join(parts)} differ from the stored call's"
        return "its messages, tools and settings match the stored call's, so an image it sends must have changed"


@dataclass
class _Stored:
    """One stored call's answer and where it was made (its scope and its position among the scope's calls)."""

    scope: Scope
    index: int
    text: str | None
    tool_calls: list[dict[str, Any]]
    stop_reason: str | None
    input_tokens: int | None
    output_tokens: int | None
    error: str | None


@dataclass
class _Index:
    run_id: str
    calls: int = 0
    scoped: dict[tuple[Scope, str, str], list[_Stored]] = field(default_factory=dict)  # (scope, kind, key)
    anywhere: dict[tuple[str, str], deque[_Stored]] = field(default_factory=dict)  # (kind, key), stored order
    shapes: dict[tuple[Scope, str], list[_Shape]] = field(default_factory=dict)  # (scope, kind) -> call shapes


class ReplayRunModel:
    """Answers requests from the stored run `run_id` (a unique prefix is enough) of the database `db_url`."""

    def __init__(self, run_id: str, *, db_url: str | None = None):
        if not run_id:
            raise UsageError("replay-run needs a run id: --model replay-run:RUN_ID (`harness runs` lists them)")
        self.run_id = run_id
        self.db_url = db_url
        self.name = f"replay-run:{run_id}"
        self._index: _Index | None = None

    async def check(self) -> None:
        if self._index is None:
            self._index = self._load()

    def _load(self) -> _Index:
        from harness.store import Store

        store = Store(self.db_url, create=False)
        try:
            run = store.get_run(self.run_id)
            if run is None:
                raise UsageError(f"replay-run: no run {self.run_id!r} in the database; `harness runs` lists them "
                                 f"(or point --db at the database that has it)")
            index = _Index(run["id"])
            unkeyed = 0
            for row in store.run_traces(run["id"]):
                scope: Scope = (row["task"], row["variant"], row["sample_id"], row["epoch"])
                for call in row["trace"].get("calls") or []:
                    key = call.get("request_key")
                    if key is None:
                        unkeyed += 1
                        continue
                    kind = call.get("kind") or "model"
                    shapes = index.shapes.setdefault((scope, kind), [])
                    stored = _Stored(scope, len(shapes), call.get("text"), call.get("tool_calls") or [],
                                     call.get("stop_reason"), call.get("input_tokens"), call.get("output_tokens"),
                                     call.get("error"))
                    shapes.append(_Shape.of(call.get("messages") or [], call.get("tools"), call.get("tool_choice"),
                                            call.get("config") or {}))
                    index.scoped.setdefault((scope, kind, key), []).append(stored)
                    index.anywhere.setdefault((kind, key), deque()).append(stored)
                    index.calls += 1
        finally:
            store.close()
        if unkeyed:
            raise UsageError(f"replay-run: run {index.run_id} was stored before model requests were keyed ({unkeyed} "
                             f"of its calls have no request_key), so it cannot be replayed; run it again to replay it")
        if not index.calls:
            raise UsageError(f"replay-run: run {index.run_id} has no stored model calls to answer from")
        return index

    def info(self) -> dict[str, Any]:
        index = self._loaded()
        return {"endpoint": None, "replay_run": index.run_id, "calls_indexed": index.calls}

    async def aclose(self) -> None:
        return None

    def bind(self, state: "TaskState", task: "Task") -> "_BoundReplay":
        return _BoundReplay(self, (task.name, task.variant, state.sample.id, state.epoch))

    async def generate(self, messages: list[Message], config: dict[str, Any] | None = None, *,
                       tools: list[ToolInfo] | None = None, tool_choice: Any = None,
                       kind: str = "model") -> ModelOutput:
        return self._answer(None, messages, config, tools, tool_choice, kind)

    def _loaded(self) -> _Index:
        if self._index is None:
            raise RuntimeError("ReplayRunModel.check() reads the stored run; it must run before any request")
        return self._index

    def _answer(self, bound: "_BoundReplay | None", messages: list[Message], config: dict[str, Any] | None,
                tools: list[ToolInfo] | None, tool_choice: Any, kind: str) -> ModelOutput:
        index = self._loaded()
        config = config or {}
        # what OpenAICompatible sends, and so what the stored call was keyed on: no tool choice without tools
        schemas = [t.model_dump() for t in tools] if tools else None
        choice = tool_choice if schemas else None
        key = request_key(messages, schemas, choice, config)
        if bound is not None:
            stored = bound.take(index, kind, key)
        else:
            queue = index.anywhere.get((kind, key))
            stored = queue.popleft() if queue else None
        if stored is None:
            raise InfraError(self._miss(index, bound, messages, schemas, choice, config, kind, key))
        call = ModelCall(kind=kind, model=self.name, messages=list(messages), config=config, tools=schemas,
                         tool_choice=choice, text=stored.text,
                         tool_calls=[ToolCall.model_validate(c) for c in stored.tool_calls],
                         stop_reason=stored.stop_reason, input_tokens=stored.input_tokens,
                         output_tokens=stored.output_tokens, started_at=time.time(), error=stored.error,
                         raw={"replay_run": {"run": index.run_id, "key": key, "task": stored.scope[0],
                                             "variant": stored.scope[1], "sample_id": stored.scope[2],
                                             "epoch": stored.scope[3], "call": stored.index}})
        if stored.error is not None:
            from harness.model._openai import CONTEXT_LENGTH_MARKERS

            said = f"the stored run's call for this request failed: {stored.error}"
            if any(m in stored.error.lower() for m in CONTEXT_LENGTH_MARKERS):
                raise ContextLengthExceeded(said, call)
            raise InfraError(said, call)
        return ModelOutput(text=stored.text or "", call=call, tool_calls=call.tool_calls,
                           stop_reason=stored.stop_reason or "stop")

    def _miss(self, index: _Index, bound: "_BoundReplay | None", messages: list[Message],
              tools: Any, tool_choice: Any, config: dict[str, Any], kind: str, key: str) -> str:
        """One line: which request (sample, epoch, call number, how many messages) and how it departs."""
        head = f"replay-run {index.run_id}: the request diverged from the stored run"
        if bound is None:
            asked = f"a {kind} call with {len(messages)} messages"
            if (kind, key) in index.anywhere:  # stored, and every stored answer given already
                return f"{head}: {asked} was asked more often than the stored run asked it (each answer is given once)"
            return f"{head}: {asked} matches no stored {kind} call (key {key[:12]})"
        scope, position = bound.scope, bound.asked[kind] - 1
        task, variant, sample_id, epoch = scope
        where = f"sample {sample_id!r} epoch {epoch} of {task}" + ("" if variant == "default" else f"@{variant}")
        asked = f"{where}, {kind} call {position + 1} ({len(messages)} messages)"
        times = len(index.scoped.get((scope, kind, key), ()))
        if times:
            return f"{head}: {asked} was asked more often than the {times} time(s) the stored sample asked it"
        shapes = index.shapes.get((scope, kind), [])
        if not shapes:
            elsewhere = next((s.scope for s in index.anywhere.get((kind, key), ())), None)
            also = f"; this request is stored for sample {elsewhere[2]!r} epoch {elsewhere[3]}" if elsewhere else ""
            return f"{head}: the stored run has no {kind} calls for {where}{also}"
        if position >= len(shapes):
            return f"{head}: {asked}, but the stored sample made only {len(shapes)} {kind} call(s)"
        now = _Shape.of(dump_messages(messages), tools, tool_choice, config)
        return f"{head}: {asked}: {now.difference(shapes[position])}"


class _BoundReplay:
    """The replay answering one sample: its requests are looked up among that stored sample's calls, each binding
    from the sample's start (its own cursors; concurrent samples share nothing that changes)."""

    def __init__(self, parent: ReplayRunModel, scope: Scope):
        self.parent, self.scope, self.name = parent, scope, parent.name
        self.asked: dict[str, int] = {}  # kind -> calls made so far, to compare a miss with the stored call there
        self._taken: dict[tuple[str, str], int] = {}  # (kind, key) -> how many of its stored answers were given

    def take(self, index: _Index, kind: str, key: str) -> _Stored | None:
        answers = index.scoped.get((self.scope, kind, key), [])
        taken = self._taken.get((kind, key), 0)
        if taken >= len(answers):
            return None
        self._taken[kind, key] = taken + 1
        return answers[taken]

    async def check(self) -> None:
        return None

    def info(self) -> dict[str, Any]:
        return self.parent.info()

    async def aclose(self) -> None:
        return None

    async def generate(self, messages: list[Message], config: dict[str, Any] | None = None, *,
                       tools: list[ToolInfo] | None = None, tool_choice: Any = None,
                       kind: str = "model") -> ModelOutput:
        self.asked[kind] = self.asked.get(kind, 0) + 1
        return self.parent._answer(self, messages, config, tools, tool_choice, kind)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
