"""GeoJSEval's visual runner (Leaflet, OpenLayers in headless Chromium through puppeteer-core) through real
sandboxes, on hand-written fixtures (tests/fixtures/geojseval/visual, see FIXTURES.md; not benchmark data).
Docker runs it in the harness-js-browser image (harness-js plus Debian's chromium), bwrap with the host's Node
and Chromium. Hostile code in the page never passes, every request the page makes is aborted (and counted),
memory is bounded by a real limit (the container's cgroup; bwrap's RLIMIT_DATA) while Chromium gets the address
space it reserves, and no browser process or container outlives its test."""
from __future__ import annotations

import asyncio
import os
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
IMAGE = "harness-js-browser"


def _unavailable(kind: str) -> str | None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node and npm are not installed on the host (the libraries are installed with npm ci)"
    if kind == "docker":
        from harness.sandboxes import _image

        ok, err = _image.docker_available()
        if not ok:
            return f"no Docker daemon ({err})"
        return None if _image.image_status(IMAGE).get("built") else f"{IMAGE} image not built"
    if not CHROMIUM.is_file():
        return "Debian's chromium is not installed on the host (apt-get install chromium)"
    from harness.sandboxes._bwrap import bwrap_status

    st = bwrap_status()
    return None if st["ok"] else st["error"]


@pytest.fixture(params=[pytest.param("docker", marks=pytest.mark.docker, id="docker"),
                        pytest.param("bwrap", marks=pytest.mark.bwrap, id="bwrap")])
def kind(request):
    """tests/conftest.py's `kind` (each test on both backends, a missing one fails in CI), checking what the
    browser runner needs: the browser image on Docker, the host's Chromium on bwrap."""
    if reason := _unavailable(request.param):
        if os.environ.get("CI"):
            pytest.fail(f"{request.param} backend unavailable in CI: {reason}")
        pytest.skip(reason)
    return request.param


def _task(library: str, **args):
    return get_task("geojseval").build(args={"library": library, **args})


async def _backend(kind, task, **limits):
    return get_backend(kind, image=task.sandbox_image, pool_size=1,
                       limits=SandboxLimits(**{**SandboxLimits().to_dict(), **task.sandbox_limits, **limits}))


def _samples(task):
    return {s.id: s for s in task.dataset.open(str(VISUAL))[1]}


async def _score(task, sample, response, sandbox):
    state = TaskState(sample=sample, epoch=0)
    state.output = ModelOutput(text=response, call=ModelCall(kind="model", model="test", messages=[], config={}))
    return await task.scorers[0](state, SolveContext(model=None, config={}, task=task, sandbox=sandbox))


def _leftovers() -> list[str]:
    """Chromium processes started by the runner (their profile directory names them; the host sees a container's
    processes too) and sandbox containers of this process, still there a few seconds on: a killed process group's
    renderers take a moment to be gone, one that stays is a leak."""
    import time

    from harness.sandboxes import _image
    from harness.sandboxes._docker import LABEL

    client = _image.docker_client() if _image.docker_available()[0] else None
    mine = f"{socket.gethostname()}:{os.getpid()}:"
    for _ in range(50):
        r = subprocess.run(["pgrep", "-af", "user-data-dir=/tmp/geojseval-chromium-"], capture_output=True, text=True)
        left = [line for line in r.stdout.splitlines() if "pgrep" not in line]
        if client is not None:  # one listing call: other tests' containers may go while it runs
            left += [f"container {c['Id'][:12]}" for c in client.api.containers(all=True, filters={"label": LABEL})
                     if (c.get("Labels") or {}).get(LABEL, "").startswith(mine)]
        if not left:
            return []
        time.sleep(0.1)
    return left


def test_the_browser_image_builds_on_the_node_image(tmp_path, monkeypatch):
    """harness-js-browser is harness-js plus Chromium: a change to the Node image changes the browser image's tag
    (so it is rebuilt FROM the new one), and a change to the browser image leaves the Node image's tag alone."""
    from harness.sandboxes import _image

    images = tmp_path / "images"
    shutil.copytree(_image.IMAGES_DIR, images)
    monkeypatch.setattr(_image, "IMAGES_DIR", images)
    assert _image.image_config(IMAGE)["from_image"] == "harness-js"
    node, browser = _image.image_tag("harness-js"), _image.image_tag(IMAGE)
    with open(images / "harness-js" / "Dockerfile", "a") as f:
        f.write("# changed\n")
    assert _image.image_tag("harness-js") != node and _image.image_tag(IMAGE) != browser
    node, browser = _image.image_tag("harness-js"), _image.image_tag(IMAGE)
    with open(images / IMAGE / "Dockerfile", "a") as f:
        f.write("# changed\n")
    assert _image.image_tag("harness-js") == node and _image.image_tag(IMAGE) != browser


