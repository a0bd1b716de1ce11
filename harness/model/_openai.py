"""Any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, SGLang, gateways).

Requests go through aiohttp directly: the `openai` SDK's per-request CPU (about 6 ms here, see
../shared/bench/anchor-bench) would cap a 2-core machine far below what the endpoint can serve.
Retries are tenacity's; the concurrency limit is an AdaptiveLimiter per endpoint.
"""
from __future__ import annotations

import asyncio
import json
import os
import time
import zlib
from email.utils import parsedate_to_datetime
from typing import Any

from harness._messages import FINISH_REASONS, ToolCall, ToolInfo, parse_arguments, to_openai
from harness._registry import UsageError
from harness._types import Attempt, ContextLengthExceeded, InfraError, Message, ModelCall, ModelOutput, RunAborted
from harness.model._limiter import AdaptiveLimiter

OPENAI_URL = "https://api.openai.com/v1"
# client options taken from -M; every other -M key goes into the request body
# max_response_bytes caps a response body both as sent and once inflated (gzip / deflate)
CLIENT_OPTIONS = {"max_connections": 64, "timeout": 600.0, "max_retries": 10, "retry_max_wait": 60.0,
                  "max_response_bytes": 16 << 20}
ERROR_BODY_BYTES = 64 << 10  # what is read of a non-200 body: enough for any error message
# how servers say a prompt is longer than the model's context: OpenAI's code, vLLM's and llama.cpp's wordings
CONTEXT_LENGTH_MARKERS = ("context_length_exceeded", "maximum context length", "context length",
                          "exceed_context_size", "exceeds the available context size")


class RetryableError(Exception):
    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class ResponseTooLarge(Exception):
    """A body over max_response_bytes: the endpoint's fault, so its sample errors (and is not retried here)."""


