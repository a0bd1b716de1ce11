"""The store on SQLite and PostgreSQL: rows, calls, traces, views, resume bookkeeping, migrations."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

import harness
from harness._registry import UsageError
from harness._types import InfraError
from harness.model import MockModel
from harness.store import HEAD, Store


class FlakyMock(MockModel):
    """Fails (as an endpoint that gave up would) for chosen samples."""

    def __init__(self, failing: set[str]):
        super().__init__(self._respond)
        self.failing = failing

    def _respond(self, sample, messages):
        if sample.id in self.failing:
            raise InfraError("endpoint gave up after 3 attempts: HTTP 503")
        return f"<result>{sample.target}</result>"


def run(store: Store, model, run_id=None, **kw) -> str:
    return harness.eval("cipherbank", model, db=store, data="bundled", resume=run_id, **kw).run_id


def test_rows_calls_traces_and_views(db_url):
    store = Store(db_url)
    run_id = run(store, MockModel(lambda s, m: f"<result>{s.target}</result>"), limit=5, epochs=2)
    rt = store.run_tasks(run_id)[0]
    rows = store.samples(rt["id"])
    assert len(rows) == 10 and {r["epoch"] for r in rows} == {0, 1}
    row = rows[0]
    assert row["status"] == "scored" and row["score"] == 1.0 and row["answer"] == row["target"]
    assert "## Input:" in row["prompt"] and row["response"].startswith("<result>")
    trace = store.trace(row["trace_hash"])
    assert trace["messages"][0]["role"] == "system" and trace["messages"][-1]["role"] == "assistant"
    assert trace["calls"][0]["model"] == "mock"
    with store.engine.connect() as conn:
        n_v = conn.execute(text("select count(*) from samples_v where run_id = :r and model = 'mock'"),
                           {"r": run_id}).scalar()
        n_calls = conn.execute(text("select count(*) from calls_v where run_id = :r"), {"r": run_id}).scalar()
    assert n_v == 10 and n_calls == 10
    run_row = store.get_run(run_id[:15])  # a unique prefix finds the run
    assert run_row["id"] == run_id and run_row["status"] == "finished"
    assert run_row["environment"]["python"] and run_row["environment"]["packages"]["sqlalchemy"]
    assert run_row["plan"]["epochs"] == 2 and run_row["limiters"]["samples"]["max"] == 64
    assert rt["dataset"]["kind"] == "bundled" and rt["task_version"] == "1.0"


def test_errored_samples_are_not_model_failures_and_resume_retries_them(db_url):
    store = Store(db_url)
    task_samples = [s.id for s in __import__("harness").get_task("cipherbank").build().dataset.open("bundled")[1]]
    failing = set(task_samples[:7])
    run_id = run(store, FlakyMock(failing))
    rt = store.run_tasks(run_id)[0]
    assert store.status_counts(rt["id"]) == {"scored": 173, "error": 7}
    metrics = rt["metrics"]
    assert metrics["overall"]["accuracy"]["value"] == 100.0  # errors are excluded, not counted wrong
    assert metrics["overall"]["accuracy"]["n"] == 173 and metrics["counts"]["error"] == 7
    errored = store.samples(rt["id"], status="error")
    assert all("HTTP 503" in r["error"] for r in errored)

    run(store, FlakyMock(set()), run_id=run_id)  # resume: only the 7 errored samples are redone
    rt = store.run_tasks(run_id)[0]
    assert store.status_counts(rt["id"]) == {"scored": 180}
    assert rt["metrics"]["overall"]["accuracy"]["n"] == 180


def test_resume_does_nothing_twice(db_url):
    store = Store(db_url)
    calls = []
    model = MockModel(lambda s, m: calls.append(s.id) or "x")
    run_id = run(store, model, limit=20)
    assert len(calls) == 20
    run(store, model, run_id=run_id, limit=20)
    assert len(calls) == 20  # everything was done: no call made


def test_schema_is_at_head_and_head_is_the_newest_migration(db_url):
    store = Store(db_url)
    assert store.current_revision() == HEAD
    versions = Path(__file__).parent.parent / "harness" / "store" / "migrations" / "versions"
    revisions = {p.name.split("_")[0] for p in versions.glob("*.py")}
    assert HEAD == max(revisions)


def test_unopenable_database_is_a_clear_error(tmp_path):
    with pytest.raises(UsageError, match="cannot open database"):
        Store("postgresql+psycopg://nobody@127.0.0.1:1/none")
    with pytest.raises(UsageError, match="cannot open database"):
        Store("notadb://x")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UsageError, match="cannot open database"):
        Store(f"sqlite:///{blocker}/sub/h.db")
