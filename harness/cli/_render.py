"""Tables for the terminal and the same numbers as JSON.

A run's summary is laid out for a terminal of 80 to 200 columns: per task, one metric per row (its name in
full, the value with its 95% CI, n, and the paper's numbers for that metric beside it), the headline and a
few key metrics by default, every metric with --metrics all. A task with errored or missing samples is
marked incomplete, and the errored count stands beside every value."""
from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

KEY_METRICS = 4  # metrics shown by default (more when the paper reports more of them)
PAPER_SHOWN = 2  # reported numbers beside a metric by default (else the best of them); --metrics all: every one


def console() -> Console:
    """Tables piped to a file or a log keep their full width instead of wrapping at 80 columns ($COLUMNS wins)."""
    import os
    import sys

    if sys.stdout.isatty():
        return Console()
    columns = os.environ.get("COLUMNS", "")
    return Console(width=int(columns) if columns.isdigit() and int(columns) > 0 else 160)


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
    from harness.leaderboards._data import completeness

    run = store.get_run(run_id)
    tasks = []
    for rt in store.run_tasks(run_id):
        try:
            reference = [r.__dict__ for r in get_task(rt["task"]).build(rt["variant"], rt["task_args"]).reference]
        except UsageError:
            reference = []  # a suite no longer installed: its stored numbers still show
        counts = store.status_counts(rt["id"])
        state = completeness(rt["metrics"], counts, rt["samples_planned"])
        tasks.append({"task": rt["task"], "variant": rt["variant"], "task_version": rt["task_version"],
                      "dataset": rt["dataset"], "samples_planned": rt["samples_planned"],
                      "counts": counts, "completeness": state, "complete": state["complete"],
                      "status": "complete" if state["complete"] else "incomplete",
                      "metrics": rt["metrics"], "reference": reference})
    return {"run": {k: run[k] for k in ("id", "model", "status", "created_at", "finished_at", "epochs",
                                        "generate_config", "environment", "limiters", "command")}, "tasks": tasks,
            **({"queue": {**queue, "job_id": (run.get("executor") or {}).get("job_id")}}
               if (queue := store.queue_status([run_id]).get(run_id)) else {})}


def queue_line(queue: dict[str, Any]) -> str:
    """A queued run's progress: items by state and its workers (harness._worker)."""
    items, workers = queue["items"], queue["workers"]
    total = sum(items.values())
    states = ", ".join(f"{items[s]} {s}" for s in ("done", "leased", "queued", "failed") if items.get(s))
    alive = sum(1 for w in workers.values() if w["status"] == "working")
    return f"queue {items.get('done', 0)}/{total} done ({states}) · workers {alive} working, {len(workers)} seen"


def shown_metrics(metrics: dict[str, Any], reference: list[dict[str, Any]], choice: str = "key") -> list[str]:
    """Which metrics a summary shows: "key" (the headline, the ones the paper reports, then others up to
    KEY_METRICS), "all", or a comma-separated list of names (unknown names are a usage error)."""
    from harness._registry import UsageError

    stored = list(metrics.get("overall") or {})
    if choice == "all":
        return stored
    if choice != "key":
        wanted = [m.strip() for m in choice.split(",") if m.strip()]
        unknown = [m for m in wanted if m not in stored]
        if unknown:
            raise UsageError(f"--metrics {choice!r}: no metric {', '.join(unknown)} here; this task has "
                             f"{', '.join(stored)} (or use --metrics all)")
        return wanted
    headline = metrics.get("headline")
    out = [headline] if headline in stored else []
    out += [r["metric"] for r in reference if r["group"] is None and r["metric"] in stored and r["metric"] not in out]
    out = list(dict.fromkeys(out))
    out += [m for m in stored if m not in out][:max(0, KEY_METRICS - len(out))]
    return out


def _paper(refs: list[dict[str, Any]], everything: bool) -> str:
    """The reported numbers for one metric and group, best first: 'value model' each."""
    ranked = sorted(refs, key=lambda r: -r["value"])
    if everything or len(ranked) <= PAPER_SHOWN:
        return "; ".join(f"{r['value']:.2f} {r['model']}" for r in ranked)
    return f"{ranked[0]['value']:.2f} {ranked[0]['model']} (best of {len(ranked)})"


def _label(t: dict[str, Any]) -> str:
    return t["task"] if t["variant"] == "default" else f"{t['task']}@{t['variant']}"