def test_the_visual_variants_ask_for_address_space_apart_from_memory():
    for library in ("leaflet", "openlayers"):
        task = _task(library, heap_mb=512)
        assert task.sandbox_image == IMAGE
        assert task.sandbox_limits["memory_mb"] == 512 + 2048  # a real limit: the cgroup on Docker
        assert task.sandbox_limits["address_space_mb"] == 192 << 10  # bwrap's RLIMIT_AS, what Chromium reserves
    node = get_task("geojseval").build(args={"library": "turf"})
    assert node.sandbox_image == "harness-js" and "address_space_mb" not in node.sandbox_limits


@pytest.mark.parametrize("library, functions", [("leaflet", {"leaflet/addCircle": 2, "leaflet/fitToBounds": 1}),
                                                ("openlayers", {"openlayers/addPointLayer": 2,
                                                                "openlayers/centerView": 1})])
async def test_reference_passes_the_visual_fixtures(kind, library, functions):
    task = _task(library)
    samples = _samples(task)
    assert {sid: s.metadata["cases"] for sid, s in samples.items()} == functions
    b = await _backend(kind, task)
    try:
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
        # the page's own OpenStreetMap tiles were asked for and aborted (a moved view asks for more)
        assert all(v["correct"]["blocked_requests"] is not None for v in sc.metadata["cases"].values())
    assert _leftovers() == []


async def test_wrong_visual_answers_fail(kind):
    leaflet, openlayers = _task("leaflet"), _task("openlayers")
    circle = _samples(leaflet)["leaflet/addCircle"]
    view = _samples(openlayers)["openlayers/centerView"]
    b = await _backend(kind, leaflet)
    try:  # the radius in kilometres: the centre is right, the radius is not
        sc = await _score(leaflet, circle, "```javascript\nfunction addCircle(map, lat, lng, radius) {\n"
                                           "  return L.circle([lat, lng], { radius: radius / 1000 }).addTo(map);\n}\n```", b)
        # the centre in degrees where the view wants Web Mercator metres (no ol.proj.fromLonLat)
        sv = await _score(openlayers, view, "```javascript\nfunction centerView(map, lon, lat, zoom) {\n"
                                            "  const view = map.getView();\n  view.setCenter([lon, lat]);\n"
                                            "  view.setZoom(zoom);\n  return view;\n}\n```", b)
    finally:
        await b.aclose()
    assert sc.value == 0.0 and sc.values.get("cases_passed", 0) == 1, sc.explanation  # radius 0 is still 0
    assert sc.metadata["cases"]["addCircle_case1"]["correct"]["category"] == "wrong_output"
    assert sv.value == 0.0 and sv.values.get("cases_passed_upstream", 0) == 0, sv.explanation
    assert sv.metadata["cases"]["centerView_case1"]["correct"]["category"] == "wrong_output"
    assert _leftovers() == []


async def test_network_from_the_page_is_blocked_and_counted(kind):
    """Tiles, fetch, XHR and a WebSocket at a listener on the host's loopback and at the internet: every attempt
    is in the case's blocked list and none arrives (request interception aborts the HTTP ones; WebSockets, which
    interception does not see, find no address). On Docker the container has no network besides; on bwrap none."""
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
            f"  const x = new XMLHttpRequest(); x.open('GET', 'http://127.0.0.1:{port}/xhr'); x.onerror = () => {{}}; x.send();\n"
            f"  try {{ new WebSocket('ws://127.0.0.1:{port}/ws').onerror = () => {{}}; }} catch (e) {{}}\n"
            "  try { new WebSocket('wss://example.com/ws').onerror = () => {}; } catch (e) {}\n"
            "  return L.circle([lat, lng], { radius: radius }).addTo(map);\n}")
    b = await _backend(kind, task)
    try:
        sc = await _score(task, s, code, b)
    finally:
        await b.aclose()
        srv.close()
    assert sc.value == 1.0, sc.explanation  # blocked requests do not change the answer
    first = sc.metadata["cases"]["addCircle_case1"]["correct"]
    urls = first["blocked_urls"]
    assert any(u.startswith(f"http://127.0.0.1:{port}/12/") for u in urls), urls  # the attempts happened
    for url in ("https://tile.openstreetmap.org/0/0/0.png", f"http://127.0.0.1:{port}/xhr",
                f"ws://127.0.0.1:{port}/ws", "wss://example.com/ws"):
        assert url in urls, (url, urls)
    assert first["blocked_requests"] >= 5
    assert hits == []  # and nothing reached the listener
    assert _leftovers() == []


