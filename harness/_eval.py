"""`harness.eval(tasks, model, **options) -> RunResult`: the one way a run starts. The CLI's `harness eval`, the
nightly job, `harness rescore` and the tests all come through here; its options are `harness eval`'s flags."""
from __future__ import annotations

import asyncio
import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Union

from harness._registry import UsageError
from harness._task import Task

if TYPE_CHECKING:
    from harness._runner import EvalPlan, TaskProgress, TaskRef
    from harness.model import ModelClient
    from harness.store import SampleResult, Store

__all__ = ["RunResult", "eval", "eval_async", "plan_options"]

# a task: "name", "name@variant", a TaskRef (or any object or dict with name / variant / args), or a built Task
TaskSpec = Union[str, "TaskRef", dict, Task, Any]


@dataclass
class RunResult:
    """What a finished (or resumed) run left in the store."""

    run_id: str
    status: str  # "finished" here; a run that stops raises instead of returning
    metrics: dict[str, dict[str, Any]]  # task label ("name" or "name@variant") -> metrics as stored
    store_url: str
    store: "Store" = field(repr=False)

    def samples(self, task: str | None = None) -> list[dict[str, Any]]:
        """The stored sample rows (as `harness.store.Store.samples` gives them), of one task by label or of all,
        each with its task's label under "task"."""
        if task is not None and task not in self.metrics:
            raise UsageError(f"run {self.run_id} has no task {task!r}; it has: {', '.join(self.metrics)}")
        rows = []
        for rt in self.store.run_tasks(self.run_id):
            label = rt["task"] if rt["variant"] == "default" else f"{rt['task']}@{rt['variant']}"
            if task is None or task == label:
                rows += [{**r, "task": label} for r in self.store.samples(rt["id"])]
        return rows


