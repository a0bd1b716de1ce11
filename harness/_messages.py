"""Chat messages, tool calls and what a model answers, typed.

A conversation is a list of `ChatMessage`: system, user, assistant (text and/or tool calls) and tool (the
result of one call). Content is a string or a list of parts (text, image), so a suite can send pictures.
These are pydantic models because they are persisted (each sample's trace keeps its messages); the dict
form of a message is OpenAI's chat format, which `ChatMessage.parse` reads and `to_openai` writes, so
suites may still write `{"role": "user", "content": ...}` where that reads better.
"""
from __future__ import annotations

import base64
import mimetypes
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContentText(_Model):
    type: Literal["text"] = "text"
    text: str


class ContentImage(_Model):
    """image: a data URL (`data:image/png;base64,...`), an http(s) URL, or a path to a local file (sent as a
    data URL, read when the request is made)."""

    type: Literal["image"] = "image"
    image: str
    detail: Literal["auto", "low", "high"] = "auto"


Content = Annotated[Union[ContentText, ContentImage], Field(discriminator="type")]


def text_of(content: str | list[Any] | None) -> str:
    """The text of a message's content: its text parts joined, images left out."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p.text for p in content if isinstance(p, ContentText))


class ToolCall(_Model):
    """One call the model asked for. `arguments` is the parsed JSON object; `raw` the string the model
    sent; `parse_error` says why `raw` is not a JSON object (the call then goes back to the model as a
    parsing error, it is never run)."""

    id: str
    function: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    raw: str | None = None
    parse_error: str | None = None


class ToolInfo(_Model):
    """A tool as the model is told of it: name, description and the JSON schema of its arguments."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class ToolError(_Model):
    """Why a tool call failed, told to the model. kind: timeout | parsing | unknown_tool | permission |
    file_not_found | output_limit | sandbox | limit | error (the tool raised)."""

    kind: str
    message: str


class _Message(_Model):
    content: str | list[Content] = ""

    @property
    def text(self) -> str:
        return text_of(self.content)


class ChatMessageSystem(_Message):
    role: Literal["system"] = "system"


class ChatMessageUser(_Message):
    role: Literal["user"] = "user"


class ChatMessageAssistant(_Message):
    """agent: which agent of a multi-agent solver spoke (None: the only one)."""

    role: Literal["assistant"] = "assistant"
    tool_calls: list[ToolCall] | None = None
    agent: str | None = None


class ChatMessageTool(_Message):
    role: Literal["tool"] = "tool"
    tool_call_id: str
    function: str
    error: ToolError | None = None


ChatMessage = Annotated[Union[ChatMessageSystem, ChatMessageUser, ChatMessageAssistant, ChatMessageTool],
                        Field(discriminator="role")]
_ADAPTER: TypeAdapter = TypeAdapter(ChatMessage)
Messages = list[Any]  # ChatMessage, or its OpenAI dict form where a caller writes one


def parse_message(message: Any) -> Any:
    """A ChatMessage from itself or from OpenAI's dict form (`tool_calls` as OpenAI sends them included)."""
    if isinstance(message, _Message):
        return message
    if not isinstance(message, dict):
        raise TypeError(f"a chat message must be a ChatMessage or a dict, not {type(message).__name__}")
    data = dict(message)
    if data.get("content") is None:
        data["content"] = ""
    if isinstance(data["content"], list):
        data["content"] = [_part(p) for p in data["content"]]
    if data.get("role") == "assistant" and data.get("tool_calls"):
        data["tool_calls"] = [c if isinstance(c, ToolCall) else
                              ToolCall.model_validate(c) if isinstance(c.get("function"), str)  # as a trace stores it
                              else _openai_tool_call(c) for c in data["tool_calls"]]
    if data.get("role") == "tool":
        data.setdefault("function", data.pop("name", ""))
    data.pop("name", None)
    return _ADAPTER.validate_python(data)


