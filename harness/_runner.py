"""The run loop: stream samples, solve and score them with bounded concurrency, commit each as it finishes.

One producer streams (task, sample, epoch) items into a bounded queue (so memory does not grow with the
dataset), `max_samples` workers solve and score them, and one writer commits finished results in small
batches from a thread, so SQLite sees a single writer and the event loop never waits on disk.
"""
from __future__ import annotations

import asyncio
import json
import platform
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from harness._dataset import DataError, Provenance
from harness._messages import parse_message
from harness._registry import UsageError, get_task
from harness._task import SolveContext, Task, TaskState
from harness._types import ContextLengthExceeded, InfraError, ModelOutput, RunAborted, Sample
from harness.judge import JudgeNoVerdict, forget_unusable
from harness.model import ModelClient, get_model, split_model_args
from harness.model._client import AnswersFromData
from harness.scoring import CorpusMetric
from harness.store import SampleResult, Store

WRITE_BATCH = 256
# every sample row carries every column: batched inserts need one shape
EMPTY_ROW = dict.fromkeys(["status", "score", "scores", "answer", "target", "prompt", "response", "error_category",
                           "error", "explanation", "metadata", "input_tokens", "output_tokens", "latency_s"])
WRITE_INTERVAL_S = 0.2
# records read before the run exists: if all are unusable for one reason, the data is not what the task reads
DATA_CHECK = 10


@dataclass
class TaskRef:
    """How to rebuild a task: what the registry needs, and what every run stores."""

    name: str
    variant: str = "default"
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name if self.variant == "default" else f"{self.name}@{self.variant}"


@dataclass
class EvalPlan:
    model: str
    tasks: list[TaskRef]
    base_url: str | None = None
    model_args: dict[str, Any] = field(default_factory=dict)  # -M: client options and sampling settings
    data: str = "hub"  # "hub" | "bundled" | a local path (for every task of the run)
    limit: int | None = None
    sample_ids: list[str] | None = None
    epochs: int = 1
    max_samples: int | None = None  # samples in flight; defaults to the endpoint's connection limit
    seed: int | None = None
    judges: dict[str, str] = field(default_factory=dict)  # judge role ("default" or a task's judge name) -> model
    judge_base_url: str | None = None
    sandbox: str = "auto"  # docker | bwrap | auto | none-UNSAFE (only with allow_unsafe)
    allow_unsafe: bool = False
    model_name: str | None = None  # --model-name: what runs and leaderboards call the model

    @property
    def name(self) -> str:
        """The stored model name: --model-name, else a replay file's stem (not its whole path), else --model."""
        if self.model_name:
            return self.model_name
        if self.model.startswith("replay:"):
            return Path(self.model.removeprefix("replay:")).stem or self.model
        return self.model

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "model_name": self.model_name, "tasks": [t.__dict__ for t in self.tasks], "base_url": self.base_url,
                "model_args": self.model_args, "data": self.data, "limit": self.limit, "sample_ids": self.sample_ids,
                "epochs": self.epochs, "max_samples": self.max_samples, "seed": self.seed, "judges": self.judges,
                "judge_base_url": self.judge_base_url, "sandbox": self.sandbox, "allow_unsafe": self.allow_unsafe}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "EvalPlan":
        return cls(**{**d, "tasks": [TaskRef(**t) for t in d["tasks"]]})


@dataclass
class TaskProgress:
    label: str
    total: int | None
    already_done: int


