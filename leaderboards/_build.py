"""Render a leaderboard as a static site: index, a page per suite, per run, and paged per-sample traces.

Everything is rendered by jinja2 with autoescape on, and every page forbids scripts by its Content
Security Policy: model output and dataset text are shown as text, never run. Run and sample pages of a
run that has not changed since the last build into the same folder are kept, not rendered again.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jinja2

from harness._registry import UsageError, get_task, task_names
from harness.leaderboards import _charts, _data
from harness.leaderboards._spec import LeaderboardSpec, load_spec

TEMPLATES = Path(__file__).parent / "templates"
MANIFEST = ".harness-leaderboard.json"
KEY_METRICS = 4  # columns of a suite's overall table (more when the paper reports more); the rest: "all metrics"
DATA_FILE = "leaderboard.json"


@dataclass
class BuildResult:
    out: Path
    suites: int
    models: int
    runs: int
    runs_rendered: int
    sample_pages: int
    seconds: float


@dataclass
class Suite:
    label: str
    task: str
    variant: str
    slug: str
    headline: str
    metrics: list[str]
    description: str
    reference: list[Any]
    entries: list[_data.Entry]
    key_metrics: list[str] = field(default_factory=list)  # the overall table's columns; the rest in "all metrics"
    reported: list[dict[str, Any]] = field(default_factory=list)  # paper numbers, one row per (model, setting)


def slug(text: str) -> str:
    """A file name for any string; a hash suffix keeps distinct strings distinct after replacement."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "x"
    return safe if safe == text else f"{safe}-{hashlib.sha1(text.encode()).hexdigest()[:6]}"


def environment() -> jinja2.Environment:
    # lenient undefined: stored JSON (environment, provenance, traces) differs between suites and versions,
    # and a missing field renders empty rather than failing the nightly build
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters["num"] = _num
    env.filters["pretty"] = lambda obj: json.dumps(obj, indent=2, ensure_ascii=False, default=str, sort_keys=True)
    env.filters["slug"] = slug
    env.globals["css"] = (TEMPLATES / "style.css").read_text()
    return env


def _num(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}" if isinstance(value, (int, float)) else str(value)


def _trajectory_module() -> str:
    from harness.store import _trajectory

    return _trajectory.__file__


def _templates_digest() -> str:
    h = hashlib.sha256(Path(__file__).read_bytes())
    h.update(Path(_trajectory_module()).read_bytes())  # how a trajectory is laid out is part of the page too
    for path in sorted([*TEMPLATES.glob("*.j2"), *TEMPLATES.glob("*.css")]):
        h.update(path.read_bytes())
    return h.hexdigest()


