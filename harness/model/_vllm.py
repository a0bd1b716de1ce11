"""`vllm/<model>`: the harness starts `vllm serve` on a free loopback port, waits until it is healthy, talks
to it as an OpenAI-compatible endpoint, and stops it when the run ends. One server serves every task of a run,
and, under `harness worker`, every worker of the node (harness/model/_node_share.py)."""
from __future__ import annotations

import shutil
from typing import Any

from harness._registry import UsageError
from harness.model._managed import ServerProcess, free_port
from harness.model._node_share import NodeShare, sharing, stop_group, wait_shared
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

    def info(self) -> dict[str, Any]:
        return {**super().info(), "managed": True, "server_options": self.server_options, "server_log": self.log_path}

    async def check(self) -> None:
        """Start the server and wait for /health; a server that dies or never gets healthy is a clear error."""
        health = f"http://127.0.0.1:{self.port}/health"
        if self.share is not None and not self.share.owner:
            await wait_shared(self._http(), health, self.startup_timeout, f"vllm serve {self.model}")
            return
        self.server.start()
        if self.share is not None:
            self.share.started(self.server.process.pid)
        await self.server.wait_healthy(self._http(), health, self.startup_timeout)

    async def aclose(self) -> None:
        await super().aclose()
        if self.share is None:
            await self.server.stop()
        elif (last := self.share.release()) is not None:  # the node's last user stops it, whoever started it
            await (self.server.stop() if self.share.owner else stop_group(last))
