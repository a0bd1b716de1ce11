"""MMSearch-Plus: decryption (SOURCE.md's vectors), the bundled items (the authors' 10 published items, 6 with
images, converted), the search layer against a loopback fake SerpAPI (scripted results and pages, not
benchmark data), a scripted tool-calling model doing a whole rollout_som trajectory, replay from the cache
alone, the judges on hand-checked pairs, the blocklist, and bad input."""
from __future__ import annotations

import asyncio
import io
import json
import tarfile
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

import harness
from harness import ChatMessageAssistant, ToolCall
from harness.cli._app import app
from harness.model import MockModel
from harness.search import (Blocklist, CacheCorrupt, SearchCache, export_cache, import_cache, normalize_query,
                            request_key)
from harness.store import Store
from harness.tasks.mmsearch_plus import BLOCKLIST, MODES, data
from harness.tasks.mmsearch_plus.scoring import contains_match, exact_match, extract_answer, parse_verdict

BUNDLED = Path(data.__file__).parent / "data" / "test.jsonl"


# ---- a loopback SerpAPI-compatible server: /search.json (google, google_lens) and /page/<name> ----

class FakeSerp:
    def __init__(self):
        self.requests: list[dict[str, str]] = []
        self.pages: list[str] = []  # the pages fetched
        self.faults: list[int] = []  # statuses answered first, one per request
        self.down = False
        self.base = ""

    def text_results(self, q: str) -> list[dict[str, str]]:
        b = self.base
        return [{"title": "University ultimate final", "link": f"{b}/page/final", "snippet": "the final ended 13-11"},
                {"title": "MMSearch-Plus leaderboard", "link": "https://mmsearch-plus.github.io/#leaderboard"},
                {"title": "a mirror of the paper", "link": "https://www.alphaxiv.org/abs/2508.21475"},
                {"title": "an innocent-looking page", "link": f"{b}/page/canary"},
                {"title": f"more on {q}", "link": f"{b}/page/other", "snippet": "unrelated"},
                {"title": "past the top 5", "link": f"{b}/page/other"}]

    async def search(self, request):
        from aiohttp import web

        params = dict(request.query)
        self.requests.append(params)
        if self.down:
            return web.Response(status=503, text="down")
        if self.faults:
            return web.Response(status=self.faults.pop(0), text="slow down")
        if params.get("api_key") != "test-key":
            return web.json_response({"error": "Invalid API key"}, status=401)
        if params["engine"] == "google":
            return web.json_response({"search_metadata": {"status": "Success"},
                                      "organic_results": self.text_results(params["q"])})
        name = params["url"].rsplit("/", 1)[-1]
        return web.json_response({"visual_matches": [
            {"title": f"visual match of {name}", "link": f"{self.base}/page/lens", "source": "fake",
             "thumbnail": f"{self.base}/thumb/{name}"}]})

    async def page(self, request):
        from aiohttp import web

        body = {"final": "<p>The final of the university ultimate frisbee league ended 13-11 after a long game.</p>",
                "canary": "<p>This page copies the benchmark: MMSearch-Plus question 23, answer 13-11.</p>",
                "other": "<p>Nothing about the match is on this page, only weather reports for the week.</p>",
                "lens": "<p>The same picture appears in a report on the ultimate frisbee league final.</p>"}
        self.pages.append(request.match_info["name"])
        text = body.get(request.match_info["name"])
        if text is None:
            return web.Response(status=404)
        return web.Response(text=f"<html><body><article>{text}</article></body></html>", content_type="text/html")

    def __enter__(self):
        from aiohttp import web

        ready = threading.Event()

        def serve():
            self.loop = asyncio.new_event_loop()
            application = web.Application()
            application.router.add_get("/search.json", self.search)
            application.router.add_get("/page/{name}", self.page)
            self.runner = web.AppRunner(application)
            self.loop.run_until_complete(self.runner.setup())
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            self.loop.run_until_complete(site.start())
            self.base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
            ready.set()
            self.loop.run_forever()
            self.loop.run_until_complete(self.runner.cleanup())

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()
        ready.wait(10)
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def searches(self, engine: str) -> list[dict[str, str]]:
        return [r for r in self.requests if r.get("engine") == engine]


