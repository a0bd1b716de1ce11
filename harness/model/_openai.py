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
from email.utils import parsedate_to_datetime
from typing import Any

from harness._registry import UsageError
from harness._types import Attempt, InfraError, Message, ModelCall, ModelOutput, Sample
from harness.model._limiter import AdaptiveLimiter

OPENAI_URL = "https://api.openai.com/v1"
# client options taken from -M; every other -M key goes into the request body
CLIENT_OPTIONS = {"max_connections": 64, "timeout": 600.0, "max_retries": 10, "retry_max_wait": 60.0}


class RetryableError(Exception):
    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


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

            headers = {"Content-Type": "application/json"}
            if self.api_key:
                headers["Authorization"] = f"Bearer {self.api_key}"
            self._session = aiohttp.ClientSession(
                headers=headers,
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

    async def generate(self, messages: list[Message], config: dict[str, Any], *, sample: Sample | None = None,
                       task: Any = None, epoch: int = 0, kind: str = "model") -> ModelOutput:
        body = {"model": self.model, "messages": messages, **config}
        call = ModelCall(kind=kind, model=self.name, messages=messages, config=config, started_at=time.time())
        t0 = time.perf_counter()
        try:
            data = await self._post(body, call)
        except RetryableError as first:
            data = await self._retry(body, call, first, t0)
        call.latency_s = time.perf_counter() - t0
        try:
            message = data["choices"][0]["message"]
        except (KeyError, IndexError, TypeError):
            call.error = f"malformed response: {json.dumps(data)[:300]}"
            raise InfraError(call.error, call) from None
        usage = data.get("usage") or {}
        call.text = message.get("content") or ""
        call.input_tokens, call.output_tokens = usage.get("prompt_tokens"), usage.get("completion_tokens")
        call.raw = {k: data.get(k) for k in ("id", "model", "usage", "system_fingerprint")}
        call.raw["finish_reason"] = data["choices"][0].get("finish_reason")
        if message.get("reasoning_content"):
            call.raw["reasoning"] = message["reasoning_content"]
        return ModelOutput(text=call.text, call=call, tool_calls=message.get("tool_calls") or [])

    async def _retry(self, body: dict[str, Any], call: ModelCall, first: RetryableError, t0: float) -> dict[str, Any]:
        """Tenacity takes over after a first failure, so the fast path is free of its per-call cost. Its first
        retry is immediate, except after a 429, where the endpoint's limiter holds every call for Retry-After."""
        from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(RetryableError),
                stop=stop_after_attempt(int(self.options["max_retries"])),
                wait=self._wait,
                before_sleep=lambda rs: setattr(call.attempts[-1], "wait_s", rs.next_action.sleep),
                reraise=True,
            ):
                with attempt:
                    return await self._post(body, call)
        except RetryableError as e:
            call.error = f"gave up after {len(call.attempts)} attempts: {e}"
            call.latency_s = time.perf_counter() - t0
            raise InfraError(call.error, call) from None
        raise AssertionError("unreachable: tenacity either returns or raises")

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
        try:
            async with self.limiter:
                async with self._http().post(f"{self.base_url}/chat/completions", json=body) as r:
                    status = r.status
                    if status == 200:
                        data = await r.json(content_type=None)
                        call.attempts.append(Attempt(status, None, time.perf_counter() - t0))
                        self.limiter.succeeded()
                        return data
                    text = (await r.text())[:300]
                    retry_after = _retry_after(r.headers.get("Retry-After"))
        except (aiohttp.ClientError, asyncio.TimeoutError, json.JSONDecodeError) as e:
            err = f"{type(e).__name__}: {e}"
            call.attempts.append(Attempt(status, err, time.perf_counter() - t0))
            raise RetryableError(err, status) from None
        err = f"HTTP {status}: {text}"
        call.attempts.append(Attempt(status, err, time.perf_counter() - t0))
        if status == 429:
            self.limiter.throttled(retry_after)
            raise RetryableError(err, status, retry_after)
        if status >= 500 or status == 408:
            raise RetryableError(err, status, retry_after)
        if status in (401, 403):
            raise InfraError(f"{self.base_url} refused the request ({err}); check the API key", call)
        raise InfraError(f"the endpoint rejected the request: {err}", call)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


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
