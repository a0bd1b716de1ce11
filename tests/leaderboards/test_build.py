"""The leaderboard site built from runs made in the test, read back and checked against the database."""
from __future__ import annotations

import json
import math
import re
from collections import Counter

import pytest
from sqlalchemy import text, update
from typer.testing import CliRunner

from conftest import EASY, Page, correct, solves
from harness import Dataset, InfraError, Reference, Sample, Score, Task, accuracy, generate, get_task
from harness._registry import UsageError
from harness.cli._app import app
from harness.leaderboards import LeaderboardSpec, SuiteSpec, build, load_spec, slug
from harness.store import Run, Store


def _metrics(store: Store, run_id: str) -> dict:
    return store.run_tasks(run_id)[0]["metrics"]


def test_index_cells_match_the_database(db_url, make_run, tmp_path):
    half = make_run(db_url, "half", solves(EASY))
    good = make_run(db_url, "good", correct)
    hint = make_run(db_url, "half", solves(EASY), variant="hint", limit=27)
    store = Store(db_url)
    result = build(store, tmp_path / "site")
    assert (result.runs, result.models) == (3, 2)
    page = Page((tmp_path / "site" / "index.html").read_text())
    for model, run_id, suite in (("good", good, "cipherbank"), ("half", half, "cipherbank"),
                                 ("half", hint, "cipherbank@hint")):
        td = page.cell(model, suite)
        acc = _metrics(store, run_id)["overall"]["accuracy"]
        assert float(td["attrs"]["data-value"]) == acc["value"]
        assert td["attrs"]["data-run"] == run_id
        assert f"{acc['value']:.2f}" in td["text"] and f"[{acc['ci_low']:.2f}, {acc['ci_high']:.2f}]" in td["text"]
        assert any(a["attrs"].get("href") == f"runs/{run_id}/index.html" for a in page.find("a")
                   if td["attrs"] in a["parents"])
    assert page.cell("good", "cipherbank@hint")["text"].strip() == "–"
    # the paper's numbers are their own rows, marked as reported, in the collapsed section and only under the
    # setting they were reported for (the default prompt, not @hint)
    paper = [r for r in get_task("cipherbank").build().reference if r.group is None and r.metric == "accuracy"]
    assert paper and not get_task("cipherbank").build("hint").reference
    (details,) = page.find("details", id="reported")
    for ref in paper:
        row = page.find("tr", data_model=ref.model)
        assert row and "reported" in row[0]["attrs"]["class"] and details["attrs"] in row[0]["parents"]
        assert float(page.cell(ref.model, "cipherbank")["attrs"]["data-reported"]) == ref.value
        assert page.cell(ref.model, "cipherbank@hint") is None
    # ranked: half has results on two suites, good on one; the mean over them is shown
    rows = page.find("tr", **{"class": "measured"})
    assert [(r["attrs"]["data-model"], r["attrs"]["data-rank"]) for r in rows] == [("half", "1"), ("good", "2")]
    (mean,) = [td for td in page.find("td") if rows[0]["attrs"] in td["parents"] and "data-aggregate" in td["attrs"]]
    half_values = [_metrics(store, r)["overall"]["accuracy"]["value"] for r in (half, hint)]
    assert float(mean["attrs"]["data-aggregate"]) == pytest.approx(sum(half_values) / 2)
    suite = Page((tmp_path / "site" / "suites" / "cipherbank.html").read_text())
    assert [r["attrs"]["data-model"] for r in suite.find("tr", **{"class": "measured"})] == ["good", "half"]
    data = json.loads((tmp_path / "site" / "leaderboard.json").read_text())
    assert data["cells"]["cipherbank|half|accuracy"]["run_id"] == half
    assert data["cells"]["cipherbank|half|accuracy"]["complete"] is True
    assert [(r["model"], r["rank"]) for r in data["ranking"]] == [("half", 1), ("good", 2)]


