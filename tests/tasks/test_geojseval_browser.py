"""GeoJSEval's visual runner (Leaflet, OpenLayers in headless Chromium through puppeteer-core) through real
sandboxes, on hand-written fixtures (tests/fixtures/geojseval/visual, see FIXTURES.md; not benchmark data).
bwrap runs it with the host's Node and Debian's Chromium; the harness-js Docker image has no Chromium, so
there a visual task is an errored sample that says so. Hostile code in the page never passes, every request
the page makes is aborted (and counted), and no browser process outlives its test."""
from __future__ import annotations

import asyncio
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from harness import InfraError, ModelCall, ModelOutput, SolveContext, TaskState, get_task
from harness.sandboxes import SandboxLimits, get_backend

VISUAL = Path(__file__).resolve().parents[1] / "fixtures" / "geojseval" / "visual"  # hand-written, FIXTURES.md
CHROMIUM = Path("/usr/lib/chromium/chromium")


def _unavailable(kind: str) -> str | None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node and npm are not installed on the host (the libraries are installed with npm ci)"
    if kind == "docker":
        from harness.sandboxes import _image

        ok, err = _image.docker_available()
        if not ok:
            return f"no Docker daemon ({err})"
        return None if _image.image_status("harness-js").get("built") else "harness-js image not built"
    if not CHROMIUM.is_file():
        return "Debian's chromium is not installed on the host (apt-get install chromium)"
    from harness.sandboxes._bwrap import bwrap_status

    st = bwrap_status()
    return None if st["ok"] else st["error"]


@pytest.fixture(params=[pytest.param("docker", marks=pytest.mark.docker), pytest.param("bwrap", marks=pytest.mark.bwrap)])
def kind(request):
    if reason := _unavailable(request.param):
        pytest.skip(reason)
    return request.param


@pytest.fixture
def bwrap():
    """The backend that has a browser: the harness-js image has none (test_reference_... checks what Docker says)."""
    if reason := _unavailable("bwrap"):
        pytest.skip(reason)
    return "bwrap"


def _task(library: str, **args):
    return get_task("geojseval").build(args={"library": library, **args})


async def _backend(kind, task):
    return get_backend(kind, image="harness-js", limits=SandboxLimits(**{**SandboxLimits().to_dict(),
                                                                        **task.sandbox_limits}), pool_size=1)


def _samples(task):
    return {s.id: s for s in task.dataset.open(str(VISUAL))[1]}


async def _score(task, sample, response, sandbox):
    state = TaskState(sample=sample, epoch=0)
    state.output = ModelOutput(text=response, call=ModelCall(kind="model", model="test", messages=[], config={}))
    return await task.scorers[0](state, SolveContext(model=None, config={}, task=task, sandbox=sandbox))


def _browsers() -> list[str]:
    """Chromium processes started by the runner (their profile directory names them) still on this host a few
    seconds on: a killed process group's renderers take a moment to be gone, one that stays is a leak."""
    import time

    for _ in range(50):
        r = subprocess.run(["pgrep", "-af", "user-data-dir=/tmp/geojseval-chromium-"], capture_output=True, text=True)
        left = [line for line in r.stdout.splitlines() if "pgrep" not in line]
        if not left:
            return []
        time.sleep(0.1)
    return left


@pytest.mark.parametrize("library, functions", [("leaflet", {"leaflet/addCircle": 2, "leaflet/fitToBounds": 1}),
                                                ("openlayers", {"openlayers/addPointLayer": 2,
                                                                "openlayers/centerView": 1})])
async def test_reference_passes_the_visual_fixtures(kind, library, functions):
    task = _task(library)
    samples = _samples(task)
    assert {sid: s.metadata["cases"] for sid, s in samples.items()} == functions
    b = await _backend(kind, task)
    try:
        if kind == "docker":
            with pytest.raises(InfraError, match="no Chromium"):
                await _score(task, samples[next(iter(functions))],
                             task.reference_answer(TaskState(samples[next(iter(functions))], 0)), b)
            return
        scores = await asyncio.gather(*(_score(task, s, task.reference_answer(TaskState(s, 0)), b)
                                        for s in samples.values()))
    finally:
        await b.aclose()
    for s, sc in zip(samples.values(), scores):
        assert sc.value == 1.0 and sc.values["cases_passed"] == s.metadata["cases"], (s.id, sc.explanation)
        # upstream's Object rule fails int vs float: the point at [0, 0] comes back as x = 0 (JSON `0`) where the
        # answer file, computed in Python, has 0.0 (FIXTURES.md)
        assert sc.values["task_pass_upstream"] == float(s.id != "openlayers/addPointLayer"), (s.id, sc.explanation)
        assert not sc.values.get("noisy_cases")  # aborted tile requests are not the program's output
    assert _browsers() == []


@pytest.mark.bwrap
async def test_a_wrong_visual_answer_fails(bwrap):
    kind = bwrap
    task = _task("leaflet")
    s = _samples(task)["leaflet/addCircle"]
    b = await _backend(kind, task)
    try:  # the radius in kilometres: the centre is right, the radius is not
        sc = await _score(task, s, "```javascript\nfunction addCircle(map, lat, lng, radius) {\n"
                                   "  return L.circle([lat, lng], { radius: radius / 1000 }).addTo(map);\n}\n```", b)
    finally:
        await b.aclose()
    assert sc.value == 0.0 and sc.values.get("cases_passed", 0) == 1, sc.explanation  # radius 0 is still 0
    assert sc.metadata["cases"]["addCircle_case1"]["correct"]["category"] == "wrong_output"


