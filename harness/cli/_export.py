"""`harness export RUN --format who_and_when`: the harness's own runs as Who&When failure-attribution cases, so an
error-attribution method (the `who_and_when` suite with `--data FILE`) can be run on them.

One JSON Lines record per scored sample and epoch, in the layout of Who&When's Algorithm-Generated cases (the
speaker in `name`, the chat role in `role`):
- question: the sample's first user message; ground_truth: its target (null where the split hides it);
  is_correct: whether the harness scored it full marks (score 1), as upstream's field says whether the system
  solved the task.
- history: every step in order, from the sample's events where it has them (so a handed-off agent's turns are
  there too), else from its conversation: one step per assistant turn's text (named by its agent), one per tool
  call it made (named by the calling agent, content `function(arguments)`), one per tool result (named by the
  tool, role "tool"; a failed call's content starts with its error class and message, and the step has `error`,
  the class), and one per user turn (name "user"). Step indices are
  positions in this list, as upstream's. Spans and limits are not steps: the limit that ended a sample is its
  error category.
- system_prompt: the system message, under the top-level agent's name (its `agent:<name>` span, else "assistant").
- mistake_agent, mistake_step, mistake_reason: null. The harness knows no fault label: a person (or another tool)
  fills them in. The suite loads unlabelled records as invalid samples naming that reason (errored, never scored).
- harness: where the record came from (run, model, task, variant, sample, epoch, score, answer, error category);
  the suite takes its sample ids and breakdowns from it.

Errored samples are left out: their trajectories end where the infrastructure failed, which no agent caused.
"""
from __future__ import annotations

import json
import sys
from typing import Any, Iterator

from pydantic import TypeAdapter

from harness._messages import (ChatMessage, ChatMessageAssistant, ChatMessageSystem, ChatMessageTool, ChatMessageUser,
                               ContentText, ToolCall)
from harness._registry import UsageError

# a trace's messages are ChatMessage dumps (not OpenAI dicts, which parse_message reads): validated as the models
_STORED: TypeAdapter = TypeAdapter(ChatMessage)

DEFAULT_AGENT = "assistant"  # the name of a sample's only agent, where its turns name none
USER = "user"


def who_and_when_records(store, run_id: str) -> Iterator[dict[str, Any]]:
    """The run's scored samples as Who&When records, in stored order."""
    run = store.get_run(run_id)
    if run is None:
        raise UsageError(f"no run {run_id!r} in the database; `harness runs` lists them")
    for row in store.run_traces(run["id"], status="scored"):
        yield who_and_when_record(run, row)


