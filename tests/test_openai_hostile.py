"""The OpenAI-compatible client against endpoints that answer badly: odd shapes, huge or bomb bodies, a
Retry-After of a day, context-length rejections, a revoked key, redirects. Each case is a real loopback server."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness._types import ContextLengthExceeded, InfraError, RunAborted
from harness.model import OpenAICompatible

from fakeopenai import start_server

MSG = [{"role": "user", "content": "say\nHELLO"}]


def generate(url: str, **options):
    async def go():
        client = OpenAICompatible("fake", base_url=url, options=options)
        try:
            return await client.generate(MSG, {})
        finally:
            await client.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize("fake_openai", [("--faults", "429:1:99999",)], indirect=True)
def test_a_day_long_retry_after_pauses_calls_only_for_retry_max_wait(fake_openai):
    t0 = time.monotonic()
    out = generate(fake_openai, retry_max_wait=1.0)
    took = time.monotonic() - t0
    assert out.text == "<result>HELLO</result>"
    assert [a.status for a in out.call.attempts] == [429, 200]  # the 429 was served: the pause was asked for
    assert took < 10, f"the 429 paused calls for {took:.0f} s"


@pytest.mark.parametrize("fake_openai, text, note", [
    (("--faults", "shape:content_list"), "<result>HELLO</result>", "1 part(s) without text"),
    (("--faults", "shape:content_num"), "42", "content was a int"),
    (("--faults", "shape:content_dict"), '{"answer": "HELLO"}', "content was a dict"),
    (("--faults", "shape:usage_str"), "<result>HELLO</result>", "usage was a str"),
], indirect=["fake_openai"])
def test_odd_but_usable_answers_become_text_and_say_so(fake_openai, text, note):
    out = generate(fake_openai)
    assert out.text == text
    assert any(note in n for n in out.call.raw["notes"]), out.call.raw
    if "usage" in note:
        assert out.call.input_tokens is None and out.call.output_tokens is None


@pytest.mark.parametrize("fake_openai", [("--faults", "shape:message_str",)], indirect=True)
def test_a_message_that_is_not_an_object_is_a_malformed_response(fake_openai):
    with pytest.raises(InfraError, match=r"malformed response: no choices\[0\]\.message object in .*HELLO"):
        generate(fake_openai)


@pytest.mark.parametrize("style", ["openai", "vllm", "llamacpp"])
def test_a_context_length_rejection_is_raised_as_such_in_every_servers_wording(style):
    proc, url = start_server("--faults", "ctx:1", "--ctx-style", style)
    try:
        with pytest.raises(ContextLengthExceeded) as info:
            generate(url)
        assert len(info.value.call.attempts) == 1  # not retried: the same prompt would be refused again
    finally:
        proc.terminate()


@pytest.mark.parametrize("fake_openai", [("--faults", "401:0",)], indirect=True)
def test_a_refused_key_aborts(fake_openai):
    with pytest.raises(RunAborted, match="refused the API key .HTTP 401"):
        generate(fake_openai)


def test_a_redirect_is_not_followed(tmp_path):
    log = tmp_path / "elsewhere.jsonl"
    elsewhere, other_url = start_server("--log", str(log))
    proc, url = start_server("--faults", f"redirect:{other_url}/chat/completions")
    try:
        with pytest.raises(RunAborted, match=f"redirected the request .HTTP 307 to {other_url}"):
            generate(url)
        time.sleep(0.2)
        assert not log.exists() or log.read_text() == ""  # the prompt never reached the other host
    finally:
        proc.terminate()
        elsewhere.terminate()


MEASURE = """
import asyncio, json, resource, sys
sys.path.insert(0, {tests!r})
from harness._types import InfraError
from harness.model import OpenAICompatible
from harness import compute_metrics  # in the runner's module: the modules a run imports, loaded before the baseline

async def main():
    client = OpenAICompatible("fake", base_url=sys.argv[1], options={{"max_retries": 1}})
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    errors = await asyncio.gather(*[client.generate([{{"role": "user", "content": "x"}}], {{}}) for _ in range(8)],
                                  return_exceptions=True)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    await client.aclose()
    print(json.dumps({{"grew_mb": (after - before) / 1024, "errors": [str(e) for e in errors],
                      "kinds": [type(e).__name__ for e in errors]}}))

asyncio.run(main())
"""


@pytest.mark.parametrize("fault, why", [("bomb:1024", "once inflated"), ("big:64", "as sent")])
def test_huge_and_bomb_bodies_are_refused_within_bounded_memory(fault, why):
    """Eight concurrent answers that are a 1 GiB gzip bomb (4.5 MB as sent), or 64 MiB each: every call fails
    with the reason, and the process grows by far less than one body (16 MiB cap each)."""
    proc, url = start_server("--faults", fault)
    try:
        out = subprocess.run([sys.executable, "-c", MEASURE.format(tests=str(Path(__file__).parent)), url],
                             capture_output=True, text=True, timeout=300)
    finally:
        proc.terminate()
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["kinds"] == ["InfraError"] * 8
    assert all(f"too large: over max_response_bytes=16777216 {why}" in e for e in result["errors"]), result["errors"]
    assert result["grew_mb"] < 400, result  # 8 x 16 MiB in flight at worst; unbounded was 8 GiB for the bombs