class OpenAICompatible:
    def __init__(self, model: str, *, base_url: str | None = None, api_key_env: str = "OPENAI_API_KEY",
                 options: dict[str, Any] | None = None, name: str | None = None):
        self.model = model
        self.name = name or f"openai/{model}"
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL).rstrip("/")
        self.options = {**CLIENT_OPTIONS, **{k: v for k, v in (options or {}).items() if k in CLIENT_OPTIONS}}
        self.api_key = os.environ.get(api_key_env)
        if not self.api_key and self.base_url == OPENAI_URL:
            raise UsageError(f"{api_key_env} is not set: export it, or point --base-url at a server that needs no key")
        self.limiter = AdaptiveLimiter(f"endpoint:{self.base_url}", int(self.options["max_connections"]))
        self._session = None

    def _http(self):
        if self._session is None:
            import aiohttp

            # bodies are inflated here, under max_response_bytes (_read_body), not by aiohttp, which would inflate a
            # gzip bomb whole; so only the encodings _read_body knows are asked for
            headers = {"Content-Type": "application/json", "Accept-Encoding": "gzip, deflate"}
            if self.api_key:
                headers["Authorization"] = f"Bearer {self.api_key}"
            self._session = aiohttp.ClientSession(
                headers=headers, auto_decompress=False,
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
                timeout=aiohttp.ClientTimeout(total=float(self.options["timeout"])),
            )
        return self._session

    async def check(self) -> None:
        """Any HTTP answer from /models proves the endpoint is reachable; a refused connection ends here."""
        import aiohttp

        try:
            async with self._http().get(f"{self.base_url}/models", timeout=aiohttp.ClientTimeout(total=15)) as r:
                if r.status == 401:
                    raise UsageError(f"{self.base_url} refused the API key (401): check the key's environment variable")
        except (aiohttp.ClientConnectionError, asyncio.TimeoutError) as e:
            raise UsageError(f"cannot reach {self.base_url}: {e or type(e).__name__}; "
                             f"is the server running and --base-url right?") from None

    def info(self) -> dict[str, Any]:
        return {"endpoint": self.base_url, "model": self.model, "options": self.options,
                "limiter": self.limiter.info()}

    async def generate(self, messages: list[Message], config: dict[str, Any] | None = None, *,
                       tools: list[ToolInfo] | None = None, tool_choice: Any = None,
                       kind: str = "model") -> ModelOutput:
        config = config or {}
        body: dict[str, Any] = {"model": self.model, "messages": to_openai(messages), **config}
        schemas = [t.model_dump() for t in tools] if tools else None
        if schemas:
            body["tools"] = [{"type": "function", "function": s} for s in schemas]
        if tool_choice is not None and schemas:
            body["tool_choice"] = tool_choice
        call = ModelCall(kind=kind, model=self.name, messages=list(messages), config=config, started_at=time.time(),
                         tools=schemas, tool_choice=tool_choice if schemas else None)
        t0 = time.perf_counter()
        try:
            data = await self._post(body, call)
        except RetryableError as first:
            data = await self._retry(body, call, first, t0)
        call.latency_s = time.perf_counter() - t0
        choices = data.get("choices") if isinstance(data, dict) else None
        choice = choices[0] if isinstance(choices, list) and choices else None
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            call.error = f"malformed response: no choices[0].message object in {json.dumps(data, default=str)[:300]}"
            raise InfraError(call.error, call)
        notes: list[str] = []
        call.text = _content_text(message.get("content"), notes)
        usage = data.get("usage")
        if usage is not None and not isinstance(usage, dict):
            notes.append(f"usage was a {type(usage).__name__}, not an object: token counts unknown")
            usage = {}
        call.input_tokens, call.output_tokens = _count(usage, "prompt_tokens"), _count(usage, "completion_tokens")
        call.raw = {k: data.get(k) for k in ("id", "model", "usage", "system_fingerprint")}
        call.raw["finish_reason"] = choice.get("finish_reason")
        if isinstance(message.get("reasoning_content"), str) and message["reasoning_content"]:
            call.raw["reasoning"] = message["reasoning_content"]
        call.tool_calls = _tool_calls(message.get("tool_calls"), notes)
        finish = choice.get("finish_reason")
        call.stop_reason = FINISH_REASONS.get(finish, "unknown") if isinstance(finish, str) else "unknown"
        if call.tool_calls and call.stop_reason == "stop":
            call.stop_reason = "tool_calls"  # servers that say "stop" after calling tools (llama.cpp, some gateways)
        if notes:
            call.raw["notes"] = notes
        return ModelOutput(text=call.text, call=call, tool_calls=call.tool_calls, stop_reason=call.stop_reason)

    async def _retry(self, body: dict[str, Any], call: ModelCall, first: RetryableError, t0: float) -> dict[str, Any]:
        """Tenacity takes over after a first failure, so the fast path is free of its per-call cost. Its first
        retry is immediate, except after a 429, where the endpoint's limiter holds every call for Retry-After."""
        from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(RetryableError),
                stop=stop_after_attempt(int(self.options["max_retries"])),
                wait=self._wait,
                before_sleep=lambda rs: self._slept(call, rs.next_action.sleep),
                reraise=True,
            ):
                with attempt:
                    return await self._post(body, call)
        except RetryableError as e:
            call.error = f"gave up after {len(call.attempts)} attempts: {e}"
            call.latency_s = time.perf_counter() - t0
            raise InfraError(call.error, call) from None
        raise AssertionError("unreachable: tenacity either returns or raises")

    @staticmethod
    def _slept(call: ModelCall, seconds: float) -> None:
        call.attempts[-1].wait_s = seconds
        call.wait_s += seconds

    def _wait(self, retry_state) -> float:
        exc = retry_state.outcome.exception()
        if isinstance(exc, RetryableError) and exc.retry_after is not None:
            return min(exc.retry_after, float(self.options["retry_max_wait"]))
        from tenacity import wait_random_exponential

        return wait_random_exponential(multiplier=0.5, max=float(self.options["retry_max_wait"]))(retry_state)

    async def _post(self, body: dict[str, Any], call: ModelCall) -> dict[str, Any]:
        import aiohttp

        t0 = time.perf_counter()
        status = None
        limit = int(self.options["max_response_bytes"])
        try:
            async with self.limiter:
                queued = time.perf_counter() - t0
                # no redirects followed: a 3xx to another host would re-send the prompt (and the key) there
                async with self._http().post(f"{self.base_url}/chat/completions", json=body,
                                             allow_redirects=False) as r:
                    status = r.status
                    if status == 200:
                        data = json.loads(await _read_body(r, limit))
                        call.attempts.append(Attempt(status, None, time.perf_counter() - t0))
                        call.wait_s += queued
                        self.limiter.succeeded()
                        return data
                    try:
                        full = (await _read_body(r, ERROR_BODY_BYTES)).decode("utf-8", "replace")
                    except ResponseTooLarge:
                        full = f"(an error body over {ERROR_BODY_BYTES} bytes)"
                    text = full[:300]
                    retry_after = _retry_after(r.headers.get("Retry-After"))
                    location = r.headers.get("Location", "")
        except ResponseTooLarge as e:
            err = f"the endpoint's response is too large: {e}"
            call.attempts.append(Attempt(status, err, time.perf_counter() - t0))
            call.error = err
            raise InfraError(err, call) from None
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as e:  # ValueError: a body that is not JSON
            err = f"{type(e).__name__}: {e}"
            call.attempts.append(Attempt(status, err, time.perf_counter() - t0))
            call.wait_s += time.perf_counter() - t0
            raise RetryableError(err, status) from None
        err = f"HTTP {status}: {text}"
        call.attempts.append(Attempt(status, err, time.perf_counter() - t0))
        call.wait_s += time.perf_counter() - t0  # a failed attempt: waiting on the endpoint, not working
        if status == 429:
            self.limiter.throttled(retry_after, float(self.options["retry_max_wait"]))
            raise RetryableError(err, status, retry_after)
        if status >= 500 or status == 408:
            raise RetryableError(err, status, retry_after)
        if status in (401, 403):
            raise RunAborted(f"{self.base_url} refused the API key (HTTP {status}: {text[:150]}); check the key's "
                             f"environment variable")
        if 300 <= status < 400:
            raise RunAborted(f"{self.base_url} redirected the request (HTTP {status} to {location[:200] or '?'}); "
                             f"the prompt is not re-sent elsewhere: point --base-url at the final address")
        call.error = err
        if status in (400, 413) and any(m in full.lower() for m in CONTEXT_LENGTH_MARKERS):
            raise ContextLengthExceeded(f"the prompt is longer than the model's context: {err}", call)
        raise InfraError(f"the endpoint rejected the request: {err}", call)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


