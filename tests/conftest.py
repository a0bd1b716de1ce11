"""Shared fixtures. `db_url` runs a test against SQLite and against a real PostgreSQL server
(HARNESS_TEST_PG_URL, set by .ci/run from .ci/setup-postgres.sh); each test gets a fresh database."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


def _pg_admin_url() -> str | None:
    return os.environ.get("HARNESS_TEST_PG_URL")


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'harness.db'}"
        return
    admin = _pg_admin_url()
    if not admin:
        if os.environ.get("CI"):
            pytest.fail("HARNESS_TEST_PG_URL is not set in CI: .ci/run must start PostgreSQL")
        pytest.skip("no PostgreSQL server (set HARNESS_TEST_PG_URL, e.g. from .ci/setup-postgres.sh)")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"harness_test_{uuid.uuid4().hex[:10]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    yield url
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture
def llamacpp_url() -> str:
    """The base URL of the real LLM server (llama.cpp + SmolLM2-135M-Instruct) that .ci/setup-llamacpp.sh starts."""
    url = os.environ.get("HARNESS_TEST_LLAMACPP_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("HARNESS_TEST_LLAMACPP_URL is not set in CI: .ci/run must start the llama.cpp server")
        pytest.skip("no llama.cpp server (set HARNESS_TEST_LLAMACPP_URL, e.g. from .ci/setup-llamacpp.sh)")
    return url


@pytest.fixture
def slurm() -> None:
    """The single-node Slurm of .ci/setup-slurm.sh (dev.sh test sets HARNESS_TEST_SLURM=1 once it is up)."""
    if not os.environ.get("HARNESS_TEST_SLURM"):
        if os.environ.get("CI"):
            pytest.fail("HARNESS_TEST_SLURM is not set in CI: .ci/run must start Slurm (.ci/setup-slurm.sh)")
        pytest.skip("no Slurm cluster (run .ci/setup-slurm.sh as root, then set HARNESS_TEST_SLURM=1)")


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'harness.db'}"


@pytest.fixture
def fake_openai(request):
    """tests/fakeopenai.py on a free loopback port, started with the test's indirect parameters as its
    command-line flags (`@pytest.mark.parametrize("fake_openai", [("--faults", "401:6")], indirect=True)`);
    yields its base URL."""
    from fakeopenai import start_server

    proc, url = start_server(*request.param)
    yield url
    proc.terminate()
    proc.wait(10)


def _sandbox_unavailable(kind: str) -> str | None:
    if kind == "docker":
        from harness.sandboxes import _image

        ok, err = _image.docker_available()
        if not ok:
            return f"no Docker daemon reachable ({err})"
        return None if _image.image_status("harness-python").get("built") else "harness-python image not built"
    from harness.sandboxes._bwrap import bwrap_status

    st = bwrap_status()
    return None if st["ok"] else st["error"]


@pytest.fixture(params=[pytest.param("docker", marks=pytest.mark.docker, id="docker"),
                        pytest.param("bwrap", marks=pytest.mark.bwrap, id="bwrap")])
def kind(request) -> str:
    """A sandbox backend kind; each test runs on both. CI installs both: a missing one fails there."""
    if reason := _sandbox_unavailable(request.param):
        if os.environ.get("CI"):
            pytest.fail(f"{request.param} backend unavailable in CI: {reason}")
        pytest.skip(reason)
    return request.param
