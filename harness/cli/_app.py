from __future__ import annotations

import json
import os
import sys
from typing import Annotated, Any, Optional

import typer

from harness._registry import UsageError

app = typer.Typer(
    help="Evaluate LLMs and agents on research benchmarks; every scored trace goes to SQL.",
    no_args_is_help=True, add_completion=False, rich_markup_mode="rich", pretty_exceptions_enable=False,
)

DbOpt = Annotated[Optional[str], typer.Option(
    "--db", envvar="HARNESS_DB_URL", show_envvar=True,
    help="SQLAlchemy URL of the store. Default: sqlite:///~/.local/share/harness/harness.db ($XDG_DATA_HOME honoured).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output (the same numbers as the table).")]


def _pairs(values: list[str] | None, flag: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} takes key=value, got {item!r}")
        try:
            out[key] = json.loads(value)  # numbers, booleans, lists
        except json.JSONDecodeError:
            out[key] = value
    return out


def _judges(values: list[str] | None) -> dict[str, str]:
    judges: dict[str, str] = {}
    for item in values or []:
        role, sep, spec = item.partition("=")
        if not (sep and "/" not in role and ":" not in role):
            role, spec = "default", item
        key, n = role, 1
        while key in judges:  # a repeated role is a panel of judges that vote (harness.judge.panel)
            n += 1
            key = f"{role}#{n}"
        judges[key] = spec
    return judges


