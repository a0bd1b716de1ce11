"""IneqMath: the official final-answer rules against hand-checked cases and the real upstream gpt-4o-mini dev
responses, the whole pipeline with scripted judges (numbers that follow from the script), the sandboxed
numerical-computation judge, the test-split submission file, and `harness rescore`."""
from __future__ import annotations

import dataclasses
import json
import re
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import harness
from harness import UsageError, get_task
from harness.judge import JudgeNoVerdict
from harness.model import MockModel, get_model, modelapi
from harness.store import Store
from harness.tasks.ineqmath import prompts, read_replay
from harness.tasks.ineqmath.answer import judge_answer, locate_answer, relation_by_rules
from harness.tasks.ineqmath.steps import code_checks, judge_steps, verdict

DATA = Path(get_task("ineqmath").factory.__code__.co_filename).parent / "data"
RESULTS = DATA / "results_gpt-4o-mini_tokens_10000_dev_subset.json"
UPSTREAM = json.loads(RESULTS.read_text())


def _sandbox_kind() -> str | None:
    from harness.sandboxes import _image
    from harness.sandboxes._bwrap import bwrap_status

    if _image.docker_available()[0]:
        return "auto"
    return "bwrap" if bwrap_status()["ok"] else None


needs_sandbox = pytest.mark.skipif(_sandbox_kind() is None, reason="no Docker daemon and no working bwrap")


# ---- rule-based parts, hand-checked against compute_score.py

@pytest.mark.parametrize("response, sentence", [
    ("", ""),
    ("   \n ", ""),
    ("Thus the answer is (B) $\\geq$.", "answer is (B) $\\geq$."),
    ("The answer is 1. Final answer is \\(C = 2\\)", "Final answer is $C = 2$"),  # "final answer is" wins
    ("The answer is X.\nMore text, the answer is   Y\n\n", "answer is Y"),  # the last occurrence, whitespace collapsed
    ("FINAL ANSWER: 3", "FINAL ANSWER: 3"),  # case-insensitive search, original case kept
    ("a\nb\nc\nd", "b\nc\nd"),  # no trigger: the last three lines, as they are
])
def test_locate_answer(response, sentence):
    assert locate_answer(response) == sentence


@pytest.mark.parametrize("sentence, decided", [
    ("answer is (D) $<$.", ("(D) $<$", "choice_string")),
    ("answer is (C) $=$ or (A) $\\leq$", ("(A) $\\leq$", "choice_string")),  # choices are tried A..F
    ("answer is (A) } \\leq \\]", ("(A) $\\leq$", "keyword")),
    ("answer is \\geq", ("(B) $\\geq$", "keyword")),
    ("answer is ≥ and <", ("(B) $\\geq$", "keyword")),  # the cascade stops at the first letter that matches
    ("answer is $x = y$", ("(C) $=$", "keyword")),
    ("answer is >", ("(E) $>$", "keyword")),
    ("answer is none of them", ("(F) None of the above", "keyword")),
    ("answer is \\boxed{\\text{less}}", None),
])
def test_relation_rules(sentence, decided):
    assert relation_by_rules(sentence) == decided


def test_rule_decided_relation_verdicts_on_upstream_gpt4o_mini_responses():
    """All ten relation responses in the upstream file are decided by the rules; verdicts checked by hand."""
    correct = {r["data_id"]: None for r in UPSTREAM if r["type"] == "relation"}
    for r in UPSTREAM:
        if r["type"] == "relation":
            choice, _ = relation_by_rules(locate_answer(r["response"]))
            correct[r["data_id"]] = choice == r["answer"]
    assert correct == {"53": True, "56": True, "60": False, "63": False, "65": False, "69": False, "75": True,
                       "80": False, "90": False, "91": True}


def test_zero_shot_prompt_is_the_upstream_prompt():
    for r in UPSTREAM:
        assert prompts.query(r["problem"], r["type"]) == r["prompt"]