def build(store, out: str | Path, spec: LeaderboardSpec | None = None, *, previous: str | Path | None = None,
          record: bool = True, workers: int | None = None) -> BuildResult:
    """Build the site into `out` from the store's runs. previous: a folder of an earlier build to compare
    against; otherwise the last build of this leaderboard recorded in the database. record: remember this
    build in the database for the next one. workers: processes rendering run pages (default: one per core
    when there are many samples to render)."""
    t0 = time.perf_counter()
    spec = spec or load_spec()
    out = Path(out)
    built_at = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    with store.engine.connect() as conn:
        selected = _data.select_entries(_data.entries(conn, spec), spec)
        _data.add_usage(conn, selected)
        if previous is not None:
            prior = _read_previous(Path(previous))
        else:
            prior = _data.previous_build(conn, spec.name)
    suites = _suites(spec, selected)
    cells = {_key(s.label, e.model, m): _cell(e, m) for s in suites for e in s.entries for m in s.metrics
             if m in e.metrics.get("overall", {})}
    states = {(s.label, e.model): {**e.state, "run_id": e.run_id} for s in suites for e in s.entries}
    prior_cells = (prior or {}).get("cells", {})
    for key, cell in cells.items():
        cell["delta"] = _delta(cell, prior_cells.get(key))

    out.mkdir(parents=True, exist_ok=True)
    env = environment()
    board = [s for s in suites if s.entries and s.metrics]  # the index's columns: suites that have runs
    ranking = _ranking(board, cells, states)
    models = [r["model"] for r in ranking]
    common = {"title": spec.title, "spec": spec, "built_at": built_at, "prior": prior, "database": _redacted(store)}
    # pages that others link to first, the index last: a build that fails half-way leaves no broken links
    run_ids = sorted({e.run_id for e in selected})
    rendered, pages = _render_runs(store, env, out, run_ids, spec, common, workers)
    (out / "suites").mkdir(exist_ok=True)
    for s in suites:
        _write(out / "suites" / f"{s.slug}.html", env.get_template("suite.html.j2").render(
            root="../", suite=s, cells=cells, states=states, key=_key, charts=_suite_charts(s),
            breakdowns=_breakdowns(s), **common))
    for stale in set((out / "suites").glob("*.html")) - {out / "suites" / f"{s.slug}.html" for s in suites}:
        stale.unlink()
    _write(out / "index.html", env.get_template("index.html.j2").render(
        root="", suites=board, unrun=[s for s in suites if s not in board], ranking=ranking, cells=cells,
        states=states, key=_key, reference=_reference_by_suite(suites), aggregate=len(board) > 1, **common))
    public = {k: {f: v for f, v in c.items() if f != "delta"} for k, c in cells.items()}
    _write(out / DATA_FILE, json.dumps({"name": spec.name, "title": spec.title, "built_at": built_at.isoformat(),
                                        "suites": [s.label for s in suites], "models": models,
                                        "ranking": ranking, "cells": public},
                                       indent=1))
    if record:
        with store.engine.begin() as conn:
            _data.record_build(conn, spec.name, built_at, public)
    return BuildResult(out, len(suites), len(models), len(run_ids), rendered, pages, time.perf_counter() - t0)


def _key(suite: str, model: str, metric: str) -> str:
    return f"{suite}|{model}|{metric}"


def _cell(e: _data.Entry, metric: str) -> dict[str, Any]:
    m, state = e.metrics["overall"][metric], e.state
    return {"value": m["value"], "ci_low": m.get("ci_low"), "ci_high": m.get("ci_high"), "n": m.get("n"),
            "run_id": e.run_id, "complete": state["complete"], "errored": state["error"], "planned": state["planned"]}


def _delta(cell: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any] | None:
    """The change since the previous build; flagged when the earlier value lies outside this 95% CI."""
    if not before or before.get("value") is None:
        return None
    if round(cell["value"] - before["value"], 2) == 0:
        return None  # unchanged to the shown precision: no "+0.00" in every cell of a rebuild
    lo, hi = cell["ci_low"], cell["ci_high"]
    flagged = lo is not None and hi is not None and not (lo <= before["value"] <= hi)
    return {"change": cell["value"] - before["value"], "before": before["value"], "flagged": flagged,
            "same_run": before.get("run_id") == cell["run_id"]}


def _read_previous(folder: Path) -> dict[str, Any]:
    path = folder / DATA_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"--previous {folder}: no {DATA_FILE} there (is it a leaderboard build?)") from None
    except json.JSONDecodeError as e:
        raise UsageError(f"{path}: not JSON: {e}") from None
    return {"cells": data.get("cells", {}), "built_at": data.get("built_at")}


def _redacted(store) -> str:
    from sqlalchemy.engine import make_url

    return make_url(store.url).render_as_string(hide_password=True)


