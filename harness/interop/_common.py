"""What both export formats read from a stored run: its rows (through harness.store only), the reproducibility
record, and text made safe for formats that cannot carry a lone surrogate."""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterator

from harness._registry import UsageError


@dataclass
class TaskRows:
    """One (task, variant) of a run, with its sample rows (each with its decoded trace under "trace")."""

    run: dict[str, Any]
    task: dict[str, Any]  # the run_tasks row
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def label(self) -> str:
        t = self.task
        return t["task"] if t["variant"] == "default" else f"{t['task']}@{t['variant']}"


def resolve_run(store, run: str) -> dict[str, Any]:
    found = store.get_run(run)
    if found is None:
        raise UsageError(f"no run {run!r} in {store.url}; `harness runs` lists them")
    return found


def task_rows(store, run: dict[str, Any], only: set[tuple[str, str]] | None = None) -> Iterator[TaskRows]:
    """Each (task, variant) of the run (of those in `only`) in order, its rows sorted by sample and epoch, traces
    decoded."""
    for task in store.run_tasks(run["id"]):
        if only is not None and (task["task"], task["variant"]) not in only:
            continue
        rows = store.samples(task["id"])
        for r in rows:
            r["trace"] = (store.trace(r["trace_hash"]) if r.get("trace_hash") else None) or {}
        yield TaskRows(run, task, rows)


def suite_of(tr: TaskRows):
    """The registered suite as the run configured it (for its description and metrics), or None when the run's
    task is not registered here (an imported Inspect log)."""
    from harness._registry import get_task

    try:
        return get_task(tr.task["task"]).build(tr.task["variant"], tr.task.get("task_args") or {})
    except (UsageError, KeyError, TypeError, ValueError):
        return None


def metric_scale(suite, name: str) -> float | None:
    """A stored metric's scale (100: a proportion in percent); a family's members (pass@1, pass@5) by prefix."""
    metrics = getattr(suite, "metrics", None) or []
    found = next((m for m in metrics if m.name == name), None) or next(
        (m for m in metrics if name.startswith(m.name + "@")), None)
    return found.scale if found else None


def _sha256(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=True, default=str).encode()).hexdigest()


def reproducibility(tr: TaskRows) -> dict[str, Any]:
    """What someone needs to redo (or check) this (task, variant): the harness and its commit, the dataset's
    provenance, hashes of the prompts sent and of the judges' set-up, the sandbox image, the endpoint and its
    server flags, the sampling settings and the command line."""
    run, task = tr.run, tr.task
    env = run.get("environment") or {}
    prompts = [[r["sample_id"], r["epoch"], r.get("prompt")] for r in tr.rows]
    judge_models: dict[str, str] = dict((run.get("plan") or {}).get("judges") or {})
    judge_systems: set[str] = set()
    for r in tr.rows:
        for call in r["trace"].get("calls") or []:
            if call.get("kind") == "judge":
                role = ((call.get("raw") or {}).get("role")) or "judge"
                judge_models.setdefault(role, call.get("model"))
                judge_systems.update(m.get("content") for m in call.get("messages") or []
                                     if m.get("role") == "system" and isinstance(m.get("content"), str))
    record = {
        "harness_version": env.get("harness_version"),
        "git_commit": env.get("git_commit"),
        "python": env.get("python"),
        "packages": env.get("packages") or {},
        "run_id": run["id"],
        "command": run.get("command"),
        "task": task["task"], "variant": task["variant"], "task_version": task["task_version"],
        "task_args": task.get("task_args") or {},
        "dataset": task.get("dataset") or {},
        "prompt_sha256": _sha256(prompts),
        "judges": judge_models,
        "judge_sha256": _sha256([judge_models, sorted(judge_systems)]) if judge_models else None,
        "sandbox": (env.get("sandbox") or {}).get(task["task"]),
        "model": run.get("model"),
        "model_info": run.get("model_info") or {},  # endpoint, client options; a managed vLLM's server flags
        "base_url": run.get("base_url"),
        "generate_config": run.get("generate_config") or {},
        "seed": run.get("seed"),
        "epochs": run.get("epochs"),
        "limit": (run.get("plan") or {}).get("limit"),
        "sample_ids": (run.get("plan") or {}).get("sample_ids"),
    }
    return record


_SURROGATE = re.compile("[\ud800-\udfff]")


def escape_text(value: str) -> tuple[str, bool]:
    """Text a UTF-8 file can hold: a lone surrogate becomes its backslash escape (six characters such as `\\ud800`),
    as the store itself writes it; every other character (NUL, control characters, markup) is kept. Returns the
    text and whether it changed."""
    if not _SURROGATE.search(value):
        return value, False
    return value.encode("utf-8", "backslashreplace").decode("utf-8"), True


def escape_deep(value: Any, path: str, escaped: list[str]) -> Any:
    """escape_text over every string in a JSON-like value; the paths of those that changed go to `escaped`."""
    if isinstance(value, str):
        out, changed = escape_text(value)
        if changed:
            escaped.append(path)
        return out
    if isinstance(value, dict):
        return {escape_deep(k, f"{path}.<key>", escaped): escape_deep(v, f"{path}.{k}", escaped) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [escape_deep(v, f"{path}[{i}]", escaped) for i, v in enumerate(value)]
    return value


def text_of(content: Any) -> str | None:
    """A message's text: a string as it is, the text parts of a list of content parts joined."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return json.dumps(content, ensure_ascii=False, default=str)


def safe_name(value: str) -> str:
    """A file or folder name from a task label or model name: portable characters only."""
    cleaned = re.sub(r"[^A-Za-z0-9._+-]+", "_", value).strip("._ ")
    return cleaned or "unnamed"
