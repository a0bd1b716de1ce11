"""Runs as Inspect logs, and Inspect logs as runs, through inspect_ai's own pydantic models (EvalLog, EvalSample,
ModelEvent) and its write_eval_log / read_eval_log: Inspect's file format is versioned but not frozen
(Inspect#5066), its Python API is the stable surface. Tested against the inspect-ai version pinned in the
`inspect` extra.

Mapping of one (task, variant) of a run to one log:
- header: task name, version and arguments (the variant in task_attribs), the dataset (location; revision or
  sha256 in its name and in metadata), the model with its sampling settings, base URL and client options, judges
  as model roles, the git revision and packages, and eval.metadata["harness"] = the reproducibility record;
- results: one EvalScore with the suite's overall metrics (percent, as the harness reports them, each with its
  95% CI and n in the metric's metadata); breakdowns, counts and completeness in results.metadata. The papers'
  numbers are never written: they were not measured here;
- each sample row: its messages, output, one Score per scorer (values, answer, explanation), a ModelEvent per
  model and judge call (usage, retries, error), the error of an errored row, the dataset metadata, and
  metadata["harness"] with the row's own fields (status, headline score, error category, what was escaped).
Lone surrogates cannot be written to a log (Inspect itself turns them into backslash escapes): they are written
backslash-escaped, as the store writes them, and metadata["harness"]["escaped"] names the fields."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from harness._registry import UsageError
from harness.interop._common import (TaskRows, escape_deep, metric_scale, reproducibility, resolve_run, safe_name,
                                     suite_of, task_rows, text_of)

EXTRA_HINT = "pip install 'harness[inspect]'"


def _require_inspect() -> None:
    try:
        import inspect_ai  # noqa: F401
    except ImportError:
        raise UsageError(f"the Inspect format needs the optional inspect-ai package: {EXTRA_HINT}") from None


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


def _iso(value: datetime | None) -> str:
    return (_utc(value) or datetime.now(timezone.utc)).isoformat()


# ---- messages

# the harness's tool error kinds (harness._messages.ToolError.kind) that Inspect has a ToolCallError type for
TOOL_ERROR_TYPES = {"parsing": "parsing", "parse": "parsing", "timeout": "timeout", "permission": "permission",
                    "missing_file": "file_not_found", "file_not_found": "file_not_found",
                    "is_a_directory": "is_a_directory", "output_limit": "limit", "limit": "limit",
                    "unicode_decode": "unicode_decode", "sandbox_gone": "sandbox_unavailable",
                    "sandbox_unavailable": "sandbox_unavailable", "cancelled": "cancelled", "approval": "approval"}


def _tool_error(error: Any):
    """A tool result's error ({"kind", "message"}, or the kind alone) as Inspect's ToolCallError; a kind Inspect has
    no type for is `unknown`, its name kept at the head of the message."""
    from inspect_ai.tool import ToolCallError

    if not error:
        return None
    kind, message = (error.get("kind"), error.get("message")) if isinstance(error, dict) else (str(error), "")
    kind = str(kind or "unknown")
    if kind in TOOL_ERROR_TYPES:
        return ToolCallError(TOOL_ERROR_TYPES[kind], str(message or kind))
    return ToolCallError("unknown", f"{kind}: {message}" if message else kind)


def _tool_calls(calls: list[Any]) -> list[Any]:
    """Tool calls in the harness's form ({id, function, arguments, raw, parse_error}) or OpenAI's ({id, function:
    {name, arguments}}) as Inspect ToolCalls; arguments that did not parse carry their parse error."""
    from inspect_ai.tool import ToolCall

    from harness.store._trajectory import tool_call

    out = []
    for c in calls or []:
        call = tool_call(c)
        args, error = call["arguments"], call["parse_error"]
        if args is None:
            args = {}
        if not isinstance(args, dict):  # a string that is not JSON, or JSON that is not an object
            error, args = error or f"arguments are not a JSON object: {args}", {}
        out.append(ToolCall(id=str(call["id"] or ""), function=call["function"], arguments=args, parse_error=error))
    return out


def to_inspect_messages(messages: list[dict[str, Any]]) -> list[Any]:
    """The harness's chat messages (ChatMessage dumps, or OpenAI-format dicts from older traces) as Inspect
    ChatMessages: tool calls, tool results with their errors, images, and the agent of an assistant turn (in its
    metadata) included."""
    from inspect_ai.model import (ChatMessageAssistant, ChatMessageSystem, ChatMessageTool, ChatMessageUser,
                                  ContentImage, ContentText)

    def content(value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        parts = []
        for p in value if isinstance(value, list) else [value]:
            if isinstance(p, dict) and p.get("type") == "text":
                parts.append(ContentText(text=p.get("text") or ""))
            elif isinstance(p, dict) and p.get("type") == "image_url":
                url = p.get("image_url")
                parts.append(ContentImage(image=url.get("url") if isinstance(url, dict) else str(url)))
            elif isinstance(p, dict) and p.get("type") == "image":
                parts.append(ContentImage(image=str(p.get("image") or ""), detail=p.get("detail") or "auto"))
            else:
                parts.append(ContentText(text=json.dumps(p, ensure_ascii=False, default=str)))
        return parts

    out = []
    for m in messages:
        role = m.get("role")
        if role == "system":
            out.append(ChatMessageSystem(content=content(m.get("content"))))
        elif role == "assistant":
            out.append(ChatMessageAssistant(content=content(m.get("content")),
                                            tool_calls=_tool_calls(m.get("tool_calls")) or None,
                                            metadata={"agent": m["agent"]} if m.get("agent") else None))
        elif role == "tool":
            out.append(ChatMessageTool(content=content(m.get("content")), tool_call_id=m.get("tool_call_id"),
                                       function=m.get("function") or m.get("name"), error=_tool_error(m.get("error"))))
        else:
            out.append(ChatMessageUser(content=content(m.get("content"))))
    return out


def from_inspect_messages(messages: list[Any]) -> list[dict[str, Any]]:
    """Inspect ChatMessages as OpenAI-format dicts: a plain string content stays a string."""
    out = []
    for m in messages:
        if isinstance(m.content, str):
            content: Any = m.content
        else:
            content = []
            for p in m.content:
                if p.type == "text":
                    content.append({"type": "text", "text": p.text})
                elif p.type == "image":
                    content.append({"type": "image_url", "image_url": {"url": p.image}})
                elif p.type == "reasoning":
                    content.append({"type": "reasoning", "reasoning": p.reasoning})
                else:
                    content.append({"type": "text", "text": p.model_dump_json()})
        msg: dict[str, Any] = {"role": m.role, "content": content}
        if m.role == "assistant" and m.tool_calls:
            msg["tool_calls"] = [{"id": c.id, "type": "function",
                                  "function": {"name": c.function, "arguments": json.dumps(c.arguments, ensure_ascii=False)}}
                                 for c in m.tool_calls]
        if m.role == "tool":
            msg["tool_call_id"] = m.tool_call_id
            if m.function:
                msg["name"] = m.function
        out.append(msg)
    return out


# ---- export

def _config(values: dict[str, Any]):
    """A GenerateConfig of the settings Inspect knows; the others stay in the caller's metadata."""
    from inspect_ai.model import GenerateConfig

    known = {k: v for k, v in (values or {}).items() if k in GenerateConfig.model_fields}
    try:
        return GenerateConfig(**known)
    except ValueError:  # a value of another type than Inspect's field (e.g. a reasoning_effort it lacks)
        return GenerateConfig()