@pytest.mark.bwrap
async def test_a_tile_request_is_aborted_and_counted(bwrap):
    kind = bwrap
    hits = []
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]

    def serve():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            hits.append(1)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    task = _task("leaflet")
    s = _samples(task)["leaflet/addCircle"]
    code = ("function addCircle(map, lat, lng, radius) {\n"
            f"  L.tileLayer('http://127.0.0.1:{port}/{{z}}/{{x}}/{{y}}.png').addTo(map);\n"
            "  fetch('https://tile.openstreetmap.org/0/0/0.png').catch(() => {});\n"
            "  return L.circle([lat, lng], { radius: radius }).addTo(map);\n}")
    b = await _backend(kind, task)
    try:
        sc = await _score(task, s, code, b)
    finally:
        await b.aclose()
        srv.close()
    assert sc.value == 1.0, sc.explanation  # blocked tiles do not change the answer
    first = sc.metadata["cases"]["addCircle_case1"]["correct"]
    urls = first["blocked_urls"]
    assert any(u.startswith(f"http://127.0.0.1:{port}/12/") for u in urls), urls  # the attempt happened
    assert "https://tile.openstreetmap.org/0/0/0.png" in urls
    assert first["blocked_requests"] >= 2
    assert hits == []  # and nothing reached the listener


@pytest.mark.bwrap
async def test_hostile_pages_never_pass_and_leave_no_browser(bwrap):
    kind = bwrap
    task = _task("leaflet", case_time_limit=3)
    s = _samples(task)["leaflet/addCircle"]
    expected = '{"result": {"layer.getLatLng()": {"lat": 30.55, "lng": 114.36}, "layer.getRadius()": 500}}'
    b = await _backend(kind, task)
    try:
        loop = await _score(task, s, "function addCircle(map, lat, lng, radius) { while (true) {} }", b)
        never = await _score(task, s, "function addCircle(map) { return new Promise(() => {}); }", b)
        at_load = await _score(task, s, "for (;;) {}\nfunction addCircle(map) { return 1; }", b)
        # 6 GiB written in the page: RLIMIT_DATA (heap_mb + 1 GiB per process) stops it before the memory is used
        bomb = await _score(task, s, "function addCircle(map) { const a = new Uint8Array(6 * 1024 ** 3); a.fill(1); "
                                     "return a.length; }", b)
        # fake results on the console, and a JSON.stringify that would answer the expected object for anything
        fake = await _score(task, s, "function addCircle(map, lat, lng, radius) {\n"
                                     f"  const fake = {expected!r};\n"
                                     "  JSON.stringify = () => fake.slice(10, -1);\n"
                                     "  console.log(fake); console.error(JSON.stringify(42));\n"
                                     "  return 42;\n}", b)
    finally:
        await b.aclose()
    assert loop.value == 0.0 and loop.values["err_timeout"] == 2, loop.explanation  # a fresh browser per case
    assert never.value == 0.0 and never.values["err_output_format"] == 2, never.explanation
    assert at_load.value == 0.0 and at_load.values["err_timeout"] == 2, at_load.explanation  # the model's, not the data's
    assert bomb.value == 0.0 and bomb.values.get("err_range_error", 0) + bomb.values.get("err_crashed", 0) == 2, \
        bomb.explanation
    assert fake.value == 0.0 and fake.values.get("cases_passed", 0) == fake.values.get("cases_passed_upstream", 0) == 0
    # wrong_output, not a TypeError: the patch ran (and the runner's own stringify framed the 42); it printed
    assert fake.metadata["cases"]["addCircle_case1"]["correct"]["category"] == "wrong_output"
    assert fake.values["noisy_cases"] == 2
    assert _browsers() == []  # the timed-out browsers' process groups were killed


def test_cli_reference_on_both_visual_variants(kind, tmp_path):
    db = tmp_path / "h.db"
    for variant in ("leaflet", "openlayers"):
        r = subprocess.run([sys.executable, "-m", "harness.cli", "eval", "--model", "reference", "--task",
                            f"geojseval@{variant}", "--data", str(VISUAL), "--sandbox", kind, "--db", f"sqlite:///{db}",
                            "--quiet"], capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
    with sqlite3.connect(db) as con:
        rows = con.execute("select sample_id, status, score, error from samples_v order by sample_id").fetchall()
    ids = ["leaflet/addCircle", "leaflet/fitToBounds", "openlayers/addPointLayer", "openlayers/centerView"]
    assert [row[0] for row in rows] == ids
    if kind == "bwrap":
        assert [(status, score) for _, status, score, _ in rows] == [("scored", 1.0)] * 4, rows
    else:  # the image has no Chromium: an errored sample that says so, never a wrong answer
        assert all(status != "scored" and "no Chromium" in (error or "") for _, status, _, error in rows), rows


@pytest.mark.bwrap
async def test_a_tight_memory_limit_is_a_clear_error_not_a_crash(bwrap):
    task = _task("leaflet")
    s = _samples(task)["leaflet/addCircle"]
    b = get_backend("bwrap", image="harness-js", limits=SandboxLimits(**{**SandboxLimits().to_dict(),
                                                                        **task.sandbox_limits, "memory_mb": 4096}))
    try:
        with pytest.raises(InfraError, match="4096 MB of address space.*geojseval@leaflet"):
            await _score(task, s, task.reference_answer(TaskState(s, 0)), b)
    finally:
        await b.aclose()
