"""How EvalPlus decides that one output is right (evalplus 0.3.1, `evalplus/eval/__init__.py`
unsafe_execute and `_special_oracle.py`), applied in the harness to outputs parsed from the sandbox;
and MBPP+'s per-task input types (`evalplus/data/mbpp.py` mbpp_deserialize_inputs).

The special oracles key on the entry point's name, as upstream does.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

# Outputs that cannot be serialised (re.Match): EvalPlus keeps only `out is not None`.
MBPP_OUTPUT_NOT_NONE_TASKS = ["check_str", "text_match_three", "text_starta_endb"]
# Problems whose answer is a collection in any order.
MBPP_OUTPUT_SET_EQ_TASKS = ["similar_elements", "find_char_long", "common_in_nested_lists", "extract_singly",
                            "larg_nnum", "intersection_array", "find_dissimilar", "Diff"]


def _surface_Area(base_edge, height):  # Mbpp/581: "height" read as the pyramid's perpendicular height
    slant_height = math.sqrt((base_edge / 2) ** 2 + height**2)
    return round(base_edge**2 + 4 * (base_edge * slant_height) / 2)


def _digit_distance_nums(num1, num2):  # Mbpp/558: the shorter number padded with zeros
    a, b = str(num1), str(num2)
    width = max(len(a), len(b))
    return sum(abs(int(x) - int(y)) for x, y in zip(a.zfill(width), b.zfill(width)))


def _poly(xs: list, x: float):  # HumanEval/32
    return sum(coeff * math.pow(x, i) for i, coeff in enumerate(xs))


def is_floats(x) -> bool:
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)) and x:
        return all(isinstance(i, float) for i in x)
    if isinstance(x, np.ndarray):
        return x.dtype == np.float64 or x.dtype == np.float32
    return False


# Entry points whose outputs a special oracle judges (see _matches): `==` does not decide them.
SPECIAL_ORACLE = {"mbpp": {"are_equivalent", "sum_div", "surface_Area", "digit_distance_nums",
                           *MBPP_OUTPUT_SET_EQ_TASKS, *MBPP_OUTPUT_NOT_NONE_TASKS},
                  "humaneval": {"find_zero"}}


def decided_by_equality(dataset: str, entry_point: str, expected: list, atol: float) -> list[bool]:
    """For each expected output of a phase, in order: whether `out == exp` alone decides that input
    in first_failure (no special oracle, and no float tolerance: atol is still 0 there)."""
    if entry_point in SPECIAL_ORACLE.get(dataset, ()):
        return [False] * len(expected)
    decided = []
    for exp in expected:
        if atol == 0 and is_floats(exp):
            atol = 1e-6
        decided.append(atol == 0)
    return decided


def first_failure(dataset: str, entry_point: str, inputs: list, outputs: list, expected: list,
                  atol: float) -> int | None:
    """The index of the first output that is wrong, or None when all are right.

    `outputs` may be shorter than `inputs` (the run stopped): a missing output is a failure. Like
    upstream, atol becomes 1e-6 for the rest of the phase once an expected output is a float."""
    for i, exp in enumerate(expected):
        if i >= len(outputs):
            return i
        try:
            ok, atol = _matches(dataset, entry_point, inputs[i], outputs[i], exp, atol)
        except Exception:  # what raises in upstream's check fails the input there too
            ok = False
        if not ok:
            return i
    return None


def _matches(dataset: str, entry_point: str, inp: list, out: Any, exp: Any, atol: float) -> tuple[bool, float]:
    exact_match = out == exp
    if dataset == "mbpp":
        if entry_point == "are_equivalent":  # Mbpp/164
            exact_match = True
        elif entry_point == "sum_div":  # Mbpp/295
            exact_match = exact_match or out == 0
        elif entry_point == "surface_Area":  # Mbpp/581
            exact_match = exact_match or abs(out - _surface_Area(*inp)) <= atol
        elif entry_point == "digit_distance_nums":  # Mbpp/558
            exact_match = exact_match or out == _digit_distance_nums(*inp)
        elif entry_point in MBPP_OUTPUT_SET_EQ_TASKS:
            exact_match = set(out) == set(exp)
        elif entry_point in MBPP_OUTPUT_NOT_NONE_TASKS:
            exact_match = out == exp if isinstance(out, bool) else exp == (out is not None)
    if dataset == "humaneval" and entry_point == "find_zero":
        return bool(abs(_poly(*inp, out)) <= atol), atol
    if atol == 0 and is_floats(exp):
        atol = 1e-6
    if not exact_match and atol != 0:
        if type(out) is not type(exp):
            return False, atol
        if isinstance(exp, (list, tuple)) and len(out) != len(exp):
            return False, atol
        return bool(np.allclose(out, exp, rtol=1e-07, atol=atol)), atol
    return bool(exact_match), atol


def mbpp_deserialize_inputs(task_id: str, inputs: list) -> list:
    """JSON has no tuples, sets or complex numbers: the per-task table of EvalPlus restores them."""
    n = int(task_id.split("/")[-1])
    if n in (2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596, 616, 630, 726, 740, 744,
             809):
        return [[tuple(lst) for lst in inp] for inp in inputs]
    if n in (63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780):
        return [[[tuple(lst) for lst in lst_lst] for lst_lst in inp] for inp in inputs]
    if n in (75, 413, 444, 753):
        return [[[tuple(lst) for lst in inp[0]]] + [inp[1]] for inp in inputs]
    if n in (106, 750):
        return [[inp[0]] + [tuple(inp[1])] for inp in inputs]
    if n == 115:
        return [[[set(item) if isinstance(item, list) and len(item) else {} for item in inp[0]]] for inp in inputs]
    if n == 124:
        return [(float(inp[0]), complex(inp[1])) for inp in inputs]
    if n in (250, 405, 446, 617, 720, 763, 808):
        return [[tuple(inp[0])] + [inp[1]] for inp in inputs]
    if n in (259, 401, 445):
        nested = [[[tuple(lst) for lst in lst_lst] for lst_lst in inp] for inp in inputs]
        return [[tuple(lst) for lst in inp] for inp in nested]
    if n == 278:
        flat = [[[tuple(item) if isinstance(item, list) else item for item in inp[0]]] for inp in inputs]
        return [[tuple(lst) for lst in inp] for inp in flat]
    if n == 307:
        return [[tuple(inp[0])] + [inp[1], inp[2]] for inp in inputs]
    if n == 722:
        return [[{key: tuple(value) for key, value in inp[0].items()}] + inp[1:] for inp in inputs]
    if n == 252:
        return [[complex(inp[0])] for inp in inputs]
    if n in (580, 615, 791):
        def to_tuple(x):
            return tuple(to_tuple(item) for item in x) if isinstance(x, list) else x

        return [to_tuple(inp) for inp in inputs]
    return inputs