def test_suite_page_shows_every_declared_breakdown(db_url, make_run, tmp_path):
    half = make_run(db_url, "half", solves(EASY))
    store = Store(db_url)
    build(store, tmp_path)
    page = Page((tmp_path / "suites" / "cipherbank.html").read_text())
    metrics = _metrics(store, half)
    assert set(metrics["by"]) == {"cipher", "category", "domain"}
    for key, groups in metrics["by"].items():
        for metric in ("accuracy", "levenshtein_similarity"):
            (table,) = page.find("table", data_key=key, data_metric=metric)
            cells = [e for e in page.elements if e["tag"] == "td" and table["attrs"] in e["parents"]
                     and "data-value" in e["attrs"]]
            assert sorted(float(c["attrs"]["data-value"]) for c in cells) == sorted(
                g[metric]["value"] for g in groups.values())
    # the paper's per-cipher numbers sit beside ours
    rot13 = next(r for r in get_task("cipherbank").build().reference if r.group == "cipher=Rot13")
    assert f"{rot13.value:.2f}" in (tmp_path / "suites" / "cipherbank.html").read_text()
    # server-made SVG: one bar per cipher with an error bar, and one per model overall
    svgs = page.find("svg")
    assert len(svgs) >= 1 + 3
    html = (tmp_path / "suites" / "cipherbank.html").read_text()
    cipher_chart = html[html.index('id="by-cipher"'):]
    cipher_chart = cipher_chart[:cipher_chart.index("</svg>")]
    assert cipher_chart.count("<rect") == 9 and cipher_chart.count('class="err"') == 9
    assert "no score-against-cost chart" in html  # mock models report no tokens
    assert "<circle" not in html


def test_score_against_tokens_where_known(db_url, make_run, tmp_path):
    runs = {"frugal": make_run(db_url, "frugal", solves(EASY), limit=27),
            "verbose": make_run(db_url, "verbose", correct, limit=27)}
    store = Store(db_url)
    with store.engine.begin() as conn:  # as an OpenAI-compatible endpoint would report them
        for model, tokens in (("frugal", 100), ("verbose", 400)):
            conn.execute(text("UPDATE samples SET input_tokens = :t, output_tokens = 20 WHERE run_task_id IN "
                              "(SELECT id FROM run_tasks WHERE run_id = :r)"), {"t": tokens, "r": runs[model]})
    build(store, tmp_path)
    page = Page((tmp_path / "suites" / "cipherbank.html").read_text())
    circles = {c["text"].split(":")[0]: c for c in page.find("circle")}
    assert set(circles) == {"frugal", "verbose"}
    assert float(circles["verbose"]["attrs"]["cx"]) > float(circles["frugal"]["attrs"]["cx"])
    assert float(circles["verbose"]["attrs"]["cy"]) < float(circles["frugal"]["attrs"]["cy"])  # higher score
    assert "verbose: 100.00 at 420 tokens per sample" in circles["verbose"]["text"]


def mixed(sample, messages):
    """Correct on the easy ciphers, and one kind of failure per other cipher."""
    cipher = sample.metadata["cipher"]
    if cipher == "SwapPairs":
        raise InfraError("endpoint gave up after 3 attempts")
    return {"Polybius": "I cannot decrypt this.", "Vigenere": "<result></result>"}.get(
        cipher, correct(sample, messages) if cipher in EASY else "<result>?</result>")


