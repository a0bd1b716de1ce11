"""A realistic mix of programs per EvalPlus problem, for bench/evalplus_vs_official.py.

For one problem (an EvalPlus release record) `programs()` gives exactly `1 + mutants + len(VARIANTS)`
(kind, program) pairs, the same on every machine for the same seed:
- `canonical`: prompt + canonical_solution, as upstream verifies it;
- `mutant:<op>`: the canonical program with one mechanical change made on its `ast` (a comparison
  swapped, an integer constant off by one, an arithmetic or boolean operator swapped, a statement
  dropped, a return value negated or replaced); only mutants that compile and differ from the original;
- `variant:<name>`: programs shaped as chat models write them (see VARIANTS), all from the canonical
  solution, most of them correct, so the verdicts test the scorers' reading of the program, not the
  problem.
A variant that does not apply to a problem (no `typing` import to remove, no constant to hoist) and
mutant sites that run out are replaced, so every problem has the same number of programs: EvalPlus and
the harness both take n samples per task only when every task has n (`--epochs n`).
"""
from __future__ import annotations

import ast
import copy
import itertools
import random
from typing import Callable, Iterator

Program = tuple[str, str]  # (kind, source)

_CMP_SWAP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
             ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
_ARITH_SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Add, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
               ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult}
_BOOLISH_CALLS = {"all", "any", "isinstance", "bool", "callable", "hasattr"}


def _docstring_ids(tree: ast.AST) -> set[int]:
    """The Constant nodes that are docstrings (left alone: mutating them changes nothing)."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                ids.add(id(first.value))
    return ids


def _in_fstring_ids(tree: ast.AST) -> set[int]:
    return {id(c) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for c in ast.walk(n)}


def _sites(tree: ast.Module, op: str) -> list:
    """Mutation sites of `op` in ast.walk order (deterministic), each a value _apply() understands."""
    docs, fstr = _docstring_ids(tree), _in_fstring_ids(tree)
    out: list = []
    for n, node in enumerate(ast.walk(tree)):
        if op == "cmp" and isinstance(node, ast.Compare):
            out += [(n, i) for i, o in enumerate(node.ops) if type(o) in _CMP_SWAP]
        elif op == "const" and isinstance(node, ast.Constant) and id(node) not in fstr:
            if isinstance(node.value, int) and not isinstance(node.value, bool):
                out += [(n, +1), (n, -1)]
        elif op == "arith" and isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in _ARITH_SWAP:
            if not (isinstance(node, ast.BinOp) and isinstance(node.left, ast.Constant) and isinstance(node.left.value, str)):
                out.append((n, 0))  # '%'-formatting of a string is not arithmetic
        elif op == "boolop" and isinstance(node, ast.BoolOp):
            out.append((n, 0))
        elif op == "drop":
            for field in ("body", "orelse", "finalbody"):
                body = getattr(node, field, None)
                if isinstance(body, list) and len(body) >= 2 and all(isinstance(s, ast.stmt) for s in body):
                    # two statements or more: the body stays valid without any one of them
                    start = 1 if field == "body" and id(getattr(body[0], "value", None)) in docs else 0
                    out += [(n, field, i) for i in range(start, len(body))]
        elif op == "return" and isinstance(node, ast.Return) and node.value is not None:
            out.append((n, 0))
    return out


def _boolish(e: ast.expr) -> bool:
    return (isinstance(e, (ast.Compare, ast.BoolOp)) or (isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.Not))
            or (isinstance(e, ast.Constant) and isinstance(e.value, bool))
            or (isinstance(e, ast.Call) and isinstance(e.func, ast.Name) and e.func.id in _BOOLISH_CALLS))


def _numeric(e: ast.expr) -> bool:
    # '%' is left out: on a string it formats, and negating the result would only raise
    return ((isinstance(e, ast.BinOp) and not isinstance(e.op, ast.Mod))
            or (isinstance(e, ast.Constant) and type(e.value) in (int, float))
            or (isinstance(e, ast.Call) and isinstance(e.func, ast.Name) and e.func.id in {"len", "sum", "abs", "int", "float", "round", "max", "min"}))


def _apply(tree: ast.Module, op: str, site) -> ast.Module:
    tree = copy.deepcopy(tree)
    node = next(x for n, x in enumerate(ast.walk(tree)) if n == site[0])
    if op == "cmp":
        node.ops[site[1]] = _CMP_SWAP[type(node.ops[site[1]])]()
    elif op == "const":
        node.value += site[1]
    elif op == "arith":
        node.op = _ARITH_SWAP[type(node.op)]()
    elif op == "boolop":
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif op == "drop":
        del getattr(node, site[1])[site[2]]
    elif op == "return":
        v = node.value
        node.value = (ast.UnaryOp(ast.Not(), v) if _boolish(v) else ast.UnaryOp(ast.USub(), v) if _numeric(v)
                      else ast.Constant(None))
    return ast.fix_missing_locations(tree)


def _compiles(src: str) -> bool:
    try:
        compile(src, "<mutant>", "exec", dont_inherit=True)
        return True
    except (SyntaxError, ValueError):
        return False


OPS = ("cmp", "const", "arith", "boolop", "drop", "return")


def mutants(source: str, rng: random.Random) -> Iterator[Program]:
    """Distinct compiling mutants, the operators taken in turn (in an order drawn from rng), each
    site drawn at random among that operator's remaining ones."""
    tree = ast.parse(source)
    original = ast.unparse(tree)
    seen = {original}
    pools = {op: _sites(tree, op) for op in OPS}
    for pool in pools.values():
        rng.shuffle(pool)
    order = list(OPS)
    rng.shuffle(order)
    while any(pools.values()):
        for op in order:
            while pools[op]:
                src = ast.unparse(_apply(tree, op, pools[op].pop()))
                if src not in seen and _compiles(src):
                    seen.add(src)
                    yield f"mutant:{op}", src + "\n"
                    break


