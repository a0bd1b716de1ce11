"""From a chat response to the program that is tested: EvalPlus's `sanitize` (evalplus 0.3.1,
evalplus/sanitize.py, tree-sitter there) done with Python's `ast` and `symtable`.

Only chat responses (and a base model's continuation, in the `completion` variant) come here. A
replayed EvalPlus sample (`solution`, or prompt + `completion`) is tested verbatim, as
`evalplus.evaluate` does, and never passes through this module.

1. A reasoning model's thinking (up to the last `</think>`) is dropped.
2. The code: the fenced block that defines the entry point (the longest such; else the longest block
   that parses); without fences, the longest run of lines that parses (`code_extract`). A response
   that only continues the prompt (a function body) is read as prompt + response.
3. What the entry point needs (`keep_reachable`): every top-level import first, as upstream, then,
   in source order, each top-level statement that binds or mutates a name the entry point reaches,
   directly or through what those statements use (the fixpoint). Everything else is dropped: tests,
   prints, asserts, example calls, `input()`, and `if __name__ == "__main__":` blocks (always: the
   program is run as EvalPlus runs it, `exec` with fresh globals, where `__name__` is "builtins"
   and such a block never runs). A kept statement that crashes on load still crashes.

Deliberate differences from upstream, each because upstream's program is not what Python runs:
- Every function the entry point reaches is kept, also a generator (`yield`, no `return`) or a
  procedure; upstream keeps only functions containing a `return`, so the canonical solution of
  MBPP+ `Mbpp/630` (its helper only yields) fails there with NameError. Decorated definitions are
  kept (upstream's walk does not see them, losing an `@lru_cache` helper).
- A name defined twice (a draft, then the corrected version) keeps the last definition, the one
  Python runs; upstream keeps the first. An earlier definition is dropped only when nothing between
  it and the redefinition uses the name while the module loads and it has no effect of its own.
- Besides functions, classes and `NAME = value`, a statement counts when it binds names (annotated,
  multi-target, tuple, augmented assignments, `del`, a `for`/`with`/`try`/`if`/`while`/`match` block
  at module level, such as a definition inside `if sys.version_info >= ...`) or mutates a module-level
  object: an item or attribute assignment (`_REGISTRY['x'] = f`), a statement that is a method call
  on it (`_REGISTRY.update(...)`), a decorator or statement-level call of a module-level function
  whose own body assigns such a global (`global X`, `X[k] = ...`, `X.append(...)`). Upstream keeps
  only the first `NAME = value` of a name.
- Dependencies are free names by Python's scoping rules (`symtable`), not every identifier: a
  parameter `n` of the entry point does not pull in a module-level `n = int(input())`; upstream
  counts identifiers (attributes and parameters included), so it keeps that line and the program
  fails on load.
- `code_extract` (no fences) starts a run at every line that can start one (not indented), as
  upstream, so a leading `X = ...` line is kept, but does not try every end line: from a start it
  parses a window that grows while the cut may be what fails, shrinks the run to end before the
  parser's error line, and goes on after the run it found. That is linear in lines on the
  responses models write; a hard cap (MAX_PARSES_PER_LINE parses and MAX_PARSED_PER_LINE lines
  parsed per line of the response) bounds the rest, and past it the best run so far is taken.
  Upstream's search is cubic in lines: an 11 KB looping response takes tens of seconds there.
- A response with no parsable code gives "" (scored "no code"); upstream returns its first line,
  which then fails to load: the same verdict.

Kept as upstream, decided: every top-level import is kept and put first (so a late import is
hoisted; Python would fail on it, upstream's program does not); code the entry point does not need
is dropped even where it would have crashed on load (`print(f(3))`, `main()`, a bare `input()`,
an `assert`): a module-level call counts only as a method call on, or a call of a function with its
own effect on, a name the entry point reaches, so `sys.setrecursionlimit(...)` is kept only when
the entry point uses `sys`. `from __future__ import annotations` stays as written (first), and the
driver compiles the program as Python runs a file (no compiler flags of its own leak in).
"""
from __future__ import annotations

import ast
import bisect
import re
import symtable
from dataclasses import dataclass, field

