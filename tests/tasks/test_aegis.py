"""AEGIS: loading the bundled records, leak-free prompts, parsing, set metrics against hand-computed figures
(including where upstream's scorer differs), the reference model, and the context check."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import harness
from harness import Fault, FaultLabel, Step, TaskRef, Trajectory, compute_metrics, get_task
from harness.store import Store
from harness.tasks.aegis import scoring

DATA = Path(__file__).resolve().parents[2] / "tasks" / "aegis" / "data" / "test.jsonl"
RECORDS = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]


def build(**args):
    return get_task("aegis").build(args=args)


def loaded():
    return list(build().dataset.open("bundled")[1])


def run(db_url: str, model: str, variant: str = "default", args: dict | None = None):
    store = Store(db_url)
    run_id = harness.eval(TaskRef("aegis", variant, args or {}), model, db=store, data="bundled").run_id
    rt = store.run_tasks(run_id)[0]
    return rt["metrics"], {r["sample_id"]: r for r in store.samples(rt["id"])}


def test_every_bundled_record_loads():
    samples = loaded()
    assert [s.id for s in samples] == [r["id"] for r in RECORDS] and len(samples) == 6
    for s, r in zip(samples, RECORDS):
        assert not s.invalid
        assert [st.index for st in s.trajectory.steps] == [h["step"] for h in r["input"]["conversation_history"]]
        assert [(f["agent"], f["mode"]) for f in s.target["faults"]] == \
            [(f["agent_name"], f["error_type"]) for f in r["output"]["faulty_agents"]]
        assert set(s.metadata) == {"framework", "benchmark", "task_type", "generator"}


def test_no_label_reaches_the_prompt():
    """`faulty_agents` is the answer key of the official output format, so the instruction names it; no label value
    and no other label field may appear."""
    for s, r in zip(loaded(), RECORDS):
        prompt = "\n".join(m["content"] for m in s.input)
        assert prompt.count("faulty_agents") == 1 and '{"faulty_agents": [{"agent_name": "<agent name>"' in prompt
        for key in ("injected_agents", "injection_strategy", "is_injection_successful", "malicious_action_description",
                    "prompt_injection", "response_corruption", "is_injected", "correct_answer", "num_injected_agents"):
            assert key not in prompt, (s.id, key)
        for fault in r["ground_truth"]["injected_agents"]:
            if fault["malicious_action_description"]:
                assert fault["malicious_action_description"] not in prompt
        assert r["ground_truth"]["correct_answer"] not in prompt
        gold = json.dumps(r["output"]["faulty_agents"][0])
        assert gold not in prompt


def test_parse():
    assert scoring.parse('{"faulty_agents": []}') == []
    text = 'Thinking {"a": 1} ... ```json\n{"faulty_agents": [{"agent_name": "Solver", "error_type": "FM-1.1"}, 3]}\n```'
    assert scoring.parse(text) == [("Solver", "FM-1.1")]
    assert scoring.parse('{"faulty_agents": [{"agent_name": "A", "error_type": "FM-1.1"}]} then '
                         '{"faulty_agents": [{"agent_name": "B", "error_type": "FM-2.2"}]}') == [("B", "FM-2.2")]
    assert scoring.parse("Solver made an FM-1.1 error") is None
    assert scoring.parse('{"faulty_agents": "Solver"}') is None
    assert scoring.normalize_mode("fm2.2 (Make request ambiguous)") == "FM-2.2"


TRAJ = Trajectory(steps=[Step(index=i + 1, agent=a, content="...") for i, a in
                         enumerate(["Solver", "Critic", "Assistant1"])])


def _rows(cases):
    """cases: (gold pairs, response) -> store-shaped rows."""
    rows = []
    for i, (gold, response) in enumerate(cases):
        s = scoring.score(response, FaultLabel([Fault(a, mode=m) for a, m in gold]), TRAJ)
        rows.append({"sample_id": str(i), "epoch": 0, "score": s.value, "scores": s.values, "metadata": {}})
    return rows


CASES = [
    ([("Solver", "FM-1.1"), ("Critic", "FM-2.2")],
     json.dumps({"faulty_agents": [{"agent_name": "solver", "error_type": "FM-1.1"},
                                   {"agent_name": "Critic", "error_type": "FM-3.3"}]})),
    ([("assistant1", "FM-3.3")], "The Assistant1 agent erred."),  # unparseable
]


def test_set_metrics_against_hand_computed_figures():
    m = {k: v["value"] for k, v in compute_metrics(build(), _rows(CASES), {"scored": 2})["overall"].items()}
    # pairs: tp {solver|FM-1.1}, fp {critic|FM-3.3}, fn {critic|FM-2.2, assistant1|FM-3.3}
    assert m["pair_micro_precision"] == pytest.approx(50.0)
    assert m["pair_micro_recall"] == pytest.approx(100 / 3)
    assert m["pair_micro_f1"] == pytest.approx(40.0)
    assert m["pair_macro_f1"] == pytest.approx(25.0)  # 4 classes seen, one perfect
    # agents: "solver" matches "Solver" (upstream's case-sensitive match would miss it); assistant1 missed
    assert m["agent_micro_precision"] == pytest.approx(100.0)
    assert m["agent_micro_recall"] == pytest.approx(200 / 3)
    assert m["agent_micro_f1"] == pytest.approx(80.0)
    assert m["agent_macro_f1"] == pytest.approx(200 / 3)
    # modes: tp FM-1.1; FM-3.3 fp in one sample and fn in the other; FM-2.2 fn
    assert m["mode_micro_f1"] == pytest.approx(40.0)
    assert m["mode_macro_f1"] == pytest.approx(100 / 3)
    assert m["exact_match_ratio"] == 0.0
    assert m["parse_rate"] == 50.0
    # upstream skips the unparseable sample: only the first counts
    assert m["pair_micro_f1_skip_unparseable"] == pytest.approx(50.0)
    assert m["pair_macro_f1_skip_unparseable"] == pytest.approx(100 / 3)
    assert m["agent_micro_f1_skip_unparseable"] == pytest.approx(100.0)
    assert m["mode_macro_f1_skip_unparseable"] == pytest.approx(100 / 3)
    assert m["exact_match_ratio_skip_unparseable"] == 0.0


def test_intervals_are_bootstrapped_over_samples():
    cases = CASES * 5 + [([("Solver", "FM-1.1")], '{"faulty_agents": [{"agent_name": "Solver", "error_type": "FM-1.1"}]}')] * 4
    out = compute_metrics(build(), _rows(cases), {"scored": len(cases)})["overall"]
    for name in ("pair_micro_f1", "agent_micro_f1", "mode_micro_f1", "exact_match_ratio"):
        assert out[name]["ci_low"] <= out[name]["value"] <= out[name]["ci_high"]
        assert out[name]["ci_low"] < out[name]["ci_high"]
        assert out[name]["n"] == 14
    assert out["exact_match_ratio"]["value"] == pytest.approx(400 / 14)


@pytest.mark.parametrize("response,category", [
    ("nothing", "unparseable"),
    ('{"faulty_agents": [{"agent_name": "Planner", "error_type": "FM-1.1"}]}', "hallucinated_agent"),
    ('{"faulty_agents": [{"agent_name": "Solver", "error_type": "FM-4.1"}]}', "hallucinated_mode"),
    ('{"faulty_agents": []}', "no_faults_predicted"),
    ('{"faulty_agents": [{"agent_name": "Solver", "error_type": "FM-2.2"}, {"agent_name": "Critic", "error_type": "FM-2.2"}]}',
     "right_agents_wrong_modes"),
    ('{"faulty_agents": [{"agent_name": "Solver", "error_type": "FM-1.1"}]}', "missed_faults"),
    ('{"faulty_agents": [{"agent_name": "Solver", "error_type": "FM-1.1"}, {"agent_name": "Critic", "error_type": "FM-2.2"},'
     ' {"agent_name": "Assistant1", "error_type": "FM-1.1"}]}', "extra_faults"),
    ('{"faulty_agents": [{"agent_name": "Assistant1", "error_type": "FM-1.1"}]}', "wrong_pairs"),
    ('{"faulty_agents": [{"agent_name": "critic", "error_type": "fm-2.2"}, {"agent_name": "SOLVER", "error_type": "FM-1.1"}]}', None),
])
def test_error_categories(response, category):
    s = scoring.score(response, FaultLabel([Fault("Solver", mode="FM-1.1"), Fault("Critic", mode="FM-2.2")]), TRAJ)
    assert s.error_category == category
    assert s.value == (1.0 if category is None else 0.0)


def test_reference_scores_everything(db_url):
    metrics, rows = run(db_url, "reference")
    assert len(rows) == 6 and all(r["status"] == "scored" and r["error_category"] is None for r in rows.values())
    for name, value in metrics["overall"].items():
        assert value["value"] == 100.0, name
    assert set(metrics["by"]["framework"]) == {"agentverse", "dylan", "macnet", "llm_debate"}


def test_context_check_and_truncation(sqlite_url):
    metrics, rows = run(sqlite_url, "reference", args={"context_tokens": 5000})
    errored = [r for r in rows.values() if r["status"] == "error"]
    assert errored and all("over the context of 5,000 tokens" in r["error"] for r in errored)
    metrics, rows = run(sqlite_url, "reference", "truncate", {"context_tokens": 5000})
    assert all(r["status"] == "scored" for r in rows.values())
    assert metrics["overall"]["pair_micro_f1"]["value"] == 100.0


def test_macro_scores_when_a_model_predicts_no_pair_at_all():
    """A model that names no faulty agent: every class has tp = fp = 0 (scalars in the totals) and
    fn > 0 (arrays): precision is 0, not a broadcasting crash (it took the whole run down)."""
    from harness.tasks.aegis.scoring import set_metric

    rows = [[{"pair.tp": 0.0, "pair.fp": 0.0, "pair.fn": 3.0, "pair.fn:a|FM-1.1": 1.0, "pair.fn:b|FM-3.1": 1.0,
              "pair.fn:c|FM-1.2": 1.0}]]
    for measure in ("precision", "recall", "f1"):
        value = set_metric("pair", "macro", measure).compute_corpus(rows)
        assert value is not None and value.value == 0.0


def test_micro_scores_when_no_sample_has_the_level_at_all():
    from harness.tasks.aegis.scoring import set_metric

    value = set_metric("mode", "micro", "f1").compute_corpus([[{"exact": 0.0}]])
    assert value is not None and value.value == 0.0