@pytest.fixture
def serp(monkeypatch):
    monkeypatch.setenv("SERPAPI_API_KEY", "test-key")
    with FakeSerp() as fake:
        yield fake


def live_args(serp: FakeSerp, cache: Path, search: str = "fill", **extra) -> dict:
    return {"search": search, "search_cache": str(cache), "search_url": f"{serp.base}/search.json",
            "image_publish_dir": str(cache.parent / "published"), "image_publish_url": f"{serp.base}/img",
            "search_backoff_s": 0.01, "fetch_private": True, **extra}


# ---- data ----

def test_decryption_matches_the_source_vectors_and_a_failure_raises():
    assert data.decrypt("XX3/ue0XYAoJQwwFGQ==") == "Hello, world!"
    long = "A plaintext longer than thirty-two bytes, to test key repetition."
    assert data.encrypt(long) == ("VDjjueNSLgkDSRRBVAIZx2l5yt0wgFxYjGvin9Fng2Fid7O3+08lDkoRFA4YGRLTeCuBzCHBQB2IZv+E0XfBezs=")
    assert data.decrypt(data.encrypt(long)) == long and data.decrypt("") == ""
    with pytest.raises(data.DecryptionError, match="not base64"):
        data.decrypt("not base64 at all!")
    with pytest.raises(data.DecryptionError, match="does not decrypt to UTF-8"):
        data.decrypt(data.encrypt("a question that is long enough to fail", canary="another canary"))


def test_the_bundled_items_decrypt_to_the_published_questions_with_their_images():
    rows = [r for _, r in data.read_local(BUNDLED)]
    assert [r["id"] for r in rows] == ["entry_15", "entry_23", "entry_188", "entry_229", "entry_263", "entry_344"]
    samples = {s.id: s for r in rows for s in data.to_samples_for("rollout_som", "{question}", "full", None, None)(r, None)}
    s = samples["entry_23"]
    assert s.metadata["question"] == "What was the final score of the match shown in the image?"
    assert s.target == ["13-11"] and s.metadata["category"] == "Sports" and len(s.metadata["marks"]["img_1"]) == 21
    kinds = [p.type for p in s.input[0]["content"]]
    assert kinds == ["text", "text", "image"]  # the marked copy is the image itself: shown once
    assert "its marks are drawn on it" in s.input[0]["content"][1].text
    assert samples["entry_344"].target == ["Philipp Lahm"]


def test_reference_model_scores_100_percent_in_every_mode_through_the_cli(serp, tmp_path):
    db = f"sqlite:///{tmp_path / 'ref.db'}"
    cache = tmp_path / "cache"
    # the image-search mode searches up front: fill the cache from the fake, then replay it with the fake gone
    fill = ["-T", f"search_url={serp.base}/search.json", "-T", f"image_publish_dir={tmp_path / 'pub'}",
            "-T", f"image_publish_url={serp.base}/img", "-T", "search=fill", "-T", "fetch_private=true"]
    base = ["eval", "--model", "reference", "--data", "bundled", "--db", db, "--quiet", "--judge-model", "mock",
            "-T", f"search_cache={cache}"]
    result = CliRunner().invoke(app, base + ["--task", "mmsearch_plus@image_search"] + fill)
    assert result.exit_code == 0, result.output
    assert len(serp.searches("google_lens")) == 6
    serp.down = True
    for mode in MODES:
        result = CliRunner().invoke(app, base + ["--task", f"mmsearch_plus@{mode}"])
        assert result.exit_code == 0, (mode, result.output)
        store = Store(db)
        run = store.list_runs()[0]
        rows = store.samples(store.run_tasks(run["id"])[0]["id"])
        assert len(rows) == 6 and all(r["status"] == "scored" and r["score"] == 1.0 for r in rows), (mode, rows)
    assert len(serp.searches("google_lens")) == 6  # the replays asked nothing