def _usage(input_tokens: int | None, output_tokens: int | None):
    """Inspect's usage of a call; None when the call's token counts are unknown (a mock or replayed model)."""
    from inspect_ai.model import ModelUsage

    if input_tokens is None and output_tokens is None:
        return None
    i, o = input_tokens or 0, output_tokens or 0
    return ModelUsage(input_tokens=i, output_tokens=o, total_tokens=i + o)


# the harness's stop reasons (harness._types.ModelOutput.stop_reason) as Inspect's
STOP_REASONS = {"stop": "stop", "tool_calls": "tool_calls", "max_tokens": "max_tokens",
                "content_filter": "content_filter", "context_length": "model_length"}


def _model_output(model: str, text: str | None, usage=None, latency: float | None = None, error: str | None = None,
                  tool_calls: list[Any] | None = None, stop_reason: str | None = None):
    from inspect_ai.model import ChatCompletionChoice, ChatMessageAssistant, ModelOutput

    # no reply at all (an errored sample, a failed call): no choice, which tells it apart from an empty reply
    calls = _tool_calls(tool_calls or [])
    if text is None and not calls:
        choices = []
    else:
        stop = "unknown" if error is not None else STOP_REASONS.get(stop_reason or "", "tool_calls" if calls else "stop")
        choices = [ChatCompletionChoice(message=ChatMessageAssistant(content=text or "", model=model,
                                                                     tool_calls=calls or None), stop_reason=stop)]
    return ModelOutput(model=model, choices=choices, usage=usage, time=latency, error=error)


