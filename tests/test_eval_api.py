"""harness.eval / harness.eval_async, the public API the CLI, nightly and rescore run through: every way of naming
a task, a model given as a spec or a client, what RunResult reads back, resume, and bad input as one clear line."""
from __future__ import annotations

import asyncio

import pytest

import harness
from harness import TaskRef, UsageError
from harness.model import MockModel


def right(sample, _messages) -> str:
    return f"<result>{sample.target}</result>"


def test_tasks_by_name_variant_ref_and_dict_in_one_run(db_url):
    result = harness.eval(["cipherbank@hint", TaskRef("cipherbank", "no_system"), {"name": "cipherbank"}],
                          "reference", db=db_url, data="bundled", limit=3)
    assert result.status == "finished" and result.store_url == db_url
    assert list(result.metrics) == ["cipherbank@hint", "cipherbank@no_system", "cipherbank"]
    assert all(m["overall"]["accuracy"]["value"] == 100.0 and m["complete"] for m in result.metrics.values())
    rows = result.samples()
    assert len(rows) == 9 and {r["task"] for r in rows} == set(result.metrics)
    hint = result.samples("cipherbank@hint")
    assert len(hint) == 3 and all(r["status"] == "scored" and r["task"] == "cipherbank@hint" for r in hint)
    # the hint variant's prompt differs from the default's: the variant was run, not only named
    default = {r["sample_id"]: r["prompt"] for r in result.samples("cipherbank")}
    assert all(r["prompt"] != default[r["sample_id"]] for r in hint)
    with pytest.raises(UsageError, match="has no task 'aegis'; it has: cipherbank@hint, cipherbank@no_system"):
        result.samples("aegis")


def test_a_client_instance_is_stored_by_its_name_and_task_args_reach_the_task(tmp_path):
    db = f"sqlite:///{tmp_path / 'h.db'}"
    result = harness.eval("cipherbank", MockModel(right, name="my-model"), db=db, data="bundled",
                          sample_ids=["Atbash-02752bcc14"], epochs=2, seed=7)
    run = result.store.get_run(result.run_id)
    assert run["model"] == "my-model" and run["seed"] == 7 and run["epochs"] == 2
    assert [(r["sample_id"], r["epoch"], r["score"]) for r in result.samples()] == [
        ("Atbash-02752bcc14", 0, 1.0), ("Atbash-02752bcc14", 1, 1.0)]


def test_resume_continues_the_stored_plan(tmp_path):
    db = f"sqlite:///{tmp_path / 'h.db'}"
    failing = {"n": 0}

    def flaky(sample, messages):
        failing["n"] += 1
        if failing["n"] % 2:
            raise harness.InfraError("endpoint gave up after 3 attempts: HTTP 503")
        return right(sample, messages)

    first = harness.eval("cipherbank", MockModel(flaky), db=db, data="bundled", limit=6, max_samples=1)
    assert first.metrics["cipherbank"]["counts"] == {"scored": 3, "error": 3, "planned": 6}
    # no tasks, no plan options: the stored plan (cipherbank, bundled, limit 6) is continued with this model
    again = harness.eval(model=MockModel(right), db=db, resume=first.run_id[:12])
    assert again.run_id == first.run_id
    assert again.metrics["cipherbank"]["counts"] == {"scored": 6, "error": 0, "planned": 6}


async def test_inside_an_event_loop_eval_says_to_await_eval_async(tmp_path):
    db = f"sqlite:///{tmp_path / 'h.db'}"
    with pytest.raises(UsageError, match=r"inside a running event loop; use `await harness.eval_async\(...\)`"):
        harness.eval("cipherbank", "reference", db=db, data="bundled", limit=1)
    result = await harness.eval_async("cipherbank", "reference", db=db, data="bundled", limit=1)
    assert result.metrics["cipherbank"]["counts"]["scored"] == 1


@pytest.mark.parametrize("call, message", [
    (lambda db: harness.eval([], "reference", db=db), "an empty list of tasks; name at least one"),
    (lambda db: harness.eval([42], "reference", db=db),
     "a task is a name, 'name@variant', a TaskRef or a Task, not int"),
    (lambda db: harness.eval("cipherbank", db=db), "needs tasks and a model (or resume=RUN_ID)"),
    (lambda db: harness.eval("cipherbank", "refrence", db=db), "unknown model 'refrence' (did you mean 'reference'?)"),
    (lambda db: harness.eval("cipherbank", "reference", db=db, sandbox="dockr"),
     "'dockr' is not a sandbox (did you mean 'docker'?)"),
    (lambda db: harness.eval(model="reference", db=db, resume="nosuchrun"), "no run 'nosuchrun' in"),
])
def test_bad_input_is_a_usage_error_and_leaves_no_run(tmp_path, call, message):
    db = f"sqlite:///{tmp_path / 'h.db'}"
    harness.eval("cipherbank", "reference", db=db, data="bundled", limit=1)  # the database exists; one run
    with pytest.raises(UsageError) as e:
        call(db)
    assert message in str(e.value)
    assert len(harness.eval(model="reference", db=db, resume=_only_run(db)).samples()) == 1


def _only_run(db: str) -> str:
    from harness.store import Store

    (run,) = Store(db, create=False).list_runs()
    return run["id"]


def test_the_run_api_is_loaded_on_first_use():
    import subprocess
    import sys

    code = ("import sys, harness; assert 'sqlalchemy' not in sys.modules and 'harness._eval' not in sys.modules; "
            "harness.eval; assert 'harness._eval' in sys.modules")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert asyncio.iscoroutinefunction(harness.eval_async)
