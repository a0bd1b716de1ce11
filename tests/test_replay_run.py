"""`replay-run:RUN_ID` (harness/model/_replay_run.py): a stored run answers a new run's requests, keyed by what is
sent; a request it never made is a loud miss saying where it diverged.

Most stored runs here are FIXTURES: hand-written agent trajectories (a python tool call, its result, a final answer;
two epochs with different answers to the same first request; a judge call) written through the Store's public
write path, each call recorded as the runner records one (ModelCall.to_json(), which carries the request key). The
last tests replay real agent runs: cipherbank@agent against the loopback server (tests/fakeopenai.py --script),
its python tool run in a bwrap sandbox."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest
from fakeopenai import start_server

import harness
from harness import ChatMessageAssistant, ChatMessageSystem, ChatMessageTool, ChatMessageUser, ToolCall, ToolInfo
from harness import Sample, TaskState, UsageError, get_task
from harness._types import ContextLengthExceeded, InfraError, ModelCall, request_key
from harness.model._replay_run import ReplayRunModel
from harness.store import SampleResult, Store

PYTHON = ToolInfo(name="python", description="Run Python code.",
                  parameters={"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]})
CONFIG = {"temperature": 0, "max_tokens": 256}
SYSTEM = ChatMessageSystem(content="Decrypt the ciphertext; you may run python.")
USER = ChatMessageUser(content="Ciphertext: Uryyb")


def first_turn() -> list:
    return [SYSTEM, USER]


def second_turn(code: str, output: str) -> list:
    call = ToolCall(id="c1", function="python", arguments={"code": code}, raw=f'{{"code": "{code}"}}')
    return [SYSTEM, USER, ChatMessageAssistant(content="Trying rot13.", tool_calls=[call]),
            ChatMessageTool(content=output, tool_call_id="c1", function="python")]


def stored_call(messages, *, text="", tool_calls=(), stop="stop", tokens=(10, 5), kind="model", tools=True,
                error=None) -> dict:
    """A call as the runner stores it in a trace (the OpenAI client's shape: tool schemas, no choice without tools)."""
    return ModelCall(kind=kind, model="openai/gpt-test", messages=messages, config=CONFIG,
                     tools=[PYTHON.model_dump()] if tools else None, tool_choice="auto" if tools else None,
                     text=text, tool_calls=list(tool_calls), stop_reason=stop, input_tokens=tokens[0],
                     output_tokens=tokens[1], error=error).to_json()


def trajectory(code: str, output: str, final: str) -> list[dict]:
    call = ToolCall(id="c1", function="python", arguments={"code": code}, raw=f'{{"code": "{code}"}}')
    return [stored_call(first_turn(), text="Trying rot13.", tool_calls=[call], stop="tool_calls", tokens=(40, 12)),
            stored_call(second_turn(code, output), text=final, tokens=(70, 6))]


def write_run(store: Store, run_id: str, samples: dict[tuple[str, int], list[dict]]) -> None:
    store.create_run(id=run_id, model="openai/gpt-test", model_info={}, generate_config=CONFIG, epochs=2, plan={},
                     limiters={}, environment={}, command="fixture")
    rt = store.run_task(run_id, "cipherbank", "default", task_args={}, task_version="1.0",
                        dataset={"kind": "fixture"}, samples_planned=len(samples))
    store.write([SampleResult(rt, {"sample_id": sid, "epoch": epoch, "status": "scored", "score": 1.0,
                                   "target": "Hello", "response": calls[-1]["text"] if calls else None},
                              [], {"messages": [], "calls": calls, "scores": [], "metadata": {}})
                 for (sid, epoch), calls in samples.items()])
    store.set_run_status(run_id, "finished")


ROT13 = "import codecs; print(codecs.decode('Uryyb', 'rot13'))"
AGENT_RUN = {
    ("s1", 0): trajectory(ROT13, "Hello", "<result>Hello</result>"),
    # the same first request in another epoch, answered differently (sampling)
    ("s1", 1): [stored_call(first_turn(), text="Let me think.", tokens=(40, 3)),
                stored_call([SYSTEM, USER, ChatMessageAssistant(content="Let me think."),
                             ChatMessageUser(content="Continue.")], text="<result>Hallo</result>", tokens=(50, 4))],
    ("s2", 0): [stored_call([ChatMessageUser(content="Grade: Hello vs Hello")], text="CORRECT", kind="judge",
                            tools=False, tokens=(8, 1)),
                stored_call([ChatMessageUser(content="same prompt twice")], text="first", tools=False),
                stored_call([ChatMessageUser(content="same prompt twice")], text="second", tools=False)],
}


@pytest.fixture
def replay(db_url):
    store = Store(db_url)
    write_run(store, "run-agent-0001", AGENT_RUN)
    store.close()
    model = ReplayRunModel("run-agent", db_url=db_url)  # a unique prefix is enough
    asyncio.run(model.check())
    return model


def bound(model: ReplayRunModel, sample_id: str, epoch: int):
    return model.bind(TaskState(sample=Sample(id=sample_id, input=""), epoch=epoch), get_task("cipherbank").build())


def ask(client, messages, *, tools=True, kind="model", config=CONFIG):
    return asyncio.run(client.generate(messages, dict(config), tools=[PYTHON] if tools else None,
                                       tool_choice="auto" if tools else None, kind=kind))


def test_a_bound_sample_gets_its_own_stored_answers_in_order(replay):
    assert replay.info() == {"endpoint": None, "replay_run": "run-agent-0001", "calls_indexed": 7}
    # epoch 1 asked first: it still gets epoch 1's answer to the request both epochs made
    late = bound(replay, "s1", 1)
    out = ask(late, first_turn())
    assert out.text == "Let me think." and out.tool_calls == [] and out.stop_reason == "stop"
    early = bound(replay, "s1", 0)
    out = ask(early, first_turn())
    assert out.text == "Trying rot13." and out.stop_reason == "tool_calls"
    assert [(c.id, c.function, c.arguments) for c in out.tool_calls] == [("c1", "python", {"code": ROT13})]
    assert (out.call.input_tokens, out.call.output_tokens) == (40, 12)
    key = request_key(first_turn(), [PYTHON.model_dump()], "auto", CONFIG)
    assert out.call.raw["replay_run"]["run"] == "run-agent-0001" and out.call.raw["replay_run"]["key"] == key
    assert out.call.to_json()["request_key"] == key  # the new run's call is keyed like the stored one
    final = ask(early, second_turn(ROT13, "Hello"))
    assert final.text == "<result>Hello</result>" and (final.call.input_tokens, final.call.output_tokens) == (70, 6)


def test_a_changed_request_is_a_miss_saying_where_it_diverged(replay):
    client = bound(replay, "s1", 0)
    ask(client, first_turn())
    with pytest.raises(InfraError) as miss:
        ask(client, second_turn(ROT13, "Hellp"))  # the tool printed something else this time
    said = str(miss.value)
    assert "\n" not in said and "diverged from the stored run" in said
    assert "sample 's1' epoch 0 of cipherbank, model call 2 (4 messages)" in said
    assert "message 4 (tool) differs" in said and "Hellp" not in said  # where, not the content

    with pytest.raises(InfraError, match=r"model call 1 .*the settings \(temperature\) differ"):
        ask(bound(replay, "s1", 0), first_turn(), config={**CONFIG, "temperature": 0.7})
    with pytest.raises(InfraError, match=r"model call 1 .*the tools offered and the tool choice differ"):
        ask(bound(replay, "s1", 0), first_turn(), tools=False)


def test_asking_more_than_the_stored_run_asked_is_a_miss(replay):
    client = bound(replay, "s1", 0)
    ask(client, first_turn())
    ask(client, second_turn(ROT13, "Hello"))
    with pytest.raises(InfraError, match=r"model call 3 .*the stored sample made only 2 model call\(s\)"):
        ask(client, second_turn(ROT13, "Hello") + [ChatMessageUser(content="Again?")])
    again = bound(replay, "s1", 0)
    ask(again, first_turn())
    ask(again, second_turn(ROT13, "Hello"))
    with pytest.raises(InfraError, match=r"asked more often than the 1 time\(s\) the stored sample asked it"):
        ask(again, second_turn(ROT13, "Hello"))
    with pytest.raises(InfraError, match=r"the stored run has no model calls for sample 's9' epoch 0"):
        ask(bound(replay, "s9", 0), first_turn())


def test_unbound_identical_requests_answer_in_stored_order_then_miss(replay):
    twice = [ChatMessageUser(content="same prompt twice")]
    assert [ask(replay, twice, tools=False).text for _ in range(2)] == ["first", "second"]
    with pytest.raises(InfraError, match="asked more often than the stored run asked it"):
        ask(replay, twice, tools=False)
    # across epochs too: s1's first request was stored twice, epoch 0 first
    assert [ask(replay, first_turn()).text for _ in range(2)] == ["Trying rot13.", "Let me think."]
    with pytest.raises(InfraError, match=r"a model call with 1 messages matches no stored model call"):
        ask(replay, [ChatMessageUser(content="never asked")], tools=False)


def test_judge_requests_are_answered_only_from_stored_judge_calls(replay):
    grade = [ChatMessageUser(content="Grade: Hello vs Hello")]
    with pytest.raises(InfraError, match="matches no stored model call"):
        ask(replay, grade, tools=False)  # the same messages as a model request: not the judge's answer
    assert ask(replay, grade, tools=False, kind="judge").text == "CORRECT"


def test_a_stored_failure_replays_as_the_same_failure(db_url):
    store = Store(db_url)
    too_long = "HTTP 400: This model's maximum context length is 8192 tokens"
    write_run(store, "run-failed", {
        ("long", 0): [stored_call(first_turn(), text=None, error=too_long, tokens=(None, None))],
        ("down", 0): [stored_call([SYSTEM, ChatMessageUser(content="other")], text=None,
                                  error="gave up after 10 attempts: HTTP 503", tokens=(None, None))]})
    model = ReplayRunModel("run-failed", db_url=db_url)
    asyncio.run(model.check())
    with pytest.raises(ContextLengthExceeded, match="maximum context length") as limit:
        ask(bound(model, "long", 0), first_turn())
    assert limit.value.call.error == too_long  # the runner keeps the failed call in the trace
    with pytest.raises(InfraError, match="the stored run's call for this request failed: gave up after 10") as down:
        ask(bound(model, "down", 0), [SYSTEM, ChatMessageUser(content="other")])
    assert not isinstance(down.value, ContextLengthExceeded)


def one_line_usage_error(model: ReplayRunModel) -> str:
    with pytest.raises(UsageError) as e:
        asyncio.run(model.check())
    assert "\n" not in str(e.value)
    return str(e.value)


def test_runs_that_cannot_be_replayed_are_one_line_errors_before_any_work(db_url, tmp_path):
    store = Store(db_url)
    write_run(store, "run-agent-0001", AGENT_RUN)
    assert "no run 'nope' in the database" in one_line_usage_error(ReplayRunModel("nope", db_url=db_url))
    unkeyed = trajectory(ROT13, "Hello", "<result>Hello</result>")
    for call in unkeyed:
        del call["request_key"]  # as every call was stored before request keys existed
    write_run(store, "run-old", {("s1", 0): unkeyed})
    said = one_line_usage_error(ReplayRunModel("run-old", db_url=db_url))
    assert "stored before model requests were keyed (2 of its calls" in said
    write_run(store, "run-empty", {("s1", 0): []})
    assert "has no stored model calls" in one_line_usage_error(ReplayRunModel("run-empty", db_url=db_url))
    missing = f"sqlite:///{tmp_path / 'absent.db'}"
    assert "no database at" in one_line_usage_error(ReplayRunModel("run-agent", db_url=missing))
    assert not (tmp_path / "absent.db").exists()
    with pytest.raises(UsageError, match="needs a run id"):
        ReplayRunModel("", db_url=db_url)


def agent_run(tmp_path, db: str, code: str) -> str:
    """A real cipherbank@agent run (3 samples x 2 epochs) whose scripted model runs `code` with python, then submits."""
    script = tmp_path / f"script-{abs(hash(code))}.json"
    script.write_text(json.dumps([
        {"content": "Let me try.",
         "tool_calls": [{"id": "c1", "function": {"name": "python", "arguments": {"code": code}}}]},
        {"content": "", "tool_calls": [{"id": "c2", "function": {"name": "submit",
                                                                 "arguments": {"answer": "<result>42</result>"}}}]}]))
    proc, url = start_server("--script", str(script))
    try:
        return harness.eval("cipherbank@agent", "openai/fake", base_url=url, db=db, data="bundled", limit=3, epochs=2,
                            sandbox="bwrap").run_id
    finally:
        proc.terminate()
        proc.wait(10)


def replayed(run_id: str, db: str, **options) -> "harness.RunResult":
    # the loopback server is gone: every answer comes from the stored run, every tool runs again
    return harness.eval("cipherbank@agent", ReplayRunModel(run_id, db_url=db), db=db, data="bundled", limit=3,
                        epochs=2, sandbox="bwrap", **options)


def outcome(store: Store, run_id: str) -> dict:
    rows = {(r["sample_id"], r["epoch"]): (r["status"], r["score"], r["answer"], r["response"], r["input_tokens"],
                                           r["output_tokens"])
            for rt in store.run_tasks(run_id) for r in store.samples(rt["id"])}
    steps = [(e["sample_id"], e["epoch"], e["seq"], e["kind"], e["name"] if e["kind"] != "model" else None,
              e["output"] if e["kind"] == "tool" else None) for e in store.events(run_id)]
    return {"rows": rows, "steps": steps}


def test_a_real_agent_run_replays_offline_with_the_same_outcome(tmp_path):
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    first = agent_run(tmp_path, db, "print(6 * 7)")
    again = replayed(first, db)
    store = Store(db, create=False)
    stored, replay = outcome(store, first), outcome(store, again.run_id)
    assert len(stored["rows"]) == 6 and {row[0] for row in stored["rows"].values()} == {"scored"}
    assert replay == stored  # every sample's score, answer, tokens, and every step with the tools' outputs
    assert [s[5] for s in replay["steps"] if s[4] == "python"] == ["42\n"] * 6  # python ran again in the sandbox
    row = store.samples(store.run_tasks(again.run_id)[0]["id"])[0]
    calls = store.trace(row["trace_hash"])["calls"]
    assert [c["raw"]["replay_run"]["run"] for c in calls] == [first, first]
    assert store.get_run(again.run_id)["model_info"] == {"endpoint": None, "replay_run": first, "calls_indexed": 12}

    changed = replayed(first, db, model_args={"temperature": 0.5})
    errors = {r["error"] for r in changed.samples()}
    assert {r["status"] for r in changed.samples()} == {"error"} and len(errors) == 6
    assert all("model call 1 (2 messages): the settings (temperature) differ" in e for e in errors)


def test_a_tool_that_answers_differently_this_time_is_a_miss_at_the_next_request(tmp_path):
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    first = agent_run(tmp_path, db, "import uuid; print(uuid.uuid4())")
    rows = replayed(first, db).samples()
    assert {r["status"] for r in rows} == {"error"} and len(rows) == 6
    for r in rows:
        assert r["error"].endswith(f"epoch {r['epoch']} of cipherbank@agent, model call 2 (4 messages): message 4 "
                                   f"(tool) differs from the stored call's"), r["error"]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=300)


def test_the_cli_replays_a_run_by_id_and_refuses_one_it_cannot(tmp_path):
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    first = agent_run(tmp_path, db, "print(6 * 7)")
    common = ["--task", "cipherbank@agent", "--data", "bundled", "--limit", "3", "--epochs", "2", "--sandbox", "bwrap",
              "--db", db, "--quiet"]
    done = cli("eval", "--model", f"replay-run:{first}", *common)
    assert done.returncode == 0, done.stderr
    store = Store(db, create=False)
    again = next(r["id"] for r in store.list_runs() if r["id"] != first)
    assert outcome(store, again) == outcome(store, first)
    assert store.get_run(again)["model"] == f"replay-run:{first}"

    unknown = cli("eval", "--model", "replay-run:nope", *common)
    assert unknown.returncode == 2 and unknown.stderr.strip().splitlines() == [
        "error: replay-run: no run 'nope' in the database; `harness runs` lists them (or point --db at the database "
        "that has it)"]
    assert len(store.list_runs()) == 2  # refused before any work: no run was made