def _tool_infos(tools: list[Any] | None) -> list[Any]:
    """The tools a call offered (OpenAI's {"type": "function", "function": {...}} or a bare {name, description,
    parameters}) as Inspect ToolInfos; a schema Inspect's model cannot hold is left out rather than failing the log."""
    from inspect_ai.tool import ToolInfo

    out = []
    for t in tools or []:
        spec = t.get("function", t) if isinstance(t, dict) else {}
        try:
            out.append(ToolInfo.model_validate({"name": spec.get("name") or "?", "description": spec.get("description") or "",
                                                **({"parameters": spec["parameters"]} if spec.get("parameters") else {})}))
        except ValueError:
            continue
    return out


def _tool_choice(choice: Any) -> Any:
    from inspect_ai.tool import ToolFunction

    if choice in ("auto", "any", "none"):
        return choice
    if choice == "required":
        return "any"
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") if isinstance(choice.get("function"), dict) else choice.get("name")
        if name:
            return ToolFunction(name=str(name))
    return "auto" if choice is not None else "none"


def _tool_event(event: dict[str, Any], errors: dict[str, Any], escaped: list[str]):
    """A harness `tool` event as Inspect's ToolEvent: the call's id (metadata["call_id"]), arguments,
    result, error (its message from the tool message it produced), timing and agent."""
    from inspect_ai.event import ToolEvent

    seq = event.get("seq")
    event = escape_deep(event, f"events[{seq}]", escaped)
    started = datetime.fromtimestamp(event.get("started_at") or 0, timezone.utc)
    latency = event.get("latency_s") or 0.0
    meta = event.get("metadata") or {}
    call_id = str(meta.get("call_id") or f"event-{seq}")
    arguments = event.get("input") if isinstance(event.get("input"), dict) else {}
    output = event.get("output")
    error = errors.get(call_id) or ({"kind": event["error"], "message": meta.get("message") or ""}
                                    if event.get("error") else None)
    return ToolEvent(id=call_id, function=str(event.get("name") or ""), arguments=arguments,
                     result=output if isinstance(output, str) else "" if output is None else json.dumps(output, default=str),
                     error=_tool_error(error), timestamp=started, completed=started + timedelta(seconds=latency),
                     working_start=0.0, working_time=latency, agent=event.get("agent"),
                     metadata={"harness": {"seq": seq, "span": event.get("span")}})


def _model_event(call: dict[str, Any], escaped: list[str], i: int):
    from inspect_ai.event import ModelEvent

    started = (datetime.fromtimestamp(call["started_at"], timezone.utc) if call.get("started_at")
               else datetime.now(timezone.utc))
    latency = call.get("latency_s") or 0.0
    kind = call.get("kind") or "model"
    role = (call.get("raw") or {}).get("role") if kind == "judge" else None
    messages = escape_deep(call.get("messages") or [], f"calls[{i}].messages", escaped)
    text = escape_deep(call.get("text"), f"calls[{i}].text", escaped)
    attempts = call.get("attempts") or []
    return ModelEvent(
        model=call.get("model") or "", role=f"judge:{role}" if role else ("judge" if kind == "judge" else None),
        input=to_inspect_messages(messages), tools=_tool_infos(call.get("tools")),
        tool_choice=_tool_choice(call.get("tool_choice")), config=_config(call.get("config") or {}),
        output=_model_output(call.get("model") or "", text, _usage(call.get("input_tokens"), call.get("output_tokens")),
                             latency, call.get("error"), call.get("tool_calls"), call.get("stop_reason")),
        retries=max(0, len(attempts) - 1), error=call.get("error"), timestamp=started,
        completed=started + timedelta(seconds=latency), working_start=0.0, working_time=latency,
        metadata={"harness": escape_deep({"kind": kind, "config": call.get("config"), "attempts": attempts,
                                          "raw": call.get("raw")}, f"calls[{i}].harness", escaped)},
    )


