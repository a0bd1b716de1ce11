"""`harness worker RUN`: one worker of a run queued with `harness eval --executor slurm` (harness._worker), and
the helpers `harness eval` uses to build the Slurm executor and report the submission."""
from __future__ import annotations

import sys
from typing import Annotated, Any, Optional

import typer

from harness._registry import UsageError
from harness.cli._app import DbOpt, JsonOpt, app

EXECUTORS = ("local", "slurm")


def slurm_executor(executor: str, *, workers: Optional[int], partition: Optional[str], time: Optional[str],
                   gpus: Optional[int], account: Optional[str], sbatch_lines: Optional[list[str]],
                   lease: Optional[float], db_url: str) -> Any:
    """The executor `harness eval` hands the runner: None for --executor local (the options that only Slurm
    reads are then refused), a SlurmExecutor for slurm (which needs a PostgreSQL --db)."""
    from harness._worker import LEASE_S, SlurmExecutor
    from harness.store._store import SQLITE_NO_QUEUE

    if executor not in EXECUTORS:
        raise UsageError(f"--executor {executor!r} is not an executor; use one of: {', '.join(EXECUTORS)}")
    slurm_only = {"--workers": workers, "--partition": partition, "--time": time, "--gpus": gpus,
                  "--account": account, "--sbatch-line": sbatch_lines, "--lease": lease}
    if executor == "local":
        given = [flag for flag, value in slurm_only.items() if value]
        if given:
            raise UsageError(f"{', '.join(given)} only apply to --executor slurm")
        return None
    if db_url.startswith("sqlite"):
        raise UsageError(SQLITE_NO_QUEUE)
    return SlurmExecutor(workers=workers or 1, partition=partition, time=time, gpus=gpus, account=account,
                         sbatch_lines=list(sbatch_lines or []), lease_s=lease or LEASE_S)


def print_submitted(store: Any, run_id: str, *, as_json: bool) -> None:
    """What `harness eval --executor slurm` prints: it returns once the job is submitted."""
    import json

    run = store.get_run(run_id)
    info = run["executor"] or {}
    items = store.queue_status([run_id]).get(run_id, {}).get("items", {})
    total = sum(items.values())
    if as_json:
        print(json.dumps({"run_id": run_id, "status": run["status"], "job_id": info.get("job_id"),
                          "workers": info.get("workers"), "items": total, "script": info.get("script_path")}))
        return
    print(f"run {run_id}: {total} items queued; Slurm job {info.get('job_id')} ({info.get('workers')} workers, "
          f"script {info.get('script_path')})")
    print(f"progress: harness show {run_id} · workers' logs beside the script · stop: scancel {info.get('job_id')}")


@app.command("worker")
def worker_(
    run: Annotated[str, typer.Argument(metavar="RUN", help="A run queued by harness eval --executor slurm.")],
    db: DbOpt = None,
    batch: Annotated[int, typer.Option(min=1, metavar="N", help="Items claimed per database transaction at most.")] = 16,
    grace: Annotated[float, typer.Option(min=0, metavar="SECONDS", help="On SIGTERM / Ctrl-C: how long the items in flight may take to finish before they are given back.")] = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Work on a queued run: claim items, solve and score them as a local run does, store each once; the last
    worker computes the metrics and finishes the run. Started by the Slurm job `harness eval --executor slurm`
    submits; any number may run at once, anywhere that reaches the database and the model.

    SIGTERM (scancel) or Ctrl-C: it stops claiming, lets the items in flight finish for a few seconds, gives the
    rest back to the queue and exits 0; a worker killed outright loses its leases when they expire."""
    import asyncio
    import json

    from harness._worker import work
    from harness.store import Store

    store = Store(db, create=False)
    report = asyncio.run(work(run, store, batch=batch, stop_grace_s=grace))
    if as_json:
        print(json.dumps(report.__dict__))
        return
    what = ("finished the run" if report.finished_run else
            f"stopped, {report.released} items given back" if report.stopped else "the queue is drained")
    print(f"worker {report.name}: {report.solved} items solved; {what}", file=sys.stderr)
