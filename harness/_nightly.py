"""The nightly job: run the models x tasks matrix a TOML file declares, then build the leaderboard.

A model's run that an earlier night left unfinished (killed, interrupted, crashed) is resumed rather than
started again: the newest unfinished run with exactly the same plan is continued.

With `executor = "slurm"` each model's run is queued and submitted as `harness eval --executor slurm` does (the
same harness.eval call, with the executor the [slurm] table describes); the nightly then follows every job until
its run finished or the job ended, and builds the leaderboard from the finished runs. A queued run that an
earlier night left unfinished is followed if its job is still in Slurm's queue, else its stored job script is
submitted again.
"""
from __future__ import annotations

import json
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from harness._eval import eval as harness_eval, plan_options
from harness._registry import UsageError
from harness._runner import EvalPlan, TaskRef
from harness._toml import load_toml
from harness.store import Run, Store


# how the file names `harness eval`'s Slurm options, for errors
SLURM_KEYS = {"workers": "slurm.workers", "partition": "slurm.partition", "time": "slurm.time", "gpus": "slurm.gpus",
              "account": "slurm.account", "sbatch_lines": "slurm.sbatch_lines", "lease": "slurm.lease"}
POLL_S = 5.0  # how often a following nightly looks at its runs and jobs
PROGRESS_S = 60.0  # and how often it logs their progress


class SlurmJob(BaseModel):
    """One model's Slurm job: `harness eval --executor slurm`'s options (a model's own table overrides the file's)."""

    model_config = ConfigDict(extra="forbid")

    workers: int | None = Field(None, ge=1)
    partition: str | None = None
    time: str | None = None
    gpus: int | None = Field(None, ge=0)
    account: str | None = None
    sbatch_lines: list[str] | None = None
    lease: float | None = Field(None, gt=0)


class NightlySlurm(SlurmJob):
    wait: bool = True  # follow the jobs until their runs finish (false: submit, build, and say how to follow)


class NightlyModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    base_url: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    tasks: list[str] = Field(default_factory=list)  # empty: the file's tasks
    judges: dict[str, str] = Field(default_factory=dict)
    slurm: SlurmJob = Field(default_factory=SlurmJob)


class NightlySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    db: str | None = None
    out: str = "site"
    leaderboard: str | None = None  # a leaderboard definition file; default: every registered suite
    tasks: list[str] = Field(default_factory=list)
    models: list[NightlyModel] = Field(min_length=1)
    data: str = "hub"
    limit: int | None = None
    epochs: int = Field(1, ge=1)
    seed: int | None = None
    max_samples: int | None = None
    judge_base_url: str | None = None
    executor: Literal["local", "slurm"] = "local"
    slurm: NightlySlurm = Field(default_factory=NightlySlurm)

    def job(self, model: NightlyModel) -> dict[str, Any]:
        """The model's Slurm options: its own [models.slurm] keys over the file's [slurm] ones."""
        merged = self.slurm.model_dump(exclude={"wait"}, exclude_none=True)
        return {**merged, **model.slurm.model_dump(exclude_none=True)}

    def plans(self) -> list[EvalPlan]:
        plans = []
        for m in self.models:
            specs = m.tasks or self.tasks
            if not specs:
                raise UsageError(f"model {m.name!r} has no tasks: give `tasks` at the top or in its [[models]] table")
            refs = [TaskRef(name, variant or "default") for name, _, variant in (s.partition("@") for s in specs)]
            plans.append(EvalPlan(model=m.name, tasks=refs, base_url=m.base_url, model_args=m.args, data=self.data,
                                  limit=self.limit, epochs=self.epochs, max_samples=self.max_samples, seed=self.seed,
                                  judges=m.judges, judge_base_url=self.judge_base_url or m.base_url))
        return plans


def load_nightly(path: str | Path) -> NightlySpec:
    path = Path(path)
    spec = load_toml(path, NightlySpec, "nightly config")
    # relative paths in the file are relative to the file, so cron can run it from anywhere
    base = path.parent
    spec.out = str(base / spec.out)
    if spec.leaderboard:
        spec.leaderboard = str(base / spec.leaderboard)
    return spec


def unfinished_run(store: Store, plan: EvalPlan, *, queued: bool = False) -> str | None:
    """The newest run of the same plan that did not finish, to be resumed: one executed here (queued=False) or
    one queued for workers (queued=True); the one kind cannot be continued as the other."""
    wanted = json.loads(json.dumps(plan.to_json()))
    with store.engine.connect() as conn:
        rows = conn.execute(select(Run.id, Run.plan, Run.executor)
                            .where(Run.model == plan.model, Run.status != "finished")
                            .order_by(Run.created_at.desc())).all()
    return next((rid for rid, stored, executor in rows if stored == wanted and bool(executor) == queued), None)


@dataclass
class NightlyResult:
    # {"model", "run_id", "resumed", "error", "job_id" (slurm), "status"}
    runs: list[dict[str, Any]] = field(default_factory=list)
    leaderboard: Any = None

    @property
    def failed(self) -> bool:
        return any(r["error"] for r in self.runs)


