"""`harness leaderboard build` and `harness nightly`."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from harness.cli._app import (AccountOpt, DbOpt, GpusOpt, JsonOpt, LeaseOpt, PartitionOpt, SbatchLineOpt,
                              TimeOpt, WorkersOpt, app)

leaderboard_app = typer.Typer(help="Static leaderboard sites built from the stored runs.", no_args_is_help=True)
app.add_typer(leaderboard_app, name="leaderboard")


@leaderboard_app.command("build")
def build_(
    out: Annotated[str, typer.Option("--out", "-o", metavar="DIR", help="Folder to write the site into (created; pages of unchanged runs are kept).")],
    config: Annotated[Optional[str], typer.Option("--config", "-c", metavar="FILE", help="Leaderboard definition (TOML). Default: every registered suite, newest run per model.")] = None,
    previous: Annotated[Optional[str], typer.Option(metavar="DIR", help="An earlier build's folder to show changes against. Default: the last build of this leaderboard recorded in the database.")] = None,
    record: Annotated[bool, typer.Option(help="Record this build in the database so the next build shows changes against it.")] = True,
    workers: Annotated[Optional[int], typer.Option(min=1, metavar="N", help="Processes rendering run and sample pages. Default: one per core when there are many samples.")] = None,
    eee: Annotated[bool, typer.Option("--eee", help="Also write the Every Eval Ever records of the results shown, under DIR/eee/data/.")] = False,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Build the leaderboard: index (suites x models, 95% CIs, paper numbers), suite, run and sample pages.

    Example: harness leaderboard build --out site/ && python -m http.server -d site
    """
    import json

    from harness.leaderboards import build, load_spec
    from harness.store import Store

    store, spec = Store(db, create=False), load_spec(config)
    result = build(store, out, spec, previous=previous, record=record, workers=workers)
    summary = {"out": str(result.out), "index": str(result.out / "index.html"), "suites": result.suites,
               "models": result.models, "runs": result.runs, "runs_rendered": result.runs_rendered,
               "sample_pages": result.sample_pages, "seconds": round(result.seconds, 3)}
    if eee:
        from harness.interop import export_leaderboard_eee

        summary["eee"] = [str(p) for p in export_leaderboard_eee(store, spec, result.out)]
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{summary['index']}: {result.suites} suites x {result.models} models from {result.runs} runs "
              f"({result.runs_rendered} rendered, {result.sample_pages} sample pages) in {result.seconds:.2f} s")
        if eee:
            print(f"{result.out / 'eee'}: {len(summary['eee'])} Every Eval Ever files")


@app.command("nightly")
def nightly(
    config: Annotated[str, typer.Argument(metavar="FILE", help="Nightly definition (TOML): models, tasks, data, output folder.")],
    db: DbOpt = None,
    out: Annotated[Optional[str], typer.Option("--out", "-o", metavar="DIR", help="Site folder (overrides the file's `out`).")] = None,
    executor: Annotated[Optional[str], typer.Option(metavar="local|slurm", help="As harness eval --executor (overrides the file's `executor`): slurm queues each model's run in the --db (PostgreSQL) and submits it as one sbatch array job.")] = None,
    workers: WorkersOpt = None,
    partition: PartitionOpt = None,
    time_limit: TimeOpt = None,
    gpus: GpusOpt = None,
    account: AccountOpt = None,
    sbatch_line: SbatchLineOpt = None,
    lease: LeaseOpt = None,
    wait: Annotated[Optional[bool], typer.Option("--wait/--no-wait", help="slurm: follow the jobs until their runs finish, then build (default); --no-wait: submit, build from the runs finished so far, and say how to follow the jobs.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the models x tasks matrix the file declares (resuming runs an earlier night left unfinished),
    then build the leaderboard. Exit status 1 if any model's run failed (the leaderboard is built anyway).

    The Slurm options override the file's [slurm] table (a model's own [models.slurm] keys still apply to it).

    Example: harness nightly docker/nightly.toml --db postgresql+psycopg://harness@db/harness
    """
    import json
    import sys

    from harness._nightly import load_nightly, run_nightly
    from harness.store import Store

    spec = load_nightly(config)
    if out:
        spec.out = out
    if executor is not None:
        spec.executor = executor
    given = {"workers": workers, "partition": partition, "time": time_limit, "gpus": gpus, "account": account,
             "sbatch_lines": sbatch_line, "lease": lease, "wait": wait}
    spec.slurm = spec.slurm.model_validate({**spec.slurm.model_dump(), **{k: v for k, v in given.items()
                                                                          if v is not None}})
    result = run_nightly(spec, Store(db or spec.db), log=lambda s: print(s, file=sys.stderr))
    lb = result.leaderboard
    if as_json:
        print(json.dumps({"runs": result.runs, "leaderboard": str(lb.out / "index.html")}, indent=2))
    else:
        for r in result.runs:
            state = (f"failed: {r['error']}" if r["error"] else "resumed" if r["resumed"] and r["status"] != "running"
                     else f"submitted as Slurm job {r['job_id']}, running" if r["status"] == "running"
                     else "done")
            print(f"{r['model']}: run {r['run_id']} {state}")
        print(f"leaderboard: {lb.out / 'index.html'}")
    if result.failed:
        raise typer.Exit(1)