# ----------------------------------------------------------------------------- model-shaped variants


def _entry(tree: ast.Module, ep: str) -> ast.FunctionDef | None:
    return next((s for s in tree.body if isinstance(s, ast.FunctionDef) and s.name == ep), None)


def _segment(source: str, node: ast.stmt) -> str:
    lines = source.splitlines(keepends=True)
    start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    return "".join(lines[start - 1:node.end_lineno])


def _body_start(fn: ast.FunctionDef) -> int:
    first = fn.body[0]
    return 1 if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str) else 0


def _params(fn: ast.FunctionDef) -> list[str]:
    a = fn.args
    return [p.arg for p in a.posonlyargs + a.args] + ([a.vararg.arg] if a.vararg else []) + \
        [p.arg for p in a.kwonlyargs] + ([a.kwarg.arg] if a.kwarg else [])


def _prepend(source: str, ep: str, stmts: str) -> str | None:
    """The canonical program with `stmts` as the first statements of the entry point (after its docstring)."""
    tree = ast.parse(source)
    fn = _entry(tree, ep)
    if fn is None:
        return None
    fn.body[_body_start(fn):_body_start(fn)] = ast.parse(stmts).body
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def _entry_changed(source: str, mutant: str, ep: str) -> bool:
    fn, bad = _entry(ast.parse(source), ep), _entry(ast.parse(mutant), ep)
    return fn is not None and bad is not None and ast.unparse(fn) != ast.unparse(bad)


def wrong_then_right(source: str, ep: str, wrong: str) -> str:
    """A first attempt (a mutant), then "the corrected version" of the entry point: Python (and
    evalplus) run the last definition."""
    right = _segment(source, _entry(ast.parse(source), ep))
    return wrong.rstrip() + "\n\n\n# Wait, that is wrong. Corrected version:\n\n" + right


def right_then_wrong(source: str, ep: str, wrong: str) -> str:
    """The correct program followed by a wrong "simpler" rewrite of the entry point, which is the one that runs."""
    return source.rstrip() + "\n\n\n# A simpler version:\n" + ast.unparse(_entry(ast.parse(wrong), ep)) + "\n"