def print_run(store, run_id: str, *, as_json: bool = False, metrics: str = "key") -> None:
    summary = run_summary(store, run_id)
    if as_json:
        _emit_json(summary)
        return
    out = console()
    run = summary["run"]
    out.print(f"[bold]run {escape(run['id'])}[/] · {escape(run['model'])} · {run['status']}", highlight=False)
    if "queue" in summary:
        out.print(f"{queue_line(summary['queue'])} · Slurm job {summary['queue']['job_id']}", highlight=False)
    hidden_any = False
    for t in summary["tasks"]:
        hidden_any |= _print_task(out, run, t, metrics)
    if hidden_any:
        out.print(f"Every metric and breakdown: harness show {run['id']} --metrics all", highlight=False)


def _print_task(out: Console, run: dict[str, Any], t: dict[str, Any], choice: str) -> bool:
    """One task's tables; returns whether some metrics were left out."""
    metrics = t["metrics"] or {"overall": {}, "by": {}}
    state, label, ds = t["completeness"], _label(t), t["dataset"]
    errored, planned, scored = state["error"], state["planned"], state["scored"]
    missing = max(0, (planned or 0) - scored - errored)
    state = "[green]complete[/]" if t["complete"] else "[bold red]INCOMPLETE[/]"
    out.print(f"\n[bold]{escape(label)}[/] v{t['task_version']} · data {ds['kind']} "
              f"{ds.get('revision') or (ds.get('sha256') or '')[:12]} · {scored}"
              f"{f'/{planned}' if planned else ''} scored, {errored} errored · {state}", highlight=False)
    names = shown_metrics(metrics, t["reference"], choice)
    everything = choice != "key"
    overall_refs: dict[str, list[dict[str, Any]]] = {}
    for r in t["reference"]:
        overall_refs.setdefault((r["group"] or "", r["metric"]), []).append(r)
    headline = metrics.get("headline")
    err_note = f" [red]+{errored} err[/]" if errored else ""

    table = Table()
    table.add_column("metric", no_wrap=True)
    table.add_column("value [95% CI]", no_wrap=True, justify="right")
    table.add_column("n", no_wrap=True, justify="right")
    any_paper = any(overall_refs.get(("", n)) for n in names)
    if any_paper:
        table.add_column("paper (reported)", overflow="fold", ratio=1, min_width=12)
    for n in names:
        m = metrics["overall"].get(n)
        name = f"[bold]{escape(n)}[/]" if n == headline else escape(n)
        row = [name, _fmt(m), f"{m['n'] if m else 0}{err_note}"]
        if any_paper:
            row.append(escape(_paper(overall_refs.get(("", n), []), everything)))
        table.add_row(*row)
    if names:
        out.print(table)
    hidden = len(metrics["overall"]) - len(names)
    notes = [f"headline: {escape(headline)}"] if headline and names else []
    if hidden > 0:
        notes.append(f"{hidden} more metric{'s' if hidden != 1 else ''} (--metrics all)")
    if any_paper:
        notes.append("paper: the suite's paper, not measured here")
    if notes:
        out.print(f"[dim]{' · '.join(notes)}[/]", highlight=False)

    by_metrics = names if everything else [headline] if headline in names else names[:1]
    groups = [(key, g, m) for key, gs in (metrics.get("by") or {}).items() for g, m in gs.items()]
    if groups and by_metrics:
        sub = Table(title=f"{escape(label)} by group", title_justify="left")
        sub.add_column("group", overflow="fold")
        if len(by_metrics) > 1:
            sub.add_column("metric", no_wrap=True)
        sub.add_column("value [95% CI]", no_wrap=True, justify="right")
        sub.add_column("n", no_wrap=True, justify="right")
        group_paper = any(overall_refs.get((f"{key}={g}", n)) for key, g, _ in groups for n in by_metrics)
        if group_paper:
            sub.add_column("paper", overflow="fold", ratio=1, min_width=12)
        for key, g, m in groups:
            for n in by_metrics:
                if n not in m:
                    continue
                row = [escape(f"{key}={g}"), *([escape(n)] if len(by_metrics) > 1 else []), _fmt(m[n]), str(m[n]["n"])]
                if group_paper:
                    row.append(escape(_paper(overall_refs.get((f"{key}={g}", n), []), everything)))
                sub.add_row(*row)
        out.print(sub)
    if errored or missing:
        why = []
        if errored:
            why.append(f"{errored} errored (infrastructure; not in these numbers)")
        if missing:
            why.append(f"{missing} not run")
        out.print(f"[red]incomplete: {', '.join(why)}[/]; resume does the rest: harness eval --resume {run['id']}",
                  highlight=False)
    return hidden > 0 or (not everything and len(by_metrics) < len(names))


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


