"""One managed model server per node for all the workers of a run that need the same one (harness/_worker.py sets
HARNESS_SHARE_SERVERS=1): the first worker starts it, the others use it, the last one stops it.

The rendezvous is a JSON state file per server (keyed by what the server is started with, the port aside) under a
file lock (fcntl.flock): the port, the server's pid, and the pids of the processes using it. Users whose process
is gone (a worker killed with SIGKILL) are dropped whenever the file is read, so the last live user stops the
server even when others died without releasing it.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from harness.model._managed import free_port

ENV_FLAG = "HARNESS_SHARE_SERVERS"


def sharing() -> bool:
    return os.environ.get(ENV_FLAG) == "1"


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent, as an orphaned server may wait for init) is gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class NodeShare:
    """A reference-counted claim on one server of this node (see the module doc)."""

    def __init__(self, what: str, key_argv: list[str], directory: str | None = None):
        key = hashlib.sha256(json.dumps([what, *key_argv]).encode()).hexdigest()[:16]
        base = Path(directory or os.environ.get("HARNESS_SERVER_DIR")
                    or Path(tempfile.gettempdir()) / f"harness-servers-{os.getuid()}")
        base.mkdir(parents=True, exist_ok=True)
        self.state_path = base / f"{key}.json"
        self.lock_path = base / f"{key}.lock"
        self.port: int | None = None
        self.owner = False  # this process must start the server

    @contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = json.loads(self.state_path.read_text()) if self.state_path.exists() else {}
            except (OSError, ValueError):
                state = {}
            state["users"] = [p for p in state.get("users", []) if _alive(p)]
            yield state
            if state.get("users"):
                self.state_path.write_text(json.dumps(state))
            else:
                self.state_path.unlink(missing_ok=True)

    def acquire(self) -> int:
        """Join the node's server (or reserve its port, as its owner, when none is up or being started)."""
        with self._locked() as state:
            starting = state.get("users") and not state.get("server_pid")
            if _alive(state.get("server_pid")) or starting:
                self.port, self.owner = state["port"], False
            else:
                self.port, self.owner = free_port(), True
                state.update(port=self.port, server_pid=None)
            state["users"].append(os.getpid())
        return self.port

    def started(self, pid: int, environment: dict[str, str] | None = None) -> None:
        """The owner's server is up as `pid`, started with `environment` (what the users record about it)."""
        with self._locked() as state:
            state.update(server_pid=pid, environment=environment)

    def server_environment(self) -> dict[str, str] | None:
        with self._locked() as state:
            return state.get("environment")

    def release(self) -> int | None:
        """Leave; returns the server's pid when this was the last user (the caller stops it), else None."""
        with self._locked() as state:
            if os.getpid() in state["users"]:  # one entry: a process may hold the server twice (model and judge)
                state["users"].remove(os.getpid())
            return None if state["users"] else state.get("server_pid")


    def server_died(self) -> bool:
        """The server this node's share recorded has exited (its starter saw why and says so)."""
        with self._locked() as state:
            return bool(state.get("server_pid")) and not _alive(state["server_pid"])


async def wait_shared(session, url: str, timeout: float, what: str, share: NodeShare | None = None,
                      log_path: str | None = None) -> None:
    """Wait for a server another worker of this node started (or is starting) to answer `url` with 200; a server
    that exits meanwhile ends the wait at once rather than at the deadline."""
    from harness._registry import UsageError
    from harness.model._managed import log_tail, poll_healthy

    def died() -> None:
        if share is not None and share.server_died():
            tail = log_tail(log_path) if log_path else ""
            raise UsageError(f"{what}, started by another worker of this node, exited before it was ready"
                             + (f"; last log lines: {tail}" if tail else "")
                             + (f"; its log: {log_path}" if log_path else ""))

    if await poll_healthy(session, url, timeout, died):
        return
    raise UsageError(f"{what}, shared by the workers of this node, was not healthy after {timeout:.0f} s")


async def start_or_join(share: NodeShare | None, server, session, url: str, timeout: float) -> None:
    """Start `server` (a ServerProcess) and wait until `url` answers, or, when another process of this node owns
    the shared server, wait for that one."""
    from harness.model._managed import recorded_environment

    if share is not None and not share.owner:
        await wait_shared(session, url, timeout, server.what, share, server.log_path)
        return
    server.start()
    if share is not None:
        share.started(server.process.pid, recorded_environment())
    await server.wait_healthy(session, url, timeout)


def server_environment(share: NodeShare | None) -> dict[str, str]:
    """The recorded environment of the server this process uses: its own when it started it, else the starter's."""
    from harness.model._managed import recorded_environment

    if share is None or share.owner:
        return recorded_environment()
    return share.server_environment() or {}


async def leave(share: NodeShare | None, server) -> None:
    """Stop `server` when nobody else uses it: unshared, at once; shared, when this is the node's last user,
    whoever started it."""
    if share is None:
        await server.stop()
    elif (last := share.release()) is not None:
        await (server.stop() if share.owner else stop_group(last))


async def stop_group(pid: int, grace_s: float = 60) -> None:
    """Stop a server this process did not start (its own session, so its children go too): SIGTERM, then
    SIGKILL if it is still there after grace_s."""
    import asyncio
    import time

    try:
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while _alive(pid) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