class Runner:
    def __init__(self, plan: EvalPlan, store: Store, *, model: ModelClient | None = None, run_id: str | None = None,
                 command: str = "", on_run_start: Callable[[str], None] | None = None, on_task_start: Callable[[TaskProgress], None] | None = None,
                 on_sample_done: Callable[[str, SampleResult], None] | None = None, executor: Any = None,
                 judges: dict[str, ModelClient] | None = None):
        self.plan = plan
        # None: solve here (local). Otherwise the run's items go to the store's work queue and
        # executor.submit(runner) starts the workers that solve them (harness._worker.SlurmExecutor)
        self.executor = executor
        self.store = store
        self.command = command
        self.resuming = run_id is not None
        self.run_id = run_id or f"{datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
        self.model = model or get_model(plan.model, base_url=plan.base_url, args=plan.model_args,
                                            db_url=store.url)
        # a judge is a model client like any other; tasks look judges up by role in SolveContext.judges. Given
        # clients (judges=) stand for the plan's roles; otherwise each role's spec is built here
        self.judges: dict[str, ModelClient] = dict(judges) if judges is not None else {
            role: get_model(spec, base_url=plan.judge_base_url, db_url=self.store.url) for role, spec in plan.judges.items()}
        self.on_run_start = on_run_start or (lambda run_id: None)
        self.on_task_start = on_task_start or (lambda p: None)
        self.on_sample_done = on_sample_done or (lambda label, r: None)
        self.tasks: list[Task] = [get_task(t.name).build(t.variant, t.args) for t in plan.tasks]
        self._task_judges(plan)
        # one limit per endpoint: the evaluated model and judges served by the same endpoint share it
        shared: dict[str, Any] = {}
        for client in [self.model, *self.judges.values()]:
            if getattr(client, "limiter", None) is not None:
                client.limiter = shared.setdefault(client.limiter.name, client.limiter)
        _, sampling = split_model_args(plan.model_args)
        self.config = {**sampling, **({"seed": plan.seed} if plan.seed is not None else {})}
        limiter = getattr(self.model, "limiter", None)
        self.max_samples = plan.max_samples or (limiter.max_limit if limiter else 64)
        self.sandboxes: dict[tuple, Any] = {}
        self._planned: dict[tuple[str, str], int] = {}  # (task, variant) -> (sample, epoch) pairs, counted up front  # one backend per distinct limits, created in run() for tasks that need one

    def _task_judges(self, plan: EvalPlan) -> None:
        """Add the judges a task (variant) proposes where --judge-model names none for that role, then fail
        before any work if a task still lacks one."""
        from harness.judge import missing_roles

        for task in self.tasks:
            for role, spec in task.judges.items():
                base = role.split("#")[0]
                given = "default" in plan.judges or any(r == base or r.startswith(base + "#") for r in plan.judges)
                if not given and role not in self.judges:
                    self.judges[role] = get_model(spec, base_url=plan.judge_base_url, db_url=self.store.url)
            missing = missing_roles(task.judge_roles, self.judges)
            if missing:
                raise UsageError(f"{task.name} needs judge models for {', '.join(missing)}: pass --judge-model MODEL "
                                 f"(every judge) or --judge-model ROLE=MODEL")

    def _sandbox_for(self, task: Task):
        """The backend for a task's limits (the defaults with the task's overrides), made once per run."""
        from dataclasses import replace

        from harness.sandboxes import SandboxLimits, get_backend

        key = (task.sandbox_image, *sorted(task.sandbox_limits.items()))
        if key not in self.sandboxes:
            try:
                limits = replace(SandboxLimits(), **task.sandbox_limits)
                self.sandboxes[key] = get_backend(self.plan.sandbox, image=task.sandbox_image, limits=limits,
                                                  allow_unsafe=self.plan.allow_unsafe)
            except (RuntimeError, ValueError, OSError, TypeError) as e:
                raise UsageError(f"no sandbox for model-written code: {e}") from None
        return self.sandboxes[key]

    async def run(self) -> str:
        try:
            for client in [self.model, *self.judges.values()]:
                if self.executor is not None and hasattr(client, "server"):
                    continue  # a managed server (vllm/, llamacpp/) starts on the workers' nodes, not where one submits
                await client.check()
            for task in self.tasks:
                self._probe_data(task)
                # the counting pass reads every record: duplicate ids and data unreadable part way fail here,
                # before the run exists, rather than leaving an empty interrupted run behind
                self._planned[task.name, task.variant] = self._planned_count(task)
                if (prepare := getattr(self.model, "prepare", None)) is not None:
                    prepare(task)  # a replay file is read now: a bad line fails before the run exists
            env = environment()
            sandboxed = {t.name: self._sandbox_for(t).info() for t in self.tasks if t.needs_sandbox}
            if sandboxed:
                env["sandbox"] = sandboxed  # per task: backend, image digest or bwrap version, limits
            if self.executor is not None and self.store.is_sqlite:
                from harness.store._store import SQLITE_NO_QUEUE

                raise UsageError(SQLITE_NO_QUEUE)
            if not self.resuming:
                self.store.create_run(id=self.run_id, model=self.plan.name, model_info=self.model.info(),
                                      generate_config=self.config, base_url=self.plan.base_url, seed=self.plan.seed,
                                      epochs=self.plan.epochs, plan=self.plan.to_json(), limiters=self._limiters(),
                                      environment=env, command=self.command)
            else:
                if (self.store.get_run(self.run_id) or {}).get("executor"):
                    raise UsageError(f"run {self.run_id} is executed by workers from the work queue: continue it "
                                     f"with harness worker {self.run_id} (or sbatch its stored job script again)")
                self.store.acquire_lease(self.run_id)
            self.on_run_start(self.run_id)
            if self.executor is not None:
                return self._submit()
            heartbeat = asyncio.create_task(self._heartbeat())
            try:
                for task in self.tasks:
                    await self._run_task(task)
            except RunAborted as e:
                self.store.set_run_status(self.run_id, "interrupted", limiters=self._limiters())
                raise UsageError(f"{e}; run {self.run_id} stopped, its finished samples are kept "
                                 f"(harness eval --resume {self.run_id} once fixed)") from None
            except BaseException:
                self.store.set_run_status(self.run_id, "interrupted", limiters=self._limiters())
                raise
            finally:
                heartbeat.cancel()
            self.store.set_run_status(self.run_id, "finished", limiters=self._limiters())
            return self.run_id
        finally:
            for client in [self.model, *self.judges.values()]:
                await client.aclose()
            for backend in self.sandboxes.values():
                await backend.aclose()

    def _submit(self) -> str:
        """Queue one work item per planned (task, sample, epoch), hand the run to the executor's workers and
        return; the run stays 'running' with no lease of its own (the workers hold the items' leases)."""
        try:
            for task in self.tasks:
                provenance, _ = task.dataset.open(self.plan.data)
                rt_id = self._run_task_row(task, provenance, self._planned[task.name, task.variant])
                self.store.enqueue(self.run_id, rt_id, ((s.id, e) for s in self._samples(task)
                                                        for e in range(self.plan.epochs)))
            self.executor.submit(self)
        except BaseException:
            self.store.set_run_status(self.run_id, "interrupted", limiters=self._limiters())
            raise
        self.store.set_run_status(self.run_id, "running", lease_owner=None, heartbeat_at=None)
        return self.run_id

    def task_context(self, task: Task) -> SolveContext:
        """What every sample of the task is solved with: the model, settings, judges, sandbox, judge cache."""
        return SolveContext(model=self.model, config={**task.config, **self.config}, task=task, judges=self.judges,
                            sandbox=self._sandbox_for(task) if task.needs_sandbox else None,
                            judge_cache=self._judge_cache())

    def finish_task(self, task: Task, rt_id: int, planned: int | None, ctx: SolveContext) -> None:
        """The task's metrics from its stored rows, then the task's own closing step (on_finish)."""
        label = task.name if task.variant == "default" else f"{task.name}@{task.variant}"
        self.store.set_metrics(rt_id, compute_metrics(task, self.store.sample_values(rt_id),
                                                      self.store.status_counts(rt_id), planned))
        if task.on_finish is not None:
            facts = {"run_id": self.run_id, "model": self.plan.model, "db_url": self.store.url, "config": ctx.config}
            for line in task.on_finish(task, facts, self.store.samples(rt_id)):
                print(f"{label}: {line}", file=sys.stderr)

    async def _heartbeat(self) -> None:
        """Renew the run's lease while this process works on it (Store.acquire_lease, shown_status)."""
        from sqlalchemy.exc import SQLAlchemyError

        from harness.store._store import LEASE_RENEW_S

        while True:
            await asyncio.sleep(LEASE_RENEW_S)
            try:
                await asyncio.to_thread(self.store.renew_lease, self.run_id)
            except SQLAlchemyError:
                pass  # a missed beat (database busy or away): the lease goes stale only after LEASE_STALE_S

    def _limiters(self) -> dict[str, Any]:
        limits = {"samples": {"name": "samples", "max": self.max_samples}}
        for client in [self.model, *self.judges.values()]:
            limiter = getattr(client, "limiter", None)
            if limiter is not None:
                limits[limiter.name] = limiter.info()
        return limits

    async def _run_task(self, task: Task) -> None:
        label = task.name if task.variant == "default" else f"{task.name}@{task.variant}"
        provenance, _ = task.dataset.open(self.plan.data)
        planned = self._planned[task.name, task.variant]
        rt_id = self._run_task_row(task, provenance, planned)
        done = self.store.done(rt_id)
        self.on_task_start(TaskProgress(label, planned, len(done)))
        ctx = self.task_context(task)

        queue: asyncio.Queue = asyncio.Queue(maxsize=self.max_samples * 2)
        results: asyncio.Queue = asyncio.Queue()

        async def produce() -> None:
            for sample in self._samples(task):
                for epoch in range(self.plan.epochs):
                    if (sample.id, epoch) not in done:
                        await queue.put((sample, epoch))
            for _ in range(self.max_samples):
                await queue.put(None)

        async def work() -> None:
            while (item := await queue.get()) is not None:
                result = await self.solve(task, ctx, rt_id, *item)
                results.put_nowait(result)
                self.on_sample_done(label, result)

        writer = asyncio.create_task(self._write(results))
        workers = [asyncio.create_task(work()) for _ in range(self.max_samples)]
        try:
            await asyncio.gather(produce(), *workers)
        finally:
            for w in workers:
                w.cancel()
            results.put_nowait(None)
            await asyncio.shield(writer)  # commit what finished, also on Ctrl-C
        self.finish_task(task, rt_id, planned, ctx)

    def _judge_cache(self):
        if not self.judges:
            return None
        from harness.judge import JudgeCache

        return JudgeCache(self.store)

    def _probe_data(self, task: Task) -> None:
        """Read the first records before the run exists, so that unreachable, unreadable or empty data, or data
        in a format the task does not read, fails up front."""
        from itertools import islice

        try:
            provenance, stream = task.dataset.open(self.plan.data)
            head = list(islice(stream, DATA_CHECK))
        except DataError as e:
            raise UsageError(f"{task.name}: {e}") from None
        if not head:
            raise UsageError(f"{task.name}: the data ({provenance.location}) holds no records; nothing to evaluate")
        _same_data_error(task.name, head)

    def _run_task_row(self, task: Task, provenance: Provenance, planned: int) -> int:
        fields = dict(task_args=task.args, task_version=task.version, dataset=provenance.to_json(),
                      samples_planned=planned)
        if self.resuming:
            existing = {(t["task"], t["variant"]): t for t in self.store.run_tasks(self.run_id)}
            prior = existing.get((task.name, task.variant))
            if prior and prior["dataset"].get("sha256") != provenance.sha256:
                raise UsageError(f"the data of {task.name} changed since run {self.run_id} started "
                                 f"({prior['dataset'].get('location')}); start a new run instead of resuming")
            if prior and prior["task_version"] != task.version:
                raise UsageError(f"{task.name} is now version {task.version}, run {self.run_id} used "
                                 f"{prior['task_version']}; start a new run instead of resuming")
        return self.store.run_task(self.run_id, task.name, task.variant, **fields)

    def _samples(self, task: Task):
        """The task's samples as planned (--sample-id, --limit). Two samples with one id would overwrite each
        other's results (and resume keys on the id): that is refused, naming the ids. Data that cannot be read
        part way (a corrupt .gz, bytes that are not UTF-8) ends the run with one line naming the problem."""
        _, stream = task.dataset.open(self.plan.data)
        wanted = set(self.plan.sample_ids or [])
        count = 0
        seen: set[str] = set()
        try:
            for sample in stream:
                if wanted and sample.id not in wanted:
                    continue
                if self.plan.limit is not None and count >= self.plan.limit:
                    return
                if sample.id in seen:
                    raise UsageError(f"{task.name}: the data has more than one sample with id {sample.id!r}: "
                                     f"{self._duplicates(task)}; sample ids must be unique (fix the data)")
                seen.add(sample.id)
                count += 1
                yield sample
        except DataError as e:
            raise UsageError(f"{task.name}: {e}") from None

    def _duplicates(self, task: Task) -> str:
        """Every duplicated id of the task's data (a second pass, made only to name them all)."""
        from collections import Counter

        try:
            counts = Counter(s.id for s in task.dataset.open(self.plan.data)[1])
        except DataError:
            return "(the data could not be read through again to list every duplicate)"
        dups = [f"{sid!r} x{n}" for sid, n in counts.items() if n > 1]
        return ", ".join(dups[:20]) + (f" and {len(dups) - 20} more" if len(dups) > 20 else "")

    def _planned_count(self, task: Task) -> int:
        """(sample, epoch) pairs the task will run; none at all is an error that names what was asked for."""
        planned = self._count(task) * self.plan.epochs
        if planned == 0:
            label = task.name if task.variant == "default" else f"{task.name}@{task.variant}"
            picked = " with --sample-id/--limit as given" if self.plan.sample_ids or self.plan.limit is not None else ""
            raise UsageError(f"{label}: the data ({task.dataset.provenance(self.plan.data).location}) has no "
                             f"samples{picked}; nothing to evaluate")
        return planned

    def _count(self, task: Task) -> int:
        """A streaming pass to size the progress bar (and find duplicate ids and unreadable data before any
        work); hub data is sized from the task's declared size."""
        if self.plan.data == "hub" and task.dataset.size is not None and not self.plan.sample_ids:
            return min(task.dataset.size, self.plan.limit or task.dataset.size)
        return sum(1 for _ in self._samples(task))

    async def solve(self, task: Task, ctx: SolveContext, rt_id: int, sample: Sample, epoch: int) -> SampleResult:
        """One (task, sample, epoch) solved and scored: the local run's workers and the work queue's call this."""
        state = TaskState(sample=sample, epoch=epoch)
        if isinstance(self.model, AnswersFromData):  # reference / replay / mock: bound to this sample's data
            ctx = replace(ctx, model=self.model.bind(state, task))
        row: dict[str, Any] = {**EMPTY_ROW, "sample_id": sample.id, "epoch": epoch, "target": _text(sample.target),
                               "metadata": sample.metadata}
        t0 = time.perf_counter()
        score_json: list[dict[str, Any]] = []
        try:
            if sample.invalid:
                raise InfraError(sample.invalid)
            category = None
            try:
                await task.solver(state, ctx)
            except ContextLengthExceeded as e:
                # the model's limit, not the infrastructure's: scored as the suite scores an empty answer
                category = "context_length"
                if e.call is not None:
                    state.calls.append(e.call)
                state.metadata["context_length"] = str(e)
                if state.output is None and e.call is not None:
                    state.output = ModelOutput(text="", call=e.call)
            scores = [await scorer(state, ctx) for scorer in task.scorers]
            head = scores[0]
            values = {k: v for s in scores for k, v in s.values.items()}
            row.update(status="scored", score=head.value, scores=values, answer=head.answer,
                       explanation=head.explanation, error_category=category or head.error_category)
            if category:
                row.update(score=0.0, explanation=f"context length exceeded: {state.metadata['context_length']}"[:2000])
            score_json = [s.__dict__ for s in scores]
        except RunAborted:
            raise
        except InfraError as e:
            if isinstance(e, JudgeNoVerdict):
                await forget_unusable(ctx, state, e)
            if e.call is not None:
                state.calls.append(e.call)
            row.update(status="error", error=str(e))
            state.events.add("error", name=type(e).__name__, error="infrastructure", output=str(e))
        except Exception as e:  # a bug in a solver or scorer must not stop the run or pass as a model failure
            row.update(status="error", error=f"internal error: {type(e).__name__}: {e}")
            score_json = [{"traceback": traceback.format_exc()}]
            state.events.add("error", name=type(e).__name__, error="internal", output=str(e))
        if state.limit:  # the sample ended at a limit: a miss is put down to it
            state.metadata["limit"] = f"limit:{state.limit}"
            if row["status"] == "scored" and (row["score"] or 0) < 1:
                row["error_category"] = f"limit:{state.limit}"
        messages = [parse_message(m) for m in state.messages]
        prompt = next((m.text for m in reversed(messages) if m.role == "user"), None)
        row.update(prompt=_text(prompt), response=state.completion if state.output else None,
                   latency_s=time.perf_counter() - t0,
                   input_tokens=_sum(c.input_tokens for c in state.calls),
                   output_tokens=_sum(c.output_tokens for c in state.calls))
        calls = [{"sample_id": sample.id, "epoch": epoch, "idx": i, "kind": c.kind, "model": c.model,
                  "input_tokens": c.input_tokens, "output_tokens": c.output_tokens, "latency_s": c.latency_s,
                  "attempts": max(1, len(c.attempts)), "error": c.error, "started_at": c.started_at}
                 for i, c in enumerate(state.calls)]
        events = [e.to_json() for e in state.events]
        trace = {"messages": [m.model_dump(exclude_none=True) for m in messages],
                 "calls": [c.to_json() for c in state.calls], "scores": score_json, "metadata": state.metadata,
                 "events": events, **({"answer": state.answer} if state.answer is not None else {})}
        return SampleResult(rt_id, row, calls, trace, events)

    async def _write(self, results: asyncio.Queue) -> None:
        """Gather finished results for up to WRITE_INTERVAL_S, commit them in one transaction from a thread,
        repeat; the None sentinel flushes at once and ends it."""
        loop = asyncio.get_running_loop()
        while True:
            item, batch = await results.get(), []
            deadline = loop.time() + WRITE_INTERVAL_S
            while item is not None:
                batch.append(item)
                if len(batch) >= WRITE_BATCH:
                    break
                if not results.empty():
                    item = results.get_nowait()
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(results.get(), remaining)
                except asyncio.TimeoutError:
                    break
            if batch:
                for problem in await asyncio.to_thread(self.store.write, batch):
                    print(f"warning: {problem}", file=sys.stderr)
            if item is None:
                return