def print_runs(runs: list[dict[str, Any]], *, as_json: bool = False, url: str = "") -> None:
    if as_json:
        _emit_json([{k: r[k] for k in ("id", "model", "status", "created_at", "finished_at", "tasks", "counts",
                                       "queue") if k in r} for r in runs])
        return
    if not runs:
        print(f"No runs yet{f' in {url}' if url else ''}. Make one with, e.g.: "
              "harness eval --model reference --task cipherbank --data bundled")
        return
    table = Table()
    for col in ("run", "created", "model", "tasks", "status", "scored", "errored"):
        table.add_column(col)
    for r in runs:
        table.add_row(escape(r["id"]), f"{r['created_at']:%Y-%m-%d %H:%M}", escape(r["model"]),
                      escape(", ".join(r["tasks"])),
                      r["status"] + (f" · {queue_line(r['queue'])}" if r.get("queue") else ""),
                      str(r["counts"].get("scored", 0)), str(r["counts"].get("error", 0)))
    console().print(table)


# ---- a sample's trajectory (harness show RUN --sample ID)

SHOWN_MAX = 4000  # characters of one message, tool call or tool result printed; --json has them whole
# C0 and C1 control characters but newline and tab: an ANSI escape in a tool's output could retitle, clear or
# rewrite the terminal, so they are shown as \xNN (rich passes ESC through, markup escaping does not touch it)
_CONTROLS = {c: f"\\x{c:02x}" for c in [*range(0x00, 0x20), *range(0x7f, 0xa0)] if chr(c) not in "\n\t"}


def untrusted(value: Any, limit: int = SHOWN_MAX, style: str = "") -> "Text":
    """Text from a model, a tool or a dataset, for the terminal: a rich Text (so markup in it is never read),
    control characters made visible, cut at `limit` characters with the cut said."""
    from rich.text import Text

    value = "" if value is None else str(value)
    if len(value) > limit:
        value = value[:limit] + f"\n... [{len(value) - limit} more characters: --json shows everything]"
    return Text(value.translate(_CONTROLS), style=style)


def _heading(*parts: "Text | str", style: str = "bold") -> "Text":
    from rich.text import Text

    line = Text("── ", style="dim")
    for part in parts:
        line.append(part if isinstance(part, Text) else Text(part, style=style))
    return line


def _who(step: dict[str, Any]) -> "Text":
    from rich.text import Text

    return untrusted(f" [{step['agent']}]", 200, "magenta") if step.get("agent") else Text("")


def _stats(step: dict[str, Any]) -> str:
    bits = []
    if step.get("input_tokens") is not None or step.get("output_tokens") is not None:
        bits.append(f"{step.get('input_tokens') if step.get('input_tokens') is not None else '-'} in / "
                    f"{step.get('output_tokens') if step.get('output_tokens') is not None else '-'} out")
    if step.get("latency_s"):
        bits.append(f"{step['latency_s']:.2f} s")
    return f" · {' · '.join(bits)}" if bits else ""


