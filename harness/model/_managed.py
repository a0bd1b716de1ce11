"""What the model servers the harness starts itself (`vllm/`, `llamacpp/`) share: a free loopback port, the
server process with its log, the wait for health with a deadline, the shutdown of its whole process group, and the
facts about the machine and the weights that a run records beside the server's argv (so a score names exactly
what produced it)."""
from __future__ import annotations

import asyncio
import hashlib
import os
import platform
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections import deque
from pathlib import Path

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


# the server's environment that changes what it computes; a name that looks like a secret is recorded as set, with
# no value (VLLM_API_KEY is one)
RECORDED_ENV_PREFIXES = ("VLLM_", "CUDA_", "NCCL_", "OMP_", "HF_HUB_OFFLINE", "HF_HUB_CACHE", "HF_HOME",
                         "TRANSFORMERS_OFFLINE", "LLAMA_")
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL", re.I)


def recorded_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    env = os.environ if env is None else env
    return {k: ("(set)" if SECRET_NAME.search(k) else v) for k, v in sorted(env.items())
            if k.startswith(RECORDED_ENV_PREFIXES)}


def gpu_models() -> dict[str, object]:
    """The node's GPUs as nvidia-smi names them ("NVIDIA H100 80GB HBM3, 81559 MiB", one per GPU); CUDA_VISIBLE_DEVICES
    is recorded beside, in the environment, since a Slurm job sees only its share of them."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return {"gpus": None, "why": "nvidia-smi is not on PATH"}
    try:
        out = subprocess.run([exe, "--query-gpu=name,memory.total", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return {"gpus": None, "why": "nvidia-smi did not answer within 30 s"}
    if out.returncode != 0:
        return {"gpus": None, "why": f"nvidia-smi exited with code {out.returncode}: "
                                     f"{(out.stderr.strip().splitlines() or [''])[-1][:LOG_TAIL_CHARS]}"}
    return {"gpus": [line.strip() for line in out.stdout.splitlines() if line.strip()]}


def cpu_model() -> dict[str, object]:
    """The CPU a CPU-served model ran on: its model name (/proc/cpuinfo, else the platform's word) and core count."""
    name = None
    try:
        with open("/proc/cpuinfo") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        pass
    return {"cpu": name or platform.processor() or platform.machine(), "cores": os.cpu_count()}


def hash_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "harness" / "sha256"


def file_sha256(path: Path) -> str:
    """The file's sha256, cached by (path, mtime, size) under ~/.cache/harness/sha256: every worker of a node, and
    every later run, reuses it instead of reading gigabytes again; a file rewritten in place gets a new mtime. The
    workers that start together wait on one lock, so the first hashes and the others read its answer."""
    import fcntl

    path = path.resolve()
    st = path.stat()
    key = hashlib.sha256(f"{path}\0{st.st_mtime_ns}\0{st.st_size}".encode()).hexdigest()
    entry = hash_cache_dir() / key
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        lock = open(entry.with_name(f"{key}.lock"), "a")
    except OSError:  # a read-only home: hashed every time, still right
        return _sha256(path)
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            cached = entry.read_text().strip()
            if re.fullmatch(r"[0-9a-f]{64}", cached):
                return cached
        except OSError:
            pass
        value = _sha256(path)
        tmp = entry.with_name(f"{key}.{os.getpid()}.tmp")  # written whole, then renamed into place
        tmp.write_text(value)
        tmp.replace(entry)
        return value


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
