"""The tables. Every scored sample is a row; its full trace (messages, every call with its attempts) is a
compressed JSON blob addressed by its hash. Changing a table needs an Alembic revision in migrations/."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Run(Base):
    """One `harness eval` invocation: a model against one or more tasks, with everything needed to reproduce it."""

    __tablename__ = "runs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(16))  # running | finished | interrupted (stored; see lease_owner)
    model: Mapped[str] = mapped_column(String(200), index=True)  # as given, e.g. openai/gpt-4o-mini
    model_info: Mapped[dict] = mapped_column(JSON)  # endpoint, client options, limiter
    generate_config: Mapped[dict] = mapped_column(JSON)  # sampling settings sent with every call
    base_url: Mapped[str | None] = mapped_column(String(500))
    seed: Mapped[int | None] = mapped_column(Integer)
    epochs: Mapped[int] = mapped_column(Integer)
    plan: Mapped[dict] = mapped_column(JSON)  # limit, sample ids, data source, concurrency: how to redo it
    limiters: Mapped[dict] = mapped_column(JSON)  # every concurrency limit in force, by name
    environment: Mapped[dict] = mapped_column(JSON)  # harness version + git commit, python, packages, host
    command: Mapped[str] = mapped_column(Text)
    rescored_from: Mapped[str | None] = mapped_column(String(32))  # `harness rescore`: the run whose responses it re-judged
    # the lease of the process working on the run ("host:pid"), renewed every few seconds; a status 'running'
    # whose lease is stale (old heartbeat, or a dead pid on this host) is shown as interrupted
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    # None for a local run; for `--executor slurm`: {"kind", "workers", "lease_s", "max_attempts", "job_id",
    # "script" (the sbatch job script as submitted), "submitted_at"}
    executor: Mapped[dict | None] = mapped_column(JSON)


class RunTask(Base):
    """A task (at one variant) inside a run, with its data provenance and its final metrics."""

    __tablename__ = "run_tasks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    task: Mapped[str] = mapped_column(String(200), index=True)
    variant: Mapped[str] = mapped_column(String(100))
    task_args: Mapped[dict] = mapped_column(JSON)
    task_version: Mapped[str] = mapped_column(String(50))
    dataset: Mapped[dict] = mapped_column(JSON)  # Provenance: kind, location, revision, sha256
    samples_planned: Mapped[int | None] = mapped_column(Integer)
    metrics: Mapped[dict | None] = mapped_column(JSON)  # {"overall": {...}, "by": {key: {value: {...}}}}
    __table_args__ = (UniqueConstraint("run_id", "task", "variant"),)


class SampleRow(Base):
    """One finished (run, task, sample, epoch). status 'scored' rows count in metrics; 'error' rows are
    infrastructure failures (API gave up, bad record) and never count as the model's failures."""

    __tablename__ = "samples"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_task_id: Mapped[int] = mapped_column(ForeignKey("run_tasks.id", ondelete="CASCADE"))
    sample_id: Mapped[str] = mapped_column(String(300))
    epoch: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # scored | error
    score: Mapped[float | None] = mapped_column(Float)  # the headline value (1/0 for correct/incorrect)
    scores: Mapped[dict | None] = mapped_column(JSON)  # every named value from the scorers
    answer: Mapped[str | None] = mapped_column(Text)  # what was extracted from the response
    target: Mapped[str | None] = mapped_column(Text)
    prompt: Mapped[str | None] = mapped_column(Text)  # the last user message sent
    response: Mapped[str | None] = mapped_column(Text)  # the model's final text
    error_category: Mapped[str | None] = mapped_column(String(100))  # why a miss is a miss
    error: Mapped[str | None] = mapped_column(Text)  # infrastructure error, for status 'error'
    explanation: Mapped[str | None] = mapped_column(Text)
    sample_metadata: Mapped[dict | None] = mapped_column("metadata", JSON)
    input_tokens: Mapped[int | None] = mapped_column(Integer)
    output_tokens: Mapped[int | None] = mapped_column(Integer)
    latency_s: Mapped[float | None] = mapped_column(Float)
    trace_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # the fields whose text could not be stored as it was (lone surrogates, NUL): stored backslash-escaped
    escaped: Mapped[list | None] = mapped_column(JSON)
    __table_args__ = (UniqueConstraint("run_task_id", "sample_id", "epoch"),)


class CallRow(Base):
    """One model or judge call of a sample, for cost and latency analysis without opening traces."""

    __tablename__ = "calls"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_task_id: Mapped[int] = mapped_column(ForeignKey("run_tasks.id", ondelete="CASCADE"))
    sample_id: Mapped[str] = mapped_column(String(300))
    epoch: Mapped[int] = mapped_column(Integer)
    idx: Mapped[int] = mapped_column(Integer)  # order within the sample
    kind: Mapped[str] = mapped_column(String(16))  # model | judge
    model: Mapped[str] = mapped_column(String(200))
    input_tokens: Mapped[int | None] = mapped_column(Integer)
    output_tokens: Mapped[int | None] = mapped_column(Integer)
    latency_s: Mapped[float | None] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer)  # 1 + retries
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[float | None] = mapped_column(Float)
    __table_args__ = (Index("ix_calls_sample", "run_task_id", "sample_id", "epoch"),)