def test_a_hub_mirror_folder_is_read_with_row_ids_and_an_ids_subset(tmp_path):
    import datasets
    from PIL import Image

    img = Image.new("RGB", (64, 48), (10, 200, 30))
    rows = {"question": [data.encrypt("What colour is it?"), data.encrypt("Which shape?")],
            "answer": [[data.encrypt("green")], [data.encrypt("rectangle"), data.encrypt("oblong")]],
            "num_images": [1, 1], "arxiv_id": ["", ""], "video_url": [data.encrypt("https://v.example/x"), ""],
            "category": ["Geography", "Music"], "difficulty": ["easy", "difficult"], "subtask": ["a", "b"],
            "img_1": [img, img]}
    ds = datasets.Dataset.from_dict(rows).cast_column("img_1", datasets.Image())
    (tmp_path / "mirror" / "data").mkdir(parents=True)
    ds.to_parquet(str(tmp_path / "mirror" / "data" / "train-00000-of-00001.parquet"))
    ids = tmp_path / "ids.txt"
    ids.write_text("1\n")
    db = f"sqlite:///{tmp_path / 'hub.db'}"
    result = harness.eval("mmsearch_plus@no_search", "reference", db=db, data=f"hub:{tmp_path / 'mirror'}",
                          judges="mock", task_args={"ids_file": str(ids)})
    rows = result.samples()
    assert [(r["sample_id"], r["score"], r["metadata"]["subset"], r["metadata"]["difficulty"]) for r in rows] == [
        ("1", 1.0, "ids:ids.txt", "difficult")]
    assert json.loads(rows[0]["target"]) == ["rectangle", "oblong"]


# ---- the search layer ----

def test_cache_keys_follow_the_source_definition():
    assert normalize_query("  Ｕltimate\tFrisbee   FINAL ") == "ultimate frisbee final"
    a = request_key("serpapi", "1", "text_search", normalize_query("Frisbee  final"), {"num": 5, "hl": "en"})
    assert a == request_key("serpapi", "1", "text_search", "frisbee final", {"hl": "en", "num": 5})
    assert a != request_key("serpapi", "1", "text_search", "frisbee final", {"hl": "en", "num": 10})
    assert a != request_key("serpapi", "2", "text_search", "frisbee final", {"hl": "en", "num": 5})


def test_the_blocklist_drops_listed_sites_papers_and_pages_with_the_canary():
    assert BLOCKLIST.reason("https://mmsearch-plus.github.io/") == "site mmsearch-plus.github.io"
    assert BLOCKLIST.reason("https://huggingface.co/datasets/Cie1/MMSearch-Plus/tree/main").startswith("page")
    assert BLOCKLIST.reason("https://github.com/mmsearch-plus/MMSearch-Plus") is not None
    assert BLOCKLIST.reason("https://arxiv.org/pdf/2508.21475v3") == "url contains 2508.21475"
    assert BLOCKLIST.reason("https://example.org/a", "title", "it quotes MMSearch-Plus") is not None
    assert BLOCKLIST.reason("https://github.com/other/repo", "title", "snippet") is None
    assert Blocklist(hosts=("x.org",)).reason("https://www.sub.x.org/p") == "site x.org"


def scripted(*turns):
    """Turn k of the agent: a list of (function, arguments) calls, or a final text."""

    def respond(sample, messages, tools):
        k = sum(1 for m in messages if m.role == "assistant")
        turn = turns[min(k, len(turns) - 1)]
        if isinstance(turn, str):
            return ChatMessageAssistant(content=turn)
        return ChatMessageAssistant(content="", tool_calls=[
            ToolCall(id=f"c{k}-{i}", function=f, arguments=a, raw=json.dumps(a)) for i, (f, a) in enumerate(turn)])

    return MockModel(respond, name="scripted-agent")


SOM_SCRIPT = [
    [("text_search", {"query": "University  ultimate final score"})],
    [("zoom_in", {"image": "img_1", "mark": 1})],
    [("crop", {"image": "crop_1", "box": [10, 10, 90, 90]})],
    [("image_search", {"image": "crop_2"})],
    [("submit", {"answer": "The match ended <answer>13-11</answer>."})],
]


def summariser() -> MockModel:
    return MockModel(lambda sample, messages: "summary: " + ("the final ended 13-11" if "13-11" in str(messages)
                                                             else "unrelated"), name="summariser")


async def som_run(db: str, args: dict) -> tuple[dict, list[dict]]:
    judges = {"strict": MockModel("should not be asked", name="judge"), "summarizer": summariser()}
    result = await harness.eval_async("mmsearch_plus@rollout_som", scripted(*SOM_SCRIPT), db=db, data="bundled",
                                      sample_ids=["entry_23"], judges=judges, task_args=args)
    [row] = result.samples()
    return row, result.store.events(result.run_id)


