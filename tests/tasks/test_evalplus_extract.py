"""EvalPlus program extraction: the chat-response sanitizer on hand-written responses (each labelled
with the rule it checks), on every bundled canonical solution, its bounded search, and replayed
EvalPlus samples tested verbatim end to end (bwrap) with bad replay files refused up front (CLI)."""
from __future__ import annotations

import ast
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness import get_task
from harness.tasks.evalplus import extract
from harness.tasks.evalplus.extract import code_extract, extract_solution, keep_reachable, sanitize

DATA = Path(__file__).resolve().parents[2] / "tasks" / "evalplus" / "data"
HARNESS = [sys.executable, "-m", "harness.cli"]


def run_program(code: str, entry_point: str, *args):
    """Hand-written programs only: load as the driver does (fresh globals) and call the entry point."""
    globs: dict = {}
    exec(compile(code, "<solution>", "exec", dont_inherit=True), globs)
    return globs[entry_point](*args)


# ------------------------------------------------------------------ what the entry point reaches

def test_generator_helper_is_kept():
    # hand-written, the shape of MBPP+ Mbpp/630's canonical solution: the helper only yields
    code = ("def adjac(ele, sub = []):\n  if not ele:\n     yield sub\n  else:\n"
            "     yield from [idx for j in range(ele[0] - 1, ele[0] + 2)\n"
            "                for idx in adjac(ele[1:], sub + [j])]\n"
            "def get_coordinates(test_tup):\n  return list(adjac(test_tup))\n")
    kept = sanitize(code, "get_coordinates")
    assert kept == code.strip()
    assert run_program(kept, "get_coordinates", (1, 1)) == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2],
                                                              [2, 0], [2, 1], [2, 2]]


def test_procedure_nested_and_recursive_helpers_are_kept_unused_ones_dropped():
    # hand-written: a helper that returns nothing, one only a nested function calls, mutual recursion
    code = ("def fill(out, n):\n    for i in range(n):\n        out.append(i)\n\n"
            "def square(x):\n    return x * x\n\n"
            "def is_even(n):\n    return True if n == 0 else is_odd(n - 1)\n\n"
            "def is_odd(n):\n    return False if n == 0 else is_even(n - 1)\n\n"
            "def unused():\n    return 42\n\n"
            "def solve(n):\n    def inner(v):\n        return square(v)\n    out = []\n    fill(out, n)\n"
            "    return [inner(v) for v in out if is_even(v)]\n\n"
            "print(solve(5))\n")
    kept = sanitize(code, "solve")
    assert "def unused" not in kept and "print(" not in kept
    for name in ("fill", "square", "is_even", "is_odd", "solve"):
        assert f"def {name}(" in kept
    assert run_program(kept, "solve", 5) == [0, 4, 16]


def test_last_of_two_definitions_is_kept():
    # hand-written: a draft that calls a helper defined for it, then the corrected version
    code = ("def f(x):\n    return helper_v1(x)\n\ndef helper_v1(x):\n    return x\n\n"
            "print(f(1))\n\ndef f(x):\n    return x + 1\n")
    assert sanitize(code, "f") == "def f(x):\n    return x + 1"


def test_draft_read_while_loading_is_kept_before_the_redefinition():
    # hand-written: `base = f` reads the draft while the module loads, so the draft stays, in order
    code = "def f(x):\n    return x\nbase = f\ndef f(x):\n    return base(x) + 1\n"
    kept = sanitize(code, "f")
    assert kept == code.strip()
    assert run_program(kept, "f", 1) == 2


