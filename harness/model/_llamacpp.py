"""`llamacpp/<path.gguf>`: a local GGUF model on CPU. The harness starts llama.cpp's OpenAI-compatible server
(`python -m llama_cpp.server`, from llama-cpp-python[server]) on a free loopback port, waits until it answers,
talks to it as any OpenAI-compatible endpoint and stops it when the run ends; so a user without a GPU evaluates a
local model with one command. The interpreter that has the server installed is `-M python=...`, else
HARNESS_LLAMACPP_PYTHON, else the harness's own. Under `harness worker` the workers of one node share one server
of a model file, as vLLM's are shared (harness/model/_node_share.py).

The run records the llama-cpp-python version, the argv, the GGUF file's sha256 (cached by path, mtime and size, so
the workers of a node hash a large file once) and the CPU (`info()["server"]`)."""
from __future__ import annotations

import asyncio
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from harness._registry import UsageError
from harness.model._managed import ServerProcess, cpu_model, file_sha256, free_port
from harness.model._node_share import NodeShare, leave, server_environment, sharing, start_or_join
from harness.model._openai import OpenAICompatible

# the chat format whose replies carry OpenAI `tool_calls` (forced with tool_choice); -M chat_format=... overrides
DEFAULT_CHAT_FORMAT = "chatml-function-calling"
# llama_cpp.server's own settings taken from -M and passed as `--KEY VALUE`; `server_args` passes any other flag
# verbatim. `seed` and `chat_template_kwargs` are left out: they are per-request sampling settings too.
SERVER_FLAGS = {
    "chat_format", "n_ctx", "n_batch", "n_ubatch", "n_threads", "n_threads_batch", "n_gpu_layers", "split_mode",
    "main_gpu", "flash_attn", "offload_kqv", "use_mmap", "use_mlock", "type_k", "type_v", "rope_freq_base",
    "rope_freq_scale", "cache", "cache_type", "cache_size", "clip_model_path", "hf_tokenizer_config_path",
    "model_alias", "numa", "verbose",
}
SERVER_OPTIONS = SERVER_FLAGS | {"python", "server_args", "startup_timeout"}
# run by the chosen interpreter: is the server there, and which version (stored with the run)
PROBE = ("import importlib.metadata as m, importlib.util as u\n"
         "missing = [x for x in ('llama_cpp', 'uvicorn', 'fastapi', 'sse_starlette') if u.find_spec(x) is None]\n"
         "print(('missing ' + ' '.join(missing)) if missing else m.version('llama_cpp_python'))")


class ManagedLlamaCpp(OpenAICompatible):
    def __init__(self, model: str, *, options: dict[str, Any] | None = None):
        options = options or {}
        path = Path(model).expanduser()
        if not path.is_file():
            raise UsageError(f"llamacpp/{model}: no such model file; give the path of a .gguf file")
        with path.open("rb") as f:
            if f.read(4) != b"GGUF":
                raise UsageError(f"llamacpp/{model}: {path} is not a GGUF file (llama.cpp reads only GGUF)")
        self.model_path = path.resolve()
        self.python = str(options.get("python") or os.environ.get("HARNESS_LLAMACPP_PYTHON") or sys.executable)
        self.startup_timeout = float(options.get("startup_timeout", 600))
        # the server's own settings, the port aside: what makes two workers' servers the same one to share
        flags = {"chat_format": DEFAULT_CHAT_FORMAT, "n_threads": os.cpu_count() or 1,
                 **{k: v for k, v in options.items() if k in SERVER_FLAGS}}
        extra = shlex.split(str(options.get("server_args", "")))
        share_key = [str(self.model_path), self.python, *(f"{k}={v}" for k, v in sorted(flags.items())), *extra]
        self.share = NodeShare("llama_cpp.server", share_key) if sharing() else None
        self.port = self.share.acquire() if self.share else free_port()
        # llama.cpp's server computes one request at a time and queues the rest: more connections would only move
        # the queue into the server, where the waiting counts against each request's timeout
        options = {"max_connections": 1, **options}
        super().__init__(model, base_url=f"http://127.0.0.1:{self.port}/v1", options=options, name=f"llamacpp/{model}")
        self.api_key = None
        # n_threads: the server's default is half the cores; the harness mostly waits on it, so it gets them all
        argv = [self.python, "-m", "llama_cpp.server", "--model", str(self.model_path),
                "--host", "127.0.0.1", "--port", str(self.port)]
        for key, value in flags.items():
            argv += [f"--{key}", str(value)]
        argv += extra
        self.server = ServerProcess(f"llama.cpp server for {model}", argv, self.port, "harness-llamacpp")
        self.log_path = self.server.log_path
        self.server_version: str | None = None
        self._model_file: dict[str, Any] | None = None

    def model_file(self) -> dict[str, Any]:
        """The GGUF file's identity, so a run names exactly which weights it evaluated."""
        if self._model_file is None:
            self._model_file = {"path": str(self.model_path), "bytes": self.model_path.stat().st_size,
                                "sha256": file_sha256(self.model_path)}
        return self._model_file

    def info(self) -> dict[str, Any]:
        info = {**super().info(), "managed": True, "server_log": self.log_path}
        if self.server_version is None:  # not started here (a queued run's workers start it on their nodes)
            return info
        return {**info, "server": {"llama_cpp_python": self.server_version, "argv": self.server.argv,
                                   "model_file": self.model_file(), "environment": server_environment(self.share),
                                   **cpu_model()}}

    async def _probe(self) -> str:
        try:
            proc = await asyncio.create_subprocess_exec(self.python, "-c", PROBE, stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(proc.communicate(), 60)
        except FileNotFoundError:
            raise UsageError(f"llamacpp/: no Python interpreter at {self.python}; set -M python=PATH or "
                             "HARNESS_LLAMACPP_PYTHON to one with llama-cpp-python[server]") from None
        except asyncio.TimeoutError:
            proc.kill()
            raise UsageError(f"llamacpp/: {self.python} did not answer within 60 s") from None
        answer = out.decode(errors="replace").strip()
        if proc.returncode != 0 or not answer or answer.startswith("missing "):
            why = answer or (err.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
            raise UsageError(f"llamacpp/ needs llama.cpp's server in {self.python} ({why}): install it there with "
                             "pip install 'llama-cpp-python[server]', or point -M python=PATH or "
                             "HARNESS_LLAMACPP_PYTHON at an interpreter that has it")
        return answer

    async def check(self) -> None:
        """Start the server (or join the node's) and wait until /v1/models answers (the model is loaded by then);
        the file's hash is computed meanwhile. A server that dies or never answers is a clear error with its last
        log lines."""
        self.server_version = await self._probe()
        hashing = asyncio.create_task(asyncio.to_thread(self.model_file))
        try:
            await start_or_join(self.share, self.server, self._http(), f"{self.base_url}/models", self.startup_timeout)
        finally:
            await hashing

    async def aclose(self) -> None:
        await super().aclose()
        await leave(self.share, self.server)