async def test_a_rollout_som_trajectory_is_stored_step_by_step_and_replays_from_the_cache_alone(serp, tmp_path):
    cache = tmp_path / "cache"
    row, events = await som_run(f"sqlite:///{tmp_path / 'a.db'}", live_args(serp, cache))
    assert (row["status"], row["score"], row["answer"]) == ("scored", 1.0, "13-11"), row
    tools = [e for e in events if e["kind"] == "tool"]
    assert [(e["name"], e["error"]) for e in tools] == [("text_search", None), ("zoom_in", None), ("crop", None),
                                                        ("image_search", None), ("submit", None)]
    assert [e["kind"] for e in events].count("model") == 5
    results = json.loads(tools[0]["output"])
    # of the top 5, the listed site, the paper's mirror and the page quoting the canary are gone
    assert [r["title"] for r in results] == ["University ultimate final", "more on University  ultimate final score"]
    assert results[0]["summary"] == "summary: the final ended 13-11"
    assert tools[1]["output"].startswith("crop_1: mark 1 of img_1, box [29, 64, 138, 170], 109x106 pixels")
    assert tools[2]["output"].startswith("crop_2: crop of crop_1, box [10, 10, 90, 90], 80x80 pixels")
    # the crop was what Lens searched: its published file is the crop's canonical PNG
    from PIL import Image

    [lens] = serp.searches("google_lens")
    published = Image.open(cache.parent / "published" / lens["url"].rsplit("/", 1)[-1])
    assert published.size == (80, 80)
    assert json.loads(tools[3]["output"])[0]["title"] == f"visual match of {lens['url'].rsplit('/', 1)[-1]}"
    # listed sites are never fetched; the canary page had to be, to be seen
    entry = next(json.loads(p.read_text()) for p in (cache / "entries").glob("*/*.json")
                 if json.loads(p.read_text())["tool"] == "text_search")
    assert sorted(entry["fetches"]) == sorted(f"{serp.base}/page/{n}" for n in ("canary", "final", "other"))
    assert sorted(serp.pages) == ["canary", "final", "lens", "other"]
    assert all(r["api_key"] == "test-key" for r in serp.requests)  # sent, and never written to the cache
    assert not any(b"test-key" in p.read_bytes() for p in cache.rglob("*") if p.is_file())
    manifest = json.loads(next((cache / "manifests").glob("*.json")).read_text())
    assert len(manifest["entries"]) == 2 and len(manifest["summaries"]) == 3
    searched = len(serp.requests)

    # replay: the backend is gone (no key, server down), the same outputs and score come from the cache
    serp.down = True
    row2, events2 = await som_run(f"sqlite:///{tmp_path / 'b.db'}", {"search": "replay", "search_cache": str(cache)})
    assert (row2["status"], row2["score"]) == ("scored", 1.0)
    assert [e["output"] for e in events2 if e["kind"] == "tool"] == [e["output"] for e in tools]
    assert len(serp.requests) == searched

    # a replay miss is a clear error of the sample
    row3, _ = await som_run(f"sqlite:///{tmp_path / 'c.db'}", {"search": "replay", "search_cache": str(tmp_path / "empty")})
    assert row3["status"] == "error"
    assert "search replay" in row3["error"] and "no text_search result for 'University  ultimate final score'" in row3["error"]

    # a corrupt cache file errors the sample naming the file
    entry_file = next(p for p in (cache / "entries").glob("*/*.json") if json.loads(p.read_text())["tool"] == "text_search")
    entry_file.write_text(entry_file.read_text()[:-20])
    row4, _ = await som_run(f"sqlite:///{tmp_path / 'd.db'}", {"search": "replay", "search_cache": str(cache)})
    assert row4["status"] == "error" and f"search cache file {entry_file} is corrupt" in row4["error"]


