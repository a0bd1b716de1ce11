"""From a model's response to the program that is tested: EvalPlus's `sanitize` (evalplus/sanitize.py,
tree-sitter there) done with Python's `ast`.

1. A reasoning model's thinking (up to the last `</think>`) is dropped.
2. The code: the fenced block that defines the entry point (the longest such; else the longest block
   that parses); without fences, the longest run of lines that parses, as upstream's code_extract.
3. What the entry point needs: every top-level import, then, in source order, the classes, the
   functions that return something and the simple assignments that the entry point reaches by name.
   Everything else (tests, prints, `if __name__ == "__main__":`) is dropped. One deliberate
   difference: decorated definitions are kept (upstream's walk does not see them, so an
   `@lru_cache` helper is lost there and the solution fails with a NameError).
"""
from __future__ import annotations

import ast
import re

_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+-]*)[^\n]*\n(.*?)^[ \t]*```", re.DOTALL | re.MULTILINE)
_THINK_END = re.compile(r"</think(?:ing)?>", re.IGNORECASE)
_CODE_START = re.compile(r"^(def |async def |class |import |from |@)")


def _parses(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None


def _defines(tree: ast.Module, name: str) -> bool:
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name for n in tree.body)


def _nonblank(code: str) -> int:
    return sum(1 for line in code.splitlines() if line.strip())


def code_extract(text: str) -> str:
    """The longest run of lines (by non-blank lines) that parses. Runs start where a top-level
    statement starts, so prose is not searched quadratically."""
    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if _CODE_START.match(line)] or range(len(lines))
    best, best_len = "", 0
    for i in starts:
        for j in range(len(lines), i, -1):
            chunk = "\n".join(lines[i:j])
            if _nonblank(chunk) <= best_len:
                break
            if _parses(chunk) is not None:
                best, best_len = chunk, _nonblank(chunk)
                break
    return best


def pick_code(response: str, entry_point: str) -> str:
    ends = list(_THINK_END.finditer(response))
    if ends:
        response = response[ends[-1].end():]
    blocks = [(code, tree) for _, code in _FENCE.findall(response) if (tree := _parses(code)) is not None]
    if blocks:
        defining = [b for b in blocks if _defines(b[1], entry_point)]
        return max(defining or blocks, key=lambda b: _nonblank(b[0]))[0]
    return code_extract(response)


def _names(node: ast.AST) -> set[str]:
    """Every identifier in the node, as tree-sitter's identifier nodes (attributes and parameters too)."""
    names = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            names.add(n.id)
        elif isinstance(n, ast.Attribute):
            names.add(n.attr)
        elif isinstance(n, ast.arg):
            names.add(n.arg)
    return names


def _returns(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Return) for n in ast.walk(node))


def keep_reachable(code: str, entry_point: str | None) -> str:
    """Imports plus the definitions reachable from the entry point; "" when nothing is kept."""
    tree = _parses(code)
    if tree is None:
        return ""
    lines = code.split("\n")

    def source(node: ast.stmt) -> str:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        return "\n".join(lines[start - 1:node.end_lineno])

    imports, defs, seen = [], [], set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.append(source(node))
        elif isinstance(node, ast.ClassDef) or (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                                                and _returns(node)):
            if node.name not in seen:  # upstream keeps the first definition of a name
                seen.add(node.name)
                defs.append((node.name, node))
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name not in seen:
                seen.add(name)
                defs.append((name, node))
    if entry_point:
        deps = {name: _names(node) - {name} for name, node in defs}
        reachable, todo = {entry_point}, [entry_point]
        while todo:
            for dep in deps.get(todo.pop(), ()):
                if dep not in reachable:
                    reachable.add(dep)
                    todo.append(dep)
        defs = [(n, node) for n, node in defs if n in reachable]
    return "\n".join(imports + [source(node) for _, node in defs]).strip()


def sanitize(code: str, entry_point: str | None) -> str:
    """Upstream's sanitize on an already chosen text: prune, or fall back to the longest parsing run."""
    return keep_reachable(code, entry_point) or code_extract(code)


def extract_solution(response: str, entry_point: str, prompt: str) -> str:
    """The program to test for a chat response. A response that only continues the prompt (a body,
    or EvalPlus's `completion` samples) is tested as prompt + response, as upstream does for them."""
    code = pick_code(response, entry_point)
    tree = _parses(code)
    if (tree is None or not _defines(tree, entry_point)) and \
            (joined := _parses(prompt + response)) is not None and _defines(joined, entry_point):
        code = prompt + response
    return sanitize(code, entry_point)
