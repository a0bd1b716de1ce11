"""`harness worker RUN`: one worker of a run queued with `harness eval --executor slurm` (harness._worker), and
how `harness eval` reports the submission (the executor itself: harness._worker.slurm_executor)."""
from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from harness.cli._app import DbOpt, JsonOpt, app


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
