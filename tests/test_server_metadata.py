"""What a run records about the model servers the harness starts itself: for vllm/, the vLLM version, the argv,
the environment that changes what it computes (secrets only as set), the resolved model revision and the GPUs;
for llamacpp/, the llama-cpp-python version, the argv, the GGUF file's sha256 (cached) and the CPU. No GPU here:
a stand-in `vllm` on PATH serves the tests' OpenAI-compatible server (with vLLM's GET /version, or without it)
and a stand-in `nvidia-smi` answers the GPU query; a real `vllm serve` is not run by these tests."""
from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import harness
from harness.model._llamacpp import ManagedLlamaCpp
from harness.model._managed import hash_cache_dir
from harness.model._vllm import resolve_revision
from harness.store import Store

TESTS = Path(__file__).parent
HARNESS = [str(Path(sys.executable).parent / "harness")]
PG = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
GPU = "NVIDIA H100 80GB HBM3, 81559 MiB"
COMMIT_MAIN, COMMIT_V1 = "a" * 40, "0123456789abcdef0123456789abcdef01234567"


def stand_ins(tmp_path: Path, *, version: str | None, nvidia_smi: bool = True) -> tuple[Path, dict[str, str]]:
    """`vllm` (each start noted with its argv and VLLM_TEST_MARK, then the fake server, with GET /version when
    `version`) and `nvidia-smi` (two GPUs, only for the query the harness makes) in a bin folder on PATH."""
    bin_dir, starts = tmp_path / "bin", tmp_path / "starts.jsonl"
    bin_dir.mkdir()
    (bin_dir / "vllm").write_text(f"""#!{sys.executable}
import json, os, sys
sys.path.insert(0, {str(TESTS)!r})
open({str(starts)!r}, "a").write(json.dumps({{"argv": sys.argv, "mark": os.environ.get("VLLM_TEST_MARK")}}) + "\\n")
from aiohttp import web
from fakeopenai import build_app
app = build_app(latency=0.05, faults="", log_path=None, answer="x")
if {version!r}:
    app.router.add_get("/version", lambda request: web.json_response({{"version": {version!r}}}))
web.run_app(app, host="127.0.0.1", port=int(sys.argv[sys.argv.index("--port") + 1]), print=None)
""")
    if nvidia_smi:
        (bin_dir / "nvidia-smi").write_text(
            '#!/bin/sh\n[ "$*" = "--query-gpu=name,memory.total --format=csv,noheader" ] || exit 9\n'
            f'echo "{GPU}"\necho "{GPU}"\n')
    for exe in bin_dir.iterdir():
        exe.chmod(0o755)
    path = [bin_dir, *(p for p in os.environ["PATH"].split(":") if not (Path(p) / "nvidia-smi").exists())]
    return starts, {"PATH": ":".join(map(str, path)), "HARNESS_SERVER_DIR": str(tmp_path / "servers")}


def hub_cache(tmp_path: Path, repo: str) -> Path:
    """A Hugging Face cache holding `repo` at two commits: main and the tag v1.0."""
    root = tmp_path / "hub"
    folder = root / f"models--{repo.replace('/', '--')}"
    for ref, commit in (("main", COMMIT_MAIN), ("v1.0", COMMIT_V1)):
        (folder / "refs").mkdir(parents=True, exist_ok=True)
        (folder / "refs" / ref).write_text(commit)
        (folder / "snapshots" / commit).mkdir(parents=True)
        (folder / "snapshots" / commit / "config.json").write_text("{}")
    return root


