"""Scoring a single-fault attribution (which agent, which step) against the gold label.

Comparison is exact: agents after `normalize_agent` (case folded, "Orchestrator (-> X)" is the Orchestrator), steps as
integers. Upstream Who&When's evaluate.py compares strings by containment (`actual in predicted`), so gold step "1"
accepts "10" and gold agent "Assistant" accepts "Assistant_Expert" (ag2ai/Agents_Failure_Attribution#14); that figure
is also recorded, as `*_upstream_substring`, only to compare with published numbers. A missing or unparseable
prediction counts as wrong everywhere.

Error categories of a miss: unparseable (no agent or no step found), hallucinated_agent (an agent that is not in the
trajectory), invalid_step (a step the trajectory does not have), wrong_agent, right_agent_wrong_step. The signed
step offset (predicted - gold) is in values["step_offset"] and Score.metadata for grouping by distance.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from harness import FaultLabel, Score, Trajectory, normalize_agent

TOLERANCES = (1, 2, 3, 4, 5)

# The last "Agent Name:" / "Step Number:" (models often restate the format before answering); markdown emphasis,
# quotes and brackets around the value are allowed.
_AGENT = re.compile(r"agent\s*name\s*\**\s*[:：](.*?)(?:step\s*number|$)", re.IGNORECASE | re.MULTILINE)
_STEP = re.compile(r"step\s*number\s*\**\s*[:：]\s*\**\s*[\"'`(\[]*\s*(?:step\s*)?(-?\d+)", re.IGNORECASE)


@dataclass
class Prediction:
    agent: str | None
    step: int | None
    step_text: str | None = None  # the digits as written, for the upstream substring figure

    @property
    def parsed(self) -> bool:
        return bool(self.agent) and self.step is not None


def parse_response(text: str) -> Prediction:
    agents = [_clean(m.group(1)) for m in _AGENT.finditer(text or "")]
    steps = [m.group(1) for m in _STEP.finditer(text or "")]
    agent = next((a for a in reversed(agents) if a), None)
    return Prediction(agent, int(steps[-1]) if steps else None, steps[-1] if steps else None)


def _clean(value: str) -> str:
    value = value.strip().strip("*`'\" ").rstrip(".,;").strip()
    if len(value) > 1 and (value[0], value[-1]) in (("(", ")"), ("[", "]")):
        value = value[1:-1].strip()
    return value


def score(prediction: Prediction, gold: FaultLabel, trajectory: Trajectory) -> Score:
    fault = gold.faults[0]
    gold_agent = normalize_agent(fault.agent)
    agent_ok = prediction.agent is not None and normalize_agent(prediction.agent) == gold_agent
    step_ok = prediction.step is not None and prediction.step == fault.step
    values = {"agent_correct": float(agent_ok), "step_correct": float(step_ok),
              "agent_correct_upstream_substring": float(prediction.agent is not None and fault.agent in prediction.agent),
              "step_correct_upstream_substring": float(prediction.step_text is not None
                                                       and str(fault.step) in prediction.step_text),
              "parsed": float(prediction.parsed)}
    offset = prediction.step - fault.step if prediction.step is not None and fault.step is not None else None
    for k in TOLERANCES:
        values[f"step_within_{k}"] = float(offset is not None and abs(offset) <= k)
    metadata: dict = {"gold_agent": fault.agent, "gold_step": fault.step}
    if offset is not None:
        values["step_offset"] = float(offset)
        metadata["step_offset"] = offset
    category = None
    if not prediction.parsed:
        category = "unparseable"
    elif normalize_agent(prediction.agent) not in trajectory.agents() | {gold_agent}:
        category = "hallucinated_agent"
    elif trajectory.step(prediction.step) is None:
        category = "invalid_step"
    elif not agent_ok:
        category = "wrong_agent"
    elif not step_ok:
        category = "right_agent_wrong_step"
    answer = None if not prediction.parsed else f"{prediction.agent} @ step {prediction.step}"
    explanation = None if category is None else (
        f"gold: {fault.agent} @ step {fault.step}" + (f"; off by {offset:+d} steps" if offset else ""))
    return Score(value=float(agent_ok and step_ok), values=values, answer=answer, explanation=explanation,
                 error_category=category, metadata=metadata)
