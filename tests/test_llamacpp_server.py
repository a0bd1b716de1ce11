"""The real LLM server of the tests: llama.cpp's server (llama-cpp-python 0.3.36, `--chat_format
chatml-function-calling`) with SmolLM2-135M-Instruct, started by .ci/setup-llamacpp.sh.

First the protocol facts the harness relies on, posted raw, so a change of server version that breaks one shows
here and not as a puzzling agent failure; then a plain eval through the public CLI. Prompts are kept short: prompt
processing runs at about 100 tokens/s on this machine. With temperature 0 the answers are deterministic, and a
forced tool call is constrained by a grammar built from the tool's JSON schema, so its arguments always parse."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import aiohttp
import pytest

SYSTEM = {"role": "system", "content": "You are a calculator."}  # the tools are listed only inside a system message
USER = {"role": "user", "content": "What is 2 + 3? Use the add tool."}
ADD = {"type": "function", "function": {
    "name": "add", "description": "Add two integers.",
    "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                   "required": ["a", "b"]}}}
FORCE_ADD = {"type": "function", "function": {"name": "add"}}
CALL = {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": '{"a": 2, "b": 3}'}}


async def chat(url: str, **body) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/chat/completions", json={"model": "smollm2", "temperature": 0, **body},
                             timeout=aiohttp.ClientTimeout(total=120)) as r:
            return r.status, await r.json(content_type=None)


def after_call(content, result: str = "5") -> list[dict]:
    """The conversation after the model called add: its tool-call message with `content`, then the result."""
    return [SYSTEM, USER, {"role": "assistant", "content": content, "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "call_1", "content": result}]


async def test_a_forced_tool_choice_returns_openai_tool_calls(llamacpp_url):
    status, data = await chat(llamacpp_url, messages=[SYSTEM, USER], tools=[ADD], tool_choice=FORCE_ADD, max_tokens=32)
    assert status == 200, data
    choice = data["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] is None  # null, not "": the harness must send "" back (next test)
    [call] = message["tool_calls"]
    assert isinstance(call["id"], str) and call["id"] and call["type"] == "function"
    assert call["function"]["name"] == "add"
    arguments = json.loads(call["function"]["arguments"])  # a JSON string, as OpenAI sends it
    assert set(arguments) == {"a", "b"} and all(isinstance(v, int) for v in arguments.values())


async def test_the_tools_reach_the_model_only_through_a_system_message(llamacpp_url):
    # the template lists the tools inside the system message: without one the model is asked to call a tool it has
    # never been shown (the prompt is the user's question alone)
    with_system = (await chat(llamacpp_url, messages=[SYSTEM, USER], tools=[ADD], tool_choice=FORCE_ADD,
                              max_tokens=1))[1]["usage"]["prompt_tokens"]
    without = (await chat(llamacpp_url, messages=[USER], tools=[ADD], tool_choice=FORCE_ADD,
                          max_tokens=1))[1]["usage"]["prompt_tokens"]
    assert with_system > 150 and without < 40


async def test_tool_choice_auto_calls_the_tool_and_required_is_refused(llamacpp_url):
    status, data = await chat(llamacpp_url, messages=[SYSTEM, USER], tools=[ADD], tool_choice="auto", max_tokens=32)
    assert status == 200 and data["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "add"
    # "required" is not implemented by this chat format: a 500 with an empty message, so a client must not send it
    status, data = await chat(llamacpp_url, messages=[SYSTEM, USER], tools=[ADD], tool_choice="required", max_tokens=8)
    assert status == 500 and data["error"]["type"] == "internal_server_error"


async def test_a_tool_result_is_answered_only_after_content_empty_string(llamacpp_url):
    status, data = await chat(llamacpp_url, messages=after_call(""), max_tokens=8)
    assert status == 200, data
    assert isinstance(data["choices"][0]["message"]["content"], str)
    assert data["choices"][0]["finish_reason"] in ("stop", "length")
    # content null (what OpenAI itself sends) fails the server's request validation: a 500, not a 400, so a client
    # that retries 5xx would retry it to no end
    status, data = await chat(llamacpp_url, messages=after_call(None), max_tokens=8)
    assert status == 500 and "Input should be a valid string" in data["error"]["message"]
    # and content left out breaks its prompt template
    messages = after_call("")
    del messages[2]["content"]
    status, data = await chat(llamacpp_url, messages=messages, max_tokens=8)
    assert status == 500 and "has no attribute 'content'" in data["error"]["message"]


async def test_the_tool_result_itself_never_reaches_the_model(llamacpp_url):
    # chatml-function-calling's template renders no `tool` message content: the prompt is the same whatever the
    # tool returned, so with this server a model acts on its tool calls blind
    short = (await chat(llamacpp_url, messages=after_call("", "5"), max_tokens=1))[1]["usage"]["prompt_tokens"]
    long = (await chat(llamacpp_url, messages=after_call("", "5 " * 60), max_tokens=1))[1]["usage"]["prompt_tokens"]
    assert short == long


async def test_message_text_is_html_escaped_in_the_prompt(llamacpp_url):
    # its template is rendered with HTML autoescaping: the model reads `&lt;result&gt;` where the prompt said
    # `<result>` (CipherBank asks for <result> tags)
    async def tokens(text: str) -> int:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{llamacpp_url.removesuffix('/v1')}/extras/tokenize/count", json={"input": (
                    f"<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n")}) as r:
                return (await r.json())["count"]

    raw, escaped = "<result>a & b</result>", "&lt;result&gt;a &amp; b&lt;/result&gt;"
    status, data = await chat(llamacpp_url, messages=[{"role": "user", "content": raw}], max_tokens=1)
    assert status == 200
    assert data["usage"]["prompt_tokens"] == await tokens(escaped) != await tokens(raw)


def harness(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HARNESS_PROGRESS_INTERVAL": "3600"})


def test_a_plain_eval_through_the_cli_ends_every_sample_scored_or_errored(llamacpp_url, tmp_path):
    db = ["--db", f"sqlite:///{tmp_path / 'h.db'}"]
    out = harness("eval", "--model", "openai/smollm2", "--base-url", llamacpp_url, "--task", "cipherbank",
                  "--data", "bundled", "--limit", "2", "-M", "max_tokens=32", "-M", "temperature=0", *db, "--json")
    assert out.returncode == 0, out.stderr
    run_id = json.loads(out.stdout)["run"]["id"]
    shown = json.loads(harness("show", run_id, *db, "--json").stdout)
    assert shown["run"]["status"] == "finished"
    assert sum(shown["tasks"][0]["counts"].values()) == 2
    rows = json.loads(harness("query", "select s.sample_id, s.status, s.error, s.score, c.input_tokens, "
                              "c.output_tokens from samples_v s join calls_v c on c.run_id = s.run_id and "
                              "c.sample_id = s.sample_id", *db, "--json").stdout)
    assert len(rows) == 2
    for row in rows:
        assert (row["status"] == "scored" and row["score"] is not None) or (row["status"] == "error" and row["error"])
        # the real model read the real prompt and wrote up to max_tokens
        assert row["input_tokens"] > 100 and 1 <= row["output_tokens"] <= 32