def eval(tasks: TaskSpec | Iterable[TaskSpec] | None = None, model: "str | ModelClient | None" = None,
         **options: Any) -> RunResult:
    """Run `model` on `tasks` and return what the store holds; see `eval_async` for the options. From code that
    already runs an event loop (an async test, a notebook), await `eval_async` instead."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(eval_async(tasks, model, **options))
    raise UsageError("harness.eval() was called inside a running event loop; use `await harness.eval_async(...)`")


async def eval_async(
    tasks: TaskSpec | Iterable[TaskSpec] | None = None,
    model: "str | ModelClient | None" = None,
    *,
    db: "str | Store | None" = None,
    task_args: dict[str, Any] | None = None,
    variant: str | None = None,
    data: str | None = None,
    limit: int | None = None,
    sample_ids: list[str] | None = None,
    epochs: int | None = None,
    max_samples: int | None = None,
    seed: int | None = None,
    judges: "dict[str, str | ModelClient] | str | ModelClient | None" = None,
    judge_base_url: str | None = None,
    sandbox: str | None = None,
    allow_unsafe: bool | None = None,
    model_args: dict[str, Any] | None = None,
    base_url: str | None = None,
    model_name: str | None = None,
    resume: str | None = None,
    command: str = "",
    on_run_start: Callable[[str], None] | None = None,
    on_task_start: "Callable[[TaskProgress], None] | None" = None,
    on_sample_done: "Callable[[str, SampleResult], None] | None" = None,
    executor: Any = None,
) -> RunResult:
    """Run `model` on `tasks`; each sample is scored and committed as it finishes.

    tasks: a name, "name@variant", a TaskRef-like (name, variant, args), a built `Task` (run as given: its
    solver and scorers; a resume rebuilds it from the registry), or a list of these. `task_args` (-T) and
    `variant` (--variant) apply to every task given by name. model: a spec (`openai/gpt-4o-mini`, `reference`,
    `replay:answers.jsonl`, ...; `harness.model.model_forms()` lists them) or a ModelClient instance.
    judges: {role: spec or client} (a repeated role is written role#2, ...), or one spec or client for every
    judge. db: a SQLAlchemy URL or a `Store` (default: the user's database). resume: a run id; the run's
    stored plan supplies every option not given here, and only samples without a finished row are done.
    executor: None runs the samples here; a `harness._worker.SlurmExecutor` queues them in the store (PostgreSQL)
    for Slurm workers and returns once the job is submitted (status "running").
    The other options are `harness eval`'s flags; the callbacks are those its progress display uses."""
    from harness._runner import EvalPlan, Runner
    from harness.model import get_model
    from harness.store import Store

    store = db if isinstance(db, Store) else Store(db, create=resume is None)
    stored: dict[str, Any] = {}
    if resume is not None:
        run = store.get_run(resume)
        if run is None:
            raise UsageError(f"no run {resume!r} in {store.url}; `harness runs` lists them")
        resume, stored = run["id"], EvalPlan.from_json(run["plan"]).__dict__
    elif tasks is None or model is None:
        raise UsageError("harness.eval needs tasks and a model (or resume=RUN_ID)")

    def pick(name: str, given: Any, default: Any = None) -> Any:
        return given if given is not None else stored.get(name, default)

    built: dict[int, Task] = {}
    refs = _task_refs(tasks, task_args or {}, variant, built) if tasks is not None else stored["tasks"]
    spec = model if isinstance(model, str) else stored.get("model") or _client_name(model, model_name)
    base_url = pick("base_url", base_url)
    model_args = pick("model_args", model_args, {})
    sandbox = pick("sandbox", sandbox, "auto")
    allow_unsafe = pick("allow_unsafe", allow_unsafe, False)
    check_sandbox(sandbox, allow_unsafe)
    client = model if model is not None and not isinstance(model, str) else \
        get_model(spec, base_url=base_url, args=model_args, db_url=store.url)
    given_judges = _judges(judges) if judges is not None else dict(stored.get("judges") or {})
    judge_base_url = pick("judge_base_url", judge_base_url) or base_url
    # judges named by spec are built here, not by Runner, so that they get the run's store (replay-run:RUN)
    judge_clients = {role: get_model(j, base_url=judge_base_url, db_url=store.url) if isinstance(j, str) else j
                     for role, j in given_judges.items()}
    plan = EvalPlan(
        model=spec, tasks=refs, base_url=base_url, model_args=model_args, data=pick("data", data, "hub"),
        limit=pick("limit", limit), sample_ids=pick("sample_ids", sample_ids), epochs=pick("epochs", epochs, 1),
        max_samples=pick("max_samples", max_samples), seed=pick("seed", seed),
        # stored as each judge's spec or, for a client, its name
        judges={role: j if isinstance(j, str) else _client_name(judge_clients[role], None)
                for role, j in given_judges.items()},
        judge_base_url=judge_base_url, sandbox=sandbox,
        allow_unsafe=allow_unsafe, model_name=pick("model_name", model_name))
    runner = Runner(plan, store, model=client, run_id=resume, command=command, on_run_start=on_run_start,
                    on_task_start=on_task_start, on_sample_done=on_sample_done, executor=executor, judges=judge_clients)
    for i, task in built.items():
        runner.tasks[i] = task
    run_id = await runner.run()
    labels = {(t["task"], t["variant"]): t["metrics"] for t in store.run_tasks(run_id)}
    return RunResult(run_id=run_id, status=store.get_run(run_id)["status"],
                     metrics={r.label: labels.get((r.name, r.variant)) for r in plan.tasks}, store_url=store.url,
                     store=store)


def _task_refs(tasks: TaskSpec | Iterable[TaskSpec], task_args: dict[str, Any], variant: str | None,
               built: dict[int, Task]) -> list["TaskRef"]:
    from harness._runner import TaskRef

    items = [tasks] if isinstance(tasks, (str, dict, Task)) or hasattr(tasks, "name") else list(tasks)
    if not items:
        raise UsageError("harness.eval got an empty list of tasks; name at least one")
    refs = []
    for i, item in enumerate(items):
        if isinstance(item, Task):
            built[i] = item
            refs.append(TaskRef(item.name, item.variant, dict(item.args)))
        elif isinstance(item, str):
            name, _, var = item.partition("@")
            refs.append(TaskRef(name, var or variant or "default", dict(task_args)))
        elif isinstance(item, dict):
            refs.append(TaskRef(item["name"], item.get("variant") or "default", dict(item.get("args") or {})))
        elif hasattr(item, "name"):
            refs.append(TaskRef(item.name, getattr(item, "variant", None) or "default",
                                dict(getattr(item, "args", None) or {})))
        else:
            raise UsageError(f"harness.eval: a task is a name, 'name@variant', a TaskRef or a Task, not "
                             f"{type(item).__name__}")
    return refs


def _judges(judges: Any) -> dict[str, Any]:
    if judges is None:
        return {}
    if isinstance(judges, dict):
        return dict(judges)
    return {"default": judges}  # one judge for every role


def _client_name(client: Any, model_name: str | None) -> str:
    """What a run calls a model given as an instance: --model-name, else its own name."""
    return model_name or getattr(client, "name", None) or type(client).__name__


def check_sandbox(name: str, allow_unsafe: bool) -> None:
    """The sandbox is checked by name before any task runs, whether or not a task of the run needs one."""
    from harness.sandboxes import UNSAFE, backend_names

    names = backend_names()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(f"--sandbox {name!r} is not a sandbox{hint}; use one of: {', '.join(names)}")
    if name == UNSAFE and not allow_unsafe:
        raise UsageError(f"--sandbox {UNSAFE} runs model-written code on this host without isolation; it also needs "
                         "--i-understand-this-runs-untrusted-code-unsandboxed (allow_unsafe=True)")


def plan_options(plan: "EvalPlan") -> dict[str, Any]:
    """eval's options that reproduce `plan` exactly (so its stored JSON compares equal: nightly's resume)."""
    return {"tasks": plan.tasks, "model": plan.model, "base_url": plan.base_url, "model_args": plan.model_args,
            "data": plan.data, "limit": plan.limit, "sample_ids": plan.sample_ids, "epochs": plan.epochs,
            "max_samples": plan.max_samples, "seed": plan.seed, "judges": plan.judges,
            "judge_base_url": plan.judge_base_url, "sandbox": plan.sandbox, "allow_unsafe": plan.allow_unsafe,
            "model_name": plan.model_name}