def transcript(step_list: list[dict[str, Any]], end: dict[str, Any]) -> list[Any]:
    """The renderables of one sample's transcript: a heading and a body per step, indented by span depth, and
    a last line with how the sample ended."""
    from rich.text import Text

    from harness.store._trajectory import format_arguments

    out: list[Any] = []

    def put(text: Text, depth: int, extra: int = 0) -> None:
        # each line indented by hand: rich's Padding would pad every line out to the terminal's width
        margin = " " * (2 * depth + extra)
        out.append(Text("\n").join(Text(margin) + line for line in text.split("\n")) if margin else text)

    for s in step_list:
        depth, kind = s["depth"], s["kind"]
        if kind == "message":
            put(_heading(untrusted(s["role"], 50, "bold cyan")), depth)
            put(untrusted(s["text"]), depth)
        elif kind == "assistant":
            name = untrusted(f" · {s['name']}", 200, "dim") if s.get("name") else Text("")
            put(_heading(Text("assistant", style="bold green"), _who(s), name, Text(_stats(s), style="dim")), depth)
            if s["text"]:
                put(untrusted(s["text"]), depth)
            for call in s["tool_calls"]:
                head = Text("→ call ", style="yellow") + untrusted(call["function"], 200, "bold yellow")
                if call.get("id"):
                    head.append(untrusted(f" ({call['id']})", 200, "dim"))
                if call.get("parse_error"):
                    head.append(untrusted(f"  arguments did not parse: {call['parse_error']}", 500, "bold red"))
                put(head, depth, 2)
                if call["arguments"] not in (None, {}, ""):
                    put(untrusted(format_arguments(call["arguments"])), depth, 4)
        elif kind == "tool":
            head = [Text("tool ", style="bold blue"), untrusted(s["name"] or "?", 200, "bold blue"), _who(s),
                    Text(_stats(s), style="dim")]
            if s.get("error"):
                head.append(untrusted(f"  ERROR {s['error']}", 200, "bold red"))
            put(_heading(*head), depth)
            if s.get("error_message") and s["error_message"] not in s["text"]:
                put(untrusted(s["error_message"], style="red"), depth)
            put(untrusted(s["text"] if s["text"] else "(no output)"), depth)
        elif kind == "span":
            put(_heading(Text("▸ ", style="bold magenta"), untrusted(s["name"] or "span", 200, "bold magenta"),
                         _who(s), Text(_stats(s), style="dim")), depth)
        elif kind == "limit":
            put(_heading(Text("LIMIT ", style="bold red"), untrusted(s["name"] or "?", 200, "bold red"), _who(s),
                         Text(" hit: the sample ended here and was scored with what it had", style="red")), depth)
            if s["text"]:
                put(untrusted(s["text"], style="red"), depth)
        else:  # error and anything newer
            put(_heading(untrusted(f"{kind.upper()} ", 50, "bold red"), untrusted(s["name"] or "", 200, "bold red"),
                         _who(s), untrusted(f" {s['error']}" if s.get("error") else "", 500, "red")), depth)
            if s["text"]:
                put(untrusted(s["text"], style="red"), depth)
    line = Text("── final: ", style="bold")
    line.append(untrusted(end["status"], 50, "bold green" if end["status"] == "scored" else "bold red"))
    if end["status"] == "scored":
        line.append(f" · score {end['score']:g}" if isinstance(end["score"], (int, float)) else " · no score")
    for key, label in (("answer", "answer"), ("target", "target"), ("error_category", "category"),
                       ("limit", "limit"), ("error", "error")):
        if end.get(key) not in (None, ""):
            line.append(f" · {label} ")
            line.append(untrusted(end[key], 500, "red" if key == "error" else ""))
    out.append(line)
    return out


def print_trajectories(store, run_id: str, sample_id: str, *, epoch: int | None = None, task: str | None = None,
                       as_json: bool = False) -> None:
    """`harness show RUN --sample ID`: each stored (task, epoch) of the sample as a transcript, or as JSON
    ({run_id, task, variant, sample_id, epoch, outcome..., events, messages} per row: the trace's full events)."""
    from harness._registry import UsageError
    from harness.store._trajectory import outcome, steps

    rows = store.sample_rows(run_id, sample_id, epoch)
    if task is not None:
        name, _, variant = task.partition("@")
        rows = [r for r in rows if r["task"] == name and r["variant"] == (variant or "default")]
    if not rows:
        where = f" epoch {epoch}" if epoch is not None else ""
        where += f" of task {task}" if task else ""
        raise UsageError(f"run {run_id} has no sample {sample_id!r}{where}; `harness show {run_id} --json` lists "
                         f"its tasks, and `harness query \"select distinct sample_id from samples_v where run_id = "
                         f"'{run_id}'\"` its samples")
    labels = {_label(r) for r in rows}
    if len(labels) > 1:
        raise UsageError(f"sample {sample_id!r} is in {len(labels)} tasks of run {run_id} ({', '.join(sorted(labels))}); "
                         f"choose one with --task")
    found = []
    for r in rows:
        trace = (store.trace(r["trace_hash"]) if r["trace_hash"] else None) or {}
        events = trace.get("events")
        if events is None:  # a trace written before traces carried events: the table's truncated copy
            events = [{k: v for k, v in e.items() if k not in ("run_id", "model", "task", "variant", "sample_id",
                                                                "epoch")}
                      for e in store.events(run_id, sample_id, r["epoch"]) if (e["task"], e["variant"]) ==
                      (r["task"], r["variant"])]
            trace = {**trace, "events": events}
        found.append((r, trace))
    if as_json:
        _emit_json([{"run_id": run_id, "task": r["task"], "variant": r["variant"], "sample_id": r["sample_id"],
                     "epoch": r["epoch"], **outcome(r, t), "events": t.get("events") or [],
                     "messages": t.get("messages") or []} for r, t in found])
        return
    out = console()
    for r, trace in found:
        out.print(_heading(untrusted(f"sample {r['sample_id']}", 400, "bold"),
                           f" · epoch {r['epoch']} · ", untrusted(_label(r), 300, "bold"), f" · run {run_id}"))
        for renderable in transcript(steps(trace), outcome(r, trace)):
            out.print(renderable, highlight=False)
        out.print()