def test_few_shot_prompt_takes_the_upstream_exemplars_of_the_type():
    q = prompts.query("PROBLEM", "bound", shots=3)
    assert q.startswith(prompts.BOUND_HINT + "\n\n\n\nProblem: Let $a, b, c$ be the side lengths")
    assert q.count("\n\nSolution: ") == 3 and q.endswith("\n\nProblem: PROBLEM\n\nSolution:")
    assert "Theorem" not in q and "() \\quad" not in q  # no relation exemplar in a bound prompt
    with pytest.raises(ValueError):
        prompts.query("P", "relation", shots=4)


def test_replay_reads_the_upstream_results_format():
    rows = list(read_replay(RESULTS))
    assert len(rows) == 20 and rows[0] == ("2", None, UPSTREAM[0]["response"])


async def test_random_choice_is_recorded_and_reproducible():
    async def bad_letter(prompt, structured):
        assert "extract the option letter" in prompt and not structured
        return "I think it is less"

    verdicts = [await judge_answer("so the answer is \\boxed{less}", "relation", "(D) $<$", bad_letter, seed="7:0")
                for _ in range(3)]
    assert all(v.random_choice for v in verdicts)
    assert len({v.extracted for v in verdicts}) == 1 and verdicts[0].extracted in prompts.CHOICES
    others = {(await judge_answer("answer is \\boxed{less}", "relation", "(D) $<$", bad_letter, seed=f"{i}:0")).extracted
              for i in range(30)}
    assert len(others) > 1  # the seed is the sample: different samples draw differently

    async def letter_d(prompt, structured):
        return " D \n"

    v = await judge_answer("answer is \\boxed{less}", "relation", "(D) $<$", letter_d, seed="7:0")
    assert (v.correct, v.method) == (True, "llm_letter")


async def test_bound_answers_string_match_then_structured_equivalence():
    asked: list[tuple[str, bool]] = []

    def judge(extracted: str, equivalence: str):
        async def ask(prompt, structured):
            asked.append((prompt, structured))
            return equivalence if structured else extracted
        return ask

    v = await judge_answer("The answer is $C = \\frac{1}{2}$", "bound", "$C = \\frac{1}{2}$", judge("C=\\frac{1}{2}", ""),
                           seed="s")
    assert (v.correct, v.method, len(asked)) == (True, "exact", 1)  # `$` and spaces removed: no equivalence call
    assert "answer is $C = \\frac{1}{2}$" in asked[0][0]
    asked.clear()
    v = await judge_answer("The answer is C=0.5", "bound", "$C = \\frac{1}{2}$",
                           judge("C=0.5", '{"analysis": "1/2 = 0.5", "equivalent": true}'), seed="s")
    assert (v.correct, v.method) == (True, "llm_equivalence") and asked[1][1] is True
    assert "Ground truth: C=\\frac{1}{2}\n    Prediction: C=0.5" in asked[1][0]
    with pytest.raises(JudgeNoVerdict, match="not the structured output"):  # the judge's failure, not the model's
        await judge_answer("The answer is C=0.5", "bound", "$C = 1$", judge("C=0.5", "Equivalent: true"), seed="s")
    v = await judge_answer("", "bound", "$C = 1$", judge("C=1", ""), seed="s")
    assert (v.correct, v.method) == (False, "no_answer")


def test_step_verdicts_and_code_extraction():
    assert verdict("<Analysis>: fine\n<Answer>: True") is True
    assert verdict("<Answer>: **False**") is False
    assert verdict("no verdict") is None
    text = ("<Analysis>: x\n<Expressions>: List(1+1=2)\n<Codes>:\n# Validation for Expression 1\nanswer = 1 + 1 == 2\n"
            "# Validation for Expression 2\nimport math\nanswer = math.isclose(2 ** 0.5, 1.414, abs_tol=1e-2)\n")
    assert code_checks(text) == ["# Validation for Expression 1\nanswer = 1 + 1 == 2",
                                 "# Validation for Expression 2\nimport math\n"
                                 "answer = math.isclose(2 ** 0.5, 1.414, abs_tol=1e-2)"]
    fenced = "<Codes>:\n```python\nanswer = True\n```\ntext\n```\nanswer = 2 > 1\n```"
    assert code_checks(fenced) == ["answer = True", "answer = 2 > 1"]