def _suites(spec: LeaderboardSpec, selected: list[_data.Entry]) -> list[Suite]:
    """Registered suites (or the declared ones) with each variant that has runs; a suite without runs still
    shows its paper numbers, and a suite no longer installed still shows its stored runs."""
    by_task: dict[str, dict[str, list[_data.Entry]]] = {}
    for e in selected:
        by_task.setdefault(e.task, {}).setdefault(e.variant, []).append(e)
    wanted = [s.task for s in spec.suites] if spec.suites else sorted(set(task_names()) | set(by_task))
    suites = []
    for task in wanted:
        declared = spec.suite(task)
        variants = (declared.variants if declared and declared.variants else None) or sorted(by_task.get(task, {})) \
            or ["default"]
        for variant in variants:
            found = by_task.get(task, {}).get(variant, [])
            try:
                built = get_task(task).build(variant)
                headline, description, reference = built.headline, built.description, built.reference
            except (UsageError, ImportError):  # not installed here: its stored runs still show
                headline, description, reference = None, "", []
            headline = headline or next((e.metrics.get("headline") for e in found), None) or ""
            stored = []
            for e in found:
                stored += [m for m in e.metrics.get("overall", {}) if m not in stored]
            metrics = (declared.metrics if declared and declared.metrics else
                       [headline] * bool(headline) + sorted(m for m in stored if m != headline))
            label = task if variant == "default" else f"{task}@{variant}"
            if metrics:  # best first, in tables and charts alike
                found = sorted(found, key=lambda e: (not e.state["complete"],  # incomplete runs after complete ones
                                                     -e.metrics["overall"].get(metrics[0], {}).get("value", -math.inf)))
            referenced = [r.metric for r in reference if r.group is None and r.metric in metrics]
            key = list(dict.fromkeys([*metrics[:1], *referenced]))
            key += [m for m in metrics if m not in key][:max(0, KEY_METRICS - len(key))]
            suites.append(Suite(label, task, variant, slug(label), headline, metrics, description, reference, found,
                                key, _reported_rows(reference)))
    return suites


def _ranking(board: list[Suite], cells: dict[str, Any], states: dict[tuple[str, str], Any]) -> list[dict[str, Any]]:
    """The index's rows, best first. A model is ranked on its complete results only (every planned sample
    scored, none errored): its aggregate is the mean ranking metric over those suites (all proportions are
    percentages, so they average). More suites rank first, then the higher aggregate. A model whose every
    result is incomplete is listed after the ranked ones, without a rank."""
    models = sorted({e.model for s in board for e in s.entries})
    rows = []
    for model in models:
        values, incomplete = {}, []
        for s in board:
            state = states.get((s.label, model))
            if state is None:
                continue
            c = cells.get(_key(s.label, model, s.metrics[0]))
            if state["complete"] and c is not None:
                values[s.label] = c["value"]
            else:
                incomplete.append(s.label)
        rows.append({"model": model, "aggregate": sum(values.values()) / len(values) if values else None,
                     "suites": len(values), "of": len(board), "incomplete": incomplete, "rank": None})
    rows.sort(key=lambda r: (r["aggregate"] is None, -r["suites"], -(r["aggregate"] or 0.0), r["model"]))
    for i, r in enumerate(x for x in rows if x["aggregate"] is not None):
        r["rank"] = i + 1
    return rows


def _reported_rows(reference: list[Any]) -> list[dict[str, Any]]:
    """The paper's overall numbers merged into one row per (model, setting): a setting is told apart by its
    model label and note (e.g. the split), so a table with one column per metric gets one row per setting."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for r in reference:
        if r.group is None:
            row = rows.setdefault((r.model, r.note), {"model": r.model, "note": r.note, "source": r.source,
                                                      "values": {}})
            row["values"][r.metric] = r.value
    return list(rows.values())


def _reference_by_suite(suites: list[Suite]) -> list[dict[str, Any]]:
    """For the index's collapsed section: per suite, the paper's overall numbers on its ranking metric."""
    out = []
    for s in suites:
        if not s.metrics:
            continue
        rows = sorted(({"model": r["model"], "note": r["note"], "source": r["source"],
                        "value": r["values"][s.metrics[0]]} for r in s.reported if s.metrics[0] in r["values"]),
                      key=lambda r: -r["value"])
        if rows:
            out.append({"suite": s, "metric": s.metrics[0], "rows": rows})
    return out


def _breakdowns(s: Suite) -> list[dict[str, Any]]:
    """Every breakdown the suite's stored metrics hold, read generically from the metrics JSON."""
    keys: list[str] = []
    for e in s.entries:
        keys += [k for k in e.metrics.get("by", {}) if k not in keys]
    out = []
    for key in keys:
        groups: list[str] = []
        for e in s.entries:
            groups += [g for g in e.metrics["by"].get(key, {}) if g not in groups]
        refs = {}
        for r in s.reference:
            if r.group and r.group.startswith(f"{key}="):
                refs.setdefault(r.model, {})[(r.group.partition("=")[2], r.metric)] = r
        tables = []
        for metric in s.metrics:
            values = {(g, e.model): e.metrics["by"][key][g][metric] for e in s.entries
                      for g in e.metrics["by"].get(key, {}) if metric in e.metrics["by"][key][g]}
            if values:
                tables.append({"metric": metric, "values": values,
                               "chart": _charts.bar_chart(groups, [e.model for e in s.entries], values)})
        out.append({"key": key, "groups": groups, "tables": tables, "reference": refs})
    return out


