"""`vllm/<model>`: the harness starts `vllm serve` on a free loopback port, waits until it is healthy, talks
to it as an OpenAI-compatible endpoint, and stops it when the run ends. One server serves every task of a run,
and, under `harness worker`, every worker of the node (harness/model/_node_share.py).

Once the server is healthy the client collects what the run records about it (`info()["server"]`, stored in the
run's model_info; per node under `servers` for a run of workers): the vLLM version, the argv, the environment
that changes what it computes, the model's resolved revision and the GPUs."""
from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
from pathlib import Path
from typing import Any

from harness._registry import UsageError
from harness.model._managed import ServerProcess, free_port, gpu_models
from harness.model._node_share import NodeShare, leave, server_environment, sharing, start_or_join
from harness.model._openai import OpenAICompatible

# -M options for the server itself; everything else is a client option or a sampling setting
SERVER_OPTIONS = {"tensor_parallel_size", "max_model_len", "gpu_memory_utilization", "dtype", "revision",
                  "startup_timeout"}
VERSION_PROBE = "import vllm; print(vllm.__version__)"
SMALL_FILE = 16 << 20  # a local model folder's files up to this size are hashed by content, larger ones by size


class ManagedVLLM(OpenAICompatible):
    def __init__(self, model: str, *, options: dict[str, Any] | None = None):
        options = options or {}
        self.server_options = {k: v for k, v in options.items() if k in SERVER_OPTIONS}
        self.startup_timeout = float(self.server_options.pop("startup_timeout", 1800))
        self.executable = shutil.which("vllm")
        if self.executable is None:
            raise UsageError("vllm/<model> needs vLLM on this machine (pip install 'harness[vllm]', a GPU); "
                             "or start a server yourself and use vllm-server/<model> --base-url URL")
        # the workers of one node share one server of a model (harness/model/_node_share.py)
        share_key = [model, *(f"{k}={v}" for k, v in sorted(self.server_options.items()))]
        self.share = NodeShare("vllm serve", share_key) if sharing() else None
        self.port = self.share.acquire() if self.share else free_port()
        super().__init__(model, base_url=f"http://127.0.0.1:{self.port}/v1", options=options, name=f"vllm/{model}")
        self.api_key = None
        argv = [self.executable, "serve", self.model, "--host", "127.0.0.1", "--port", str(self.port)]
        for key, value in self.server_options.items():
            argv += [f"--{key.replace('_', '-')}", str(value)]
        self.server = ServerProcess(f"vllm serve {self.model}", argv, self.port, "harness-vllm")
        self.log_path = self.server.log_path
        self.facts: dict[str, Any] | None = None  # what the run records about the server, once it is up

    def info(self) -> dict[str, Any]:
        info = {**super().info(), "managed": True, "server_options": self.server_options, "server_log": self.log_path}
        return {**info, "server": self.facts} if self.facts is not None else info

    async def check(self) -> None:
        """Start the server (or join the node's) and wait for /health; a server that dies or never gets healthy is
        a clear error. Then collect the facts the run records."""
        await start_or_join(self.share, self.server, self._http(), f"http://127.0.0.1:{self.port}/health",
                            self.startup_timeout)
        version, gpus, revision = await asyncio.gather(
            self._version(), asyncio.to_thread(gpu_models),
            asyncio.to_thread(resolve_revision, self.model, self.server_options.get("revision")))
        self.facts = {"vllm": version, "argv": self.server.argv, "environment": server_environment(self.share),
                      "model_revision": revision, **gpus}

    async def _version(self) -> dict[str, Any]:
        """The running server's own answer (GET /version); failing that, what the interpreter of the `vllm`
        executable imports."""
        import aiohttp

        try:
            async with self._http().get(f"http://127.0.0.1:{self.port}/version",
                                        timeout=aiohttp.ClientTimeout(total=10)) as r:
                if r.status == 200:
                    version = (await r.json(content_type=None)).get("version")
                    if isinstance(version, str) and version:
                        return {"version": version, "from": "GET /version"}
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, AttributeError):
            pass
        python = _interpreter(self.executable)
        if python is None:
            return {"version": None, "from": f"no /version answer and no Python shebang in {self.executable}"}
        try:
            proc = await asyncio.create_subprocess_exec(python, "-c", VERSION_PROBE, stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.DEVNULL)
            out, _ = await asyncio.wait_for(proc.communicate(), 120)
        except (OSError, asyncio.TimeoutError):
            return {"version": None, "from": f"{python} -c 'import vllm' did not answer"}
        version = out.decode(errors="replace").strip()
        if proc.returncode != 0 or not version:
            return {"version": None, "from": f"{python} could not import vllm"}
        return {"version": version, "from": f"{python} -c 'import vllm'"}

    async def aclose(self) -> None:
        await super().aclose()
        await leave(self.share, self.server)


def _interpreter(executable: str) -> str | None:
    """The interpreter a console script runs with (its `#!` line), as pip writes them."""
    try:
        with open(executable, "rb") as f:
            first = f.readline(4096).decode(errors="replace").strip()
    except OSError:
        return None
    if not first.startswith("#!"):
        return None
    parts = first[2:].split()
    if parts and Path(parts[0]).name == "env" and len(parts) > 1:  # #!/usr/bin/env python3
        return shutil.which(parts[1])
    return parts[0] if parts else None


def resolve_revision(model: str, revision: str | None = None) -> dict[str, Any]:
    """Which weights `model` named, without the network. A local folder or file: a snapshot folder of the Hugging
    Face cache gives its commit; any other path a sha256 of its manifest (small files by content, weight files by
    name and size: hashing a model's gigabytes per worker would delay every start). A hub id: the commit that the
    local Hugging Face cache resolves `revision` (default main) to, which is the one vLLM loaded."""
    path = Path(model).expanduser()
    if path.exists():
        path = path.resolve()
        if re.fullmatch(r"[0-9a-f]{40}", path.name) and path.parent.name == "snapshots":
            return {"kind": "local", "path": str(path), "commit": path.name,
                    "method": "the Hugging Face cache snapshot folder's name"}
        return {"kind": "local", "path": str(path), "manifest_sha256": _manifest_sha256(path),
                "method": f"sha256 over each file's relative path with its content (files up to {SMALL_FILE >> 20} "
                          "MiB) or its size (larger files)"}
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:
        return {"kind": "hub", "id": model, "revision": revision, "commit": None,
                "why": "huggingface_hub is not installed here"}
    try:
        snapshot = snapshot_download(model, revision=revision, local_files_only=True)
    except (LocalEntryNotFoundError, OSError, ValueError) as e:
        return {"kind": "hub", "id": model, "revision": revision, "commit": None,
                "why": f"not in the local Hugging Face cache ({type(e).__name__})"}
    return {"kind": "hub", "id": model, "revision": revision or "main", "commit": Path(snapshot).name,
            "method": "huggingface_hub.snapshot_download(local_files_only=True)"}


def _manifest_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        size = f.stat().st_size
        digest.update(f"{f.relative_to(path) if f != path else f.name}\0{size}\0".encode())
        if size <= SMALL_FILE:
            digest.update(hashlib.sha256(f.read_bytes()).digest())
    return digest.hexdigest()
