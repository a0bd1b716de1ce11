"""IneqMath (Sheng, Lu et al., 2025; arXiv 2506.07927): can a model prove an inequality, not only guess it?

Data: dev (100 problems, with answers) and test (200, answers hidden) of `AI4Math/IneqMath`; each problem is
a *bound* problem (find the best constant C) or a *relation* problem (choose <=, >=, =, <, > or none).
Prompt: the official task hint for the problem type, then `Problem: ... Solution:` (zero-shot), or with
`shots=3` the upstream worked solutions of the same type first (variant `few_shot`).
Decoding, as the paper ran models: chat models get the system prompt, temperature 0, top_p 0.99 and
`max_tokens` = the token budget; reasoning models (variant `reasoning`) no system prompt, reasoning effort
medium and `max_completion_tokens` = the budget. Scores depend heavily on the budget (Gemini 2.5 Pro: answer
accuracy 7% at 10K tokens, 68% at 30K), so the budget is a variant (`tokens_10000` ... `tokens_40000`) and
names the run the way upstream names it (`<model>_tokens_<N>`).
Scoring: a response counts (Overall) only if all five judges accept it: the official final-answer judge
(answer.py; judge role `answer`, paper: GPT-4o mini) and the four step judges (steps.py; roles `toy_case`,
`logical_gap`, `numerical_approximation`, `numerical_computation`; paper: o4-mini, o4-mini, o1, GPT-4.1 mini),
whose prompts are the paper's and worked examples ours: they are *re-implemented* step judges. Each is a
`--judge-model` (ROLE=MODEL per judge, repeat a role for a voting panel; variant `paper_judges` proposes the
paper's backends). Reported: Overall, Answer and each step judge's pass rate, overall and per problem type,
with 95% intervals; with panels, Krippendorff's alpha per criterion.
Test split: with no gold answers nothing is judged here; the run writes the official submission file
(`data_id, problem, type, prompt, response`) for the public leaderboard and prints where.
"""
from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any, Iterator

from harness import Dataset, Reference, Sample, Score, Task, TaskState, accuracy, generate, mean, task
from harness.judge import Agreement, agreement_key, ask, majority, panel
from harness.tasks.ineqmath import prompts
from harness.tasks.ineqmath.answer import equivalence_format, judge_answer
from harness.tasks.ineqmath.steps import STEP_JUDGES, judge_steps

DATA = Path(__file__).parent / "data"
HUB = "AI4Math/IneqMath"
REVISION = "3c7c32c786eb77117f3476d7f6d9af8419fa6ecc"
SIZES = {"dev": 100, "test": 200}
CRITERIA = ["answer", *STEP_JUDGES]
PANEL_SIZES = range(2, 6)  # agreement is reported for panels of 2 to 5 judges per criterion
PAPER_JUDGES = {"answer": "openai/gpt-4o-mini", "toy_case": "openai/o4-mini", "logical_gap": "openai/o4-mini",
                "numerical_approximation": "openai/o1", "numerical_computation": "openai/gpt-4.1-mini"}
JUDGE_MAX_TOKENS = 4000  # the upstream engine's default for judge calls

UPSTREAM = "upstream scores.json (github.com/lupantech/ineqmath results/models_results_dev_data)"
PAPER = "IneqMath (arXiv 2506.07927)"
REFERENCE = [
    Reference("gpt-4o-mini (10K tokens, zero-shot)", "answer", 54.0, source=UPSTREAM, note="dev split"),
    Reference("gpt-4o-mini (10K tokens, zero-shot)", "answer", 60.0, group="type=bound", source=UPSTREAM,
              note="dev split"),
    Reference("gpt-4o-mini (10K tokens, zero-shot)", "answer", 48.0, group="type=relation", source=UPSTREAM,
              note="dev split"),
    Reference("gpt-4o-mini (10K tokens, 3-shot)", "answer", 55.0, source=UPSTREAM, note="dev split"),
    Reference("Gemini 2.5 Pro (10K tokens)", "answer", 7.0, source=PAPER, note="test split"),
    Reference("Gemini 2.5 Pro (30K tokens)", "answer", 68.0, source=PAPER, note="test split"),
    Reference("o3 (10K tokens)", "overall", 21.0, source=PAPER, note="test split; the paper's own step judges"),
    Reference("o3 (40K tokens)", "overall", 37.0, source=PAPER, note="test split; the paper's own step judges"),
]


