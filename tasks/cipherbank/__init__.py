"""CipherBank (Li et al., 2025; arXiv 2504.19093): decrypting privacy-sensitive plaintexts from 3 fixed
known-plaintext examples.

Evaluation as in the paper and its code: 262 plaintexts x 9 ciphers = 2,358 problems; the fixed 3-shot prompt
(prompts.py) with the system prompt for chat models and none for reasoning models (variant `no_system`);
the `hint` variant adds the cipher's description. The answer is the last <result>...</result> (else the whole
response); it is correct when it equals the plaintext after deleting ASCII spaces, ignoring case
(upstream compare_strings, not OpenCompass's strip-only variant). Levenshtein similarity is also reported.
Accuracy is reported overall (= the mean over ciphers, since every cipher has the same plaintexts), per
cipher, per cipher category and per domain, each with a 95% confidence interval.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Iterator

from harness import Dataset, Reference, Sample, Score, Task, TaskState, accuracy, generate, mean, task
from harness.tasks.cipherbank import prompts, scoring

CATEGORIES = {
    "Rot13": "substitution", "Atbash": "substitution", "Polybius": "substitution", "Vigenere": "substitution",
    "Reverse": "transposition", "SwapPairs": "transposition",
    "ParityShift": "custom", "DualAvgCode": "custom", "WordShift": "custom",
}
CIPHERS = list(CATEGORIES)
PAPER = "CipherBank (arXiv 2504.19093), Table 3"
REFERENCE = [
    Reference("Claude-3.5-Sonnet", "accuracy", 45.14, source=PAPER),
    Reference("o1", "accuracy", 40.59, source=PAPER),
    *[Reference("Claude-3.5-Sonnet", "accuracy", v, group=f"cipher={c}", source=PAPER) for c, v in {
        "Rot13": 83.21, "Atbash": 75.19, "Polybius": 72.90, "Vigenere": 1.91, "Reverse": 63.93,
        "SwapPairs": 6.87, "ParityShift": 58.21, "DualAvgCode": 4.96, "WordShift": 39.12}.items()],
]


def _samples(few_shot: int, hint: bool):
    def to_samples(record: dict[str, Any], config: str | None) -> Iterator[Sample]:
        plaintext = record["plaintext"]
        if not isinstance(plaintext, str) or not plaintext:
            raise ValueError("record has no plaintext")
        digest = hashlib.sha1(plaintext.encode()).hexdigest()[:10]
        for cipher in [config] if config else CIPHERS:
            yield Sample(
                id=f"{cipher}-{digest}",
                input=prompts.user_prompt(cipher, record[cipher], few_shot=few_shot, hint=hint),
                target=plaintext,
                metadata={"cipher": cipher, "category": CATEGORIES[cipher], "domain": record["domain"],
                          "sub_domain": record["sub_domain"]},
            )

    return to_samples


class CipherScorer:
    async def __call__(self, state: TaskState, ctx) -> Score:
        return scoring.score(state.completion, state.sample.target)


@task("cipherbank", variants={"hint": {"hint": True}, "no_system": {"system_prompt": False}, "agent": {"agent": True}})
def cipherbank(hint: bool = False, system_prompt: bool = True, few_shot: int = 3, agent: bool = False,
               agent_turns: int = 20) -> Task:
    """hint: describe the cipher in the prompt. system_prompt: False for o1/R1-style models, as the paper ran them.
    agent: the model may try decryptions with a `python` tool (in a sandbox) for up to agent_turns turns before
    it submits; what it submits (or, without a submit, its last message) is scored as the paper scores a response."""
    system = prompts.SYSTEM if system_prompt else None
    if agent:
        from harness.agent import AgentLimits, python, react

        solver = react(tools=[python(timeout=60)], prompt=(system or "") + prompts.AGENT, limits=AgentLimits(turns=agent_turns))
    else:
        solver = generate(system=system)
    return Task(
        name="cipherbank",
        version="1.0",
        description="Decryption of 2,358 ciphertexts (9 ciphers) from 3 known-plaintext examples.",
        dataset=Dataset(
            to_samples=_samples(few_shot, hint),
            hub="yu0226/CipherBank",
            hub_configs=CIPHERS,
            split="test",
            bundled=Path(__file__).parent / "data" / "test.jsonl",
            size=2358,
            license="MIT (README badge)",
            citation="Li et al., CipherBank, Findings of ACL 2025, arXiv 2504.19093",
        ),
        solver=solver,
        scorers=[CipherScorer()],
        metrics=[accuracy("correct"), mean("levenshtein", "levenshtein_similarity")],
        headline="accuracy",
        breakdowns=["cipher", "category", "domain"],
        reference=[] if hint else REFERENCE,  # Table 3 was measured without the hint
        reference_answer=lambda state: f"<result>{state.sample.target}</result>",
        needs_sandbox=agent,
    )
