"""Runs executed by workers: the work queue in the store (PostgreSQL) is the only coordination point.

`harness eval --executor slurm --workers N` plans the run as a local run does, queues one work item per
(task, sample, epoch) (Store.enqueue), writes a job script and submits it as one `sbatch --array=0-(N-1)` job
(SlurmExecutor). Each array task runs `harness worker RUN` (work()): it claims small batches (Store.claim:
SELECT ... FOR UPDATE SKIP LOCKED), renews its leases by heartbeat, solves and scores each item with the local
runner's code (Runner.solve), and stores each result in the transaction that marks its item done (Store.write
with worker=), so a result is stored once however many workers tried it. Any worker returns expired leases to
the queue (Store.reap); the worker that finds the queue drained first computes the metrics and finishes the run.
"""
from __future__ import annotations

import asyncio
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from harness._registry import UsageError

LEASE_S = 60.0  # a worker's hold on an item; renewed every LEASE_S / 3 while the worker lives
MAX_ATTEMPTS = 3  # claims of one item before it is stored as errored (its workers keep dying on it)
BATCH = 16  # items claimed per transaction at most: small, so that the last items spread over the workers
CLAIM_PAUSE_S = 0.02  # after a slot frees, wait this long for more to free: one claim refills several
STOP_GRACE_S = 10.0  # on SIGTERM / Ctrl-C: how long items in flight may take to finish before they are released
EXECUTORS = ("local", "slurm")
FLAGS = {"workers": "--workers", "partition": "--partition", "time": "--time", "gpus": "--gpus",
         "account": "--account", "sbatch_lines": "--sbatch-line", "lease": "--lease"}


def worker_name() -> str:
    """host:pid, and the Slurm array task when there is one (what `harness show` lists)."""
    name = f"{socket.gethostname()}:{os.getpid()}"
    if os.environ.get("SLURM_ARRAY_JOB_ID"):
        name += f":{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ.get('SLURM_ARRAY_TASK_ID', '0')}"
    return name


