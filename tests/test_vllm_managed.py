"""vllm/<model>: the harness starts the server, waits for health, uses it, and stops it. A stand-in `vllm`
executable on PATH runs the tests' OpenAI-compatible server, so the management logic is exercised without a GPU."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

FAKE = Path(__file__).parent / "fakeopenai.py"


def fake_vllm(bin_dir: Path, body: str) -> dict[str, str]:
    bin_dir.mkdir()
    exe = bin_dir / "vllm"
    exe.write_text(f"#!{sys.executable}\nimport os, sys\nargs = sys.argv\n{body}\n")
    exe.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def test_managed_server_is_started_used_and_stopped(tmp_path):
    record = tmp_path / "argv.json"
    env = fake_vllm(tmp_path / "bin", f"""
import json
json.dump(args, open({str(record)!r}, "w"))
port = args[args.index("--port") + 1]
os.execv(sys.executable, [sys.executable, {str(FAKE)!r}, "--port", port, "--answer", "x"])""")
    out = subprocess.run([sys.executable, "-m", "harness.cli", "eval", "-m", "vllm/Qwen/Qwen2.5-0.5B-Instruct",
                          "-M", "max_model_len=4096", "-M", "temperature=0", "-t", "cipherbank", "--data", "bundled",
                          "--limit", "5", "--db", f"sqlite:///{tmp_path / 'h.db'}", "--json"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["tasks"][0]["counts"] == {"scored": 5}
    argv = json.loads(record.read_text())
    assert argv[1:3] == ["serve", "Qwen/Qwen2.5-0.5B-Instruct"] and "--max-model-len" in argv
    port = int(argv[argv.index("--port") + 1])
    with socket.socket() as s:  # the server is gone once the run ended
        assert s.connect_ex(("127.0.0.1", port)) != 0
    assert summary["run"]["generate_config"] == {"temperature": 0}  # server options are not sampling settings


def test_a_server_that_dies_is_a_clear_error(tmp_path):
    env = fake_vllm(tmp_path / "bin", "print('CUDA out of memory'); sys.exit(3)")
    out = subprocess.run([sys.executable, "-m", "harness.cli", "eval", "-m", "vllm/some/model", "-t", "cipherbank",
                          "--data", "bundled", "--db", f"sqlite:///{tmp_path / 'h.db'}"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 2
    assert "exited with code 3 before it was ready" in out.stderr
    log = out.stderr.split("its log: ")[1].strip()
    assert "CUDA out of memory" in Path(log).read_text()
