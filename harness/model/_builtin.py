"""Models that answer from data rather than a network: reference (gold answers), replay (a file of
responses made elsewhere) and mock (scripted, for tests).

None of them is asked messages alone: each is bound to the sample being solved (`bind(state, task)`,
the AnswersFromData protocol), and the bound client answers that sample's requests. Offered a `submit`
tool, a bound client submits its answer with it, so the agentic variants of a suite run the whole agent
loop with the reference model too."""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, NamedTuple

from harness._messages import ChatMessageAssistant, ToolCall, ToolInfo
from harness._registry import UsageError
from harness._types import InfraError, Message, ModelCall, ModelOutput

if TYPE_CHECKING:
    from harness._task import Task, TaskState

SUBMIT_TOOL = "submit"
# what a bound client is given for each request (messages, tools offered) -> its reply
Answer = Callable[[list[Message], list[ToolInfo]], "str | ChatMessageAssistant"]


class _Offline:
    name: str

    async def check(self) -> None:
        return None

    def info(self) -> dict[str, Any]:
        return {"endpoint": None}

    async def aclose(self) -> None:
        return None


class BoundAnswers(_Offline):
    """A data-answering model bound to one sample: a ModelClient whose replies come from `answer`. A text reply
    offered a `submit` tool is sent as a call of it (`{"answer": text}`)."""

    def __init__(self, name: str, answer: Answer, *, latency: float = 0.0,
                 raw: Callable[[], dict[str, Any] | None] = lambda: None):
        self.name, self._answer, self._latency, self._raw = name, answer, latency, raw
        self._calls = 0

    async def generate(self, messages: list[Message], config: dict[str, Any] | None = None, *,
                       tools: list[ToolInfo] | None = None, tool_choice: Any = None,
                       kind: str = "model") -> ModelOutput:
        if self._latency:
            await asyncio.sleep(self._latency)
        config = config or {}
        call = ModelCall(kind=kind, model=self.name, messages=list(messages), config=config, started_at=time.time(),
                         tools=[t.model_dump() for t in tools] if tools else None,
                         tool_choice=tool_choice if tools else None)  # as the OpenAI client sends it
        reply = self._answer(list(messages), list(tools or []))
        self._calls += 1
        if isinstance(reply, str):
            tool_calls = []
            if any(t.name == SUBMIT_TOOL for t in tools or []) and tool_choice != "none":
                tool_calls = [ToolCall(id=f"call_{self._calls}", function=SUBMIT_TOOL, arguments={"answer": reply},
                                       raw=json.dumps({"answer": reply}))]
                reply = ChatMessageAssistant(content="", tool_calls=tool_calls)
            else:
                reply = ChatMessageAssistant(content=reply)
        call.text, call.tool_calls = reply.text, list(reply.tool_calls or [])
        call.stop_reason = "tool_calls" if call.tool_calls else "stop"
        call.raw = self._raw()
        return ModelOutput(text=call.text, call=call, tool_calls=call.tool_calls, stop_reason=call.stop_reason)


class ReferenceModel(_Offline):
    """Answers each sample with its gold answer in the task's response format (Task.reference_answer): a
    suite that scores less than 100% with it has a bug in its loader, extraction or scoring."""

    name = "reference"

    def bind(self, state: "TaskState", task: "Task") -> BoundAnswers:
        sample = state.sample

        def answer(messages: list[Message], tools: list[ToolInfo]) -> str:
            if sample.target is None:
                raise InfraError(f"sample {sample.id} has no gold answer (hidden split?)")
            return task.reference_answer(state)

        return BoundAnswers(self.name, answer)


class ReplayRow(NamedTuple):
    """One response of a replay file. `format` says what the text is, for the task's scorer: "response"
    (what a model answered, the generic format) or a name a suite's reader gives its own upstream
    formats (EvalPlus: "solution", a whole program; "completion", a continuation of the prompt)."""

    sample_id: str
    epoch: int | None  # None: the next epoch this sample has no response for, in file order
    response: str
    format: str = "response"
    line: int | None = None  # where in the file, for messages and the trace


def replay_format(output: ModelOutput | None) -> str:
    """The `format` of the replay row that answered (ReplayModel records it on the call), else
    "response": what every other model gives."""
    raw = output.call.raw if output is not None else None
    replay = raw.get("replay") if isinstance(raw, dict) else None
    return replay.get("format", "response") if isinstance(replay, dict) else "response"


def _generic_row(row: dict[str, Any]) -> ReplayRow:
    sid, epoch, response = row.get("sample_id"), row.get("epoch"), row.get("response")
    if not isinstance(sid, (str, int)) or isinstance(sid, bool):
        raise ValueError(f"sample_id must be a string or an integer, not {json.dumps(sid)[:40]}")
    if epoch is not None and (not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0):
        raise ValueError(f"epoch must be an integer >= 0, not {json.dumps(epoch)[:40]}")
    if "response" not in row:
        raise ValueError('no "response"')
    if not isinstance(response, str):
        raise ValueError(f"response must be a string, not {type(response).__name__}")
    return ReplayRow(str(sid), epoch, response)


