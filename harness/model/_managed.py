"""What the model servers the harness starts itself (`vllm/`, `llamacpp/`) share: a free loopback port, the
server process with its log, the wait for health with a deadline, and the shutdown of its whole process group."""
from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import tempfile
import time
from collections import deque

from harness._registry import UsageError

LOG_TAIL_LINES = 5
LOG_TAIL_CHARS = 200  # per line: a server's log lines can be huge (a dumped config, a stack of tensors)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(path: str, lines: int = LOG_TAIL_LINES) -> str:
    """The last non-blank lines of a log, joined on one line, so the error a user sees says why a server died."""
    try:
        with open(path, errors="replace") as f:
            last = deque((line.strip() for line in f if line.strip()), maxlen=lines)
    except OSError:
        return ""
    return " | ".join(line[:LOG_TAIL_CHARS] for line in last)


class ServerProcess:
    """One server process: started in its own session (so stopping it takes its children too), its output in a
    log file, with the harness's environment minus the API keys it has no use for."""

    def __init__(self, what: str, argv: list[str], port: int, log_name: str):
        self.what = what
        self.argv = argv
        self.log_path = os.path.join(tempfile.gettempdir(), f"{log_name}-{port}.log")
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=env, start_new_session=True)

    def _failure(self, what_happened: str) -> UsageError:
        tail = log_tail(self.log_path)
        return UsageError(f"{self.what} {what_happened}" + (f"; last log lines: {tail}" if tail else "")
                          + f"; its log: {self.log_path}")

    async def wait_healthy(self, session, url: str, timeout: float) -> None:
        """Poll `url` until it answers 200; a server that exits first or is not healthy by the deadline is a
        UsageError naming its last log lines."""
        assert self.process is not None

        def exited() -> None:
            if self.process.poll() is not None:
                raise self._failure(f"exited with code {self.process.returncode} before it was ready")

        if not await poll_healthy(session, url, timeout, exited):
            await self.stop()
            raise self._failure(f"was not healthy after {timeout:.0f} s")

    async def stop(self, grace_s: float = 60) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, 15)
            await asyncio.to_thread(self.process.wait, grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            await asyncio.to_thread(self.process.wait)
        except ProcessLookupError:
            pass


async def poll_healthy(session, url: str, timeout: float, check=lambda: None) -> bool:
    """Poll `url` every half second until it answers 200 (True) or `timeout` passes (False); `check()` runs
    before each poll and may raise to stop early (a server that died)."""
    import aiohttp

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        check()
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as r:
                if r.status == 200:
                    return True
        except (aiohttp.ClientError, asyncio.TimeoutError):
            pass
        await asyncio.sleep(0.5)
    return False
