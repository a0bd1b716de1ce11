from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from harness._types import Message, ModelOutput, Sample

if TYPE_CHECKING:
    from harness._task import Task


class ModelClient(Protocol):
    """Anything that answers chat messages. `sample` and `task` are given so that the reference and
    replay clients can answer from the data; real models ignore them."""

    name: str

    async def generate(self, messages: list[Message], config: dict[str, Any], *,
                       sample: Sample | None = None, task: "Task | None" = None, epoch: int = 0,
                       kind: str = "model") -> ModelOutput: ...

    async def check(self) -> None:
        """Fail fast (UsageError) before any work when the model cannot be used at all."""

    def info(self) -> dict[str, Any]:
        """What is stored with the run: endpoint, limiter settings, client options."""

    async def aclose(self) -> None: ...
