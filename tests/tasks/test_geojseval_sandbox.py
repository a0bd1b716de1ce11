"""GeoJSEval through real sandboxes (Docker with the harness-js image, and bwrap with the host's Node; each skipped
where it cannot run), on the hand-written fixtures (../shared/datasets/geojseval/fixtures, not benchmark data):
the reference solutions pass every case, the negative controls fail under the correct rules while the upstream
figures show upstream's verdicts, broken data gives per-case outcomes, and hostile JavaScript never passes and
leaves the host untouched. End to end through the public CLI as well."""
from __future__ import annotations

import asyncio
import json
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness import ModelCall, ModelOutput, SolveContext, TaskState, get_task
from harness.sandboxes import SandboxLimits, get_backend

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "geojseval"  # hand-written fixtures (tests/fixtures/geojseval/FIXTURES.md)
SECRET = "hts-geojseval-51c2-do-not-leak"


def _unavailable(kind: str) -> str | None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node and npm are not installed on the host (the libraries are installed with npm ci)"
    if kind == "docker":
        from harness.sandboxes import _image

        ok, err = _image.docker_available()
        if not ok:
            return f"no Docker daemon ({err})"
        return None if _image.image_status("harness-js").get("built") else "harness-js image not built"
    from harness.sandboxes._bwrap import bwrap_status

    st = bwrap_status()
    return None if st["ok"] else st["error"]


@pytest.fixture(params=[pytest.param("docker", marks=pytest.mark.docker), pytest.param("bwrap", marks=pytest.mark.bwrap)])
def kind(request):
    if reason := _unavailable(request.param):
        pytest.skip(reason)
    return request.param


def _task(**args):
    return get_task("geojseval").build(args=args) if args else get_task("geojseval").build()


@pytest.fixture
async def backend(kind, monkeypatch):
    monkeypatch.setenv("HARNESS_TEST_SECRET", SECRET)
    limits = {**SandboxLimits().to_dict(), **_task().sandbox_limits}
    b = get_backend(kind, image="harness-js", limits=SandboxLimits(**limits), pool_size=2)
    yield b
    await b.aclose()


def _samples(task, path=FIXTURES):
    return {s.id: s for s in task.dataset.open(str(path))[1]}


async def _score(task, sample, response, sandbox):
    state = TaskState(sample=sample, epoch=0)
    state.output = ModelOutput(text=response, call=ModelCall(kind="model", model="test", messages=[], config={}))
    return await task.scorers[0](state, SolveContext(model=None, config={}, task=task, sandbox=sandbox))


async def test_reference_solutions_pass_every_fixture_case(backend):
    task = _task()
    samples = list(_samples(task).values())
    scores = await asyncio.gather(*(_score(task, s, task.reference_answer(TaskState(s, 0)), backend) for s in samples))
    for s, sc in zip(samples, scores):
        assert sc.value == 1.0 and sc.values["cases_passed"] == s.metadata["cases"], (s.id, sc.explanation)
    upstream = {s.id: sc.values["task_pass_upstream"] for s, sc in zip(samples, scores)}
    # FIXTURES.md, published harness: getEnvelope's reference fails every case there (bug C)
    assert upstream == {"geolib/isWithinRadius": 1.0, "turf/getLineLengthKm": 1.0, "turf/getEnvelope": 0.0}


async def test_negative_controls_fail_and_upstream_figures_show_upstreams_verdicts(backend):
    task = _task()
    samples = _samples(task)
    expected = {  # FIXTURES.md "Verified outcomes": (correct rules, published harness) cases passed
        "turf/getLineLengthKm": (2, 2), "turf/getEnvelope": (0, 0), "geolib/isWithinRadius": (2, 3)}
    for sid, (correct, upstream) in expected.items():
        lib, name = sid.split("/")
        response = (FIXTURES / "negative_controls" / lib / f"{name}_response.txt").read_text()
        sc = await _score(task, samples[sid], response, backend)
        assert sc.value == 0.0, sid
        assert (sc.values.get("cases_passed", 0), sc.values.get("cases_passed_upstream", 0)) == (correct, upstream), \
            (sid, sc.explanation)
    sc = await _score(task, samples["turf/getLineLengthKm"],
                      (FIXTURES / "negative_controls/turf/getLineLengthKm_response.txt").read_text(), backend)
    cases = sc.metadata["cases"]
    assert cases["getLineLengthKm_case1"]["correct"]["category"] == "wrong_output"
    assert cases["getLineLengthKm_case4"]["correct"]["category"] == "type_error"  # it throws on null


