"""The three failure-attribution methods of the Who&When paper (Zhang et al., ICML 2025, Sec. 4) as solvers.

- all_at_once: the whole conversation in one prompt; the model names the agent and the step.
- step_by_step: one call per step, showing the conversation up to it; the first step the model calls an error
  ("1. Yes" at the start of the answer, as upstream tests) is the prediction, its speaker the agent; when no step
  is blamed, the last step (as upstream).
- binary_search: halves the range [start, end] with one call each ("upper half" is tested before "lower half", as
  upstream); an answer with neither picks a half at random, seeded by sample, epoch and range so reruns agree.

Before each call of a multi-call method the solver says in `state.metadata["probe"]` which step or range it asks
about. Real models never see metadata; the reference model answers the probe from the gold label, so the reference
model runs every method. Replay files hold one response per sample and so replay only all_at_once.

Every prompt is checked against the model's context (ContextBudget); with `truncate` the step contents are clipped
to fit instead, and the characters cut are recorded in the trace metadata.
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, replace
from typing import Any

from harness import ContextBudget, FaultLabel, Score, SolveContext, TaskState, Trajectory, TrajectorySample
from harness._messages import ChatMessageSystem, ChatMessageUser
from harness.tasks._multiagent import prompts, scoring

METHODS = ("all_at_once", "step_by_step", "binary_search")


@dataclass
class Attribute:
    """Runs one method. show_answer: put the task's answer in the prompts (the paper's "with ground truth")."""

    method: str
    show_answer: bool
    budget: ContextBudget
    truncate: bool = False

    async def __call__(self, state: TaskState, ctx: SolveContext) -> TaskState:
        sample = state.sample
        assert isinstance(sample, TrajectorySample) and sample.trajectory is not None
        answer = sample.task_answer if self.show_answer else None
        budget = self.budget.for_config(ctx.config)
        state.metadata["method"] = self.method
        state.metadata["truncated_chars"] = 0

        async def ask(system: str, render, seen: Trajectory, probe: dict[str, Any] | None) -> str:
            text, cut = budget.fit(render, seen, system=system, truncate=self.truncate)
            state.metadata["truncated_chars"] += cut
            state.messages = [ChatMessageSystem(content=system), ChatMessageUser(content=text)]
            state.metadata["probe"] = probe
            state.output = state.record(await ctx.model.generate(state.messages, ctx.config))
            state.messages.append(state.output.message)
            return state.output.text

        trajectory = sample.trajectory
        if self.method == "all_at_once":
            await ask(prompts.ALL_AT_ONCE_SYSTEM, lambda t: prompts.all_at_once(t, answer), trajectory, None)
            return state
        steps = trajectory.steps
        if self.method == "step_by_step":
            chosen = len(steps) - 1
            for i, step in enumerate(steps):
                reply = await ask(prompts.STEP_BY_STEP_SYSTEM, lambda t: prompts.step_by_step(t, answer),
                                  trajectory.prefix(i + 1), {"method": "step_by_step", "step": step.index})
                if reply.lower().strip().startswith("1. yes"):
                    chosen = i
                    break
        else:
            start, end, guesses = 0, len(steps) - 1, 0
            while start < end:
                mid = start + (end - start) // 2
                segment = replace(trajectory, steps=steps[start:end + 1])
                reply = (await ask(prompts.BINARY_SEARCH_SYSTEM,
                                   lambda t, s=start, m=mid, e=end: prompts.binary_search(t, answer, s, m, e), segment,
                                   {"method": "binary_search", "start": start, "mid": mid, "end": end})).lower()
                upper = "upper half" in reply
                if not upper and "lower half" not in reply:
                    guesses += 1
                    seed = hashlib.sha256(f"{sample.id}/{state.epoch}/{start}/{end}".encode()).digest()
                    upper = random.Random(seed).random() < 0.5
                start, end = (start, mid) if upper else (min(mid + 1, end), end)
            chosen = start
            state.metadata["random_halves"] = guesses
        state.metadata["prediction"] = {"agent": steps[chosen].agent, "step": steps[chosen].index}
        return state


class AttributionScorer:
    async def __call__(self, state: TaskState, ctx: SolveContext) -> Score:
        sample = state.sample
        assert isinstance(sample, TrajectorySample) and sample.trajectory is not None
        found = state.metadata.get("prediction")
        prediction = (scoring.Prediction(found["agent"], found["step"], str(found["step"])) if found
                      else scoring.parse_response(state.completion))
        result = scoring.score(prediction, FaultLabel.from_json(sample.target), sample.trajectory)
        result.metadata.update({k: state.metadata[k] for k in ("method", "truncated_chars", "random_halves")
                                if k in state.metadata})
        return result


def reference_answer(state: TaskState) -> str:
    """The gold answer in the format the asking method parses (see the module docstring)."""
    sample = state.sample
    fault = FaultLabel.from_json(sample.target).faults[0]
    probe = state.metadata.get("probe")
    if probe is None:
        return f"Agent Name: {fault.agent}\n Step Number: {fault.step}\n Reason for Mistake: the gold label."
    if probe["method"] == "step_by_step":
        return "1. Yes.\n2. Reason: the gold label." if probe["step"] == fault.step else "1. No.\n2. Reason: the gold label."
    position = next(i for i, s in enumerate(sample.trajectory.steps) if s.index == fault.step)
    return "upper half" if position <= probe["mid"] else "lower half"
