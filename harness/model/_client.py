from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from harness._messages import ToolInfo
from harness._types import Message, ModelOutput

if TYPE_CHECKING:
    from harness._task import Task, TaskState


class ModelClient(Protocol):
    """Anything that answers chat messages, and nothing else: the messages, the tools it may call, the tool
    choice ("auto", "none", "required", or {"type": "function", "function": {"name": ...}}) and the sampling
    settings go in; text, tool calls and a stop reason come out (a ModelOutput, with the call recorded)."""

    name: str

    async def generate(self, messages: list[Message], config: dict[str, Any] | None = None, *,
                       tools: list[ToolInfo] | None = None, tool_choice: Any = None,
                       kind: str = "model") -> ModelOutput: ...

    async def check(self) -> None:
        """Fail fast (UsageError) before any work when the model cannot be used at all."""

    def info(self) -> dict[str, Any]:
        """What is stored with the run: endpoint, limiter settings, client options."""

    async def aclose(self) -> None: ...


@runtime_checkable
class AnswersFromData(Protocol):
    """A stand-in for a model that answers from the benchmark's data (reference: the gold answers; replay: a
    file of responses made elsewhere; mock: a script). It is not asked messages alone: the runner binds it to
    each sample (the solver wrapper), and the bound client answers that sample's requests. Gold answers so
    never flow through a real model's interface."""

    name: str

    def bind(self, state: "TaskState", task: "Task") -> ModelClient: ...
