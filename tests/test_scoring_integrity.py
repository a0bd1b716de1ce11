"""Who a failure belongs to, and what reaches the store, on SQLite and PostgreSQL: errored samples are counted
beside every value, a context-length rejection is the model's scored failure, a judge without a verdict is an
infrastructure error, odd text is stored escaped, one unwritable row fails alone, and a run is leased."""
from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import text, update

import harness
from harness._registry import UsageError, get_task
from harness._types import ContextLengthExceeded, InfraError, ModelCall, Score
from harness.judge import JudgeNoVerdict, ask
from harness.model import MockModel
from harness.store import SampleResult, Store
from harness.store._schema import JudgeCacheRow, Run
from harness.store._store import lease_owner, utcnow

RIGHT = MockModel(lambda s, m: f"<result>{s.target}</result>")


class Scripted(MockModel):
    """Right answers, except: `fail` ids give up (infrastructure), `long` ids are refused as over the context."""

    def __init__(self, fail=(), long=()):
        super().__init__(self._respond)
        self.fail, self.long, self.asked = set(fail), set(long), []

    def _respond(self, sample, messages):
        self.asked.append(sample.id)
        if sample.id in self.fail:
            raise InfraError("gave up after 3 attempts: HTTP 503")
        if sample.id in self.long:
            call = ModelCall("model", "m", messages, {}, error="HTTP 400: context_length_exceeded")
            raise ContextLengthExceeded("the prompt is longer than the model's context: HTTP 400", call)
        return f"<result>{sample.target}</result>"


def ids(n: int) -> list[str]:
    _, stream = get_task("cipherbank").build().dataset.open("bundled")
    return [s.id for s, _ in zip(stream, range(n))]


def run(store, model, run_id=None, **kw) -> str:
    return harness.eval("cipherbank", model, db=store, data="bundled", resume=run_id, **kw).run_id


def test_errored_samples_are_counted_beside_the_value_and_the_task_is_incomplete(db_url):
    """19 errored + 1 right used to read as 100% with nothing else said: the value is still over the scored
    samples, but the counts travel with it and the task is marked incomplete."""
    store = Store(db_url)
    first = ids(20)
    run_id = run(store, Scripted(fail=first[1:]), limit=20)
    m = store.run_tasks(run_id)[0]["metrics"]
    assert m["overall"]["accuracy"]["value"] == 100.0 and m["overall"]["accuracy"]["n"] == 1
    assert m["counts"] == {"scored": 1, "error": 19, "planned": 20}
    assert m["complete"] is False
    run(store, Scripted(), run_id=run_id, limit=20)  # a resume retries the errored ones: then it is complete
    m = store.run_tasks(run_id)[0]["metrics"]
    assert m["counts"] == {"scored": 20, "error": 0, "planned": 20} and m["complete"] is True


def test_a_context_length_rejection_is_the_models_scored_failure_and_is_not_retried(db_url):
    store = Store(db_url)
    first = ids(6)
    model = Scripted(long=first[:2])
    run_id = run(store, model, limit=6)
    rt = store.run_tasks(run_id)[0]
    rows = {r["sample_id"]: r for r in store.samples(rt["id"])}
    for sid in first[:2]:
        assert rows[sid]["status"] == "scored" and rows[sid]["score"] == 0.0
        assert rows[sid]["error_category"] == "context_length" and "context" in rows[sid]["explanation"]
        assert store.trace(rows[sid]["trace_hash"])["calls"][0]["error"] == "HTTP 400: context_length_exceeded"
    assert rt["metrics"]["overall"]["accuracy"]["value"] == pytest.approx(100 * 4 / 6)
    assert rt["metrics"]["complete"] is True
    model.asked.clear()
    run(store, model, run_id=run_id, limit=6)
    assert model.asked == []  # a resume does not ask again: the answer would be the same refusal


def test_a_judge_without_a_verdict_is_an_infrastructure_error_not_a_wrong_answer(db_url):
    """The reference answers with a judge that says neither True nor False: before, gold answers scored 0."""
    store = Store(db_url)

    async def judged(state, ctx):
        reply = await ask(ctx, state, ctx.judges["default"], f"Is {state.completion!r} right? True/False", {})
        if reply.text.strip() not in ("True", "False"):
            raise JudgeNoVerdict("default", "no True/False", reply.text)
        return Score(value=float(reply.text.strip() == "True"))

    def run_judged(judge, run_id=None) -> str:
        judged_task = dataclasses.replace(get_task("cipherbank").build(), scorers=[judged])
        return harness.eval(judged_task, RIGHT, db=store, data="bundled", limit=3, judges={"default": judge},
                            resume=run_id).run_id

    run_id = run_judged(MockModel("I cannot tell."))
    rt = store.run_tasks(run_id)[0]
    rows = store.samples(rt["id"])
    assert [r["status"] for r in rows] == ["error"] * 3
    assert all("judge default gave no verdict: no True/False; it answered 'I cannot tell.'" == r["error"] for r in rows)
    assert rt["metrics"]["counts"]["scored"] == 0 and rt["metrics"]["complete"] is False
    with store.engine.connect() as conn:  # the unusable answers are not kept: a resume asks the judge again
        assert conn.execute(text(f"select count(*) from {JudgeCacheRow.__tablename__}")).scalar() == 0
    run_judged(MockModel("True"), run_id=run_id)
    assert store.status_counts(rt["id"]) == {"scored": 3}