def parse_messages(messages: Messages) -> list[Any]:
    return [parse_message(m) for m in messages]


def _part(part: Any) -> Any:
    if isinstance(part, (ContentText, ContentImage)):
        return part
    if isinstance(part, str):
        return ContentText(text=part)
    if part.get("type") == "image_url":
        url = part["image_url"]
        url = url["url"] if isinstance(url, dict) else url
        return ContentImage(image=url)
    return part


def _openai_tool_call(call: dict[str, Any]) -> ToolCall:
    function = call.get("function") or {}
    raw = function.get("arguments")
    args, error = parse_arguments(raw)
    return ToolCall(id=str(call.get("id") or ""), function=str(function.get("name") or ""), arguments=args,
                    raw=raw if isinstance(raw, str) else None, parse_error=error)


def parse_arguments(raw: Any) -> tuple[dict[str, Any], str | None]:
    """A tool call's arguments as the model sent them: a JSON object (an empty string is no arguments). Anything
    else is kept out of `arguments` and named in the error the model is told."""
    import json

    if isinstance(raw, dict):
        return raw, None
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}, None
    if not isinstance(raw, str):
        return {}, f"arguments must be a JSON object, got a {type(raw).__name__}"
    try:
        value = json.loads(raw)
    except ValueError as e:
        return {}, f"arguments are not valid JSON ({e}): {raw[:200]!r}"
    if not isinstance(value, dict):
        return {}, f"arguments must be a JSON object, got {type(value).__name__}: {raw[:200]!r}"
    return value, None


def to_openai(messages: list[Any]) -> list[dict[str, Any]]:
    """The messages in OpenAI's chat format, as every OpenAI-compatible server reads them. An assistant turn with
    tool calls sends content "" rather than null: llama.cpp's server does not answer a tool result otherwise."""
    out = []
    for m in messages:
        m = parse_message(m)
        if isinstance(m, ChatMessageTool) and not isinstance(m.content, str) and any(
                isinstance(p, ContentImage) for p in m.content):
            # a tool message may hold only text (OpenAI's API refuses images there): its text stays, and its
            # images follow in a user message, as Inspect sends them
            out.append({"role": "tool", "content": m.text, "tool_call_id": m.tool_call_id})
            images = [_openai_part(p) for p in m.content if isinstance(p, ContentImage)]
            out.append({"role": "user", "content": [{"type": "text", "text": f"(images from the {m.function} call "
                                                     f"{m.tool_call_id})"}, *images]})
            continue
        content: Any = m.content if isinstance(m.content, str) else [_openai_part(p) for p in m.content]
        msg: dict[str, Any] = {"role": m.role, "content": content}
        if isinstance(m, ChatMessageAssistant) and m.tool_calls:
            msg["tool_calls"] = [{"id": c.id, "type": "function",
                                  "function": {"name": c.function, "arguments": c.raw if c.raw is not None
                                               else _json(c.arguments)}} for c in m.tool_calls]
        if isinstance(m, ChatMessageTool):
            msg["tool_call_id"] = m.tool_call_id
        out.append(msg)
    return out


def _openai_part(part: Any) -> dict[str, Any]:
    if isinstance(part, ContentText):
        return {"type": "text", "text": part.text}
    return {"type": "image_url", "image_url": {"url": image_url(part.image), "detail": part.detail}}


def image_url(image: str) -> str:
    """A data or http(s) URL as is; a local file as a data URL."""
    if image.startswith(("data:", "http://", "https://")):
        return image
    path = Path(image)
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


StopReason = Literal["stop", "tool_calls", "max_tokens", "content_filter", "context_length", "unknown"]
# OpenAI's finish_reason (and vLLM's / llama.cpp's) -> ours
FINISH_REASONS: dict[str, str] = {"stop": "stop", "eos": "stop", "tool_calls": "tool_calls",
                                  "function_call": "tool_calls", "length": "max_tokens",
                                  "content_filter": "content_filter"}