def run_nightly(spec: NightlySpec, store: Store, *, log: Callable[[str], None] = lambda s: None) -> NightlyResult:
    """Every model's plan in turn; one model failing (endpoint down) does not stop the others or the build."""
    from harness._worker import slurm_executor
    from harness.leaderboards import build, load_spec

    result = NightlyResult()
    queued = spec.executor == "slurm"
    # each model's executor, made by the function `harness eval --executor slurm` makes its own with, from the
    # file's keys; all checked before any run starts (Slurm options without the slurm executor, a SQLite store)
    executors = [slurm_executor(spec.executor, **spec.job(model), db_url=store.url, names=SLURM_KEYS,
                                only_with='executor = "slurm" (the [slurm] table is its options)')
                 for model in spec.models]
    for executor, plan in zip(executors, spec.plans()):
        resume = unfinished_run(store, plan, queued=queued)
        entry = {"model": plan.model, "run_id": resume, "resumed": resume is not None, "error": None,
                 "job_id": None, "status": None}
        def started(run_id: str, entry=entry, plan=plan, resume=resume) -> None:
            entry["run_id"] = run_id
            log(f"{'resuming' if resume else 'starting'} run {run_id}: {plan.model} on "
                f"{', '.join(t.label for t in plan.tasks)}")

        try:
            if executor is not None and resume is not None:
                entry["job_id"] = _follow_or_resubmit(store, resume, executor, log)
            else:
                # the plan as given (not the stored one): a resumed run is one whose stored plan equals it
                run = harness_eval(**plan_options(plan), db=store, resume=resume, on_run_start=started,
                                   executor=executor, command=" ".join(["harness", *sys.argv[1:]]))
                entry["status"] = run.status
                if executor is not None:
                    entry["job_id"] = executor.job_id
                    log(f"run {run.run_id}: submitted as Slurm job {executor.job_id} ({executor.workers} workers)")
        except Exception as e:  # noqa: BLE001 - reported per model, and in the exit status
            entry["error"] = f"{type(e).__name__}: {e}"
            log(f"run of {plan.model} failed: {entry['error']}\n{traceback.format_exc(limit=3)}")
        result.runs.append(entry)
    jobs = [r for r in result.runs if r["job_id"] and not r["error"]]
    if jobs and spec.slurm.wait:
        _wait(store, jobs, log)
    elif jobs:
        for r in jobs:
            r["status"] = "running"
            log(f"run {r['run_id']} is Slurm job {r['job_id']}: follow it with harness show {r['run_id']} "
                f"(squeue -j {r['job_id']}); the leaderboard built now holds the runs finished so far: build it "
                "again (harness leaderboard build) once this one finished")
    result.leaderboard = build(store, spec.out, load_spec(spec.leaderboard))
    log(f"leaderboard: {result.leaderboard.out} ({result.leaderboard.seconds:.1f} s)")
    return result


def _follow_or_resubmit(store: Store, run_id: str, executor: Any, log: Callable[[str], None]) -> str:
    """A queued run an earlier night left unfinished: its job if Slurm still has it, else its job script again."""
    from harness._worker import job_active

    job_id = (store.get_run(run_id)["executor"] or {}).get("job_id")
    if job_id and job_active(job_id):
        log(f"run {run_id}: following its Slurm job {job_id}, still queued or running")
        return job_id
    executor.resubmit(store, run_id)
    log(f"run {run_id}: its job {job_id} ended with items left; submitted its job script again as Slurm job "
        f"{executor.job_id}")
    return executor.job_id


def _wait(store: Store, entries: list[dict[str, Any]], log: Callable[[str], None]) -> None:
    """Follow the submitted runs until each finished or its job is gone from Slurm with the run unfinished (its
    workers killed, its time limit hit): that is the model's error, saying how to continue it."""
    from harness._worker import job_active

    waiting = {r["run_id"]: r for r in entries}
    last_log = time.monotonic()
    while waiting:
        for run_id, r in list(waiting.items()):
            status = store.get_run(run_id)["status"]
            if status == "running" and job_active(r["job_id"]):
                continue
            status = store.get_run(run_id)["status"]  # read again: the job may have finished the run meanwhile
            r["status"] = status
            del waiting[run_id]
            if status == "finished":
                log(f"run {run_id} finished (Slurm job {r['job_id']})")
                continue
            items = store.queue_status([run_id]).get(run_id, {}).get("items", {})
            r["error"] = (f"Slurm job {r['job_id']} ended with run {run_id} {status} ({_progress(items)}); the next "
                          f"nightly continues it, or: harness worker {run_id} (the job's logs: "
                          f"{(store.get_run(run_id)['executor'] or {}).get('script_path', '?')} and beside it)")
            log(f"run of {r['model']} failed: {r['error']}")
        if waiting and time.monotonic() - last_log >= PROGRESS_S:
            last_log = time.monotonic()
            queues = store.queue_status(list(waiting))
            for run_id in waiting:
                log(f"run {run_id}: {_progress(queues.get(run_id, {}).get('items', {}))}")
        if waiting:
            time.sleep(POLL_S)


def _progress(items: dict[str, int]) -> str:
    total = sum(items.values())
    return f"{items.get('done', 0) + items.get('failed', 0)}/{total} items done" + "".join(
        f", {n} {state}" for state, n in sorted(items.items()) if state not in ("done", "failed") and n)
