"""AEGIS (Kong et al., 2025; arXiv 2509.14295, ICLR 2026): identifying the faulty agents of a multi-agent system and
the failure mode of each of their errors.

Successful runs of six multi-agent frameworks (AgentVerse, DyLAN, LLM Debate, MacNet, Magentic-One, smolagents) on
GSM8K, MATH, HumanEval, MMLU(-Pro), SciBench and GAIA had errors of the 14 MAST failure modes injected into chosen
agents (by prompt injection or response corruption). Aegis-Bench, the test split, has 600 trajectories; train (7,146)
and val (1,787) are for training detectors.

Evaluation as in the paper: the model reads the whole log (query and every step with its agent, role and phase;
never the injection labels) and answers {"faulty_agents": [{"agent_name", "error_type"}]}, an empty list allowed
(prompts.py). Scoring (scoring.py): micro and macro precision / recall / F1 over (agent, mode) pairs, over agents and
over modes, and the exact-match ratio of the pair set, each with a 95% bootstrap interval. Unparseable answers count
as predicting nothing; the upstream figures that skip them are reported beside, labelled `*_skip_unparseable`.
Agent names compare case-insensitively (harness.normalize_agent). Breakdowns: framework, benchmark, task type.

The paper's main table (micro/macro F1 in %, SOURCE.md) is attached as reference numbers. Long logs: a prompt over
the model's context (-T context_tokens) errors the sample unless the `truncate` variant clips step contents to fit.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from harness import (ContextBudget, Dataset, Fault, FaultLabel, Reference, Sample, Score, SolveContext, Step, Task,
                     TaskState, Trajectory, TrajectorySample, accuracy, task)
from harness._messages import ChatMessageSystem, ChatMessageUser
from harness.tasks.aegis import prompts, scoring

PAPER = "AEGIS (arXiv 2509.14295), main table, Aegis-Bench"
# model -> (pair micro F1, pair macro F1, agent micro, agent macro, mode micro, mode macro), in %
_TABLE = {
    "Random": (0.33, 0.21, 4.54, 3.56, 11.23, 11.15),
    "Qwen2.5-7B-Instruct": (5.02, 2.52, 27.55, 14.49, 14.96, 11.36),
    "Qwen2.5-14B-Instruct": (5.47, 2.20, 35.78, 12.71, 20.24, 5.91),
    "Qwen2.5-14B + SFT (Aegis-SFT)": (16.62, 9.99, 76.53, 47.97, 27.53, 27.66),
    "Qwen2.5-14B + GRPO (Aegis-GRPO)": (6.84, 2.55, 49.74, 18.38, 21.19, 16.10),
    "Qwen3-8B non-thinking + SFT": (9.68, 5.73, 64.79, 38.96, 20.37, 20.36),
    "DCL (contrastive, small)": (8.33, 5.30, 22.93, 20.23, 24.73, 27.70),
    "Qwen2.5-72B-Instruct": (5.60, 2.20, 37.46, 14.51, 17.72, 16.58),
    "gpt-oss-120b": (6.53, 1.71, 38.58, 5.53, 20.38, 12.05),
    "GPT-4.1": (7.44, 2.27, 37.48, 11.12, 20.65, 15.75),
    "GPT-4o-mini": (5.76, 1.63, 38.54, 14.72, 19.95, 16.02),
    "o3": (7.86, 2.27, 40.31, 23.27, 22.37, 16.76),
    "Gemini-2.5-Flash": (6.99, 2.76, 42.02, 16.45, 23.47, 19.85),
    "Gemini-2.5-Pro": (6.96, 2.88, 41.32, 16.15, 19.93, 16.29),
    "Claude-Sonnet-4": (7.68, 2.34, 40.73, 15.51, 21.21, 16.55),
}
_COLUMNS = ("pair_micro_f1", "pair_macro_f1", "agent_micro_f1", "agent_macro_f1", "mode_micro_f1", "mode_macro_f1")
REFERENCE = [Reference(model, metric, value, source=PAPER,
                       note="upstream scorer: case-sensitive agents, unparseable answers skipped")
             for model, row in _TABLE.items() for metric, value in zip(_COLUMNS, row)]


def trajectory(record: dict[str, Any]) -> Trajectory:
    source = record["input"]
    if isinstance(source, str):
        source = json.loads(source)
    steps = [Step(index=int(s["step"]), agent=str(s["agent_name"]), content=str(s.get("content") or ""),
                  role=s.get("agent_role") or None, phase=s.get("phase") or None)
             for s in source["conversation_history"]]
    if not steps:
        raise ValueError("the record has no conversation")
    return Trajectory(steps=steps, task=str(source.get("query") or ""), final_output=source.get("final_output"))


def to_samples(record: dict[str, Any], config: str | None) -> Iterator[Sample]:
    steps = trajectory(record)
    faults = record["output"]["faulty_agents"]
    label = FaultLabel([Fault(agent=f["agent_name"], mode=f["error_type"]) for f in faults])
    meta = record.get("metadata") or {}
    yield TrajectorySample(
        id=str(record["id"]),
        input=[{"role": "system", "content": prompts.SYSTEM}, {"role": "user", "content": prompts.user_prompt(steps)}],
        target={**label.to_json(), "injection_strategies": [f.get("injection_strategy") for f in faults]},
        metadata={"framework": meta.get("framework"), "benchmark": meta.get("benchmark"),
                  "task_type": meta.get("task_type"), "generator": meta.get("model")},
        trajectory=steps,
    )


@dataclass
class Identify:
    """One call with the whole log, after checking it fits the model's context."""

    budget: ContextBudget
    truncate: bool = False

    async def __call__(self, state: TaskState, ctx: SolveContext) -> TaskState:
        sample = state.sample
        assert isinstance(sample, TrajectorySample) and sample.trajectory is not None
        text, cut = self.budget.for_config(ctx.config).fit(prompts.user_prompt, sample.trajectory,
                                                           system=prompts.SYSTEM, truncate=self.truncate)
        state.metadata["truncated_chars"] = cut
        state.messages = [ChatMessageSystem(content=prompts.SYSTEM), ChatMessageUser(content=text)]
        state.output = state.record(await ctx.model.generate(state.messages, ctx.config))
        state.messages.append(state.output.message)
        return state


