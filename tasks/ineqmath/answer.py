"""The official final-answer judge (upstream models/utils/compute_score.py), step by step.

1. Locate the answer sentence: from the last "final answer is", else "answer is", else "final answer" to the
   end (with \\( \\) turned into $ and whitespace collapsed); else the last three lines. Empty -> wrong.
2. Relation problems: the first full choice string in the sentence; else the keyword cascade; else the
   judge LLM names a letter. Where upstream then takes `random.choice` for an invalid letter, we take a
   choice seeded by (sample, epoch), so a re-run picks the same, and we record that it happened.
3. Bound problems: the judge LLM extracts "C=..." from the sentence; `$` and spaces are removed from both
   sides; equal strings are correct, otherwise the judge decides equivalence with structured output
   (EquivalenceCheck). An unusable equivalence answer counts as not equivalent, as upstream.
"""
from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from typing import Awaitable, Callable

from pydantic import BaseModel, ValidationError

from harness.judge import JudgeNoVerdict
from harness.tasks.ineqmath import prompts
from harness.tasks.ineqmath.prompts import CHOICES, CHOICES_DICT

# (prompt, structured) -> the judge's text; structured asks for EquivalenceCheck JSON
AskJudge = Callable[[str, bool], Awaitable[str]]

TRIGGERS = ("final answer is", "answer is", "final answer")
KEYWORDS = [("A", ("(A)", "leq", "≤")), ("B", ("(B)", "geq", "≥")), ("C", ("(C)", "=")), ("D", ("(D)", "<")),
            ("E", ("(E)", ">")), ("F", ("(F)", "none", "None"))]


class EquivalenceCheck(BaseModel):
    analysis: str
    equivalent: bool


def equivalence_format() -> dict:
    """OpenAI structured output for EquivalenceCheck, as the openai SDK's parse() sends it (strict schema)."""
    schema = EquivalenceCheck.model_json_schema()
    schema["additionalProperties"] = False
    return {"type": "json_schema", "json_schema": {"name": "EquivalenceCheck", "schema": schema, "strict": True}}


@dataclass
class AnswerVerdict:
    correct: bool
    sentence: str
    extracted: str
    method: str  # no_answer | choice_string | keyword | llm_letter | random_choice | exact | llm_equivalence
    detail: str = ""

    @property
    def random_choice(self) -> bool:
        return self.method == "random_choice"


def locate_answer(prediction: str | None) -> str:
    prediction = prediction.strip() if prediction else ""
    if not prediction:
        return ""
    lower = prediction.lower()
    for phrase in TRIGGERS:
        idx = lower.rfind(phrase)
        if idx != -1:
            found = prediction[idx:].strip().replace("\\(", "$").replace("\\)", "$")
            return re.sub(r"\s+", " ", found).strip()
    return "\n".join(prediction.split("\n")[-3:])


def relation_by_rules(answer_sentence: str) -> tuple[str, str] | None:
    """(choice, method) when the official rules decide without the LLM, else None."""
    sentence = re.sub(r"\s+", " ", answer_sentence).strip()
    for choice in CHOICES:
        if choice in sentence:
            return choice, "choice_string"
    for letter, keys in KEYWORDS:
        if any(k in sentence for k in keys):
            return CHOICES_DICT[letter], "keyword"
    return None


def clean_bound(answer: str) -> str:
    return answer.replace("$", "").replace(" ", "").strip()


async def judge_answer(response: str, prob_type: str, gold: str, ask: AskJudge, *, seed: str) -> AnswerVerdict:
    """`seed` names the sample and epoch: it fixes the random choice upstream makes for an unusable letter."""
    sentence = locate_answer(response)
    if sentence == "":
        return AnswerVerdict(False, "", "", "no_answer")
    if prob_type == "relation":
        decided = relation_by_rules(sentence)
        if decided is not None:
            choice, method = decided
            return AnswerVerdict(choice == gold, sentence, choice, method)
        collapsed = re.sub(r"\s+", " ", sentence).strip()
        letter = (await ask(prompts.relation_extraction(collapsed), False)).strip()
        if letter in CHOICES_DICT:
            return AnswerVerdict(CHOICES_DICT[letter] == gold, sentence, CHOICES_DICT[letter], "llm_letter")
        choice = random.Random(f"ineqmath:{seed}").choice(CHOICES)
        return AnswerVerdict(choice == gold, sentence, choice, "random_choice",
                             detail=f"the judge answered {letter[:200]!r}, not a letter A-F")
    if prob_type != "bound":
        raise ValueError(f"unknown problem type {prob_type!r}")
    extracted = (await ask(prompts.bound_extraction(sentence), False)).strip()
    truth, pred = clean_bound(gold), clean_bound(extracted)
    if truth == pred:
        return AnswerVerdict(True, sentence, extracted, "exact")
    reply = await ask(prompts.bound_equivalence(truth, pred), True)
    try:
        check = EquivalenceCheck.model_validate(json.loads(reply))
    except (json.JSONDecodeError, ValidationError) as e:
        # the judge's failure, not the model's: the sample errors (harness.judge.JudgeNoVerdict), never scores 0
        raise JudgeNoVerdict("answer", f"the equivalence answer is not the structured output ({type(e).__name__})",
                             reply) from None
    return AnswerVerdict(check.equivalent, sentence, extracted, "llm_equivalence", detail=check.analysis[:2000])