def read_replay_jsonl(path: Path, upstream: Callable[[dict[str, Any]], ReplayRow] | None = None,
                      expected: str = '{"sample_id": ..., "response": ...}') -> Iterator[ReplayRow]:
    """The generic replay format, JSON Lines of {"sample_id", "response"[, "epoch"]}; rows without a
    sample_id go to `upstream`, a suite's reader for its own upstream format, which raises ValueError
    (or KeyError, TypeError) for a row it cannot read. A bad line is a UsageError naming file and line."""
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
                if not line.strip():
                    continue
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError(f"a JSON {type(row).__name__}, not an object")
                got = _generic_row(row) if upstream is None or "sample_id" in row else ReplayRow(*upstream(row))
            except (ValueError, KeyError, TypeError) as e:  # JSONDecodeError, UnicodeDecodeError are ValueErrors
                why = f"no {e}" if isinstance(e, KeyError) else str(e)
                raise UsageError(f"{path}:{lineno}: not a replay record ({why}); expected {expected}") from None
            yield got._replace(line=lineno)


class ReplayModel(_Offline):
    """Scores responses generated elsewhere. A task may read its upstream formats too
    (Task.read_replay); the generic JSON Lines format works for every task. The runner calls
    `prepare(task)` before the run exists, so a bad or ambiguous file fails up front."""

    def __init__(self, path: str):
        self.path = Path(path).expanduser()
        if not self.path.exists():  # a file, or a folder a suite's reader knows (GeoJSEval's response files)
            raise UsageError(f"replay file {path!r} does not exist")
        self.name = f"replay:{self.path.name}"
        self._responses: dict[str, dict[str, dict[int, ReplayRow]]] = {}

    def info(self) -> dict[str, Any]:
        from harness._dataset import content_hash

        return {"endpoint": None, "replay_file": str(self.path.resolve()), "sha256": content_hash(self.path)}

    def prepare(self, task: "Task") -> None:
        """Read the file for this task: sample id -> epoch -> row. Rows without an epoch take the lowest
        epoch their sample has no row for yet, in file order, so n responses per problem (EvalPlus
        samples for pass@k) replay as n epochs; two rows for one (sample, epoch) are refused."""
        if task.name in self._responses:
            return
        table: dict[str, dict[int, ReplayRow]] = {}
        duplicates = []
        try:
            for n, got in enumerate((task.read_replay or read_replay_jsonl)(self.path), 1):
                row = ReplayRow(*got)
                if row.line is None:  # a reader of a format without lines: the record's place in the file
                    row = row._replace(line=n)
                by_epoch = table.setdefault(row.sample_id, {})
                epoch = row.epoch
                if epoch is None:
                    epoch = next(e for e in range(len(by_epoch) + 1) if e not in by_epoch)
                if epoch in by_epoch:
                    duplicates.append(f"{row.sample_id!r} epoch {epoch} (lines {by_epoch[epoch].line} "
                                      f"and {row.line})")
                    continue
                by_epoch[epoch] = row
        except UsageError:
            raise
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise UsageError(f"{self.path}: not a replay file for {task.name} ({type(e).__name__}: {e})") from None
        if duplicates:
            more = f" and {len(duplicates) - 3} more" if len(duplicates) > 3 else ""
            raise UsageError(f"{self.path}: {len(duplicates)} duplicate row{'s' if len(duplicates) > 1 else ''} for a "
                             f"(sample, epoch) that already has a response: {', '.join(duplicates[:3])}{more}; "
                             f"keep one row per sample and epoch")
        self._responses[task.name] = table

    def bind(self, state: "TaskState", task: "Task") -> BoundAnswers:
        """Each request of the sample is answered with its (sample, epoch) row; a sample without one errors."""
        self.prepare(task)
        sample, epoch = state.sample, state.epoch
        row = self._responses[task.name].get(sample.id, {}).get(epoch)

        def answer(messages: list[Message], tools: list[ToolInfo]) -> str:
            if row is None:
                raise InfraError(f"no response for sample {sample.id} (epoch {epoch}) in {self.path.name}")
            return row.response

        return BoundAnswers(self.name, answer, raw=lambda: {
            "replay": {"file": self.path.name, "line": row.line, "format": row.format}} if row else None)


class MockModel(_Offline):
    """Scripted answers, for tests: a fixed text, or a function of (sample, messages) returning a text or a
    ChatMessageAssistant (with tool calls, to script an agent). Offered tools, the function may take them as a
    third argument. `latency` simulates a slow model."""

    def __init__(self, respond: str | Callable[..., "str | ChatMessageAssistant"] = "", latency: float = 0.0,
                 name: str = "mock"):
        self.respond = respond
        self.latency = float(latency)
        self.name = name

    def bind(self, state: "TaskState | None", task: "Task | None" = None) -> BoundAnswers:
        import inspect

        respond = self.respond
        takes_tools = callable(respond) and len(inspect.signature(respond).parameters) >= 3
        sample = state.sample if state is not None else None

        def answer(messages: list[Message], tools: list[ToolInfo]) -> "str | ChatMessageAssistant":
            if not callable(respond):
                return respond
            return respond(sample, messages, tools) if takes_tools else respond(sample, messages)

        return BoundAnswers(self.name, answer, latency=self.latency)

    async def generate(self, messages: list[Message], config: dict[str, Any] | None = None, **options: Any) -> ModelOutput:
        """Unbound, the script answers messages alone (its sample argument is None)."""
        return await self.bind(None).generate(messages, config, **options)
