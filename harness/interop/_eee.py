"""Runs as Every Eval Ever records (schema 0.3.0: eval.schema.json and instance_level_eval.schema.json of the
`every-eval-ever` package, whose validator checks what this writes).

Per (task, variant) of a run: an aggregate record, data/<benchmark>/<developer>/<model>/<uuid>.json, with one
evaluation result per overall metric (value in percent for proportions, its 95% CI, n, the errored and planned
counts), the generation settings, the LLM-judge set-up where judges scored, and the harness's reproducibility
record (dataset revision and hash, prompt and judge hashes, sandbox image, server flags) in additional_details;
and its instance-level records, <uuid>_samples.jsonl, one per scored (sample, epoch), linked to the headline
result, whose sha256 and row count the aggregate carries. The uuid is derived from (run, task, variant), so a
re-export (a nightly `leaderboard build --eee`) rewrites the same files.

Errored samples (infrastructure failures) have no score and are never written as wrong answers: they are left
out of the instance file and counted in each result's details (`errored`). The papers' reported numbers are
never written (they would be `source_type: documentation`, and they were not measured here).

Text: the files are JSON with every non-ASCII character escaped, so markup, control characters and NUL survive
as they are; a lone surrogate (which no UTF-8 file can hold) is written backslash-escaped, as the store writes
it, and the record's metadata `escaped` names the fields."""
from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

from harness.interop._common import (TaskRows, escape_deep, metric_scale, reproducibility, resolve_run, suite_of,
                                     task_rows, text_of)

SCHEMA_VERSION = "0.3.0"
_UNSAFE = re.compile(r'[<>:"\\|?*\x00-\x1f]')


def _component(value: str) -> str:
    """One portable datastore path component, made the way the EEE publisher makes it (':' and unsafe characters
    to '_', no trailing dot or space)."""
    cleaned = _UNSAFE.sub("_", value.replace("/", "_")).rstrip(". ") or "_"
    return f"_{cleaned}" if cleaned.split(".", 1)[0].upper() in {"CON", "PRN", "AUX", "NUL", "DATA"} else cleaned


def model_identity(run: dict[str, Any]) -> dict[str, Any]:
    """EEE model_info from how the run named its model: the provider prefix of --model says who served it."""
    spec = (run.get("plan") or {}).get("model") or run["model"]
    name = run["model"]
    env = run.get("environment") or {}
    details = {"harness_model": spec, "harness_model_info": json.dumps(run.get("model_info") or {}, sort_keys=True)}
    info: dict[str, Any] = {"name": name}
    provider, _, rest = spec.partition("/")
    if provider in ("vllm", "vllm-server") and rest:
        info["id"] = rest if name == spec else name
        engine = {"name": "vllm"}
        if provider == "vllm" and (env.get("packages") or {}).get("vllm"):
            engine["version"] = env["packages"]["vllm"]
        info["inference_engine"] = engine
        details.update(deployment_type="self_deployed", model_availability="open_weights")
    elif provider == "openai" and rest:
        info["id"] = name if "/" in name else spec
        hosted = run.get("base_url") is None
        info["inference_platform"] = "openai" if hosted else "openai-compatible endpoint"
        details.update(deployment_type="externally_managed" if hosted else "unknown",
                       model_availability="closed_weights" if hosted else "unknown")
    else:  # the harness's own models (reference, mock, replay of responses made elsewhere)
        info["id"] = name
        info["developer"] = "replay" if spec.startswith("replay:") else "harness"
        details.update(deployment_type="unknown", model_availability="unknown")
    if "/" in info["id"] and "developer" not in info:
        info["developer"] = info["id"].split("/", 1)[0]
    info["additional_details"] = details
    return info


def _paths(tr: TaskRows, identity: dict[str, Any]) -> tuple[str, str]:
    """(repository-relative folder, uuid4) of one (task, variant)'s records."""
    digest = hashlib.sha256(f"harness:{tr.run['id']}|{tr.task['task']}|{tr.task['variant']}".encode()).digest()
    uid = str(uuid.UUID(bytes=digest[:16], version=4))
    model_id = identity["id"]
    if "/" in model_id:
        developer, model = model_id.split("/", 1)
    else:
        developer, model = identity["developer"], model_id
    return "/".join(["data", _component(tr.task["task"]), _component(developer), _component(model)]), uid


