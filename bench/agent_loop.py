#!/usr/bin/env python3
"""The agent loop's throughput and CPU per turn: `harness eval` with react(tools=[bash()]) beside Inspect's react().

Workload (issue 12): --samples 200 agents x --turns 5 turns, each turn one `bash` call (`echo turn-K`), then a
`submit`; --concurrency 32 samples in flight; the loopback OpenAI-compatible server tests/fakeopenai.py
(--agent-turns, --latency 0.1 s per request) plays the model, so a sample makes turns + 1 model requests. Each
harness sample gets its own sandbox (acquire(fresh=True)) for its whole trajectory (bench/agent_task.py); the
score checks the submitted word and that every `echo` really ran.

Configs (all in one invocation, same server settings, a fresh server per run, interleaved over --reps):
  harness-docker  the headline: Docker sandbox, one container per sample
  harness-bwrap   the same with bubblewrap: no Docker SDK or daemon in the way
  harness-local   host processes (--sandbox none-UNSAFE), the like-for-like row for Inspect's `local` sandbox
  inspect-local   inspect-ai (the version pyproject's test extra pins) in its own venv (--inspect-venv, made
                  with `pip install inspect-ai==VERSION openai` when missing), a generated task: the same
                  samples, `react(tools=[bash()])` with its submit tool, model openai/fake-model with
                  OPENAI_BASE_URL at the server (and responses_api=False: it sends unknown model names to the
                  Responses API), max_connections = max_samples = max_subprocesses = max_sandboxes =
                  concurrency (its defaults, the cores for subprocesses and 2 x the cores for docker sandboxes,
                  would throttle it). Its bash tool runs `bash --login`, so it gets an empty HOME (a container
                  has a clean profile; the host user's would run on every call). Its bash processes are its
                  children, so they count in its CPU (as harness-local's do; a container's do not).
  inspect-docker  the same task with Inspect's docker sandbox, the issue's comparison: one compose project per
                  sample, on the harness's own Python image (network_mode none, init, the same CPU, memory and
                  pids limits as harness-docker's containers). Inspect needs Docker Compose >= 2.21, and Debian 12
                  ships compose v1 (1.29): the bench fetches Debian 13's `docker-compose` 2.26.1 package from
                  deb.debian.org with apt (signed by Debian's archive keyring) into --docker-config/cli-plugins
                  and points only Inspect's process at it (DOCKER_CONFIG). Inspect also asks for Docker Engine
                  >= 24.0.6 and Debian 12's is 20.10: that one check is skipped rather than the machine's Docker
                  replaced, and every sample's result is checked as for the other configs.
Every run is a whole process (start-up included), timed from outside; CPU is user+sys of its process tree
(getrusage of children; for Docker also the dockerd/containerd daemons' CPU, read from /proc, shown apart).

Sandbox costs are measured first, in this process, with the tool's exact exec (`bash -c "echo turn-0"`): the
median of --execs execs in one warm sandbox, and of fresh sandboxes (create + first exec; CPU includes the
removal); then the sandbox work alone (a fresh sandbox per sample, --turns execs in it, --concurrency at once,
no model). The ideal wall is samples / concurrency x (requests x latency + turns x exec + fresh sandbox); the
issue's model-only formula (samples x turns x latency / concurrency) is given too, and the in-run wall is set
against max(ideal, sandbox work alone). The loop's own CPU per turn (a turn: one model request and its tool
calls) is the process tree's CPU less the sandbox work's, as measured above.

    .venv/bin/python bench/agent_loop.py                                # everything, 200 x 5, 1 rep
    .venv/bin/python bench/agent_loop.py --configs harness-docker --samples 20 --profile /tmp/agent.prof

Results: --out (default bench/results/agent_loop.json); the last line printed is the summary for a note.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))
from fakeopenai import start_server  # noqa: E402

CONFIGS = ("harness-docker", "harness-bwrap", "harness-local", "inspect-local", "inspect-docker")
INSPECT = ("inspect-local", "inspect-docker")
SANDBOX = {"harness-docker": "docker", "harness-bwrap": "bwrap", "harness-local": "none-UNSAFE"}
DAEMONS = ("dockerd", "containerd")
EXEC_CMD = ["bash", "-c", "echo turn-0"]  # what the bash tool runs for the server's first call

INSPECT_SCRIPT = r'''
import json, re, sys, time
from inspect_ai import Task, eval
from inspect_ai.agent import react
from inspect_ai.dataset import Sample
from inspect_ai.scorer import Score, Target, accuracy, scorer
from inspect_ai.tool import bash

data, log_dir, concurrency, n, compose = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
with open(data) as f:
    samples = [Sample(id=r["id"], input=r["input"], target=r["target"]) for r in map(json.loads, f)][:n]


@scorer(metrics=[accuracy()])
def submitted_word():
    async def score(state, target: Target) -> Score:
        found = re.fullmatch(r"<result>(.*)</result>", state.output.completion.strip(), re.S)
        answer = found.group(1) if found else state.output.completion
        echoes = [m.text for m in state.messages if m.role == "tool" and m.function == "bash"]
        ok = answer == target.text and echoes == [f"turn-{k}\n" for k in range(len(echoes))]
        return Score(value=1.0 if ok else 0.0, answer=answer, metadata={"bash_calls": len(echoes)})
    return score


sandbox = ("docker", compose) if compose else "local"
if compose:
    # Debian 12's Docker Engine is 20.10 and Inspect asks for >= 24.0.6: its engine check is skipped (compose's is
    # kept) rather than the machine's Docker replaced; every sample's result is checked below
    import inspect_ai.util._sandbox.docker.prereqs as prereqs

    async def engine_not_checked(version: str = "") -> None:
        return None

    prereqs.validate_docker_engine = engine_not_checked
task = Task(dataset=samples, solver=react(tools=[bash()]), scorer=submitted_word(), sandbox=sandbox)
t0 = time.perf_counter()
# an unknown model name counts as a frontier one there, which goes to the Responses API; the server is chat/completions
log, = eval(task, model="openai/fake-model", model_args={"responses_api": False}, max_connections=concurrency,
            max_samples=concurrency, max_subprocesses=concurrency, max_sandboxes=concurrency, log_dir=log_dir,
            display="none")
wall = time.perf_counter() - t0
if log.status != "success":
    sys.exit(f"inspect eval {log.status}: {log.error}")
samples = log.samples or []
accuracy = log.results.scores[0].metrics["accuracy"].value
print(json.dumps({"status": log.status, "eval_wall_s": wall, "accuracy": accuracy,
                  "samples": len(samples), "errors": sum(s.error is not None for s in samples),
                  "bash_calls": sum(s.scores["submitted_word"].metadata["bash_calls"] for s in samples)}))
'''


def inspect_version() -> str:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    pin = next(d for d in extras if d.startswith("inspect-ai"))
    return pin.split("==", 1)[1]


def ensure_inspect(venv: Path, version: str) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    probe = f"import inspect_ai, openai, sys; sys.exit(inspect_ai.__version__ != {version!r})"
    if subprocess.run([str(python), "-c", probe], capture_output=True).returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"inspect-ai=={version}", "openai"], check=True)
    return python


COMPOSE_PACKAGE = ("trixie", "docker-compose")  # Debian 13's compose v2 (2.26.1): Inspect needs >= 2.21


def ensure_compose_v2(config_dir: Path) -> str:
    """A Docker config folder whose cli-plugins hold compose v2, fetched once with apt from Debian 13 (see the doc)."""
    plugin = config_dir / "cli-plugins" / "docker-compose"
    if not plugin.exists():
        suite, package = COMPOSE_PACKAGE
        with tempfile.TemporaryDirectory() as tmp:
            t = Path(tmp)
            (t / "lists" / "partial").mkdir(parents=True)
            (t / "cache" / "archives" / "partial").mkdir(parents=True)
            (t / "sources.list").write_text("deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
                                            f"http://deb.debian.org/debian {suite} main\n")
            opts = [f"-oDir::Etc::sourcelist={t / 'sources.list'}", "-oDir::Etc::sourceparts=-",
                    f"-oDir::State::Lists={t / 'lists'}", f"-oDir::Cache={t / 'cache'}", "-oAPT::Get::List-Cleanup=0"]
            subprocess.run(["apt-get", *opts, "-qq", "update"], check=True)
            subprocess.run(["apt-get", *opts, "-qq", "download", package], check=True, cwd=t)
            deb, = t.glob(f"{package}_*.deb")
            subprocess.run(["dpkg-deb", "-x", str(deb), str(t / "x")], check=True)
            plugin.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(t / "x" / "usr" / "libexec" / "docker" / "cli-plugins" / "docker-compose", plugin)
    version = subprocess.run(["docker", "compose", "version", "--short"], capture_output=True, text=True, check=True,
                             env={**os.environ, "DOCKER_CONFIG": str(config_dir)}).stdout.strip()
    print(f"inspect-docker: Docker Compose {version} from {plugin}", file=sys.stderr)
    return version


def inspect_compose_file(work: Path) -> Path:
    """Inspect's sandbox on the harness's Python image, locked down as harness-docker's containers are."""
    from harness.sandboxes._image import image_tag
    from harness.sandboxes._types import SandboxLimits

    lim = SandboxLimits()
    path = work / "compose.yaml"
    path.write_text(f"""services:
  default:
    image: {image_tag("harness-python")}
    x-local: true
    command: ["sleep", "infinity"]
    init: true
    network_mode: none
    working_dir: /tmp
    mem_limit: {lim.memory_mb}m
    pids_limit: {lim.pids}
    cpus: {lim.cpus}
""")
    return path


