"""The OpenAI-compatible client against a real loopback server that misbehaves on purpose."""
from __future__ import annotations

import asyncio
import json

import pytest

import harness
from harness._registry import UsageError
from harness.model import OpenAICompatible, get_model, modelapi
from harness.store import Store

from fakeopenai import start_server


@pytest.fixture
def server(request):
    proc, url = start_server(*getattr(request, "param", ()))
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.mark.parametrize("server", [("--faults", "429:12:0.3,500:7,drop:11,slow:13:1.5", "--latency", "0.01")],
                         indirect=True)
def test_every_sample_ends_scored_through_429_500_drops_and_slow_answers(server, db_url):
    store = Store(db_url)
    model = OpenAICompatible("fake-model", base_url=server, options={"max_connections": 8, "max_retries": 6,
                                                                     "timeout": 1.0, "retry_max_wait": 0.5})
    run_id = harness.eval("cipherbank", model, db=store, data="bundled", base_url=server).run_id
    rt = store.run_tasks(run_id)[0]
    assert store.status_counts(rt["id"]) == {"scored": 180}

    # retries are in the trace: 429 (Retry-After), 500, dropped connections and timeouts (the slow answers)
    errors = []
    for row in store.samples(rt["id"]):
        attempts = store.trace(row["trace_hash"])["calls"][0]["attempts"]
        errors += [a["error"] for a in attempts if a["error"]]
        assert attempts[-1]["status"] == 200
    assert any("HTTP 429" in e for e in errors)
    assert any("HTTP 500" in e for e in errors)
    assert any("ServerDisconnected" in e or "ClientOSError" in e or "ClientPayloadError" in e for e in errors)
    assert any("Timeout" in e for e in errors)
    with store.engine.connect() as conn:
        from sqlalchemy import text
        retried = conn.execute(text("select count(*) from calls_v where run_id = :r and attempts > 1"),
                               {"r": run_id}).scalar()
    assert retried >= 12

    # the limit halved on the 429 burst, then grew back to its maximum
    limiter = model.limiter
    assert limiter.lowest <= 4 and limiter.limit == limiter.max_limit == 8
    assert [e[1] for e in limiter.events][:1] == ["throttled"] and limiter.events[-1][1] == "recovered"
    stored = store.get_run(run_id)["limiters"][f"endpoint:{server}"]
    assert stored["lowest"] == limiter.lowest and stored["throttles"] >= 1


@pytest.mark.parametrize("server", [("--latency", "0.05",)], indirect=True)
def test_concurrency_limit_is_respected(server, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'h.db'}")
    model = OpenAICompatible("fake-model", base_url=server, options={"max_connections": 5})
    harness.eval("cipherbank", model, db=store, data="bundled", limit=40)
    stats = json.loads(__import__("urllib.request").request.urlopen(server.removesuffix("/v1") + "/stats").read())
    assert stats["max_in_flight"] == 5 and stats["n"] == 40


def test_unreachable_endpoint_fails_before_any_work(tmp_path):
    model = OpenAICompatible("m", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(UsageError, match="cannot reach http://127.0.0.1:9/v1"):
        asyncio.run(model.check())


def test_missing_api_key_is_refused_up_front(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(UsageError, match="OPENAI_API_KEY is not set"):
        get_model("openai/gpt-4o-mini")


@pytest.mark.parametrize("server", [()], indirect=True)
def test_the_request_carries_sampling_settings_and_the_key(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    model = get_model("openai/fake-model", base_url=server, args={"temperature": 0, "max_tokens": 7, "max_retries": 0})

    async def call():
        try:
            return await model.generate([{"role": "user", "content": "hi\nabc"}], {"temperature": 0, "max_tokens": 7})
        finally:
            await model.aclose()

    out = asyncio.run(call())
    assert out.text == "<result>abc</result>"
    assert out.call.input_tokens == 1 and out.call.output_tokens == 8 and out.call.latency_s > 0
    assert model.options["max_retries"] == 0


BUILT: list[OpenAICompatible] = []


@modelapi("kept-openai")  # the openai provider, keeping each client it builds so a test can look at it afterwards
def _kept_openai(name, *, base_url, args, db_url):
    BUILT.append(get_model(f"openai/{name}", base_url=base_url, args=args))
    return BUILT[-1]


def test_model_and_judges_on_one_endpoint_share_its_limit(tmp_path):
    BUILT.clear()
    with pytest.raises(UsageError, match="cannot reach http://127.0.0.1:9/v1"):  # the clients exist by then
        harness.eval("cipherbank", "kept-openai/a", db=f"sqlite:///{tmp_path / 'h.db'}",
                     base_url="http://127.0.0.1:9/v1", judges={"default": "kept-openai/b", "other": "kept-openai/c"},
                     judge_base_url="http://127.0.0.1:9/v1")
    assert [c.model for c in BUILT] == ["a", "b", "c"]
    assert len({id(c.limiter) for c in BUILT}) == 1
    assert BUILT[0].limiter.name == "endpoint:http://127.0.0.1:9/v1"