@app.command("eval")
def eval_(
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="openai/<model>, vllm-server/<model>, reference, replay:<path> or mock.")] = None,
    task: Annotated[Optional[list[str]], typer.Option("--task", "-t", help="Task name, or name@variant. Repeat for several.")] = None,
    variant: Annotated[Optional[str], typer.Option(help="Variant for every task given without @variant (see `harness tasks`).")] = None,
    task_arg: Annotated[Optional[list[str]], typer.Option("-T", help="Task argument key=value (e.g. -T few_shot=1).")] = None,
    model_arg: Annotated[Optional[list[str]], typer.Option("-M", help="Sampling setting or client option key=value: temperature, max_tokens, top_p, seed, ...; max_connections, max_retries, timeout.")] = None,
    base_url: Annotated[Optional[str], typer.Option(envvar="OPENAI_BASE_URL", help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1. The key comes from OPENAI_API_KEY.")] = None,
    data: Annotated[str, typer.Option(help="'hub' (the pinned HF dataset), 'hub:REPO_OR_FOLDER' (a mirror of it), 'bundled' (the small real sample shipped with the suite) or a local file/folder in the upstream format.")] = "hub",
    limit: Annotated[Optional[int], typer.Option(help="Only the first N samples of each task.")] = None,
    sample_id: Annotated[Optional[list[str]], typer.Option("--sample-id", help="Only these sample ids. Repeatable.")] = None,
    epochs: Annotated[int, typer.Option(min=1, help="Samples per problem (pass@k uses them).")] = 1,
    max_samples: Annotated[Optional[int], typer.Option(min=1, help="Samples in flight at once. Default: the endpoint's max_connections (64).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Sent as the sampling seed; recorded with the run.")] = None,
    judge_model: Annotated[Optional[list[str]], typer.Option("--judge-model", help="Judge model for LLM-judged tasks: MODEL for every judge, or ROLE=MODEL for one of a task's judges. Repeatable.")] = None,
    judge_base_url: Annotated[Optional[str], typer.Option(help="OpenAI-compatible endpoint for the judges (default: the evaluated model's).")] = None,
    sandbox: Annotated[str, typer.Option(help="Where model-written code runs: docker, bwrap or auto (docker if a daemon answers, else bwrap).")] = "auto",
    unsafe: Annotated[bool, typer.Option("--i-understand-this-runs-untrusted-code-unsandboxed", help="Run model-written code as a plain host process (with --sandbox none-UNSAFE). Never on a machine you care about.")] = False,
    resume: Annotated[Optional[str], typer.Option(help="Continue run RUN: only samples without a finished row are done.")] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a model on tasks; each sample is scored and committed as it finishes.

    Example: harness eval --model reference --task cipherbank --data bundled
    """
    import asyncio

    from harness._runner import EvalPlan, Runner, TaskRef
    from harness.cli._progress import Progress
    from harness.store import Store

    store = Store(db)
    if resume:
        run = store.get_run(resume)
        if run is None:
            raise UsageError(f"no run {resume!r} in {store.url}; `harness runs` lists them")
        if model or task:
            raise UsageError("--resume continues a run as it was planned; drop --model/--task")
        plan, run_id = EvalPlan.from_json(run["plan"]), run["id"]
    else:
        if not model or not task:
            raise UsageError("give --model and at least one --task (or --resume RUN); see `harness eval --help`")
        refs = []
        for spec in task:
            name, _, var = spec.partition("@")
            refs.append(TaskRef(name, var or variant or "default", _pairs(task_arg, "-T")))
        plan = EvalPlan(model=model, tasks=refs, base_url=base_url, model_args=_pairs(model_arg, "-M"), data=data,
                        limit=limit, sample_ids=sample_id, epochs=epochs, max_samples=max_samples, seed=seed,
                        judges=_judges(judge_model), judge_base_url=judge_base_url or base_url, sandbox=sandbox,
                        allow_unsafe=unsafe)
        run_id = None
    progress = Progress(enabled=not as_json and sys.stderr.isatty() or os.environ.get("HARNESS_PROGRESS") == "1")

    def announce(run: str) -> None:
        if not as_json:
            progress.console.print(f"[bold]run {run}[/] · model {plan.model} · db {store.url}", highlight=False,
                                   soft_wrap=True)

    runner = Runner(plan, store, run_id=run_id, command=" ".join(["harness", *sys.argv[1:]]), on_run_start=announce,
                    on_task_start=progress.task_started, on_sample_done=progress.sample_done)
    try:
        with progress:
            asyncio.run(runner.run())
    except KeyboardInterrupt:
        print(f"\ninterrupted; finished samples are saved. Continue with: harness eval --resume {runner.run_id}"
              + (f" --db {db}" if db else ""), file=sys.stderr)
        raise typer.Exit(130)
    from harness.cli._render import print_run

    print_run(store, runner.run_id, as_json=as_json)


@app.command("tasks")
def tasks_(as_json: JsonOpt = False) -> None:
    """List the registered suites: version, data source and revision, sample counts, variants."""
    from harness._registry import get_task, task_names
    from harness.cli._render import print_tasks

    rows = []
    for name in task_names():
        entry = get_task(name)
        t = entry.build()
        bundled = None
        if t.dataset.bundled is not None:
            _, stream = t.dataset.open("bundled")
            bundled = sum(1 for _ in stream)
        rows.append({"name": name, "version": t.version, "hub": t.dataset.hub, "revision": t.dataset.revision,
                     "size": t.dataset.size, "bundled_samples": bundled,
                     "variants": {"default": {}, **entry.variants}, "arguments": entry.parameters(),
                     "headline": t.headline, "description": t.description})
    print_tasks(rows, as_json=as_json)


@app.command("runs")
def runs_(db: DbOpt = None, limit: Annotated[int, typer.Option(help="Newest N runs.")] = 50, as_json: JsonOpt = False) -> None:
    """List runs, newest first."""
    from harness.cli._render import print_runs
    from harness.store import Store

    print_runs(Store(db).list_runs(limit), as_json=as_json)


@app.command("show")
def show(run: Annotated[str, typer.Argument(help="Run id (a unique prefix is enough).")], db: DbOpt = None,
         as_json: JsonOpt = False) -> None:
    """Metrics of a run: per task, overall and per breakdown, beside the paper's numbers."""
    from harness.cli._render import print_run
    from harness.store import Store

    store = Store(db)
    found = store.get_run(run)
    if found is None:
        raise UsageError(f"no run {run!r} in {store.url}; `harness runs` lists them")
    print_run(store, found["id"], as_json=as_json)
from harness.cli import _leaderboard  # noqa: E402,F401
from harness.cli import _analysis  # noqa: E402,F401
from harness.cli import _judging  # noqa: E402,F401
from harness.sandboxes._cli import sandbox_app  # noqa: E402

app.add_typer(sandbox_app, name="sandbox", help="Build and inspect the sandbox images model-written code runs in.")
