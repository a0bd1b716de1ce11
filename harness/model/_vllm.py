"""`vllm/<model>`: the harness starts `vllm serve` on a free loopback port, waits until it is healthy, talks
to it as an OpenAI-compatible endpoint, and stops it when the run ends. One server serves every task of a run."""
from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Any

from harness._registry import UsageError
from harness.model._openai import OpenAICompatible

# -M options for the server itself; everything else is a client option or a sampling setting
SERVER_OPTIONS = {"tensor_parallel_size", "max_model_len", "gpu_memory_utilization", "dtype", "startup_timeout"}


class ManagedVLLM(OpenAICompatible):
    def __init__(self, model: str, *, options: dict[str, Any] | None = None):
        options = options or {}
        self.server_options = {k: v for k, v in options.items() if k in SERVER_OPTIONS}
        self.startup_timeout = float(self.server_options.pop("startup_timeout", 1800))
        self.executable = shutil.which("vllm")
        if self.executable is None:
            raise UsageError("vllm/<model> needs vLLM on this machine (pip install 'harness[vllm]', a GPU); "
                             "or start a server yourself and use vllm-server/<model> --base-url URL")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        super().__init__(model, base_url=f"http://127.0.0.1:{self.port}/v1", options=options, name=f"vllm/{model}")
        self.api_key = None
        self.process: subprocess.Popen | None = None
        self.log_path = os.path.join(tempfile.gettempdir(), f"harness-vllm-{self.port}.log")

    def info(self) -> dict[str, Any]:
        return {**super().info(), "managed": True, "server_options": self.server_options, "server_log": self.log_path}

    async def check(self) -> None:
        """Start the server and wait for /health; a server that dies or never gets healthy is a clear error."""
        argv = [self.executable, "serve", self.model, "--host", "127.0.0.1", "--port", str(self.port)]
        for key, value in self.server_options.items():
            argv += [f"--{key.replace('_', '-')}", str(value)]
        log = open(self.log_path, "w")
        # the server gets the harness's environment minus API keys it has no use for
        env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        import aiohttp

        deadline = time.monotonic() + self.startup_timeout
        health = f"http://127.0.0.1:{self.port}/health"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise UsageError(f"vllm serve {self.model} exited with code {self.process.returncode} before it was "
                                 f"ready; its log: {self.log_path}")
            try:
                async with self._http().get(health, timeout=aiohttp.ClientTimeout(total=5)) as r:
                    if r.status == 200:
                        return
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            await asyncio.sleep(1.0)
        raise UsageError(f"vllm serve {self.model} was not healthy after {self.startup_timeout:.0f} s; "
                         f"its log: {self.log_path}")

    async def aclose(self) -> None:
        await super().aclose()
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                await asyncio.to_thread(self.process.wait, 60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
