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
from harness._trajectory import ContextBudget, ContextExceeded, Fault, FaultLabel, Step, Trajectory, TrajectorySample, normalize_agent  # noqa: E402,E501
__all__ += ["ContextBudget", "ContextExceeded", "Fault", "FaultLabel", "Step", "Trajectory", "TrajectorySample", "normalize_agent"]
