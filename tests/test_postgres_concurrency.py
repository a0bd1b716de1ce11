"""Two real `harness eval` processes writing into one fresh database at once: every row lands exactly once.

Runs against PostgreSQL (the shared-store case) and SQLite (WAL with a busy timeout), both starting from an
empty database, so the two processes also race to create the schema."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, func, select

from harness import get_task
from harness.store import CallRow, Run, RunTask, SampleRow, Trace

HARNESS = Path(sys.executable).parent / "harness"


def _bundled_ids(variant: str = "default") -> set[str]:
    _, stream = get_task("cipherbank").build(variant).dataset.open("bundled")
    return {s.id for s in stream}


def test_two_evals_at_once_lose_nothing(db_url, tmp_path):
    env = {**os.environ, "HARNESS_DB_URL": db_url}
    cmds = [[str(HARNESS), "eval", "--model", model, "--task", "cipherbank", "--task", "cipherbank@hint",
             "--data", "bundled", "--max-samples", "8", "--json"]
            for model in ("reference", "mock")]
    procs = [subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
             for c in cmds]
    outs = [p.communicate(timeout=180) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]

    expected = {"default": _bundled_ids("default"), "hint": _bundled_ids("hint")}
    engine = create_engine(db_url)
    with engine.connect() as conn:
        runs = conn.execute(select(Run.id, Run.model, Run.status)).all()
        assert sorted(r.model for r in runs) == ["mock", "reference"]
        assert all(r.status == "finished" for r in runs)
        for run in runs:
            tasks = conn.execute(select(RunTask.id, RunTask.variant).where(RunTask.run_id == run.id)).all()
            assert sorted(t.variant for t in tasks) == ["default", "hint"]
            for rt in tasks:
                rows = conn.execute(select(SampleRow.sample_id, SampleRow.epoch, SampleRow.status)
                                    .where(SampleRow.run_task_id == rt.id)).all()
                assert len(rows) == len({(r.sample_id, r.epoch) for r in rows})  # exactly once
                assert {r.sample_id for r in rows} == expected[rt.variant]  # nothing lost
                assert all(r.status == "scored" for r in rows)
                n_calls = conn.execute(select(func.count()).select_from(CallRow)
                                       .where(CallRow.run_task_id == rt.id)).scalar()
                assert n_calls == len(rows)
        # every sample's trace is stored (content-addressed, so shared traces are stored once)
        missing = conn.execute(select(func.count()).select_from(SampleRow)
                               .outerjoin(Trace, Trace.hash == SampleRow.trace_hash).where(Trace.hash.is_(None))).scalar()
        assert missing == 0
        reference = next(r for r in runs if r.model == "reference")
        scores = conn.execute(select(func.min(SampleRow.score)).join(RunTask, RunTask.id == SampleRow.run_task_id)
                              .where(RunTask.run_id == reference.id)).scalar()
        assert scores == 1.0
    engine.dispose()