@pytest.mark.parametrize("odd", ["\ud800", "\x00", "a\udfff\x00b"])
def test_text_that_cannot_be_stored_is_stored_escaped_and_the_row_says_so(db_url, odd):
    store = Store(db_url)
    run_id = run(store, MockModel(lambda s, m: f"<result>{s.target}</result> {odd}"), limit=5)
    rt = store.run_tasks(run_id)[0]
    rows = store.samples(rt["id"])
    assert len(rows) == 5 and all(r["status"] == "scored" and r["score"] == 1.0 for r in rows)
    assert all(r["escaped"] == ["response"] for r in rows)
    stored = rows[0]["response"]
    assert stored.endswith(odd.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\x00"))
    assert store.trace(rows[0]["trace_hash"])["messages"][-1]["content"].endswith(odd)  # the trace keeps it exact
    run(store, RIGHT, run_id=run_id, limit=5)  # and a resume reads it back without trouble
    assert store.status_counts(rt["id"]) == {"scored": 5}


def test_one_unwritable_result_fails_alone_and_the_batch_is_kept(db_url):
    store = Store(db_url)
    run_id = run(store, RIGHT, limit=1)
    rt_id = store.run_tasks(run_id)[0]["id"]
    base = {"status": "scored", "score": 1.0, "epoch": 0, "metadata": {}}
    results = [SampleResult(rt_id, {**base, "sample_id": f"s{i}"}, [], {"i": i}) for i in range(5)]
    results[2].row["metadata"] = {"cannot be JSON": {1, 2}}  # a set: the JSON column cannot hold it
    problems = store.write(results)
    assert len(problems) == 1 and "'s2'" in problems[0] and "TypeError" in problems[0]
    rows = {r["sample_id"]: r for r in store.samples(rt_id)}
    assert [rows[f"s{i}"]["status"] for i in (0, 1, 3, 4)] == ["scored"] * 4
    assert rows["s2"]["status"] == "error" and rows["s2"]["error"].startswith("could not store this sample's result")


def test_a_run_is_leased_a_fresh_lease_refuses_a_stale_one_is_taken(db_url):
    store = Store(db_url)
    run_id = run(store, RIGHT, limit=1)
    assert store.get_run(run_id)["lease_owner"] is None  # finished: given up

    def hold(owner, age_s):
        with store.engine.begin() as conn:
            conn.execute(update(Run).where(Run.id == run_id).values(
                status="running", lease_owner=owner, heartbeat_at=utcnow() - timedelta(seconds=age_s)))

    hold("gpu-node-7:4242", 3)  # another host, heartbeat 3 s ago: being worked on
    assert store.get_run(run_id)["status"] == "running"
    with pytest.raises(UsageError, match=f"run {run_id} is being worked on by gpu-node-7:4242, last heartbeat 3 s ago"):
        store.acquire_lease(run_id)
    hold("gpu-node-7:4242", 600)  # its heartbeat stopped ten minutes ago
    assert store.get_run(run_id)["status"] == "interrupted"
    assert [r["status"] for r in store.list_runs() if r["id"] == run_id] == ["interrupted"]
    store.acquire_lease(run_id)
    assert store.get_run(run_id)["lease_owner"] == lease_owner()
    hold(f"{lease_owner().rpartition(':')[0]}:999999999", 1)  # this host, a pid that does not exist: killed
    assert store.get_run(run_id)["status"] == "interrupted"
    store.acquire_lease(run_id)


def test_ineqmaths_gold_answers_with_a_judge_that_gives_no_verdict_are_errors_not_zeros(db_url):
    """The reference model answers every IneqMath problem with its gold answer; the judge answers nonsense. Bound
    problems need the judge's equivalence verdict: they used to score 0, now they error and name the judge."""
    store = Store(db_url)
    run_id = harness.eval("ineqmath@answer_only", "reference", db=store, data="bundled",
                          judges={"default": MockModel("I cannot tell.")}).run_id
    rt = store.run_tasks(run_id)[0]
    rows = store.samples(rt["id"])
    bound = [r for r in rows if r["metadata"]["type"] == "bound"]
    relation = [r for r in rows if r["metadata"]["type"] == "relation"]
    assert bound and all(r["status"] == "error" and "judge answer gave no verdict" in r["error"] for r in bound)
    assert relation and all(r["status"] == "scored" and r["score"] == 1.0 for r in relation)  # decided by rules
    m = rt["metrics"]
    assert m["overall"]["answer"]["value"] == 100.0 and m["complete"] is False
    assert m["counts"] == {"scored": len(relation), "error": len(bound), "planned": len(rows)}