def _same_data_error(label: str, head: list[Sample]) -> None:
    """Stop before any work when the first samples of a task are all unusable for one reason (typically a data
    file in a format the task does not read): every other record would fail the same way."""
    reasons = {_reason(s.invalid) for s in head if s.invalid}
    if len(reasons) == 1 and all(s.invalid for s in head):
        reason = reasons.pop()
        lacks = reason.partition("KeyError: ")[2]
        what = f"the records lack the field {lacks} ({reason})" if lacks else reason
        unreadable = reason.startswith(("malformed record", "not JSON", "not a "))
        raise UsageError(f"{label}: every record read ({len(head)} of {len(head)}) is unusable the same way: {what}"
                         + ("; the data is not in the format this task reads: check --data" if unreadable else ""))


def _reason(invalid: str) -> str:
    """An invalid sample's reason without where it was found ("file.jsonl:3: not JSON (...)" -> "not JSON")."""
    import re

    return re.sub(r"^[^:]*:\d+: ", "", invalid).split(" (")[0]


def compute_metrics(task: Task, rows: list[dict[str, Any]], counts: dict[str, int],
                    planned: int | None = None) -> dict[str, Any]:
    """Overall and per-breakdown metrics; epochs of one sample are averaged before aggregating.

    Values are computed over the scored (sample, epoch) rows. An errored row has no value, so it is never
    counted as wrong nor silently dropped: metrics["counts"] = {"scored", "error", "planned"} travels with
    every value and metrics["complete"] is true only when every planned row is scored and none errored; a
    summary or leaderboard shows an incomplete task as incomplete with its errored count."""

    def aggregate(subset: list[dict[str, Any]]) -> dict[str, Any]:
        out = {}
        for metric in task.metrics:
            if isinstance(metric, CorpusMetric):
                rows_of: dict[str, list[dict[str, Any]]] = {}
                for r in subset:
                    rows_of.setdefault(r["sample_id"], []).append({"value": r["score"], **(r["scores"] or {})})
                if (mv := metric.compute_corpus(list(rows_of.values()))) is not None:
                    out[metric.name] = mv.to_json()
                continue
            per_sample: dict[str, list[float]] = {}
            for r in subset:
                v = r["score"] if metric.key == "value" else (r["scores"] or {}).get(metric.key)
                if v is not None:
                    per_sample.setdefault(r["sample_id"], []).append(float(v))
            for name, mv in metric.compute_named(list(per_sample.values())).items():
                out[name] = mv.to_json()
        return out

    by: dict[str, dict[str, Any]] = {}
    for key in task.breakdowns:
        groups: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            value = (r["metadata"] or {}).get(key)
            if value is not None:
                groups.setdefault(str(value), []).append(r)
        by[key] = {g: aggregate(groups[g]) for g in sorted(groups)}
    scored, errored = counts.get("scored", 0), counts.get("error", 0)
    planned = scored + errored if planned is None else planned
    return {"overall": aggregate(rows), "by": by, "headline": task.headline,
            "counts": {"scored": scored, "error": errored, "planned": planned},
            "complete": errored == 0 and scored >= planned}


def environment() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    packages = {}
    for name in ("harness", "datasets", "aiohttp", "sqlalchemy", "alembic", "tenacity", "pydantic", "docker", "vllm"):
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            pass
    return {"harness_version": packages.get("harness"), "git_commit": _git_commit(), "python": sys.version.split()[0],
            "platform": platform.platform(), "packages": packages}


def _git_commit() -> str | None:
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True,
                             timeout=5)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=Path(__file__).parent,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _sum(values) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None
