from __future__ import annotations

import abc
import asyncio
import posixpath
from dataclasses import dataclass, asdict
from typing import Any, AsyncContextManager, Protocol, runtime_checkable

WORKDIR = "/work"
# The only environment a sandboxed command starts with (plus what the caller passes): nothing
# from the harness's own environment, where API keys live, ever reaches a sandbox.
BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": WORKDIR,
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    # One thread per library: the CPU limit is per sandbox, BLAS pools would only thrash.
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MPLCONFIGDIR": "/tmp",
}


class SandboxError(RuntimeError):
    """The sandbox itself failed (not the command run in it)."""


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 10
    memory_mb: int = 1024
    pids: int = 64
    cpus: float = 1.0
    output_bytes: int = 1_000_000  # per stream (stdout, stderr)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ExecResult:
    returncode: int | None  # None when the command was killed by the harness (timeout, output cap)
    stdout: str
    stderr: str
    timed_out: bool
    duration_s: float
    truncated: bool
    oom_killed: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not (self.timed_out or self.truncated or self.oom_killed)


@runtime_checkable
class Sandbox(Protocol):
    async def exec(self, cmd: list[str], *, input: str | bytes | None = None, timeout_s: float | None = None,
                   cwd: str | None = None, env: dict[str, str] | None = None) -> ExecResult: ...

    async def write_file(self, path: str, content: str | bytes) -> None: ...

    async def read_file(self, path: str) -> bytes: ...


class SandboxBackend(abc.ABC):
    name: str

    @abc.abstractmethod
    def info(self) -> dict[str, Any]: ...

    @abc.abstractmethod
    def acquire(self, *, fresh: bool = False) -> AsyncContextManager[Sandbox]: ...

    @abc.abstractmethod
    async def aclose(self) -> None: ...

    async def __aenter__(self) -> "SandboxBackend":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def sandbox_path(path: str) -> str:
    """Absolute, normalised in-sandbox path; relative paths are relative to the work dir."""
    p = posixpath.normpath(posixpath.join(WORKDIR, path))
    return "/" + p.lstrip("/")


def decode(b: bytes) -> str:
    return b.decode("utf-8", errors="replace")


def check_cmd(cmd: list[str]) -> None:
    if not cmd or not all(isinstance(c, str) for c in cmd):
        raise TypeError(f"cmd must be a non-empty list of str, got {cmd!r}")


class TaskSet:
    """Background tasks (cleanups, recycling) that aclose() must wait for."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task] = set()

    def spawn(self, coro) -> asyncio.Task:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        return t

    async def wait(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
