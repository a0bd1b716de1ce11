"""The built site opened in headless Chromium, as a person would look at it: the table shows the database's
numbers, and HTML or script in a model response is shown as text and never runs."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import EASY, Page, correct, solves
from harness.store import Store

pytestmark = pytest.mark.chromium
HARNESS = Path(sys.executable).parent / "harness"
EVIL_MODEL = "evil<img src=x onerror=\"document.title='PWNED-model'\">"
ATTACKS = {
    "Rot13": "<result>{target}</result><script>document.title='PWNED'</script>",
    "Atbash": "<result><img src=x onerror=\"document.title='PWNED-img'\"></result>",
    "Polybius": "<a href=\"javascript:document.title='PWNED-link'\">click me</a>",
    "Vigenere": "<script>document.body.appendChild(document.createElement('div')).id='pwned'</script>",
    "Reverse": "</pre></td></tr></table></section><script>document.title='PWNED-break'</script>",
    "SwapPairs": "<svg onload=\"document.title='PWNED-svg'\"></svg><iframe src=\"javascript:alert(1)\"></iframe>",
}


def _chromium() -> str:
    found = shutil.which("chromium")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed in CI: ./dev.sh test installs it")
    pytest.skip("needs headless Chromium (Debian package `chromium`; ./dev.sh test installs it)")


def _run_chromium(tmp_path: Path, url: str, *args: str) -> str:
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", *args, url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def attack(sample, messages) -> str:
    template = ATTACKS.get(sample.metadata["cipher"])
    return template.format(target=sample.target) if template else correct(sample, messages)


def test_site_in_chromium(db_url, make_run, tmp_path):
    chromium_dump = lambda path: Page(_run_chromium(tmp_path, path.as_uri(), "--dump-dom"))  # noqa: E731
    # the check below means something only if this Chromium runs a page's scripts
    control = tmp_path / "control.html"
    control.write_text("<!doctype html><title>before</title><script>document.title='ran'</script>")
    assert chromium_dump(control).title == "ran"

    good = make_run(db_url, "good", correct)
    evil = make_run(db_url, EVIL_MODEL, attack)
    site = tmp_path / "site"
    built = subprocess.run([str(HARNESS), "leaderboard", "build", "--out", str(site), "--db", db_url],
                           capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr

    index = chromium_dump(site / "index.html")
    assert index.title == "harness leaderboard"
    store = Store(db_url)
    for model, run_id in (("good", good), (EVIL_MODEL, evil)):
        acc = store.run_tasks(run_id)[0]["metrics"]["overall"]["accuracy"]
        td = index.cell(model, "cipherbank")
        assert td is not None, model
        assert float(td["attrs"]["data-value"]) == acc["value"] and td["attrs"]["data-run"] == run_id
        assert f"{acc['value']:.2f} [{acc['ci_low']:.2f}, {acc['ci_high']:.2f}]" in " ".join(td["text"].split())
    assert not index.find("img")

    pages = sorted((site / "runs" / evil / "cipherbank").glob("p*.html"))
    assert len(pages) == 2
    shown = ""
    for path in pages:
        dom = chromium_dump(path)
        assert dom.title.startswith("cipherbank samples") and "PWNED" not in dom.title
        assert not dom.find("img") and not dom.find("iframe") and not dom.find("svg") and not dom.find("script")
        assert not dom.find("div", id="pwned")
        assert not [a for a in dom.find("a") if a["attrs"].get("href", "").strip().lower().startswith("javascript:")]
        shown += "".join(e["text"] for e in dom.find("pre"))
    # every attack is on the page, as text
    for cipher, template in ATTACKS.items():
        assert template.split("{target}")[-1] in shown, cipher
    run_page = chromium_dump(site / "runs" / evil / "index.html")
    assert run_page.title == f"run {evil} · harness leaderboard" and not run_page.find("img")

    shot = tmp_path / "leaderboard.png"
    _run_chromium(tmp_path, (site / "suites" / "cipherbank.html").as_uri(), f"--screenshot={tmp_path / 'suite.png'}",
                  "--window-size=1400,1000", "--hide-scrollbars")
    _run_chromium(tmp_path, (site / "index.html").as_uri(), f"--screenshot={shot}", "--window-size=1400,700",
                  "--hide-scrollbars")
    for png in (shot, tmp_path / "suite.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    try:
        shutil.copy(shot, "/tmp/leaderboard.png")
        shutil.copy(tmp_path / "suite.png", "/tmp/leaderboard-suite.png")
    except OSError:
        pass  # the copies are for a person to look at; the test's own files are the record


MEASURE = ("<script>var d = document.documentElement; document.title = [d.scrollWidth, d.clientWidth, "
           "Array.from(document.querySelectorAll('#leaderboard tbody tr')).map(function (r) {"
           " return r.getAttribute('data-model') + '=' + r.getAttribute('data-rank'); }).join('|')].join(' ');"
           "</script>")


def _measure(tmp_path: Path, page: Path, width: int) -> tuple[int, int, list[tuple[str, str]]]:
    """Page width against the window's, and the ranking's rows in order, as Chromium lays the page out at
    `width` px. The site's pages forbid scripts, so the measuring copy drops that policy (nothing else)."""
    html = page.read_text()
    html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html).replace("</body>", MEASURE + "</body>")
    probe = page.with_name(f"measure-{page.name}")
    probe.write_text(html)
    title = Page(_run_chromium(tmp_path, probe.as_uri(), "--dump-dom", f"--window-size={width},900")).title
    scroll, client, rows = title.split(" ", 2)
    return int(scroll), int(client), [tuple(r.split("=", 1)) for r in rows.split("|") if r]


