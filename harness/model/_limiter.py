"""A named concurrency limit per endpoint that halves on 429 and grows back one slot at a time (AIMD)."""
from __future__ import annotations

import asyncio
import time
from typing import Any


class AdaptiveLimiter:
    def __init__(self, name: str, limit: int):
        if limit < 1:
            raise ValueError(f"limiter {name}: limit must be >= 1, got {limit}")
        self.name = name
        self.max_limit = limit
        self.limit = limit
        self.in_flight = 0
        self.lowest = limit
        self.throttles = 0
        self.events: list[tuple[float, str, int]] = []  # (time, what, new limit): the trace of adaptation
        self._paused_until = 0.0
        self._last_cut = 0.0
        self._successes = 0
        self._cond: asyncio.Condition | None = None

    async def __aenter__(self) -> "AdaptiveLimiter":
        if self._cond is None:
            self._cond = asyncio.Condition()
        async with self._cond:
            while True:
                pause = self._paused_until - time.monotonic()
                if pause > 0:
                    self._cond.release()
                    try:
                        await asyncio.sleep(pause)
                    finally:
                        await self._cond.acquire()
                    continue
                if self.in_flight < self.limit:
                    break
                await self._cond.wait()
            self.in_flight += 1
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._cond is not None
        async with self._cond:
            self.in_flight -= 1
            self._cond.notify()

    def throttled(self, retry_after: float | None, max_wait: float | None = None) -> None:
        """A 429: halve the limit (once per burst: calls already in flight report the same overload)
        and hold new calls back for Retry-After, at most `max_wait` seconds (the client's retry_max_wait): a
        server's `Retry-After: 99999` must not stall every call of the run for a day."""
        now = time.monotonic()
        self.throttles += 1
        if retry_after is not None and max_wait is not None:
            retry_after = min(retry_after, max_wait)
        if retry_after:
            self._paused_until = max(self._paused_until, now + retry_after)
        if now - self._last_cut > max(retry_after or 0.0, 0.5):
            self.limit = max(1, self.limit // 2)
            self.lowest = min(self.lowest, self.limit)
            self._last_cut = now
            self._successes = 0
            self.events.append((now, "throttled", self.limit))

    def succeeded(self) -> None:
        if self.limit >= self.max_limit:
            return
        self._successes += 1
        if self._successes >= self.limit:
            self._successes = 0
            self.limit += 1
            self.events.append((time.monotonic(), "recovered", self.limit))
            if self._cond is not None:
                asyncio.get_running_loop().create_task(self._wake())

    async def _wake(self) -> None:
        assert self._cond is not None
        async with self._cond:
            self._cond.notify()

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "max": self.max_limit, "current": self.limit, "lowest": self.lowest,
                "throttles": self.throttles}
