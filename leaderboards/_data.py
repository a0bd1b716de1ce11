"""The SQL a leaderboard is built from: aggregates and per-run metrics JSON, never every sample as objects.

Only the per-sample pages read sample rows, streamed a page at a time."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterator

from sqlalchemy import and_, case, func, literal, or_, select
from sqlalchemy.engine import Connection

from harness.store._schema import LeaderboardBuild, Run, RunTask, SampleRow, Trace
from harness.leaderboards._spec import LeaderboardSpec


@dataclass
class Entry:
    """One (run, task, variant) with stored metrics: a candidate for a leaderboard cell."""

    run_task_id: int
    run_id: str
    model: str
    task: str
    variant: str
    task_args: dict[str, Any]
    metrics: dict[str, Any]
    created_at: datetime
    status: str
    samples_planned: int | None = None
    usage: dict[str, Any] = field(default_factory=dict)

    @property
    def suite(self) -> str:
        return self.task if self.variant == "default" else f"{self.task}@{self.variant}"

    @property
    def state(self) -> dict[str, Any]:
        """{"scored", "error", "planned", "complete"}: an incomplete entry is shown, marked, and never ranked."""
        return completeness(self.metrics, None, self.samples_planned)


def entries(conn: Connection, spec: LeaderboardSpec) -> list[Entry]:
    """Every run task that has metrics (finished runs, plus pinned runs in any state), filtered by the spec."""
    q = (select(RunTask.id, RunTask.run_id, Run.model, RunTask.task, RunTask.variant, RunTask.task_args,
                RunTask.metrics, Run.created_at, Run.status, RunTask.samples_planned)
         .join(Run, Run.id == RunTask.run_id)
         .where(or_(Run.status == "finished", Run.id.in_(spec.pinned)))
         .order_by(Run.created_at, Run.id))
    if spec.models:
        q = q.where(Run.model.in_(spec.models))
    if spec.suites:
        q = q.where(RunTask.task.in_([s.task for s in spec.suites]))
    found = [Entry(*row) for row in conn.execute(q).all()]
    return [e for e in found if e.metrics and _variant_wanted(spec, e)]


def _variant_wanted(spec: LeaderboardSpec, e: Entry) -> bool:
    suite = spec.suite(e.task)
    return suite is None or not suite.variants or e.variant in suite.variants


def select_entries(found: list[Entry], spec: LeaderboardSpec) -> list[Entry]:
    """The run that counts for each (model, suite): the newest, unless one is pinned."""
    chosen: dict[tuple[str, str], Entry] = {}
    pinned: set[tuple[str, str]] = set()
    for e in found:  # oldest first, so a later run replaces an earlier one
        key = (e.model, e.suite)
        if e.run_id in spec.pinned:
            chosen[key] = e
            pinned.add(key)
        elif spec.select == "latest" and key not in pinned:
            chosen[key] = e
    return sorted(chosen.values(), key=lambda e: (e.suite, e.model))


def add_usage(conn: Connection, selected: list[Entry]) -> None:
    """Tokens and latency per sample for each entry, for the score-against-cost charts."""
    by_id = {e.run_task_id: e for e in selected}
    if not by_id:
        return
    q = (select(SampleRow.run_task_id, func.count(), func.count(SampleRow.input_tokens),
                func.sum(SampleRow.input_tokens), func.sum(SampleRow.output_tokens), func.avg(SampleRow.latency_s))
         .where(SampleRow.run_task_id.in_(list(by_id))).group_by(SampleRow.run_task_id))
    for rt_id, n, with_tokens, tin, tout, latency in conn.execute(q).all():
        tokens = (tin or 0) + (tout or 0)
        by_id[rt_id].usage = {"samples": n, "tokens_per_sample": tokens / with_tokens if with_tokens else None,
                              "latency_s": latency}


def run_rows(conn: Connection, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    rows = conn.execute(select(Run.__table__).where(Run.id.in_(run_ids))).mappings().all()
    return {r["id"]: dict(r) for r in rows}


def run_task_rows(conn: Connection, run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {rid: [] for rid in run_ids}
    q = select(RunTask.__table__).where(RunTask.run_id.in_(run_ids)).order_by(RunTask.id)
    for r in conn.execute(q).mappings().all():
        out[r["run_id"]].append(dict(r))
    return out


def status_counts(conn: Connection, rt_ids: list[int]) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {i: {} for i in rt_ids}
    q = (select(SampleRow.run_task_id, SampleRow.status, func.count())
         .where(SampleRow.run_task_id.in_(rt_ids)).group_by(SampleRow.run_task_id, SampleRow.status))
    for rt_id, status, n in conn.execute(q).all():
        out[rt_id][status] = n
    return out


# a failure: an infrastructure error, or a scored sample that is not fully correct or has an error category
FAILED = or_(SampleRow.status == "error",
             and_(SampleRow.status == "scored", or_(SampleRow.error_category.is_not(None), SampleRow.score < 1)))


def failure_category():
    """A sample's group for error analysis: its error category, with infrastructure errors, uncategorised
    misses and correct samples as groups of their own, so the groups add up to every sample."""
    return case((SampleRow.status == "error", literal("infrastructure error")),
                (FAILED, func.coalesce(SampleRow.error_category, literal("incorrect (no category)"))),
                else_=literal("(correct)"))


def failure_groups(conn: Connection, rt_id: int, examples: int = 5) -> list[dict[str, Any]]:
    """Failures by error category, with a few examples each and their position in the sample pages
    (samples are paged in (sample_id, epoch) order)."""
    ranked = (select(SampleRow.sample_id, SampleRow.epoch, SampleRow.status, SampleRow.error, SampleRow.score,
                     SampleRow.answer, failure_category().label("category"), FAILED.label("failed"),
                     func.row_number().over(order_by=(SampleRow.sample_id, SampleRow.epoch)).label("pos"))
              .where(SampleRow.run_task_id == rt_id).subquery())
    failed = select(ranked).where(ranked.c.failed).subquery()
    counts = dict(conn.execute(select(failed.c.category, func.count()).group_by(failed.c.category)).all())
    k = func.row_number().over(partition_by=failed.c.category, order_by=failed.c.pos).label("k")
    picked = select(failed, k).subquery()
    rows = conn.execute(select(picked).where(picked.c.k <= examples).order_by(picked.c.category, picked.c.k))
    groups: dict[str, dict[str, Any]] = {}
    for r in rows.mappings():
        g = groups.setdefault(r["category"], {"category": r["category"], "count": counts[r["category"]],
                                              "examples": []})
        g["examples"].append(dict(r))
    return sorted(groups.values(), key=lambda g: (-g["count"], g["category"]))


def failed_samples(conn: Connection, rt_id: int) -> Iterator[dict[str, Any]]:
    """Every failing sample of a run task with its category and position in the sample pages, by category."""
    ranked = (select(SampleRow.sample_id, SampleRow.epoch, SampleRow.status, SampleRow.error, SampleRow.score,
                     SampleRow.answer, failure_category().label("category"), FAILED.label("failed"),
                     func.row_number().over(order_by=(SampleRow.sample_id, SampleRow.epoch)).label("pos"))
              .where(SampleRow.run_task_id == rt_id).subquery())
    q = select(ranked).where(ranked.c.failed).order_by(ranked.c.category, ranked.c.pos)
    for row in conn.execution_options(stream_results=True, yield_per=1000).execute(q).mappings():
        yield dict(row)


SAMPLE_COLUMNS = (SampleRow.sample_id, SampleRow.epoch, SampleRow.status, SampleRow.score, SampleRow.scores,
                  SampleRow.answer, SampleRow.target, SampleRow.prompt, SampleRow.response,
                  SampleRow.error_category, SampleRow.error, SampleRow.explanation,
                  SampleRow.sample_metadata.label("metadata"), SampleRow.input_tokens, SampleRow.output_tokens,
                  SampleRow.latency_s)


def iter_samples(conn: Connection, rt_id: int, batch: int) -> Iterator[dict[str, Any]]:
    """Sample rows with their compressed trace, in page order, streamed in batches."""
    q = (select(*SAMPLE_COLUMNS, Trace.data.label("trace"))
         .outerjoin(Trace, Trace.hash == SampleRow.trace_hash)
         .where(SampleRow.run_task_id == rt_id).order_by(SampleRow.sample_id, SampleRow.epoch))
    result = conn.execution_options(stream_results=True, yield_per=batch).execute(q)
    for row in result.mappings():
        yield dict(row)


def previous_build(conn: Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(select(LeaderboardBuild.cells, LeaderboardBuild.created_at)
                       .where(LeaderboardBuild.name == name)
                       .order_by(LeaderboardBuild.created_at.desc(), LeaderboardBuild.id.desc()).limit(1)).first()
    return {"cells": row[0], "built_at": row[1].isoformat()} if row else None


def record_build(conn: Connection, name: str, built_at: datetime, cells: dict[str, Any]) -> None:
    conn.execute(LeaderboardBuild.__table__.insert().values(name=name, created_at=built_at, cells=cells))


def completeness(metrics: dict[str, Any] | None, counts: dict[str, int] | None = None,
                 planned: int | None = None) -> dict[str, Any]:
    """Whether a run task's numbers cover every planned sample: {"scored", "error", "planned", "complete"}.

    Read from the metrics JSON (`counts` with `planned`, and `complete`, written when the task finished);
    rows written before `complete` existed get it computed from the counts: complete when nothing errored
    and every planned sample was scored. `counts` (live status counts) and `planned` fill what the JSON lacks."""
    stored = (metrics or {}).get("counts") or {}
    live = counts or {}
    scored = int(stored.get("scored", live.get("scored", 0)) or 0)
    error = int(stored.get("error", live.get("error", 0)) or 0)
    planned = stored.get("planned", planned)
    complete = (metrics or {}).get("complete")
    if complete is None:
        complete = bool(metrics) and error == 0 and (planned is None or scored >= planned)
    return {"scored": scored, "error": error, "planned": planned, "complete": bool(complete)}
