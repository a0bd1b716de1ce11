"""Runs as Inspect logs and Inspect logs as runs (harness.interop), checked with inspect_ai itself: its
read_eval_log reads every exported log and finds the database's samples, scores, messages and calls; `inspect view
bundle` makes a static site that headless Chromium shows a sample from; a log Inspect wrote (a tiny eval on its
mockllm model) is imported as a run; export then import keeps every score and message; hostile text survives."""
from __future__ import annotations

import asyncio
import functools
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from harness.interop._common import text_of
from harness.store import Store
from harness.store._store import storable
from test_interop_runs import HOSTILE, build_runs, cli, need

try:
    from inspect_ai.log import read_eval_log
except ImportError:
    if os.environ.get("CI"):
        raise
    pytest.skip("needs inspect-ai (pip install -e '.[test]' or 'harness[inspect]')", allow_module_level=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return build_runs(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def logs(runs, tmp_path_factory) -> dict[str, Path]:
    """Every run exported through the CLI, one log per run (each run has one task)."""
    out = tmp_path_factory.mktemp("logs")
    found = {}
    for name, run_id in runs.ids.items():
        cli("export", run_id, "--format", "inspect", "--out", str(out / name), "--db", runs.db)
        (path,) = sorted((out / name).glob("*.eval"))
        found[name] = path
    return found


def _calls(store: Store, rt_id: int) -> dict[tuple[str, int], list[dict]]:
    with store.engine.connect() as conn:
        rows = conn.execute(text("select * from calls where run_task_id = :id order by sample_id, epoch, idx"),
                            {"id": rt_id}).mappings().all()
    out: dict[tuple[str, int], list[dict]] = {}
    for r in rows:
        out.setdefault((r["sample_id"], r["epoch"]), []).append(dict(r))
    return out


def assert_log_matches_database(store: Store, run_id: str, path: Path) -> None:
    log = read_eval_log(str(path))
    (rt,) = store.run_tasks(run_id)
    rows = store.samples(rt["id"])
    calls = _calls(store, rt["id"])
    assert log.eval.task == rt["task"] and str(log.eval.task_version) == rt["task_version"]
    assert log.eval.dataset.location == rt["dataset"]["location"]
    assert log.eval.metadata["harness"]["dataset"]["sha256"] == rt["dataset"]["sha256"]
    assert log.eval.metadata["harness"]["prompt_sha256"]
    assert log.eval.model == store.get_run(run_id)["model"]
    assert len(log.samples) == len(rows) > 0
    overall = rt["metrics"]["overall"]
    assert {k: m.value for k, m in log.results.scores[0].metrics.items()} == {k: v["value"] for k, v in overall.items()}
    samples = {(str(s.id), s.epoch - 1): s for s in log.samples}
    for row in rows:
        s = samples[(row["sample_id"], row["epoch"])]
        trace = store.trace(row["trace_hash"])
        assert storable(s.output.completion)[0] == (row["response"] or "")  # the row holds it as the store must
        if row["status"] == "scored":
            head = s.scores["harness"]
            assert head.value == {"value": row["score"], **row["scores"]}
            assert head.answer == row["answer"] and head.explanation == row["explanation"]
            assert len(s.scores) == len(trace["scores"])  # every scorer's Score
            assert s.error is None
        else:
            assert s.scores is None and s.error.message == row["error"]
        assert [(m.role, m.text) for m in s.messages] == [(m["role"], text_of(m["content"])) for m in trace["messages"]]
        events = [e for e in s.events if e.event == "model"]
        stored = calls.get((row["sample_id"], row["epoch"]), [])
        usage = [(e.output.usage.input_tokens, e.output.usage.output_tokens) if e.output.usage else (None, None)
                 for e in events]
        assert [(e.model, *u) for e, u in zip(events, usage)] == \
            [(c["model"], c["input_tokens"], c["output_tokens"]) for c in stored]
        assert [("judge" if (e.role or "").startswith("judge") else "model") for e in events] == [c["kind"] for c in stored]
        assert {k: v for k, v in s.metadata.items() if k != "harness"} == (row["metadata"] or {})


@pytest.mark.parametrize("name", ["cipherbank", "mixed", "evalplus", "ineqmath"])
def test_exported_logs_read_by_inspect_equal_the_database(runs, logs, name):
    run_id = need(runs, name)
    assert_log_matches_database(runs.store(), run_id, logs[name])


def test_judge_calls_are_model_events_with_their_role(runs, logs):
    need(runs, "ineqmath")
    log = read_eval_log(str(logs["ineqmath"]))
    roles = {e.role for s in log.samples for e in s.events if e.event == "model"}
    assert None in roles and {"judge:answer", "judge:toy_case", "judge:logical_gap"} <= roles
    assert log.eval.model_roles["default"].model == "scripted"  # a judge given as a client is stored by its name


def test_an_errored_sample_carries_its_error_and_the_log_says_so(runs, logs):
    log = read_eval_log(str(logs["mixed"]))
    errored = [s for s in log.samples if s.error is not None]
    assert [str(s.id) for s in errored] == [runs.mixed_ids[3]]
    assert "no response for sample" in errored[0].error.message
    assert log.status == "error" and "1 of 4 samples errored" in log.error.message
    assert log.results.completed_samples == 3 and log.results.metadata["counts"]["error"] == 1


def test_paper_numbers_are_not_in_the_log(runs, logs):
    from harness import get_task

    reported = get_task("cipherbank").build().reference
    assert reported  # the suite has paper numbers that could have leaked
    log = read_eval_log(str(logs["cipherbank"]), header_only=True)
    header = log.model_dump_json()
    assert not any(r.model in header for r in reported)
    assert [s.name for s in log.results.scores] == ["cipherbank"]


def _rows_and_traces(store: Store, run_id: str) -> list[tuple]:
    (rt,) = store.run_tasks(run_id)
    keep = ("sample_id", "epoch", "status", "score", "scores", "answer", "target", "prompt", "response",
            "error_category", "error", "explanation", "metadata", "input_tokens", "output_tokens")
    out = []
    for row in store.samples(rt["id"]):
        trace = store.trace(row["trace_hash"])
        calls = [(c["kind"], c["model"], c["text"], c["input_tokens"], c["output_tokens"], c["messages"])
                 for c in trace["calls"]]
        scores = [(s.get("value"), s.get("values"), s.get("answer"), s.get("explanation")) for s in trace["scores"]
                  if "values" in s]
        out.append(({k: row[k] for k in keep}, trace["messages"], calls, scores))
    return out


@pytest.mark.parametrize("name", ["cipherbank", "mixed", "evalplus", "ineqmath"])
def test_export_then_import_keeps_every_score_and_message(runs, logs, name, tmp_path):
    run_id = need(runs, name)
    db = f"sqlite:///{tmp_path / 'imported.db'}"
    out = json.loads(cli("import-inspect", str(logs[name]), "--db", db, "--json"))
    (made,) = out
    source, copy = runs.store(), Store(db)
    assert _rows_and_traces(copy, made["run_id"]) == _rows_and_traces(source, run_id)
    (a,), (b,) = source.run_tasks(run_id), copy.run_tasks(made["run_id"])
    assert (b["task"], b["variant"], b["task_version"], b["dataset"]) == (a["task"], a["variant"], a["task_version"],
                                                                          a["dataset"])
    assert b["metrics"]["overall"] == a["metrics"]["overall"] and b["metrics"]["counts"] == a["metrics"]["counts"]
    # the analysis commands read the imported run
    shown = json.loads(cli("show", made["run_id"], "--db", db, "--json"))
    assert shown["run"]["model"] == source.get_run(run_id)["model"]


def test_hostile_text_survives_the_log(runs, logs):
    log = read_eval_log(str(logs["hostile"]), resolve_attachments="core")
    escaped = HOSTILE.replace("\ud800", "\\ud800")  # the one character a log cannot hold, escaped as the store does
    for s in log.samples:
        assert s.output.completion == escaped and s.messages[-1].text == escaped
        assert "\x00 nul \x07 bell \x1b[31m ansi \u202e rtl" in s.messages[-1].text and len(s.messages[-1].text) > 10 ** 6
        said = s.metadata["harness"]["escaped"]
        assert "response" in said and "messages[2].content" in said and "calls[0].text" in said
        (event,) = [e for e in s.events if e.event == "model"]
        assert event.output.completion == escaped


def _inspect_log_written_by_inspect(folder: Path) -> Path:
    """A two-sample Inspect eval on Inspect's own mockllm model (outputs given, with usage, so nothing is fetched)."""
    from inspect_ai import Task, eval as inspect_eval
    from inspect_ai.dataset import Sample
    from inspect_ai.model import ModelOutput, ModelUsage, get_model
    from inspect_ai.scorer import includes, match
    from inspect_ai.solver import generate, system_message

    def reply(messages, tools, tool_choice, config):
        out = ModelOutput.from_content("mockllm/model", "hello there" if "hello" in messages[-1].text else "5")
        out.usage = ModelUsage(input_tokens=7, output_tokens=2, total_tokens=9)
        return out

    task = Task(dataset=[Sample(input="Say hello", target="hello", id="a", metadata={"topic": "greeting"}),
                         Sample(input="What is 2+2?", target="4", id="b", metadata={"topic": "sums"})],
                solver=[system_message("Be brief."), generate()], scorer=[includes(), match()], name="tiny")
    (log,) = inspect_eval(task, model=get_model("mockllm/model", custom_outputs=reply), log_dir=str(folder),
                          display="none")
    assert log.status == "success", log.error
    return Path(log.location)


def test_import_a_log_inspect_wrote(tmp_path):
    path = _inspect_log_written_by_inspect(tmp_path / "logs")
    db = f"sqlite:///{tmp_path / 'h.db'}"
    printed = cli("import-inspect", str(path), "--db", db)
    assert "tiny" in printed and "2 samples (2 scored, 0 errored)" in printed
    store = Store(db)
    (run,) = store.list_runs()
    assert run["model"] == "mockllm/model" and run["status"] == "finished"
    (rt,) = store.run_tasks(run["id"])
    rows = {r["sample_id"]: r for r in store.samples(rt["id"])}
    a, b = rows["a"], rows["b"]
    # includes(): "hello" is in "hello there" (C), "4" is not in "5" (I); match(): neither is an exact match
    assert (a["score"], a["scores"]) == (1.0, {"includes": 1.0, "match": 0.0})
    assert (b["score"], b["scores"]) == (0.0, {"includes": 0.0, "match": 0.0})
    assert (a["prompt"], a["response"], a["target"], a["answer"]) == ("Say hello", "hello there", "hello", "hello there")
    assert a["metadata"] == {"topic": "greeting"} and (a["epoch"], a["input_tokens"], a["output_tokens"]) == (0, 7, 2)
    trace = store.trace(a["trace_hash"])
    assert [(m["role"], m["content"]) for m in trace["messages"]] == [
        ("system", "Be brief."), ("user", "Say hello"), ("assistant", "hello there")]
    (call,) = trace["calls"]
    assert (call["kind"], call["model"], call["text"], call["input_tokens"]) == ("model", "mockllm/model", "hello there", 7)
    assert _calls(store, rt["id"])[("a", 0)][0]["output_tokens"] == 2
    metrics = rt["metrics"]
    assert metrics["overall"]["includes"]["value"] == 50.0 and metrics["overall"]["match"]["value"] == 0.0
    assert metrics["headline"] == "includes" and metrics["complete"] is True
    assert metrics["inspect_reported"]["includes"]["accuracy"] == 0.5  # Inspect's own figure, kept as it gave it
    # the analysis commands work on it
    errors = json.loads(cli("errors", "--run", run["id"], "--by", "metadata.topic", "--db", db, "--json"))
    assert {g["group"]: g["failed"] for g in errors} == {"greeting": 0, "sums": 1}


def test_import_refuses_what_is_not_a_log(tmp_path):
    from typer.testing import CliRunner

    from harness.cli._app import app

    bogus = tmp_path / "notes.eval"
    bogus.write_text("not a zip")
    result = CliRunner().invoke(app, ["import-inspect", str(bogus), "--db", f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code != 0 and "is not an Inspect log inspect_ai can read" in str(result.exception)


def test_missing_extra_is_a_one_line_error(runs, tmp_path):
    # inspect_ai made unimportable in a fresh interpreter: the CLI says what to install, in one line
    code = ("import sys; sys.modules['inspect_ai'] = None; sys.argv = ['harness'] + sys.argv[1:]; "
            "from harness.cli import main; main()")
    done = subprocess.run([sys.executable, "-c", code, "export", runs.ids["cipherbank"], "--format", "inspect",
                           "--out", str(tmp_path / "o"), "--db", runs.db], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: the Inspect format needs the optional inspect-ai package: pip install 'harness[inspect]'"]


# ---- inspect view bundle, in headless Chromium

class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """The viewer reads .eval files (zip) with HTTP range requests, which http.server does not answer."""

    def send_head(self):
        found = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
        path = self.translate_path(self.path)
        if not found or not os.path.isfile(path):
            self._left = None
            return super().send_head()
        size = os.path.getsize(path)
        first, last = found.groups()
        start, end = (max(0, size - int(last)), size - 1) if first == "" else (int(first), min(int(last or size - 1), size - 1))
        fh = open(path, "rb")
        fh.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        self._left = end - start + 1
        return fh

    def copyfile(self, source, outputfile):
        if self._left is None:
            return super().copyfile(source, outputfile)
        outputfile.write(source.read(self._left))

    def log_message(self, *args):
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _page(url: str, profile: Path, want: str, timeout: float = 90) -> dict:
    """Open url in headless Chromium and poll (DevTools protocol) until the page's text contains `want`: the viewer
    loads logs asynchronously, which --dump-dom does not wait for. Returns the page's text and title."""
    import aiohttp

    chromium = shutil.which("chromium")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed in CI: ./dev.sh test installs it")
        pytest.skip("needs headless Chromium (Debian package chromium)")
    port = _free_port()
    proc = subprocess.Popen([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                             "--disable-background-networking", "--disable-component-update", "--disable-sync",
                             f"--user-data-dir={profile}", f"--remote-debugging-port={port}", url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        async with aiohttp.ClientSession() as http_:
            while True:
                try:
                    pages = await (await http_.get(f"http://127.0.0.1:{port}/json")).json()
                    ws_url = next(p["webSocketDebuggerUrl"] for p in pages if p["type"] == "page")
                    break
                except (aiohttp.ClientError, StopIteration):
                    assert time.monotonic() < deadline, "Chromium did not start"
                    await asyncio.sleep(0.2)
            async with http_.ws_connect(ws_url, max_msg_size=0) as ws:
                n, seen = 0, {}
                while time.monotonic() < deadline:
                    n += 1
                    await ws.send_json({"id": n, "method": "Runtime.evaluate", "params": {
                        "expression": "JSON.stringify({text: document.body ? document.body.innerText : '', "
                                      "title: document.title, pwned: !!document.getElementById('pwned')})",
                        "returnByValue": True}})
                    while (msg := await ws.receive_json()).get("id") != n:
                        pass
                    seen = json.loads(msg["result"]["result"]["value"])
                    if want in seen["text"]:
                        return seen
                    await asyncio.sleep(0.3)
                return seen
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.chromium
def test_inspect_view_bundle_shows_a_sample_in_chromium(runs, logs, tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    for name in ("cipherbank", "hostile"):
        shutil.copy(logs[name], folder / logs[name].name)
    site = tmp_path / "site"
    inspect = Path(sys.executable).parent / "inspect"
    done = subprocess.run([str(inspect), "view", "bundle", "--log-dir", str(folder), "--output-dir", str(site)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (site / "index.html").is_file() and (site / "logs" / logs["cipherbank"].name).is_file()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_RangeHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/index.html#/logs"
    try:
        store = runs.store()
        row = store.samples(store.run_tasks(runs.ids["cipherbank"])[0]["id"])[0]
        page = asyncio.run(_page(f"{base}/{logs['cipherbank'].name}/samples/sample/{row['sample_id']}/1/messages",
                                 tmp_path / "profile", row["target"]))
        assert row["target"] in page["text"] and f"Sample {row['sample_id']}" in page["text"]

        hostile = store.samples(store.run_tasks(runs.ids["hostile"])[0]["id"])[0]
        page = asyncio.run(_page(f"{base}/{logs['hostile'].name}/samples/sample/{hostile['sample_id']}/1/messages",
                                 tmp_path / "profile2", "<script>document.title='PWNED'</script>"))
        # the model's markup is shown as text and never runs
        assert "<script>document.title='PWNED'</script>" in page["text"]
        assert "PWNED" not in page["title"] and not page["pwned"]
    finally:
        server.shutdown()