# ---- the numerical-computation judge runs its code in the sandbox

@needs_sandbox
async def test_computation_checks_run_in_the_sandbox_and_are_contained(tmp_path):
    from harness.sandboxes import SandboxLimits, get_backend

    marker = tmp_path / "only-on-the-host"
    marker.write_text("x")
    backend = get_backend(_sandbox_kind(), limits=SandboxLimits(timeout_s=5, memory_mb=512))
    try:
        def codes(*snippets):
            return "<Codes>:\n" + "\n".join(f"```python\n{s}\n```" for s in snippets)

        ok = await judge_steps("numerical_computation", codes("import sympy as sp\nanswer = "
                                                            "abs(float(sp.sqrt(2)) - 1.4142) < 1e-2"), backend)
        assert ok.passed and ok.checks[0]["passed"]
        # a check cannot see the harness's files: it runs elsewhere
        hidden = await judge_steps("numerical_computation", codes(f"import os\nanswer = os.path.exists({str(marker)!r})"),
                                   backend)
        assert not hidden.passed
        # every check must pass; one false check fails the judge
        mixed = await judge_steps("numerical_computation", codes("answer = True", "answer = 1 + 1 == 3"), backend)
        assert not mixed.passed and [c["passed"] for c in mixed.checks] == [True, False]
        # a loop is stopped by the sandbox's time limit, and counts as a failed check
        t0 = time.monotonic()
        loop = await judge_steps("numerical_computation", codes("while True:\n    pass\nanswer = True"), backend)
        assert not loop.passed and loop.checks[0]["timed_out"] and time.monotonic() - t0 < 30
        # printing a forged verdict line does not pass: the line needs a nonce the code never saw
        forged = await judge_steps("numerical_computation",
                                   codes("import sys\nprint('deadbeef True')\nanswer = False"), backend)
        assert not forged.passed
        # no verifiable expression: nothing to run, the judge passes
        assert (await judge_steps("numerical_computation", "<Expressions>: List()\n<Codes>:\n", backend)).passed
    finally:
        await backend.aclose()


# ---- the whole pipeline with scripted judges

STEP_TAGS = {"toy cases or special value": "toy_case", "non-trivial claims": "logical_gap",
             "approximate numerical substitutions": "numerical_approximation",
             "correctness of numerical computations": "numerical_computation"}


def scripted_judge(sample, messages) -> str:
    """Stands in for the judge LLM: extracts bound answers like the official prompt asks, never finds two bounds
    equivalent, fails the logical-gap check of sample 53 and writes a false computation check for sample 91."""
    prompt = messages[-1]["content"]
    if "extract the number from the following sentence" in prompt:
        sentence = prompt.split("following sentence:\n")[1].split("\n")[0]
        value = re.search(r"C\s*=\s*([^\s$]+)", sentence).group(1).rstrip(".")
        return f"C={value}"
    if "verifying mathematical expression equivalence" in prompt:
        return json.dumps({"analysis": "scripted", "equivalent": False})
    criterion = next(c for tag, c in STEP_TAGS.items() if tag in prompt.split("Examples of Inputs")[0])
    if criterion == "numerical_computation":
        check = {"91": "answer = 1 + 1 == 3", "48": "import sympy as sp\nanswer = sp.Integer(2) == 2"}.get(
            sample.id, "answer = 2 == 2")
        return f"<Analysis>: scripted\n<Expressions>: List(e)\n<Codes>:\n```python\n{check}\n```"
    return f"<Analysis>: scripted\n<Answer>: {not (criterion == 'logical_gap' and sample.id == '53')}"


@modelapi("scripted", usage="scripted")  # `--judge-model scripted` names the scripted judge
def _scripted(name, *, base_url, args, db_url):
    return MockModel(scripted_judge, name="scripted")


def _options(task="ineqmath", data="bundled", **options) -> dict:
    """harness.eval's arguments for a replay of the bundled results judged by the scripted judge."""
    return dict(tasks=task, model=f"replay:{RESULTS}", data=data, judges={"default": get_model("scripted")},
                sandbox=_sandbox_kind() or "auto", **options)