def _to_samples(shots: int):
    def to_samples(record: dict[str, Any], config: str | None) -> Iterator[Sample]:
        prob_type = record["type"]
        if prob_type not in prompts.HINTS:
            raise ValueError(f"unknown problem type {prob_type!r}")
        gold = record.get("answer") or None  # "" on the test split: hidden upstream
        if gold is not None and prob_type == "relation" and gold not in prompts.CHOICES:
            raise ValueError(f"relation answer {gold!r} is not one of the six choices")
        yield Sample(id=str(record["data_id"]), input=prompts.query(record["problem"], prob_type, shots), target=gold,
                     metadata={"type": prob_type, "problem": record["problem"]})

    return to_samples


def _records(path: Path) -> list[dict[str, Any]]:
    """Upstream JSON: a list of records (dev.json, test.json, results.json) or results keyed by id."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return list(data.values()) if isinstance(data, dict) else data


def read_local(path: Path) -> Iterator[tuple[str | None, dict[str, Any]]]:
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    for file in files:
        for record in _records(file):
            yield None, record


def read_replay(path: Path) -> Iterator[tuple[str, int | None, str]]:
    """Upstream results files (what solve.py writes and the leaderboard takes): data_id and response."""
    if path.suffix == ".jsonl":
        from harness.model import read_replay_jsonl

        yield from read_replay_jsonl(path)
        return
    for record in _records(path):
        yield str(record.get("data_id", record.get("annot_id"))), None, record.get("response") or ""


def judge_settings(client_name: str) -> tuple[str | None, dict[str, Any]]:
    """The upstream engine's judge settings: o1/o3/o4 models as reasoning models, the rest as chat models."""
    if any(tag in client_name for tag in ("o1", "o3", "o4")):
        return None, {"max_completion_tokens": JUDGE_MAX_TOKENS, "reasoning_effort": "medium"}
    return prompts.SYSTEM, {"temperature": 0, "max_tokens": JUDGE_MAX_TOKENS, "top_p": 0.99}


class IneqMathScorer:
    """All five judges on one response; each criterion's verdict is its panel's majority."""

    def __init__(self, step_judges: bool):
        self.criteria = CRITERIA if step_judges else ["answer"]

    async def __call__(self, state: TaskState, ctx) -> Score:
        sample = state.sample
        if sample.target is None:
            return Score(value=None, explanation="answer hidden upstream: scored by the IneqMath leaderboard "
                                                 "from the submission file this run writes")
        votes = await asyncio.gather(*[self._criterion(c, state, ctx) for c in self.criteria])
        values: dict[str, float] = {}
        details: dict[str, Any] = {}
        for criterion, judged in zip(self.criteria, votes):
            passed = majority([v["passed"] for v in judged])
            values[criterion] = float(passed)
            details[criterion] = judged
            if len(judged) > 1:
                values[agreement_key(criterion, len(judged))] = sum(v["passed"] for v in judged) / len(judged)
        answer = details["answer"][0]
        values["answer_random_choice"] = float(any(v.get("method") == "random_choice" for v in details["answer"]))
        if len(self.criteria) > 1:
            values["overall"] = float(all(values[c] for c in self.criteria))
        head = values.get("overall", values["answer"])
        failed = [c for c in self.criteria if not values[c]]
        category = None
        if failed:
            category = "no_answer" if answer.get("method") == "no_answer" else (
                "wrong_answer" if "answer" in failed else failed[0])
        return Score(value=head, values=values, answer=answer.get("extracted"), error_category=category,
                     explanation="; ".join(f"{c}: {'pass' if values[c] else 'fail'}" for c in self.criteria),
                     metadata={"judges": details, "answer_sentence": answer.get("sentence")})

    async def _criterion(self, criterion: str, state: TaskState, ctx) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*[self._one(criterion, client, state, ctx)
                                           for client in panel(ctx.judges, criterion)]))

    async def _one(self, criterion: str, client, state: TaskState, ctx) -> dict[str, Any]:
        system, config = judge_settings(client.name)
        sample = state.sample

        async def ask_judge(prompt: str, structured: bool) -> str:
            settings = {**config, "response_format": equivalence_format()} if structured else config
            return (await ask(ctx, state, client, prompt, settings, system=system, role=criterion)).text

        if criterion == "answer":
            v = await judge_answer(state.completion, sample.metadata["type"], sample.target, ask_judge,
                                   seed=f"{sample.id}:{state.epoch}")
            return {"judge": client.name, "passed": v.correct, "method": v.method, "extracted": v.extracted,
                    "sentence": v.sentence, "detail": v.detail}
        text = await ask_judge(prompts.step_judge(criterion, sample.metadata["problem"], state.completion), False)
        v = await judge_steps(criterion, text, ctx.sandbox)
        return {"judge": client.name, "passed": v.passed, "checks": v.checks}