def test_run_page_groups_failures_and_links_each_sample(db_url, make_run, tmp_path):
    run_id = make_run(db_url, "mixed", mixed)
    store = Store(db_url)
    build(store, tmp_path, LeaderboardSpec(sample_page_size=50))
    run_dir = tmp_path / "runs" / run_id
    page = Page((run_dir / "index.html").read_text())
    expected = {"length_mismatch": 60, "no_result_tag": 20, "empty_answer": 20, "infrastructure error": 20}
    with store.engine.connect() as conn:
        stored = dict(conn.execute(text("SELECT error_category, count(*) FROM samples_v WHERE run_id = :r AND "
                                        "status = 'scored' AND score < 1 GROUP BY error_category"), {"r": run_id}).all())
    assert stored == {k: v for k, v in expected.items() if k != "infrastructure error"}
    opened: dict[str, Page] = {}

    def opens_at_sample(link: dict) -> None:
        target, _, anchor = link["attrs"]["href"].partition("#")
        if target not in opened:
            opened[target] = Page((run_dir / target).read_text())
        (section,) = opened[target].find("section", id=anchor)
        assert link["text"] in section["text"]

    found = {r["attrs"]["data-category"]: r for r in page.elements if "data-category" in r["attrs"]}
    assert set(found) == set(expected)
    for category, n in expected.items():
        row = found[category]
        links = [a for a in page.find("a") if row["attrs"] in a["parents"] and a["attrs"].get("class") != "category"]
        assert f"{n}" in row["text"] and len(links) == 5
        for a in links:
            opens_at_sample(a)
        # the category's own page lists every sample of it (the failures filter of a site without scripts)
        (to_all,) = [a for a in page.find("a") if row["attrs"] in a["parents"] and a["attrs"].get("class") == "category"]
        listing_path = run_dir / to_all["attrs"]["href"]
        listing = Page(listing_path.read_text())
        (table,) = listing.find("table", data_category=category)
        samples = [a for a in listing.find("a") if table["attrs"] in a["parents"]]
        assert len(samples) == n == len({a["text"] for a in samples})
        for a in samples[:3] + samples[-3:]:
            target, _, anchor = a["attrs"]["href"].partition("#")
            (section,) = Page((listing_path.parent / target).read_text()).find("section", id=anchor)
            assert a["text"] in section["text"] and "correct" not in section["attrs"]["class"]
    # the run page links every sample, marked by outcome, to its place in the pages
    index = [a for a in page.find("a") if a["attrs"].get("class") in ("correct", "wrong", "error")]
    assert len(index) == 180 and len({a["text"] for a in index}) == 180
    assert Counter(a["attrs"]["class"] for a in index) == {"correct": 60, "wrong": 100, "error": 20}
    for a in index:
        opens_at_sample(a)
    # 180 samples in pages of 50, every sample once
    pages = sorted((run_dir / "cipherbank").glob("p*.html"))
    assert [p.name for p in pages] == ["p1.html", "p2.html", "p3.html", "p4.html"]
    ids = [s["attrs"]["id"] for p in pages for s in Page(p.read_text()).find("section")]
    assert ids == [f"s{i}" for i in range(1, 181)]
    text_of_pages = "".join(p.read_text() for p in pages)
    assert "endpoint gave up after 3 attempts" in text_of_pages and "I cannot decrypt this." in text_of_pages


def test_selection_latest_and_pinned(db_url, make_run, tmp_path):
    old = make_run(db_url, "m", solves(EASY))
    new = make_run(db_url, "m", correct)
    unfinished = make_run(db_url, "m", solves(set()))
    store = Store(db_url)
    with store.engine.begin() as conn:
        conn.execute(update(Run).where(Run.id == unfinished).values(status="interrupted"))
    build(store, tmp_path / "a")
    assert Page((tmp_path / "a" / "index.html").read_text()).cell("m", "cipherbank")["attrs"]["data-run"] == new
    build(store, tmp_path / "b", LeaderboardSpec(pinned=[old]))
    assert Page((tmp_path / "b" / "index.html").read_text()).cell("m", "cipherbank")["attrs"]["data-run"] == old
    other = make_run(db_url, "other", correct)
    build(store, tmp_path / "c", LeaderboardSpec(select="pinned", pinned=[old]))
    page = Page((tmp_path / "c" / "index.html").read_text())
    assert page.cell("m", "cipherbank")["attrs"]["data-run"] == old and not page.find("tr", data_model="other")
    build(store, tmp_path / "d", LeaderboardSpec(models=["other"]))
    page = Page((tmp_path / "d" / "index.html").read_text())
    assert page.cell("other", "cipherbank")["attrs"]["data-run"] == other and not page.find("tr", data_model="m")


