#!/usr/bin/env python3
"""`harness eval` beside the anchor benchmark's transport floor, on the anchor workload.

Uses ../shared/bench/anchor-bench/fakeserver.py (100 ms per request) and its data format: 2,000 samples,
concurrency 64, ideal wall 2,000 x 0.1 / 64 = 3.125 s. Each run is a whole process under /usr/bin/time -v,
with a fresh server and a fresh SQLite database; configs interleave; medians over --reps.

    .venv/bin/python bench/anchor.py --reps 5            # harness and raw aiohttp, 2,000 samples
    .venv/bin/python bench/anchor.py --reps 3 --n 1      # start-up cost

Reported per config: wall (and / ideal), CPU s and CPU ms per sample (user+sys of the tool's process tree),
the server-seen request span (and / ideal), peak RSS. The harness figure includes the store writes
(one row, its calls and its compressed trace per sample) and scoring.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ANCHOR = Path(os.environ.get("ANCHOR_BENCH", REPO.parent / "shared" / "bench" / "anchor-bench"))
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(argv: list[str], env: dict[str, str]) -> dict:
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        proc = subprocess.run(["/usr/bin/time", "-v", "-o", tf.name, *argv], capture_output=True, text=True, env=env,
                              stdin=subprocess.DEVNULL)
        report = tf.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:3]} failed: {proc.stderr[-800:]}")

    def field(name: str) -> str:
        return re.search(rf"{re.escape(name)}: (.+)", report).group(1).strip()

    h, m, s = (["0"] + field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":"))[-3:]
    return {"wall_s": int(h) * 3600 + int(m) * 60 + float(s),
            "cpu_s": float(field("User time (seconds)")) + float(field("System time (seconds)")),
            "rss_mib": int(field("Maximum resident set size (kbytes)")) / 1024, "stdout": proc.stdout}


def run_one(config: str, data: Path, n: int, work: Path) -> dict:
    port = free_port()
    server = subprocess.Popen([PY, str(ANCHOR / "fakeserver.py"), str(port), "--latency", "0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/v1"
        env = {**os.environ, "OPENAI_API_KEY": "fake", "HF_HUB_OFFLINE": "1"}
        if config == "harness":
            db = work / f"bench-{time.time_ns()}.db"
            argv = [str(REPO / ".venv" / "bin" / "harness"), "eval", "-m", "openai/fake-model", "--base-url", url,
                    "-t", str(HERE / "echo_task.py"), "--data", str(data), "--db", f"sqlite:///{db}",
                    "-M", "max_connections=64", "-M", "max_tokens=16", "--json"]
        else:
            argv = [PY, str(ANCHOR / "raw_aiohttp.py"), str(data), url, "--concurrency", "64"]
        result = timed(argv, env)
        stats = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/stats").read())
        if config == "harness":
            summary = json.loads(result["stdout"])
            ok = summary["tasks"][0]["metrics"]["overall"]["accuracy"]["value"] == 100.0
            ok = ok and summary["tasks"][0]["counts"] == {"scored": n}
        else:
            ok = json.loads(result["stdout"].strip().splitlines()[-1])["correct"] == n
        return {"config": config, "n": n, "ok": ok, "span_s": stats.get("active_span_s"),
                "max_in_flight": stats.get("max_in_flight"), **{k: v for k, v in result.items() if k != "stdout"}}
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--configs", default="harness,raw_aiohttp")
    ap.add_argument("--out", type=Path, default=None, help="append each run as a JSON line")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="harness-anchor-"))
    data = work / f"data-{a.n}.jsonl"
    with open(data, "w") as f:
        for i in range(a.n):
            f.write(json.dumps({"id": f"s{i:05d}", "input": f"Repeat the code word: w{i:05d}",
                                "target": f"w{i:05d}"}) + "\n")
    configs = a.configs.split(",")
    for c in configs:  # warm-up: disk caches, .pyc files
        run_one(c, data, a.n, work)
    runs = []
    for rep in range(a.reps):
        for c in configs[rep % len(configs):] + configs[:rep % len(configs)]:
            r = run_one(c, data, a.n, work)
            runs.append(r)
            print(json.dumps(r), file=sys.stderr)
            if a.out:
                with open(a.out, "a") as f:
                    f.write(json.dumps(r) + "\n")
    ideal = a.n * 0.1 / 64
    print(f"\n{a.n} samples, concurrency 64, 100 ms latency, ideal {ideal:.3f} s; medians of {a.reps}\n")
    print("| config | all ok | wall s | wall / ideal | CPU s | CPU ms / sample | request span s | span / ideal | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for c in configs:
        rs = [r for r in runs if r["config"] == c]
        med = lambda k: statistics.median(r[k] for r in rs if r[k] is not None)  # noqa: E731
        print(f"| {c} | {all(r['ok'] for r in rs)} | {med('wall_s'):.2f} | {med('wall_s') / ideal:.2f}x | "
              f"{med('cpu_s'):.2f} | {1000 * med('cpu_s') / a.n:.2f} | {med('span_s'):.2f} | "
              f"{med('span_s') / ideal:.2f}x | {med('rss_mib'):.0f} |")


if __name__ == "__main__":
    main()
