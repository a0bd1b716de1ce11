"""The runs the interop tests export (harness.interop), made once per test module: CipherBank with the reference
model through the CLI, a CipherBank replay with a right, a wrong and a missing response (an errored sample), a
hostile mock model (markup, control characters, NUL, a lone surrogate, a 1 MB string), EvalPlus in bubblewrap
through the CLI, and IneqMath with scripted judges (offline, as tests/tasks/test_ineqmath.py runs them)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

import harness
from harness import get_task
from harness.cli._app import app
from harness.model import MockModel
from harness.store import Store

HOSTILE = ("<script>document.title='PWNED'</script><img src=x onerror=\"document.title='PWNED-img'\">"
           "\x00 nul \x07 bell \x1b[31m ansi \u202e rtl \ud800 lone surrogate <result>x</result> ") + "Z" * 1_000_000
INEQMATH_RESULTS = Path(get_task("ineqmath").factory.__code__.co_filename).parent / "data" / \
    "results_gpt-4o-mini_tokens_10000_dev_subset.json"


def bwrap_ok() -> bool:
    from harness.sandboxes._bwrap import bwrap_status

    return bool(bwrap_status()["ok"])


def cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result.output


def scripted_judge(sample, messages) -> str:
    """Stands in for IneqMath's judge LLM: extracts a bound answer's number as the official prompt asks, never
    finds two bounds equivalent, passes every step judge (no computation check to run)."""
    prompt = messages[-1]["content"]
    if "extract the number from the following sentence" in prompt:
        sentence = prompt.split("following sentence:\n")[1].split("\n")[0]
        found = re.search(r"C\s*=\s*([^\s$]+)", sentence)
        return f"C={found.group(1).rstrip('.')}" if found else "C=0"
    if "verifying mathematical expression equivalence" in prompt:
        return json.dumps({"analysis": "scripted", "equivalent": False})
    if "correctness of numerical computations" in prompt.split("Examples of Inputs")[0]:
        return "<Analysis>: scripted\n<Expressions>: List()\n<Codes>:\n"
    return "<Analysis>: scripted\n<Answer>: True"


@dataclass
class Runs:
    db: str
    ids: dict[str, str]  # cipherbank, mixed, hostile, evalplus, ineqmath -> run id
    mixed_ids: list[str]  # the mixed run's sample ids: right, right, wrong, missing (errored)

    def store(self) -> Store:
        return Store(self.db)


def build_runs(folder: Path, hostile: bool = True) -> Runs:
    db = f"sqlite:///{folder / 'runs.db'}"
    ids: dict[str, str] = {}
    cli("eval", "--model", "reference", "--task", "cipherbank", "--data", "bundled", "--db", db, "-q")
    store = Store(db)
    ids["cipherbank"] = store.list_runs()[0]["id"]
    rows = store.samples(store.run_tasks(ids["cipherbank"])[0]["id"])
    picked = [rows[0], rows[25], rows[50], rows[75]]
    replay = folder / "answers.jsonl"
    replay.write_text("".join(json.dumps({"sample_id": r["sample_id"], "response": text}) + "\n" for r, text in
                              [(picked[0], f"<result>{picked[0]['target']}</result>"),
                               (picked[1], f"Thinking... <result>{picked[1]['target']}</result>"),
                               (picked[2], "<result>not the plaintext</result>")]))
    before = {r["id"] for r in store.list_runs()}
    cli("eval", "--model", f"replay:{replay}", "--task", "cipherbank", "--data", "bundled", "--db", db, "-q",
        *[a for r in picked for a in ("--sample-id", r["sample_id"])])
    ids["mixed"] = next(r["id"] for r in store.list_runs() if r["id"] not in before)
    if hostile:
        ids["hostile"] = harness.eval("cipherbank", MockModel(HOSTILE, name="mock"), db=store, data="bundled",
                                      limit=2).run_id
    if bwrap_ok():
        before = {r["id"] for r in store.list_runs()}
        cli("eval", "--model", "reference", "--task", "evalplus/humaneval_plus", "--data", "bundled", "--sandbox", "bwrap",
            "--limit", "3", "--db", db, "-q")
        ids["evalplus"] = next(r["id"] for r in store.list_runs() if r["id"] not in before)
        ids["ineqmath"] = harness.eval("ineqmath", f"replay:{INEQMATH_RESULTS}", db=store, data="bundled",
                                       judges={"default": MockModel(scripted_judge, name="scripted")},
                                       sandbox="bwrap", limit=4).run_id
    return Runs(db, ids, [r["sample_id"] for r in picked])


def need(runs: Runs, name: str) -> str:
    if name not in runs.ids:
        import os

        if os.environ.get("CI"):
            pytest.fail("bubblewrap is missing in CI: ./dev.sh test installs it")
        pytest.skip("needs bubblewrap (Debian package bubblewrap) for the EvalPlus and IneqMath runs")
    return runs.ids[name]


def test_the_runs_are_what_the_interop_tests_assume(tmp_path):
    runs = build_runs(tmp_path)
    store = runs.store()
    mixed = {r["sample_id"]: r for r in store.samples(store.run_tasks(runs.ids["mixed"])[0]["id"])}
    right, right2, wrong, missing = runs.mixed_ids
    assert (mixed[right]["score"], mixed[right2]["score"], mixed[wrong]["score"]) == (1.0, 1.0, 0.0)
    assert mixed[missing]["status"] == "error" and "no response for sample" in mixed[missing]["error"]
    hostile = store.samples(store.run_tasks(runs.ids["hostile"])[0]["id"])[0]
    # the lone surrogate reached the trace as it was; the row's columns hold it escaped (the store's rule)
    assert "\ud800" in store.trace(hostile["trace_hash"])["messages"][-1]["content"]
    assert "response" in hostile["escaped"] and "\\ud800" in hostile["response"]
    if "ineqmath" in runs.ids:
        rt = store.run_tasks(runs.ids["ineqmath"])[0]
        trace = store.trace(store.samples(rt["id"])[0]["trace_hash"])
        assert any(c["kind"] == "judge" for c in trace["calls"]) and rt["metrics"]["counts"]["scored"] == 4
