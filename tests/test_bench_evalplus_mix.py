"""The program mix of bench/evalplus_vs_official.py: deterministic, valid Python, and each kind behaves
as its name says (run here on a hand-written problem, no evalplus needed)."""
import gzip
import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
DATA = Path(__file__).resolve().parent.parent / "tasks" / "evalplus" / "data"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


mix = _load("_evalplus_mix")

RECORD = {
    "task_id": "Hand/1",
    "entry_point": "count_big",
    "prompt": 'from typing import List\n\n\ndef count_big(xs: List[int], limit: int) -> int:\n'
              '    """How many numbers exceed limit (counted from 3 up to 7 only)."""\n',
    "canonical_solution": "    total = 0\n    for x in xs:\n        if x > limit and 3 <= x <= 7:\n"
                          "            total += 1\n    return total\n",
}
CASE, RIGHT = (([1, 3, 5, 7, 9], 4), 2)
N = 1 + 4 + len(mix.VARIANTS)


def _run(src: str):
    globs: dict = {}
    exec(compile(src, "<program>", "exec", dont_inherit=True), globs)
    return globs["count_big"](*CASE)


def test_same_seed_same_programs_other_seed_other_mutants():
    first = mix.programs(RECORD, 4, seed=0)
    assert first == mix.programs(RECORD, 4, seed=0)
    assert len(first) == N and first[0] == ("canonical", RECORD["prompt"] + RECORD["canonical_solution"])
    others = [mix.programs(RECORD, 4, seed=s) for s in (1, 2, 3)]
    assert any([p for p in o if p[0].startswith("mutant")] != [p for p in first if p[0].startswith("mutant")]
               for o in others)


def test_every_kind_runs_as_named():
    progs = dict(mix.programs(RECORD, 4, seed=0))
    assert _run(progs["canonical"]) == RIGHT
    for kind in ("wrong_then_right", "module_constants", "generator_helper", "guarded_def", "prints_a_lot",
                 "stdlib_return"):
        assert _run(progs[f"variant:{kind}"]) == RIGHT, kind
    assert _run(progs["variant:right_then_wrong"]) != RIGHT  # the later, wrong definition is the one that runs
    assert progs["variant:module_constants"].startswith("_LIMIT0: int = ")  # a leading annotated assignment
    assert "yield" in progs["variant:generator_helper"]
    with pytest.raises(NameError, match="List"):  # annotations are evaluated at def time
        _run(progs["variant:typing_removed"])
    assert "while True" in progs["variant:infinite_loop"]
    got = _run(progs["variant:stdlib_return"])
    assert type(got).__name__ == "Fraction" and got == RIGHT  # equal, not builtin


def test_infinite_loop_only_on_some_inputs():
    src = dict(mix.programs(RECORD, 4))["variant:infinite_loop"]
    globs: dict = {}
    exec(compile(src.replace("while True:\n            pass", "raise TimeoutError"), "<p>", "exec"), globs)
    outcomes = []
    for xs in ([], [1], [12], [5, 6, 7], [10, 20, 30, 4]):  # repr lengths 7, 8, 9, 14, 20
        try:
            outcomes.append(globs["count_big"](xs, 4) == _count(xs))
        except TimeoutError:
            outcomes.append("loops")
    assert "loops" in outcomes and True in outcomes


def _count(xs):
    return sum(1 for x in xs if x > 4 and 3 <= x <= 7)


def test_mutants_compile_and_differ_from_the_original():
    canonical = RECORD["prompt"] + RECORD["canonical_solution"]
    muts = [src for kind, src in mix.programs(RECORD, 4) if kind.startswith("mutant:")]
    assert len(muts) == 4 and len(set(muts)) == 4
    import ast
    assert all(ast.unparse(ast.parse(m)) != ast.unparse(ast.parse(canonical)) for m in muts)
    assert any(_run(m) != RIGHT for m in muts)


def test_few_mutation_sites_pad_with_unfinished_programs():
    record = {"task_id": "Hand/2", "entry_point": "ident", "prompt": "def ident(x):\n", "canonical_solution": "    return x\n"}
    progs = mix.programs(record, 4)
    kinds = [k for k, _ in progs]
    assert len(progs) == N
    assert kinds.count("mutant:return") == 1 and "mutant:stub" in kinds and "mutant:raise" in kinds
    assert "variant:typing_removed" not in kinds  # nothing to remove: replaced, not repeated


@pytest.mark.parametrize("name", ["HumanEvalPlus-v0.1.10.first20.jsonl.gz", "MbppPlus-v0.2.0.first20.jsonl.gz"])
def test_bundled_problems_give_n_valid_programs(name):
    with gzip.open(DATA / name, "rt") as fh:
        records = [json.loads(line) for line in fh]
    padded = 0
    for rec in records:
        progs = mix.programs(rec, 4)
        assert len(progs) == N, rec["task_id"]
        for kind, src in progs:
            compile(src, f"{rec['task_id']} {kind}", "exec", dont_inherit=True)
        padded += sum(k == "canonical" for k, _ in progs) - 1
    assert padded <= 0.05 * N * len(records)  # only one-line solutions run out of mutants


def test_a_kind_left_out_of_the_mix_leaves_every_problem_the_same_count(tmp_path):
    bench = _load("evalplus_vs_official")
    ident = {"task_id": "Hand/2", "entry_point": "ident", "prompt": "def ident(x):\n", "canonical_solution": "    return x\n"}
    n = bench.write_mix([RECORD, ident], tmp_path / "s.jsonl", tmp_path / "k.jsonl", 4, 0,
                        frozenset({"variant:infinite_loop"}))
    kinds = [json.loads(line) for line in open(tmp_path / "k.jsonl")]
    assert n == N - 1 and len(kinds) == 2 * n
    assert not any(k["kind"] == "variant:infinite_loop" for k in kinds)
    assert [k["task_id"] for k in kinds] == ["Hand/1"] * n + ["Hand/2"] * n