class AegisScorer:
    async def __call__(self, state: TaskState, ctx: SolveContext) -> Score:
        sample = state.sample
        assert isinstance(sample, TrajectorySample) and sample.trajectory is not None
        result = scoring.score(state.completion, FaultLabel.from_json(sample.target), sample.trajectory)
        result.metadata["truncated_chars"] = state.metadata.get("truncated_chars", 0)
        return result


def reference_answer(state: TaskState) -> str:
    label = FaultLabel.from_json(state.sample.target)
    return json.dumps({"faulty_agents": [{"agent_name": f.agent, "error_type": f.mode} for f in label.faults]})


@task("aegis", variants={"truncate": {"truncate": True}})
def aegis(context_tokens: int = 128_000, chars_per_token: float = 4.0, truncate: bool = False) -> Task:
    """context_tokens: the evaluated model's context (0: no check); truncate: clip step contents to fit it."""
    return Task(
        name="aegis",
        version="1.0",
        description="Which agents erred, with which of 14 failure modes, in 600 error-injected multi-agent logs.",
        dataset=Dataset(
            to_samples=to_samples,
            hub="Fancylalala/AEGIS",
            split="test",
            bundled=Path(__file__).parent / "data" / "test.jsonl",
            size=600,
            license="MIT (repository LICENSE, Copyright (c) 2025 AEGIS Team)",
            citation="Kong et al., AEGIS: Automated Error Generation and Identification for Multi-Agent Systems, "
                     "arXiv 2509.14295 (ICLR 2026)",
        ),
        solver=Identify(ContextBudget(context_tokens, chars_per_token=chars_per_token), truncate),
        scorers=[AegisScorer()],
        metrics=[*scoring.metrics(), accuracy("parsed", "parse_rate")],
        headline="pair_micro_f1",
        breakdowns=["framework", "benchmark", "task_type"],
        reference=REFERENCE,
        reference_answer=reference_answer,
    )