async def test_a_rate_limited_backend_is_retried_and_a_down_one_errors_the_sample_with_the_reason(serp, tmp_path):
    serp.faults = [429, 429]
    row, _ = await som_run(f"sqlite:///{tmp_path / 'a.db'}", live_args(serp, tmp_path / "cache"))
    assert row["status"] == "scored" and [r.get("engine") for r in serp.requests[:3]] == ["google"] * 3
    serp.faults = [429] * 3
    row, _ = await som_run(f"sqlite:///{tmp_path / 'b.db'}", live_args(serp, tmp_path / "cache2", search_attempts=3))
    assert row["status"] == "error" and "failed after 3 attempts: HTTP 429 (rate limited)" in row["error"]
    assert serp.faults == []  # all three attempts were made
    serp.down = True
    row, events = await som_run(f"sqlite:///{tmp_path / 'c.db'}", live_args(serp, tmp_path / "cache3",
                                                                             search_attempts=2))
    assert row["status"] == "error"
    assert "failed after 2 attempts: HTTP 503" in row["error"]


async def test_bad_tool_calls_are_tool_errors_the_model_sees_and_counted(serp, tmp_path):
    model = scripted([("zoom_in", {"image": "img_1", "mark": 99})],
                     [("crop", {"image": "img_1", "box": [0, 0, 5000, 10]})],
                     [("crop", {"image": "img_9", "box": [0, 0, 5, 5]})],
                     [("image_search", {"image": "crop_1"})],
                     [("submit", {"answer": "<answer>12-11</answer>"})])
    judge = MockModel('{"correct": false, "reason": "the score differs"}', name="judge")
    result = await harness.eval_async("mmsearch_plus@rollout_som", model, db=f"sqlite:///{tmp_path / 'a.db'}",
                                      data="bundled", sample_ids=["entry_23"],
                                      judges={"strict": judge, "summarizer": summariser()},
                                      task_args=live_args(serp, tmp_path / "cache"))
    [row] = result.samples()
    events = [e for e in result.store.events(result.run_id) if e["kind"] == "tool"]
    assert [e["error"] for e in events] == ["invalid_mark", "invalid_box", "invalid_image", "invalid_image", None]
    trace = result.store.trace(row["trace_hash"])
    told = [m["content"] for m in trace["messages"] if m["role"] == "tool"]
    assert told[0].startswith("Error (invalid_mark): img_1 has no mark 99; its marks are 1, 2, 3")
    assert "is not a region inside img_1 (2400x1417)" in told[1]
    assert (row["score"], row["error_category"], row["scores"]["invalid_tool_calls"]) == (0.0, "never_searched", 4.0)
    assert row["scores"]["tool_calls"] == 4.0  # submit is not counted
    assert [c["kind"] for c in trace["calls"]].count("judge") == 1  # 12-11 is no exact match: the judge decided
    assert result.metrics["mmsearch_plus@rollout_som"]["overall"]["invalid_tool_share"]["value"] == 100.0


async def test_at_the_round_cap_one_more_turn_without_tools_asks_for_the_answer(tmp_path):
    looping = MockModel(lambda sample, messages, tools: ChatMessageAssistant(content="", tool_calls=[
        ToolCall(id=f"z{len(messages)}", function="zoom_in", arguments={"image": "img_1", "mark": 2})]) if tools
        else ChatMessageAssistant(content="So: <answer>13 - 11</answer>"), name="looping")
    result = await harness.eval_async("mmsearch_plus@rollout_som", looping, db=f"sqlite:///{tmp_path / 'a.db'}",
                                      data="bundled", sample_ids=["entry_23"], judges="mock",
                                      task_args={"rounds": 3, "search_cache": str(tmp_path / "c")})
    [row] = result.samples()
    assert (row["score"], row["answer"]) == (1.0, "13 - 11")
    assert row["scores"]["cap_hit"] == 1.0 and row["scores"]["rounds"] == 4.0 and row["scores"]["tool_calls"] == 3.0
    trace = result.store.trace(row["trace_hash"])
    assert trace["calls"][-1]["tools"] in (None, []) and "You have used all your rounds" in trace["messages"][-2]["content"]