@needs_sandbox
async def test_scripted_judges_give_the_numbers_the_script_implies(db_url):
    store = Store(db_url)
    run_id = (await harness.eval_async(**_options(), db=store)).run_id
    metrics = store.run_tasks(run_id)[0]["metrics"]
    overall, by = metrics["overall"], metrics["by"]["type"]
    # answers: bound only sample 48 (C=11 both); relation 53, 56, 75, 91 (hand-checked above)
    assert overall["answer"]["value"] == pytest.approx(25.0)
    assert by["bound"]["answer"]["value"] == pytest.approx(10.0) and by["relation"]["answer"]["value"] == pytest.approx(40.0)
    assert overall["logical_gap"]["value"] == pytest.approx(95.0) and overall["toy_case"]["value"] == 100.0
    assert overall["numerical_computation"]["value"] == pytest.approx(95.0)
    # overall needs all five: 48, 56, 75 (53 fails the logical gap, 91 the computation check)
    assert overall["overall"]["value"] == pytest.approx(15.0) and overall["overall"]["n"] == 20
    assert overall["overall"]["ci_low"] < 15.0 < overall["overall"]["ci_high"]
    assert metrics["headline"] == "overall"
    rows = {r["sample_id"]: r for r in store.samples(store.run_tasks(run_id)[0]["id"])}
    assert rows["53"]["error_category"] == "logical_gap" and rows["91"]["error_category"] == "numerical_computation"
    assert rows["2"]["error_category"] == "wrong_answer" and rows["48"]["score"] == 1.0
    # every judge call is in the trace and the calls table, with its prompt and response
    trace = store.trace(rows["48"]["trace_hash"])
    judge_calls = [c for c in trace["calls"] if c["kind"] == "judge"]
    assert {c["raw"]["role"] for c in judge_calls} == {"answer", "toy_case", "logical_gap", "numerical_approximation",
                                                       "numerical_computation"}
    assert any("extract the number" in c["messages"][-1]["content"] and c["text"] == "C=11" for c in judge_calls)
    assert judge_calls[0]["messages"][0] == {"role": "system", "content": prompts.SYSTEM}
    assert trace["scores"][0]["metadata"]["judges"]["numerical_computation"][0]["checks"][0]["passed"] is True
    with store.engine.connect() as conn:
        from sqlalchemy import text
        kinds = dict(conn.execute(text("select kind, count(*) from calls group by kind")).all())
    # 20 model calls; judge calls: 5 per sample (4 step judges + 1 answer call), plus the 10 bound extractions'
    # equivalence calls except sample 48's exact match: 20 * 4 + 10 + 9
    assert kinds == {"model": 20, "judge": 99}


@needs_sandbox
def test_rescore_makes_a_new_run_and_reuses_cached_judge_answers(db_url, monkeypatch):
    store = Store(db_url)
    source = harness.eval(**_options(task="ineqmath@answer_only"), db=store).run_id
    before = store.samples(store.run_tasks(source)[0]["id"])

    from harness.cli._app import app

    result = CliRunner().invoke(app, ["rescore", source, "--judge-model", "scripted", "--db", db_url, "--json"])
    assert result.exit_code == 0, result.output
    new_id = json.loads(result.stdout[result.stdout.index("{"):])["run"]["id"]
    assert new_id != source
    new_run = store.get_run(new_id)
    # the rescored run keeps the source run's model name (a replay file is named by its stem)
    assert new_run["rescored_from"] == source and new_run["model"] == store.get_run(source)["model"] == RESULTS.stem
    rt = store.run_tasks(new_id)[0]
    assert rt["metrics"]["overall"]["answer"]["value"] == pytest.approx(25.0)
    # the source run is untouched
    assert store.samples(store.run_tasks(source)[0]["id"]) == before
    rows = store.samples(rt["id"])
    assert {r["sample_id"] for r in rows} == {r["sample_id"] for r in before}
    assert all(r["response"] == b["response"] for r, b in zip(rows, before))
    # the same judge and prompts again: every judge answer comes from the cache, the model is not called
    trace = store.trace(next(r for r in rows if r["sample_id"] == "2")["trace_hash"])
    assert [c["kind"] for c in trace["calls"]] == ["model", "judge", "judge"]
    assert all(c["raw"]["cached"] for c in trace["calls"] if c["kind"] == "judge")


