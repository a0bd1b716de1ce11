"""Answer extraction and the paper's metrics (upstream utils/tools.py and test.py)."""
from __future__ import annotations

import re

from harness import Score
from harness.scoring import levenshtein_similarity

_RESULT = re.compile(r"<result>(.*?)</result>", re.DOTALL)


def extract(response: str) -> str:
    """The last <result>...</result>, stripped; the whole response when there is none (as upstream)."""
    found = _RESULT.findall(response)
    return found[-1].strip() if found else response


def is_correct(prediction: str, reference: str) -> bool:
    """Upstream compare_strings: ASCII spaces deleted, then a case-insensitive comparison."""
    pred, ref = prediction.replace(" ", ""), reference.replace(" ", "")
    return len(pred) == len(ref) and pred.lower() == ref.lower()


def similarity(prediction: str, reference: str) -> float:
    """Upstream levenshtein_similarity on the lower-cased, unmodified strings (spaces count)."""
    return levenshtein_similarity(prediction.lower(), reference.lower())


def score(response: str, reference: str) -> Score:
    answer = extract(response)
    correct = is_correct(answer, reference)
    category = None
    if not correct:
        if not _RESULT.search(response):
            category = "no_result_tag"
        elif not answer:
            category = "empty_answer"
        elif len(answer.replace(" ", "")) != len(reference.replace(" ", "")):
            category = "length_mismatch"
        else:
            category = "wrong_characters"
    return Score(value=float(correct), values={"correct": float(correct), "levenshtein": similarity(answer, reference)},
                 answer=answer, error_category=category)