def _sample(tr: TaskRows, row: dict[str, Any]):
    from inspect_ai.log import EvalError, EvalSample
    from inspect_ai.model import ModelUsage
    from inspect_ai.scorer import Score

    trace = row["trace"]
    escaped: list[str] = list(row.get("escaped") or [])  # fields the store already had to escape
    messages = escape_deep(trace.get("messages") or [], "messages", escaped)
    first_reply = next((i for i, m in enumerate(messages) if m.get("role") == "assistant"), len(messages))
    sent = messages[:first_reply] or ([{"role": "user", "content": row.get("prompt") or ""}])
    scores = {}
    for i, s in enumerate(trace.get("scores") or [] if row["status"] == "scored" else []):
        if "values" not in s:
            continue
        s = escape_deep(s, f"scores[{i}]", escaped)
        value = {"value": s.get("value"), **{k: v for k, v in (s.get("values") or {}).items()
                                              if v is None or isinstance(v, (int, float, bool, str))}}
        scores["harness" if i == 0 else f"harness_{i + 1}"] = Score(
            value=value, answer=s.get("answer"), explanation=s.get("explanation"),
            metadata={"error_category": s.get("error_category"), **(s.get("metadata") or {})})
    calls = trace.get("calls") or []
    events = [_model_event(c, escaped, i) for i, c in enumerate(calls)]
    # an agent's tool calls, beside its model calls in the order they happened
    errors = {m.get("tool_call_id"): m["error"] for m in trace.get("messages") or []
              if m.get("role") == "tool" and isinstance(m.get("error"), dict)}
    tool_events = [_tool_event(e, errors, escaped) for e in trace.get("events") or []
                   if isinstance(e, dict) and e.get("kind") == "tool"]
    if tool_events:
        events = sorted(events + tool_events, key=lambda e: e.timestamp)
    usage: dict[str, ModelUsage] = {}
    role_usage: dict[str, ModelUsage] = {}
    for c in calls:
        u = _usage(c.get("input_tokens"), c.get("output_tokens"))
        if u is None:
            continue
        usage[c.get("model") or ""] = usage.get(c.get("model") or "", ModelUsage()) + u
        if c.get("kind") == "judge":
            role = "judge:" + ((c.get("raw") or {}).get("role") or "default")
            role_usage[role] = role_usage.get(role, ModelUsage()) + u
    error = None
    if row["status"] == "error":
        tb = next((s.get("traceback") for s in trace.get("scores") or [] if "traceback" in s), "")
        error = EvalError(message=row.get("error") or "error", traceback=tb or "", traceback_ansi=tb or "")
    reply = next((m.get("content") for m in reversed(messages) if m.get("role") == "assistant"), None)
    completion = reply if isinstance(reply, str) else escape_deep(row.get("response"), "response", escaped)
    created = _utc(row.get("created_at"))
    latency = row.get("latency_s")
    harness_meta = {
        "status": row["status"], "score": row.get("score"), "scores": row.get("scores"),
        "error_category": row.get("error_category"), "explanation": row.get("explanation"),
        "input_tokens": row.get("input_tokens"), "output_tokens": row.get("output_tokens"),
        "latency_s": latency, "epoch": row["epoch"], "trace_metadata": escape_deep(trace.get("metadata") or {},
                                                                                    "trace_metadata", escaped),
    }
    harness_meta["escaped"] = sorted(set(escaped)) or None
    return EvalSample(
        id=row["sample_id"], epoch=row["epoch"] + 1, input=to_inspect_messages(sent), target=row.get("target") or "",
        messages=to_inspect_messages(messages),
        output=_model_output(tr.run["model"], completion, _usage(row.get("input_tokens"), row.get("output_tokens")),
                             latency),
        scores=scores or None, metadata={**(row.get("metadata") or {}), "harness": harness_meta},
        events=events, model_usage=usage, role_usage=role_usage,
        started_at=(created - timedelta(seconds=latency)).isoformat() if created and latency else None,
        completed_at=created.isoformat() if created else None,
        total_time=latency, working_time=latency, error=error,
    )