def _suite_charts(s: Suite) -> dict[str, Any]:
    if not s.metrics:
        return {"overall": None, "tokens": None}
    metric = s.metrics[0]
    with_metric = [e for e in s.entries if metric in e.metrics.get("overall", {})]
    overall = _charts.bar_chart([e.model for e in with_metric], [metric],
                                {(e.model, metric): e.metrics["overall"][metric] for e in with_metric})
    points = [{"x": e.usage["tokens_per_sample"], "y": e.metrics["overall"][metric]["value"], "label": e.model,
               "ci_low": e.metrics["overall"][metric].get("ci_low"),
               "ci_high": e.metrics["overall"][metric].get("ci_high")}
              for e in with_metric if e.usage.get("tokens_per_sample")]
    return {"overall": overall, "tokens": _charts.scatter(points, "tokens per sample", metric)}


def _write(path: Path, text: str) -> None:
    # a model's text can hold a lone surrogate (traces keep it as the model sent it): written as its \ud800-style escape
    path.write_text(text, encoding="utf-8", errors="backslashreplace")


# ---- runs and samples

PARALLEL_MIN_SAMPLES = 10_000  # below this, starting worker processes costs more than it saves


def _render_runs(store, env: jinja2.Environment, out: Path, run_ids: list[str], spec: LeaderboardSpec,
                 common: dict[str, Any], workers: int | None) -> tuple[int, int]:
    manifest_path = out / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        manifest = {}
    kept = manifest.get("runs", {})
    digest = _templates_digest()
    runs_dir = out / "runs"
    runs_dir.mkdir(exist_ok=True)
    with store.engine.connect() as conn:
        runs = _data.run_rows(conn, run_ids)
        tasks = _data.run_task_rows(conn, run_ids)
        counts = _data.status_counts(conn, [t["id"] for ts in tasks.values() for t in ts])
    fresh, jobs = {}, []
    for run_id in run_ids:
        run, rts = runs[run_id], tasks[run_id]
        fp = hashlib.sha256(json.dumps([run["status"], run["finished_at"], digest, spec.sample_page_size,
                                        [(t["id"], t["metrics"], counts[t["id"]]) for t in rts]],
                                       default=str, sort_keys=True).encode()).hexdigest()
        fresh[run_id] = fp
        folder = runs_dir / slug(run_id)
        if kept.get(run_id) == fp and (folder / "index.html").is_file():
            continue
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir()
        jobs.append((folder, run, rts, {t["id"]: counts[t["id"]] for t in rts}))
    for run_id in set(kept) - set(fresh):  # runs that no longer count: their pages would be orphans
        shutil.rmtree(runs_dir / slug(run_id), ignore_errors=True)
    samples = sum(sum(c.values()) for *_, cs in jobs for c in cs.values())
    if workers is None:
        workers = (os.cpu_count() or 1) if samples >= PARALLEL_MIN_SAMPLES else 1
    workers = min(workers, len(jobs))
    if workers > 1 and not store.url.endswith(":memory:"):
        # rendering is CPU-bound Python: one process per core, each with its own connection
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            pages = sum(pool.map(_render_run_job, [(store.url, spec.sample_page_size, common, *job) for job in jobs]))
    else:
        pages = sum(_render_run(store.engine, env, *job, spec.sample_page_size, common) for job in jobs)
    _write(manifest_path, json.dumps({"runs": fresh}))
    return len(jobs), pages