@dataclass
class SlurmExecutor:
    """How a run goes to Slurm: one array job of `workers` tasks, each running `harness worker RUN`."""

    workers: int
    partition: str | None = None
    time: str | None = None
    gpus: int | None = None
    account: str | None = None
    sbatch_lines: list[str] = field(default_factory=list)  # extra "#SBATCH ..." lines (the prefix may be left off)
    lease_s: float = LEASE_S
    max_attempts: int = MAX_ATTEMPTS
    log_dir: Path = Path("harness-slurm")  # the job script and one log per array task
    job_id: str | None = None

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise UsageError(f"--workers must be at least 1, got {self.workers}")
        if self.lease_s <= 0:
            raise UsageError(f"the lease must be positive seconds, got {self.lease_s}")

    def script(self, run_id: str) -> str:
        """The job script. The database URL is not in it (it may hold a password, and the script is stored with
        the run): sbatch passes the submitter's environment on, HARNESS_DB_URL included."""
        logs = self.log_dir.resolve()
        lines = ["#!/bin/bash", f"#SBATCH --job-name=harness-{run_id}", f"#SBATCH --array=0-{self.workers - 1}",
                 f"#SBATCH --output={logs}/worker-%A_%a.log", "#SBATCH --ntasks=1"]
        for flag, value in (("partition", self.partition), ("time", self.time), ("gpus", self.gpus),
                            ("account", self.account)):
            if value is not None:
                lines.append(f"#SBATCH --{flag}={value}")
        for extra in self.sbatch_lines:
            extra = extra.strip()
            if "\n" in extra or not extra:
                raise UsageError(f"--sbatch-line takes one non-empty line, got {extra!r}")
            lines.append(extra if extra.startswith("#SBATCH") else f"#SBATCH {extra}")
        command = shlex.join([sys.executable, "-m", "harness.cli", "worker", run_id])
        # exec: scancel's SIGTERM reaches the worker itself, which then stops claiming and releases its items
        lines += ["set -eu", f"exec {command}", ""]
        return "\n".join(lines)

    def submit(self, runner: Any) -> None:
        """Write the job script, `sbatch` it, and store it and the job id with the run."""
        text = self.script(runner.run_id)
        info = {"kind": "slurm", "workers": self.workers, "lease_s": self.lease_s, "max_attempts": self.max_attempts,
                "script": text, "job_id": None}
        self._sbatch(runner.store, runner.run_id, text, info)

    def resubmit(self, store: Any, run_id: str) -> None:
        """Submit a queued run's stored job script again (its job ended with items left: workers killed, a time
        limit hit); the new workers continue the queue where the old ones left it."""
        info = dict(store.get_run(run_id)["executor"])
        self.workers = int(info["workers"])
        # a run whose first submission was refused (or whose workers stopped it) is the workers' again; set before
        # sbatch, as the new job may finish the run before sbatch returns
        store.set_run_status(run_id, "running", lease_owner=None, heartbeat_at=None, finished_at=None)
        try:
            self._sbatch(store, run_id, info["script"], info)
        except BaseException:
            store.set_run_status(run_id, "interrupted")
            raise

    def _sbatch(self, store: Any, run_id: str, text: str, info: dict[str, Any]) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        path = self.log_dir / f"{run_id}.sbatch"
        path.write_text(text)
        info = {**info, "script_path": str(path.resolve())}
        store.set_executor(run_id, info)
        env = {**os.environ, "HARNESS_DB_URL": store.url}
        try:
            out = subprocess.run(["sbatch", "--parsable", str(path)], capture_output=True, text=True, env=env,
                                 timeout=60)
        except FileNotFoundError:
            raise UsageError("sbatch not found: --executor slurm submits from a machine with Slurm's client "
                             "commands (or use --executor local)") from None
        except subprocess.TimeoutExpired:
            raise UsageError("sbatch did not answer within 60 s: is slurmctld reachable (sinfo)?") from None
        if out.returncode != 0:
            reason = (out.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise UsageError(f"sbatch refused the job: {reason}")
        self.job_id = out.stdout.strip().split(";")[0]
        store.set_executor(run_id, {**info, "job_id": self.job_id})


def slurm_executor(executor: str, *, workers: int | None = None, partition: str | None = None,
                   time: str | None = None, gpus: int | None = None, account: str | None = None,
                   sbatch_lines: list[str] | None = None, lease: float | None = None, db_url: str,
                   names: dict[str, str] | None = None, only_with: str = "--executor slurm"
                   ) -> SlurmExecutor | None:
    """What `harness eval` and `harness nightly` hand the runner: None for executor local (the options only Slurm
    reads are then refused), a SlurmExecutor for slurm (which needs a PostgreSQL store). `names` and `only_with`
    say how the caller spells the options and the executor in errors (the CLI's flags by default)."""
    from harness.store._store import SQLITE_NO_QUEUE

    if executor not in EXECUTORS:
        raise UsageError(f"--executor {executor!r} is not an executor; use one of: {', '.join(EXECUTORS)}")
    slurm_only = {"workers": workers, "partition": partition, "time": time, "gpus": gpus, "account": account,
                  "sbatch_lines": sbatch_lines, "lease": lease}
    if executor == "local":
        given = [(names or FLAGS)[key] for key, value in slurm_only.items() if value]
        if given:
            raise UsageError(f"{', '.join(given)} only apply to {only_with}")
        return None
    if db_url.startswith("sqlite"):
        raise UsageError(SQLITE_NO_QUEUE)
    return SlurmExecutor(workers=workers or 1, partition=partition, time=time, gpus=gpus, account=account,
                         sbatch_lines=list(sbatch_lines or []), lease_s=lease or LEASE_S)


def job_active(job_id: str) -> bool:
    """Whether Slurm still has any task of the job pending or running (squeue forgets a job soon after it ends)."""
    try:
        out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise UsageError("squeue not found: following a Slurm job needs Slurm's client commands here") from None
    except subprocess.TimeoutExpired:
        return True  # slurmctld busy: the job is not known to be gone
    return out.returncode == 0 and bool(out.stdout.strip())


@dataclass
class WorkerReport:
    name: str
    solved: int = 0  # items solved and handed to the writer
    released: int = 0  # items given back unfinished (stopped)
    finished_run: bool = False  # this worker computed the metrics and finished the run
    stopped: bool = False  # by a signal
    # seconds spent in database calls: the queue's own (claim, renew, reap, release, ...) and storing results
    # (the rows a local run writes too, plus marking their items done in the same transaction)
    queue_db_s: float = 0.0
    write_db_s: float = 0.0


async def work(run_id: str, store: Any, *, name: str | None = None, batch: int = BATCH,
               stop_grace_s: float = STOP_GRACE_S) -> WorkerReport:
    """Work on a queued run until its queue is drained (or a signal stops this worker); see the module doc."""
    from harness._runner import EvalPlan, Runner
    from harness.model import get_model
    from harness.store._store import SQLITE_NO_QUEUE, storable

    if store.is_sqlite:
        raise UsageError(SQLITE_NO_QUEUE)
    run = store.get_run(run_id)
    if run is None:
        raise UsageError(f"no run {run_id!r} in {store.url}; `harness runs` lists them")
    run_id, info = run["id"], run.get("executor")
    if not info:
        raise UsageError(f"run {run_id} was not queued for workers (harness eval --executor slurm); "
                         f"continue it with harness eval --resume {run_id}")
    report = WorkerReport(name or worker_name())
    if run["status"] == "finished":
        return report
    lease_s, max_attempts = float(info["lease_s"]), int(info["max_attempts"])
    plan = EvalPlan.from_json(run["plan"])
    from harness.model._node_share import ENV_FLAG

    os.environ[ENV_FLAG] = "1"  # managed servers (vllm/) are shared by the workers of this node
    model = get_model(plan.model, base_url=plan.base_url, args=plan.model_args, db_url=store.url)
    runner = Runner(plan, store, model=model, run_id=run_id, command=run["command"])
    rows = {(t["task"], t["variant"]): t for t in store.run_tasks(run_id)}
    tasks = {rows[t.name, t.variant]["id"]: t for t in runner.tasks}
    contexts: dict[int, Any] = {}
    samples: dict[int, dict[str, Any]] = {}

    def prepared(rt_id: int):
        """The task's context and its samples by (stored) id, made when the worker first meets the task."""
        if rt_id not in contexts:
            task = tasks[rt_id]
            if (prepare := getattr(runner.model, "prepare", None)) is not None:
                prepare(task)
            contexts[rt_id] = runner.task_context(task)
            samples[rt_id] = {storable(s.id)[0]: s for s in runner._samples(task)}
        return tasks[rt_id], contexts[rt_id], samples[rt_id]

    async def db(fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        """A store call off the event loop, its time counted as the queue's."""
        t0 = time.perf_counter()
        try:
            return await asyncio.to_thread(fn, *args, **kw)
        finally:
            report.queue_db_s += time.perf_counter() - t0

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    results: asyncio.Queue = asyncio.Queue()
    in_flight: dict[int, asyncio.Task] = {}  # work item id -> its solving task
    slots = asyncio.Semaphore(runner.max_samples)
    aborted: list[BaseException] = []
    freed = asyncio.Event()  # a slot came free (or something failed): time to claim again

    async def solve(item: dict[str, Any]) -> None:
        async with slots:
            if stop.is_set():
                return  # claimed ahead and not started: given back with the rest (release)
            task, ctx, by_id = prepared(item["run_task_id"])
            sample = by_id.get(item["sample_id"])
            if sample is None:
                from harness._runner import EMPTY_ROW
                from harness.store import SampleResult

                reason = (f"sample {item['sample_id']!r} is no longer in the task's data "
                          f"({plan.data}); the data changed after the run was queued")
                result = SampleResult(item["run_task_id"], {**EMPTY_ROW, "sample_id": item["sample_id"],
                                                            "epoch": item["epoch"], "status": "error", "error": reason})
            else:
                result = await runner.solve(task, ctx, item["run_task_id"], sample, item["epoch"])
            results.put_nowait(result)
            report.solved += 1

    def done_callback(item_id: int):
        def cb(t: asyncio.Task) -> None:
            in_flight.pop(item_id, None)
            freed.set()
            if not t.cancelled() and t.exception() is not None:
                aborted.append(t.exception())
                stop.set()
        return cb

    async def write() -> None:
        while True:
            first = await results.get()
            batch_ = [first] if first is not None else []
            while not results.empty():
                batch_.append(results.get_nowait())
            items = [r for r in batch_ if r is not None]
            if items:
                t0 = time.perf_counter()
                problems = await asyncio.to_thread(store.write, items, worker=report.name)
                report.write_db_s += time.perf_counter() - t0
                for problem in problems:
                    print(f"warning: {problem}", file=sys.stderr)
            if first is None or len(items) < len(batch_):
                return

    async def heartbeat() -> None:
        from sqlalchemy.exc import SQLAlchemyError

        while True:
            await asyncio.sleep(lease_s / 3)
            try:
                await db(store.renew, run_id, report.name, lease_s)
            except SQLAlchemyError as e:  # a missed beat: the leases last lease_s, two more beats come first
                print(f"warning: lease renewal failed: {type(e).__name__}", file=sys.stderr)

    try:
        for client in [runner.model, *runner.judges.values()]:
            await client.check()  # a managed server (vllm/, llamacpp/) starts here, on the worker's node
    except BaseException:
        for client in [runner.model, *runner.judges.values()]:
            await client.aclose()
        raise
    if (facts := runner.model.info().get("server")) is not None:  # a managed server: what this node's one is
        await db(record_server, store, run_id, socket.gethostname(), facts)
    await db(store.register_worker, run_id, report.name)
    writer = asyncio.create_task(write())
    writer.add_done_callback(done_callback(-1))  # a writer that fails (the database went away) stops the worker
    beat = asyncio.create_task(heartbeat())
    status = "stopped"
    try:
        while not stop.is_set():
            # up to one batch more than the slots: those wait on a slot, leased, so a freed slot is refilled
            # at once rather than after a claim's round trip
            room = runner.max_samples + batch - len(in_flight)
            claimed = []
            if room > 0:
                claimed = await db(store.claim, run_id, report.name, min(batch, room), lease_s)
            for item in claimed:
                t = asyncio.create_task(solve(item))
                in_flight[item["id"]] = t
                t.add_done_callback(done_callback(item["id"]))
            if claimed and len(claimed) == min(batch, room):
                await asyncio.sleep(0)  # more may be waiting: claim again while the slots allow
                continue
            if not claimed and not in_flight:
                await db(store.reap, run_id, max_attempts)
                if await db(store.queue_drained, run_id):
                    break
            # items in flight: claim again when a slot frees; none: other workers' leases are still open, so
            # look again (claim, reap) a few times per lease
            freed.clear()
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(freed.wait())]
            await asyncio.wait(waits, timeout=1.0 if in_flight else min(lease_s / 4, 1.0),
                               return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
            await asyncio.sleep(CLAIM_PAUSE_S)
        if stop.is_set():
            report.stopped = not aborted
            if in_flight and not aborted:
                await asyncio.wait(list(in_flight.values()), timeout=stop_grace_s)
            for t in list(in_flight.values()):
                t.cancel()
            await asyncio.gather(*in_flight.values(), return_exceptions=True)
            results.put_nowait(None)
            await asyncio.shield(writer)
            # after the writer's last commit, whatever this worker still holds is unfinished: give it all back
            report.released = await db(store.release, run_id, report.name)
        else:
            results.put_nowait(None)
            await asyncio.shield(writer)
            report.finished_run = await asyncio.to_thread(_finish, store, runner, run_id, report.name, tasks, prepared)
            status = "finished"
    except BaseException:
        status = "failed"
        raise
    finally:
        beat.cancel()
        if not writer.done():
            writer.cancel()
        if aborted:
            status = "failed"
        await db(store.stop_worker, run_id, report.name, status)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        for client in [runner.model, *runner.judges.values()]:
            await client.aclose()
        for backend in runner.sandboxes.values():
            await backend.aclose()
    if aborted:
        from harness._types import RunAborted

        e = aborted[0]
        if isinstance(e, RunAborted):
            store.set_run_status(run_id, "interrupted", limiters=runner._limiters())
            raise UsageError(f"{e}; run {run_id} stopped, its finished samples are kept; worker {report.name} "
                             f"gave its items back to the queue") from None
        raise e
    return report


def record_server(store: Any, run_id: str, node: str, facts: dict[str, Any]) -> None:
    """Add what a node's managed model server is (version, argv, environment, weights, GPUs or CPU) to the run's
    model_info under servers[node]; the first worker of the node records it. The run row is locked for the
    read-modify-write, as workers of several nodes record at once."""
    from sqlalchemy import select, update

    from harness.store import Run

    with store.engine.begin() as conn:
        info = conn.execute(select(Run.model_info).where(Run.id == run_id).with_for_update()).scalar_one() or {}
        servers = dict(info.get("servers") or {})
        if node in servers:
            return
        conn.execute(update(Run).where(Run.id == run_id)
                     .values(model_info={**info, "servers": {**servers, node: facts}}))


def _finish(store: Any, runner: Any, run_id: str, worker: str, tasks: dict[int, Any],
            prepared: Callable[[int], Any]) -> bool:
    """Once the queue is drained: the one worker that takes the run computes every task's metrics (as the local
    runner does) and finishes it; the others return False."""
    if not store.take_finish(run_id, worker):
        return False
    planned = {t["id"]: t["samples_planned"] for t in store.run_tasks(run_id)}
    for rt_id, task in tasks.items():
        _, ctx, _ = prepared(rt_id)
        runner.finish_task(task, rt_id, planned.get(rt_id), ctx)
    store.set_run_status(run_id, "finished", limiters=runner._limiters())
    return True
