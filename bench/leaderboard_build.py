"""Benchmark: build a leaderboard from 100 runs x 2,000 samples.

    .venv/bin/python bench/leaderboard_build.py [--db sqlite:////tmp/lb-bench.db] [--runs 100] [--samples 2000]

Fills the database once (reused when it already holds the runs) with CipherBank-shaped rows: a ~1.3 KB
prompt, a short response, one call and a compressed trace per sample, metrics JSON with per-cipher, per-category
and per-domain breakdowns. Then times, each in a fresh process state:
  cold        the first build into an empty folder (every run and sample page rendered)
  unchanged   the nightly case with nothing new: index and suite pages from SQL, run pages kept
  one new run a new run appears: it is rendered, the others are kept
"""
from __future__ import annotations

import argparse
import math
import random
import shutil
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from harness.leaderboards import build
from harness.scoring import wilson
from harness.store import Run, SampleResult, Store

CIPHERS = {"Rot13": "substitution", "Atbash": "substitution", "Polybius": "substitution", "Vigenere": "substitution",
           "Reverse": "transposition", "SwapPairs": "transposition", "ParityShift": "custom",
           "DualAvgCode": "custom", "WordShift": "custom"}
DOMAINS = ["Personal Privacy Data", "Enterprise Sensitive Data", "Public Safety Data", "Financial Confidential Data",
           "Internet Records"]
PROMPT = ("Please decrypt the ciphertext below. You are given 3 examples of plaintext and ciphertext pairs " * 4
          + "\n\nExample {i}: plaintext: Name: Alice Smith, Account: 4929-1234-5678, Balance: $12,345.67\n") * 3


def metric(values: list[float], binary: bool) -> dict:
    n = len(values)
    mean = sum(values) / n
    if binary:
        lo, hi = wilson(mean, n)
    else:  # a normal interval keeps the fixture cheap; the leaderboard only reads the stored numbers
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / max(1, n - 1))
        lo, hi = max(0.0, mean - 1.96 * sd / math.sqrt(n)), min(1.0, mean + 1.96 * sd / math.sqrt(n))
    scale = 100.0 if binary else 1.0
    return {"value": mean * scale, "ci_low": lo * scale, "ci_high": hi * scale, "n": n}


def metrics(rows: list[dict]) -> dict:
    def agg(subset):
        return {"accuracy": metric([r["score"] for r in subset], True),
                "levenshtein_similarity": metric([r["scores"]["levenshtein"] for r in subset], False)}

    by = {}
    for key in ("cipher", "category", "domain"):
        groups: dict[str, list] = {}
        for r in rows:
            groups.setdefault(r["metadata"][key], []).append(r)
        by[key] = {g: agg(groups[g]) for g in sorted(groups)}
    return {"overall": agg(rows), "by": by, "headline": "accuracy", "counts": {"scored": len(rows), "error": 0}}


def fill(store: Store, runs: int, samples: int) -> None:
    for i in range(runs):
        add_run(store, f"bench-{i:03d}", f"org/model-{i:03d}", samples, random.Random(i),
                datetime(2026, 1, 1) + timedelta(hours=i))


def add_run(store: Store, run_id: str, model: str, samples: int, rng: random.Random, created_at: datetime) -> None:
    store.create_run(id=run_id, model=model, model_info={"endpoint": "http://localhost:8000/v1"},
                     generate_config={"temperature": 0.0}, base_url=None, seed=0, epochs=1,
                     plan={"model": model, "tasks": [{"name": "cipherbank", "variant": "default", "args": {}}]},
                     limiters={}, environment={"harness_version": "0.1.0"}, command=f"harness eval -m {model}")
    rt = store.run_task(run_id, "cipherbank", "default", task_args={}, task_version="1.0",
                        dataset={"kind": "hub", "location": "yu0226/CipherBank", "sha256": "0" * 64},
                        samples_planned=samples)
    skill = rng.random()
    results, rows = [], []
    for j in range(samples):
        cipher = list(CIPHERS)[j % 9]
        ok = rng.random() < skill * (1.0 if CIPHERS[cipher] != "custom" else 0.4)
        target = f"Name: Person {j}, Account: {j * 7919 % 10**8:08d}, Balance: ${j * 13.37:.2f}"
        response = f"<result>{target if ok else target[::-1]}</result>"
        meta = {"cipher": cipher, "category": CIPHERS[cipher], "domain": DOMAINS[j % 5], "sub_domain": "x"}
        lev = 1.0 if ok else rng.uniform(0.2, 0.9)
        row = {"sample_id": f"{cipher}-{j:05d}", "epoch": 0, "status": "scored", "score": float(ok),
               "scores": {"correct": float(ok), "levenshtein": lev}, "answer": response[8:-9], "target": target,
               "prompt": PROMPT.format(i=j), "response": response, "error_category": None if ok else "wrong_characters",
               "explanation": None, "metadata": meta, "input_tokens": 420 + j % 50, "output_tokens": 40 + j % 9,
               "latency_s": 0.8}
        rows.append(row)
        call = {"sample_id": row["sample_id"], "epoch": 0, "idx": 0, "kind": "model", "model": model,
                "input_tokens": row["input_tokens"], "output_tokens": row["output_tokens"], "latency_s": 0.8,
                "attempts": 1, "error": None, "started_at": 0.0}
        trace = {"messages": [{"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": response}],
                 "calls": [{"kind": "model", "model": model, "text": response, "input_tokens": row["input_tokens"],
                            "output_tokens": row["output_tokens"], "latency_s": 0.8, "attempts": [], "error": None}],
                 "scores": [{"value": float(ok)}], "metadata": {}}
        results.append(SampleResult(rt, row, [call], trace))
    store.write(results)
    store.set_metrics(rt, metrics(rows))
    store.set_run_status(run_id, "finished")
    with store.engine.begin() as conn:  # spread the runs over time, as nights would
        conn.execute(Run.__table__.update().where(Run.id == run_id).values(created_at=created_at))


def timed(label: str, store: Store, out: Path, workers: int | None = None) -> float:
    result = build(store, out, record=False, workers=workers)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"{label:12s} {result.seconds:7.2f} s  runs rendered {result.runs_rendered:3d}/{result.runs}  "
          f"sample pages {result.sample_pages:5d}  site {size / 1e6:7.1f} MB")
    return result.seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default="sqlite:////tmp/lb-bench.db")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--samples", type=int, default=2000)
    args = ap.parse_args()
    store = Store(args.db)
    with store.engine.connect() as conn:
        have = conn.execute(select(func.count()).select_from(Run).where(Run.id.like("bench-%"))).scalar()
    if have != args.runs:
        if have:
            raise SystemExit(f"{args.db} holds {have} bench runs, not {args.runs}: use a fresh --db")
        t = time.perf_counter()
        fill(store, args.runs, args.samples)
        print(f"filled {args.runs} runs x {args.samples} samples in {time.perf_counter() - t:.1f} s")
    out = Path(tempfile.mkdtemp(prefix="lb-bench-"))
    try:
        timed("cold", store, out)
        timed("unchanged", store, out)
        # the next night, one model has a new run: it replaces that model's old run on the board
        add_run(store, "bench-extra", "org/model-000", args.samples, random.Random(-1), datetime(2027, 1, 1))
        timed("one new run", store, out)
        for workers in (1, 2):
            shutil.rmtree(out)
            timed(f"cold, {workers} proc", store, out, workers=workers)
    finally:
        with store.engine.begin() as conn:  # leave the database as filled, for the next measurement
            conn.execute(Run.__table__.delete().where(Run.id == "bench-extra"))
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
