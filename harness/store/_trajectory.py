"""A stored sample's trajectory as a list of steps for people to read: the prompt, then every model turn (its
text and tool calls), tool result (with its error), limit, error and span (an agent's turn, a handoff) in the
order they happened, each with the agent that took it and its nesting depth. `harness show RUN --sample ID`
prints it and the leaderboard's sample page renders it; both escape every text in it (it is untrusted).

Read from the trace: its `events` (the full inputs and outputs, harness._events.Event.to_json() each) when the
sample has them, else its `messages` alone (a plain, single-generate sample)."""
from __future__ import annotations

import json
from typing import Any


def _text(content: Any) -> str:
    """A message's content as text; an image part is named, not inlined (a data URL is unreadable)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for p in content:
            if isinstance(p, dict) and p.get("type") == "text":
                parts.append(str(p.get("text", "")))
            elif isinstance(p, dict) and p.get("type") == "image":
                image = str(p.get("image", ""))
                parts.append("[image: data URL]" if image.startswith("data:") else f"[image: {image}]")
            else:
                parts.append(json.dumps(p, ensure_ascii=False, default=str))
        return "\n".join(parts)
    return json.dumps(content, ensure_ascii=False, indent=2, default=str)


def _arguments(value: Any) -> Any:
    """Tool-call arguments as an object where they parse (OpenAI sends a JSON string), else as given."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def tool_call(call: Any) -> dict[str, Any]:
    """One tool call, from harness's ToolCall dump ({id, function, arguments, raw, parse_error}) or OpenAI's
    ({id, type, function: {name, arguments}}): {"id", "function", "arguments", "parse_error"}."""
    if not isinstance(call, dict):
        return {"id": None, "function": "?", "arguments": _text(call), "parse_error": None}
    fn = call.get("function")
    if isinstance(fn, dict):
        return {"id": call.get("id"), "function": str(fn.get("name") or "?"), "arguments": _arguments(fn.get("arguments")),
                "parse_error": call.get("parse_error")}
    arguments = call.get("arguments")
    if arguments in (None, {}) and call.get("raw") and call.get("parse_error"):
        arguments = call["raw"]  # what the model sent, since it did not parse
    return {"id": call.get("id"), "function": str(fn or call.get("name") or "?"), "arguments": _arguments(arguments),
            "parse_error": call.get("parse_error")}


def format_arguments(arguments: Any) -> str:
    """Arguments for reading: `key: value` lines, a multi-line string value (code, a file) as a block below its key."""
    if not isinstance(arguments, dict):
        return _text(arguments)
    lines = []
    for key, value in arguments.items():
        if isinstance(value, str) and "\n" in value:
            lines.append(f"{key}:\n{value}")
        else:
            lines.append(f"{key}: {value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)}")
    return "\n".join(lines)


def _step(kind: str, **fields: Any) -> dict[str, Any]:
    step = {"kind": kind, "seq": None, "depth": 0, "agent": None, "role": None, "name": None, "text": "",
            "tool_calls": [], "arguments": None, "call_id": None, "error": None, "error_message": None, "input_tokens": None,
            "output_tokens": None, "latency_s": None}
    step.update(fields)
    return step


def _from_message(m: dict[str, Any]) -> dict[str, Any]:
    role = m.get("role", "?")
    if role == "assistant":
        return _step("assistant", role=role, agent=m.get("agent"), text=_text(m.get("content")),
                     tool_calls=[tool_call(c) for c in m.get("tool_calls") or []])
    if role == "tool":
        error = m.get("error") if isinstance(m.get("error"), dict) else {}
        return _step("tool", role=role, name=m.get("function") or m.get("name"), text=_text(m.get("content")),
                     error=error.get("kind"), error_message=error.get("message"))
    return _step("message", role=role, text=_text(m.get("content")))


def steps(trace: dict[str, Any]) -> list[dict[str, Any]]:
    """The trajectory of one stored trace, in order (see the module's docstring)."""
    messages = [m for m in trace.get("messages") or [] if isinstance(m, dict)]
    events = [e for e in trace.get("events") or [] if isinstance(e, dict)]
    if not events:
        return [_from_message(m) for m in messages]
    # the prompt: what was sent before the model's first turn (the events hold everything after it)
    out = []
    for m in messages:
        if m.get("role") in ("assistant", "tool"):
            break
        out.append(_from_message(m))
    # a tool event's result text is in its output; the error's message is in its metadata (harness.agent puts it
    # there) and on the tool message it produced
    tool_errors = {m.get("tool_call_id"): m["error"].get("message") for m in messages
                   if m.get("role") == "tool" and isinstance(m.get("error"), dict)}
    depth: dict[int, int] = {}
    for e in events:
        seq, parent = e.get("seq"), e.get("span")
        level = depth.get(parent, -1) + 1 if parent is not None else 0
        if seq is not None:
            depth[seq] = level
        common = {"seq": seq, "depth": level, "agent": e.get("agent"), "name": e.get("name"),
                  "error": e.get("error"), "input_tokens": e.get("input_tokens"),
                  "output_tokens": e.get("output_tokens"), "latency_s": e.get("latency_s")}
        kind, output = e.get("kind"), e.get("output")
        if kind == "model":
            if isinstance(output, str) and output.startswith("{"):  # the events table's copy: JSON text
                try:
                    output = json.loads(output)
                except json.JSONDecodeError:
                    pass  # clipped: shown as the text it is
            text, calls = (output.get("text"), output.get("tool_calls")) if isinstance(output, dict) else (output, None)
            out.append(_step("assistant", role="assistant", **common, text=_text(text),
                             tool_calls=[tool_call(c) for c in calls or []]))
        elif kind == "tool":
            meta = e.get("metadata") or {}
            call_id = meta.get("call_id")
            out.append(_step("tool", role="tool", **common, text=_text(output), arguments=_arguments(e.get("input")),
                             call_id=call_id, error_message=meta.get("message") or tool_errors.get(call_id)))
        else:  # limit, error, span
            out.append(_step(kind if kind in ("limit", "error", "span") else "event", **common,
                             text=_text(output) if output is not None else ""))
    return out


def outcome(row: dict[str, Any], trace: dict[str, Any]) -> dict[str, Any]:
    """How the sample ended: status, score, answer, target, error category, the infrastructure error, and the
    limit that ended it (a `limit` event's name), for the transcript's last line."""
    limits = [e.get("name") for e in trace.get("events") or [] if isinstance(e, dict) and e.get("kind") == "limit"]
    return {key: row.get(key) for key in ("status", "score", "answer", "target", "error_category", "error")} | {
        "limit": limits[-1] if limits else None}