def test_assignments_and_module_level_blocks_the_entry_point_needs():
    # hand-written: each binding form, a registry filled by item assignment, a method call and a
    # decorator, a definition inside `if sys.version_info`, a table built by a for loop
    code = ("import sys\n"
            "X: int = 3\nA = B = {}\na, b = 1, 2\nc = 0\nc += a\n"
            "_REGISTRY = {}\n"
            "def register(fn):\n    _REGISTRY[fn.__name__] = fn\n    return fn\n"
            "@register\ndef double(v):\n    return 2 * v\n"
            "def triple(v):\n    return 3 * v\n"
            "_REGISTRY['t'] = triple\n_REGISTRY.update(neg=lambda v: -v)\n"
            "if sys.version_info >= (3, 0):\n    def helper(v):\n        return v + 100\nelse:\n"
            "    def helper(v):\n        return v\n"
            "SQUARES = {}\nfor i in range(5):\n    SQUARES[i] = i * i\n"
            "try:\n    from math import isqrt\nexcept ImportError:\n    isqrt = None\n"
            "UNUSED: list = []\nUNUSED.append(1)\n"
            "def f(n):\n    return (helper(n) + X + len(A) + len(B) + b + c + _REGISTRY['double'](n)\n"
            "            + _REGISTRY['t'](n) + _REGISTRY['neg'](n) + SQUARES[n] + isqrt(16))\n"
            "print(f(2))\nassert f(2) == 0\n")
    kept = sanitize(code, "f")
    assert "UNUSED" not in kept and "print(" not in kept and "assert" not in kept
    # everything else, in source order
    before_unused, after_unused = code.split("UNUSED: list = []\nUNUSED.append(1)\n")
    assert kept == before_unused + after_unused.split("print(")[0].rstrip()
    assert run_program(kept, "f", 2) == 102 + 3 + 0 + 0 + 2 + 1 + 4 + 6 - 2 + 4 + 4


def test_prints_asserts_main_blocks_and_unrelated_input_are_dropped():
    # hand-written: the parameters a, b of the entry point are not the module-level a, b read from input()
    code = ("def add(a, b):\n    return a + b\n\n"
            "def main():\n    print(add(1, 2))\n\n"
            "a = int(input())\nb = int(input())\nprint(add(a, b))\nassert add(1, 1) == 2\nmain()\ninput()\n"
            "if __name__ == '__main__':\n    import doctest\n    doctest.testmod()\n")
    assert sanitize(code, "add") == "def add(a, b):\n    return a + b"


def test_needed_statement_that_crashes_on_load_stays():
    # hand-written: the entry point reads LIMIT, which comes from input(): the program must fail on load
    code = "LIMIT = int(input())\n\ndef f(n):\n    return min(n, LIMIT)\n\nprint(f(3))\n"
    kept = sanitize(code, "f")
    assert kept == "LIMIT = int(input())\ndef f(n):\n    return min(n, LIMIT)"


def test_initialiser_call_with_a_global_effect_is_kept_output_calls_are_not():
    # hand-written: setup() assigns the table the entry point reads; show() only prints
    code = ("TABLE = None\ndef setup():\n    global TABLE\n    TABLE = [i * i for i in range(10)]\n"
            "def show():\n    print(TABLE)\nsetup()\nshow()\ndef f(n):\n    return TABLE[n]\n")
    kept = sanitize(code, "f")
    assert kept == ("TABLE = None\ndef setup():\n    global TABLE\n    TABLE = [i * i for i in range(10)]\n"
                    "setup()\ndef f(n):\n    return TABLE[n]")
    assert run_program(kept, "f", 3) == 9


def test_imports_first_future_import_as_written():
    # hand-written: the __future__ import stays first and as written; a late import is hoisted (upstream)
    code = ("from __future__ import annotations\n\ndef f(xs: List[int]) -> int:\n    return len(xs)\n\n"
            "from typing import List\n")
    kept = sanitize(code, "f")
    assert kept == ("from __future__ import annotations\nfrom typing import List\n"
                    "def f(xs: List[int]) -> int:\n    return len(xs)")
    assert run_program(kept, "f", [1, 2]) == 2


def test_module_method_call_is_kept_when_the_entry_point_uses_the_module():
    # hand-written: the setting matters only to a program that reaches `sys`
    code = ("import sys\nsys.setrecursionlimit(10000)\n"
            "def f(n):\n    return n if n < 2 else f(n - 1) + sys.maxsize * 0\n")
    assert sanitize(code, "f") == code.strip()
    assert sanitize(code.replace(" + sys.maxsize * 0", ""), "f") == (
        "import sys\ndef f(n):\n    return n if n < 2 else f(n - 1)")