def eval_log(tr: TaskRows):
    """One (task, variant) of a run as an Inspect EvalLog."""
    from inspect_ai.log import (EvalConfig, EvalDataset, EvalError, EvalLog, EvalMetric, EvalPlan, EvalPlanStep,
                                EvalResults, EvalRevision, EvalScore, EvalSpec, EvalStats)
    from inspect_ai.model import ModelConfig, ModelUsage

    run, task = tr.run, tr.task
    env = run.get("environment") or {}
    plan = run.get("plan") or {}
    ds = task.get("dataset") or {}
    metrics = task.get("metrics") or {}
    counts = metrics.get("counts") or {}
    suite = suite_of(tr)
    ident = f"{run['id']}|{task['task']}|{task['variant']}"
    eval_id = uuid.uuid5(uuid.NAMESPACE_URL, "harness:" + ident).hex[:22]
    pin = ds.get("revision") or (f"sha256:{ds['sha256'][:12]}" if ds.get("sha256") else None)
    commit = (env.get("git_commit") or "").removesuffix("-dirty")
    record = reproducibility(tr)
    spec = EvalSpec(
        eval_id=eval_id, run_id=run["id"], created=_iso(run.get("created_at")), task=task["task"],
        task_id=eval_id, task_version=task["task_version"],
        task_description=getattr(suite, "description", None) or None,
        task_attribs={"variant": task["variant"]}, task_args=task.get("task_args") or {},
        task_args_passed=task.get("task_args") or {},
        solver="harness", dataset=EvalDataset(name=f"{task['task']}@{pin}" if pin else task["task"],
                                              location=ds.get("location"), samples=task.get("samples_planned"),
                                              sample_ids=sorted({r["sample_id"] for r in tr.rows}) or None),
        model=run["model"], model_generate_config=_config(run.get("generate_config") or {}),
        model_base_url=run.get("base_url"), model_args=run.get("model_info") or {},
        model_roles={role: ModelConfig(model=spec_) for role, spec_ in (plan.get("judges") or {}).items()} or None,
        config=EvalConfig(limit=plan.get("limit"), sample_id=plan.get("sample_ids"), epochs=run.get("epochs"),
                          max_samples=plan.get("max_samples")),
        revision=EvalRevision(type="git", origin="", commit=commit, dirty=(env.get("git_commit") or "").endswith("-dirty"))
        if commit else None,
        packages={k: v for k, v in (env.get("packages") or {}).items() if v},
        metadata={"harness": record},
    )
    overall = metrics.get("overall") or {}
    score = EvalScore(
        name=task["task"], scorer="harness", scored_samples=counts.get("scored"), unscored_samples=counts.get("error"),
        metrics={name: EvalMetric(name=name, value=float(v["value"]),
                                  metadata={"unit": "percent" if metric_scale(suite, name) == 100.0 else "as computed",
                                            "ci_low": v.get("ci_low"), "ci_high": v.get("ci_high"), "n": v.get("n")})
                 for name, v in overall.items() if isinstance(v, dict) and v.get("value") is not None},
    )
    results = EvalResults(total_samples=len(tr.rows), completed_samples=sum(r["status"] == "scored" for r in tr.rows),
                          scores=[score], metadata={"headline": metrics.get("headline"), "by": metrics.get("by") or {},
                                                    "counts": counts, "complete": metrics.get("complete")})
    usage: dict[str, ModelUsage] = {}
    role_usage: dict[str, ModelUsage] = {}
    samples = [_sample(tr, r) for r in tr.rows]
    for s in samples:
        for k, u in s.model_usage.items():
            usage[k] = usage.get(k, ModelUsage()) + u
        for k, u in s.role_usage.items():
            role_usage[k] = role_usage.get(k, ModelUsage()) + u
    errored = counts.get("error", sum(r["status"] == "error" for r in tr.rows))
    status = "success" if run.get("status") == "finished" and not errored else (
        "error" if run.get("status") == "finished" else "cancelled")
    return EvalLog(
        version=2, status=status, eval=spec,
        plan=EvalPlan(name="harness", steps=[EvalPlanStep(solver="harness", params={"task": tr.label,
                                                                                      "sandbox": plan.get("sandbox")})],
                      config=_config(run.get("generate_config") or {})),
        results=results,
        stats=EvalStats(started_at=_iso(run.get("created_at")), completed_at=_iso(run.get("finished_at"))
                        if run.get("finished_at") else "", model_usage=usage, role_usage=role_usage),
        error=EvalError(message=f"{errored} of {len(tr.rows)} samples errored (infrastructure errors, not the model's)",
                        traceback="", traceback_ansi="") if status == "error" else None,
        samples=samples,
    )


