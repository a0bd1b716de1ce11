"""Isolated execution of model-written code.

    backend = get_backend("auto", limits=SandboxLimits(timeout_s=5))
    async with backend.acquire() as sb:
        await sb.write_file("main.py", code)
        r = await sb.exec(["python3", "main.py"], input="1 2\\n")
    await backend.aclose()

Backends: "docker" (warm pool of locked-down containers), "bwrap" (bubblewrap namespaces, host
python3), and "none-UNSAFE" (host processes; only with allow_unsafe=True). Importing this package
is cheap: the docker SDK is loaded only when a Docker backend or image build is used.
"""
from __future__ import annotations

from typing import Any

from ._types import ExecResult, Sandbox, SandboxBackend, SandboxError, SandboxLimits

__all__ = ["ExecResult", "Sandbox", "SandboxBackend", "SandboxError", "SandboxLimits", "get_backend",
           "build_image", "image_status", "sandbox_app", "UNSAFE"]

UNSAFE = "none-UNSAFE"
_INSTALL_HINT = (
    "No sandbox for untrusted code is available. Either\n"
    "  - Docker: `apt-get install docker.io`, start dockerd, then `harness sandbox build`; or\n"
    "  - bubblewrap: `apt-get install bubblewrap` (needs unprivileged user namespaces).\n"
    "Running model-written code without a sandbox needs --i-understand-this-runs-untrusted-code-unsandboxed.")


def get_backend(kind: str = "auto", *, image: str = "harness-python", limits: SandboxLimits = SandboxLimits(),
                pool_size: int | None = None, allow_unsafe: bool = False) -> SandboxBackend:
    """A sandbox backend (one per run). "auto": Docker if a daemon answers and `image` is built,
    else bwrap if it works here, else SandboxError saying what to install."""
    if kind == "docker":
        from ._docker import DockerBackend

        return DockerBackend(image, limits, pool_size)
    if kind == "bwrap":
        from ._bwrap import BwrapBackend

        return BwrapBackend(limits, pool_size)
    if kind == UNSAFE:
        if not allow_unsafe:
            raise SandboxError(f"sandbox {UNSAFE!r} runs untrusted code on the host; it needs allow_unsafe=True "
                               "(--i-understand-this-runs-untrusted-code-unsandboxed)")
        from ._unsafe import UnsafeBackend

        return UnsafeBackend(limits, pool_size)
    if kind != "auto":
        raise ValueError(f"unknown sandbox kind {kind!r}; use auto, docker, bwrap or {UNSAFE}")
    reasons = []
    from . import _image

    ok, err = _image.docker_available()
    if ok:
        from ._docker import DockerBackend

        try:
            return DockerBackend(image, limits, pool_size)
        except SandboxError as e:
            reasons.append(f"docker: {e}")
    else:
        reasons.append(f"docker: no daemon ({err})")
    from ._bwrap import BwrapBackend, bwrap_status

    st = bwrap_status()
    if st["ok"]:
        return BwrapBackend(limits, pool_size)
    reasons.append(f"bwrap: {st['error']}")
    raise SandboxError(_INSTALL_HINT + "\nTried:\n  " + "\n  ".join(reasons))


def build_image(name: str = "harness-python", *, force: bool = False, progress: Any = None) -> str:
    from ._image import build_image as _build

    return _build(name, force=force, progress=progress)


def image_status(name: str = "harness-python") -> dict[str, Any]:
    from ._image import image_status as _status

    return _status(name)


def __getattr__(name: str) -> Any:
    if name == "sandbox_app":  # typer is only imported by CLIs
        from ._cli import sandbox_app

        return sandbox_app
    raise AttributeError(name)
