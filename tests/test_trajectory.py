"""The trajectory record, agent-name normalisation, context budgets and corpus metrics."""
from __future__ import annotations

import math

import pytest

from harness import (ContextBudget, ContextExceeded, Fault, FaultLabel, InfraError, Step, Trajectory, normalize_agent)
from harness.scoring import CorpusMetric


def _trajectory(lengths: list[int]) -> Trajectory:
    return Trajectory(steps=[Step(index=i, agent=f"A{i % 2}", content="x" * n) for i, n in enumerate(lengths)],
                      task="the task", participants=["Silent_Expert"])


@pytest.mark.parametrize("name,key", [
    ("Orchestrator (-> WebSurfer)", "orchestrator"), ("Orchestrator (thought)", "orchestrator"),
    ("assistant1", "assistant1"), ("Assistant1", "assistant1"), ("**WebSurfer**", "websurfer"),
    ("  Excel_Expert ", "excel_expert"), ("Node-1", "node-1"), ("Web  Surfer", "web surfer"),
])
def test_normalize_agent(name, key):
    assert normalize_agent(name) == key


def test_normalisation_keeps_distinct_agents_apart():
    assert normalize_agent("Node-1") != normalize_agent("Node1")
    assert normalize_agent("Assistant") != normalize_agent("Assistant_Expert")


def test_agents_include_declared_participants_and_round_trip():
    t = _trajectory([3, 4, 5])
    assert t.agents() == {"a0", "a1", "silent_expert"}
    assert Trajectory.from_json(t.to_json()) == t
    label = FaultLabel([Fault("A1", step=1, mode="FM-1.1")], reason="why")
    assert FaultLabel.from_json(label.to_json()) == label


def test_clip_contents_keeps_every_step_and_fits():
    t = _trajectory([10, 5000, 20, 3000])
    clipped, cut = t.clip_contents(1000)
    assert [s.index for s in clipped.steps] == [0, 1, 2, 3]
    assert sum(len(s.content) for s in clipped.steps) <= 1000
    assert clipped.steps[0].content == "x" * 10 and clipped.steps[2].content == "x" * 20  # short steps untouched
    assert "characters cut to fit the context" in clipped.steps[1].content
    assert cut == 8030 - sum(len(s.content.split(" [...")[0]) for s in clipped.steps)
    assert t.clip_contents(10_000) == (t, 0)


def test_budget_errors_the_sample_unless_truncating():
    t = _trajectory([4000, 4000])
    render = lambda tr: "\n".join(s.content for s in tr.steps)  # noqa: E731
    budget = ContextBudget(context_tokens=1000, reserve_tokens=200, chars_per_token=4.0)  # 3,200 characters
    with pytest.raises(ContextExceeded) as info:
        budget.fit(render, t)
    assert isinstance(info.value, InfraError) and "over the context of 1,000 tokens" in str(info.value)
    text, cut = budget.fit(render, t, truncate=True)
    assert len(text) <= 3200 and cut > 4800
    assert ContextBudget(0).fit(render, t) == (render(t), 0)  # 0: no check
    assert budget.for_config({"max_tokens": 500}).reserve_tokens == 500


def test_corpus_metric_is_a_statistic_of_totals_with_a_bootstrap_interval():
    ratio = CorpusMetric("tp_share", statistic=lambda t, n: t["tp"] / (t["tp"] + t["fp"]))
    per_sample = [[{"tp": 3.0, "fp": 1.0}], [{"tp": 0.0, "fp": 4.0}], [{"tp": 1.0}]]
    value = ratio.compute_corpus(per_sample)
    assert value.value == pytest.approx(100 * 4 / 9)  # not the mean of per-sample ratios (58.3)
    assert value.n == 3 and value.ci_low <= value.value <= value.ci_high
    assert ratio.compute_corpus(per_sample) == value  # seeded
    epochs = ratio.compute_corpus([[{"tp": 1.0, "fp": 0.0}, {"tp": 0.0, "fp": 1.0}]])
    assert epochs.value == pytest.approx(50.0)
    undefined = CorpusMetric("nan", statistic=lambda t, n: math.nan)
    assert undefined.compute_corpus(per_sample) is None