def daemon_cpu_s() -> float:
    """user+sys seconds of the long-lived Docker daemons (the per-container shims come and go, and are not seen)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() in DAEMONS:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            continue
    return total


def children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


async def _sandbox_costs(kind: str, a: argparse.Namespace) -> dict:
    """The sandbox work alone, with the bash tool's exact exec: medians of --execs execs in one warm sandbox and of
    fresh sandboxes (create + first exec; CPU includes the removal), wall and CPU (this process, its threads, and
    the children it waited for: bwrap's and host processes). Then the floor: the workload's sandbox work (a fresh
    sandbox per sample, --turns execs in it) at the same concurrency, without the model."""
    from harness.agent._tools import EXEC_OUTPUT_BYTES
    from harness.sandboxes import get_backend

    def cpu() -> float:
        return sum(ru.ru_utime + ru.ru_stime for ru in (resource.getrusage(resource.RUSAGE_SELF),
                                                        resource.getrusage(resource.RUSAGE_CHILDREN)))

    async def echo(sb) -> None:
        r = await sb.exec(EXEC_CMD, timeout_s=180, output_bytes=EXEC_OUTPUT_BYTES)
        assert r.returncode == 0 and r.stdout == "turn-0\n", r

    backend = get_backend(kind, allow_unsafe=True)
    try:
        async with backend.acquire(fresh=True) as sb:
            await echo(sb)
            walls, c0 = [], cpu()
            for _ in range(a.execs):
                t0 = time.perf_counter()
                await echo(sb)
                walls.append(time.perf_counter() - t0)
            exec_cpu = (cpu() - c0) / a.execs
        fresh_n = max(5, a.execs // 5)
        fresh, c0 = [], cpu()
        for _ in range(fresh_n):
            t0 = time.perf_counter()
            async with backend.acquire(fresh=True) as sb:
                await echo(sb)
            fresh.append(time.perf_counter() - t0)
    finally:
        await backend.aclose()  # waits for the removals, so the fresh CPU includes them
    fresh_cpu = (cpu() - c0) / fresh_n - exec_cpu

    backend, slots = get_backend(kind, allow_unsafe=True), asyncio.Semaphore(a.concurrency)

    async def sample() -> None:
        async with slots, backend.acquire(fresh=True) as sb:
            for _ in range(a.turns):
                await echo(sb)

    t0 = time.perf_counter()
    try:
        await asyncio.gather(*(sample() for _ in range(a.samples)))
    finally:
        await backend.aclose()  # a run ends by waiting for its sandboxes' removal too
    floor = time.perf_counter() - t0
    return {"exec_ms": 1000 * statistics.median(walls), "exec_cpu_ms": 1000 * exec_cpu, "execs": a.execs,
            "fresh_ms": 1000 * statistics.median(fresh), "fresh_cpu_ms": 1000 * fresh_cpu, "fresh_n": fresh_n,
            "floor_s": floor}


def sandbox_costs(kind: str, a: argparse.Namespace) -> dict:
    return asyncio.run(_sandbox_costs(kind, a))


def run_one(config: str, a: argparse.Namespace, data: Path, n: int, work: Path, inspect_python: Path | None) -> dict:
    """One whole-process run of `config` on the first `n` samples of `data`, checked: every sample scored right."""
    proc, url = start_server("--latency", str(a.latency), "--agent-turns", str(a.turns))
    try:
        env = {**os.environ, "OPENAI_API_KEY": "fake", "HF_HUB_OFFLINE": "1"}
        db = work / f"{config}-{time.time_ns()}.db"
        if config in INSPECT:
            script = work / "inspect_agent.py"
            script.write_text(INSPECT_SCRIPT)
            compose = str(inspect_compose_file(work)) if config == "inspect-docker" else ""
            argv = [str(inspect_python), str(script), str(data), str(work / f"inspect-logs-{time.time_ns()}"),
                    str(a.concurrency), str(n), compose]
            if compose:
                env["DOCKER_CONFIG"] = str(a.docker_config)
            # Its bash tool runs `bash --login`: with the user's own HOME that runs their profile on every call (here
            # root's pyenv init, ~250 ms and a racy `pyenv rehash`); a container would have a clean one
            home = work / "inspect-home"
            home.mkdir(exist_ok=True)
            env.update(OPENAI_BASE_URL=url, INSPECT_LOG_LEVEL="warning", HOME=str(home))
        else:
            argv = [str(Path(sys.executable).parent / "harness"), "eval", "-m", "openai/fake-model", "--base-url", url,
                    "-t", str(HERE / "agent_task.py"), "--data", str(data), "--limit", str(n),
                    "--db", f"sqlite:///{db}", "--max-samples", str(a.concurrency), "--sandbox", SANDBOX[config],
                    "-M", f"max_connections={a.concurrency}", "--json", "--quiet"]
            if SANDBOX[config] == "none-UNSAFE":
                argv.append("--i-understand-this-runs-untrusted-code-unsandboxed")
            if a.profile and n == a.samples:
                argv = [sys.executable, "-m", "cProfile", "-o", str(a.profile), *argv]
        load, cpu0, daemons0, t0 = os.getloadavg()[0], children_cpu_s(), daemon_cpu_s(), time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
        wall, cpu, daemons = time.perf_counter() - t0, children_cpu_s() - cpu0, daemon_cpu_s() - daemons0
        if done.returncode != 0:
            raise SystemExit(f"{config} failed (exit {done.returncode}):\n{done.stderr[-3000:]}{done.stdout[-3000:]}")
        stats = json.loads(urllib.request.urlopen(url.removesuffix("/v1") + "/stats", timeout=10).read())
    finally:
        proc.terminate()
        proc.wait(10)
    if config in INSPECT:
        out = json.loads(done.stdout.strip().splitlines()[-1])
        details = out
        ok = (out["status"] == "success" and out["accuracy"] == 1.0 and out["samples"] == n
              and out["errors"] == 0 and out["bash_calls"] == n * a.turns)
        eval_wall = out["eval_wall_s"]
    else:
        summary = json.loads(done.stdout)["tasks"][0]
        ok = summary["metrics"]["overall"]["accuracy"]["value"] == 100.0 and summary["counts"] == {"scored": n}
        with sqlite3.connect(db) as con:
            created, finished = con.execute("SELECT created_at, finished_at FROM runs").fetchone()
            bash_calls = con.execute("SELECT count(*) FROM events WHERE kind = 'tool' AND name = 'bash' "
                                     "AND error IS NULL").fetchone()[0]
        ok = ok and bash_calls == n * a.turns
        details = {"counts": summary["counts"], "bash_calls": bash_calls}
        eval_wall = (dt.datetime.fromisoformat(finished) - dt.datetime.fromisoformat(created)).total_seconds()
    return {"config": config, "samples": n, "ok": ok, "wall_s": wall, "eval_wall_s": eval_wall, "cpu_s": cpu,
            "docker_daemons_cpu_s": daemons if config in ("harness-docker", "inspect-docker") else None,
            "requests": stats["n"], "max_in_flight": stats["max_in_flight"], "load_1min_before": load,
            "load_1min_after": os.getloadavg()[0], "details": details}


def summarize(a: argparse.Namespace, runs: list[dict], startups: dict[str, dict], costs: dict[str, dict],
              version: str) -> dict:
    requests_per_sample = a.turns + 1
    model_turns = a.samples * requests_per_sample
    execs = a.samples * a.turns
    chain_model_s = requests_per_sample * a.latency
    rows = {}
    for config in dict.fromkeys(r["config"] for r in runs):
        rs = [r for r in runs if r["config"] == config]
        med = {k: statistics.median(r[k] for r in rs) for k in ("wall_s", "eval_wall_s", "cpu_s")}
        row = {"ok": all(r["ok"] for r in rs), "runs": len(rs), **{k: round(v, 3) for k, v in med.items()},
               "throughput_samples_per_s": round(a.samples / med["wall_s"], 2),
               "cpu_ms_per_turn": round(1000 * med["cpu_s"] / model_turns, 2),
               # the one-sample run's CPU is start-up and shut-down; what a turn adds is the rest
               "startup_wall_s": round(startups[config]["wall_s"], 3),
               "startup_cpu_s": round(startups[config]["cpu_s"], 3),
               "marginal_cpu_ms_per_turn": round(1000 * (med["cpu_s"] - startups[config]["cpu_s"])
                                                 / (model_turns - requests_per_sample), 2),
               "requests": rs[0]["requests"], "max_in_flight": max(r["max_in_flight"] for r in rs),
               "walls_s": [round(r["wall_s"], 2) for r in rs],
               "load_1min": [round(x, 1) for r in rs for x in (r["load_1min_before"], r["load_1min_after"])]}
        kind = SANDBOX.get(config)
        cost = costs.get(kind) if kind else None
        if cost is not None:
            chain_s = chain_model_s + (a.turns * cost["exec_ms"] + cost["fresh_ms"]) / 1000
            ideal = a.samples / a.concurrency * chain_s
            sandbox_cpu = (execs * cost["exec_cpu_ms"] + a.samples * cost["fresh_cpu_ms"]) / 1000
            # the sandbox work alone at this concurrency can take longer than the ideal (Docker's container
            # lifecycle on few cores): the better of the two is what the loop could at best reach
            bound = max(ideal, cost["floor_s"])
            row.update({
                "ideal_with_sandbox_s": round(ideal, 3), "wall_over_ideal": round(med["wall_s"] / ideal, 2),
                "sandbox_floor_s": round(cost["floor_s"], 3), "bound_s": round(bound, 3),
                "eval_wall_over_bound": round(med["eval_wall_s"] / bound, 2), "sandbox_cpu_s": round(sandbox_cpu, 3),
                "overhead_cpu_ms_per_turn": round(1000 * (med["cpu_s"] - sandbox_cpu) / model_turns, 2),
                "marginal_overhead_cpu_ms_per_turn": round(
                    1000 * (med["cpu_s"] - startups[config]["cpu_s"] - sandbox_cpu * (a.samples - 1) / a.samples)
                    / (model_turns - requests_per_sample), 2),
                # what a sample's chain took beyond the model's latency and its sandbox work, per turn
                "overhead_wall_ms_per_turn": round(
                    1000 * (med["eval_wall_s"] * a.concurrency / a.samples - chain_s) / requests_per_sample, 1)})
        if config in ("harness-docker", "inspect-docker"):
            row["docker_daemons_cpu_s"] = round(statistics.median(r["docker_daemons_cpu_s"] for r in rs), 3)
        rows[config] = row
    ratios = {}
    for inspect in INSPECT:
        for config in rows if inspect in rows else ():
            if config not in INSPECT:
                ratios[f"{config}/{inspect}"] = round(rows[inspect]["wall_s"] / rows[config]["wall_s"], 2)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True,
                                text=True).stdout.strip())
    return {
        "workload": {"samples": a.samples, "bash_turns": a.turns, "requests_per_sample": requests_per_sample,
                     "model_turns": model_turns, "concurrency": a.concurrency, "latency_s": a.latency,
                     "reps": a.reps, "inspect_ai": version if set(INSPECT) & set(rows) else None,
                     "inspect_compose": a.compose_version if "inspect-docker" in rows else None},
        "ideal": {"issue_model_only_s": round(a.samples * a.turns * a.latency / a.concurrency, 3),
                  "model_requests_s": round(a.samples * requests_per_sample * a.latency / a.concurrency, 3)},
        "sandbox_costs": {k: {m: round(v, 2) if isinstance(v, float) else v for m, v in c.items()}
                             for k, c in costs.items()},
        "configs": rows, "throughput_ratio_vs_inspect": ratios,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_at_end": os.getloadavg()},
        "harness_commit": commit + ("+dirty" if dirty else ""), "date": dt.datetime.now(dt.UTC).isoformat(),
        "runs": runs, "startup_runs": list(startups.values()),
    }


def summary_line(report: dict) -> str:
    w, rows = report["workload"], report["configs"]
    parts = [f"agent loop {w['samples']}x{w['bash_turns']} bash turns (+submit), concurrency {w['concurrency']}, "
             f"{1000 * w['latency_s']:.0f} ms/request; model-only ideal {report['ideal']['model_requests_s']:.2f} s "
             f"(issue formula {report['ideal']['issue_model_only_s']:.2f} s)"]
    for kind, c in report["sandbox_costs"].items():
        parts.append(f"{kind} exec {c['exec_ms']:.1f} ms, fresh sandbox {c['fresh_ms']:.0f} ms, sandbox work alone "
                     f"{c['floor_s']:.1f} s")
    for config, r in rows.items():
        text = f"{config}: {r['wall_s']:.2f} s wall{'' if r['ok'] else ' (NOT ALL OK)'}"
        if "ideal_with_sandbox_s" in r:
            text += (f" (ideal {r['ideal_with_sandbox_s']:.2f} s, {r['wall_over_ideal']:.2f}x; in-run "
                     f"{r['eval_wall_s']:.2f} s = {r['eval_wall_over_bound']:.2f}x max(ideal, sandbox alone)), CPU "
                     f"{r['cpu_ms_per_turn']:.1f} ms/turn, {r['overhead_cpu_ms_per_turn']:.1f} besides the sandbox, "
                     f"{r['marginal_overhead_cpu_ms_per_turn']:.1f} without start-up")
        else:
            text += (f" (in-run {r['eval_wall_s']:.2f} s), CPU {r['cpu_ms_per_turn']:.1f} ms/turn, "
                     f"{r['marginal_cpu_ms_per_turn']:.1f} without start-up")
        parts.append(text)
    for name, ratio in report["throughput_ratio_vs_inspect"].items():
        config, inspect = name.split("/")
        parts.append(f"{config} throughput {ratio:.2f}x Inspect's ({inspect.split('-')[1]} sandbox)")
    return "; ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--turns", type=int, default=5, help="bash turns per sample (then one submit)")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--latency", type=float, default=0.1, help="the server's seconds per request")
    ap.add_argument("--configs", default=",".join(CONFIGS), help=f"comma list of {', '.join(CONFIGS)}")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--execs", type=int, default=50, help="execs timed per sandbox kind (0: skip that measure)")
    ap.add_argument("--inspect-venv", type=Path, default=Path("/var/cache/harness/bench-inspect-venv"))
    ap.add_argument("--docker-config", type=Path, default=Path("/var/cache/harness/bench-docker-config"),
                    help="Docker config folder for inspect-docker (its cli-plugins get compose v2)")
    ap.add_argument("--profile", type=Path, help="run the harness under cProfile into this file (one harness config)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "agent_loop.json")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (databases, Inspect's logs)")
    a = ap.parse_args()
    configs = [c.strip() for c in a.configs.split(",") if c.strip()]
    bad = [c for c in configs if c not in CONFIGS]
    if bad or not configs:
        ap.error(f"unknown config(s) {', '.join(bad) or '(none)'}; use a comma list of {', '.join(CONFIGS)}")
    if a.profile and sum(c not in INSPECT for c in configs) != 1:
        ap.error("--profile profiles one harness config: give --configs with exactly one harness-* config")
    version = inspect_version()
    inspect_python = ensure_inspect(a.inspect_venv, version) if set(INSPECT) & set(configs) else None
    a.compose_version = ensure_compose_v2(a.docker_config) if "inspect-docker" in configs else None

    costs = {}
    if a.execs:
        for kind in dict.fromkeys(SANDBOX[c] for c in configs if c in SANDBOX):
            costs[kind] = sandbox_costs(kind, a)
            print(f"{kind}: {json.dumps({k: round(v, 2) for k, v in costs[kind].items()})}", file=sys.stderr)

    def show(r: dict) -> None:
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()}), file=sys.stderr)

    work = Path(tempfile.mkdtemp(prefix="harness-agent-bench-"))
    try:
        data = work / "data.jsonl"
        with open(data, "w") as f:
            for i in range(a.samples):  # the server submits the last line of the user message
                f.write(json.dumps({"id": f"s{i:04d}", "input": "Run the commands you are given, then submit the "
                                    f"code word.\nw{i:04d}", "target": f"w{i:04d}"}) + "\n")
        # one sample first: the start-up and shut-down cost (and a warm-up: .pyc files, disk caches)
        startups = {}
        for config in configs:
            show(startups.setdefault(config, run_one(config, a, data, 1, work, inspect_python)))
        runs = []
        for rep in range(a.reps):
            for config in configs[rep % len(configs):] + configs[:rep % len(configs)]:
                runs.append(run_one(config, a, data, a.samples, work, inspect_python))
                show(runs[-1])
    finally:
        if a.keep:
            print(f"work folder (runs' databases, Inspect's logs): {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    report = summarize(a, runs, startups, costs, version)
    report["summary"] = summary_line(report)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=1) + "\n")
    if a.profile:
        import pstats

        pstats.Stats(str(a.profile)).sort_stats("tottime").print_stats(25)
    print(f"report: {a.out}")
    print(report["summary"])


if __name__ == "__main__":
    main()