class EventRow(Base):
    """One step of a sample's trajectory (harness._events.Event): a model call, a tool call, a limit hit, an
    error, or a span (an agent's turn, a handoff). input / output are the truncated copy (harness._events.clip);
    the sample's trace keeps them whole. Replaced with its sample: a resume that redoes a sample rewrites them."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_task_id: Mapped[int] = mapped_column(ForeignKey("run_tasks.id", ondelete="CASCADE"))
    sample_id: Mapped[str] = mapped_column(String(300))
    epoch: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)  # 0-based order within the sample
    span: Mapped[int | None] = mapped_column(Integer)  # seq of the enclosing span event; None at top level
    agent: Mapped[str | None] = mapped_column(String(200))  # who took the step; None: the sample's only agent
    kind: Mapped[str] = mapped_column(String(16))  # model | tool | limit | error | span
    name: Mapped[str | None] = mapped_column(String(200))  # the model, tool, limit, or what the span is for
    input: Mapped[str | None] = mapped_column(Text)  # tool arguments (JSON), or the number of messages sent
    output: Mapped[str | None] = mapped_column(Text)  # tool result, or the assistant's text and tool calls (JSON)
    error: Mapped[str | None] = mapped_column(Text)  # the error's class: timeout, parsing, unknown_tool, ...
    started_at: Mapped[float | None] = mapped_column(Float)  # unix time
    latency_s: Mapped[float | None] = mapped_column(Float)
    input_tokens: Mapped[int | None] = mapped_column(Integer)
    output_tokens: Mapped[int | None] = mapped_column(Integer)
    # the fields whose text could not be stored as it was (lone surrogates, NUL): stored backslash-escaped
    escaped: Mapped[list | None] = mapped_column(JSON)
    # unique: one row per step; also the index a trajectory is read by
    __table_args__ = (Index("ix_events_step", "run_task_id", "sample_id", "epoch", "seq", unique=True),)


class WorkItem(Base):
    """One (run task, sample, epoch) of a run executed by workers (`harness eval --executor slurm`): the work
    queue. Workers claim queued items (SELECT ... FOR UPDATE SKIP LOCKED), hold a lease they renew by
    heartbeat, and mark an item done in the transaction that stores its sample row; a lease not renewed
    before `lease_expires` is returned to the queue by any worker's reaper, and an item that has used up its
    attempts becomes 'failed' with an errored sample row saying why. Local runs have no work items."""

    __tablename__ = "work_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)  # claim and lock order
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    run_task_id: Mapped[int] = mapped_column(ForeignKey("run_tasks.id", ondelete="CASCADE"))
    sample_id: Mapped[str] = mapped_column(String(300))
    epoch: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))  # queued | leased | done | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # claims so far (a claim is an attempt)
    lease_owner: Mapped[str | None] = mapped_column(String(200))  # the worker: "host:pid[:slurm job_task]"
    lease_expires: Mapped[datetime | None] = mapped_column(DateTime)  # UTC; renewed by the owner's heartbeat
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    error: Mapped[str | None] = mapped_column(Text)  # why the last attempt ended without a result (reaped, ...)
    __table_args__ = (UniqueConstraint("run_task_id", "sample_id", "epoch"),
                      Index("ix_work_items_claim", "run_id", "state", "id"))


class Worker(Base):
    """A worker process of a run: seen when it starts, its heartbeat, and when it stopped (for `harness show`)."""

    __tablename__ = "workers"
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)  # the lease owner it claims as
    started_at: Mapped[datetime] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime)
    done: Mapped[int] = mapped_column(Integer, default=0)  # items it stored
    status: Mapped[str] = mapped_column(String(16))  # working | stopped | failed


class Trace(Base):
    """zlib-compressed JSON: messages, calls (with attempts and raw metadata), score details."""

    __tablename__ = "traces"
    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class LeaderboardBuild(Base):
    """What one `harness leaderboard build` published, so the next build can show night-over-night changes."""

    __tablename__ = "leaderboard_builds"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), index=True)  # the leaderboard definition's name
    created_at: Mapped[datetime] = mapped_column(DateTime)
    cells: Mapped[dict] = mapped_column(JSON)  # {"suite|model|metric": {"value", "ci_low", "ci_high", "run_id"}}


class JudgeCacheRow(Base):
    """Judge answers by (judge model, endpoint, settings, prompt) hash: a repeated judge request is not sent again."""

    __tablename__ = "judge_cache"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    input_tokens: Mapped[int | None] = mapped_column(Integer)
    output_tokens: Mapped[int | None] = mapped_column(Integer)
    latency_s: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime)