def _strings(values: dict[str, Any]) -> dict[str, str]:
    """additional_details hold strings only: every other value as JSON."""
    return {k: v if isinstance(v, str) else json.dumps(v, sort_keys=True, ensure_ascii=False, default=str)
            for k, v in values.items() if v is not None}


def _source_data(tr: TaskRows) -> dict[str, Any]:
    ds = tr.task.get("dataset") or {}
    extra = _strings({"kind": ds.get("kind"), "location": ds.get("location"), "revision": ds.get("revision"),
                      "sha256": ds.get("sha256")})
    if ds.get("kind") == "hub":
        return {"dataset_name": tr.task["task"], "source_type": "hf_dataset", "hf_repo": ds.get("location"),
                "samples_number": tr.task.get("samples_planned"), "additional_details": extra}
    return {"dataset_name": tr.task["task"], "source_type": "other", "additional_details": extra}


def _judges(tr: TaskRows) -> list[dict[str, Any]]:
    """Every judge model that scored, by role, with its settings, from the calls in the traces."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for r in tr.rows:
        for call in r["trace"].get("calls") or []:
            if call.get("kind") != "judge":
                continue
            role = (call.get("raw") or {}).get("role") or "judge"
            key = (role, call.get("model") or "")
            if key not in seen:
                config = call.get("config") or {}
                judge = {"model_info": {"name": key[1], "id": key[1], "developer": "harness" if "/" not in key[1]
                                        else key[1].split("/", 1)[0],
                                        "additional_details": {"deployment_type": "unknown", "model_availability": "unknown"}},
                         "additional_details": _strings({"role": role, "config": config})}
                if isinstance(config.get("temperature"), (int, float)):
                    judge["temperature"] = float(config["temperature"])
                seen[key] = judge
    return list(seen.values())


def _judge_prompts(tr: TaskRows) -> str:
    systems: list[str] = []
    for r in tr.rows:
        for call in r["trace"].get("calls") or []:
            if call.get("kind") == "judge":
                for m in call.get("messages") or []:
                    if m.get("role") == "system" and isinstance(m.get("content"), str) and m["content"] not in systems:
                        systems.append(m["content"])
    return "\n\n---\n\n".join(systems) or "rendered per sample from the suite's judge templates (see the traces)"


def aggregate_record(tr: TaskRows, samples_path: str, uid: str, checksum: str, total_rows: int) -> dict[str, Any]:
    run, task = tr.run, tr.task
    metrics = task.get("metrics") or {}
    counts = metrics.get("counts") or {}
    identity = model_identity(run)
    suite = suite_of(tr)
    record = reproducibility(tr)
    config = run.get("generate_config") or {}
    gen_args: dict[str, Any] = {"execution_command": run.get("command") or ""}
    for key in ("temperature", "top_p", "top_k"):
        if isinstance(config.get(key), (int, float)) and not isinstance(config.get(key), bool):
            gen_args[key] = config[key]
    if isinstance(config.get("max_tokens"), int) and config["max_tokens"] >= 1:
        gen_args["max_tokens"] = config["max_tokens"]
    if config.get("reasoning_effort") is not None:
        gen_args["reasoning"] = True
    tools = _available_tools(tr)
    if tools:
        gen_args["agentic_eval_config"] = {"available_tools": tools}
    judges = _judges(tr)
    results = []
    headline = metrics.get("headline")
    for name, value in (metrics.get("overall") or {}).items():
        if not isinstance(value, dict) or value.get("value") is None:
            continue
        scale = metric_scale(suite, name)
        metric_config: dict[str, Any] = {"evaluation_description": f"{tr.label}: {name}", "metric_id": name,
                                         "metric_name": name, "lower_is_better": False, "score_type": "continuous"}
        if scale == 100.0:
            metric_config.update(metric_unit="percent", min_score=0.0, max_score=100.0)
        else:
            metric_config.update(min_score="-Infinity", max_score="Infinity")
        if judges:
            metric_config["llm_scoring"] = {"judges": judges, "input_prompt": _judge_prompts(tr),
                                            "additional_details": _strings({"judge_sha256": record["judge_sha256"]})}
        uncertainty: dict[str, Any] = {"num_samples": int(value.get("n") or 0)}
        if value.get("ci_low") is not None and value.get("ci_high") is not None:
            uncertainty["confidence_interval"] = {"lower": float(value["ci_low"]), "upper": float(value["ci_high"]),
                                                  "confidence_level": 0.95,
                                                  "method": "Wilson score (0/1 values, one epoch) or seeded "
                                                            "percentile bootstrap over samples"}
        results.append({
            "evaluation_result_id": f"{tr.label}/{name}", "evaluation_name": tr.label,
            "source_data": _source_data(tr), "evaluation_timestamp": _iso(run.get("created_at")),
            "metric_config": metric_config,
            "score_details": {"score": float(value["value"]), "uncertainty": uncertainty,
                              "details": _strings({"scored": counts.get("scored"), "errored": counts.get("error"),
                                                   "planned": counts.get("planned"), "complete": metrics.get("complete"),
                                                   "headline": name == headline})},
            "generation_config": {"generation_args": gen_args,
                                  "additional_details": _strings({"reproducibility": record, "seed": run.get("seed"),
                                                                  "epochs": run.get("epochs"), "generate_config": config,
                                                                  "variant": task["variant"],
                                                                  "task_version": task["task_version"],
                                                                  "task_args": task.get("task_args") or {}})},
        })
    env = run.get("environment") or {}
    return {
        "schema_version": SCHEMA_VERSION,
        "evaluation_id": f"{tr.label}/{identity['id']}/{run['id']}",
        "evaluation_timestamp": _iso(run.get("created_at")),
        "retrieved_timestamp": str(int(time.time())),
        "source_metadata": {"source_name": "harness", "source_type": "evaluation_run",
                            "source_organization_name": "harness user (self-run evaluation)",
                            "evaluator_relationship": "third_party",
                            "additional_details": _strings({"run_id": run["id"], "run_status": run.get("status")})},
        "model_info": identity,
        "eval_library": {"name": "harness", "version": env.get("harness_version") or "unknown",
                         "additional_details": _strings({"git_commit": env.get("git_commit"), "python": env.get("python")})},
        "evaluation_results": results,
        "detailed_evaluation_results": {"format": "jsonl", "file_path": samples_path, "hash_algorithm": "sha256",
                                        "checksum": checksum, "total_rows": total_rows,
                                        "additional_details": _strings({
                                            "rows": "one per scored (sample, epoch), linked to the headline result",
                                            "errored_rows_left_out": sum(r["status"] == "error" for r in tr.rows)})},
    }


def _iso(value) -> str:
    return value.isoformat() + ("Z" if value.tzinfo is None else "") if value is not None else ""


def _eee_tool_call(call: Any) -> dict[str, Any]:
    """A tool call as EEE's ToolCall: every argument's value as JSON text (EEE's own Inspect converter writes them
    so); arguments that are not an object (they did not parse) under "raw"."""
    from harness.store._trajectory import tool_call

    c = tool_call(call)
    args = c["arguments"]
    if isinstance(args, dict):
        arguments = {str(k): json.dumps(v, ensure_ascii=False) for k, v in args.items()} or None
    else:
        arguments = {"raw": str(args)} if args not in (None, "") else None
    return {"id": str(c["id"] or ""), "name": c["function"], "arguments": arguments}


def _agentic_details(messages: list[dict[str, Any]], trace: dict[str, Any]) -> dict[str, Any]:
    """What EEE's messages have no field for: the agent of each assistant turn, each tool result's error, and the
    limit that ended the sample (instance metadata, by turn index)."""
    details: dict[str, Any] = {}
    agents = {str(i): m["agent"] for i, m in enumerate(messages) if m.get("role") == "assistant" and m.get("agent")}
    errors = {str(i): m["error"] for i, m in enumerate(messages) if m.get("role") == "tool" and m.get("error")}
    limits = [e.get("name") for e in trace.get("events") or [] if isinstance(e, dict) and e.get("kind") == "limit"]
    if agents:
        details["agents"] = agents
    if errors:
        details["tool_errors"] = errors
    if limits:
        details["limit"] = limits[-1]
    return details


def _available_tools(tr: TaskRows) -> list[dict[str, Any]]:
    """The tools the model was offered over the run task's calls (by name, first definition kept), as EEE's
    AvailableTool: the JSON schema of the parameters as text."""
    tools: dict[str, dict[str, Any]] = {}
    for row in tr.rows:
        for call in row["trace"].get("calls") or []:
            for t in call.get("tools") or []:
                spec = t.get("function", t) if isinstance(t, dict) else {}
                name = spec.get("name")
                if name and name not in tools:
                    tools[str(name)] = {"name": str(name), "description": str(spec.get("description") or ""),
                                        **({"parameters": {"json_schema": json.dumps(spec["parameters"], ensure_ascii=False)}}
                                           if spec.get("parameters") else {})}
    return list(tools.values())


def instance_record(tr: TaskRows, row: dict[str, Any], evaluation_id: str, model_id: str, result_id: str | None,
                    judged: bool) -> dict[str, Any]:
    trace = row["trace"]
    escaped = list(row.get("escaped") or [])
    messages = escape_deep(trace.get("messages") or [], "messages", escaped)
    assistant_turns = [m for m in messages if m.get("role") == "assistant"]
    tools = sum(len(m.get("tool_calls") or []) for m in assistant_turns)
    kind = "agentic" if tools or any(m.get("role") == "tool" for m in messages) else (
        "multi_turn" if len(assistant_turns) > 1 else "single_turn")
    sent = messages[:next((i for i, m in enumerate(messages) if m.get("role") == "assistant"), len(messages))]
    target = row.get("target")
    reference = [] if target is None else [target]
    rec: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "evaluation_id": evaluation_id, "model_id": model_id,
        "evaluation_name": tr.label, "sample_id": row["sample_id"] if tr.run.get("epochs", 1) == 1
        else f"{row['sample_id']}#epoch{row['epoch']}",
        "sample_hash": hashlib.sha256(json.dumps([row.get("prompt"), reference], ensure_ascii=True).encode()).hexdigest(),
        "interaction_type": kind,
        "input": {"raw": row.get("prompt") or "", "formatted": json.dumps(sent, ensure_ascii=False) if sent else None,
                  "reference": reference},
        "answer_attribution": [{"turn_idx": 0 if kind == "single_turn" else max(0, len(messages) - 1),
                                "source": "output.raw" if kind == "single_turn" else f"messages[{max(0, len(messages) - 1)}].content",
                                "extracted_value": row.get("answer") or "",
                                "extraction_method": "llm_judge" if judged else "custom", "is_terminal": True}],
        "evaluation": {"score": float(row["score"]) if row.get("score") is not None else 0.0,
                       "is_correct": row.get("score") == 1.0},
    }
    if result_id:
        rec["evaluation_result_id"] = result_id
    if kind == "single_turn":
        # the reply as the model gave it (the row's copy is store-escaped: NUL too)
        replies = [m.get("content") for m in trace.get("messages") or [] if m.get("role") == "assistant"]
        reply = replies[-1] if replies else None
        rec["output"] = {"raw": [reply if isinstance(reply, str) else (row.get("response") or "")]}
        rec["messages"] = None
    else:
        rec["output"] = None
        rec["messages"] = [{"turn_idx": i, "role": m.get("role") or "user", "content": text_of(m.get("content")),
                            **({"tool_calls": [_eee_tool_call(c) for c in m["tool_calls"]]} if m.get("tool_calls") else {}),
                            **({"tool_call_id": [m["tool_call_id"]]} if m.get("tool_call_id") else {})}
                           for i, m in enumerate(messages)]
        rec["evaluation"]["num_turns"] = max(1, len(assistant_turns))
        rec["evaluation"]["tool_calls_count"] = tools
    if row.get("input_tokens") is not None or row.get("output_tokens") is not None:
        i, o = int(row.get("input_tokens") or 0), int(row.get("output_tokens") or 0)
        rec["token_usage"] = {"input_tokens": i, "output_tokens": o, "total_tokens": i + o}
    if row.get("latency_s") is not None:
        rec["performance"] = {"latency_ms": max(0.0, row["latency_s"] * 1000)}
    meta = {**{f"metadata.{k}": v for k, v in (row.get("metadata") or {}).items()}, "epoch": row["epoch"],
            "scores": row.get("scores"), "error_category": row.get("error_category"),
            "explanation": row.get("explanation"), **_agentic_details(messages, trace)}
    rec = escape_deep(rec, "record", escaped)
    meta = escape_deep(_strings(meta), "metadata", escaped)
    if escaped:
        meta["escaped"] = ",".join(sorted(set(escaped)))
    rec["metadata"] = meta
    return rec


def export_eee(store, run: str, out: str | Path, *, only: set[tuple[str, str]] | None = None) -> list[Path]:
    """Write the EEE aggregate and instance-level records of every (task, variant) of the run (or of those in
    `only`) under `out`, as data/<benchmark>/<developer>/<model>/<uuid>.json and <uuid>_samples.jsonl; returns
    the paths."""
    found = resolve_run(store, run)
    root = Path(out)
    written = []
    for tr in task_rows(store, found, only):
        identity = model_identity(found)
        folder, uid = _paths(tr, identity)
        samples_rel, aggregate_rel = f"{folder}/{uid}_samples.jsonl", f"{folder}/{uid}.json"
        (root / folder).mkdir(parents=True, exist_ok=True)
        evaluation_id = f"{tr.label}/{identity['id']}/{found['id']}"
        headline = (tr.task.get("metrics") or {}).get("headline")
        result_id = f"{tr.label}/{headline}" if headline else None
        judged = bool(_judges(tr))
        digest, n = hashlib.sha256(), 0
        with open(root / samples_rel, "wb") as fh:
            for row in tr.rows:
                if row["status"] != "scored":
                    continue
                line = (json.dumps(instance_record(tr, row, evaluation_id, identity["id"], result_id, judged),
                                   ensure_ascii=True, allow_nan=False) + "\n").encode("ascii")
                fh.write(line)
                digest.update(line)
                n += 1
        record = aggregate_record(tr, samples_rel, uid, digest.hexdigest(), n)
        if n == 0:  # every sample errored: the schema asks a samples file for at least one row
            (root / samples_rel).unlink()
            del record["detailed_evaluation_results"]
        escaped: list[str] = []
        record = escape_deep(record, "aggregate", escaped)
        if escaped:
            record["source_metadata"]["additional_details"]["escaped"] = ",".join(escaped)
        (root / aggregate_rel).write_text(json.dumps(record, ensure_ascii=True, indent=2, allow_nan=False) + "\n",
                                          encoding="ascii")
        written += [root / aggregate_rel] + ([root / samples_rel] if n else [])
    return written


def export_leaderboard_eee(store, spec, out: str | Path) -> list[Path]:
    """The EEE records of exactly the results a leaderboard shows (per model and suite, the run the site uses),
    under out/eee/."""
    from harness.leaderboards import _data

    with store.engine.connect() as conn:
        chosen = _data.select_entries(_data.entries(conn, spec), spec)
    by_run: dict[str, set[tuple[str, str]]] = {}
    for e in chosen:
        by_run.setdefault(e.run_id, set()).add((e.task, e.variant))
    return [p for run_id, only in sorted(by_run.items()) for p in export_eee(store, run_id, Path(out) / "eee", only=only)]
