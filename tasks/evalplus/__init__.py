"""EvalPlus (Liu et al., NeurIPS 2023; arXiv 2305.01210): HumanEval+ and MBPP+, functional correctness
by differential testing against the ground truth on many more inputs than the original tests.

Evaluation as the official `evalplus.evaluate` (evalplus 0.3.1) does it:
- Data: HumanEval+ v0.1.10 (164 problems) and MBPP+ v0.2.0 (378), the release `.jsonl.gz` files.
  `evalplus/humaneval` and `evalplus/mbpp` are EvalPlus's "base tests" figures (the original
  benchmarks' tests as inputs); `..._plus` adds the extra inputs (the "+" figures: base and plus pass).
- Prompts: chat models get EvalPlus's instruction and the problem in a code block; the `completion`
  variant (base models) continues the stripped prompt and is cut at the official stop strings.
- Programs: a replayed EvalPlus sample is tested verbatim, as `evalplus.evaluate` does: a
  `solution` as given, a `completion` after the problem's prompt (no sanitizing; the format travels
  from the replay row with the response). A chat response (also a replayed {sample_id, response}
  row) is reduced to a program as upstream's sanitizer (evalplus/sanitize.py) does (extract.py):
  the code block (or longest parsing run), its imports, and what the entry point reaches. Where
  upstream's program is not what Python runs, ours follows Python (extract.py lists each case):
  helpers that only `yield` or return nothing are kept; of two definitions of a name the last one
  is kept; annotated, multi-target, tuple and augmented assignments, item assignments and method
  calls on module-level objects, and module-level if/for/while/try/with blocks are kept when the
  entry point needs what they bind or change; dependencies are free names (a parameter `n` does not
  pull in `n = int(input())`). As upstream: imports come first, prints, asserts, example calls and
  `if __name__ == "__main__":` blocks are dropped (also a trailing `input()` that would crash), and
  a statement the entry point needs that crashes on load still crashes. The search for a parsing
  run without fences is bounded (linear in the response's lines; upstream's is cubic).
- Expected outputs: the canonical solution run on every input, in the sandbox, cached per content
  hash (execution.py). MBPP+ inputs get upstream's per-task types (oracle.py).
- Verdicts: every input of a phase must match (oracle.py: `==`, the float tolerance `atol`, at least
  1e-6 for floats, the special oracles of HumanEval/32 and MBPP+), each input under
  max(min_time_limit, 4 x the canonical solution's time on it), each phase within
  min(60 s, the sum of those) + 2 s. The first failing input of each phase is kept in the trace.
- Metrics: pass@k with the unbiased estimator for every k up to the epochs run (`--epochs n`).
  `replay:PATH` reads EvalPlus sample files ({task_id, solution} or {task_id, completion}).

Execution (driver.py, execution.py): the candidate runs in a test process per phase (forked from the
driver before the driver has read its payload, as evalplus forks one per `untrusted_check`) that
never sees the driver's memory, stdout or report nonce, compiled as Python compiles a file; its
outputs come back as plain data and the verdict is computed here. As evalplus's fast_check, a
candidate's run ends at its first failing input, and plus (which counts only with base) is not run
after base failed: the driver holds a fingerprint of each expected output that `==` alone decides
(no special oracle, no float tolerance yet) and stops at the first output whose fingerprint
differs. The harness checks that output itself; when it is right after all (equal values that the
fingerprint does not unify, such as a dict_items view where a set of pairs is expected), the
program runs again on every input with no early stop, and the Score's metadata says `rerun`.
Standard-library values whose `==` is structural (ChainMap, UserList, UserString, MappingProxyType,
dict_keys/items views, deque, range, Fraction, Decimal, dates, arrays) travel as data that compares
as `==` does; objects of other classes equal nothing. The ground truth runs in a fresh sandbox, goes on past an input it cannot
finish, retries such inputs once, and never caches them; every input left out is named in each
Score and counted at the end of the run.

What a program can cause is the model's failure (scored 0 with a category): a missing, forged or
malformed report (`invalid_report`), a program that kills its test process or the driver. Only a
sandbox that itself fails is an infrastructure error.

Known differences: upstream's default per-input floor is 1 s in evalplus 0.3.1 (`--min-time-limit`);
the issue tracker and the EvalPlus paper use 4 s, the default here (-T min_time_limit=1 for 0.3.1's).
Memory is the sandbox's limit (upstream: 4 GiB); an input on which the canonical solution itself
cannot run in the sandbox is left out and reported in every Score of that problem. Upstream's
hub datasets (evalplus/humanevalplus, evalplus/mbppplus) hold only the "OriginFmt" test code
(deduplicated base+plus inputs with results), which cannot give the base verdict; they are not
a source here: use the release files with --data.

Known upstream bugs, where the verdicts here are kept and differ from evalplus 0.3.1's:
- HumanEval/32 (`find_zero`): upstream's special-oracle loop `continue`s past its progress counter,
  so every program fails HumanEval/32 there, the canonical solution included; here the oracle
  (|poly(xs, out)| <= atol) decides.
- Mbpp/392 fails there only after Mbpp/255's 1.66M-tuple expected output has grown upstream's
  worker past its 4 GiB limit (one worker process checks many problems); here every problem runs in
  its own process.
- A program whose annotations name something it never imported (`List` without `from typing import
  List`) fails in Python and in evalplus; an earlier version of this harness passed it (the driver's
  `from __future__ import annotations` leaked into the candidate's compile). Fixed.
"""
from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Iterator

