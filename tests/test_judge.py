"""harness.judge: panels, the judge cache (SQLite and PostgreSQL), majority votes and Krippendorff's alpha."""
from __future__ import annotations

import numpy as np
import pytest

from harness import Sample, TaskState
from harness._task import SolveContext
from harness.cli._app import _judges
from harness.judge import Agreement, JudgeCache, agreement_key, ask, majority, missing_roles, panel
from harness.model import MockModel
from harness.store import Store


def test_repeated_role_makes_a_panel_and_bare_model_is_default():
    judges = _judges(["openai/a", "toy_case=openai/b", "toy_case=openai/c", "default=openai/d"])
    assert judges == {"default": "openai/a", "toy_case": "openai/b", "toy_case#2": "openai/c", "default#2": "openai/d"}
    assert panel(judges, "toy_case") == ["openai/b", "openai/c"]
    assert panel(judges, "logical_gap") == ["openai/a", "openai/d"]  # falls back to the default panel
    assert missing_roles(["toy_case", "answer"], {"toy_case": "x"}) == ["answer"]
    assert missing_roles(["toy_case", "answer"], {"default": "x"}) == []


@pytest.mark.parametrize("votes, passed", [([True], True), ([False], False), ([True, False], False),
                                           ([True, True, False], True), ([True, False, False], False)])
def test_majority_needs_more_than_half(votes, passed):
    assert majority(votes) is passed


def test_agreement_is_krippendorffs_alpha_over_counts():
    import krippendorff

    # two judges over five samples: which judge said what does not matter for nominal alpha
    judge_a = [1, 1, 0, 0, 1]
    judge_b = [1, 0, 0, 0, 1]
    expected = krippendorff.alpha(reliability_data=np.array([judge_a, judge_b]), level_of_measurement="nominal")
    per_sample = [[(a + b) / 2] for a, b in zip(judge_a, judge_b)]
    got = Agreement("toy_case_alpha", agreement_key("toy_case", 2), raters=2).compute(per_sample)
    assert got.value == pytest.approx(expected)
    assert got.n == 5 and got.ci_low <= got.value <= got.ci_high
    # perfect agreement on varied verdicts is alpha 1; all-identical votes leave alpha undefined
    assert Agreement("x", "k", raters=3).compute([[1.0], [0.0], [1.0]]).value == pytest.approx(1.0)
    assert Agreement("x", "k", raters=3).compute([[1.0], [1.0]]) is None


async def test_judge_calls_are_recorded_and_cached(db_url):
    store = Store(db_url)
    seen: list[str] = []

    def respond(sample, messages):
        seen.append(messages[-1]["content"])
        return f"verdict for {messages[-1]['content']}"

    judge = MockModel(respond, name="scripted-judge")
    ctx = SolveContext(model=MockModel("x"), config={}, task=None, judge_cache=JudgeCache(store))
    state = TaskState(sample=Sample(id="s1", input="q"), epoch=0)
    first = await ask(ctx, state, judge, "is it right?", {"temperature": 0}, system="be strict", role="toy_case")
    again = await ask(ctx, state, judge, "is it right?", {"temperature": 0}, system="be strict", role="toy_case")
    other = await ask(ctx, state, judge, "is it right?", {"temperature": 0.5}, system="be strict", role="toy_case")
    assert (first.cached, again.cached, other.cached) == (False, True, False)  # settings are part of the key
    assert again.text == first.text and len(seen) == 2
    assert [c.kind for c in state.calls] == ["judge"] * 3
    assert state.calls[0].messages == [{"role": "system", "content": "be strict"},
                                       {"role": "user", "content": "is it right?"}]
    assert state.calls[1].raw["cached"] is True and state.calls[1].raw["role"] == "toy_case"
    # the cache lives in the database: a new store on the same URL still answers
    fresh = SolveContext(model=MockModel("x"), config={}, task=None, judge_cache=JudgeCache(Store(db_url)))
    assert (await ask(fresh, state, judge, "is it right?", {"temperature": 0}, system="be strict")).cached
    # a different judge model is a different key
    assert not (await ask(ctx, state, MockModel(respond, name="other-judge"), "is it right?", {"temperature": 0},
                          system="be strict")).cached


async def test_a_prompt_over_the_judges_context_is_an_infrastructure_error_not_the_models_limit():
    from harness._types import ContextLengthExceeded, InfraError, ModelCall
    from harness.model._builtin import BoundAnswers

    class Small(MockModel):
        def bind(self, state, task):
            def refuse(messages, tools):
                raise ContextLengthExceeded("the prompt is longer than the model's context: HTTP 400",
                                            ModelCall("judge", "small", messages, {}))

            return BoundAnswers(self.name, refuse)

    state = TaskState(sample=Sample(id="s", input="q"), epoch=0)
    ctx = SolveContext(model=MockModel("a"), config={}, task=None)
    with pytest.raises(InfraError) as info:
        await ask(ctx, state, Small(name="small"), "judge this", {}, role="answer")
    assert type(info.value) is InfraError and str(info.value).startswith("judge answer: the prompt is longer")