def test_a_vllm_run_records_version_argv_environment_revision_and_gpus(tmp_path):
    starts, env = stand_ins(tmp_path, version="0.11.0-test")
    env.update(HF_HUB_CACHE=str(hub_cache(tmp_path, "Org/Tiny-Instruct")), HF_HUB_OFFLINE="1",
               VLLM_ATTENTION_BACKEND="FLASHINFER", VLLM_API_KEY="sk-secret-value", CUDA_VISIBLE_DEVICES="0,1")
    db = f"sqlite:///{tmp_path / 'h.db'}"
    out = subprocess.run([*HARNESS, "eval", "-m", "vllm/Org/Tiny-Instruct", "-M", "revision=v1.0", "-t", "cipherbank",
                          "--data", "bundled", "--limit", "2", "--db", db, "--json"],
                         capture_output=True, text=True, env={**os.environ, **env}, timeout=120)
    assert out.returncode == 0, out.stderr
    (start,) = [json.loads(line) for line in starts.read_text().splitlines()]
    info = Store(db).get_run(json.loads(out.stdout)["run"]["id"])["model_info"]
    server = info["server"]
    assert server["vllm"] == {"version": "0.11.0-test", "from": "GET /version"}
    assert server["argv"] == start["argv"] and server["argv"][1:3] == ["serve", "Org/Tiny-Instruct"]
    assert server["argv"][server["argv"].index("--revision") + 1] == "v1.0"
    assert server["environment"]["VLLM_ATTENTION_BACKEND"] == "FLASHINFER"
    assert server["environment"]["CUDA_VISIBLE_DEVICES"] == "0,1" and server["environment"]["HF_HUB_OFFLINE"] == "1"
    assert server["environment"]["VLLM_API_KEY"] == "(set)" and "sk-secret-value" not in json.dumps(info)
    assert "PATH" not in server["environment"]
    # the tag the run asked for, resolved offline to its commit (not main's)
    assert server["model_revision"]["commit"] == COMMIT_V1 and server["model_revision"]["kind"] == "hub"
    assert server["gpus"] == [GPU, GPU]


def test_without_version_route_the_interpreter_answers_and_a_node_without_nvidia_smi_says_so(tmp_path, monkeypatch):
    _, env = stand_ins(tmp_path, version=None, nvidia_smi=False)
    # the `vllm` script's interpreter imports a vllm package (here a stand-in on PYTHONPATH)
    package = tmp_path / "pkgs" / "vllm"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('__version__ = "0.9.2-probe"\n')
    for key, value in {**env, "PYTHONPATH": str(tmp_path / "pkgs")}.items():
        monkeypatch.setenv(key, value)
    weights = tmp_path / "my-model"
    weights.mkdir()
    (weights / "config.json").write_bytes(b"{}")
    result = harness.eval("cipherbank", f"vllm/{weights}", data="bundled", limit=1, db=f"sqlite:///{tmp_path / 'h.db'}")
    server = result.store.get_run(result.run_id)["model_info"]["server"]
    assert server["vllm"] == {"version": "0.9.2-probe", "from": f"{sys.executable} -c 'import vllm'"}
    assert server["gpus"] is None and server["why"] == "nvidia-smi is not on PATH"
    # a local folder: its manifest's hash, by the method recorded beside it (computed here by hand)
    by_hand = hashlib.sha256(b"config.json\x002\x00" + hashlib.sha256(b"{}").digest()).hexdigest()
    assert server["model_revision"]["manifest_sha256"] == by_hand
    assert "content (files up to 16 MiB) or its size" in server["model_revision"]["method"]


def test_revisions_resolved_without_the_network(tmp_path, monkeypatch):
    import huggingface_hub.constants

    root = hub_cache(tmp_path, "Org/Tiny-Instruct")
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads both at its import, which an earlier test of the session may have done
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(root))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert resolve_revision("Org/Tiny-Instruct")["commit"] == COMMIT_MAIN
    missing = resolve_revision("Org/Not-Downloaded")
    assert missing["commit"] is None and "not in the local Hugging Face cache" in missing["why"]
    snapshot = root / "models--Org--Tiny-Instruct" / "snapshots" / COMMIT_V1
    assert resolve_revision(str(snapshot)) == {"kind": "local", "path": str(snapshot), "commit": COMMIT_V1,
                                               "method": "the Hugging Face cache snapshot folder's name"}
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "config.json").write_text('{"layers": 2}')
    (folder / "model.safetensors").write_bytes(b"\0" * ((16 << 20) + 1))  # over the content-hash size
    before = resolve_revision(str(folder))["manifest_sha256"]
    (folder / "model.safetensors").write_bytes(b"\1" * ((16 << 20) + 1))  # same size: a weight file by its size
    assert resolve_revision(str(folder))["manifest_sha256"] == before
    (folder / "config.json").write_text('{"layers": 3}')  # a config by its content
    assert resolve_revision(str(folder))["manifest_sha256"] != before