def export_inspect(store, run: str, out: str | Path) -> list[Path]:
    """Write one Inspect `.eval` log per (task, variant) of the run into the folder `out`; returns the paths."""
    _require_inspect()
    from inspect_ai.log import write_eval_log

    found = resolve_run(store, run)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for tr in task_rows(store, found):
        path = folder / f"{safe_name(found['id'])}_{safe_name(tr.label)}.eval"
        write_eval_log(eval_log(tr), str(path))
        paths.append(path)
    return paths


# ---- import

def _value_to_float(value: Any) -> float | None:
    """An Inspect score value as a number: Inspect's letter grades (C correct, I incorrect, P partial, N no
    answer) as value_to_float reads them, numbers and booleans as they are."""
    from inspect_ai.scorer import value_to_float

    if value is None:
        return None
    if isinstance(value, (int, float, bool)):
        return float(value)
    if isinstance(value, str):
        return float(value_to_float()(value))
    return None


def _row_scores(scores: dict[str, Any]) -> tuple[float | None, dict[str, float]]:
    """(headline, every named value) from a sample's Inspect scores: the first scorer's value is the headline;
    a dict value contributes each key (a harness export's "value" key is its scorer's headline)."""
    head: float | None = None
    values: dict[str, float] = {}
    for i, (name, s) in enumerate(scores.items()):
        if isinstance(s.value, dict):
            own = _value_to_float(s.value.get("value"))
            for k, v in s.value.items():
                if k != "value" and (f := _value_to_float(v)) is not None:
                    values[k] = f
            if own is not None and not (name == "harness" or name.startswith("harness_")):
                values[name] = own
        else:
            own = _value_to_float(s.value)
            if own is not None:
                values[name] = own
        if i == 0:
            head = own
    return head, values


def _call_from_event(e) -> dict[str, Any]:
    meta = (e.metadata or {}).get("harness") or {}
    kind = meta.get("kind") or ("judge" if (e.role or "").startswith("judge") else "model")
    usage = e.output.usage if e.output else None
    started = e.timestamp.timestamp() if e.timestamp else None
    latency = e.working_time if e.working_time is not None else (e.output.time if e.output else None)
    raw = meta.get("raw")
    if raw is None and e.role and e.role.startswith("judge:"):
        raw = {"role": e.role.removeprefix("judge:")}
    return {"kind": kind, "model": e.model, "messages": from_inspect_messages(e.input),
            "config": meta.get("config") if meta.get("config") is not None else e.config.model_dump(exclude_none=True),
            "text": e.output.completion if e.output else None,
            "input_tokens": usage.input_tokens if usage else None, "output_tokens": usage.output_tokens if usage else None,
            "latency_s": latency or 0.0, "error": e.error, "started_at": started,
            "attempts": meta.get("attempts") or [{"status": None, "error": None, "latency_s": latency or 0.0, "wait_s": 0.0}]
            * (1 + (e.retries or 0)), "raw": raw}