def test_night_over_night_changes_are_flagged(db_url, make_run, tmp_path):
    make_run(db_url, "m", solves(EASY))
    make_run(db_url, "steady", correct)
    store = Store(db_url)
    first = build(store, tmp_path / "night1")
    assert first.runs_rendered == 2
    assert "No earlier build" in (tmp_path / "night1" / "index.html").read_text()
    make_run(db_url, "m", correct)  # the next night, m improves from 33% to 100%
    for out, previous in ((tmp_path / "night2", None), (tmp_path / "night2b", tmp_path / "night1")):
        build(store, out, previous=previous, record=previous is None)
        page = Page((out / "index.html").read_text())
        (delta,) = [e for e in page.find("span") if "delta" in e["attrs"].get("class", "")
                    and page.cell("m", "cipherbank")["attrs"] in e["parents"]]
        assert delta["text"].startswith("+66.67") and "flag" in delta["attrs"]["class"]
        # an unchanged value shows no change at all (not "+0.00" in every cell of a rebuild)
        assert not [e for e in page.find("span") if "delta" in e["attrs"].get("class", "")
                    and page.cell("steady", "cipherbank")["attrs"] in e["parents"]]
        assert "+0.00" not in (out / "index.html").read_text()
    with pytest.raises(UsageError, match="no leaderboard.json"):
        build(store, tmp_path / "x", previous=tmp_path / "absent")


def test_unchanged_runs_are_kept_and_dropped_runs_removed(db_url, make_run, tmp_path):
    first = make_run(db_url, "m", solves(EASY))
    store = Store(db_url)
    assert build(store, tmp_path).runs_rendered == 1
    marker = tmp_path / "runs" / first / "index.html"
    stamp = marker.stat().st_mtime_ns
    assert build(store, tmp_path).runs_rendered == 0 and marker.stat().st_mtime_ns == stamp
    second = make_run(db_url, "m", correct)
    result = build(store, tmp_path)
    assert result.runs_rendered == 1
    assert (tmp_path / "runs" / second / "index.html").is_file() and not (tmp_path / "runs" / first).exists()