def _render_run_job(args: tuple) -> int:
    """A worker process's share: its own engine and template environment."""
    from sqlalchemy import create_engine

    url, page_size, common, *job = args
    engine = create_engine(url)
    try:
        return _render_run(engine, environment(), *job, page_size, common)
    finally:
        engine.dispose()


def _render_run(engine, env: jinja2.Environment, folder: Path, run: dict[str, Any], rts: list[dict[str, Any]],
                counts: dict[int, dict[str, int]], page_size: int, common: dict[str, Any]) -> int:
    sections, pages = [], 0
    with engine.connect() as conn:
        for rt in rts:
            label = rt["task"] if rt["variant"] == "default" else f"{rt['task']}@{rt['variant']}"
            total = sum(counts[rt["id"]].values())
            n_pages = max(1, math.ceil(total / page_size))
            index = _render_samples(conn, env, folder / slug(label), run, label, rt["id"], n_pages, page_size,
                                    common)
            _render_failures(conn, env, folder / slug(label), run, label, rt["id"], page_size, common)
            sections.append({"label": label, "slug": slug(label), "rt": rt, "counts": counts[rt["id"]],
                             "state": _data.completeness(rt["metrics"], counts[rt["id"]], rt["samples_planned"]),
                             "failures": _data.failure_groups(conn, rt["id"]), "pages": n_pages,
                             "page_size": page_size, "samples": index})
            pages += n_pages
    _write(folder / "index.html", env.get_template("run.html.j2").render(root="../../", run=run, sections=sections,
                                                                        **common))
    return pages


def _render_samples(conn, env: jinja2.Environment, folder: Path, run: dict[str, Any], label: str, rt_id: int,
                    n_pages: int, page_size: int, common: dict[str, Any]) -> list[SimpleNamespace]:
    """Write the sample pages; returns each sample's link and outcome for the run page's index."""
    folder.mkdir()
    index = []
    template = env.get_template("samples.html.j2")
    page, batch, pos = 1, [], 0

    def flush() -> None:
        _write(folder / f"p{page}.html", template.render(root="../../../", run=run, label=label, samples=batch,
                                                        page=page, pages=n_pages, **common))

    for row in _data.iter_samples(conn, rt_id, page_size):
        pos += 1
        view = _sample_view(row, pos)
        batch.append(view)
        outcome = "error" if view.status == "error" else ("correct" if view.score == 1 else "wrong")
        index.append(SimpleNamespace(sample_id=view.sample_id, epoch=view.epoch, outcome=outcome,
                                     href=f"p{page}.html#s{pos}"))
        if len(batch) == page_size:
            flush()
            page, batch = page + 1, []
    if batch or page == 1:
        flush()
    return index


def _render_failures(conn, env: jinja2.Environment, folder: Path, run: dict[str, Any], label: str, rt_id: int,
                     page_size: int, common: dict[str, Any]) -> None:
    """One static page per error category listing every failing sample of it, each linked to its place in the
    sample pages: the site has no scripts, so filtering to failures is done when it is built."""
    template = env.get_template("failures.html.j2")
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in _data.failed_samples(conn, rt_id):
        groups.setdefault(row["category"], []).append(
            {**row, "href": f"../p{(row['pos'] - 1) // page_size + 1}.html#s{row['pos']}"})
    if groups:
        (folder / "failures").mkdir()
    for category, rows in groups.items():
        _write(folder / "failures" / f"{slug(category)}.html", template.render(
            root="../../../../", run=run, label=label, category=category, samples=rows,
            categories=sorted(groups, key=lambda c: (-len(groups[c]), c)), counts={c: len(v) for c, v in groups.items()},
            **common))