def _sample_result(rt_id: int, s, run_model: str):
    from harness.store import SampleResult

    meta = dict(s.metadata or {})
    h = meta.pop("harness", None)
    h = h if isinstance(h, dict) and "status" in h else {}
    messages = from_inspect_messages(s.messages)
    calls = [_call_from_event(e) for e in s.events if e.event == "model"]
    scores = s.scores or {}
    head, values = _row_scores(scores)
    first = next(iter(scores.values()), None)
    errored = s.error is not None or h.get("status") == "error"
    prompt = next((text_of(m["content"]) for m in reversed(messages) if m["role"] == "user"), None)
    if prompt is None:
        prompt = s.input if isinstance(s.input, str) else None
    target = s.target if isinstance(s.target, str) else json.dumps(s.target, ensure_ascii=False)
    usage_in = sum(u.input_tokens for u in s.model_usage.values()) if s.model_usage else None
    usage_out = sum(u.output_tokens for u in s.model_usage.values()) if s.model_usage else None
    row = {
        "sample_id": str(s.id), "epoch": h.get("epoch", s.epoch - 1), "status": "error" if errored else "scored",
        "score": None if errored else h.get("score", head), "scores": None if errored else h.get("scores", values),
        "answer": first.answer if first and not errored else None, "target": target, "prompt": prompt,
        "response": s.output.completion if s.output and s.output.choices else None,
        "error_category": h.get("error_category"), "error": (s.error.message if s.error else None) if errored else None,
        "explanation": None if errored else h.get("explanation", first.explanation if first else None),
        "metadata": meta, "input_tokens": h.get("input_tokens", usage_in), "output_tokens": h.get("output_tokens", usage_out),
        "latency_s": h.get("latency_s", s.total_time),
    }
    if errored and s.error and s.error.message and not row["error"]:
        row["error"] = s.error.message
    score_json = [{"value": _value_to_float(sc.value.get("value")) if isinstance(sc.value, dict) else _value_to_float(sc.value),
                   "values": {k: v for k, v in sc.value.items() if k != "value"} if isinstance(sc.value, dict) else {name: sc.value},
                   "answer": sc.answer, "explanation": sc.explanation,
                   "error_category": (sc.metadata or {}).get("error_category"),
                   "metadata": {k: v for k, v in (sc.metadata or {}).items() if k != "error_category"}}
                  for name, sc in scores.items()]
    if errored and s.error and s.error.traceback:
        score_json = [{"traceback": s.error.traceback}]
    trace = {"messages": messages, "calls": calls, "scores": score_json,
             "metadata": {**(h.get("trace_metadata") or {}), **({"inspect_uuid": s.uuid} if s.uuid and not h else {})}}
    call_rows = [{"sample_id": row["sample_id"], "epoch": row["epoch"], "idx": i, "kind": c["kind"], "model": c["model"],
                  "input_tokens": c["input_tokens"], "output_tokens": c["output_tokens"], "latency_s": c["latency_s"],
                  "attempts": max(1, len(c["attempts"])), "error": c["error"], "started_at": c["started_at"]}
                 for i, c in enumerate(calls)]
    return SampleResult(rt_id, row, call_rows, trace)