def test_a_missing_judge_fails_before_any_work(sqlite_url):
    store = Store(sqlite_url)
    with pytest.raises(UsageError, match="answer, logical_gap"):
        harness.eval("ineqmath", f"replay:{RESULTS}", db=store, data="bundled", judges={"toy_case": "mock"})
    assert store.list_runs() == []


class StopsAtCheck(MockModel):
    """The evaluated model of a run that must end before any work: the run's judges are built by then."""

    async def check(self) -> None:
        raise UsageError("stopped at the model's check")


def test_paper_judges_variant_proposes_the_papers_backends(sqlite_url, monkeypatch):
    from harness.model import _registry

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    built: list[str] = []
    openai = _registry._APIS["openai"]
    monkeypatch.setitem(_registry._APIS, "openai", dataclasses.replace(  # the openai provider, noting what it builds
        openai, factory=lambda name, **kw: built.append(f"openai/{name}") or openai.factory(name, **kw)))
    proposed = {"answer": "openai/gpt-4o-mini", "toy_case": "openai/o4-mini", "logical_gap": "openai/o4-mini",
                "numerical_approximation": "openai/o1", "numerical_computation": "openai/gpt-4.1-mini"}
    assert get_task("ineqmath").build("paper_judges").judges == proposed
    with pytest.raises(UsageError, match="stopped at the model's check"):
        harness.eval("ineqmath@paper_judges", StopsAtCheck(), db=sqlite_url, data="bundled")
    assert built == list(proposed.values())  # the run made one judge per proposed role
    # a bare --judge-model is for every judge: it replaces the proposal
    built.clear()
    with pytest.raises(UsageError, match="stopped at the model's check"):
        harness.eval("ineqmath@paper_judges", StopsAtCheck(), db=sqlite_url, data="bundled", judges={"default": "mock"})
    assert built == []


def test_token_budget_and_decoding_settings_per_variant():
    entry = get_task("ineqmath")
    assert entry.build().config == {"temperature": 0, "top_p": 0.99, "max_tokens": 10000}
    assert entry.build("tokens_30000").config["max_tokens"] == 30000
    reasoning = entry.build("reasoning", {"max_tokens": 40000})
    assert reasoning.config == {"max_completion_tokens": 40000, "reasoning_effort": "medium"}
    assert reasoning.solver.system is None and entry.build().solver.system == prompts.SYSTEM


async def test_test_split_writes_the_submission_file(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'h.db'}"
    store = Store(db)
    model = MockModel(lambda s, m: f"response to {s.id}", name="openai/some-model")
    run_id = (await harness.eval_async("ineqmath@test", model, db=store, data="bundled",
                                       task_args={"max_tokens": 30000})).run_id
    # nothing is judged on the hidden split, and no sandbox is made
    assert "sandbox" not in store.get_run(run_id)["environment"]
    with store.engine.connect() as conn:
        from sqlalchemy import text
        assert conn.execute(text("select count(*) from calls where kind = 'judge'")).scalar() == 0
    out = tmp_path / f"ineqmath_test_some-model_tokens_30000_{run_id}.json"
    records = json.loads(out.read_text())
    source = json.loads((DATA / "test.json").read_text())
    assert [r["data_id"] for r in records] == ["5", "33", "49", "53", "65", "134", "147", "157", "158", "196"]
    assert set(records[0]) == {"data_id", "problem", "type", "prompt", "response"}
    by_id = {r["data_id"]: r for r in source}
    assert all(r["problem"] == by_id[r["data_id"]]["problem"] and r["type"] == by_id[r["data_id"]]["type"]
               and r["prompt"] == prompts.query(r["problem"], r["type"]) and r["response"] == f"response to {r['data_id']}"
               for r in records)
    assert str(out) in capsys.readouterr().err
    assert store.run_tasks(run_id)[0]["metrics"]["overall"] == {}