async def test_js_fence_missing_function_and_no_code(backend):
    task = _task()
    s = _samples(task)["geolib/isWithinRadius"]
    good = "function isWithinRadius(p, c, r) { return geolib.isPointWithinRadius(p, c, r); }"
    sc = await _score(task, s, f"```js\n{good}\n```", backend)
    # upstream keeps `js` as the first line of the code: a ReferenceError in every case there
    assert sc.value == 1.0 and sc.values["task_pass_upstream"] == 0.0
    sc = await _score(task, s, "```javascript\nfunction withinRadius(p, c, r) { return true; }\n```", backend)
    assert sc.value == 0.0 and sc.error_category == "missing_function" and sc.values["upstream_skipped"] == 1.0
    sc = await _score(task, s, "", backend)
    assert sc.value == 0.0 and sc.error_category == "no_code"
    sc = await _score(task, s, "```javascript\nfunction isWithinRadius(p, c, r) { return geolib.isPointWithinRadius(p, c, r) \n```",
                      backend)
    assert sc.error_category == "syntax_error"


async def test_output_fails_only_the_upstream_figure(backend):
    task = _task()
    s = _samples(task)["geolib/isWithinRadius"]
    code = "function isWithinRadius(p, c, r) { console.warn('deprecated'); return geolib.isPointWithinRadius(p, c, r); }"
    sc = await _score(task, s, code, backend)
    assert sc.value == 1.0 and sc.values["noisy_cases"] == 3
    assert sc.values["task_pass_upstream"] == 0.0
    assert sc.metadata["cases"]["isWithinRadius_case1"]["upstream"]["category"] == "stderr_noise"


