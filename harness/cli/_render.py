"""Tables for the terminal and the same numbers as JSON."""
from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table


def console() -> Console:
    """Tables piped to a file or a log keep their full width instead of wrapping at 80 columns."""
    import sys

    return Console() if sys.stdout.isatty() else Console(width=160)


def _emit_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def _fmt(m: dict[str, Any] | None) -> str:
    if not m:
        return "-"
    v, lo, hi = m["value"], m.get("ci_low"), m.get("ci_high")
    if lo is None:
        return f"{v:.2f}"
    return f"{v:.2f} [{lo:.2f}, {hi:.2f}]"


def run_summary(store, run_id: str) -> dict[str, Any]:
    from harness._registry import UsageError, get_task

    run = store.get_run(run_id)
    tasks = []
    for rt in store.run_tasks(run_id):
        try:
            reference = [r.__dict__ for r in get_task(rt["task"]).build(rt["variant"], rt["task_args"]).reference]
        except UsageError:
            reference = []  # a suite no longer installed: its stored numbers still show
        tasks.append({"task": rt["task"], "variant": rt["variant"], "task_version": rt["task_version"],
                      "dataset": rt["dataset"], "samples_planned": rt["samples_planned"],
                      "counts": store.status_counts(rt["id"]), "metrics": rt["metrics"], "reference": reference})
    return {"run": {k: run[k] for k in ("id", "model", "status", "created_at", "finished_at", "epochs",
                                        "generate_config", "environment", "limiters", "command")}, "tasks": tasks}


def print_run(store, run_id: str, *, as_json: bool = False) -> None:
    summary = run_summary(store, run_id)
    if as_json:
        _emit_json(summary)
        return
    out = console()
    run = summary["run"]
    out.print(f"[bold]run {run['id']}[/] · {run['model']} · {run['status']}", highlight=False)
    for t in summary["tasks"]:
        metrics = t["metrics"] or {"overall": {}, "by": {}}
        counts = t["counts"]
        label = t["task"] if t["variant"] == "default" else f"{t['task']}@{t['variant']}"
        ds = t["dataset"]
        title = (f"{label} v{t['task_version']} · data {ds['kind']} {ds.get('revision') or (ds.get('sha256') or '')[:12]}"
                 f" · {counts.get('scored', 0)} scored, {counts.get('error', 0)} errored")
        names = sorted({n for m in [metrics["overall"], *[g for by in metrics["by"].values() for g in by.values()]]
                        for n in m})
        table = Table(title=title, title_justify="left")
        table.add_column("group")
        for n in names:
            table.add_column(f"{n} (95% CI)", justify="right")
        table.add_column("n", justify="right")
        table.add_row("[bold]overall[/]", *[_fmt(metrics["overall"].get(n)) for n in names],
                      str(next((m["n"] for m in metrics["overall"].values()), 0)))
        for key, groups in metrics["by"].items():
            for group, m in groups.items():
                table.add_row(f"{key}={group}", *[_fmt(m.get(n)) for n in names],
                              str(next((x["n"] for x in m.values()), 0)))
        out.print(table)
        if t["reference"]:
            ref = Table(title=f"{label}: reported in the paper (not measured here)", title_justify="left")
            for col in ("model", "metric", "group", "value"):
                ref.add_column(col)
            for r in t["reference"]:
                ref.add_row(r["model"], r["metric"], r["group"] or "overall", f"{r['value']:.2f}")
            out.print(ref)
        if counts.get("error"):
            out.print(f"[red]{counts['error']} samples errored[/] (infrastructure, not counted as wrong); "
                          f"resume retries them: harness eval --resume {run['id']}", highlight=False)


def print_tasks(rows: list[dict[str, Any]], *, as_json: bool = False) -> None:
    if as_json:
        _emit_json(rows)
        return
    table = Table()
    for col in ("task", "version", "hub dataset", "revision", "samples", "bundled", "variants", "headline"):
        table.add_column(col, no_wrap=col in ("task", "hub dataset"))
    for r in rows:
        table.add_row(r["name"], r["version"], r["hub"] or "-", (r["revision"] or ("unpinned" if r["hub"] else "-"))[:12],
                      str(r["size"] or "?"), str(r["bundled_samples"] or "-"), ", ".join(r["variants"]), r["headline"])
    console().print(table)


def print_runs(runs: list[dict[str, Any]], *, as_json: bool = False) -> None:
    if as_json:
        _emit_json([{k: r[k] for k in ("id", "model", "status", "created_at", "finished_at", "tasks", "counts")}
                    for r in runs])
        return
    table = Table()
    for col in ("run", "created", "model", "tasks", "status", "scored", "errored"):
        table.add_column(col)
    for r in runs:
        table.add_row(r["id"], f"{r['created_at']:%Y-%m-%d %H:%M}", r["model"], ", ".join(r["tasks"]), r["status"],
                      str(r["counts"].get("scored", 0)), str(r["counts"].get("error", 0)))
    console().print(table)
