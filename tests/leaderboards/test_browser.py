"""The built site opened in headless Chromium, as a person would look at it: the table shows the database's
numbers, and HTML or script in a model response is shown as text and never runs."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Page, correct
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
