"""The four step-wise judges of the paper (§3.3, App. B), re-implemented: their prompts are the paper's,
their worked examples ours (the originals are withheld), so their verdicts are labelled "re-implemented".

Each judge answers `<Answer>: True|False` (True: the solution passes that check). The numerical-computation
judge instead writes Python checks; each runs in the sandbox, never in the harness, and the judge passes
only if every check sets `answer == True` (a check that fails, times out or sets nothing fails it)."""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from harness.judge import JudgeNoVerdict

STEP_JUDGES = ["toy_case", "logical_gap", "numerical_approximation", "numerical_computation"]
CHECK_TIMEOUT_S = 10.0

_ANSWER = re.compile(r"<?Answer>?\s*:?\s*\**\s*(True|False)\b", re.IGNORECASE)
_FENCED = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL)
_HEADER = re.compile(r"(?m)^(?=#\s*Validation for Expression)")


def verdict(text: str) -> bool | None:
    """The judge's final True/False, or None when it gave none."""
    found = _ANSWER.findall(text or "")
    return found[-1].lower() == "true" if found else None


def code_checks(text: str) -> list[str]:
    """The snippets after <Codes>: fenced blocks, else one snippet per "# Validation for Expression" header."""
    idx = text.rfind("<Codes>")
    if idx == -1:
        return []
    section = text[idx + len("<Codes>"):].lstrip(":").strip()
    fenced = [c.strip() for c in _FENCED.findall(section) if c.strip()]
    if fenced:
        return fenced
    section = _ANSWER.split(section)[0] if _ANSWER.search(section) else section
    return [c.strip() for c in _HEADER.split(section) if c.strip() and "answer" in c]


@dataclass
class CheckRun:
    passed: bool
    returncode: int | None
    timed_out: bool
    stderr: str


@dataclass
class StepVerdict:
    """A judge that gives no verdict raises JudgeNoVerdict (the sample errors): a StepVerdict always has one."""

    passed: bool
    checks: list[dict[str, Any]] = field(default_factory=list)


async def run_check(sandbox, code: str) -> CheckRun:
    """One check in a fresh sandbox process; the verdict line carries a nonce the check cannot know in advance."""
    nonce = secrets.token_hex(8)
    program = f"{code}\n\nprint({nonce!r}, bool(answer == True))\n"  # noqa: E712 - sympy booleans compare to True
    async with sandbox.acquire() as sb:
        res = await sb.exec(["python3", "-c", program], timeout_s=CHECK_TIMEOUT_S)
    last = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""
    return CheckRun(res.ok and last == f"{nonce} True", res.returncode, res.timed_out, res.stderr[-500:])


async def judge_steps(criterion: str, text: str, sandbox) -> StepVerdict:
    if criterion != "numerical_computation":
        v = verdict(text)
        if v is None:  # the judge's failure, not the model's: the sample errors, never fails this criterion
            raise JudgeNoVerdict(criterion, "no <Answer>: True/False", text)
        return StepVerdict(v)
    checks = code_checks(text)
    if not checks:
        # no numerically verifiable expression: nothing can be wrong, unless the judge says otherwise
        v = verdict(text)
        return StepVerdict(v is not False)
    if sandbox is None:
        raise RuntimeError("the numerical-computation judge needs a sandbox (the task sets needs_sandbox)")
    runs = [await run_check(sandbox, code) for code in checks]
    return StepVerdict(all(r.passed for r in runs),
                       [{"code": c, **r.__dict__} for c, r in zip(checks, runs)])