_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+-]*)[^\n]*\n(.*?)^[ \t]*```", re.DOTALL | re.MULTILINE)
_THINK_END = re.compile(r"</think(?:ing)?>", re.IGNORECASE)
# code_extract: the first window, and its budget per line of the text (plus a constant): ast.parse
# calls, and lines given to the parser
WINDOW = 16
MAX_PARSES_PER_LINE = 4
MAX_PARSED_PER_LINE = 32
# failures that a text cut short can cause (CPython 3.8-3.13 wordings): the run may go on past the cut
_CUT_ERROR = re.compile(r"never closed|triple-quoted|EOF|expected an indented block|unexpected end", re.IGNORECASE)
_PARSE_ERRORS = (SyntaxError, ValueError, MemoryError, RecursionError, OverflowError)


def _parses(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except _PARSE_ERRORS:
        return None


def _nonblank(lines: list[str]) -> int:
    return sum(1 for line in lines if line.strip())


def code_extract(text: str) -> str:
    """The longest run of lines (by non-blank lines, the earliest of equals) that parses.

    A run can only start at a line that is not indented (or a comment). From a start, the parser is
    given a window of WINDOW lines, doubled while the window parses or fails in a way the cut may
    have caused (an unclosed bracket or string, the end of input); then the run shrinks to end
    before the line where the parser failed (one line at a time when it failed at the run's end, as
    for a trailing decorator). The next start is after the run found. Parsing costs the length of
    what is parsed, even when it fails on the first line, so the work is also capped: at most
    MAX_PARSES_PER_LINE parses and MAX_PARSED_PER_LINE lines given to the parser per line of the
    text; past either, the best run so far is the answer."""
    lines = text.split("\n")
    n = len(lines)
    upto = [0]  # upto[k]: non-blank lines before line k
    for line in lines:
        upto.append(upto[-1] + bool(line.strip()))
    budget = {"parses": MAX_PARSES_PER_LINE * n + 16, "lines": MAX_PARSED_PER_LINE * n + 1024}

    def attempt(i: int, j: int) -> tuple[bool, int, bool]:
        """Parse lines[i:j]: (parses, the failing line counted from 1, whether the end of the text
        given may have caused the failure)."""
        budget["parses"] -= 1
        budget["lines"] -= j - i
        try:
            ast.parse("\n".join(lines[i:j]))
            return True, 0, False
        except SyntaxError as e:
            err = e.lineno if e.lineno is not None and 0 < e.lineno <= j - i else j - i
            return False, err, err >= j - i or bool(_CUT_ERROR.search(str(e.msg)))
        except _PARSE_ERRORS:
            return False, j - i, True

    best, best_len = (0, 0), 0
    i = 0
    while i < n and min(budget.values()) > 0:
        stripped = lines[i].strip()
        if not stripped or (lines[i][0].isspace() and not stripped.startswith("#")) \
                or upto[n] - upto[i] <= best_len:
            i += 1
            continue
        w = WINDOW
        while True:  # a window long enough to show where the run from i ends
            j = min(n, i + w)
            ok, err, cut = attempt(i, j)
            if j == n or (not ok and not cut) or min(budget.values()) <= 0:
                break
            w *= 2
        found = j if ok else None
        if not ok:
            j = min(j - 1, i + err - 1)
        while found is None and j > i and upto[j] - upto[i] > best_len and min(budget.values()) > 0:
            ok, err, _ = attempt(i, j)
            if ok:
                found = j
            else:
                j = min(j - 1, i + err - 1)
        if found is None or upto[found] - upto[i] <= best_len:
            i += 1
            continue
        best, best_len = (i, found), upto[found] - upto[i]
        i = found
    return "\n".join(lines[best[0]:best[1]])


def _top_level_binds(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        names |= _effects(node).binds
    return names


def pick_code(response: str, entry_point: str) -> str:
    ends = list(_THINK_END.finditer(response))
    if ends:
        response = response[ends[-1].end():]
    blocks = [(code, tree) for _, code in _FENCE.findall(response) if (tree := _parses(code)) is not None]
    if blocks:
        defining = [b for b in blocks if entry_point in _top_level_binds(b[1])]
        return max(defining or blocks, key=lambda b: _nonblank(b[0].split("\n")))[0]
    return code_extract(response)


# ------------------------------------------------------------------ what a statement does

def _root(node: ast.AST) -> str | None:
    """The name at the bottom of `a.b[c].d` (or of `a.b(...).c`)."""
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call, ast.Starred)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


@dataclass
class _Effects:
    binds: set[str] = field(default_factory=set)    # names (re)bound or deleted in the module's namespace
    mutates: set[str] = field(default_factory=set)  # module-level objects changed in place
    calls: set[str] = field(default_factory=set)    # names called for their effect (statement level, decorators)


_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_STORE = (ast.Store, ast.Del)


def _effects(node: ast.stmt) -> _Effects:
    """Bindings and mutations a top-level statement makes in the module namespace while it runs;
    function, lambda and comprehension bodies are not entered (they run later, or locally). A walk
    with its own stack: a deep expression must not exhaust Python's."""
    out = _Effects()
    todo: list[ast.AST] = [node]
    while todo:
        n = todo.pop()
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.binds.add(n.name)
            for d in n.decorator_list:
                callee = d.func if isinstance(d, ast.Call) else d
                if isinstance(callee, ast.Name):
                    out.calls.add(callee.id)
            todo.extend(n.decorator_list)
            continue
        if isinstance(n, ast.Lambda):
            continue
        if isinstance(n, _COMPREHENSIONS):
            todo.append(n.generators[0].iter)  # the only part evaluated in the enclosing scope
            continue
        if isinstance(n, ast.Name):
            if isinstance(n.ctx, _STORE):
                out.binds.add(n.id)
            continue
        if isinstance(n, (ast.Import, ast.ImportFrom)):
            out.binds |= {a.asname or a.name.split(".")[0] for a in n.names if a.name != "*"}
            continue
        if isinstance(n, (ast.Attribute, ast.Subscript)) and isinstance(n.ctx, _STORE) and (root := _root(n)):
            out.mutates.add(root)
        elif isinstance(n, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and n.name:
            out.binds.add(n.name)
        elif isinstance(n, ast.MatchMapping) and n.rest:
            out.binds.add(n.rest)
        elif isinstance(n, ast.Expr):
            call = n.value.value if isinstance(n.value, ast.Await) else n.value
            if isinstance(call, ast.Call):
                if isinstance(call.func, ast.Name):
                    out.calls.add(call.func.id)
                elif isinstance(call.func, ast.Attribute) and (root := _root(call.func)):
                    out.mutates.add(root)
        todo.extend(ast.iter_child_nodes(n))
    return out


def _tables(table: symtable.SymbolTable):
    yield table
    for child in table.get_children():
        yield from _tables(child)


def _free_globals(source: str, node: ast.stmt) -> set[str]:
    """Module-level names the statement refers to, when it runs or when the functions it defines run:
    by Python's scoping (symtable), so parameters and locals are not dependencies."""
    try:
        top = symtable.symtable(source, "<statement>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    names = {s.get_name() for s in top.get_symbols() if s.is_referenced()}
    for table in _tables(top):
        if table is not top:
            names |= {s.get_name() for s in table.get_symbols() if s.is_global()}
    return names


def _load_time_names(node: ast.stmt, uses: set[str]) -> set[str]:
    """What the statement reads while the module loads (a def: its decorators, defaults and
    annotations; anything else, conservatively, everything it refers to)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        a = node.args
        parts = [*node.decorator_list, *a.defaults, *(d for d in a.kw_defaults if d is not None), node.returns,
                 *(arg.annotation for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]
                   if arg is not None)]
        return {n.id for p in parts if p is not None for n in ast.walk(p) if isinstance(n, ast.Name)}
    return uses


def _own_effects(node: ast.FunctionDef | ast.AsyncFunctionDef, free: set[str]) -> set[str]:
    """The module-level names a function changes when called: `global` names, and items, attributes
    or statement-level method calls of the module-level names it refers to."""
    out: set[str] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Global):
            out |= set(n.names)
        elif isinstance(n, (ast.Attribute, ast.Subscript)) and isinstance(n.ctx, (ast.Store, ast.Del)):
            out.add(_root(n) or "")
        elif isinstance(n, ast.Expr) and isinstance(n.value, ast.Call) and isinstance(n.value.func, ast.Attribute):
            out.add(_root(n.value.func) or "")
    return out & free


def _is_main_block(node: ast.stmt) -> bool:
    t = node.test if isinstance(node, ast.If) else None
    if not (isinstance(t, ast.Compare) and len(t.ops) == 1 and isinstance(t.ops[0], ast.Eq)):
        return False
    sides = [t.left, t.comparators[0]]
    return (any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
            and any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides))


_REBINDERS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign, ast.Import,
              ast.ImportFrom)


@dataclass
class _Stmt:
    node: ast.stmt
    source: str
    binds: set[str]
    mutates: set[str]
    uses: set[str]
    loads: set[str]


def _segment(lines: list[str], node: ast.stmt) -> str:
    """ast.get_source_segment without re-splitting the whole code for every statement (offsets are
    UTF-8 bytes)."""
    first, last = node.lineno - 1, node.end_lineno - 1
    if first == last:
        return lines[first].encode()[node.col_offset:node.end_col_offset].decode()
    return "\n".join([lines[first].encode()[node.col_offset:].decode(), *lines[first + 1:last],
                      lines[last].encode()[:node.end_col_offset].decode()])


def _statements(code: str, tree: ast.Module) -> list[_Stmt]:
    lines = code.split("\n")
    out = []
    for node in tree.body:
        if hasattr(node, "body"):  # compound statements start a line and end one
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            source = "\n".join(lines[start - 1:node.end_lineno])
        else:  # simple ones may share a line (`import os; print(1)`)
            source = _segment(lines, node)
        eff = _effects(node)
        uses = _free_globals(source, node)
        out.append((_Stmt(node, source, eff.binds, eff.mutates, uses, _load_time_names(node, uses)), eff.calls))
    # a call of a module-level function (a statement, a decorator) changes what that function's own body
    # changes, other than modules; calls of anything else (print, input, main()) are no effect here
    imported = {name for s, _ in out if isinstance(s.node, (ast.Import, ast.ImportFrom)) for name in s.binds}
    functions = {s.node.name: _own_effects(s.node, s.uses) - imported for s, _ in out
                 if isinstance(s.node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for s, calls in out:
        s.mutates = s.mutates.union(*(functions[c] for c in calls if c in functions))
    return [s for s, _ in out]


def _may_keep(s: _Stmt) -> bool:
    return bool(s.binds or s.mutates) and not isinstance(s.node, (ast.Import, ast.ImportFrom, ast.Assert)) \
        and not _is_main_block(s.node)


def _unconditional_binder(s: _Stmt) -> bool:
    return isinstance(s.node, _REBINDERS) and not (isinstance(s.node, ast.AnnAssign) and s.node.value is None)


def _superseded(stmts: list[_Stmt]) -> set[int]:
    """The statements whose bindings Python never sees: each name is bound again later by an
    unconditional definition, assignment or import, nothing from the statement up to that rebinding
    reads or changes it while the module loads, and the statement has no effect besides the binding."""
    readers: dict[str, list[int]] = {}
    rebinders: dict[str, list[int]] = {}
    for k, s in enumerate(stmts):
        if _may_keep(s):  # a read by a statement that is dropped anyway (`print(f(1))`) is no read
            for name in s.loads | s.mutates:
                readers.setdefault(name, []).append(k)
        if _unconditional_binder(s):
            for name in s.binds:
                rebinders.setdefault(name, []).append(k)
    out = set()
    for i, s in enumerate(stmts):
        if not s.binds or s.mutates or not _unconditional_binder(s) or isinstance(s.node, (ast.Import, ast.ImportFrom)):
            continue
        for name in s.binds:
            later = rebinders[name][bisect.bisect_right(rebinders[name], i):]
            if not later:
                break
            read = readers.get(name, [])
            first_read = bisect.bisect_right(read, i)
            if first_read < len(read) and read[first_read] <= later[0]:
                break
        else:
            out.add(i)
    return out


def _newlines(code: str) -> str:
    """Newlines as Python's tokenizer reads them, so that ast's line numbers index code.split("\\n")."""
    return code.replace("\r\n", "\n").replace("\r", "\n")


def keep_reachable(code: str, entry_point: str) -> str:
    """Imports, then the statements the entry point needs, in source order; "" when nothing is kept."""
    code = _newlines(code)
    tree = _parses(code)
    return "" if tree is None else _prune(code, tree, entry_point)


def _prune(code: str, tree: ast.Module, entry_point: str) -> str:
    stmts = _statements(code, tree)
    imports = [s.source for s in stmts if isinstance(s.node, (ast.Import, ast.ImportFrom))]
    dead = _superseded(stmts)
    candidates = [k for k, s in enumerate(stmts) if _may_keep(s) and k not in dead]
    providers: dict[str, list[int]] = {}
    for k in candidates:
        for name in stmts[k].binds | stmts[k].mutates:
            providers.setdefault(name, []).append(k)
    reached, todo, kept = {entry_point}, [entry_point], set()
    while todo:
        for k in providers.get(todo.pop(), ()):
            if k not in kept:
                kept.add(k)
                for dep in stmts[k].uses - reached:
                    reached.add(dep)
                    todo.append(dep)
    return "\n".join(imports + [stmts[k].source for k in sorted(kept)]).strip()


def sanitize(code: str, entry_point: str, tree: ast.Module | None = None) -> str:
    """Upstream's sanitize: the longest parsing run of the text (the text itself when it parses),
    pruned to what the entry point needs; that run unpruned when pruning keeps nothing. `tree`:
    the code's parse, when the caller has it."""
    code = _newlines(code)
    tree = tree or _parses(code)
    if tree is None:
        code = code_extract(code)
        tree = _parses(code)
    return (_prune(code, tree, entry_point) if tree is not None else "") or code


def extract_solution(response: str, entry_point: str, prompt: str) -> str:
    """The program to test for a chat response. A response that only continues the prompt (a body)
    is tested as prompt + response."""
    code = _newlines(pick_code(response, entry_point))
    tree = _parses(code)
    if tree is None or entry_point not in _top_level_binds(tree):
        joined_code = _newlines(prompt + response)
        if (joined := _parses(joined_code)) is not None and entry_point in _top_level_binds(joined):
            code, tree = joined_code, joined
    return sanitize(code, entry_point, tree)
