"""A small OpenAI-compatible chat-completions server for tests and benchmarks (aiohttp, loopback only).

    python tests/fakeopenai.py --port 0 [--latency 0.1] [--faults SPEC] [--log FILE] [--answer TEXT]

Prints `PORT <n>` once listening. The answer is `<result>TEXT</result>` where TEXT is --answer, or the
last non-empty line of the user message when --answer is not given. --faults is a comma list applied by
request number (1-based), checked in this order:
  429:N:S   the first N requests get 429 with Retry-After S seconds
  500:K     every K-th request gets 500
  drop:K    every K-th request has its connection closed without a response
  slow:K:S  every K-th request waits S extra seconds
  401:N     every request after the first N gets 401 (a key revoked mid-run)
  ctx:K     every K-th request gets 400 context_length_exceeded, worded as --ctx-style says (openai|vllm|llamacpp)
  redirect:URL  every request gets 307 to URL
  bomb:MB   every request gets a gzip body that inflates to MB MiB (a gzip bomb)
  big:MB    every request gets a (valid JSON) body of MB MiB, chunked (no Content-Length)
  shape:S   the answer's shape: message_str, usage_str, content_num, content_dict, content_list, surrogate, nul
Agents: --script FILE answers from a JSON list of assistant messages (OpenAI's shape; `arguments` may be a
string, malformed on purpose, or an object; `raw_tool_calls` is sent exactly as written, `finish_reason` as given):
the reply to a request is the k-th message, k the number of
assistant turns the request already holds (so it is the same for every conversation, and concurrent ones do
not mix), the last one once the list is used up. --agent-turns N answers a request that offers tools with a
`bash` call `echo turn-K` (in the tool's first required parameter) until the conversation holds N tool results,
then with a `submit` of the usual answer.
GET /stats returns counts; every chat request is appended to --log as JSON (its number, prompt and body).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys

from aiohttp import web


def build_app(latency: float, faults: str, log_path: str | None, answer: str | None,
              ctx_style: str = "openai", script: list[dict] | None = None, agent_turns: int = 0) -> web.Application:
    rules = [f.split(":", 1) if f.startswith("redirect:") else f.split(":") for f in faults.split(",") if f]
    state = {"n": 0, "in_flight": 0, "max_in_flight": 0, "statuses": {}}
    log = open(log_path, "a", buffering=1) if log_path else None

    async def chat(request: web.Request) -> web.StreamResponse:
        state["n"] += 1
        n = state["n"]
        body = await request.json()
        prompt = next((m["content"] for m in reversed(body["messages"]) if m["role"] == "user"), "")
        if isinstance(prompt, list):  # content parts: their text
            prompt = "".join(p.get("text", "") for p in prompt if isinstance(p, dict))
        if log:
            log.write(json.dumps({"n": n, "prompt": prompt, "body": body}) + "\n")
        state["in_flight"] += 1
        state["max_in_flight"] = max(state["max_in_flight"], state["in_flight"])
        try:
            for rule in rules:
                kind = rule[0]
                if kind == "429" and n <= int(rule[1]):
                    return _status(state, 429, {"Retry-After": rule[2]})
                if kind == "500" and n % int(rule[1]) == 0:
                    return _status(state, 500)
                if kind == "drop" and n % int(rule[1]) == 0:
                    request.transport.close()
                    raise asyncio.CancelledError
                if kind == "slow" and n % int(rule[1]) == 0:
                    await asyncio.sleep(float(rule[2]))
                if kind == "401" and n > int(rule[1]):
                    return _status(state, 401)
                if kind == "ctx" and n % int(rule[1]) == 0:
                    state["statuses"]["400"] = state["statuses"].get("400", 0) + 1
                    return web.json_response(CTX_ERRORS[ctx_style], status=400)
                if kind == "redirect":
                    state["statuses"]["307"] = state["statuses"].get("307", 0) + 1
                    return web.Response(status=307, headers={"Location": rule[1]})
                if kind == "bomb":
                    state["statuses"]["200"] = state["statuses"].get("200", 0) + 1
                    return web.Response(body=_bomb(int(rule[1])), headers={"Content-Encoding": "gzip",
                                                                           "Content-Type": "application/json"})
                if kind == "big":  # chunked, so no Content-Length tells the client the size in advance
                    state["statuses"]["200"] = state["statuses"].get("200", 0) + 1
                    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
                    resp.enable_chunked_encoding()
                    await resp.prepare(request)
                    try:
                        await resp.write(b'{"choices": [{"message": {"content": "')
                        for _ in range(int(rule[1])):
                            await resp.write(b"x" * (1 << 20))
                        await resp.write(b'"}}]}')
                        await resp.write_eof()
                    except ConnectionError:
                        pass  # the client stopped reading (what a capped client does)
                    return resp
            await asyncio.sleep(latency)
            text = answer if answer is not None else next(
                (line.strip() for line in reversed(prompt.splitlines()) if line.strip()), "")
            state["statuses"]["200"] = state["statuses"].get("200", 0) + 1
            if script is not None or (agent_turns and body.get("tools")):
                return web.json_response(_agent_reply(n, body, script, agent_turns, f"<result>{text}</result>"))
            reply = {
                "id": f"cmpl-{n}", "object": "chat.completion", "model": body.get("model"),
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": f"<result>{text}</result>"}}],
                "usage": {"prompt_tokens": len(prompt) // 4, "completion_tokens": 8,
                          "total_tokens": len(prompt) // 4 + 8},
            }
            shape = next((r[1] for r in rules if r[0] == "shape"), None)
            if shape:
                return _shaped(reply, shape, text)
            return web.json_response(reply)
        finally:
            state["in_flight"] -= 1

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({k: v for k, v in state.items()})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/stats", stats)
    app.router.add_get("/health", lambda request: web.Response(text="ok"))
    return app


def _agent_reply(n: int, body: dict, script: list[dict] | None, agent_turns: int, final: str) -> dict:
    messages = body["messages"]
    if script is not None:
        turn = sum(1 for m in messages if m["role"] == "assistant")
        message = dict(script[min(turn, len(script) - 1)])
    else:
        done = sum(1 for m in messages if m["role"] == "tool")
        # the command goes in the offered bash tool's first required parameter: `cmd` here, `command` in Inspect
        schema = next((t["function"].get("parameters") or {} for t in body.get("tools") or []
                       if t.get("function", {}).get("name") == "bash"), {})
        arg = (schema.get("required") or ["cmd"])[0]
        call = ("bash", {arg: f"echo turn-{done}"}) if done < agent_turns else ("submit", {"answer": final})
        message = {"content": "", "tool_calls": [{"id": f"call-{n}", "function": {"name": call[0], "arguments": call[1]}}]}
    calls = []
    for i, c in enumerate(message.get("tool_calls") or []):
        arguments = c["function"].get("arguments", "")
        calls.append({"id": c.get("id", f"call-{n}-{i}"), "type": "function",
                      "function": {"name": c["function"]["name"],
                                   "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments)}})
    out = {"role": "assistant", "content": message.get("content")}
    if calls:
        out["tool_calls"] = calls
    if "raw_tool_calls" in message:  # a shape no well-behaved server sends, passed through as written
        out["tool_calls"] = message["raw_tool_calls"]
    finish = message.get("finish_reason", "tool_calls" if calls else "stop")
    return {"id": f"cmpl-{n}", "object": "chat.completion", "model": body.get("model"),
            "choices": [{"index": 0, "finish_reason": finish, "message": out}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28}}


CTX_ERRORS = {
    "openai": {"error": {"message": "This model's maximum context length is 128000 tokens. However, your messages "
                                    "resulted in 130000 tokens.", "type": "invalid_request_error",
                         "param": "messages", "code": "context_length_exceeded"}},
    "vllm": {"object": "error", "message": "This model's maximum context length is 4096 tokens. However, you "
                                          "requested 5000 tokens in the messages.", "type": "BadRequestError",
             "param": None, "code": 400},
    "llamacpp": {"error": {"code": 400, "message": "the request exceeds the available context size, try increasing "
                                                   "it", "type": "exceed_context_size_error"}},
}
_BOMBS: dict[int, bytes] = {}


def _bomb(mib: int) -> bytes:
    """gzip of `mib` MiB of zeros (about 1 KiB per MiB): made once per size, compressed in chunks."""
    if mib not in _BOMBS:
        import zlib

        z = zlib.compressobj(1, zlib.DEFLATED, 31)
        zeros = bytes(1 << 20)
        _BOMBS[mib] = b"".join([*(z.compress(zeros) for _ in range(mib)), z.flush()])
    return _BOMBS[mib]


def _shaped(reply: dict, shape: str, text: str) -> web.Response:
    """An answer of an odd but possible shape (what a gateway or a broken server sends)."""
    message = reply["choices"][0]["message"]
    if shape == "message_str":
        reply["choices"][0]["message"] = f"<result>{text}</result>"
    elif shape == "usage_str":
        reply["usage"] = "n/a"
    elif shape == "content_num":
        message["content"] = 42
    elif shape == "content_dict":
        message["content"] = {"answer": text}
    elif shape == "content_list":
        message["content"] = [{"type": "text", "text": "<result>"}, {"type": "image_url", "image_url": {"url": "x"}},
                              {"type": "text", "text": f"{text}</result>"}]
    elif shape == "surrogate":  # a lone surrogate, as JSON allows it (\ud800): not encodable as UTF-8
        message["content"] = f"<result>{text}</result> \ud800"
    elif shape == "nul":
        message["content"] = f"<result>{text}</result> \x00"
    return web.Response(text=json.dumps(reply), content_type="application/json")


def start_server(*args: str):
    """Start this server in a subprocess on a free loopback port: (process, base URL)."""
    import subprocess

    proc = subprocess.Popen([sys.executable, __file__, "--port", "0", *args], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"fake server did not start: {line!r}")
    return proc, f"http://127.0.0.1:{line.split()[1]}/v1"


def _status(state, code: int, headers: dict[str, str] | None = None) -> web.Response:
    state["statuses"][str(code)] = state["statuses"].get(str(code), 0) + 1
    return web.json_response({"error": {"message": f"injected {code}"}}, status=code, headers=headers)


async def serve(port: int, **kw) -> None:
    runner = web.AppRunner(build_app(**kw), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    print(f"PORT {site._server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--latency", type=float, default=0.0)
    p.add_argument("--faults", default="")
    p.add_argument("--log")
    p.add_argument("--answer")
    p.add_argument("--ctx-style", default="openai", choices=sorted(CTX_ERRORS))
    p.add_argument("--script")
    p.add_argument("--agent-turns", type=int, default=0)
    a = p.parse_args()
    script = json.loads(open(a.script).read()) if a.script else None
    try:
        asyncio.run(serve(a.port, latency=a.latency, faults=a.faults, log_path=a.log, answer=a.answer,
                          ctx_style=a.ctx_style, script=script, agent_turns=a.agent_turns))
    except KeyboardInterrupt:
        sys.exit(0)