@PG
def test_workers_record_their_nodes_server_as_its_starter_ran_it(db_url, tmp_path, monkeypatch):
    starts, env = stand_ins(tmp_path, version="0.11.0-test")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = harness.eval("cipherbank", "vllm/Org/Tiny-Instruct", data="bundled", limit=12, max_samples=2, db=db_url,
                          executor=QueueOnly())
    store = Store(db_url)
    assert "server" not in store.get_run(result.run_id)["model_info"]  # nothing was started where it was queued
    procs = [subprocess.Popen([*HARNESS, "worker", result.run_id, "--db", db_url, "--json", "--batch", "1"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "OPENAI_API_KEY": "sk-test", "VLLM_TEST_MARK": mark})
             for mark in ("first", "second")]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-3000:]
    rows = [(r["sample_id"], r["status"]) for rt in store.run_tasks(result.run_id) for r in store.samples(rt["id"])]
    assert len(rows) == len(set(rows)) == 12 and {s for _, s in rows} == {"scored"}
    (start,) = [json.loads(line) for line in starts.read_text().splitlines()]  # one server for the node
    servers = store.get_run(result.run_id)["model_info"]["servers"]
    assert list(servers) == [socket.gethostname()]
    facts = servers[socket.gethostname()]
    assert facts["argv"] == start["argv"] and facts["vllm"]["version"] == "0.11.0-test" and facts["gpus"] == [GPU, GPU]
    # the environment of the server as started, whichever worker wrote the record
    assert facts["environment"]["VLLM_TEST_MARK"] == start["mark"]


class QueueOnly:
    """Queues the run for workers and submits nothing: the test starts the workers itself."""

    def submit(self, runner) -> None:
        runner.store.set_executor(runner.run_id, {"kind": "test", "workers": 0, "lease_s": 60, "max_attempts": 3})


def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF" + bytes(range(256)) * 40)
    return path


def test_the_gguf_hash_is_cached_by_path_mtime_and_size(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    model = gguf(tmp_path)
    real = hashlib.sha256(model.read_bytes()).hexdigest()
    assert ManagedLlamaCpp(str(model)).model_file()["sha256"] == real
    (entry,) = [p for p in hash_cache_dir().iterdir() if not p.name.endswith(".lock")]
    assert entry.read_text() == real
    entry.write_text("f" * 64)  # a later worker reads the cache rather than the file: it gets what the cache says
    assert ManagedLlamaCpp(str(model)).model_file()["sha256"] == "f" * 64
    st = model.stat()
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # the file touched: hashed again
    assert ManagedLlamaCpp(str(model)).model_file()["sha256"] == real


async def test_a_llamacpp_run_records_the_cpu_and_the_server_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("LLAMA_ARG_TEST", "1")
    python = tmp_path / "python-llamacpp"
    python.write_text(f"#!{sys.executable}\nimport os, sys\nif sys.argv[1] == '-c':\n    print('0.3.99-test')\n"
                      f"    sys.exit(0)\nport = sys.argv[sys.argv.index('--port') + 1]\n"
                      f"os.execv(sys.executable, [sys.executable, {str(TESTS / 'fakeopenai.py')!r}, '--port', port])\n")
    python.chmod(0o755)
    m = ManagedLlamaCpp(str(gguf(tmp_path)), options={"python": str(python)})
    assert "server" not in m.info()  # nothing is claimed about a server not started
    try:
        await m.check()
        server = m.info()["server"]
    finally:
        await m.aclose()
    with open("/proc/cpuinfo") as f:
        cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    assert server["cpu"] == cpu and server["cores"] == os.cpu_count()
    assert server["llama_cpp_python"] == "0.3.99-test" and server["environment"]["LLAMA_ARG_TEST"] == "1"
