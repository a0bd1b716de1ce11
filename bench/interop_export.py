"""Benchmark: export a 2,000-sample run as an Inspect log and as Every Eval Ever records, against the database size.

    .venv/bin/python bench/interop_export.py [--samples 2000] [--reps 3] [--dir /tmp/interop-bench]

The run is SYNTHETIC: a local file in CipherBank's upstream format made by repeating the bundled records with a
numbered plaintext (so every sample id differs; the ciphertexts are the bundled ones, which does not matter for
a mock model), evaluated with `harness eval --model mock` answering a fixed ~150-character response. Each sample
row carries CipherBank's ~1.3 KB prompt, one model call and a compressed trace, as a real CipherBank run does.

Times `harness export RUN --format inspect|eee` end to end (a fresh process each: import, reading the rows and
traces, writing), median of --reps, and prints the sizes: the SQLite file (after a WAL checkpoint) and what each
export wrote.
"""
from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HARNESS = Path(sys.executable).parent / "harness"
BUNDLED = REPO / "tasks" / "cipherbank" / "data" / "test.jsonl"
RESPONSE = "Let me work through the cipher step by step. <result>Name: Emily Johnson; Date of Birth: July 15</result>"


def make_data(path: Path, samples: int) -> None:
    records = [json.loads(line) for line in BUNDLED.read_text().splitlines() if line.strip()]
    ciphers = 9  # each upstream record is one sample per cipher column
    with path.open("w") as fh:
        for i in range((samples + ciphers - 1) // ciphers):
            record = dict(records[i % len(records)])
            record["plaintext"] = f"{record['plaintext']} #{i}"
            fh.write(json.dumps(record) + "\n")


def run(*args: str) -> str:
    done = subprocess.run([str(HARNESS), *args], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"harness {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--dir", default="/tmp/interop-bench")
    args = ap.parse_args()
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    db_file = folder / "bench.db"
    db = f"sqlite:///{db_file}"
    data = folder / "cipherbank-synthetic.jsonl"
    if not db_file.exists():
        make_data(data, args.samples)
        run("eval", "--model", "mock", "-M", f"text={RESPONSE}", "--task", "cipherbank", "--data", str(data),
            "--limit", str(args.samples), "--db", db, "-q", "--json")
    run_id = json.loads(run("runs", "--db", db, "--json"))[0]["id"]
    with sqlite3.connect(db_file) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        rows = conn.execute("select count(*) from samples").fetchone()[0]
    print(f"synthetic run {run_id}: {rows} samples; database {db_file.stat().st_size / 1e6:.2f} MB")
    for fmt in ("inspect", "eee"):
        times = []
        for _ in range(args.reps):
            out = folder / f"out-{fmt}"
            subprocess.run(["rm", "-rf", str(out)], check=True)
            t0 = time.perf_counter()
            run("export", run_id, "--format", fmt, "--out", str(out), "--db", db)
            times.append(time.perf_counter() - t0)
        written = size(out)
        print(f"{fmt:8s} export {statistics.median(times):6.2f} s (median of {args.reps}; min {min(times):.2f}), "
              f"{written / 1e6:.2f} MB written = {written / db_file.stat().st_size:.2f}x the database")


if __name__ == "__main__":
    main()