def _metrics(step_judges: bool) -> list:
    criteria = CRITERIA if step_judges else ["answer"]
    named = (["overall"] if step_judges else []) + criteria
    return [*[accuracy(c, c) for c in named], mean("answer_random_choice", "answer_random_choice"),
            *[Agreement(f"{c}_alpha", agreement_key(c, m), raters=m) for c in criteria for m in PANEL_SIZES]]


def _label(model: str, config: dict[str, Any]) -> str:
    budget = config.get("max_completion_tokens") or config.get("max_tokens")
    return re.sub(r"[^A-Za-z0-9._-]+", "-", model.split("/")[-1]) + f"_tokens_{budget}"


def _submission(path_arg: str):
    def write(task: Task, facts: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
        """The official submission file: one record per test problem, as the leaderboard takes it."""
        if any(r["target"] is not None for r in rows):
            return []
        records = [{"data_id": r["sample_id"], "problem": (r["metadata"] or {}).get("problem"),
                    "type": (r["metadata"] or {}).get("type"), "prompt": r["prompt"], "response": r["response"] or ""}
                   for r in rows if r["epoch"] == 0]
        records.sort(key=lambda r: (len(r["data_id"]), r["data_id"]))
        name = f"ineqmath_test_{_label(facts['model'], facts['config'])}_{facts['run_id']}.json"
        db = facts["db_url"]
        folder = Path(db.removeprefix("sqlite:///")).expanduser().parent if db.startswith("sqlite:///") \
            and db != "sqlite:///:memory:" else Path.cwd()
        out = Path(path_arg).expanduser() if path_arg else folder / name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(records, indent=2, ensure_ascii=False), encoding="utf-8")
        missing = sum(1 for r in records if not r["response"])
        lines = [f"wrote the leaderboard submission file {out} ({len(records)} problems); answers are hidden on "
                 f"this split, so it is scored only by the IneqMath leaderboard "
                 f"(https://huggingface.co/spaces/AI4Math/IneqMath-Leaderboard)"]
        if missing:
            lines.append(f"{missing} problems have no response (errored); resume the run before submitting")
        return lines

    return write


BUDGETS = [10000, 20000, 30000, 40000]


@task("ineqmath", variants={
    **{f"tokens_{n}": {"max_tokens": n} for n in BUDGETS},
    "reasoning": {"reasoning": True},
    "few_shot": {"shots": 3},
    "test": {"split": "test"},
    "answer_only": {"step_judges": False},
    "paper_judges": {"judges": ",".join(f"{r}={m}" for r, m in PAPER_JUDGES.items())},
})
def ineqmath(split: str = "dev", max_tokens: int = 10000, reasoning: bool = False, reasoning_effort: str = "medium",
             shots: int = 0, step_judges: bool = True, judges: str = "", submission: str = "") -> Task:
    """split: dev | test. max_tokens: the token budget. reasoning: o1/R1-style decoding (no system prompt).
    shots: upstream worked solutions in the prompt (0-3). step_judges: False judges the final answer only.
    judges: ROLE=MODEL,... proposed judge backends (--judge-model overrides). submission: test-split file path."""
    if split not in SIZES:
        raise ValueError(f"split must be dev or test, not {split!r}")
    hidden = split == "test"
    roles = [] if hidden else (CRITERIA if step_judges else ["answer"])
    proposed = dict(item.split("=", 1) for item in judges.split(",") if item.strip()) if judges else {}
    config = ({"max_completion_tokens": max_tokens, "reasoning_effort": reasoning_effort} if reasoning
              else {"temperature": 0, "top_p": 0.99, "max_tokens": max_tokens})
    return Task(
        name="ineqmath",
        version="1.0",
        description="Inequality proving: bound and relation problems; final answer plus four step-wise judges.",
        dataset=Dataset(
            to_samples=_to_samples(shots),
            hub=HUB,
            split=split,
            revision=REVISION,
            bundled=DATA / f"{split}.json",
            size=SIZES[split],
            read_local=read_local,
            license="CC BY-SA 4.0 (data; the test split only as a test set); code MIT",
            citation="Sheng, Lu et al., Solving Inequality Proofs with Large Language Models, arXiv 2506.07927",
        ),
        solver=generate(system=None if reasoning else prompts.SYSTEM),
        scorers=[IneqMathScorer(step_judges)],
        metrics=_metrics(step_judges),
        headline="overall" if step_judges else "answer",
        breakdowns=["type"],
        reference=REFERENCE,
        config=config,
        needs_sandbox=bool(step_judges and not hidden),
        reference_answer=lambda state: f"The answer is {state.sample.target}.",
        read_replay=read_replay,
        judge_roles=roles,
        judges={r: m for r, m in proposed.items() if r in roles},
        on_finish=_submission(submission) if hidden else None,
    )
