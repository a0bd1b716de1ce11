"""Reading Who&When-layout cases: one JSON object per case with `question`, `history` (the trajectory), and the label
`mistake_agent` / `mistake_step` (0-based index into `history`) / `mistake_reason`.

Algorithm-Generated (CaptainAgent/AG2) names the speaker in `history[i].name`; Hand-Crafted (Magentic-One) and
CORRECT-Error name it in `history[i].role`. Only `question`, the history and (in with-ground-truth prompts) the task's
answer reach the model; every label field stays in the sample's target.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

from harness import Fault, FaultLabel, Step, Trajectory, TrajectorySample
from harness.tasks._multiagent import prompts

# keys of a case that are the answer to the attribution question
LABEL_KEYS = ("mistake_agent", "mistake_step", "mistake_reason", "mistake_type", "labels")


def speaker_key(record: dict[str, Any]) -> str:
    """Algorithm-Generated cases carry per-agent system prompts and name speakers in `name`."""
    history = record["history"]
    return "name" if "system_prompt" in record or any("name" in h for h in history) else "role"


def trajectory(record: dict[str, Any]) -> Trajectory:
    history = record["history"]
    if isinstance(history, str):  # hub exports may serialise the list
        history = json.loads(history)
    if not isinstance(history, list) or not history:
        raise ValueError("the case has no history")
    key = speaker_key({**record, "history": history})
    steps = [Step(index=i, agent=str(h.get(key) or "Unknown Agent"), content=str(h.get("content") or ""),
                  role=h.get("role") if key == "name" else None)
             for i, h in enumerate(history)]
    prompts = record.get("system_prompt")
    return Trajectory(steps=steps, task=str(record.get("question") or ""),
                      participants=sorted(prompts) if isinstance(prompts, dict) else [])


def labelled(record: dict[str, Any]) -> bool:
    """Whether the case carries a fault label: cases exported from the harness's own runs leave it null for a person
    to fill in (harness/cli/_export.py)."""
    return all(record.get(k) not in (None, "") for k in ("mistake_agent", "mistake_step"))


def label(record: dict[str, Any]) -> FaultLabel:
    step = record["mistake_step"]
    if isinstance(step, str):
        step = step.strip()
    return FaultLabel([Fault(agent=str(record["mistake_agent"]), step=int(step))],
                      reason=record.get("mistake_reason"))


def task_answer(record: dict[str, Any]) -> str:
    """Who&When calls it `ground_truth`, CORRECT-Error `groundtruth`."""
    value = record.get("ground_truth", record.get("groundtruth"))
    return "" if value is None else str(value)


def read_case_files(path: Path) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """A case file, a folder of case files (searched recursively, numbered files in numeric order), or JSON Lines
    of cases. Each file's record gets `_file` (the file's stem) and `_folders` (the names of the folders it sits in,
    nearest first, up to and including `path`), from which the suites take sample ids and subsets."""
    if path.is_file() and path.suffix == ".jsonl":
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        yield None, json.loads(line)
                    except json.JSONDecodeError as e:
                        yield None, {"__invalid__": f"{path.name}:{lineno}: not JSON ({e.msg})"}
        return
    files = sorted(path.rglob("*.json"), key=_natural) if path.is_dir() else [path]
    for file in files:
        folders = [p.name for p in file.relative_to(path).parents][:-1] + [path.name] if path.is_dir() else [file.parent.name]
        try:
            record = json.loads(file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            yield None, {"__invalid__": f"{'/'.join(folders[:1] + [file.stem])}: not JSON ({e.msg})"}
            continue
        if isinstance(record, dict):
            yield None, {**record, "_file": file.stem, "_folders": folders}
        else:
            yield None, {"__invalid__": f"{'/'.join(folders[:1] + [file.stem])}: not a case object"}


def _natural(path: Path) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.as_posix())]


def case_sample(record: dict[str, Any], sample_id: str, metadata: dict[str, Any], *, show_answer: bool,
                invalid: str | None = None) -> TrajectorySample:
    """The sample of one case; its input is the all-at-once prompt (the multi-call methods render their own). A case
    without a fault label has nothing to score against: it is invalid (stored as errored with the reason)."""
    steps = trajectory(record)
    answer = task_answer(record)
    has_label = labelled(record)
    if not has_label:
        invalid = invalid or ("the case has no fault label: its mistake_agent or mistake_step is empty, so there is "
                              "nothing to score against")
    return TrajectorySample(
        id=sample_id,
        input=[{"role": "system", "content": prompts.ALL_AT_ONCE_SYSTEM},
               {"role": "user", "content": prompts.all_at_once(steps, answer if show_answer else None)}],
        target=label(record).to_json() if has_label else None, metadata=metadata, invalid=invalid, trajectory=steps,
        task_answer=answer)
