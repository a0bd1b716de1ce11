"""LLM-as-judge machinery shared by every judged suite.

A judge is a model client like any other (`--judge-model`, any OpenAI-compatible endpoint, vLLM, mock).
This package adds what judged scoring needs on top: `ask` sends one judge request, appends it to the
sample's calls (kind "judge", so it lands in the trace and the `calls` table) and answers repeated
requests from the `JudgeCache` (so re-scoring stored responses is free); `panel` finds the judges of a
role (several judges per criterion vote by `majority`; `Agreement` reports Krippendorff's alpha). A judge
answer that gives no verdict is the judge's failure: scorers raise `JudgeNoVerdict`, and the sample is an
infrastructure error, never a wrong answer."""
from harness.judge._call import (JudgeCache, JudgeNoVerdict, JudgeReply, ask, cache_key, forget_unusable, missing_roles,
                                 panel)
from harness.judge._vote import Agreement, agreement_key, majority

__all__ = ["Agreement", "JudgeCache", "JudgeNoVerdict", "JudgeReply", "agreement_key", "ask", "cache_key",
           "forget_unusable", "majority", "missing_roles", "panel"]
