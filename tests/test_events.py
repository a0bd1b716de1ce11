"""Every step of a trajectory in SQL (the events table and events_v, on SQLite and PostgreSQL), and `harness show
RUN --sample ID` printing it as a transcript. The trajectory is the hand-written FIXTURE of trajectory_fixture.py."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import text

from harness.store import SampleResult, Store
from harness.store._store import EVENT_COLUMNS
from trajectory_fixture import HOSTILE_OUTPUT, HOSTILE_TEXT, agent_events, agent_result, new_run

EVENTS_V = ["run_id", "model", "task", "variant", "sample_id", "epoch", "seq", "span", "agent", "kind", "name", "input",
            "output", "error", "started_at", "latency_s", "input_tokens", "output_tokens"]


def harness(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})


def test_events_round_trip_through_the_table_and_view(db_url):
    store = Store(db_url)
    rt = new_run(store)
    long_output = "x" * 10_000
    plain = SampleResult(rt, {**agent_result(rt).row, "sample_id": "plain"}, [], {"messages": []})  # no events
    second = agent_result(rt, "agent-2")
    second.events[2] = {**second.events[2], "output": long_output}
    assert store.write([agent_result(rt), plain, second]) == []

    with store.engine.connect() as conn:
        result = conn.execute(text("SELECT * FROM events_v WHERE run_id = 'run-fixture' ORDER BY sample_id, seq"))
        assert list(result.keys()) == EVENTS_V
        rows = [dict(r) for r in result.mappings()]
        by_kind = dict(conn.execute(text("SELECT kind, count(*) FROM events_v WHERE sample_id = 'agent-1' "
                                         "GROUP BY kind")).all())
        tool_errors = conn.execute(text("SELECT agent, name, error FROM events_v WHERE kind = 'tool' AND error IS NOT "
                                        "NULL AND sample_id = 'agent-1' ORDER BY seq")).all()
    assert len(rows) == 18 and {r["sample_id"] for r in rows} == {"agent-1", "agent-2"}
    assert by_kind == {"span": 2, "model": 3, "tool": 3, "limit": 1}
    assert [tuple(t) for t in tool_errors] == [("solver", "bash", "missing_file"), ("researcher", "python", "timeout")]
    first = [r for r in rows if r["sample_id"] == "agent-1"]
    assert [r["seq"] for r in first] == list(range(9))
    assert first[0]["model"] == "mock-model" and first[0]["task"] == "cipherbank" and first[0]["variant"] == "default"
    assert first[4]["span"] == 0 and first[5]["span"] == 4 and first[5]["agent"] == "researcher"
    # input and output are JSON text where they were not text: the model's turn, the tool's arguments
    assert json.loads(first[1]["output"])["tool_calls"][0]["function"] == "bash"
    assert json.loads(first[2]["input"]) == {"cmd": "cat notes.txt"} and first[1]["input"] == "2"
    assert first[1]["input_tokens"] == 120 and first[1]["output_tokens"] == 15 and first[6]["latency_s"] == 3.0
    assert first[6]["output"] == HOSTILE_OUTPUT and first[8]["kind"] == "limit" and first[8]["name"] == "turns"
    # the table keeps a truncated copy, the trace the whole output
    clipped = next(r for r in rows if r["sample_id"] == "agent-2" and r["seq"] == 2)["output"]
    assert clipped.startswith("x" * 4096) and clipped.endswith("[5904 more characters in the trace]")
    row = next(r for r in store.samples(rt) if r["sample_id"] == "agent-2")
    assert store.trace(row["trace_hash"])["events"][2]["output"] == long_output

    api = store.events("run-fixture", "agent-1")
    assert [e["seq"] for e in api] == list(range(9)) and api == first
    assert len(store.events("run-fixture")) == 18 and store.events("run-fixture", "agent-1", epoch=1) == []
    store.close()


def test_unstorable_event_text_is_escaped_and_the_sample_still_stored(db_url):
    """A lone surrogate (not UTF-8) and a NUL (PostgreSQL text refuses it) in a tool's output, a tool name and the
    sample id: stored backslash-escaped, the fields named in `escaped`, the events joining their sample row."""
    store = Store(db_url)
    rt = new_run(store)
    r = agent_result(rt, "bad\x00id")
    r.events[2] = {**r.events[2], "name": "ba\ud800sh", "output": "half \ud83d then NUL \x00 end", "error": "x\x00y"}
    assert store.write([r]) == []
    (row,) = store.samples(rt)
    assert row["status"] == "scored" and row["sample_id"] == "bad\\x00id" and "sample_id" in row["escaped"]
    with store.engine.connect() as conn:
        stored = conn.execute(text("SELECT name, output, error, escaped FROM events WHERE seq = 2")).one()
        joined = conn.execute(text("SELECT count(*) FROM events e JOIN samples s ON s.run_task_id = e.run_task_id "
                                   "AND s.sample_id = e.sample_id AND s.epoch = e.epoch")).scalar()
    assert stored.name == "ba\\ud800sh" and stored.output == "half \\ud83d then NUL \\x00 end"
    assert stored.error == "x\\x00y"
    escaped = stored.escaped if isinstance(stored.escaped, list) else json.loads(stored.escaped)
    assert sorted(escaped) == ["error", "name", "output"]
    assert joined == 9
    store.close()


def test_one_batched_insert_shape_whatever_each_event_holds(db_url):
    """Events that leave fields out (a span with no tokens, an error with only a name) and one with a key the table
    does not have are written in one batch with every column; a name longer than the column is cut, not refused."""
    store = Store(db_url)
    rt = new_run(store)
    events = [{"seq": 0, "kind": "span", "name": "agent:a" + "n" * 500},
              {"seq": 1, "kind": "model", "input_tokens": 5, "output": {"text": "hi"}, "metadata": {"k": 1}},
              {"seq": 2, "kind": "error", "name": "SandboxGone", "error": "sandbox_gone", "unknown_key": 1}]
    r = agent_result(rt)
    assert store.write([SampleResult(rt, r.row, [], r.trace, events)]) == []
    got = store.events("run-fixture")
    assert [(e["seq"], e["kind"], e["input_tokens"]) for e in got] == [(0, "span", None), (1, "model", 5),
                                                                        (2, "error", None)]
    assert len(got[0]["name"]) == 200 and got[2]["error"] == "sandbox_gone"
    assert set(EVENT_COLUMNS) <= set(got[0])
    store.close()


def test_a_resume_that_redoes_a_sample_leaves_only_its_new_events(db_url):
    store = Store(db_url)
    rt = new_run(store)
    errored = agent_result(rt)
    errored.row = {**errored.row, "status": "error", "error": "sandbox died", "score": None}
    errored.events = errored.events[:3]
    assert store.write([errored]) == []
    assert len(store.events("run-fixture")) == 3
    assert store.done(rt) == set()  # what a resume asks first: the errored sample (and its steps) goes
    assert store.events("run-fixture") == []
    assert store.write([agent_result(rt)]) == []
    assert [e["seq"] for e in store.events("run-fixture")] == list(range(9))
    assert store.done(rt) == {("agent-1", 0)}  # a scored sample is kept, with its steps
    assert len(store.events("run-fixture")) == 9
    # writing the same sample again is refused whole (the unique step index and the sample's key): no duplicates
    assert store.write([agent_result(rt)])[0].startswith("sample 'agent-1' epoch 0: could not store")
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM events")).scalar() == 9
    store.close()


def test_events_go_with_their_run(db_url):
    store = Store(db_url)
    rt = new_run(store)
    store.write([agent_result(rt)])
    with store.engine.begin() as conn:
        if store.is_sqlite:
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        conn.execute(text("DELETE FROM runs WHERE id = 'run-fixture'"))
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM events")).scalar() == 0
    store.close()


# ---- harness show RUN --sample ID


def _fixture_db(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    store = Store(url)
    rt = new_run(store)
    store.write([agent_result(rt)])
    store.close()
    return url


def test_show_prints_the_trajectory_as_a_transcript(tmp_path):
    url = _fixture_db(tmp_path)
    result = harness("show", "run-fix", "--sample", "agent-1", "--db", url)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    lines = [line.rstrip() for line in out.splitlines()]
    # hand-checked order: prompt, the solver's turns, the handoff into the researcher (indented), back, the limit
    expected = [
        "── sample agent-1 · epoch 0 · cipherbank · run run-fixture",
        "── system",
        "You are a careful solver.",
        "── user",
        "Find the key in notes.txt.",
        "── ▸ agent:solver [solver] · 8.00 s",
        "  ── assistant [solver] · mock-model · 120 in / 15 out · 0.50 s",
        "  Let me read the notes.",
        "    → call bash (c1)",
        "      cmd: cat notes.txt",
        "  ── tool bash [solver] · 0.50 s  ERROR missing_file",
        "  notes.txt does not exist in the sandbox",
        "  cat: notes.txt: No such file or directory",
        "  ── assistant [solver] · mock-model · 160 in / 20 out · 0.50 s",
        "    → call transfer_to_researcher (c2)",
        "      task: find the key",
        "  ── ▸ agent:researcher [researcher] · 5.00 s",
        "    ── assistant [researcher] · mock-model · 80 in / 30 out · 0.50 s",
        f"    {HOSTILE_TEXT}",
        "      → call python (c3)",
        "        code:",
        "        for i in range(10**9):",
        "            pass",
        "    ── tool python [researcher] · 3.00 s  ERROR timeout",
        "    no answer within 3 s",
        "    partial \\x1b]0;pwned\\x07\\x1b[2J [link=http://evil]click[/link] <script>document.title='pwned'</script>",
        "  ── tool transfer_to_researcher [solver] · 0.50 s",
        "  researcher stopped: time limit",
        "  ── LIMIT turns [solver] hit: the sample ended here and was scored with what it had",
        "  3 turns of 3",
        "── final: scored · score 0 · target K3Y · category limit:turns · limit turns",
    ]
    assert lines[:len(expected)] == expected
    # the attack ran (the hostile text is there) and did nothing: markup shown as typed, no escape reached the terminal
    assert "[bold red]FAKE[/]" in out and "\x1b" not in out and "\x07" not in out


def test_show_json_gives_the_events_and_messages(tmp_path):
    url = _fixture_db(tmp_path)
    result = harness("show", "run-fixture", "--sample", "agent-1", "--epoch", "0", "--json", "--db", url)
    assert result.returncode == 0, result.stderr
    (entry,) = json.loads(result.stdout)
    assert entry["events"] == agent_events()
    assert [m["role"] for m in entry["messages"]] == ["system", "user", "assistant", "tool", "assistant", "tool"]
    assert (entry["status"], entry["score"], entry["limit"], entry["task"]) == ("scored", 0.0, "turns", "cipherbank")


def test_show_sample_errors_are_one_line(tmp_path):
    url = _fixture_db(tmp_path)
    missing = harness("show", "run-fixture", "--sample", "nope", "--db", url)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "run run-fixture has no sample 'nope'" in missing.stderr
    epoch = harness("show", "run-fixture", "--sample", "agent-1", "--epoch", "3", "--db", url)
    assert epoch.returncode == 2 and "no sample 'agent-1' epoch 3" in epoch.stderr
    stray = harness("show", "run-fixture", "--epoch", "0", "--db", url)
    assert stray.returncode == 2 and "add --sample ID" in stray.stderr


def test_show_asks_which_task_when_the_sample_id_is_in_two(tmp_path):
    url = _fixture_db(tmp_path)
    store = Store(url)
    hint = store.run_task("run-fixture", "cipherbank", "hint", task_args={}, task_version="1.0", dataset={})
    plain = agent_result(hint)
    plain.events, plain.trace = [], {"messages": [{"role": "user", "content": "the hint variant's prompt"}]}
    store.write([plain])
    store.close()
    both = harness("show", "run-fixture", "--sample", "agent-1", "--db", url)
    assert both.returncode == 2 and "is in 2 tasks of run run-fixture (cipherbank, cipherbank@hint); choose one " \
        "with --task" in both.stderr
    chosen = harness("show", "run-fixture", "--sample", "agent-1", "--task", "cipherbank@hint", "--db", url)
    assert chosen.returncode == 0, chosen.stderr
    assert "the hint variant's prompt" in chosen.stdout and "agent:solver" not in chosen.stdout


def _eval(tmp_path, task: str, *extra: str) -> tuple[Store, str]:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    made = harness("eval", "--model", "reference", "--task", task, "--data", "bundled", "--limit", "2", "--db", url,
                   "--quiet", *extra)
    assert made.returncode == 0, made.stderr
    store = Store(url)
    return store, store.list_runs()[0]["id"]


def test_a_plain_run_stores_one_model_step_per_sample_and_shows_it(tmp_path):
    """A real single-generate run (the reference model on the bundled CipherBank data), through the CLI."""
    store, run_id = _eval(tmp_path, "cipherbank")
    (rt,) = store.run_tasks(run_id)
    rows = store.samples(rt["id"])
    steps = store.events(run_id)
    assert [(e["sample_id"], e["seq"], e["kind"], e["name"], e["input"]) for e in steps] == [
        (r["sample_id"], 0, "model", "reference", "2") for r in rows]  # system + user sent
    assert json.loads(steps[0]["output"])["text"] == rows[0]["response"]
    result = harness("show", run_id, "--sample", rows[0]["sample_id"], "--db", store.url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    heads = [line for line in lines if line.startswith("── ") and not line.startswith(("── sample", "── final"))]
    assert [h.split(" · ")[0] for h in heads] == ["── system", "── user", "── assistant"]
    assert rows[0]["response"].splitlines()[0] in lines
    (final,) = [line for line in lines if line.startswith("── final")]
    assert final.startswith("── final: scored · score 1 · answer ")


@pytest.mark.bwrap
def test_an_agent_run_stores_every_step_and_shows_its_tool_calls(tmp_path):
    """The real agent loop (cipherbank@agent: react with a python tool and submit; the reference model submits the
    gold answer) in a bubblewrap sandbox: its span, model turn and submit call are rows of events_v."""
    store, run_id = _eval(tmp_path, "cipherbank@agent", "--sandbox", "bwrap")
    (rt,) = store.run_tasks(run_id)
    rows = store.samples(rt["id"])
    assert {r["status"] for r in rows} == {"scored"} and {r["score"] for r in rows} == {1.0}
    for r in rows:
        steps = store.events(run_id, r["sample_id"], 0)
        assert [(e["seq"], e["span"], e["kind"], e["name"]) for e in steps] == [
            (0, None, "span", "agent:agent"), (1, 0, "model", "reference"), (2, 0, "tool", "submit")]
        assert json.loads(steps[2]["input"]) == {"answer": r["response"]}  # what it submitted is what was scored
    result = harness("show", run_id, "--sample", rows[0]["sample_id"], "--db", store.url)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "── ▸ agent:agent" in out and "    → call submit" in out and "  ── tool submit" in out
    as_json = json.loads(harness("show", run_id, "--sample", rows[0]["sample_id"], "--json", "--db", store.url).stdout)
    trace = store.trace(rows[0]["trace_hash"])
    assert as_json[0]["events"] == trace["events"] and as_json[0]["messages"] == trace["messages"]
