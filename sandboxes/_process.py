"""Run one host process with a wall-clock deadline and capped output (bwrap and none-UNSAFE)."""
from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Callable

from ._types import ExecResult, decode

_CHUNK = 1 << 16


def _killpg(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


async def run_process(argv: list[str], *, input: bytes | None, timeout_s: float, output_bytes: int,
                      env: dict[str, str], cwd: str | None = None,
                      preexec_fn: Callable[[], None] | None = None) -> ExecResult:
    t0 = time.monotonic()
    # Own session => own process group, so the whole tree can be killed at once.
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=cwd,
        start_new_session=True, preexec_fn=preexec_fn)
    bufs = {1: bytearray(), 2: bytearray()}
    truncated = False

    async def pump(stream: asyncio.StreamReader, buf: bytearray) -> None:
        nonlocal truncated
        while chunk := await stream.read(_CHUNK):
            room = output_bytes - len(buf)
            buf += chunk[:max(room, 0)]
            if len(chunk) > room:
                # Stop at the cap: draining a runaway writer would burn our CPU for nothing.
                truncated = True
                _killpg(proc.pid)
                return

    async def feed() -> None:
        assert proc.stdin is not None
        try:
            proc.stdin.write(input)  # type: ignore[arg-type]
            await proc.stdin.drain()
            proc.stdin.close()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the command exited without reading all of its input

    async def reap() -> None:
        await proc.wait()
        # Leftover children in the group would hold the pipes open until the deadline.
        _killpg(proc.pid)

    jobs = [pump(proc.stdout, bufs[1]), pump(proc.stderr, bufs[2]), reap()]  # type: ignore[arg-type]
    if input is not None:
        jobs.append(feed())
    timed_out = False
    try:
        await asyncio.wait_for(asyncio.gather(*jobs), timeout_s)
    except asyncio.TimeoutError:
        timed_out = True
    finally:
        # Also reaps anything the command left running in its group after it exited.
        _killpg(proc.pid)
        if proc.returncode is None:
            await proc.wait()
    rc = proc.returncode
    killed = timed_out or truncated
    return ExecResult(
        returncode=None if killed else (128 - rc if rc is not None and rc < 0 else rc),
        stdout=decode(bytes(bufs[1])), stderr=decode(bytes(bufs[2])), timed_out=timed_out,
        duration_s=time.monotonic() - t0, truncated=truncated)
