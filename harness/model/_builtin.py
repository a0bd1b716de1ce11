"""Models that answer from data rather than a network: reference (gold answers), replay (a file of
responses made elsewhere) and mock (scripted, for tests)."""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from harness._registry import UsageError
from harness._types import InfraError, Message, ModelCall, ModelOutput, Sample

if TYPE_CHECKING:
    from harness._task import Task


class _Offline:
    name: str

    async def check(self) -> None:
        return None

    def info(self) -> dict[str, Any]:
        return {"endpoint": None}

    async def aclose(self) -> None:
        return None

    def _output(self, text: str, messages: list[Message], config: dict[str, Any], kind: str) -> ModelOutput:
        call = ModelCall(kind=kind, model=self.name, messages=messages, config=config, text=text, started_at=time.time())
        return ModelOutput(text=text, call=call)


class ReferenceModel(_Offline):
    """Answers each sample with its gold answer in the task's response format: a suite that scores
    less than 100% with it has a bug in its loader, extraction or scoring."""

    name = "reference"

    async def generate(self, messages, config, *, sample=None, task=None, epoch=0, kind="model") -> ModelOutput:
        if sample is None or task is None:
            raise InfraError("the reference model answers only benchmark samples")
        if sample.target is None:
            raise InfraError(f"sample {sample.id} has no gold answer (hidden split?)")
        return self._output(task.reference_response(sample), messages, config, kind)


ReplayRow = tuple[str, "int | None", str]  # sample id, epoch (None: the next one), response


def read_replay_jsonl(path: Path, upstream: Callable[[dict[str, Any]], ReplayRow] | None = None,
                      expected: str = '{"sample_id": ..., "response": ...}') -> Iterator[ReplayRow]:
    """The generic replay format, JSON Lines of {"sample_id", "response"[, "epoch"]}; rows without a
    sample_id go to `upstream`, a suite's reader for its own upstream format."""
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if upstream is None or "sample_id" in row:
                    yield str(row["sample_id"]), row.get("epoch"), row["response"]
                else:
                    yield upstream(row)
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise UsageError(f"{path}:{lineno}: not a replay record ({type(e).__name__}: {e}); "
                                 f"expected {expected}") from None


class ReplayModel(_Offline):
    """Scores responses generated elsewhere. A task may read its upstream formats too
    (Task.read_replay); the generic JSON Lines format works for every task."""

    def __init__(self, path: str):
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise UsageError(f"replay file {path!r} does not exist")
        self.name = f"replay:{self.path.name}"
        self._responses: dict[str, dict[str, dict[int, str]]] = {}

    def info(self) -> dict[str, Any]:
        from harness._dataset import content_hash

        return {"endpoint": None, "replay_file": str(self.path.resolve()), "sha256": content_hash(self.path)}

    def _table(self, task: "Task") -> dict[str, dict[int, str]]:
        """sample id -> epoch -> response; rows without an epoch fill epochs 0, 1, ... in file order,
        so n responses per problem (EvalPlus samples for pass@k) replay as n epochs."""
        if task.name not in self._responses:
            table: dict[str, dict[int, str]] = {}
            for sid, epoch, resp in (task.read_replay or read_replay_jsonl)(self.path):
                by_epoch = table.setdefault(sid, {})
                by_epoch[len(by_epoch) if epoch is None else int(epoch)] = resp
            self._responses[task.name] = table
        return self._responses[task.name]

    async def generate(self, messages, config, *, sample=None, task=None, epoch=0, kind="model") -> ModelOutput:
        if sample is None or task is None:
            raise InfraError("the replay model answers only benchmark samples")
        text = self._table(task).get(sample.id, {}).get(epoch)
        if text is None:
            raise InfraError(f"no response for sample {sample.id} (epoch {epoch}) in {self.path.name}")
        return self._output(text, messages, config, kind)


class MockModel(_Offline):
    """Scripted answers: a fixed text, or a function of (sample, messages). `latency` simulates a slow model."""

    def __init__(self, respond: str | Callable[[Sample | None, list[Message]], str] = "", latency: float = 0.0,
                 name: str = "mock"):
        self.respond = respond
        self.latency = float(latency)
        self.name = name

    async def generate(self, messages, config, *, sample=None, task=None, epoch=0, kind="model") -> ModelOutput:
        if self.latency:
            await asyncio.sleep(self.latency)
        text = self.respond(sample, messages) if callable(self.respond) else self.respond
        return self._output(text, messages, config, kind)
