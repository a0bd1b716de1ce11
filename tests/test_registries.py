"""Model providers and sandbox backends that other packages add: by decorator, and by entry points in groups
`harness.models` / `harness.sandboxes` of an installed distribution (a real dist-info on the path, run through the
CLI in its own process), found on first lookup; a broken plugin is a one-line error naming it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness._registry import UsageError
from harness.model import MockModel, get_model, model_forms, modelapi
from harness.sandboxes import backend_names, get_backend, sandbox_backend
from harness.store import Store

PLUGIN = '''
import os
from pathlib import Path

from harness.model import MockModel, modelapi
from harness.sandboxes import get_backend, sandbox_backend


@modelapi("shout")
def shout(name, *, base_url, args, db_url):
    """Answers every sample with the name it was given, upper-cased: the spec's name reached the factory."""
    return MockModel(f"<result>{name.upper()}</result>", name=f"shout/{name}")


@sandbox_backend("counted")
def counted(*, image, limits, pool_size):
    """bwrap, leaving a marker: the run made its backend here."""
    Path(os.environ["COUNTED_MARKER"]).write_text(image)
    return get_backend("bwrap", image=image, limits=limits, pool_size=pool_size)
'''


def install_plugin(folder: Path, name: str, code: str) -> Path:
    """A distribution as pip leaves it: the module and a dist-info folder naming its entry points."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(code)
    info = folder / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[harness.models]\ndemo = {name}\n\n[harness.sandboxes]\ndemo = {name}\n")
    return folder


def harness(plugin: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(plugin), **(env or {})})


def test_a_model_provider_from_an_entry_point_serves_its_prefix(tmp_path):
    plugin = install_plugin(tmp_path / "site", "harness_ext_demo", PLUGIN)
    db = f"sqlite:///{tmp_path / 'h.db'}"
    out = harness(plugin, "eval", "--model", "shout/abc", "--task", "cipherbank", "--data", "bundled", "--limit", "2",
                  "--db", db, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout[out.stdout.index("{"):])["run"]["model"] == "shout/abc"
    store = Store(db)
    rows = store.samples(store.run_tasks(store.list_runs()[0]["id"])[0]["id"])
    assert [r["response"] for r in rows] == ["<result>ABC</result>"] * 2
    # the plugin's form is among those a wrong spec is told about, with the nearest spec
    bad = harness(plugin, "eval", "--model", "shuot/abc", "--task", "cipherbank", "--db", db)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: unknown model 'shuot/abc' (did you mean 'shout/abc'?); use one of: openai/<model>, vllm/<model>, "
        "vllm-server/<model>, llamacpp/<path.gguf>, reference, replay:<path>, replay-run:<run>, mock, shout/<model>"]


def test_a_sandbox_backend_from_an_entry_point_runs_the_tasks_code(tmp_path):
    from harness.sandboxes._bwrap import bwrap_status

    if not bwrap_status()["ok"]:
        pytest.skip(f"needs bubblewrap: {bwrap_status()['error']}")
    plugin = install_plugin(tmp_path / "site", "harness_ext_demo", PLUGIN)
    marker = tmp_path / "made"
    db = f"sqlite:///{tmp_path / 'h.db'}"
    out = harness(plugin, "eval", "--model", "reference", "--task", "evalplus/humaneval_plus", "--data", "bundled",
                  "--limit", "2", "--sandbox", "counted", "--db", db, "--json", env={"COUNTED_MARKER": str(marker)})
    assert out.returncode == 0, out.stderr
    assert marker.read_text() == "harness-python"  # the task's image reached the backend's factory
    store = Store(db)
    rows = store.samples(store.run_tasks(store.list_runs()[0]["id"])[0]["id"])
    assert [(r["status"], r["score"]) for r in rows] == [("scored", 1.0)] * 2
    bad = harness(plugin, "eval", "--model", "reference", "--task", "cipherbank", "--sandbox", "countd", "--db", db)
    assert bad.stderr.strip().splitlines() == [
        "error: --sandbox 'countd' is not a sandbox (did you mean 'counted'?); use one of: auto, docker, bwrap, "
        "none-UNSAFE, counted"]


def test_a_plugin_that_fails_to_import_is_one_line_naming_it(tmp_path):
    plugin = install_plugin(tmp_path / "site", "harness_ext_broken", "import harness_ext_missing_dependency\n")
    out = harness(plugin, "eval", "--model", "mock", "--task", "cipherbank", "--data", "bundled", "--limit", "1",
                  "--db", f"sqlite:///{tmp_path / 'h.db'}")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "error: entry point demo = harness_ext_broken in group harness.sandboxes (package harness-ext-broken) failed "
        "to load: ModuleNotFoundError: No module named 'harness_ext_missing_dependency'; fix or uninstall that package"]


@modelapi("echo-spec", usage="echo-spec:<text>")
def _echo_spec(name, *, base_url, args, db_url):
    return MockModel(f"{name} {base_url} {args} {db_url}", name=f"echo-spec:{name}")


@sandbox_backend("refused", unsafe=True)
def _refused(*, image, limits, pool_size):
    raise AssertionError("an unsafe backend is built only with allow_unsafe=True")


def test_decorated_providers_get_what_follows_the_prefix_and_the_runs_settings():
    client = get_model("echo-spec:a/b:c", base_url="http://x/v1", args={"k": 1}, db_url="sqlite:///r.db")
    assert client.respond == "a/b:c http://x/v1 {'k': 1} sqlite:///r.db" and client.name == "echo-spec:a/b:c"
    assert "echo-spec:<text>" in model_forms()
    with pytest.raises(UsageError, match=r"^model 'echo-spec:' names no <text>; write echo-spec:<text>$"):
        get_model("echo-spec:")
    with pytest.raises(UsageError, match=r"^model 'openai/' names no <model>; write openai/<model>$"):
        get_model("openai/")
    with pytest.raises(ValueError, match="must be 'bad', bad/<...> or bad:<...>"):
        modelapi("bad", usage="other/<x>")


def test_a_backend_marked_unsafe_needs_allow_unsafe():
    assert backend_names()[:4] == ["auto", "docker", "bwrap", "none-UNSAFE"] and "refused" in backend_names()
    from harness.sandboxes import SandboxError

    with pytest.raises(SandboxError, match="sandbox 'refused' runs untrusted code on the host"):
        get_backend("refused")
