"""Who&When (Zhang et al., ICML 2025; arXiv 2505.00212): automated failure attribution in LLM multi-agent systems.

Each case is a failed run of a multi-agent system on a GAIA or AssistantBench question, labelled by humans with the
agent responsible for the failure and the step (0-based index into the conversation) where it made the decisive
mistake. 184 cases: Algorithm-Generated (126, CaptainAgent/AG2 systems, at most 10 steps) and Hand-Crafted (58,
Magentic-One, 5 to 130 steps, up to ~300K characters).

Evaluation as in the paper and its Automated_FA code: the evaluated model attributes the failure with one of the
paper's three methods (-T method=all_at_once | step_by_step | binary_search; tasks/_multiagent/solvers.py), with the
question's correct answer in the prompt (the paper's default) or without it (`*no_ground_truth` variants). Upstream
prompts are reproduced verbatim (tasks/_multiagent/prompts.py).

Metrics (tasks/_multiagent/scoring.py): agent-level accuracy and step-level accuracy over all cases (a missing or
unparseable prediction is wrong, as upstream divides by the number of files), step accuracy within +-k steps
(k = 1..5), and, labelled `*_upstream_substring`, the figures upstream's evaluate.py would give with its substring
matching. Agents compare after harness.normalize_agent. Breakdowns: subset, source benchmark, GAIA level, length.

Long trajectories: a prompt over the model's context (-T context_tokens, default 128,000, estimated at
-T chars_per_token=4 characters per token) errors the sample with that reason; the `truncate` variants clip the
longest step contents to fit instead.

The harness's own runs: `harness export RUN --format who_and_when --out FILE.jsonl` writes a run's scored samples as
cases (harness/cli/_export.py) that `--data FILE.jsonl` loads, in the subset "harness" (whatever -T subset says).
They carry no human fault label: such a case is an invalid sample saying so (stored as errored, never scored) until
its mistake_agent and mistake_step are filled in.

The AEGIS paper's table (tasks/aegis) also scores models on Who&When, but as set-F1 over its own conversion of the
cases; those figures are not comparable with these accuracies and are not listed as references here.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Iterator

from harness import ContextBudget, Dataset, Sample, Task, UsageError, accuracy, task
from harness.tasks._multiagent import records
from harness.tasks._multiagent.scoring import TOLERANCES
from harness.tasks._multiagent.solvers import METHODS, AttributionScorer, Attribute, reference_answer

SUBSETS = ("Algorithm-Generated", "Hand-Crafted")
EXPORTED = "harness"  # the subset of cases `harness export RUN --format who_and_when` writes (harness/cli/_export.py)
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def length_bucket(steps: int) -> str:
    return next(label for limit, label in ((10, "<=10"), (30, "11-30"), (60, "31-60")) if steps <= limit) \
        if steps <= 60 else ">60"


def _subset(record: dict[str, Any], config: str | None) -> str:
    if isinstance(record.get("harness"), dict):
        return EXPORTED
    if config:
        return config
    named = [f for f in record.get("_folders", []) if f in SUBSETS]
    if named:
        return named[0]
    return "Algorithm-Generated" if records.speaker_key(record) == "name" else "Hand-Crafted"


def _samples(subsets: tuple[str, ...], show_answer: bool):
    def to_samples(record: dict[str, Any], config: str | None) -> Iterator[Sample]:
        subset = _subset(record, config)
        if subset == EXPORTED:
            # the harness's own runs (`--data FILE` only): taken whatever -T subset says, as no upstream subset
            # holds them; without a human fault label they are invalid samples that say so
            yield _exported_sample(record, show_answer)
            return
        if subset not in subsets:
            return
        if "_file" in record:
            sample_id = f"{subset}/{record['_file']}"
        else:  # hub rows carry no file name; the question id alone repeats across reruns of one question
            digest = hashlib.sha1(json.dumps(record["history"], sort_keys=True, default=str).encode()).hexdigest()[:8]
            sample_id = f"{subset}/{record['question_ID']}-{digest}"
        qid = str(record.get("question_ID", ""))
        level = record.get("level")
        yield records.case_sample(record, sample_id, {
            "subset": subset,
            "benchmark": "GAIA" if _UUID.match(qid) else "AssistantBench",
            "level": None if level in (None, "") else str(level),
            "length": length_bucket(len(record["history"])),
        }, show_answer=show_answer)

    return to_samples


def _exported_sample(record: dict[str, Any], show_answer: bool) -> Sample:
    origin = record["harness"]
    variant = origin.get("variant")
    task_name = origin["task"] if variant in (None, "default") else f"{origin['task']}@{variant}"
    sample_id = f"{EXPORTED}/{origin['run']}/{task_name}/{origin['sample_id']}/{origin['epoch']}"
    invalid = None if records.labelled(record) else (
        f"no fault label: the case was exported from harness run {origin['run']} without one; fill in its "
        f"mistake_agent and mistake_step, a 0-based index into history, to score it")
    return records.case_sample(record, sample_id, {
        "subset": EXPORTED, "benchmark": task_name, "level": None, "length": length_bucket(len(record["history"])),
    }, show_answer=show_answer, invalid=invalid)


VARIANTS = {
    "no_ground_truth": {"ground_truth": False},
    "step_by_step": {"method": "step_by_step"},
    "step_by_step_no_ground_truth": {"method": "step_by_step", "ground_truth": False},
    "binary_search": {"method": "binary_search"},
    "binary_search_no_ground_truth": {"method": "binary_search", "ground_truth": False},
    "truncate": {"truncate": True},
}


@task("who_and_when", variants=VARIANTS)
def who_and_when(method: str = "all_at_once", ground_truth: bool = True, subset: str = "all",
                 context_tokens: int = 128_000, chars_per_token: float = 4.0, truncate: bool = False) -> Task:
    """method: all_at_once | step_by_step | binary_search. ground_truth: show the question's answer in the prompt.
    subset: all | Algorithm-Generated | Hand-Crafted. context_tokens: the model's context (0: no check)."""
    if method not in METHODS:
        raise UsageError(f"who_and_when: unknown method {method!r}; methods: {', '.join(METHODS)}")
    subsets = SUBSETS if subset == "all" else (subset,)
    if any(s not in SUBSETS for s in subsets):
        raise UsageError(f"who_and_when: unknown subset {subset!r}; subsets: all, {', '.join(SUBSETS)}")
    return Task(
        name="who_and_when",
        version="1.0",
        description="Which agent caused a multi-agent failure, and at which step (184 human-labelled cases).",
        dataset=Dataset(
            to_samples=_samples(subsets, ground_truth),
            hub="Kevin355/Who_and_When",
            hub_configs=list(subsets),
            split="train",
            bundled=Path(__file__).parent / "data",
            size={"Algorithm-Generated": 126, "Hand-Crafted": 58}.get(subset, 184),
            read_local=records.read_case_files,
            license="MIT; questions from GAIA (do not re-publish answers) and AssistantBench",
            citation="Zhang et al., Which Agent Causes Task Failures and When?, ICML 2025, arXiv 2505.00212",
        ),
        solver=Attribute(method, ground_truth, ContextBudget(context_tokens, chars_per_token=chars_per_token), truncate),
        scorers=[AttributionScorer()],
        metrics=[accuracy("agent_correct", "agent_accuracy"), accuracy("step_correct", "step_accuracy"),
                 *[accuracy(f"step_within_{k}", f"step_accuracy_pm{k}") for k in TOLERANCES],
                 accuracy("agent_correct_upstream_substring", "agent_accuracy_upstream_substring"),
                 accuracy("step_correct_upstream_substring", "step_accuracy_upstream_substring"),
                 accuracy("parsed", "parse_rate")],
        headline="agent_accuracy",
        breakdowns=["subset", "benchmark", "level", "length"],
        reference_answer=reference_answer,
    )