def who_and_when_record(run: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    trace = row["trace"]
    messages = [_STORED.validate_python(m) for m in trace.get("messages") or []]
    events = trace.get("events") or []
    main = _main_agent(events)
    steps = [e for e in events if e.get("kind") in ("model", "tool")]
    history = _from_events(messages, steps, main) if steps else _from_messages(messages, main)
    system = [_text(m.content) for m in messages if isinstance(m, ChatMessageSystem)]
    question = next((_text(m.content) for m in messages if isinstance(m, ChatMessageUser)), "")
    score = row.get("score")
    return {
        "question": question,
        "question_ID": f"{row['task']}/{row['sample_id']}",
        "ground_truth": row.get("target"),
        "is_correct": score is not None and score >= 1.0,
        "history": history,
        "system_prompt": {main: "\n\n".join(system)} if system else {},
        "mistake_agent": None,
        "mistake_step": None,
        "mistake_reason": None,
        "harness": {"run": run["id"], "model": run.get("model"), "task": row["task"], "variant": row["variant"],
                    "sample_id": row["sample_id"], "epoch": row["epoch"], "score": score,
                    "answer": row.get("answer"), "error_category": row.get("error_category")},
    }


def _from_events(messages: list[Any], events: list[dict[str, Any]], main: str) -> list[dict[str, Any]]:
    """The steps of an agent run from its events, which hold every agent's turns (a handed-off agent's too, which
    the top-level conversation does not). User turns are not events: each goes in before the first call of the
    top-level agent that sent it (a model event's input is how many messages it sent)."""
    users = [(i, m) for i, m in enumerate(messages) if isinstance(m, ChatMessageUser)]
    history: list[dict[str, Any]] = []

    def users_up_to(count: int) -> None:
        while users and users[0][0] < count:
            history.append(_user_step(users.pop(0)[1]))

    for e in events:
        agent = e.get("agent") or main
        if e["kind"] == "model":
            if agent == main and isinstance(e.get("input"), int):
                users_up_to(e["input"])
            out = e.get("output") if isinstance(e.get("output"), dict) else {}
            calls = [ToolCall.model_validate(c) for c in out.get("tool_calls") or []]
            history.extend(_assistant_steps(str(out.get("text") or ""), calls, agent))
        else:
            meta = e.get("metadata") or {}
            content = _output_text(e.get("output"))
            if e.get("error") is not None:  # what the model was told: the failure's class and message, then output
                content = f"[{e['error']}] {meta.get('message') or ''}".rstrip() + (f"\n{content}" if content else "")
            history.append(_tool_step(content, str(e.get("name") or "tool"), meta.get("call_id"), e.get("error")))
    users_up_to(len(messages))
    return history


def _from_messages(messages: list[Any], main: str) -> list[dict[str, Any]]:
    """The steps of a run without events (a single generate, a run stored before events): its conversation."""
    history: list[dict[str, Any]] = []
    for m in messages:
        if isinstance(m, ChatMessageUser):
            history.append(_user_step(m))
        elif isinstance(m, ChatMessageAssistant):
            history.extend(_assistant_steps(_text(m.content), m.tool_calls or [], m.agent or main))
        elif isinstance(m, ChatMessageTool):
            history.append(_tool_step(_text(m.content), m.function or "tool", m.tool_call_id,
                                      m.error.kind if m.error is not None else None))
    return history


def _user_step(m: ChatMessageUser) -> dict[str, Any]:
    return {"content": _text(m.content), "name": USER, "role": "user"}


def _assistant_steps(text: str, calls: list[ToolCall], agent: str) -> list[dict[str, Any]]:
    """A turn's text (left out when the turn is tool calls alone), then each tool call as a step of its own."""
    steps = [{"content": text, "name": agent, "role": "assistant"}] if text or not calls else []
    for c in calls:
        args = c.raw if c.raw is not None else json.dumps(c.arguments, ensure_ascii=False)
        steps.append({"content": f"{c.function}({args})", "name": agent, "role": "assistant", "tool_call_id": c.id,
                      "function": c.function})
    return steps


def _tool_step(content: str, tool: str, call_id: str | None, error: str | None) -> dict[str, Any]:
    step = {"content": content, "name": tool, "role": "tool", "tool_call_id": call_id, "function": tool}
    if error is not None:
        step["error"] = error
    return step


def _output_text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def export_who_and_when(store, run_id: str, out: str | None = None) -> tuple[str, int]:
    """Write the run's records as JSON Lines to `out` (default RUN-who_and_when.jsonl; '-' for stdout)."""
    run = store.get_run(run_id)
    if run is None:
        raise UsageError(f"no run {run_id!r} in the database; `harness runs` lists them")
    out = out or f"{run['id']}-who_and_when.jsonl"
    if out != "-" and not out.endswith(".jsonl"):
        raise UsageError(f"--out {out}: a who_and_when export is JSON Lines and its name must end in .jsonl (the "
                         f"suite's --data reads a .jsonl file as one case per line)")
    n = 0
    fh = sys.stdout if out == "-" else open(out, "w", encoding="utf-8")
    try:
        for record in who_and_when_records(store, run["id"]):
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
    finally:
        if fh is not sys.stdout:
            fh.close()
    return out, n


def _main_agent(events: list[dict[str, Any]]) -> str:
    """The sample's agent as the agent loop named it (its outermost `agent:<name>` span), else DEFAULT_AGENT."""
    for e in events:
        name = e.get("name") or ""
        if e.get("kind") == "span" and e.get("span") is None and name.startswith("agent:") and name[6:]:
            return name[6:]
    return DEFAULT_AGENT


def _text(content: Any) -> str:
    """A message's text; each image part is shown as [image] where it was, so steps keep their shape."""
    if isinstance(content, str):
        return content
    return "".join(p.text if isinstance(p, ContentText) else "[image]" for p in content)