def test_a_corrupt_cache_file_is_an_error_naming_it_and_export_import_round_trips(tmp_path):
    cache = SearchCache(tmp_path / "cache")
    key = request_key("serpapi", "1", "text_search", "q", {})
    digest = cache.put_text("page text")
    cache.put(key, {"response": {}, "fetches": {"u": {"text_sha256": digest}}})
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"entries": [key], "blobs": [], "summaries": []}))
    out = tmp_path / "c.tar.gz"
    assert export_cache(cache.root, out, manifest) == {"entries": 1, "blobs": 1, "summaries": 0}
    runner = CliRunner()
    result = runner.invoke(app, ["search-cache", "import", str(out), "--cache", str(tmp_path / "other"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"entries": 1, "blobs": 1, "summaries": 0}
    assert SearchCache(tmp_path / "other").get_text(digest) == "page text"
    # a tampered archive is refused whole
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        for name, payload in [(f"blobs/{digest[:2]}/{digest}", b"page text, edited"), ("../evil", b"x")]:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(ValueError, match="does not match its key"):
        import_cache(bad, tmp_path / "third")
    assert not (tmp_path / "third").exists()
    result = runner.invoke(app, ["search-cache", "export", "--cache", str(tmp_path / "nope"), "--out", str(out)])
    assert result.exit_code != 0 and "no such folder" in str(result.exception)
    # a corrupt entry or blob
    cache._path("entries", key).write_text("{not json")
    with pytest.raises(CacheCorrupt, match="is corrupt"):
        cache.get(key)
    cache._path("blobs", digest).write_bytes(b"other text")
    with pytest.raises(CacheCorrupt, match="does not match its hash"):
        cache.get_text(digest)


# ---- judges ----

@pytest.mark.parametrize("answer, answers, exact", [
    ("13-11", ["13-11"], True), ("13 - 11", ["13-11"], True), ("13:11", ["13-11"], True),
    ("11-13", ["13-11"], False), ("philipp lahm", ["Philipp Lahm"], True), ("Lahm", ["Philipp Lahm"], False),
    ("Who can identify as a Native American", ["Who Can Identify as a Native American?"], True),
    ("家里家外", ["家里家外"], True), ("", ["x"], False), ("0:1", ["1:0"], False),
])
def test_exact_match_after_normalisation_on_hand_checked_pairs(answer, answers, exact):
    assert exact_match(answer, answers) is exact


def test_answer_extraction_contains_rule_and_verdict_parsing():
    assert extract_answer("think... <answer>a</answer> no, <ANSWER> b </ANSWER>") == ("b", True)
    assert extract_answer(" plain ") == ("plain", False)
    assert contains_match("The goal was assisted by Philipp Lahm, after a run.", ["Philipp Lahm"])
    assert not contains_match("It was Lahmann.", ["Lahm"])
    assert parse_verdict("j", '```json\n{"correct": true, "reason": "same"}\n```') == (True, "same")
    from harness.judge import JudgeNoVerdict

    with pytest.raises(JudgeNoVerdict, match="gave no verdict"):
        parse_verdict("j", "I think it is right")


async def test_the_contains_judge_decides_by_rule_first_and_records_which_judge(tmp_path):
    report = "Having searched, the assist came from Philipp Lahm. <answer>Lahm</answer>"
    result = await harness.eval_async("mmsearch_plus@rollout", MockModel(report), db=f"sqlite:///{tmp_path / 'a.db'}",
                                      data="bundled", sample_ids=["entry_344"], judges="mock",
                                      task_args={"judge": "contains", "search_cache": str(tmp_path / "c")})
    [row] = result.samples()
    scores = result.store.trace(row["trace_hash"])["scores"][0]
    assert row["score"] == 1.0 and row["scores"]["exact_match"] == 0.0
    assert scores["metadata"]["judge"] == "contains" and scores["metadata"]["model"] == "rule"
    assert len(scores["metadata"]["prompt_sha256"]) == 64


# ---- bad input ----

def test_a_missing_or_undecodable_image_errors_its_sample_with_the_reason(tmp_path):
    good = json.loads(BUNDLED.read_text().splitlines()[1])
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    records = [{**good, "id": "missing", "img_1": "nowhere.png"}, {**good, "id": "broken", "img_1": "broken.png"},
               {**good, "id": "crypt", "question": "%%%"}, {**good, "id": "two", "num_images": 2,
                                                  "img_1": str(BUNDLED.parent / good["img_1"])}]
    (tmp_path / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    result = harness.eval("mmsearch_plus@no_search", "reference", db=f"sqlite:///{tmp_path / 'a.db'}",
                          data=str(tmp_path / "items.jsonl"), judges="mock")
    errors = {r["sample_id"]: r["error"] for r in result.samples()}
    assert all(r["status"] == "error" for r in result.samples())
    assert "img_1: the image file" in errors["invalid-missing"] and "cannot be read" in errors["invalid-missing"]
    assert "img_1 does not decode as an image" in errors["invalid-broken"]
    assert "question is not base64" in errors["invalid-crypt"]
    assert "img_2 is missing" in errors["invalid-two"]


def test_unknown_modes_and_subsets_without_ids_are_usage_errors():
    with pytest.raises(ValueError, match="mode must be one of"):
        harness.tasks.mmsearch_plus.mmsearch_plus(mode="browse")
    with pytest.raises(ValueError, match="needs its ids"):
        harness.tasks.mmsearch_plus.mmsearch_plus(subset="lite")


async def test_live_search_without_a_key_errors_the_sample_saying_where_the_key_goes(serp, tmp_path, monkeypatch):
    monkeypatch.delenv("SERPAPI_API_KEY")
    row, _ = await som_run(f"sqlite:///{tmp_path / 'a.db'}", live_args(serp, tmp_path / "cache", search="live"))
    assert row["status"] == "error" and "needs a SerpAPI key in $SERPAPI_API_KEY" in row["error"]
    assert serp.requests == []


async def test_without_a_summariser_a_result_shows_the_start_of_its_page_and_no_summariser_is_asked(serp, tmp_path):
    model = scripted([("text_search", {"query": "ultimate final"})], [("submit", {"answer": "<answer>13-11</answer>"})])
    summ = summariser()
    result = await harness.eval_async("mmsearch_plus@text_search", model, db=f"sqlite:///{tmp_path / 'a.db'}",
                                      data="bundled", sample_ids=["entry_23"], judges={"strict": summ, "summarizer": summ},
                                      task_args=live_args(serp, tmp_path / "cache", summarize=False))
    [row] = result.samples()
    [search] = [e for e in result.store.events(result.run_id) if e["kind"] == "tool" and e["name"] == "text_search"]
    shown = json.loads(search["output"])
    assert shown[0]["summary"] == "The final of the university ultimate frisbee league ended 13-11 after a long game."
    assert row["score"] == 1.0
    assert not [c for c in result.store.trace(row["trace_hash"])["calls"] if c["kind"] == "judge"]


async def test_result_pages_on_private_addresses_are_not_fetched_by_default(serp, tmp_path):
    args = {**live_args(serp, tmp_path / "cache"), "fetch_private": False}
    model = scripted([("text_search", {"query": "ultimate final"})], [("submit", {"answer": "<answer>13-11</answer>"})])
    result = await harness.eval_async("mmsearch_plus@text_search", model, db=f"sqlite:///{tmp_path / 'a.db'}",
                                      data="bundled", sample_ids=["entry_23"], judges="mock",
                                      task_args={**args, "summarize": False})
    [search] = [e for e in result.store.events(result.run_id) if e["kind"] == "tool" and e["name"] == "text_search"]
    assert all(r["summary"] == "(the page could not be fetched)" for r in json.loads(search["output"]))
    assert serp.pages == [] and len(serp.searches("google")) == 1


def test_the_bundled_marks_lie_on_the_boxes_drawn_in_the_bundled_images():
    import numpy as np
    from PIL import Image

    for _, record in data.read_local(BUNDLED):
        hsv = np.asarray(Image.open(record["img_1"]).convert("HSV")).astype(float)
        saturated = hsv[..., 1] * (hsv[..., 2] > 80)
        marks = record["som"]["img_1"]["marks"]
        borders = []
        for x1, y1, x2, y2 in (map(round, b) for b in marks.values()):
            xs, ys = np.arange(x1, x2 + 1), np.arange(y1, y2 + 1)
            borders.append(np.concatenate([saturated[y1, xs], saturated[y2, xs], saturated[ys, x1], saturated[ys, x2]]).mean())
        # drawn outlines are saturated (the lowest box here: 180 of 255); the same boxes in the raw image's frame
        # score at most 106 on these images, or leave them
        assert min(borders) > 170, (record["id"], min(borders))
