"""The leaderboard's sample page shows an agent sample's trajectory turn by turn: the assistant's text, each tool
call and its result (long ones folded), tool errors and the limit marked, the agent of every step; every text
escaped. The trajectory is the hand-written FIXTURE of tests/trajectory_fixture.py, added to a real run."""
from __future__ import annotations

from conftest import Page, correct
from harness.leaderboards import LeaderboardSpec, build
from harness.store import Store
from trajectory_fixture import HOSTILE_OUTPUT, HOSTILE_TEXT, agent_result


def _page(db_url, make_run, tmp_path, **changes) -> tuple[str, dict, Page]:
    run_id = make_run(db_url, "m", correct, limit=1)
    store = Store(db_url)
    rt = store.run_tasks(run_id)[0]["id"]
    result = agent_result(rt, "zz-agent")  # sorts after the run's own sample: section s2
    for seq, fields in changes.items():
        result.events[int(seq[1:])] = {**result.events[int(seq[1:])], **fields}
        result.trace["events"] = result.events
    assert store.write([result]) == []
    build(store, tmp_path / "site", LeaderboardSpec())
    html = (tmp_path / "site" / "runs" / run_id / "cipherbank" / "p1.html").read_text()
    page = Page(html)
    (section,) = page.find("section", id="s2")
    return html, section, page


def _steps(page: Page, section: dict) -> list[dict]:
    return [li for li in page.find("li") if section["attrs"] in li["parents"]
            and "step" in li["attrs"].get("class", "")]


def test_sample_page_shows_the_trajectory_turn_by_turn(db_url, make_run, tmp_path):
    long_result = "\n".join(f"line {i}" for i in range(40))
    html, section, page = _page(db_url, make_run, tmp_path, e7={"output": long_result})
    steps = _steps(page, section)
    # the prompt (system, user), then the nine events in order
    assert [s["attrs"]["class"].split()[1:3] for s in steps] == [
        ["message", "d0"], ["message", "d0"], ["span", "d0"], ["assistant", "d1"], ["tool", "d1"],
        ["assistant", "d1"], ["span", "d1"], ["assistant", "d2"], ["tool", "d2"], ["tool", "d1"], ["limit", "d1"]]
    assert [s["attrs"].get("data-seq") for s in steps[2:]] == [str(i) for i in range(9)]
    heads = [" ".join(s["text"].split()) for s in steps]
    assert heads[3].startswith("assistant · mock-model solver 120 in / 15 out 0.50 s Let me read the notes.")
    assert "→ call bash c1 cmd: cat notes.txt" in heads[3]
    # tool errors and the limit are marked, the error's message shown beside the result
    failed = [s for s in steps if "failed" in s["attrs"]["class"]]
    assert len(failed) == 2
    assert " ".join(failed[0]["text"].split()).startswith("tool bash solver error: missing_file 0.50 s")
    assert [e["text"] for e in page.find("pre") if failed[0]["attrs"] in e["parents"]] == [
        "notes.txt does not exist in the sandbox", "cat: notes.txt: No such file or directory"]
    assert " ".join(failed[1]["text"].split()).startswith("tool python researcher error: timeout 3.00 s")
    assert [e["text"] for e in page.find("pre") if failed[1]["attrs"] in e["parents"]] == [
        "no answer within 3 s", HOSTILE_OUTPUT]
    assert [e["text"] for e in page.find("pre") if steps[10]["attrs"] in e["parents"]] == ["3 turns of 3"]
    marks = [e["text"] for e in page.elements if e["tag"] == "span" and "mark" in e["attrs"].get("class", "")
             and section["attrs"] in e["parents"]]
    assert marks == ["error: missing_file", "error: timeout", "limit hit: turns"]
    agents = [e["text"] for e in page.elements if e["tag"] == "span" and e["attrs"].get("class") == "agent"
              and section["attrs"] in e["parents"]]
    assert agents == ["solver"] * 4 + ["researcher"] * 3 + ["solver"] * 2
    # a long result starts folded, a short one open
    (folded,) = [e for e in page.find("details") if steps[9]["attrs"] in e["parents"]]
    assert folded["text"].startswith("result (") and "line 39" in folded["text"]
    assert not [e for e in page.find("details") if steps[4]["attrs"] in e["parents"]]


def test_hostile_text_in_a_trajectory_is_shown_as_text(db_url, make_run, tmp_path):
    """The fixture's researcher writes markup and a <script> into its turn, and its python tool returns a
    <script> that would retitle the page: both reach the page (the text is there) and neither is an element."""
    html, section, page = _page(db_url, make_run, tmp_path, e6={"name": "<img src=x onerror=alert(1)>"})
    steps = _steps(page, section)
    assert HOSTILE_TEXT in steps[7]["text"] and HOSTILE_OUTPUT in steps[8]["text"]
    assert "<img src=x onerror=alert(1)>" in steps[8]["text"]
    assert not page.find("script") and not page.find("img")
    assert "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;" in html
