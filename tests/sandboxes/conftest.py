import os
import time
from pathlib import Path

import pytest

from harness.sandboxes import SandboxLimits, get_backend

LIMITS = SandboxLimits(timeout_s=5, memory_mb=512, pids=64, cpus=1.0, output_bytes=100_000)
SECRETS = {"HARNESS_TEST_SECRET": "hts-7f3a9c-do-not-leak", "OPENAI_API_KEY": "sk-test-9d8e7f-do-not-leak"}


@pytest.fixture
def secrets_in_env(monkeypatch):
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    return SECRETS


@pytest.fixture
async def make_backend(kind, secrets_in_env):
    """Backends are made with the secrets already in the harness's environment."""
    made = []

    def make(**kw):
        kw.setdefault("limits", LIMITS)
        kw.setdefault("pool_size", 2)
        b = get_backend(kind, **kw)
        made.append(b)
        return b

    yield make
    for b in made:
        await b.aclose()


@pytest.fixture
async def backend(make_backend):
    return make_backend()


def host_pids_with(marker: str) -> list[int]:
    """Host processes whose command line contains marker (container processes are visible here
    too when the Docker daemon runs on this machine)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != os.getpid():
            try:
                if marker.encode() in Path(f"/proc/{d}/cmdline").read_bytes():
                    out.append(int(d))
            except OSError:
                pass
    return out


async def wait_until(pred, timeout: float, step: float = 0.05) -> bool:
    import asyncio

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        await asyncio.sleep(step)
    return pred()


@pytest.fixture
def h():
    """Shared helpers, as a fixture: a test package import could collide with the `sandboxes`
    folder at the repository root."""
    import types

    return types.SimpleNamespace(LIMITS=LIMITS, SECRETS=SECRETS, host_pids_with=host_pids_with,
                                 wait_until=wait_until)
