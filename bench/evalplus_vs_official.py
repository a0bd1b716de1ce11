"""The harness's EvalPlus scorer against the official `evalplus.evaluate`, on the same files and machine.

Both verify the canonical solutions of the bundled HumanEval+ and MBPP+ problems on all base and plus
inputs, given as one EvalPlus samples file ({task_id, solution}) per dataset, read by evalplus and
replayed by the harness (`--model replay:FILE`). Each side runs cold (no ground-truth cache) and warm
(its cache filled by the cold run), interleaved, `--repeats` times; every run is a whole process,
timed from outside. The verdicts (base, and base-and-plus, per problem) must be identical.

    .venv/bin/python bench/evalplus_vs_official.py [--sandbox docker] [--repeats 3]

The official evaluator is installed into its own virtual environment (`--venv`, default
/tmp/evalplus-venv, `pip install evalplus==0.3.1`), pointed at the files with HUMANEVAL_OVERRIDE_PATH /
MBPP_OVERRIDE_PATH, and run with `--min_time_limit 4` (the harness's default; evalplus 0.3.1 defaults
to 1 s, which only changes the verdict of slow solutions). Its ground truth lives under
$XDG_CACHE_HOME/evalplus, the harness's under $XDG_CACHE_HOME/harness/evalplus: each run gets its own
XDG_CACHE_HOME, empty for the cold runs and kept for the warm ones.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tasks" / "evalplus" / "data"
SETS = {  # evalplus dataset -> (harness task, data file, override variable)
    "humaneval": ("evalplus/humaneval_plus", DATA / "HumanEvalPlus-v0.1.10.first20.jsonl.gz", "HUMANEVAL_OVERRIDE_PATH"),
    "mbpp": ("evalplus/mbpp_plus", DATA / "MbppPlus-v0.2.0.first20.jsonl.gz", "MBPP_OVERRIDE_PATH"),
}


def ensure_evalplus(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if subprocess.run([str(python), "-c", "import evalplus.evaluate"], capture_output=True).returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "-q", "evalplus==0.3.1"], check=True)
    return python


def write_samples(dataset: str, data: Path, out: Path) -> None:
    with gzip.open(data, "rt") as fh, open(out, "w") as w:
        for line in fh:
            rec = json.loads(line)
            w.write(json.dumps({"task_id": rec["task_id"], "solution": rec["prompt"] + rec["canonical_solution"]}) + "\n")


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return wall


def run_official(python: Path, dataset: str, samples: Path, cache: Path) -> tuple[float, dict[str, tuple[bool, bool]]]:
    _, data, var = SETS[dataset]
    result = samples.with_name(samples.stem + "_eval_results.json")
    result.unlink(missing_ok=True)
    env = {**os.environ, var: str(data), "XDG_CACHE_HOME": str(cache)}
    wall = timed([str(python), "-m", "evalplus.evaluate", "--dataset", dataset, "--samples", str(samples),
                  "--min_time_limit", "4"], env)
    verdicts = {tid: (r[0]["base_status"] == "pass", r[0]["base_status"] == r[0]["plus_status"] == "pass")
                for tid, r in json.loads(result.read_text())["eval"].items()}
    return wall, verdicts


def run_harness(dataset: str, samples: Path, cache: Path, db: Path, sandbox: str) -> tuple[float, dict[str, tuple[bool, bool]]]:
    task, data, _ = SETS[dataset]
    db.unlink(missing_ok=True)
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    wall = timed([str(ROOT / ".venv" / "bin" / "harness"), "eval", "--model", f"replay:{samples}", "--task", task,
                  "--data", str(data), "--sandbox", sandbox, "--db", f"sqlite:///{db}", "--json"], env)
    with sqlite3.connect(db) as con:
        rows = con.execute("select sample_id, scores, status from samples").fetchall()
    verdicts = {}
    for sid, scores, status in rows:
        s = json.loads(scores) if status == "scored" else {}
        verdicts[sid] = (s.get("base") == 1.0, s.get("plus") == 1.0)
    return wall, verdicts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sandbox", default="docker")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--venv", type=Path, default=Path("/tmp/evalplus-venv"))
    args = ap.parse_args()
    python = ensure_evalplus(args.venv)
    work = Path(tempfile.mkdtemp(prefix="evalplus-bench-"))
    times: dict[tuple[str, str, str], list[float]] = {}
    mismatches = []
    try:
        for rep in range(args.repeats):
            for dataset in SETS:
                samples = work / f"{dataset}_samples.jsonl"
                write_samples(dataset, SETS[dataset][1], samples)
                caches = {side: work / f"cache-{side}-{dataset}-{rep}" for side in ("official", "harness")}
                for temp in ("cold", "warm"):
                    if temp == "cold":
                        for c in caches.values():
                            shutil.rmtree(c, ignore_errors=True)
                    w_off, v_off = run_official(python, dataset, samples, caches["official"])
                    w_har, v_har = run_harness(dataset, samples, caches["harness"], work / "h.db", args.sandbox)
                    times.setdefault((dataset, temp, "official"), []).append(w_off)
                    times.setdefault((dataset, temp, "harness"), []).append(w_har)
                    if v_off != v_har:
                        mismatches.append((dataset, temp, rep, {k: (v_off.get(k), v_har.get(k))
                                                                for k in set(v_off) | set(v_har)
                                                                if v_off.get(k) != v_har.get(k)}))
                    print(f"{dataset:9s} {temp} rep {rep}: evalplus {w_off:6.2f} s  harness {w_har:6.2f} s  "
                          f"verdicts {'identical' if v_off == v_har else 'DIFFER'} "
                          f"({sum(p for _, p in v_har.values())}/{len(v_har)} pass plus)", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nmedians of {args.repeats} (wall s, whole process; harness sandbox: {args.sandbox})")
    print(f"{'dataset':10s} {'cache':5s} {'evalplus':>9s} {'harness':>9s} {'ratio':>6s}")
    for dataset in SETS:
        for temp in ("cold", "warm"):
            off = statistics.median(times[(dataset, temp, "official")])
            har = statistics.median(times[(dataset, temp, "harness")])
            print(f"{dataset:10s} {temp:5s} {off:9.2f} {har:9.2f} {har / off:6.2f}")
    for temp in ("cold", "warm"):
        off = sum(statistics.median(times[(d, temp, "official")]) for d in SETS)
        har = sum(statistics.median(times[(d, temp, "harness")]) for d in SETS)
        print(f"{'both':10s} {temp:5s} {off:9.2f} {har:9.2f} {har / off:6.2f}")
    if mismatches:
        print("VERDICTS DIFFER:", json.dumps(mismatches, default=str)[:4000])
        raise SystemExit(1)
    print("verdicts identical in every run")


if __name__ == "__main__":
    main()