def test_statements_sharing_a_line_are_cut_at_the_semicolon():
    # hand-written
    assert sanitize("import os; print(1)\nK = 2; print(K)\ndef f():\n    return K\n", "f") == (
        "import os\nK = 2\ndef f():\n    return K")


# ------------------------------------------------------------------ every bundled canonical solution

def _canonical():
    for name in ("HumanEvalPlus-v0.1.10.first20.jsonl.gz", "HumanEvalPlus-Mini-v0.1.10.first20.jsonl.gz",
                 "MbppPlus-v0.2.0.first20.jsonl.gz"):
        for line in gzip.decompress((DATA / name).read_bytes()).splitlines():
            yield json.loads(line)


@pytest.mark.parametrize("fenced", [True, False], ids=["chat", "no-fences"])
def test_every_bundled_canonical_solution_survives_the_sanitizer(fenced):
    """Canonical solutions hold no tests: the sanitized program is the same statements (module docstrings
    aside, imports first), so it defines the entry point and compiles and works the same."""
    problems = list(_canonical())
    assert len(problems) == 60
    for p in problems:
        program = p["prompt"] + p["canonical_solution"]
        response = f"Here it is:\n```python\n{program}\n```\nDone." if fenced else f"Here it is:\n{program}\nDone."
        out = extract_solution(response, p["entry_point"], p["prompt"])
        compile(out, p["task_id"], "exec", dont_inherit=True)
        body = [s for s in ast.parse(program).body
                if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
        imports = [s for s in body if isinstance(s, (ast.Import, ast.ImportFrom))]
        expected = [ast.dump(s) for s in imports + [s for s in body if s not in imports]]
        assert [ast.dump(s) for s in ast.parse(out).body] == expected, p["task_id"]


# ------------------------------------------------------------------ code_extract without fences

def test_code_extract_keeps_a_leading_assignment():
    # hand-written: the run starts at `MOD = ...`, not at the first def
    response = "Use this:\nMOD = 10 ** 9 + 7\ndef f(x):\n    return x % MOD\nIt takes x modulo MOD."
    assert code_extract(response) == "MOD = 10 ** 9 + 7\ndef f(x):\n    return x % MOD"
    assert extract_solution(response, "f", "") == "MOD = 10 ** 9 + 7\ndef f(x):\n    return x % MOD"


def test_code_extract_longest_run_among_prose():
    # hand-written: two runs, the longer wins; a trailing decorator and an unclosed call are cut off
    response = ("First try:\ndef g():\n    return 1\nBetter:\nimport math\n\ndef f(x):\n    # root\n"
                "    return math.sqrt(x)\n@decorator\nprint(f(2\n")
    assert code_extract(response) == "import math\n\ndef f(x):\n    # root\n    return math.sqrt(x)"
    assert code_extract("No code at all, sorry.") == ""


LOOPING = {
    # what small models emit when they loop: the same lines over and over, code with prose between
    "code_and_prose": ("", "def f(x):\n    return x + 1\nThis returns x plus one.\n"),
    "prose_after_code": ("def f(x):\n    return x + 1\n", "I think the answer is to add one.\n"),
    "code": ("", "def f(x):\n    return x + 1\nprint(f(1))\n"),
    "fenced_drafts": ("", "```python\ndef f(x):\n    return x + 1\n```\nLet me fix that:\n"),
}


@pytest.mark.parametrize("shape", sorted(LOOPING))
def test_looping_response_costs_linear_parses(shape, monkeypatch):
    head, loop = LOOPING[shape]
    response = head + loop * (2000 // loop.count("\n"))
    lines = response.count("\n") + 1
    calls = []
    real_parse = ast.parse

    def counting(source, *a, **k):
        calls.append(source.count("\n") + 1)
        return real_parse(source, *a, **k)

    monkeypatch.setattr(extract.ast, "parse", counting)
    out = extract_solution(response, "f", "")
    assert run_program(out, "f", 1) == 2
    # at most about one parse per line (upstream and the code before: one per pair of lines)
    assert len(calls) <= lines + 16, len(calls)


def test_pathological_response_is_capped(monkeypatch):
    # every parse fails at the end of the run (a decorator with no def), so shrinking goes line by line:
    # the documented caps stop it, and the answer is the best run so far
    response = "@decorator\n" * 2000
    lines = response.count("\n") + 1
    calls, read = [], []
    real_parse = ast.parse

    def counting(source, *a, **k):
        calls.append(1)
        read.append(source.count("\n") + 1)
        return real_parse(source, *a, **k)

    monkeypatch.setattr(extract.ast, "parse", counting)
    assert code_extract(response) == ""
    assert len(calls) <= extract.MAX_PARSES_PER_LINE * lines + 16
    # a failed parse reads up to its error line, here the whole run: the line budget ends the search
    assert sum(read) <= (extract.MAX_PARSED_PER_LINE * lines + 1024) + lines


# ------------------------------------------------------------------ replay: verbatim samples, bad files

RAISING_TAIL = ("\n\nprint(has_close_elements([1.0, 2.0], 0.5))\nif __name__ == '__main__':\n    print('main')\n"
                "raise RuntimeError('module-level code ran')\n")
DRAFT = "def has_close_elements(numbers, threshold):\n    return False  # a first draft\n\n"


def _he0():
    return next(p for p in _canonical() if p["task_id"] == "HumanEval/0")


def test_scorer_tests_samples_verbatim_and_sanitizes_responses():
    task = get_task("evalplus/humaneval_plus").build()
    scorer, p = task.scorers[0], _he0()
    program = p["prompt"] + p["canonical_solution"] + RAISING_TAIL
    assert scorer.solution(program, p, "solution") == program
    assert scorer.solution(p["canonical_solution"] + RAISING_TAIL, p, "completion") == program
    chat = scorer.solution(program, p, "response")
    assert "raise RuntimeError" not in chat and "def has_close_elements" in chat
    completion = get_task("evalplus/humaneval_plus").build("completion").scorers[0]
    assert completion.solution(program, p, "solution") == program


def _bwrap_ok() -> str | None:
    from harness.sandboxes._bwrap import bwrap_status

    st = bwrap_status()
    return None if st["ok"] else st["error"]


@pytest.mark.bwrap
def test_replayed_samples_run_verbatim_end_to_end(tmp_path, monkeypatch):
    """One problem, four epochs from one file: a `solution` (a wrong draft, the right version, a print, a
    main block, module-level code that raises) fails to load; a `completion` (prompt + completion) with
    the same tail fails too; the same text as a chat response is sanitized and passes; a clean
    `solution` passes."""
    if reason := _bwrap_ok():
        pytest.fail(f"bwrap is needed: {reason}")
    import harness
    from harness.store import Store

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    p = _he0()
    program = p["prompt"] + p["canonical_solution"]
    replay = tmp_path / "samples.jsonl"
    replay.write_text("\n".join(json.dumps(r) for r in [
        {"task_id": "HumanEval/0", "solution": DRAFT + program + RAISING_TAIL},
        {"task_id": "HumanEval/0", "completion": p["canonical_solution"] + RAISING_TAIL},
        {"sample_id": "HumanEval/0", "epoch": 2, "response": f"```python\n{DRAFT + program + RAISING_TAIL}\n```"},
        {"task_id": "HumanEval/0", "solution": program},
    ]) + "\n")
    store = Store(f"sqlite:///{tmp_path / 'h.db'}")
    run_id = harness.eval("evalplus/humaneval_plus", f"replay:{replay}", db=store, data="bundled",
                          sample_ids=["HumanEval/0"], epochs=4, sandbox="bwrap").run_id
    rows = {r["epoch"]: r for r in store.samples(store.run_tasks(run_id)[0]["id"])}
    assert {e: (r["status"], r["score"]) for e, r in rows.items()} == {
        0: ("scored", 0.0), 1: ("scored", 0.0), 2: ("scored", 1.0), 3: ("scored", 1.0)}
    assert rows[0]["error_category"] == rows[1]["error_category"] == "load_error"
    assert "RuntimeError" in rows[0]["explanation"] and "RuntimeError" in rows[1]["explanation"]
    assert rows[0]["answer"] == DRAFT + program + RAISING_TAIL  # the program tested is the one given
    assert rows[1]["answer"] == program + RAISING_TAIL
    chat = rows[2]["answer"]
    assert "raise" not in chat and "print(" not in chat and chat.count("def has_close_elements") == 1
    assert rows[3]["answer"] == program


def _cli_error(tmp_path, replay: Path) -> str:
    result = subprocess.run([*HARNESS, "eval", "--model", f"replay:{replay}", "--task", "evalplus/humaneval_plus",
                             "--data", "bundled", "--sandbox", "bwrap", "--db", f"sqlite:///{tmp_path / 'h.db'}"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


GOOD = json.dumps({"task_id": "HumanEval/0", "solution": "def has_close_elements(n, t):\n    return False\n"})


@pytest.mark.parametrize("bad, why", [
    ("{not json", "Expecting property name"),
    (json.dumps({"task_id": "HumanEval/1"}), 'neither "solution" nor "completion"'),
    (json.dumps({"solution": "x = 1"}), 'no "task_id"'),
    (json.dumps({"task_id": "HumanEval/1", "solution": ["a", "b"]}), "solution must be a string, not list"),
    (json.dumps({"sample_id": "HumanEval/1", "response": 3}), "response must be a string, not int"),
    (json.dumps({"sample_id": "HumanEval/1"}), 'no "response"'),
    (json.dumps({"sample_id": "HumanEval/1", "response": "x", "epoch": "0"}), "epoch must be an integer"),
    (json.dumps(["HumanEval/1", "x"]), "a JSON list, not an object"),
])
def test_bad_replay_line_fails_up_front_naming_file_and_line(tmp_path, bad, why):
    replay = tmp_path / "samples.jsonl"
    replay.write_text(f"{GOOD}\n\n{bad}\n{GOOD}\n")
    line = _cli_error(tmp_path, replay)
    assert f"{replay}:3: not a replay record" in line and why in line, line
    assert "internal error" not in line


def test_duplicate_replay_rows_are_refused_naming_them(tmp_path):
    replay = tmp_path / "samples.jsonl"
    rows = [{"sample_id": "HumanEval/0", "epoch": 0, "response": "a"},
            {"sample_id": "HumanEval/1", "epoch": 1, "response": "b"},
            {"sample_id": "HumanEval/0", "epoch": 0, "response": "c"},
            {"task_id": "HumanEval/1", "solution": "d"},  # no epoch: takes the free epoch 0
            {"sample_id": "HumanEval/1", "epoch": 0, "response": "e"}]
    replay.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    line = _cli_error(tmp_path, replay)
    assert "2 duplicate rows for a (sample, epoch)" in line
    assert "'HumanEval/0' epoch 0 (lines 1 and 3)" in line and "'HumanEval/1' epoch 0 (lines 4 and 5)" in line


def test_evalplus_samples_without_epochs_are_epochs_in_file_order(tmp_path):
    from harness.model import ReplayModel

    replay = tmp_path / "samples.jsonl"
    replay.write_text("\n".join(json.dumps(r) for r in [
        {"task_id": "HumanEval/0", "solution": "s0"}, {"task_id": "HumanEval/0", "completion": "c1"},
        {"sample_id": "HumanEval/0", "epoch": 3, "response": "r3"}, {"task_id": "HumanEval/0", "solution": "s2"},
    ]) + "\n")
    model, task = ReplayModel(str(replay)), get_task("evalplus/humaneval_plus").build()
    model.prepare(task)
    table = model._responses[task.name]["HumanEval/0"]
    assert {e: (r.response, r.format, r.line) for e, r in table.items()} == {
        0: ("s0", "solution", 1), 1: ("c1", "completion", 2), 2: ("s2", "solution", 4), 3: ("r3", "response", 3)}
