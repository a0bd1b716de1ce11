"""The OpenAI-compatible client's side of tool calling, against the loopback server (tests/fakeopenai.py) with
hand-written replies: what is sent, and how every shape of reply is read."""
from __future__ import annotations

import json

import pytest

from harness import ChatMessageAssistant, ChatMessageTool, ChatMessageUser, ContentImage, ContentText, ToolCall
from harness.agent import bash, submit
from harness.agent._tool import info
from harness.model import OpenAICompatible

REPLIES = [
    # 0: well formed, but `arguments` an object and no id
    {"raw_tool_calls": [{"type": "function", "function": {"name": "bash", "arguments": {"cmd": "ls"}}}]},
    # 1: not a list
    {"content": "hi", "raw_tool_calls": {"name": "bash"}},
    # 2: entries that are not function calls, beside one that is, whose arguments are not JSON
    {"raw_tool_calls": [{"id": "x"}, "bash", {"id": "ok", "function": {"name": "bash", "arguments": "{'cmd': 1}"}}]},
    # 3: cut off by max_tokens
    {"content": "partial", "finish_reason": "length"},
    # 4: a server that says "stop" although it called a tool (llama.cpp does)
    {"finish_reason": "stop", "tool_calls": [{"id": "s", "function": {"name": "submit", "arguments": {"answer": "a"}}}]},
]


@pytest.fixture
def server(tmp_path):
    from fakeopenai import start_server

    (tmp_path / "script.json").write_text(json.dumps(REPLIES))
    proc, url = start_server("--script", str(tmp_path / "script.json"), "--log", str(tmp_path / "log.jsonl"))
    yield url, tmp_path / "log.jsonl"
    proc.terminate()
    proc.wait(10)


def _history(turns: int) -> list:
    """A conversation that holds `turns` assistant turns, so the server answers with REPLIES[turns]."""
    messages = [ChatMessageUser(content=[ContentText(text="look: "), ContentImage(image="data:image/png;base64,AAAA")])]
    for i in range(turns):
        messages.append(ChatMessageAssistant(content="", tool_calls=[ToolCall(id=f"t{i}", function="bash",
                                                                              arguments={"cmd": "ls"})]))
        messages.append(ChatMessageTool(content="out", tool_call_id=f"t{i}", function="bash"))
    return messages


async def test_every_shape_of_tool_call_reply_is_read_or_noted(server):
    url, log = server
    client = OpenAICompatible("fake-model", base_url=url)
    tools = [info(bash()), info(submit())]
    try:
        outs = [await client.generate(_history(k), {}, tools=tools, tool_choice="auto") for k in range(len(REPLIES))]
    finally:
        await client.aclose()
    first = outs[0]
    assert first.stop_reason == "tool_calls"
    assert [(c.id, c.function, c.arguments, c.parse_error) for c in first.tool_calls] == [("call_0", "bash", {"cmd": "ls"}, None)]
    assert outs[1].tool_calls == [] and outs[1].text == "hi"
    assert "tool_calls was a dict, not a list: ignored" in outs[1].call.raw["notes"]
    bad = outs[2]
    assert [c.id for c in bad.tool_calls] == ["ok"] and "not valid JSON" in bad.tool_calls[0].parse_error
    assert bad.call.raw["notes"] == ["tool_calls[0] is not a function call: left out",
                                     "tool_calls[1] is not a function call: left out"]
    assert outs[3].stop_reason == "max_tokens" and outs[3].text == "partial"
    assert outs[4].stop_reason == "tool_calls" and outs[4].tool_calls[0].arguments == {"answer": "a"}
    sent = [json.loads(line)["body"] for line in log.read_text().splitlines()]
    body = sent[1]
    assert body["tool_choice"] == "auto"
    assert [t["function"]["name"] for t in body["tools"]] == ["bash", "submit"]
    assert body["tools"][0]["function"]["parameters"]["required"] == ["cmd"]
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "look: "},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "auto"}}]
    assert body["messages"][1] == {"role": "assistant", "content": "",
                                   "tool_calls": [{"id": "t0", "type": "function",
                                                   "function": {"name": "bash", "arguments": "{\"cmd\": \"ls\"}"}}]}
    assert body["messages"][2] == {"role": "tool", "content": "out", "tool_call_id": "t0"}
    # the request's key is what replay-run looks answers up by: the same request, the same key
    assert outs[0].call.to_json()["request_key"] == (await _key(url, tools))


async def _key(url, tools):
    client = OpenAICompatible("fake-model", base_url=url)
    try:
        return (await client.generate(_history(0), {}, tools=tools, tool_choice="auto")).call.to_json()["request_key"]
    finally:
        await client.aclose()


def test_images_a_tool_returns_follow_its_text_in_a_user_message():
    from harness._messages import to_openai

    sent = to_openai([ChatMessageTool(content=[ContentText(text="cropped"), ContentImage(image="data:image/png;base64,QQ")],
                                      tool_call_id="c1", function="crop")])
    assert sent == [{"role": "tool", "content": "cropped", "tool_call_id": "c1"},
                    {"role": "user", "content": [{"type": "text", "text": "(images from the crop call c1)"},
                                                 {"type": "image_url", "image_url": {"url": "data:image/png;base64,QQ",
                                                                                     "detail": "auto"}}]}]
