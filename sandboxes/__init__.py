"""Isolated execution of model-written code.

    backend = get_backend("auto", limits=SandboxLimits(timeout_s=5))
    async with backend.acquire() as sb:
        await sb.write_file("main.py", code)
        r = await sb.exec(["python3", "main.py"], input="1 2\\n")
    await backend.aclose()

Backends: "docker" (warm pool of locked-down containers), "bwrap" (bubblewrap namespaces, host
python3), and "none-UNSAFE" (host processes; only with allow_unsafe=True); others register with
`@sandbox_backend(name)` or an entry point in group `harness.sandboxes`. Importing this package
is cheap: the docker SDK is loaded only when a Docker backend or image build is used.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ._types import ExecResult, Sandbox, SandboxBackend, SandboxError, SandboxLimits

__all__ = ["ExecResult", "Sandbox", "SandboxBackend", "SandboxError", "SandboxLimits", "backend_names",
           "get_backend", "build_image", "image_status", "sandbox_app", "sandbox_backend", "UNSAFE"]

UNSAFE = "none-UNSAFE"
_INSTALL_HINT = (
    "No sandbox for untrusted code is available. Either\n"
    "  - Docker: `apt-get install docker.io`, start dockerd, then `harness sandbox build`; or\n"
    "  - bubblewrap: `apt-get install bubblewrap` (needs unprivileged user namespaces).\n"
    "Running model-written code without a sandbox needs --i-understand-this-runs-untrusted-code-unsandboxed.")


# factory(*, image, limits, pool_size) -> SandboxBackend
BackendFactory = Callable[..., SandboxBackend]


@dataclass(frozen=True)
class BackendEntry:
    name: str
    factory: BackendFactory
    unsafe: bool  # runs untrusted code without isolation: only with allow_unsafe=True


_BACKENDS: dict[str, BackendEntry] = {}
ENTRY_POINT_GROUP = "harness.sandboxes"


def sandbox_backend(name: str, *, unsafe: bool = False) -> Callable[[BackendFactory], BackendFactory]:
    """Register a sandbox backend: `@sandbox_backend("mybox")` serves `--sandbox mybox`. The factory is called
    as factory(image=..., limits=..., pool_size=...) and returns a SandboxBackend; `unsafe=True` marks a backend
    without isolation, which get_backend refuses unless allow_unsafe=True."""

    def register(factory: BackendFactory) -> BackendFactory:
        _BACKENDS[name] = BackendEntry(name, factory, unsafe)
        return factory

    return register


def backend_names() -> list[str]:
    """Every registered backend, in registration order (the built-ins first: auto, docker, bwrap, none-UNSAFE)."""
    from harness._registry import load_entry_points

    load_entry_points(ENTRY_POINT_GROUP)
    return list(_BACKENDS)


def get_backend(kind: str = "auto", *, image: str = "harness-python", limits: SandboxLimits = SandboxLimits(),
                pool_size: int | None = None, allow_unsafe: bool = False) -> SandboxBackend:
    """A sandbox backend (one per run and image). "auto": Docker if a daemon answers and `image` is built,
    else bwrap if it works here, else SandboxError saying what to install."""
    names = backend_names()
    if kind not in _BACKENDS:
        raise ValueError(f"unknown sandbox kind {kind!r}; use {', '.join(names[:-1])} or {names[-1]}")
    entry = _BACKENDS[kind]
    if entry.unsafe and not allow_unsafe:
        raise SandboxError(f"sandbox {kind!r} runs untrusted code on the host; it needs allow_unsafe=True "
                           "(--i-understand-this-runs-untrusted-code-unsandboxed)")
    return entry.factory(image=image, limits=limits, pool_size=pool_size)


# the built-ins; their factories are not named after the modules they import (`_docker` is a submodule)
@sandbox_backend("auto")
def _auto_backend(*, image: str, limits: SandboxLimits, pool_size: int | None) -> SandboxBackend:
    reasons = []
    from . import _image

    ok, err = _image.docker_available()
    if ok:
        try:
            return _docker_backend(image=image, limits=limits, pool_size=pool_size)
        except SandboxError as e:
            reasons.append(f"docker: {e}")
    else:
        reasons.append(f"docker: no daemon ({err})")
    from ._bwrap import bwrap_status

    st = bwrap_status()
    if st["ok"]:
        return _bwrap_backend(image=image, limits=limits, pool_size=pool_size)
    reasons.append(f"bwrap: {st['error']}")
    raise SandboxError(_INSTALL_HINT + "\nTried:\n  " + "\n  ".join(reasons))


@sandbox_backend("docker")
def _docker_backend(*, image: str, limits: SandboxLimits, pool_size: int | None) -> SandboxBackend:
    from ._docker import DockerBackend

    return DockerBackend(image, limits, pool_size)


@sandbox_backend("bwrap")
def _bwrap_backend(*, image: str, limits: SandboxLimits, pool_size: int | None) -> SandboxBackend:
    from ._bwrap import BwrapBackend

    return BwrapBackend(limits, pool_size)  # the host's python3: no image


@sandbox_backend(UNSAFE, unsafe=True)
def _unsafe_backend(*, image: str, limits: SandboxLimits, pool_size: int | None) -> SandboxBackend:
    from ._unsafe import UnsafeBackend

    return UnsafeBackend(limits, pool_size)


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
