#!/usr/bin/env python3
"""The PostgreSQL work queue (`harness worker`, harness/_worker.py) with 1, 2 and 4 workers, beside the
single-process runner, on the anchor workload (bench/echo_task.py) against the anchor bench's loopback server.

    export HARNESS_TEST_PG_URL=$(bash .ci/setup-postgres.sh)   # as root
    .venv/bin/python bench/work_queue.py --n 10000 --workers 1,2,4

Each config gets a fresh database and a fresh server (100 ms per request); each worker has 64 samples in
flight (max_connections=64). The run is queued through harness.eval with an executor that submits nothing
and the workers are started as plain processes, as each Slurm array task starts one (sbatch's own scheduling
delay is not the harness's). Reported: wall from the first worker's start to the last one's exit, samples
per second, and per sample the database time of the queue itself (claim, heartbeat, reap, drained checks,
summed over workers) and of storing results (the rows a local run stores too, plus marking items done).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ANCHOR = REPO.parent / "shared" / "bench" / "anchor-bench"
HARNESS = str(REPO / ".venv" / "bin" / "harness")
ENV = {**os.environ, "OPENAI_API_KEY": "fake", "HF_HUB_OFFLINE": "1"}


@dataclass
class QueueOnly:
    def submit(self, runner) -> None:
        runner.store.set_executor(runner.run_id, {"kind": "bench", "workers": 0, "lease_s": 60.0, "max_attempts": 3})


def fresh_db(admin: str) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"harness_bench_{uuid.uuid4().hex[:8]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(admin).set(database=name).render_as_string(hide_password=False)


def drop_db(admin: str, url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    engine.dispose()


def server() -> tuple[subprocess.Popen, str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, str(ANCHOR / "fakeserver.py"), str(port), "--latency", "0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1)
            break
        except OSError:
            time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port}/v1"


def one(config: str, data: Path, n: int, admin: str) -> dict:
    import harness

    db = fresh_db(admin)
    proc, url = server()
    options = dict(base_url=url, data=str(data), model_args={"max_connections": 64, "max_tokens": 16}, db=db)
    try:
        if config == "local":
            t0 = time.perf_counter()
            out = subprocess.run([HARNESS, "eval", "-m", "openai/fake-model", "--base-url", url, "-t",
                                  str(HERE / "echo_task.py"), "--data", str(data), "--db", db, "-M",
                                  "max_connections=64", "-M", "max_tokens=16", "--json"],
                                 capture_output=True, text=True, env=ENV)
            wall = time.perf_counter() - t0
            assert out.returncode == 0, out.stderr[-2000:]
            return {"config": "local", "n": n, "wall_s": round(wall, 2), "samples_per_s": round(n / wall, 1)}
        workers = int(config)
        run_id = harness.eval(str(HERE / "echo_task.py"), "openai/fake-model", executor=QueueOnly(),
                              **options).run_id
        t0 = time.perf_counter()
        procs = [subprocess.Popen([HARNESS, "worker", run_id, "--db", db, "--json"], env=ENV,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(workers)]
        reports = []
        for p in procs:
            o, e = p.communicate()
            assert p.returncode == 0, e[-2000:]
            reports.append(json.loads(o.strip().splitlines()[-1]))
        wall = time.perf_counter() - t0
        from harness.store import Store

        store = Store(db)
        counts = store.status_counts(store.run_tasks(run_id)[0]["id"])
        assert counts.get("scored") == n and store.get_run(run_id)["status"] == "finished", counts
        store.close()
        return {"config": f"{workers} workers", "n": n, "wall_s": round(wall, 2), "samples_per_s": round(n / wall, 1),
                "queue_db_ms_per_sample": round(1000 * sum(r["queue_db_s"] for r in reports) / n, 3),
                "write_db_ms_per_sample": round(1000 * sum(r["write_db_s"] for r in reports) / n, 3),
                "solved": [r["solved"] for r in reports]}
    finally:
        proc.terminate()
        proc.wait(10)
        drop_db(admin, db)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--local", action=argparse.BooleanOptionalAction, default=True,
                    help="also the single-process runner (default: yes)")
    a = ap.parse_args()
    admin = os.environ.get("HARNESS_TEST_PG_URL")
    if not admin:
        sys.exit("set HARNESS_TEST_PG_URL (bash .ci/setup-postgres.sh prints it)")
    data = Path(tempfile.mkdtemp(prefix="harness-wq-")) / "data.jsonl"
    with open(data, "w") as f:
        for i in range(a.n):
            f.write(json.dumps({"id": f"s{i:05d}", "input": f"Repeat the code word: w{i:05d}", "target": f"w{i:05d}"})
                    + "\n")
    configs = (["local"] if a.local else []) + a.workers.split(",")
    rows = []
    for c in configs:
        r = one(c, data, a.n, admin)
        rows.append(r)
        print(json.dumps(r), file=sys.stderr)
    print(f"\n{a.n} samples, 100 ms latency, 64 in flight per process, PostgreSQL on loopback, {os.cpu_count()} CPUs\n")
    print("| config | wall s | samples/s | queue DB ms / sample | write DB ms / sample |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['config']} | {r['wall_s']} | {r['samples_per_s']} | {r.get('queue_db_ms_per_sample', '-')} | "
              f"{r.get('write_db_ms_per_sample', '-')} |")


if __name__ == "__main__":
    main()
