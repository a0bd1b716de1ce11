from __future__ import annotations

import json
import os
import sys
from typing import Annotated, Any, Optional

import typer

from harness._registry import UsageError

def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"harness {version('harness')}")
        except PackageNotFoundError:
            print("harness (not installed as a package)")
        raise typer.Exit()


# plain (click) help rather than rich panels: full flag names, a description column of about half the
# terminal, and a metavar per option (METAVAR below) instead of a type placeholder such as <bool>
HELP = {"help_option_names": ["-h", "--help"], "max_content_width": 120}
app = typer.Typer(
    help="Evaluate LLMs and agents on research benchmarks; every scored trace goes to SQL.",
    no_args_is_help=True, add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False,
    context_settings=HELP,
)


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                 help="Print the version and exit.")] = False) -> None:
    """Evaluate LLMs and agents on research benchmarks; every scored trace goes to SQL."""


DbOpt = Annotated[Optional[str], typer.Option(
    "--db", envvar="HARNESS_DB_URL", show_envvar=True, metavar="URL",
    help="SQLAlchemy URL of the store. Default: sqlite:///~/.local/share/harness/harness.db ($XDG_DATA_HOME honoured).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output (the same numbers as the table).")]
# --executor slurm's job options, the same for harness eval and harness nightly (which overrides its file's
# [slurm] table with them)
WorkersOpt = Annotated[Optional[int], typer.Option(min=1, metavar="N", help="Slurm: array tasks (workers) of a run's job.")]
PartitionOpt = Annotated[Optional[str], typer.Option(metavar="NAME", help="Slurm: #SBATCH --partition.")]
TimeOpt = Annotated[Optional[str], typer.Option("--time", metavar="TIME", help="Slurm: #SBATCH --time per worker, e.g. 2:00:00.")]
GpusOpt = Annotated[Optional[int], typer.Option(min=0, metavar="N", help="Slurm: #SBATCH --gpus per worker.")]
AccountOpt = Annotated[Optional[str], typer.Option(metavar="NAME", help="Slurm: #SBATCH --account.")]
SbatchLineOpt = Annotated[Optional[list[str]], typer.Option("--sbatch-line", metavar="LINE", help="Slurm: an extra #SBATCH line for the job script (e.g. '--mem=16G'). Repeatable.")]
LeaseOpt = Annotated[Optional[float], typer.Option(min=0.1, metavar="SECONDS", help="Slurm: how long a worker holds an item without a heartbeat before others may take it (default 60).")]
MetricsOpt = Annotated[str, typer.Option(
    "--metrics", metavar="key|all|NAME,...",
    help="Metrics shown per task: 'key' (the headline, those the paper reports and a few more), 'all' (every "
         "metric, and every metric per group), or names separated by commas.")]


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
    model: Annotated[Optional[str], typer.Option("--model", "-m", metavar="MODEL", help="openai/<model>, vllm/<model> (a vLLM server the harness starts), vllm-server/<model> (one you started; with --base-url), llamacpp/<path.gguf> (a local GGUF file, served by llama.cpp on CPU), reference, replay:<path>, replay-run:<run> (each request answered from a stored run) or mock; installed packages may add more (entry points `harness.models`).")] = None,
    task: Annotated[Optional[list[str]], typer.Option("--task", "-t", metavar="TASK[@VARIANT]", help="Task name, or name@variant. Repeat for several.")] = None,
    variant: Annotated[Optional[str], typer.Option(metavar="NAME", help="Variant for every task given without @variant (see `harness tasks`).")] = None,
    task_arg: Annotated[Optional[list[str]], typer.Option("--task-arg", "-T", metavar="KEY=VALUE", help="Task argument (e.g. -T few_shot=1). Repeatable.")] = None,
    model_arg: Annotated[Optional[list[str]], typer.Option("--model-arg", "-M", metavar="KEY=VALUE", help="Sampling setting or client option: temperature, max_tokens, top_p, seed, ...; max_connections, max_retries, timeout. A key no known provider reads gets a warning; -M extra.KEY=VALUE sends a provider-specific KEY on purpose. Repeatable.")] = None,
    model_name: Annotated[Optional[str], typer.Option("--model-name", metavar="NAME", help="The model's name in runs and leaderboards. Default: --model (for replay:<path>, the file's stem).")] = None,
    base_url: Annotated[Optional[str], typer.Option(envvar="OPENAI_BASE_URL", metavar="URL", help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1. The key comes from OPENAI_API_KEY.")] = None,
    data: Annotated[str, typer.Option(metavar="SOURCE", help="'hub' (the pinned HF dataset), 'hub:REPO_OR_FOLDER' (a mirror of it), 'bundled' (the small real sample shipped with the suite) or a local file/folder in the upstream format.")] = "hub",
    limit: Annotated[Optional[int], typer.Option(metavar="N", help="Only the first N samples of each task.")] = None,
    sample_id: Annotated[Optional[list[str]], typer.Option("--sample-id", metavar="ID", help="Only these sample ids. Repeatable.")] = None,
    epochs: Annotated[int, typer.Option(min=1, metavar="N", help="Samples per problem (pass@k uses them).")] = 1,
    max_samples: Annotated[Optional[int], typer.Option(min=1, metavar="N", help="Samples in flight at once. Default: the endpoint's max_connections (64).")] = None,
    seed: Annotated[Optional[int], typer.Option(metavar="N", help="Sent as the sampling seed; recorded with the run.")] = None,
    judge_model: Annotated[Optional[list[str]], typer.Option("--judge-model", metavar="[ROLE=]MODEL", help="Judge model for LLM-judged tasks: MODEL for every judge, or ROLE=MODEL for one of a task's judges. Repeatable.")] = None,
    judge_base_url: Annotated[Optional[str], typer.Option(metavar="URL", help="OpenAI-compatible endpoint for the judges (default: the evaluated model's).")] = None,
    sandbox: Annotated[str, typer.Option(metavar="NAME", help="Where model-written code runs: docker, bwrap, auto (docker if a daemon answers, else bwrap) or none-UNSAFE (plain host processes; needs the flag below); installed packages may add more (entry points `harness.sandboxes`).")] = "auto",
    unsafe: Annotated[bool, typer.Option("--i-understand-this-runs-untrusted-code-unsandboxed", help="Allow --sandbox none-UNSAFE: model-written code runs as a plain host process. Never on a machine you care about.")] = False,
    resume: Annotated[Optional[str], typer.Option(metavar="RUN", help="Continue run RUN: only samples without a finished row are done.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or progress lines (stderr); the results still print.")] = False,
    executor: Annotated[str, typer.Option(metavar="local|slurm", help="local: solve here. slurm: queue the samples in the --db (PostgreSQL) and submit one sbatch array job of --workers `harness worker RUN` processes; returns once submitted (follow with harness show RUN).")] = "local",
    workers: WorkersOpt = None,
    partition: PartitionOpt = None,
    time_limit: TimeOpt = None,
    gpus: GpusOpt = None,
    account: AccountOpt = None,
    sbatch_line: SbatchLineOpt = None,
    lease: LeaseOpt = None,
    metrics: MetricsOpt = "key",
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a model on tasks; each sample is scored and committed as it finishes.

    Progress: a bar on a terminal; otherwise (pipe, nohup, CI, Slurm) a line per task every 30 s
    ($HARNESS_PROGRESS_INTERVAL) with done/total, rate, errors and ETA.

    Example: harness eval --model reference --task cipherbank --data bundled

    From Python: harness.eval(tasks, model, **options) takes the same options (see the README).
    """
    from harness._eval import check_sandbox, eval as run_eval
    from harness.cli._progress import Progress
    from harness.model import model_arg_warnings
    from harness.store import Store

    if resume:
        if model or task:
            raise UsageError("--resume continues a run as it was planned; drop --model/--task")
        options: dict[str, Any] = {"resume": resume}
    else:
        if not model or not task:
            raise UsageError("give --model and at least one --task (or --resume RUN); see `harness eval --help`")
        check_sandbox(sandbox, unsafe)
        model_args = _pairs(model_arg, "-M")
        for warning in model_arg_warnings(model_args):
            print(f"warning: {warning}", file=sys.stderr)
        options = dict(tasks=task, model=model, variant=variant, task_args=_pairs(task_arg, "-T"), base_url=base_url,
                       model_args=model_args, data=data, limit=limit, sample_ids=sample_id, epochs=epochs,
                       max_samples=max_samples, seed=seed, judges=_judges(judge_model),
                       judge_base_url=judge_base_url, sandbox=sandbox, allow_unsafe=unsafe, model_name=model_name)
    bar = (not as_json and sys.stderr.isatty()) or os.environ.get("HARNESS_PROGRESS") == "1"
    progress = Progress("off" if quiet else "bar" if bar else "lines")
    started: list[str] = []
    from harness._worker import slurm_executor
    from harness.cli._worker import print_submitted
    from harness.store import default_url

    # checked before the store opens: a SQLite --db given with --executor slurm is refused, not created
    queue = slurm_executor(executor, workers=workers, partition=partition, time=time_limit, gpus=gpus,
                           account=account, sbatch_lines=sbatch_line, lease=lease, db_url=db or default_url())
    if queue is not None:
        if resume:
            raise UsageError("--resume runs here; a queued run's workers continue it with harness worker RUN")
        options["executor"] = queue
    store = Store(db, create=not resume)

    def announce(run: str) -> None:
        started.append(run)
        if not as_json:
            progress.console.print(f"[bold]run {run}[/] · model {store.get_run(run)['model']} · db {store.url}",
                                   highlight=False, soft_wrap=True, markup=True)

    try:
        with progress:
            result = run_eval(**options, db=store, command=" ".join(["harness", *sys.argv[1:]]), on_run_start=announce,
                              on_task_start=progress.task_started, on_sample_done=progress.sample_done)
    except KeyboardInterrupt:
        how = (f" Continue with: harness eval --resume {started[0]}" + (f" --db {db}" if db else "")) if started else ""
        print(f"\ninterrupted; finished samples are saved.{how}", file=sys.stderr)
        raise typer.Exit(130)
    if queue is not None:
        print_submitted(store, result.run_id, as_json=as_json)
        return
    from harness.cli._render import print_run

    print_run(store, result.run_id, as_json=as_json, metrics=metrics)


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
def runs_(db: DbOpt = None, limit: Annotated[int, typer.Option(metavar="N", help="Newest N runs.")] = 50,
          as_json: JsonOpt = False) -> None:
    """List runs, newest first."""
    from harness.cli._render import print_runs
    from harness.store import Store

    store = Store(db, create=False)
    print_runs(store.list_runs(limit), as_json=as_json, url=store.url)


@app.command("show")
def show(run: Annotated[str, typer.Argument(metavar="RUN", help="Run id (a unique prefix is enough).")], db: DbOpt = None,
         metrics: MetricsOpt = "key",
         sample: Annotated[Optional[str], typer.Option("--sample", metavar="ID", help="Print this sample's trajectory "
                           "instead: messages, tool calls and results, limits, agents, the final score.")] = None,
         epoch: Annotated[Optional[int], typer.Option("--epoch", min=0, metavar="N", help="With --sample: only this "
                          "epoch (default: every epoch stored).")] = None,
         task: Annotated[Optional[str], typer.Option("--task", metavar="NAME[@VARIANT]", help="With --sample: the "
                         "task, when the run has the sample id in more than one.")] = None,
         as_json: JsonOpt = False) -> None:
    """Metrics of a run: per task, overall and per breakdown, beside the paper's numbers; or, with --sample,
    one sample's trajectory as a transcript (--json: its events and messages).

    Example: harness show 20261201-1101 --metrics all; harness show 20261201-1101 --sample 17 --epoch 0
    """
    from harness.store import Store

    if sample is None and (epoch is not None or task is not None):
        raise UsageError("--epoch and --task choose what --sample shows; add --sample ID")
    store = Store(db, create=False)
    found = store.get_run(run)
    if found is None:
        raise UsageError(f"no run {run!r} in {store.url}; `harness runs` lists them")
    if sample is not None:
        from harness.cli._render import print_trajectories

        print_trajectories(store, found["id"], sample, epoch=epoch, task=task, as_json=as_json)
        return
    from harness.cli._render import print_run

    print_run(store, found["id"], as_json=as_json, metrics=metrics)


from harness.cli import _leaderboard  # noqa: E402,F401
from harness.cli import _analysis  # noqa: E402,F401
from harness.cli import _judging  # noqa: E402,F401
from harness.cli import _search_cache  # noqa: E402,F401
from harness.cli import _worker  # noqa: E402,F401
from harness.sandboxes._cli import sandbox_app  # noqa: E402

app.add_typer(sandbox_app, name="sandbox", help="Build and inspect the sandbox images model-written code runs in.")