from harness import Dataset, InfraError, Sample, Score, Task, TaskState, UsageError, generate, task
from harness.scoring import PassAtK
from harness.model import read_replay_jsonl
from harness.model._builtin import ReplayRow, replay_format
from harness.tasks.evalplus import prompts
from harness.tasks.evalplus.driver import encode, fingerprint
from harness.tasks.evalplus.execution import GroundTruth, ReportError, Truth, parse_phase, run_driver
from harness.tasks.evalplus.extract import extract_solution, sanitize
from harness.tasks.evalplus.oracle import decided_by_equality, first_failure, mbpp_deserialize_inputs

DATA = Path(__file__).parent / "data"
CITATION = "Liu et al., Is Your Code Generated by ChatGPT Really Correct?, NeurIPS 2023, arXiv 2305.01210"


def _problem_samples(completion: bool):
    def to_samples(record: dict[str, Any], config: str | None) -> Iterator[Sample]:
        task_id, prompt = record["task_id"], record["prompt"]
        for key in ("entry_point", "canonical_solution", "base_input", "plus_input", "atol"):
            if key not in record:
                raise KeyError(f"{key} (not an EvalPlus release record)")
        problem = {k: record[k] for k in ("task_id", "prompt", "entry_point", "canonical_solution", "base_input",
                                          "plus_input", "atol")}
        yield Sample(
            id=task_id,
            input=prompts.task_prompt(prompt) if completion else prompts.chat_message(prompt),
            target=prompt + record["canonical_solution"],
            metadata={"entry_point": record["entry_point"], "base_inputs": len(record["base_input"]),
                      "plus_inputs": len(record["plus_input"])},
            files={"problem.json": json.dumps(problem)},
        )

    return to_samples


def _repr(value: Any, limit: int = 300) -> str:
    """A bounded repr: reprlib never builds the whole text of a huge wrong output before cutting it."""
    import reprlib

    r = reprlib.Repr()
    r.maxlevel, r.maxlist, r.maxtuple, r.maxset, r.maxdict, r.maxstring, r.maxother = 6, 20, 20, 20, 20, limit, limit
    r.maxlong = limit
    try:
        text = r.repr(value)
    except Exception as e:  # a repr that raises (a hostile or broken object) must not fail the scorer
        text = f"<unrepresentable {type(value).__name__}: {type(e).__name__}>"
    return text if len(text) <= limit else text[:limit] + "..."


# An expected output longer than this as JSON gets no fingerprint: hashing every candidate's output of
# that size would cost the driver more than stopping early saves.
FINGERPRINT_MAX_CHARS = 1 << 20


