"""Scoring: the answer is the last <answer>...</answer> of the final text (else the whole text).

Rules decide before any judge: an answer equal to one of the accepted answers after normalisation (NFKC,
case-folded, punctuation as spaces, whitespace collapsed) is correct; that is also reported on its own as
`exact_match`, the judge-free figure. Otherwise the task's judge decides:
- `strict` (v1.0): the extracted answer against the list, the rules of SOURCE.md (exact numbers, dates and
  names; hedged or partial answers wrong), GPT-4o-class at temperature 0, a JSON verdict;
- `contains` (v1.0): is an accepted answer anywhere in the final report (the lenient rule Vision-DeepResearch
  reports 28.5 / 20.4 under); a report that contains an accepted answer as whole words is correct by rule.
Each score records the judge's name, version, model and prompt hash (or "rule" when no judge was asked).
"""
from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from harness import Score, TaskState
from harness.judge import JudgeNoVerdict, ask, panel
from harness.tasks.mmsearch_plus import prompts

_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_PUNCT = re.compile(r"[^\w\s]")
JUDGE_CONFIG = {"temperature": 0, "max_tokens": 300}
SEARCH_TOOLS = {"text_search", "image_search"}


def extract_answer(text: str) -> tuple[str, bool]:
    found = _ANSWER.findall(text or "")
    if found:
        return found[-1].strip(), True
    return (text or "").strip(), False


def normalize(text: str) -> str:
    return " ".join(_PUNCT.sub(" ", unicodedata.normalize("NFKC", text)).casefold().split())


def exact_match(answer: str, answers: list[str]) -> bool:
    norm = normalize(answer)
    return bool(norm) and any(norm == normalize(a) for a in answers)


def contains_match(report: str, answers: list[str]) -> bool:
    padded = f" {normalize(report)} "
    return any(normalize(a) and f" {normalize(a)} " in padded for a in answers)


def parse_verdict(judge: str, text: str) -> tuple[bool, str]:
    """{"correct": bool, "reason": str}, possibly inside a code fence or surrounded by text."""
    match = re.search(r"\{.*\}", text or "", re.DOTALL)
    try:
        value = json.loads(match.group(0)) if match else None
    except ValueError:
        value = None
    if not isinstance(value, dict) or not isinstance(value.get("correct"), bool):
        raise JudgeNoVerdict(judge, 'expected JSON {"correct": true|false, "reason": ...}', text)
    return value["correct"], str(value.get("reason") or "")


def trajectory_stats(state: TaskState) -> dict[str, float]:
    tools = [e for e in state.events if e.kind == "tool" and e.name != "submit" and not (e.metadata or {}).get("upfront")]
    return {"tool_calls": float(len(tools)), "invalid_tool_calls": float(sum(1 for e in tools if e.error)),
            "rounds": float(sum(1 for e in state.events if e.kind == "model")),
            "cap_hit": float(state.limit == "turns"),
            "searched": float(any(e.name in SEARCH_TOOLS and not e.error for e in tools))}


class MMSearchScorer:
    def __init__(self, judge: str, mode: str):
        if judge not in prompts.JUDGES:
            raise ValueError(f"judge must be one of {', '.join(prompts.JUDGES)}, not {judge!r}")
        self.judge, self.mode = judge, mode

    async def __call__(self, state: TaskState, ctx: Any) -> Score:
        answers = list(state.sample.target)
        report = state.completion
        answer, tagged = extract_answer(report)
        exact = exact_match(answer, answers)
        version, template = prompts.JUDGES[self.judge]
        judged = {"judge": self.judge, "version": version, "prompt_sha256": prompts.sha(template)}
        if exact or (self.judge == "contains" and contains_match(report, answers)):
            correct, reason, judged["model"] = True, "matches an accepted answer after normalisation", "rule"
        elif not answer:
            correct, reason, judged["model"] = False, "no answer", "rule"
        else:
            clients = panel(ctx.judges, self.judge)
            client = clients[0]
            prompt = template.format(question=state.sample.metadata["question"], answers=json.dumps(answers, ensure_ascii=False),
                                     answer=answer if self.judge == "strict" else report)
            reply = await ask(ctx, state, client, prompt, JUDGE_CONFIG, role=self.judge)
            correct, reason = parse_verdict(client.name, reply.text)
            judged["model"] = client.name
        stats = trajectory_stats(state)
        category = None
        if not correct:
            if not answer:
                category = "no_answer"
            elif stats["cap_hit"]:
                category = "hit_cap"
            elif self.mode not in ("no_search", "image_search") and not stats["searched"]:
                category = "never_searched"
            else:
                category = "searched_wrong" if stats["searched"] or self.mode == "image_search" else "wrong"
        return Score(value=float(correct), values={"correct": float(correct), "exact_match": float(exact), **stats},
                     answer=answer, explanation=reason, error_category=category,
                     metadata={**judged, "tagged": tagged, "search_keys": state.metadata.get("search_keys", {})})
