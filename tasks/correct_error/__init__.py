"""CORRECT-Error (Yu et al., 2025; arXiv 2509.24088): locating the one decisive error injected into a multi-agent run.

2,226 Magentic-One trajectories (generators GPT-4o-mini: 318, GPT-5-Nano: 1,908) on GAIA, HotpotQA, MuSiQue,
2WikiMQA, ARC, MATH-500 and MMLU-Pro, each with one injected decisive error labelled by agent and step (a 0-based
index into `history`, Who&When's convention). The layout is Who&When Hand-Crafted's, so the suite shares its loader,
the paper-faithful attribution methods and scoring (tasks/_multiagent). The reported metric is step-level accuracy
(exact, integer comparison; CORRECT's src/evaluate.py also prints tolerances 0..5, here step_accuracy_pm1..5); agent
accuracy is reported beside it.

Known data problems of the release are detected per sample and reported in metadata["data_issues"] (also a breakdown),
never repaired: `groundtruth` is empty on every released record (empty_groundtruth); question text damaged by unquoted
shell expansion, e.g. "$10,000" -> ",000" and "$x$" -> "$ " (shell_expansion_suspected, a heuristic); empty questions
(empty_question). The with-ground-truth variant needs the answer: a record without one is refused (stored as errored
with the reason), so with the current release every sample of that variant is refused.

Data: the hub dataset (split test), or --data with a JSON Lines export of it, or the per-case folders written by the
authors' scripts/download_data.sh (`correct_error[_gpt5nano]/{dataset}/individual_trajectories/{N}.json`). No records
are bundled: none were reachable when this suite was written.
"""
from __future__ import annotations

import re
from typing import Any, Iterator

from harness import ContextBudget, Dataset, Sample, Task, UsageError, accuracy, task
from harness.tasks._multiagent import records
from harness.tasks._multiagent.scoring import TOLERANCES
from harness.tasks._multiagent.solvers import METHODS, AttributionScorer, Attribute, reference_answer

DATASETS = ("arc", "hotpot", "musique", "wikimqa", "math500", "mmlu_pro", "gaia")
# what unquoted shell expansion leaves: "$10,000" -> ",000" (a thousands group without digits before it) and
# "$x$" -> "$" (a dollar sign standing alone)
_SHELL_DAMAGE = re.compile(r"(?:^|\s),\d{3}\b|(?:^|\s)\$(?:\s|$)")


def data_issues(record: dict[str, Any]) -> list[str]:
    issues = []
    question = str(record.get("question") or "")
    if not question.strip():
        issues.append("empty_question")
    elif _SHELL_DAMAGE.search(question):
        issues.append("shell_expansion_suspected")
    if not records.task_answer(record).strip():
        issues.append("empty_groundtruth")
    return issues


def _where(record: dict[str, Any]) -> tuple[str, str]:
    """(generator, dataset) from the hub fields, else from the download script's folder names."""
    folders = record.get("_folders", [])
    dataset = record.get("dataset") or next(
        (folders[i + 1] for i, f in enumerate(folders[:-1]) if f == "individual_trajectories"), "unknown")
    generator = record.get("generator_model") or (
        "gpt-5-nano" if any("gpt5nano" in f for f in folders) else "gpt-4o-mini" if folders else "unknown")
    return str(generator), str(dataset)


def _samples(show_answer: bool):
    def to_samples(record: dict[str, Any], config: str | None) -> Iterator[Sample]:
        generator, dataset = _where(record)
        sample_id = str(record.get("trajectory_id") or f"{generator}/{dataset}/{record['_file']}")
        issues = data_issues(record)
        invalid = None
        if show_answer and "empty_groundtruth" in issues:
            invalid = ("refused: the with-ground-truth variant shows the task's answer, and this record's groundtruth "
                       "is empty (as on every record of the current CORRECT-Error release); use the default variant")
        yield records.case_sample(record, sample_id, {
            "dataset": dataset, "generator": generator, "data_issues": ",".join(issues) or "none",
        }, show_answer=show_answer, invalid=invalid)

    return to_samples


@task("correct_error", variants={
    "step_by_step": {"method": "step_by_step"}, "binary_search": {"method": "binary_search"},
    "with_ground_truth": {"ground_truth": True}, "truncate": {"truncate": True}})
def correct_error(method: str = "all_at_once", ground_truth: bool = False, context_tokens: int = 128_000,
                  chars_per_token: float = 4.0, truncate: bool = False) -> Task:
    """method: all_at_once | step_by_step | binary_search. ground_truth: show the task's answer (refused per record
    while the release has none). context_tokens: the model's context (0: no check)."""
    if method not in METHODS:
        raise UsageError(f"correct_error: unknown method {method!r}; methods: {', '.join(METHODS)}")
    return Task(
        name="correct_error",
        version="1.0",
        description="Which agent made the one injected decisive error in a Magentic-One run, and at which step.",
        dataset=Dataset(
            to_samples=_samples(ground_truth),
            hub="yifanyu/CORRECT-Error",
            split="test",
            size=2226,
            read_local=records.read_case_files,
            license="not stated on a page reachable here (code: Apache-2.0)",
            citation="Yu et al., CORRECT: COndensed eRror RECognition via knowledge Transfer in multi-agent systems, "
                     "arXiv 2509.24088",
        ),
        solver=Attribute(method, ground_truth, ContextBudget(context_tokens, chars_per_token=chars_per_token), truncate),
        scorers=[AttributionScorer()],
        metrics=[accuracy("step_correct", "step_accuracy"),
                 *[accuracy(f"step_within_{k}", f"step_accuracy_pm{k}") for k in TOLERANCES],
                 accuracy("agent_correct", "agent_accuracy"), accuracy("parsed", "parse_rate")],
        headline="step_accuracy",
        breakdowns=["dataset", "generator", "data_issues"],
        reference_answer=reference_answer,
    )
