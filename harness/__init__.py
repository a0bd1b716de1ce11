"""harness: evaluate LLMs and LLM agents on research benchmarks; every scored trace in SQL.

What a suite author uses: `task` (the registry decorator), `Task`, `Dataset`, `Sample`, `Score`,
`TaskState`, `SolveContext`, the `generate` solver, `Reference` numbers and the metrics."""
from harness._dataset import Dataset, Provenance, read_json_records
from harness._registry import UsageError, get_task, task, task_names
from harness._task import Reference, Scorer, SolveContext, Solver, Task, TaskState, generate
from harness._types import Attempt, InfraError, Message, ModelCall, ModelOutput, Sample, Score
from harness.scoring import Metric, accuracy, mean

__all__ = [
    "Attempt", "Dataset", "InfraError", "Message", "Metric", "ModelCall", "ModelOutput", "Provenance", "Reference",
    "Sample", "Score", "Scorer", "SolveContext", "Solver", "Task", "TaskState", "UsageError", "accuracy", "generate",
    "get_task", "mean", "read_json_records", "task", "task_names",
]
from harness._events import Event, EventLog  # noqa: E402
from harness._messages import (ChatMessage, ChatMessageAssistant, ChatMessageSystem, ChatMessageTool,  # noqa: E402
                               ChatMessageUser, ContentImage, ContentText, ToolCall, ToolError, ToolInfo)
__all__ += ["ChatMessage", "ChatMessageAssistant", "ChatMessageSystem", "ChatMessageTool", "ChatMessageUser",
            "ContentImage", "ContentText", "Event", "EventLog", "ToolCall", "ToolError", "ToolInfo"]
from harness._trajectory import ContextBudget, ContextExceeded, Fault, FaultLabel, Step, Trajectory, TrajectorySample, normalize_agent  # noqa: E402,E501
__all__ += ["ContextBudget", "ContextExceeded", "Fault", "FaultLabel", "Step", "Trajectory", "TrajectorySample", "normalize_agent"]
# the run API: loaded on first use, as it brings the runner and the store (SQLAlchemy); `import harness` stays light
_RUN_API = {"eval": "harness._eval", "eval_async": "harness._eval", "RunResult": "harness._eval",
            "TaskRef": "harness._runner", "compute_metrics": "harness._runner"}
__all__ += list(_RUN_API)


def __getattr__(name: str):
    if name in _RUN_API:
        import importlib

        return getattr(importlib.import_module(_RUN_API[name]), name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