def _broken_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "turf_code"
    shutil.copytree(FIXTURES / "turf_code", dst)
    for p in [dst, *dst.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    cfg = (dst / "config.yaml").read_text()
    cfg = cfg.replace("return turf.lineString([[-3.70, 40.41], [-3.69, 40.43], [-3.66, 40.42]], { name: 'route' });",
                      "throw new Error('factory broke');")
    (dst / "config.yaml").write_text(cfg)
    (dst / "ref_answer" / "getLineLengthKm_case2.npy").unlink()
    return dst


async def test_broken_data_gives_per_case_outcomes_and_the_rest_is_scored(backend, tmp_path):
    task = _task()
    samples = _samples(task, _broken_copy(tmp_path))
    env = samples["turf/getEnvelope"]
    sc = await _score(task, env, task.reference_answer(TaskState(env, 0)), backend)
    assert sc.value == 1.0 and sc.values["cases_total"] == 2 and sc.values["invalid_cases"] == 1
    assert "factory broke" in sc.metadata["invalid_cases"]["1"]
    line = samples["turf/getLineLengthKm"]
    sc = await _score(task, line, task.reference_answer(TaskState(line, 0)), backend)
    assert sc.value == 1.0 and sc.values["cases_total"] == 3
    assert sc.metadata["invalid_cases"] == {"1": "answer file ref_answer/getLineLengthKm_case2.npy is missing"}


class _Listener:
    """A TCP server on a host address: counts the connections that reach it."""

    def __init__(self):
        self.host = socket.gethostbyname(socket.gethostname())
        self.sock = socket.socket()
        self.sock.bind((self.host, 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.hits = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.hits += 1
            conn.close()


def _hostile(body: str) -> str:
    return f"```javascript\nfunction isWithinRadius(point, center, radius) {{\n{body}\n}}\n```"


async def test_hostile_javascript_never_passes_and_the_host_is_untouched(backend, tmp_path):
    task = _task(case_time_limit=2.0)
    s = _samples(task)["geolib/isWithinRadius"]
    marker = tmp_path / "written-by-the-sandbox"
    listener = _Listener()
    net = ("const r = require('child_process').spawnSync(process.execPath, ['-e', "
           f"\"require('net').connect({listener.port}, '{listener.host}').on('connect', () => process.stdout.write('CONNECTED'))"
           ".on('error', (e) => process.stdout.write(e.code))\"], {timeout: 3000});\n"
           "return 'net:' + String(r.stdout) + String(r.error && r.error.code);")
    attacks = {
        "infinite loop": ("while (true) {}", "timeout"),
        # V8 aborts at its heap limit (a crash), unless the case's time limit comes first on a loaded machine
        "memory bomb": ("const a = []; while (true) a.push(new Array(1e6).fill(1.5));", "crashed timeout"),
        "exit 0": ("process.exit(0);", "crashed"),
        "fake stdout": ("process.stdout.write(JSON.stringify({result: true}) + '\\n'); return 'wrong';", "output_format"),
        # a well-formed answer line for case 0 on every pipe the process holds (the runner's answer pipe among them)
        "forged result lines": ("const fs = require('fs');\nfor (const fd of fs.readdirSync('/proc/self/fd')) {\n"
                                "  let link = ''; try { link = fs.readlinkSync('/proc/self/fd/' + fd); } catch (e) {}\n"
                                "  if (Number(fd) > 2 && link.startsWith('pipe:')) { try { fs.writeSync(Number(fd), "
                                "'[0, \"ok\", \"{\\\\\"result\\\\\":true}\", 1, 1]\\n'); } catch (e) {} }\n}\nreturn false;",
                                "invalid_report crashed"),  # node's own pipes among them: writing there may crash it
        "patched JSON.stringify": ("JSON.stringify = () => '{\"result\":true}';\nreturn 'patched ' + JSON.stringify(1);",
                                   "output_format"),
        "host files and secrets": (f"const fs = require('fs');\ntry {{ fs.writeFileSync({json.dumps(str(marker))}, 'x'); }}"
                                   " catch (e) {}\nlet got = String(process.env.HARNESS_TEST_SECRET);\n"
                                   f"try {{ got += fs.readFileSync({json.dumps(str(Path(__file__)))}, 'utf8'); }}"
                                   " catch (e) { got += ' ' + e.code; }\nreturn got;", "output_format"),
        "network": (net, "output_format"),
        "never-resolving promise": ("return new Promise(() => {});", "output_format"),
        "timers after return": ("setInterval(() => process.stdout.write('{\"result\":true}\\n'), 0);\n"
                                "setTimeout(() => process.exit(0), 0);\nreturn 'late';", "output_format"),
    }
    for name, (body, category) in attacks.items():
        t0 = time.monotonic()
        sc = await _score(task, s, _hostile(body), backend)
        assert sc.value == 0.0, (name, sc.explanation)  # (upstream's bug A passes any returned value as a boolean)
        assert not [c for c, v in sc.metadata["cases"].items() if v["correct"]["passed"]], (name, sc.explanation)
        assert sc.error_category in category.split(), (name, sc.explanation)
        assert time.monotonic() - t0 < 60, name
        details = " ".join(c["correct"].get("detail", "") for c in sc.metadata["cases"].values())
        if name == "fake stdout":
            assert sc.values["noisy_cases"] == 3 and "not a boolean: 'wrong'" in details  # it printed, then returned
        if name == "patched JSON.stringify":
            assert "patched {\"result\":true}" in details  # the patch ran; the runner kept its own stringify
        if name == "host files and secrets":
            assert SECRET not in details and "undefined" in details and "ENOENT" in details or "EACCES" in details
        if name == "network":
            assert "net:" in details and "CONNECTED" not in details
        if name == "timers after return":
            assert "not a boolean: 'late'" in details
    assert not marker.exists()
    assert listener.hits == 0


def _run_cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_cli_reference_and_replay_of_upstream_response_files(kind, tmp_path):
    db = tmp_path / "h.db"
    r = _run_cli("eval", "--model", "reference", "--task", "geojseval", "--data", str(FIXTURES), "--sandbox", kind,
                 "--db", f"sqlite:///{db}", "--quiet")
    assert r.returncode == 0, r.stderr
    r = _run_cli("eval", "--model", f"replay:{FIXTURES / 'negative_controls'}", "--task", "geojseval", "--data",
                 str(FIXTURES), "--sandbox", kind, "--db", f"sqlite:///{db}", "--quiet")
    assert r.returncode == 0, r.stderr
    with sqlite3.connect(db) as con:
        rows = con.execute("select model, sample_id, status, score from samples_v order by model, sample_id").fetchall()
    got = {("reference" if m == "reference" else "replay", sid): (status, score) for m, sid, status, score in rows}
    assert got == {
        ("reference", "geolib/isWithinRadius"): ("scored", 1.0), ("reference", "turf/getEnvelope"): ("scored", 1.0),
        ("reference", "turf/getLineLengthKm"): ("scored", 1.0),
        ("replay", "geolib/isWithinRadius"): ("scored", 0.0), ("replay", "turf/getEnvelope"): ("scored", 0.0),
        ("replay", "turf/getLineLengthKm"): ("scored", 0.0)}
    r = _run_cli("show", "--db", f"sqlite:///{db}", "--json", _latest_run(db))
    metrics = json.loads(r.stdout)
    text = json.dumps(metrics)
    assert '"case_accuracy"' in text and '"case_accuracy_upstream"' in text


def _latest_run(db: Path) -> str:
    with sqlite3.connect(db) as con:
        return con.execute("select id from runs order by created_at desc limit 1").fetchone()[0]


def test_cli_metrics_over_epochs_hand_checked(kind, tmp_path):
    """Two tasks, two epochs: both pass in epoch 0; in epoch 1 geolib's `<=` fails 1 of 3 cases and turf's code
    loops forever while loading (all 4 cases time out)."""
    ref = (FIXTURES / "geolib_code/standard_code/isWithinRadius.txt").read_text()
    rows = [("geolib/isWithinRadius", 0, f"```javascript\n{ref}\n```"),
            ("geolib/isWithinRadius", 1, (FIXTURES / "negative_controls/geolib/isWithinRadius_response.txt").read_text()),
            ("turf/getLineLengthKm", 0, (FIXTURES / "turf_code/standard_code/getLineLengthKm.txt").read_text()),
            ("turf/getLineLengthKm", 1, "```js\nwhile (true) {}\n```")]
    replay = tmp_path / "epochs.jsonl"
    replay.write_text("".join(json.dumps({"sample_id": s, "epoch": e, "response": r}) + "\n" for s, e, r in rows))
    db = tmp_path / "m.db"
    r = _run_cli("eval", "--model", f"replay:{replay}", "--task", "geojseval", "--data", str(FIXTURES), "--epochs", "2",
                 "--sample-id", "geolib/isWithinRadius", "--sample-id", "turf/getLineLengthKm", "-T",
                 "case_time_limit=2", "--sandbox", kind, "--db", f"sqlite:///{db}", "--quiet")
    assert r.returncode == 0, r.stderr
    shown = json.loads(_run_cli("show", "--db", f"sqlite:///{db}", "--json", _latest_run(db)).stdout)
    m = {k: v["value"] for k, v in shown["tasks"][0]["metrics"]["overall"].items() if isinstance(v, dict) and "value" in v}
    assert m["task_pass@1"] == pytest.approx(50.0) and m["task_pass@2"] == pytest.approx(100.0)
    # per task, cases averaged over epochs: geolib (3 + 2) / 2 of 3, turf (4 + 0) / 2 of 4
    assert m["case_accuracy"] == pytest.approx(100 * (2.5 + 2) / 7)
    assert m["case_accuracy.boolean"] == pytest.approx(100 * 2.5 / 3)
    assert m["case_accuracy_upstream.boolean"] == pytest.approx(100.0)  # bug A
    # epoch accuracies 1 and 0: sigma / mu = 0.5 / 0.5; no task has the same outcome in both epochs
    assert m["stability_cv"] == pytest.approx(1.0) and m["stability_consistency"] == 0.0
    # failed cases per task averaged over epochs: 0.5 wrong output (geolib), 2 timeouts (turf)
    assert m["error_share.timeout"] == pytest.approx(80.0) and m["error_share.wrong_output"] == pytest.approx(20.0)
    assert m["peak_rss_mb"] > 10 and m["exec_ms_median"] >= 0


async def test_jsts_runs_in_node_with_upstreams_geometry_conversion(backend, tmp_path):
    """A hand-written jsts_code folder (ours): a returned JSTS geometry becomes {type, coordinates: [[x, y], ...]}."""
    folder = tmp_path / "jsts_code"
    for sub in ("test_instructions", "standard_code", "ref_answer"):
        (folder / sub).mkdir(parents=True)
    (folder / "test_instructions" / "makeLine.txt").write_text("function makeLine(coords) {\n}")
    (folder / "standard_code" / "makeLine.txt").write_text(
        "function makeLine(coords) {\n  const f = new jsts.geom.GeometryFactory();\n"
        "  return f.createLineString(coords.map(([x, y]) => new jsts.geom.Coordinate(x, y)));\n}")
    (folder / "config.yaml").write_text("makeLine:\n  - params:\n      coords: [[0, 0], [1, 2], [3, 1]]\n"
                                        "    out_type: Object\n    expected_answer: makeLine_case1\n")
    (folder / "ref_answer" / "makeLine_case1.json").write_text(
        json.dumps({"type": "LineString", "coordinates": [[0, 0], [1, 2], [3, 1]]}))
    task = _task()
    (s,) = _samples(task, folder).values()
    sc = await _score(task, s, task.reference_answer(TaskState(s, 0)), backend)
    assert sc.value == 1.0 and sc.values["task_pass_upstream"] == 1.0, sc.explanation