def module_constants(source: str, ep: str) -> str | None:
    """Literal constants of the entry point hoisted to module level, the first lines of the file: an
    annotated assignment, a multi-target one and a plain one."""
    tree = ast.parse(source)
    fn = _entry(tree, ep)
    if fn is None or any(isinstance(n, (ast.Match, ast.Global, ast.Nonlocal)) for n in ast.walk(fn)):
        return None
    # defaults and annotations are evaluated at definition time, where a hoisted name is already bound,
    # but hoisting them changes nothing a model would write differently
    skip = _docstring_ids(fn) | _in_fstring_ids(fn) | {id(n) for n in ast.walk(fn.args)}
    skip |= {id(n) for x in ast.walk(fn) if isinstance(x, (ast.FunctionDef, ast.AnnAssign))
             for part in (x.returns if isinstance(x, ast.FunctionDef) else x.annotation,) if part is not None
             for n in ast.walk(part)}
    consts = [n for n in ast.walk(fn) if isinstance(n, ast.Constant) and id(n) not in skip
              and type(n.value) in (int, float, str) and n.value not in (0, 1, "")]
    # without a limit or a literal, name the trivial ones (_START = 0, _FOUND = True)
    consts = consts or [n for n in ast.walk(fn) if isinstance(n, ast.Constant) and id(n) not in skip
                        and type(n.value) in (int, bool, str)]
    if not consts:
        return None
    names: dict[tuple[type, object], str] = {}
    for c in consts:
        names.setdefault((type(c.value), c.value), f"_LIMIT{len(names)}")
    names = dict(list(names.items())[:3])

    class Hoist(ast.NodeTransformer):
        def visit_Constant(self, node):
            key = (type(node.value), node.value)
            return ast.Name(names[key], ast.Load()) if id(node) not in skip and key in names else node

    fn.body = [Hoist().visit(s) for s in fn.body]
    header = []
    for i, ((t, v), name) in enumerate(names.items()):
        header.append([f"{name}: {t.__name__} = {v!r}", f"{name} = _{name}_DEFAULT = {v!r}", f"{name} = {v!r}"][i % 3])
    return "\n".join(header) + "\n\n" + ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def generator_helper(source: str, ep: str) -> str | None:
    """The entry point delegates to the original through a generator helper (no `return` in it)."""
    tree = ast.parse(source)
    fn = _entry(tree, ep)
    if fn is None or fn.args.posonlyargs or fn.args.kwonlyargs:
        return None
    impl = f"_{ep}_impl"
    wrapper = copy.deepcopy(fn)
    fn.name = impl
    a = fn.args
    call = ", ".join([f"*_each({', '.join(p.arg for p in a.args)}{',' if len(a.args) == 1 else ''})"] +
                     ([f"*{a.vararg.arg}"] if a.vararg else []) + ([f"**{a.kwarg.arg}"] if a.kwarg else []))
    wrapper.body = wrapper.body[:_body_start(wrapper)] + ast.parse(f"return {impl}({call})").body
    helper = ast.parse("def _each(*values):\n    for value in values:\n        yield value\n").body[0]
    i = tree.body.index(fn)
    tree.body[i + 1:i + 1] = [helper, wrapper]
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def stdlib_return(source: str, ep: str) -> str | None:
    """The result handed back as a standard-library type that `==` the builtin one (UserList, UserString,
    MappingProxyType, Fraction), as a program that builds its answer in such a container would."""
    tree = ast.parse(source)
    fn = _entry(tree, ep)
    if fn is None or fn.args.posonlyargs or fn.args.kwonlyargs:
        return None
    impl = f"_{ep}_plain"
    wrapper = copy.deepcopy(fn)
    fn.name = impl
    a = fn.args
    call = ", ".join([p.arg for p in a.args] + ([f"*{a.vararg.arg}"] if a.vararg else [])
                     + ([f"**{a.kwarg.arg}"] if a.kwarg else []))
    wrapper.body = wrapper.body[:_body_start(wrapper)] + ast.parse(f"return _as_stdlib({impl}({call}))").body
    helper = ast.parse(
        "def _as_stdlib(value):\n"
        "    import collections, fractions, types\n"
        "    if type(value) is list:\n        return collections.UserList(value)\n"
        "    if type(value) is dict:\n        return types.MappingProxyType(value)\n"
        "    if type(value) is str:\n        return collections.UserString(value)\n"
        "    if type(value) is int:\n        return fractions.Fraction(value)\n"
        "    return value\n").body[0]
    i = tree.body.index(fn)
    tree.body[i + 1:i + 1] = [helper, wrapper]
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def guarded_def(source: str, ep: str) -> str | None:
    """The entry point defined inside a module-level `if sys.version_info >= ...:` block."""
    tree = ast.parse(source)
    fn = _entry(tree, ep)
    if fn is None:
        return None
    i = tree.body.index(fn)
    tree.body[i:i + 1] = ast.parse("import sys\nif sys.version_info >= (3, 0):\n    pass\n").body
    tree.body[i + 1].body = [fn]
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def typing_removed(source: str, ep: str) -> str | None:
    """The canonical program without its `typing` imports (a NameError when annotations are evaluated)."""
    tree = ast.parse(source)
    drop = [s for s in tree.body if (isinstance(s, ast.ImportFrom) and s.module == "typing")
            or (isinstance(s, ast.Import) and any(a.name == "typing" for a in s.names))]
    if not drop:
        return None
    lines = source.splitlines(keepends=True)
    for s in reversed(drop):
        del lines[s.lineno - 1:s.end_lineno]
    return "".join(lines)