def test_index_is_a_ranking_that_fits_1280_px(db_url, make_run, tmp_path):
    # the measurement can fail: a page wider than the window reports it
    wide = tmp_path / "wide.html"
    wide.write_text('<!doctype html><html><body><div style="width:2000px">x</div></body></html>')
    scroll, client, _ = _measure(tmp_path, wide, 1280)
    assert scroll > client and client <= 1280

    long_name = "Qwen/Qwen2.5-72B-Instruct-AWQ-with-a-long-local-checkpoint-name"
    make_run(db_url, "half", solves(EASY))
    make_run(db_url, "good", correct)
    make_run(db_url, long_name, solves({"Rot13"}))
    make_run(db_url, "half", solves(EASY), variant="hint", limit=27)
    broken = make_run(db_url, "flaky", errors_on_swappairs)
    for task in ("aegis", "who_and_when"):
        done = subprocess.run([str(HARNESS), "eval", "--model", "reference", "--task", task, "--data", "bundled",
                               "--db", db_url, "-q"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    site = tmp_path / "site"
    built = subprocess.run([str(HARNESS), "leaderboard", "build", "--out", str(site), "--db", db_url],
                           capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr

    scroll, client, rows = _measure(tmp_path, site / "index.html", 1280)
    assert scroll <= client, f"the index scrolls sideways at 1280 px: {scroll} > {client}"
    # measured models only, ranked: more suites first (reference and half have two), then the mean; the
    # incomplete run (SwapPairs errored) is listed after them, without a rank
    assert rows == [("reference", "1"), ("half", "2"), ("good", "3"), (long_name, "4"), ("flaky", "")]
    index = Page((site / "index.html").read_text())
    assert index.cell("flaky", "cipherbank")["attrs"].get("data-incomplete") == "1"
    # suites without runs get no column; the paper's numbers are in a collapsed section, not in the ranking
    suites = [th["attrs"]["data-suite"] for th in index.find("th") if "data-suite" in th["attrs"]]
    assert suites == ["aegis", "cipherbank", "cipherbank@hint", "who_and_when"]
    (details,) = index.find("details", id="reported")
    assert "open" not in details["attrs"]
    reported = index.find("tr", **{"class": "reported"})
    assert reported and all(details["attrs"] in r["parents"] for r in reported)
    assert broken in (site / "index.html").read_text()
    shot = tmp_path / "index-1280.png"
    _run_chromium(tmp_path, (site / "index.html").as_uri(), f"--screenshot={shot}", "--window-size=1280,900")
    try:
        shutil.copy(shot, "/tmp/leaderboard-index-1280.png")
    except OSError:
        pass


def errors_on_swappairs(sample, messages) -> str:
    from harness import InfraError

    if sample.metadata["cipher"] == "SwapPairs":
        raise InfraError("endpoint gave up after 3 attempts")
    return correct(sample, messages)