async def test_hostile_pages_never_pass_and_leave_no_browser(kind):
    task = _task("leaflet", case_time_limit=3)
    s = _samples(task)["leaflet/addCircle"]
    expected = '{"result": {"layer.getLatLng()": {"lat": 30.55, "lng": 114.36}, "layer.getRadius()": 500}}'
    b = await _backend(kind, task)
    try:
        loop = await _score(task, s, "function addCircle(map, lat, lng, radius) { while (true) {} }", b)
        never = await _score(task, s, "function addCircle(map) { return new Promise(() => {}); }", b)
        at_load = await _score(task, s, "for (;;) {}\nfunction addCircle(map) { return 1; }", b)
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
    assert fake.value == 0.0 and fake.values.get("cases_passed", 0) == fake.values.get("cases_passed_upstream", 0) == 0
    # wrong_output, not a TypeError: the patch ran (and the runner's own stringify framed the 42); it printed
    assert fake.metadata["cases"]["addCircle_case1"]["correct"]["category"] == "wrong_output"
    assert fake.values["noisy_cases"] == 2
    assert _leftovers() == []  # the timed-out browsers' process groups were killed, the containers removed


async def test_a_page_that_allocates_without_bound_is_the_models_failure(kind):
    """256 MiB at a time, written and kept, for ever. Docker: the container's memory limit (the cgroup's OOM killer,
    counted in its memory.events) stops it, Chromium's address-space reservations notwithstanding; bwrap: RLIMIT_DATA
    (an allocation fails). Either way the case fails as the model's (crashed or RangeError), never an infra error,
    and the next case runs in a fresh browser."""
    task = _task("leaflet")
    s = _samples(task)["leaflet/addCircle"]
    b = await _backend(kind, task)
    try:
        oom_before = await _oom_kills(b) if kind == "docker" else 0
        bomb = await _score(task, s, "function addCircle(map) { const keep = [];\n"
                                     "  for (;;) { const a = new Uint8Array(256 * 1024 * 1024); a.fill(1); keep.push(a); } }", b)
        oom_after = await _oom_kills(b) if kind == "docker" else 0
    finally:
        await b.aclose()
    assert bomb.value == 0.0, bomb.explanation
    assert bomb.values.get("err_range_error", 0) + bomb.values.get("err_crashed", 0) == 2, bomb.explanation
    if kind == "docker":
        assert bomb.values.get("err_crashed") == 2, bomb.explanation
        assert oom_after - oom_before >= 2  # an OOM kill per case run, by the container's own limit
    assert _leftovers() == []


async def _oom_kills(backend) -> int:
    """The pooled container's OOM-kill count (pool_size=1: the one the scorer used, unless it was replaced)."""
    from harness.sandboxes._docker import _OOM_COUNT, _oom_kills

    async with backend.acquire() as sb:
        r = await sb.exec(["sh", "-c", _OOM_COUNT])
    return _oom_kills(r.stdout)


def test_cli_reference_on_both_visual_variants(kind, tmp_path):
    db = tmp_path / "h.db"
    for variant in ("leaflet", "openlayers"):
        r = subprocess.run([sys.executable, "-m", "harness.cli", "eval", "--model", "reference", "--task",
                            f"geojseval@{variant}", "--data", str(VISUAL), "--sandbox", kind, "--db", f"sqlite:///{db}",
                            "--quiet"], capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
    with sqlite3.connect(db) as con:
        rows = con.execute("select sample_id, status, score from samples_v order by sample_id").fetchall()
    assert rows == [("leaflet/addCircle", "scored", 1.0), ("leaflet/fitToBounds", "scored", 1.0),
                    ("openlayers/addPointLayer", "scored", 1.0), ("openlayers/centerView", "scored", 1.0)], rows
    assert _leftovers() == []


@pytest.mark.bwrap
async def test_a_tight_address_space_is_a_clear_error_not_a_crash():
    if reason := _unavailable("bwrap"):
        pytest.skip(reason)
    task = _task("leaflet")
    s = _samples(task)["leaflet/addCircle"]
    b = await _backend("bwrap", task, address_space_mb=4096)
    try:
        with pytest.raises(InfraError, match="address-space limit \\(4096 MB\\).*geojseval@leaflet"):
            await _score(task, s, task.reference_answer(TaskState(s, 0)), b)
    finally:
        await b.aclose()