def _metrics_of(log, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A harness export's metrics as they were; for a log Inspect wrote, each scorer's mean over the imported rows
    in percent with its 95% CI (the harness's own metric), Inspect's reported metrics kept beside as given."""
    from harness.scoring import Metric

    own = (log.results.metadata or {}) if log.results else {}
    scored = [r for r in rows if r["status"] == "scored"]
    counts = {"scored": len(scored), "error": len(rows) - len(scored),
              "planned": (log.results.total_samples if log.results else None) or len(rows)}
    complete = counts["error"] == 0 and counts["scored"] >= counts["planned"]
    harness_spec = (log.eval.metadata or {}).get("harness")
    if harness_spec and log.results and log.results.scores:
        overall = {name: {"value": m.value, **{k: (m.metadata or {}).get(k) for k in ("ci_low", "ci_high", "n")}}
                   for name, m in log.results.scores[0].metrics.items()}
        return {"overall": overall, "by": own.get("by") or {}, "headline": own.get("headline"),
                "counts": counts, "complete": complete}
    names: list[str] = []
    for r in scored:
        for k in r["scores"] or {}:
            if k not in names:
                names.append(k)
    overall = {}
    for name in names:
        per_sample: dict[str, list[float]] = {}
        for r in scored:
            v = (r["scores"] or {}).get(name)
            if v is not None:
                per_sample.setdefault(r["sample_id"], []).append(float(v))
        if (mv := Metric(name, key=name).compute(list(per_sample.values()))) is not None:
            overall[name] = mv.to_json()
    reported = {s.name: {k: m.value for k, m in s.metrics.items()} for s in (log.results.scores if log.results else [])}
    headline = log.results.headline.score if log.results and log.results.headline else None
    return {"overall": overall, "by": {}, "headline": headline if headline in overall else next(iter(overall), None),
            "counts": counts, "complete": complete, "inspect_reported": reported}


def import_inspect(store, paths: list[str | Path]) -> list[dict[str, Any]]:
    """Each Inspect log becomes a (task, variant) of a run in the store; logs of one Inspect run (one eval()
    call: the same eval.run_id) become one run. Returns, per run made, its id, tasks and sample counts."""
    _require_inspect()
    from inspect_ai.log import read_eval_log

    logs = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise UsageError(f"no Inspect log at {path}: give .eval or .json log files (inspect's log folder is "
                             "logs/ by default)")
        try:
            # "core": content Inspect stores once as an attachment (a repeated prompt) is read back in place
            logs.append((path, read_eval_log(str(path), resolve_attachments="core")))
        except Exception as e:  # inspect_ai raises many kinds for a file that is not a log
            raise UsageError(f"{path} is not an Inspect log inspect_ai can read: {type(e).__name__}: "
                             f"{str(e).splitlines()[0][:300] if str(e) else ''}") from None
    by_run: dict[str, list] = {}
    for path, log in logs:
        if not log.samples:
            raise UsageError(f"{path} holds no samples (written with log_samples off?); nothing to import")
        by_run.setdefault(log.eval.run_id, []).append((path, log))
    made = []
    for inspect_run, group in by_run.items():
        first = group[0][1]
        spec = first.eval
        harness_meta = (spec.metadata or {}).get("harness") or {}
        created = datetime.fromisoformat(spec.created) if spec.created else datetime.now(timezone.utc)
        run_id = f"{datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
        env = {"imported_from": "inspect", "inspect_run_id": inspect_run, "logs": [str(p.resolve()) for p, _ in group],
               "inspect_packages": spec.packages, "source_environment": harness_meta or None,
               "git_commit": spec.revision.commit if spec.revision else None}
        from harness._runner import EvalPlan, TaskRef

        tasks = [TaskRef(lg.eval.task, (lg.eval.task_attribs or {}).get("variant", "default"), lg.eval.task_args or {})
                 for _, lg in group]
        plan = EvalPlan(model=spec.model, tasks=tasks, base_url=spec.model_base_url,
                        data=spec.dataset.location or "inspect", limit=spec.config.limit if isinstance(spec.config.limit, int) else None,
                        epochs=spec.config.epochs or 1,
                        judges={r: (m.model if hasattr(m, "model") else str(m)) for r, m in (spec.model_roles or {}).items()})
        store.create_run(id=run_id, model=spec.model,
                         model_info={"imported_from": "inspect", "model_args": spec.model_args,
                                     "model_base_url": spec.model_base_url},
                         generate_config=harness_meta.get("generate_config")
                         if harness_meta.get("generate_config") is not None
                         else spec.model_generate_config.model_dump(exclude_none=True),
                         base_url=spec.model_base_url, seed=harness_meta.get("seed", spec.model_generate_config.seed),
                         epochs=spec.config.epochs or 1, plan=plan.to_json(), limiters={}, environment=env,
                         command="harness import-inspect " + " ".join(str(p) for p, _ in group))
        summary = {"run_id": run_id, "model": spec.model, "created": created.isoformat(), "tasks": []}
        try:
            for path, log in group:
                summary["tasks"].append(_import_task(store, run_id, path, log))
        except BaseException:
            store.set_run_status(run_id, "interrupted")
            raise
        store.set_run_status(run_id, "finished")
        made.append(summary)
    return made


def _import_task(store, run_id: str, path: Path, log) -> dict[str, Any]:
    spec = log.eval
    hm = (spec.metadata or {}).get("harness") or {}
    variant = (spec.task_attribs or {}).get("variant", "default")
    dataset = hm.get("dataset") or {"kind": "inspect", "location": spec.dataset.location, "revision": None,
                                     "sha256": None, "name": spec.dataset.name}
    planned = (log.results.total_samples if log.results else None) or len(log.samples)
    rt_id = store.run_task(run_id, spec.task, variant, task_args=spec.task_args or {},
                           task_version=str(spec.task_version), dataset=dataset, samples_planned=planned)
    results = [_sample_result(rt_id, s, spec.model) for s in log.samples]
    problems = []
    for i in range(0, len(results), 256):
        problems += store.write(results[i:i + 256])
    rows = [r.row for r in results]
    store.set_metrics(rt_id, _metrics_of(log, rows))
    return {"log": str(path), "task": spec.task, "variant": variant, "samples": len(rows),
            "scored": sum(r["status"] == "scored" for r in rows), "errored": sum(r["status"] == "error" for r in rows),
            "problems": problems}

