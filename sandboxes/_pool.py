"""A pool of warm sandboxes shared by the docker and bwrap backends."""
from __future__ import annotations

import asyncio
import contextlib
from typing import Any, AsyncIterator, Awaitable, Callable

from ._types import SandboxError, TaskSet


class Pool:
    """Warm sandboxes, at most `size` in use at once; pools given the same `slots` share that bound."""

    def __init__(self, size: int, create: Callable[[], Awaitable[Any]], reset: Callable[[Any], Awaitable[bool]],
                 destroy: Callable[[Any], Awaitable[None]], *, max_uses: int,
                 slots: asyncio.Semaphore | None = None) -> None:
        if size < 1:
            raise ValueError("pool_size must be >= 1")
        self.size, self.max_uses = size, max_uses
        self._create, self._reset, self._destroy = create, reset, destroy
        self._sem = slots or asyncio.Semaphore(size)
        self._idle: list[Any] = []
        self._live: set[Any] = set()  # everything created and not yet destroyed, for aclose()
        self._tasks = TaskSet()
        self._closed = False

    async def _new(self) -> Any:
        sb = await self._create()
        self._live.add(sb)
        return sb

    async def _kill(self, sb: Any) -> None:
        try:
            await self._destroy(sb)
        finally:
            self._live.discard(sb)

    @contextlib.asynccontextmanager
    async def acquire(self, *, fresh: bool = False) -> AsyncIterator[Any]:
        if self._closed:
            raise SandboxError("sandbox backend is closed")
        if fresh:  # a private sandbox for one stateful sample; never reused
            sb = await self._new()
            try:
                yield sb
            finally:
                self._tasks.spawn(self._kill(sb))
            return
        await self._sem.acquire()
        try:
            sb = self._idle.pop() if self._idle else await self._new()
        except BaseException:
            self._sem.release()
            raise
        sb.uses += 1
        try:
            yield sb
        finally:
            # The caller moves on at once; wiping (or recycling) happens in the background and
            # the pool slot is only freed once the sandbox is clean.
            self._tasks.spawn(self._release(sb))

    async def _release(self, sb: Any) -> None:
        try:
            reusable = not sb.broken and sb.uses < self.max_uses and not self._closed and await self._reset(sb)
        except Exception:
            reusable = False
        if reusable:
            self._idle.append(sb)
        else:
            self._tasks.spawn(self._kill(sb))
        self._sem.release()

    async def aclose(self) -> None:
        self._closed = True
        await self._tasks.wait()
        idle, self._idle = self._idle, []
        await asyncio.gather(*(self._kill(sb) for sb in set(idle) | self._live), return_exceptions=True)
