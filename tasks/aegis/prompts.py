"""The AEGIS identification prompt. The conversation is rendered exactly as upstream evaluation/api_model.py's
extract_conversation_text does (query, then "Step {step} - {agent} ({role}) [{phase}]:" per step; the step number and
phase are the trace's own, never a label). Upstream's instruction file (baseline/prompt_cot.txt) is not published;
the instruction here states the same task and the official output format, and lists the 14 failure modes of the
taxonomy (SOURCE.md). The system message is upstream's."""
from __future__ import annotations

from harness import Trajectory

SYSTEM = "You are a precise JSON response generator. Always respond with valid JSON only."

MODES = {
    "FM-1.1": "Task specification deviation", "FM-1.2": "Role specification deviation",
    "FM-1.3": "Add redundant steps", "FM-1.4": "Remove conversation history",
    "FM-1.5": "Remove termination conditions", "FM-2.1": "Repeat handled tasks",
    "FM-2.2": "Make request ambiguous", "FM-2.3": "Deviate from main goal",
    "FM-2.4": "Hide important information", "FM-2.5": "Ignore other agents",
    "FM-2.6": "Inconsistent reasoning", "FM-3.1": "Premature termination",
    "FM-3.2": "Remove verification steps", "FM-3.3": "Incorrect verification",
}


def conversation_text(trajectory: Trajectory) -> str:
    text = f"QUERY:\n{trajectory.task}\n\nCONVERSATION HISTORY:\n"
    for s in trajectory.steps:
        text += f"Step {s.index} - {s.agent} ({s.role or ''}) [{s.phase or ''}]:\n{s.content}\n\n"
    return text.strip()


def user_prompt(trajectory: Trajectory) -> str:
    modes = "\n".join(f"- {code}: {name}" for code, name in MODES.items())
    return (
        "The following is the full log of a multi-agent system working on a task. Some agents may have made errors; "
        "each error belongs to one of these failure modes:\n"
        f"{modes}\n\n"
        f"{conversation_text(trajectory)}\n\n"
        "Identify every agent that made an error and the failure mode of each of its errors. Name agents exactly as "
        "they appear in the log. If no agent made an error, return an empty list.\n"
        'Respond with JSON only, in this format: {"faulty_agents": [{"agent_name": "<agent name>", "error_type": "FM-x.y"}]}'
    )
