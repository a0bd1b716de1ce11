"""bench/agent_loop.py at a tiny size, so the benchmark cannot rot unnoticed: its runs must finish with every
sample scored right (the submitted word, every `echo` seen in the events table) and its report must hold the
figures a note quotes. No timing is asserted."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench" / "agent_loop.py"
INSPECT_VENV = Path("/var/cache/harness/bench-inspect-venv")
TINY = ["--samples", "4", "--turns", "2", "--concurrency", "2", "--latency", "0"]


def _bench(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "agent_loop.json"
    done = subprocess.run([sys.executable, str(BENCH), *TINY, "--out", str(out), *args], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert done.stdout.strip().splitlines()[-1] == report["summary"]
    return report


def test_the_harness_half_scores_every_agent_and_reports_its_costs(kind, tmp_path):
    config = f"harness-{kind}"
    report = _bench(tmp_path, "--configs", config, "--execs", "3")
    row = report["configs"][config]
    assert row["ok"] and report["runs"][0]["ok"]
    # 4 samples x (2 bash turns + 1 submit), never more than 2 in flight
    assert row["requests"] == 12 and 1 <= row["max_in_flight"] <= 2
    assert report["workload"]["model_turns"] == 12
    assert report["sandbox_costs"][kind]["execs"] == 3
    assert {"ideal_with_sandbox_s", "sandbox_floor_s", "overhead_cpu_ms_per_turn",
            "marginal_overhead_cpu_ms_per_turn"} <= row.keys()
    # the one-sample start-up run comes first, checked like the others
    assert [(r["config"], r["samples"], r["ok"]) for r in report["startup_runs"]] == [(config, 1, True)]
    assert config in report["summary"] and report["throughput_ratio_vs_inspect"] == {}


@pytest.mark.skipif(not (INSPECT_VENV / "bin" / "python").exists(),
                    reason=f"Inspect's venv {INSPECT_VENV} is not made (bench/agent_loop.py makes it)")
def test_the_inspect_half_scores_every_agent(tmp_path):
    report = _bench(tmp_path, "--configs", "inspect-local,harness-local", "--execs", "0")
    assert report["configs"]["inspect-local"]["ok"] and report["configs"]["inspect-local"]["requests"] == 12
    assert report["configs"]["harness-local"]["ok"]
    assert set(report["throughput_ratio_vs_inspect"]) == {"harness-local/inspect-local"}


COMPOSE_V2 = Path("/var/cache/harness/bench-docker-config/cli-plugins/docker-compose")


@pytest.mark.skipif(not ((INSPECT_VENV / "bin" / "python").exists() and COMPOSE_V2.exists()),
                    reason="Inspect's venv and compose v2 are not fetched (bench/agent_loop.py fetches them)")
def test_the_inspect_docker_half_scores_every_agent(tmp_path):
    report = _bench(tmp_path, "--configs", "inspect-docker", "--execs", "0")
    row = report["configs"]["inspect-docker"]
    assert row["ok"] and row["requests"] == 12 and report["workload"]["inspect_compose"].startswith("2.")


def test_an_unknown_config_is_refused_with_the_known_ones(tmp_path):
    done = subprocess.run([sys.executable, str(BENCH), "--configs", "harness-podman", "--out", str(tmp_path / "x")],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "unknown config(s) harness-podman" in done.stderr
    assert "harness-docker" in done.stderr and not (tmp_path / "x").exists()