def test_a_new_suite_appears_without_code_changes(db_url, make_run, tmp_path, monkeypatch):
    from harness import _registry

    records = [{"id": f"q{i}", "level": "easy" if i < 4 else "hard", "answer": str(i)} for i in range(10)]

    def toy() -> Task:
        class Exact:
            async def __call__(self, state, ctx):
                ok = state.completion.strip() == state.sample.target
                return Score(float(ok), {"correct": float(ok)}, answer=state.completion,
                             error_category=None if ok else "wrong_number")

        return Task(name="toy", version="1", dataset=Dataset(
            to_samples=lambda r, _: [Sample(r["id"], f"say {r['answer']}", r["answer"], {"level": r["level"]})],
            bundled=tmp_path / "toy.jsonl"), solver=generate(), scorers=[Exact()], metrics=[accuracy("correct")],
            headline="accuracy", breakdowns=["level"], reference=[Reference("PaperModel", "accuracy", 61.5)])

    (tmp_path / "toy.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    monkeypatch.setitem(_registry._TASKS, "toy", _registry.TaskEntry("toy", toy))
    run = make_run(db_url, "m", lambda s, _: s.target if s.metadata["level"] == "easy" else "0", task="toy")
    build(Store(db_url), tmp_path / "site")
    index = Page((tmp_path / "site" / "index.html").read_text())
    assert float(index.cell("m", "toy")["attrs"]["data-value"]) == pytest.approx(40.0)
    assert float(index.cell("PaperModel", "toy")["attrs"]["data-reported"]) == 61.5
    suite = Page((tmp_path / "site" / "suites" / "toy.html").read_text())
    (table,) = suite.find("table", data_key="level", data_metric="accuracy")
    values = sorted(float(e["attrs"]["data-value"]) for e in suite.elements
                    if e["tag"] == "td" and table["attrs"] in e["parents"] and "data-value" in e["attrs"])
    assert values == [0.0, 100.0]
    run_page = (tmp_path / "site" / "runs" / run / "index.html").read_text()
    assert 'data-category="wrong_number"' in run_page


def test_declared_suites_and_metrics(db_url, make_run, tmp_path):
    make_run(db_url, "m", solves(EASY))
    make_run(db_url, "m", correct, variant="hint", limit=9)
    spec = LeaderboardSpec(name="lev", suites=[SuiteSpec(task="cipherbank", variants=["hint"],
                                                         metrics=["levenshtein_similarity"])])
    build(Store(db_url), tmp_path)  # the default leaderboard first, into the same folder
    assert (tmp_path / "suites" / "cipherbank.html").is_file()
    result = build(Store(db_url), tmp_path, spec)
    assert result.suites == 1
    assert [p.name for p in (tmp_path / "suites").glob("*.html")] == [f"{slug('cipherbank@hint')}.html"]
    page = Page((tmp_path / "index.html").read_text())
    assert [th["attrs"]["data-suite"] for th in page.find("th") if "data-suite" in th["attrs"]] == ["cipherbank@hint"]
    assert float(page.cell("m", "cipherbank@hint")["attrs"]["data-value"]) == pytest.approx(100.0)  # percent


def test_definition_files(tmp_path):
    default = load_spec()
    assert default.select == "latest" and default.suites == [] and default.name == "default"
    bad = tmp_path / "bad.toml"
    bad.write_text('select = "sometimes"\n')
    with pytest.raises(UsageError, match="select"):
        load_spec(bad)
    bad.write_text("[[suites]]\nname = 'x'\n")
    with pytest.raises(UsageError, match="suites"):
        load_spec(bad)
    bad.write_text("not toml = = 1")
    with pytest.raises(UsageError, match="not TOML"):
        load_spec(bad)
    good = tmp_path / "lb.toml"
    good.write_text('name = "team"\nselect = "pinned"\npinned = ["r1"]\n[[suites]]\ntask = "cipherbank"\n'
                    'metrics = ["levenshtein_similarity"]\n')
    spec = load_spec(good)
    assert spec.pinned == ["r1"] and spec.suite("cipherbank").metrics == ["levenshtein_similarity"]


def test_cli_build(db_url, make_run, tmp_path):
    make_run(db_url, "m", correct, limit=9)
    result = CliRunner().invoke(app, ["leaderboard", "build", "--out", str(tmp_path / "s"), "--db", db_url, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["runs"] == 1 and summary["models"] == 1 and re.search(r"index\.html$", summary["index"])
    assert (tmp_path / "s" / "index.html").is_file()


def test_worker_processes_render_the_same_pages(db_url, make_run, tmp_path):
    make_run(db_url, "a", correct, limit=30)
    make_run(db_url, "b", mixed, limit=30)
    store = Store(db_url)
    one = build(store, tmp_path / "one", workers=1, record=False)
    two = build(store, tmp_path / "two", workers=2, record=False)
    assert (one.runs_rendered, two.runs_rendered) == (2, 2) and one.sample_pages == two.sample_pages
    footer = re.compile(r"<footer>.*?</footer>", re.S)  # holds the build time
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one" / "runs").rglob("*.html"))
    assert len([f for f in files if "failures" not in f.parts]) == 4 and any("failures" in f.parts for f in files)
    for rel in files:
        assert footer.sub("", (tmp_path / "one" / rel).read_text()) == footer.sub("", (tmp_path / "two" / rel).read_text())


def test_suite_page_merges_the_papers_numbers_by_model_and_setting(db_url, tmp_path):
    import harness
    from harness.tasks.aegis import _COLUMNS, _TABLE

    store = Store(db_url)
    harness.eval("aegis", "reference", db=store, data="bundled")
    build(store, tmp_path)
    page = Page((tmp_path / "suites" / "aegis.html").read_text())
    (overall,) = page.find("table", id="overall")
    rows = [r for r in page.find("tr", **{"class": "reported"}) if overall["attrs"] in r["parents"]]
    assert [r["attrs"]["data-model"] for r in rows] == list(_TABLE)  # one row per model, not one per metric
    for row in rows:
        cells = [e for e in page.find("td") if row["attrs"] in e["parents"] and "data-reported" in e["attrs"]]
        assert [float(c["attrs"]["data-reported"]) for c in cells] == list(_TABLE[row["attrs"]["data-model"]])
    headers = [th["text"] for th in page.find("th") if overall["attrs"] in th["parents"]
               and not any("class" in p for p in th["parents"][th["parents"].index(overall["attrs"]) + 1:])]
    assert headers[:1 + len(_COLUMNS)] == ["model", *_COLUMNS]  # the paper's metrics; the rest in "all metrics"
    stored = _metrics(store, store.list_runs()[0]["id"])["overall"]
    (every,) = page.find("table", id="all-metrics")
    assert [r["attrs"]["data-metric"] for r in page.find("tr") if every["attrs"] in r["parents"]
            and "data-metric" in r["attrs"]] == ["pair_micro_f1", *sorted(set(stored) - {"pair_micro_f1"})]


def test_chart_names_fit_inside_the_chart():
    from harness.leaderboards import _charts

    groups = ["Rot13", "Atbash", "Polybius", "Vigenere", "Reverse", "SwapPairs", "ParityShift", "DualAvgCode",
              "WordShift", "Qwen/Qwen2.5-72B-Instruct-with-a-long-name"]
    for series in (["a"], ["a", "b", "c"]):
        chart = _charts.bar_chart(groups, series, {(g, s): {"value": 50.0} for g in groups for s in series})
        for label in chart["labels"]:
            shown = min(len(label["text"]), _charts.LABEL_CHARS) * _charts.CHAR_W
            assert label["x"] + shown * math.cos(_charts.ANGLE) <= chart["width"], label["text"]
            assert label["y"] + shown * math.sin(_charts.ANGLE) <= chart["height"], label["text"]


def test_sample_pages_name_only_what_the_conversation_holds(db_url, make_run, tmp_path):
    from types import SimpleNamespace

    from harness.leaderboards._build import _conversation_summary

    run_id = make_run(db_url, "m", correct, limit=9)
    build(Store(db_url), tmp_path)
    html = (tmp_path / "runs" / run_id / "cipherbank" / "p1.html").read_text()
    assert html.count("Conversation (3 messages: system, user, assistant)") == 9
    assert "tool call" not in html and "sandbox output" not in html

    def msg(role, calls=0):
        return SimpleNamespace(role=role, n_tool_calls=calls)

    agent = [msg("system"), msg("user"), msg("assistant", 2), msg("tool"), msg("tool"), msg("assistant")]
    assert _conversation_summary(agent) == "6 messages · 2 tool calls · 2 tool results"
    assert _conversation_summary([]) == "no messages stored"


def test_an_incomplete_run_is_marked_and_ranked_after_complete_ones(db_url, make_run, tmp_path):
    flaky = make_run(db_url, "flaky", mixed)  # 20 SwapPairs samples errored
    make_run(db_url, "worse", solves({"Rot13"}))
    store = Store(db_url)
    build(store, tmp_path)
    index = Page((tmp_path / "index.html").read_text())
    rows = index.find("tr", **{"class": "measured"}) + index.find("tr", **{"class": "measured unranked"})
    assert [(r["attrs"]["data-model"], r["attrs"]["data-rank"]) for r in rows] == [("worse", "1"), ("flaky", "")]
    cell = index.cell("flaky", "cipherbank")
    assert cell["attrs"]["data-incomplete"] == "1" and "20 errored, 160/180 scored" in " ".join(cell["text"].split())
    suite = Page((tmp_path / "suites" / "cipherbank.html").read_text())
    assert [r["attrs"]["data-model"] for r in suite.find("tr") if "measured" in r["attrs"].get("class", "")] == [
        "worse", "flaky"]  # flaky's 60 correct of 160 scored is higher, but incomplete
    run_page = (tmp_path / "runs" / flaky / "index.html").read_text()
    assert "Incomplete: the values below cover the 160 scored samples only; 20 errored" in run_page
    data = json.loads((tmp_path / "leaderboard.json").read_text())
    assert data["cells"]["cipherbank|flaky|accuracy"]["complete"] is False
    assert data["cells"]["cipherbank|flaky|accuracy"]["errored"] == 20