def infinite_loop(source: str, ep: str) -> str | None:
    """`while True` behind a condition that holds on some inputs (about a third)."""
    tree = ast.parse(source)
    fn = _entry(tree, ep)
    if fn is None or not _params(fn):
        return None
    args = ", ".join(_params(fn))
    return _prepend(source, ep, f"if len(repr(({args},))) % 3 == 0:\n    while True:\n        pass\n")


def prints_a_lot(source: str, ep: str) -> str | None:
    """Debug output, 300 lines per call."""
    fn = _entry(ast.parse(source), ep)
    if fn is None:
        return None
    args = ", ".join(_params(fn))
    shown = f"repr(({args},))[:60]" if args else "''"
    return _prepend(source, ep, f"_shown = {shown}\nfor _step in range(300):\n    print('debug', _step, _shown)\n")


def _stubbed(source: str, ep: str, body: str) -> str | None:
    tree = ast.parse(source)
    fn = _entry(tree, ep)
    if fn is None:
        return None
    fn.body = fn.body[:_body_start(fn)] + ast.parse(body).body
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


Variant = Callable[..., "str | None"]
VARIANTS: dict[str, Variant] = {
    "wrong_then_right": wrong_then_right,
    "right_then_wrong": right_then_wrong,
    "module_constants": module_constants,
    "generator_helper": generator_helper,
    "stdlib_return": stdlib_return,
    "guarded_def": guarded_def,
    "typing_removed": typing_removed,
    "infinite_loop": infinite_loop,
    "prints_a_lot": prints_a_lot,
}


def programs(record: dict, n_mutants: int = 4, seed: int = 0) -> list[Program]:
    """Exactly 1 + n_mutants + len(VARIANTS) (kind, program) pairs for one EvalPlus record."""
    source = record["prompt"] + record["canonical_solution"]
    ep = record["entry_point"]
    pool = mutants(source, random.Random(f"{seed}:{record['task_id']}"))
    chosen = list(itertools.islice(pool, n_mutants))
    out: list[Program] = [("canonical", source)] + chosen
    # the drafts are near misses: a chosen mutant that changed the entry point itself
    wrong = next((src for _, src in chosen if _entry_changed(source, src, ep)), None)
    for name, make in VARIANTS.items():
        if name in ("wrong_then_right", "right_then_wrong"):
            src = None if wrong is None else make(source, ep, wrong)
        else:
            src = make(source, ep)
        if src is not None:
            out.append((f"variant:{name}", src))
    want = 1 + n_mutants + len(VARIANTS)
    out += list(itertools.islice(pool, want - len(out)))
    # few mutation sites (a one-line solution): the unfinished programs models also hand in
    for kind, body in (("mutant:stub", "pass"), ("mutant:raise", "raise NotImplementedError")):
        if len(out) < want and (stub := _stubbed(source, ep, body)) is not None:
            out.append((kind, stub))
    out += [("canonical", source)] * (want - len(out))  # nothing else left: pad with the canonical program
    return out
