"""The official prompts (generate_llm_answer.py at 94f7a33, verbatim: the typo "Warp" and the double space
before "to indicate" are upstream's) and the extraction of the function from a response."""
from __future__ import annotations

import re

SYSTEM = "You are an expert in geospatial data processing using JavaScript."
_TURF = (
    "Please complete the following JavaScript function for local geospatial processing, based on the function "
    "signature and the provided JSDoc-style docstring. "
    "Return ONLY the complete function code without any explanations or additional text. "
    "Do not add any comments beyond what's already in the docstring. Keep the given docstring. "
    "The input may be empty or invalid, you need to handle this situation appropriately to avoid program crashes. "
    "Wrap the code with ```javascript and ``` to indicate the code block.\n\n"
    "Here is the function:\n\n")
_OTHER = (
    "Please complete the following JavaScript function for local geospatial processing, based on the function "
    "signature and the provided JSDoc-style docstring. "
    "Return ONLY the complete function code without any explanations or additional text. "
    "Do NOT repeat the given docstring, but keep the function declaration. "
    "If you want to declare more functions, you MUST declare them INSIDE the given function. "
    "Warp the code with ```javascript and ```  to indicate the code block.\n\n"
    "Here is the function:\n\n")


def user_prompt(library: str, instructions: str) -> str:
    return (_TURF if library == "turf" else _OTHER) + instructions


_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
_UPSTREAM_BLOCK = re.compile(r"```(?:javascript)?\s*(.*?)```", re.DOTALL)
# a fence with any of the tags models use for JavaScript (or none); the tag is never part of the code
_BLOCK = re.compile(r"```[ \t]*(?:javascript|js|jsx|mjs|cjs|node|typescript|ts)?[ \t]*\r?\n(.*?)```",
                    re.DOTALL | re.IGNORECASE)


def _filter_docstring(lines: list[str]) -> list[str]:
    """upstream filter_docstring: a Python leftover that drops lines holding triple quotes and those between."""
    out, inside = [], False
    for line in lines:
        q = line.count('"""')
        if not inside:
            if q == 1:
                inside = True
            elif q != 2:
                out.append(line)
        elif q == 1:
            inside = False
    return out


def clean_upstream(response: str) -> str:
    """upstream clean_content: the last ```javascript (or bare) block, a ```js block keeping `js` as its
    first line; the whole text without blocks; the Python docstring filter and __main__ cut."""
    text = _THINK.sub("", response)
    blocks = _UPSTREAM_BLOCK.findall(text)
    if not blocks:
        return text.strip()
    chosen = None
    for block in blocks:
        if "def " in block:
            chosen = block
    if not chosen:
        chosen = blocks[-1].strip()
    chosen = "\n".join(_filter_docstring(chosen.splitlines()))
    if '__name__ == "__main__"' in chosen or "__name__ == '__main__'" in chosen:
        return re.split(r"if\s+__name__\s*==\s*[\"']__main__['\"]\s*:", chosen)[0].strip()
    return chosen.strip()


def upstream_function_name(code: str) -> str | None:
    """The function upstream tests: the first `function NAME(` in the cleaned code (its config entry)."""
    m = re.search(r"function (\w+)\(", code)
    return m.group(1) if m else None


def extract(response: str, function: str) -> str:
    """The code to test: reasoning spans dropped, then the last fenced block (```javascript, ```js, bare, any
    case) that defines `function`, else the last block, else the whole text when there is no fence."""
    text = _THINK.sub("", response)
    blocks = _BLOCK.findall(text) or _UPSTREAM_BLOCK.findall(text)  # the latter: a fence with code on its line
    if not blocks:
        return text.strip()
    defines = re.compile(rf"\bfunction\s*\*?\s*{re.escape(function)}\s*\(|\b{re.escape(function)}\s*=")
    named = [b for b in blocks if defines.search(b)]
    return (named or blocks)[-1].strip()