async def _read_body(r, limit: int) -> bytes:
    """The body, at most `limit` bytes as sent and at most `limit` bytes inflated, read in chunks: an oversized
    body or a gzip bomb costs `limit` of memory, then ResponseTooLarge."""
    encoding = r.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("identity", "", "gzip", "x-gzip", "deflate"):
        raise ValueError(f"the endpoint sent Content-Encoding {encoding!r}, which was not asked for")
    if r.content_length is not None and r.content_length > limit:
        raise ResponseTooLarge(f"{r.content_length} bytes declared, over max_response_bytes={limit}")
    if encoding in ("identity", "") and r.content_length is not None:
        return await r.read()  # the common case, one read: aiohttp stops at the declared length
    # wbits 32 + MAX_WBITS: gzip or zlib, detected from the header ("deflate" in HTTP means zlib)
    inflater = zlib.decompressobj(32 + zlib.MAX_WBITS) if encoding not in ("identity", "") else None
    out, received = bytearray(), 0
    async for chunk in r.content.iter_chunked(1 << 16):
        received += len(chunk)
        if received > limit:
            raise ResponseTooLarge(f"over max_response_bytes={limit} as sent")
        if inflater is None:
            out += chunk
            continue
        try:
            out += inflater.decompress(chunk, limit + 1 - len(out))
        except zlib.error as e:
            raise ValueError(f"the {encoding} body does not inflate: {e}") from None
        if len(out) > limit or inflater.unconsumed_tail:
            raise ResponseTooLarge(f"over max_response_bytes={limit} once inflated ({received} bytes as sent)")
    if inflater is not None:
        out += inflater.flush()
        if len(out) > limit:
            raise ResponseTooLarge(f"over max_response_bytes={limit} once inflated")
    return bytes(out)


def _content_text(content: Any, notes: list[str]) -> str:
    """The message's text. The multi-part format (a list of {"type": "text", "text": ...}) is joined; any other
    value that is not a string is kept as its JSON text, and the call's raw notes say so."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts, other = [], 0
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
            else:
                other += 1
        if other:
            notes.append(f"content had {other} part(s) without text: left out")
        return "".join(texts)
    notes.append(f"content was a {type(content).__name__}, not text: stored as its JSON text")
    return json.dumps(content, ensure_ascii=False, default=str)


def _tool_calls(value: Any, notes: list[str]) -> list[ToolCall]:
    """The message's tool calls. Arguments that are not a JSON object become the call's parse_error (the model is
    told, the call is not run); an entry that is not a call at all is left out and noted. A call without an id
    gets one, so its result can still be matched to it."""
    if value is None:
        return []
    if not isinstance(value, list):
        notes.append(f"tool_calls was a {type(value).__name__}, not a list: ignored")
        return []
    calls = []
    for i, entry in enumerate(value):
        function = entry.get("function") if isinstance(entry, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            notes.append(f"tool_calls[{i}] is not a function call: left out")
            continue
        raw = function.get("arguments")
        arguments, error = parse_arguments(raw)
        call_id = entry.get("id") if isinstance(entry.get("id"), str) and entry.get("id") else f"call_{i}"
        calls.append(ToolCall(id=call_id, function=function["name"], arguments=arguments,
                              raw=raw if isinstance(raw, str) else json.dumps(raw, default=str), parse_error=error))
    return calls


def _count(usage: dict[str, Any], key: str) -> int | None:
    value = usage.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None
