from __future__ import annotations

import abc
import asyncio
import os
import posixpath
import stat
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
    output_bytes: int = 1_000_000  # per stream (stdout, stderr); one exec may ask for more (a test report)
    # bwrap: the size of each writable tmpfs (/work, /tmp, /dev/shm); Docker sizes its tmpfs mounts from
    # memory_mb, whose cgroup they are charged to
    disk_mb: int = 512
    # The address space each process may reserve, where a backend caps it apart from memory (bwrap's
    # RLIMIT_AS; None: memory_mb). For programs that reserve far more than they use (Chromium's V8 cage
    # and allocator pools): memory_mb still bounds what is used (Docker: the cgroup; bwrap: RLIMIT_DATA
    # per process once this is set).
    address_space_mb: int | None = None

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


# The most read_file returns unless asked for more: a file that sandboxed code wrote can be any size.
READ_MAX = 64 << 20
# Every read from a sandbox ends by this deadline (a FIFO, a device, a wedged daemon).
READ_TIMEOUT_S = 30.0


@runtime_checkable
class Sandbox(Protocol):
    async def exec(self, cmd: list[str], *, input: str | bytes | None = None, timeout_s: float | None = None,
                   cwd: str | None = None, env: dict[str, str] | None = None,
                   output_bytes: int | None = None) -> ExecResult: ...

    async def write_file(self, path: str, content: str | bytes) -> None: ...

    async def read_file(self, path: str, *, max_bytes: int = READ_MAX) -> bytes:
        """A regular file's bytes; OSError for anything else (a FIFO, a device, a directory), for a
        file over max_bytes and when the read does not end within READ_TIMEOUT_S."""
        ...


class SandboxBackend(abc.ABC):
    """A backend keeps two pools of warm sandboxes that never share a sandbox: one for model-written code
    and one for trusted code only (reference solutions, ground truth), so that nothing a model's program
    left behind can reach a trusted run. Together they have pool_size sandboxes in use at most."""

    name: str

    @abc.abstractmethod
    def info(self) -> dict[str, Any]: ...

    def _make_pools(self, size: int, create, reset, destroy, *, max_uses: int) -> None:
        from ._pool import Pool

        # The trusted pool's sandboxes are never the candidates' (a candidate's could hold what it left
        # behind), but both draw on the same `size` slots: ground truth computed beside candidates must
        # not crowd the cores their time limits are measured on.
        slots = asyncio.Semaphore(size)
        self._pool = Pool(size, create, reset, destroy, max_uses=max_uses, slots=slots)
        self._trusted_pool = Pool(size, create, reset, destroy, max_uses=max_uses, slots=slots)

    def acquire(self, *, fresh: bool = False, trusted: bool = False) -> AsyncContextManager[Sandbox]:
        """A sandbox for one use. fresh: a new one of its own, never reused (stateful samples, retries).
        trusted: from the pool that only ever runs trusted code."""
        return (self._trusted_pool if trusted else self._pool).acquire(fresh=fresh)

    async def _close_pools(self) -> None:
        await asyncio.gather(self._pool.aclose(), self._trusted_pool.aclose())

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


def read_regular_file(path: str | os.PathLike, max_bytes: int) -> bytes:
    """Read a host-side file of a sandbox: no symlink followed, never blocks on a FIFO (O_NONBLOCK;
    fstat before reading), at most max_bytes."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path}: not a regular file")
        if st.st_size > max_bytes:
            raise OSError(f"{path}: {st.st_size} bytes, more than the {max_bytes} allowed")
        chunks, total = [], 0
        while chunk := os.read(fd, min(1 << 20, max_bytes + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise OSError(f"{path}: more than the {max_bytes} bytes allowed")
        return b"".join(chunks)
    finally:
        os.close(fd)


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
