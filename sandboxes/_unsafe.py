"""none-UNSAFE: commands run as plain host processes in a temp dir. No isolation at all; exists
for machines where neither Docker nor bwrap works, and only behind an explicit opt-in."""
from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ._process import run_process
from ._types import (BASE_ENV, READ_MAX, READ_TIMEOUT_S, WORKDIR, ExecResult, SandboxBackend, SandboxLimits,
                     check_cmd, read_regular_file, sandbox_path)


class UnsafeSandbox:
    def __init__(self, root: Path, limits: SandboxLimits) -> None:
        self.root, self._limits = root, limits
        self.uses, self.broken = 0, False

    def _host(self, path: str) -> Path:
        # /work/x -> <root>/x; other absolute paths are the host's own (there is no isolation).
        p = sandbox_path(path)
        if p == WORKDIR or p.startswith(WORKDIR + "/"):
            return self.root / p[len(WORKDIR):].lstrip("/")
        return Path(p)

    async def exec(self, cmd: list[str], *, input: str | bytes | None = None, timeout_s: float | None = None,
                   cwd: str | None = None, env: dict[str, str] | None = None,
                   output_bytes: int | None = None) -> ExecResult:
        check_cmd(cmd)
        data = input.encode() if isinstance(input, str) else input
        lim = self._limits
        # Even unsandboxed, the harness's environment (API keys) is not handed down.
        full_env = {**BASE_ENV, "HOME": str(self.root), **(env or {})}
        return await run_process(cmd, input=data, timeout_s=lim.timeout_s if timeout_s is None else timeout_s,
                                 output_bytes=output_bytes or lim.output_bytes, env=full_env, cwd=str(self._host(cwd or WORKDIR)))

    async def write_file(self, path: str, content: str | bytes) -> None:
        target = self._host(path)
        data = content.encode() if isinstance(content, str) else content

        def write() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

        await asyncio.to_thread(write)

    async def read_file(self, path: str, *, max_bytes: int = READ_MAX) -> bytes:
        return await asyncio.wait_for(asyncio.to_thread(read_regular_file, self._host(path), max_bytes),
                                      READ_TIMEOUT_S)


class UnsafeBackend(SandboxBackend):
    name = "none-UNSAFE"

    def __init__(self, limits: SandboxLimits = SandboxLimits(), pool_size: int | None = None) -> None:
        self.limits = limits
        self._make_pools(pool_size or max(2, os.cpu_count() or 2), self._create, self._reset, self._destroy,
                          max_uses=1_000_000)

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "limits": self.limits.to_dict(), "isolation": "NONE",
                "enforced": ["timeout_s", "output_bytes"]}


    async def aclose(self) -> None:
        await self._close_pools()

    async def _create(self) -> UnsafeSandbox:
        return UnsafeSandbox(Path(tempfile.mkdtemp(prefix="harness-unsafe-")), self.limits)

    async def _reset(self, sb: UnsafeSandbox) -> bool:
        def wipe() -> bool:
            shutil.rmtree(sb.root, ignore_errors=True)
            sb.root.mkdir()
            return True

        return await asyncio.to_thread(wipe)

    async def _destroy(self, sb: UnsafeSandbox) -> None:
        await asyncio.to_thread(shutil.rmtree, sb.root, True)
