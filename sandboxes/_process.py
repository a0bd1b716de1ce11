"""Run one host process with a wall-clock deadline and capped output (bwrap and none-UNSAFE).

Uses loop.subprocess_exec with a protocol rather than asyncio's Process: Process.wait() only
returns once every pipe has hit EOF, so a killed command whose pipe we stopped reading (or that a
stray grandchild still holds) would hang it. transport.close() is the public way out.
"""
from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from ._types import ExecResult, decode

_DRAIN_S = 1.0  # after exit, how long to wait for output still in flight in the pipes


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                kids = [int(k) for k in (task / "children").read_text().split()]
                out += kids
                todo += kids
        except (OSError, ValueError):
            pass
    return out


def kill_tree(pid: int) -> None:
    """SIGKILL the process group and every descendant (some may have left the group via setsid)."""
    victims = _descendants(pid)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for p in victims:
        try:
            os.kill(p, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class _Proto(asyncio.SubprocessProtocol):
    def __init__(self, cap: int, loop: asyncio.AbstractEventLoop) -> None:
        self.cap = cap
        self.bufs = {1: bytearray(), 2: bytearray()}
        self.truncated = False
        self.pid = 0
        self.exited = loop.create_future()
        self.closed = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if self.truncated:
            return  # already over the cap and killed; drop what was still in flight
        buf = self.bufs[fd]
        room = self.cap - len(buf)
        buf += data[:room]
        if len(data) > room:
            # Stop the writer at the cap rather than drain a runaway stream.
            self.truncated = True
            kill_tree(self.pid)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def run_process(argv: list[str], *, input: bytes | None, timeout_s: float, output_bytes: int,
                      env: dict[str, str], cwd: str | None = None) -> ExecResult:
    loop = asyncio.get_running_loop()
    t0 = time.monotonic()
    proto = _Proto(output_bytes, loop)
    # Own session => own process group, so the whole tree can be killed at once. No preexec_fn, ever: with one,
    # Python fork()s this whole process on the event loop (page tables and all) instead of using vfork.
    transport, _ = await loop.subprocess_exec(
        lambda: proto, *argv, stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=cwd,
        start_new_session=True)
    proto.pid = pid = transport.get_pid()
    timed_out = False
    try:
        if input is not None:
            w = transport.get_pipe_transport(0)
            w.write(input)  # buffered by the loop; a command that never reads just leaves it there
            w.write_eof()
        try:
            await asyncio.wait_for(asyncio.shield(proto.exited), timeout_s)
        except asyncio.TimeoutError:
            timed_out = True
        # Also reaps anything the command left running in its group after it exited.
        kill_tree(pid)
        try:
            await asyncio.wait_for(asyncio.shield(proto.closed), _DRAIN_S)
        except asyncio.TimeoutError:
            pass  # a detached process still holds a pipe; closing our end below is enough
    finally:
        transport.close()  # closes our pipe ends; kills the process if it is somehow still alive
    if not proto.exited.done():
        await proto.exited
    rc = transport.get_returncode()
    killed = timed_out or proto.truncated
    return ExecResult(
        returncode=None if killed else (128 - rc if rc is not None and rc < 0 else rc),
        stdout=decode(bytes(proto.bufs[1])), stderr=decode(bytes(proto.bufs[2])), timed_out=timed_out,
        duration_s=time.monotonic() - t0, truncated=proto.truncated)