def _conversation_summary(messages: list[SimpleNamespace]) -> str:
    """What a sample's conversation holds, named only where present: '2 messages: system, user, assistant'
    or '9 messages · 3 tool calls · 3 tool results'."""
    if not messages:
        return "no messages stored"
    calls = sum(m.n_tool_calls for m in messages)
    results = sum(1 for m in messages if m.role == "tool")
    parts = [f"{len(messages)} message{'s' if len(messages) != 1 else ''}"]
    if calls:
        parts.append(f"{calls} tool call{'s' if calls != 1 else ''}")
    if results:
        parts.append(f"{results} tool result{'s' if results != 1 else ''}")
    if not calls and not results:
        return f"{parts[0]}: {', '.join(dict.fromkeys(m.role for m in messages))}"
    return " · ".join(parts)


STEP_COLLAPSED_CHARS = 600  # a tool result or message longer than this (or than STEP_COLLAPSED_LINES) starts folded
STEP_COLLAPSED_LINES = 12


def _agentic(trace: dict[str, Any]) -> bool:
    for e in trace.get("events") or []:
        if not isinstance(e, dict):
            continue
        if e.get("kind") in ("tool", "span", "limit"):
            return True
        if isinstance(e.get("output"), dict) and e["output"].get("tool_calls"):
            return True
    return any(isinstance(m, dict) and (m.get("role") == "tool" or m.get("tool_calls")) for m in trace.get("messages") or [])


def _trajectory_view(trace: dict[str, Any]) -> list[SimpleNamespace]:
    """An agent sample's steps turn by turn (harness.store._trajectory), or nothing for a sample without tools,
    spans or limits (a plain generate; its status row shows an error): its conversation already shows it all.
    Long texts carry `folded`, so the page collapses them."""
    from harness.store._trajectory import format_arguments, steps

    if not _agentic(trace):
        return []

    def folded(value: str) -> bool:
        return len(value) > STEP_COLLAPSED_CHARS or value.count("\n") >= STEP_COLLAPSED_LINES

    out = []
    for step in steps(trace):
        calls = [SimpleNamespace(**c, shown=format_arguments(c["arguments"]) if c["arguments"] not in (None, {}, "")
                                 else "") for c in step["tool_calls"]]
        for c in calls:
            c.folded = folded(c.shown)
        out.append(SimpleNamespace(**{**step, "tool_calls": calls}, folded=folded(step["text"]),
                                   indent=min(step["depth"], 6)))
    return out


def _sample_view(row: dict[str, Any], pos: int) -> SimpleNamespace:
    """What a sample page shows; an object rather than a dict because jinja2 resolves attributes first."""
    trace = json.loads(zlib.decompress(row.pop("trace"))) if row.get("trace") else {}
    messages = []
    for m in trace.get("messages", []):
        content = m.get("content")
        messages.append(SimpleNamespace(
            role=m.get("role", "?"), name=m.get("name") or m.get("tool_call_id"),
            content=content if isinstance(content, str) or content is None else json.dumps(content, indent=2,
                                                                                         ensure_ascii=False),
            tool_calls=json.dumps(m["tool_calls"], indent=2, ensure_ascii=False) if m.get("tool_calls") else None,
            n_tool_calls=len(m["tool_calls"]) if isinstance(m.get("tool_calls"), list) else int(bool(m.get("tool_calls")))))
    calls = [SimpleNamespace(kind=c.get("kind"), model=c.get("model"), input_tokens=c.get("input_tokens"),
                             output_tokens=c.get("output_tokens"), latency_s=c.get("latency_s"),
                             attempts=len(c.get("attempts") or []) or 1, error=c.get("error"), text=c.get("text"))
             for c in trace.get("calls", [])]
    details = [d for d in trace.get("scores", []) if d]
    return SimpleNamespace(
        **row, pos=pos, messages=messages, calls=calls, conversation=_conversation_summary(messages),
        trajectory=_trajectory_view(trace),
        scores_json=json.dumps(row["scores"], ensure_ascii=False) if row["scores"] else None,
        metadata_json=json.dumps(row["metadata"], ensure_ascii=False) if row["metadata"] else None,
        details=json.dumps(details, indent=1, ensure_ascii=False, default=str) if details else None,
        trace_metadata=json.dumps(trace["metadata"], indent=1, ensure_ascii=False, default=str)
        if trace.get("metadata") else None)