class EvalPlusScorer:
    def __init__(self, dataset: str, phases: list[str], completion: bool, min_time_limit: float,
                 gt_time_limit_factor: float, timeout_per_task: float):
        self.dataset, self.phases, self.completion = dataset, phases, completion
        self.min_time_limit, self.factor, self.timeout_per_task = min_time_limit, gt_time_limit_factor, timeout_per_task
        self.truth = GroundTruth(dataset)

    def solution(self, response: str, problem: dict[str, Any], fmt: str = "response") -> str:
        """The program to test. A replayed EvalPlus sample is run verbatim, as `evalplus.evaluate` runs
        it: a `solution` as given, a `completion` after the problem's prompt. What a model answered
        (fmt "response") is extracted and sanitized (extract.py)."""
        ep = problem["entry_point"]
        if fmt == "solution":
            return response
        if fmt == "completion":
            return problem["prompt"] + response
        if self.completion:
            stops = prompts.stop_strings(self.dataset)
            return sanitize(prompts.task_prompt(problem["prompt"]) + prompts.truncate(response, stops), ep)
        return extract_solution(response, ep, problem["prompt"])

    def inputs(self, problem: dict[str, Any], phase: str) -> list:
        raw = problem[f"{phase}_input"]
        return mbpp_deserialize_inputs(problem["task_id"], raw) if self.dataset == "mbpp" else raw

    async def __call__(self, state: TaskState, ctx) -> Score:
        if ctx.sandbox is None:
            raise InfraError("EvalPlus runs model-written code: it needs a sandbox")
        problem = json.loads(state.sample.files["problem.json"])
        ep, atol = problem["entry_point"], problem["atol"]
        code = await asyncio.to_thread(self.solution, state.completion, problem, replay_format(state.output))
        inputs = {p: self.inputs(problem, p) for p in self.phases}
        truth = await self.truth.get(ctx.sandbox, problem["prompt"] + problem["canonical_solution"], ep, inputs)

        tested = {p: [i for i in range(len(inputs[p])) if i not in truth[p].skipped] for p in self.phases}
        request = []
        for p in self.phases:
            limits = [max(self.min_time_limit, self.factor * truth[p].times[i]) for i in tested[p]]
            request.append({"name": p, "inputs": [encode(inputs[p][i]) for i in tested[p]], "limits": limits,
                            "deadline_s": min(self.timeout_per_task, sum(limits)) + 2.0,
                            "expect": await asyncio.to_thread(self._fingerprints, truth[p], tested[p], ep, atol)})
        verdicts: dict[str, dict[str, Any]] = {}
        category = None
        rerun = False

        def judge(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
            return {p: self._verdict(p, report[p], inputs[p], tested[p], truth[p], ep, atol) for p in self.phases}

        try:
            if not code.strip():
                raise _NoCode()
            try:
                verdicts = judge(await run_driver(ctx.sandbox, code, ep, request, trusted=False))
            except _RightAfterAll:
                # the driver stopped at an output whose fingerprint differs and that is right after all:
                # the whole program again, every input, nothing stopped early
                rerun = True
                verdicts = judge(await run_driver(ctx.sandbox, code, ep, [{**r, "expect": None} for r in request],
                                                  trusted=False))
        except _NoCode:
            verdicts = {p: {"status": "fail", "error": "no code in the response"} for p in self.phases}
            category = "no_code"
        except (ReportError, ValueError, KeyError, TypeError, RecursionError) as e:
            # Only the program under test can make the report missing, forged or malformed (the
            # driver that writes it is out of its reach): the model's failure, never a pass, never
            # an infrastructure error. A sandbox that itself fails raises InfraError above instead.
            verdicts = {p: {"status": "fail", "error": f"invalid test report: {e}"} for p in self.phases}
            category = "invalid_report"
        untested = 0
        for p in self.phases:
            if truth[p].skipped:
                verdicts[p]["skipped_inputs"] = {str(i): why for i, why in truth[p].skipped.items()}
                untested += len(truth[p].skipped)
        base = verdicts["base"]["status"] == "pass"
        values = {"base": float(base)}
        if "plus" in self.phases:
            values["plus"] = float(base and verdicts["plus"]["status"] == "pass")
        if untested:
            values["untested_inputs"] = float(untested)
        value = values["plus"] if "plus" in values else values["base"]
        if not value and category is None:
            category = next(v["category"] for v in verdicts.values() if v["status"] == "fail")
        explanation = "; ".join(f"{p}: {v['status']}" + (f" at input #{v['failed_input_index']}"
                                                          if "failed_input_index" in v else "")
                                + (f" ({v['error']})" if v.get("error") else "") for p, v in verdicts.items())
        metadata: dict[str, Any] = dict(verdicts)
        if rerun:
            metadata["rerun"] = "the first run stopped at an output that only looked wrong: run again, no early stop"
        return Score(value=value, values=values, answer=code, explanation=explanation,
                     error_category=None if value else category, metadata=metadata)

    def _fingerprints(self, truth: Truth, tested: list[int], ep: str, atol: float) -> list[str | None]:
        """What the driver stops a candidate at (driver.py): the fingerprint of each tested input's expected
        output where `==` alone decides it, else None; None too for an output too large to be worth hashing
        in the driver (Mbpp/255's 1.7M tuples), which the harness compares as it compares every output.
        Computed once per problem and phase (off the event loop: large outputs take seconds)."""
        if truth.fingerprints is None:
            expected = [truth.expected[i] for i in tested]
            decided = decided_by_equality(self.dataset, ep, expected, atol)
            truth.fingerprints = [fingerprint(encode(e, True), FINGERPRINT_MAX_CHARS) if d else None
                                  for e, d in zip(expected, decided)]
        return truth.fingerprints

    def _verdict(self, phase: str, raw: Any, inputs: list, tested: list[int], truth, ep: str, atol) -> dict[str, Any]:
        if isinstance(raw, dict) and raw.get("not_run"):
            # base failed by an error or a timeout: plus (which counts only with base) was not spent on
            return {"status": "not_run", "tested": 0, "error": f"not run: {raw['not_run']}"}
        run = parse_phase(raw, len(tested))
        if run.tampered:
            raise ReportError(run.error or "the test process was tampered with")
        expected = [truth.expected[i] for i in tested]
        bad = first_failure(self.dataset, ep, [inputs[i] for i in tested], run.outputs, expected, atol)
        if isinstance(raw, dict) and raw.get("mismatch") is not None and (bad is None or bad >= len(run.outputs)):
            raise _RightAfterAll()
        if bad is None:
            return {"status": "pass", "tested": len(tested)}
        out: dict[str, Any] = {"status": "fail", "tested": len(tested), "answered": len(run.outputs),
                               "failed_input_index": tested[bad],
                               "failed_input": _repr(inputs[tested[bad]]), "expected": _repr(expected[bad])}
        if bad < len(run.outputs):
            out.update(got=_repr(run.outputs[bad]), category="wrong_output")
        else:
            out["error"] = run.error or "no output"
            out["category"] = ("load_error" if run.error_index is None else
                               "timeout" if "timeout" in (run.error or "") else "runtime_error")
        return out


class _NoCode(Exception):
    pass


class _RightAfterAll(Exception):
    """The output the driver stopped at (its fingerprint differs from the expected one) passes the oracle."""


def _untested_summary(task: Task, facts: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """Every input left out of the tests, said at the end of the run: such an input cannot fail anyone."""
    hit = [r for r in rows if (r.get("scores") or {}).get("untested_inputs")]
    if not hit:
        return []
    total = sum(int(r["scores"]["untested_inputs"]) for r in hit)
    problems = sorted({r["sample_id"] for r in hit})
    return [f"{total} test inputs of {len(problems)} problems were not tested: the canonical solution did not "
            f"run them in this sandbox ({', '.join(problems[:10])}{', ...' if len(problems) > 10 else ''}); "
            f"the reasons are in each sample's trace (scores, skipped_inputs)"]


def _evalplus_row(row: dict) -> ReplayRow:
    """An EvalPlus sample (evalplus.data.load_solutions): {task_id, solution} or {task_id, completion};
    `solution` wins when both are there, as upstream. The format travels with the response, so the
    scorer tests it verbatim."""
    if "task_id" not in row:
        raise ValueError('no "task_id" (nor "sample_id")')
    for key in ("solution", "completion"):
        if key in row:
            if not isinstance(row[key], str):
                raise ValueError(f"{key} must be a string, not {type(row[key]).__name__} (several samples of a "
                                 f"task are several lines with the same task_id)")
            return ReplayRow(str(row["task_id"]), None, row[key], key)
    raise ValueError('neither "solution" nor "completion"')


def _read_samples(path: Path) -> Iterator[ReplayRow]:
    """EvalPlus sample files: JSON Lines of {task_id, solution} or {task_id, completion} (n lines per task
    for n samples, replayed as epochs 0..n-1 in file order), or the harness's own {sample_id, response}
    rows (chat responses, sanitized)."""
    return read_replay_jsonl(path, _evalplus_row, expected='{"task_id", "solution"} or {"task_id", "completion"}')


RELEASES = {  # the full data: the release assets upstream's evalplus.data downloads
    "humaneval": "the release file HumanEvalPlus-v0.1.10.jsonl.gz from "
                 "https://github.com/evalplus/humanevalplus_release/releases/tag/v0.1.10",
    "mbpp": "the release file MbppPlus-v0.2.0.jsonl.gz from https://github.com/evalplus/mbppplus_release/releases/tag/v0.2.0",
}


def _build(name: str, dataset: str, phases: list[str], bundled: Path, size: int, completion: bool,
           min_time_limit: float, gt_time_limit_factor: float, timeout_per_task: float, agent: bool = False,
           agent_turns: int = 20) -> Task:
    plus = "plus" in phases
    headline = "plus_pass@1" if plus else "base_pass@1"
    metrics = [PassAtK("plus_pass", "plus")] if plus else []
    metrics.append(PassAtK("base_pass", "base"))

    if agent and completion:
        raise UsageError("the agent variant is for chat models: it cannot be combined with completion=true")

    def reference(state: TaskState) -> str:
        sample = state.sample
        problem = json.loads(sample.files["problem.json"])
        if completion:
            return problem["canonical_solution"]
        return f"```python\n{sample.target}\n```"

    return Task(
        name=f"evalplus/{name}",
        version="1.0",
        description=f"EvalPlus {'+'.join(phases)} tests ({size} problems), differential testing in a sandbox.",
        dataset=Dataset(to_samples=_problem_samples(completion), bundled=bundled, size=size,
                        license="Apache-2.0 (EvalPlus releases); HumanEval MIT, MBPP CC-BY-4.0", citation=CITATION,
                        extra={"data_source": RELEASES[dataset]}),
        solver=_agent_solver(agent_turns) if agent else generate(),
        scorers=[EvalPlusScorer(dataset, phases, completion, min_time_limit, gt_time_limit_factor, timeout_per_task)],
        metrics=metrics,
        headline=headline,
        config={"temperature": 0.0, "stop": prompts.stop_strings(dataset)} if completion else {"temperature": 0.0},
        needs_sandbox=True,
        sandbox_limits={"memory_mb": 4096},  # EvalPlus's own default cap (EVALPLUS_MAX_MEMORY_BYTES, 4 GiB)
        reference_answer=reference,
        read_replay=_read_samples,
        on_finish=_untested_summary,
    )


def _agent_solver(turns: int):
    """The agentic variant: the model may run code with `python` in its own sandbox before it submits its
    program, which is then scored exactly as a chat response is. The sandbox gets none of the sample's files:
    problem.json holds the canonical solution and the tests."""
    from harness.agent import AgentLimits, python, react

    return react(tools=[python(timeout=60)], prompt=prompts.AGENT_SYSTEM, files=False, limits=AgentLimits(turns=turns))


HUMANEVAL = DATA / "HumanEvalPlus-v0.1.10.first20.jsonl.gz"
HUMANEVAL_MINI = DATA / "HumanEvalPlus-Mini-v0.1.10.first20.jsonl.gz"
MBPP = DATA / "MbppPlus-v0.2.0.first20.jsonl.gz"
VARIANTS = {"completion": {"completion": True}}
AGENT_VARIANT = {"agent": {"agent": True}}


@task("evalplus/humaneval", variants=VARIANTS)
def humaneval(completion: bool = False, min_time_limit: float = 4.0, gt_time_limit_factor: float = 4.0,
              timeout_per_task: float = 60.0) -> Task:
    """HumanEval as EvalPlus tests it (base inputs). completion: plain continuation for base models."""
    return _build("humaneval", "humaneval", ["base"], HUMANEVAL, 164, completion, min_time_limit,
                  gt_time_limit_factor, timeout_per_task)


@task("evalplus/humaneval_plus", variants={**VARIANTS, **AGENT_VARIANT, "mini": {"mini": True}})
def humaneval_plus(completion: bool = False, mini: bool = False, min_time_limit: float = 4.0,
                   gt_time_limit_factor: float = 4.0, timeout_per_task: float = 60.0, agent: bool = False,
                   agent_turns: int = 20) -> Task:
    """HumanEval+ (base and plus inputs). mini: the bundled sample of HumanEval+-Mini (use --data for the full file).
    agent: the model may run its code with a `python` tool (up to agent_turns turns) before it submits."""
    return _build("humaneval_plus", "humaneval", ["base", "plus"], HUMANEVAL_MINI if mini else HUMANEVAL, 164,
                  completion, min_time_limit, gt_time_limit_factor, timeout_per_task, agent, agent_turns)


@task("evalplus/mbpp", variants=VARIANTS)
def mbpp(completion: bool = False, min_time_limit: float = 4.0, gt_time_limit_factor: float = 4.0,
         timeout_per_task: float = 60.0) -> Task:
    """MBPP (sanitized tasks kept by MBPP+) as EvalPlus tests it (base inputs)."""
    return _build("mbpp", "mbpp", ["base"], MBPP, 378, completion, min_time_limit, gt_time_limit_factor,
                  timeout_per_task)


@task("evalplus/mbpp_plus", variants={**VARIANTS, **AGENT_VARIANT})
def mbpp_plus(completion: bool = False, min_time_limit: float = 4.0, gt_time_limit_factor: float = 4.0,
              timeout_per_task: float = 60.0, agent: bool = False, agent_turns: int = 20) -> Task:
    """MBPP+ (base and plus inputs). agent: the model may run its code with a `python` tool (up to agent_turns
    turns) before it submits."""
    return _build("mbpp_plus", "mbpp", ["base", "plus"], MBPP, 378, completion, min_time_limit,
                  gt_time_limit_factor, timeout_per_task, agent, agent_turns)
