"""Running one task's function on all its cases in the sandbox (driver.py around runner.js) and reading the
driver's report. The verdicts are computed by the caller (compare.py), outside the sandbox."""
from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from harness import InfraError
from harness.tasks.geojseval import driver, libs

DRIVER_SOURCE = (Path(__file__).parent / "driver.py").read_text()
RUNNER_SOURCE = (Path(__file__).parent / "runner.js").read_text()
BROWSER_RUNNER_SOURCE = (Path(__file__).parent / "browser_runner.js").read_text()
CHROMIUM = "/usr/lib/chromium/chromium"  # Debian's binary (/usr/bin/chromium is a wrapper script that prints noise)
BROWSER_BUILD_LIMIT_S = 60.0  # Chromium's start and the page with its library, then the arguments
GRACE_S = 1.0  # the driver's deadline for a case: its limit plus this
BUILD_LIMIT_S = 30.0  # libraries + the cases' !js factories (trusted data, run before the model's code)
REPORT_MAX = 32 << 20  # the most a test process may send (results included); past it the run is tampered
OUTPUT_HEAD = 2000  # characters kept of what a case printed, per stream
OUTPUT_CAP = 1 << 20  # bytes of a process's stdout and stderr kept to attribute to cases (counted beyond)


class ReportError(Exception):
    """The driver's report is missing, duplicated or malformed: the program interfered with the test."""


# upstream's leaflet.html and openlayers.html, with the libraries local: the map fills the 800x600 viewport,
# with an OpenStreetMap tile layer as upstream (its tile requests are aborted like every other request).
_PAGE = ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><link rel=\"stylesheet\" href=\"/lib.css\">"
         "<script src=\"/lib.js\"></script><style>html,body{{margin:0;height:100%}}#map{{width:800px;height:600px}}"
         "</style></head><body><div id=\"map\"></div><script>(function () {{ {init} "
         "window.getMapInstance = function () {{ return map; }}; }})();</script></body></html>")
PAGES = {
    "leaflet": _PAGE.format(init="var map = L.map('map').setView([30.5459, 114.3535], 12); "
                                 "L.tileLayer('https://{s}.tile.openstreetmap.org/{z}/{x}/{y}.png').addTo(map);"),
    "openlayers": _PAGE.format(init="var map = new ol.Map({target: 'map', layers: [new ol.layer.Tile({source: "
                                    "new ol.source.OSM()})], view: new ol.View({center: ol.proj.fromLonLat("
                                    "[114.3535, 30.5459]), zoom: 15, resolutions: [256, 128, 64, 32, 16, 8, 4, 2, 1]})});"),
}


def _parse(stdout: str, nonce: str, n: int) -> dict[str, Any]:
    frames = [line for line in stdout.splitlines() if line.startswith(nonce + " ")]
    if len(frames) != 1:
        raise ReportError(f"{len(frames)} report frames")
    try:
        report = json.loads(frames[0][len(nonce) + 1:])
        if report.get("version") == driver.VERSION and isinstance(report.get("unavailable"), str):
            raise InfraError(report["unavailable"])
        if report.get("version") != driver.VERSION or len(report["cases"]) != n:
            raise ReportError("report does not match the request")
        return report
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ReportError(f"malformed report: {type(e).__name__}") from None


async def run_cases(sandbox: Any, code: str, function: str, cases: list[dict[str, Any]], *, limit_s: float,
                    heap_mb: int, jsts_geometry: bool, fresh: bool = False, visual: str | None = None) -> dict[str, Any]:
    """cases: [{index, params: [[key, value], ...], eval_methods?}]; `visual`: "leaflet" or "openlayers" for the
    browser runner. Returns the driver's report (one record per case, in order)."""
    try:
        if visual is None:
            sources, runner, build_s, browser = libs.bundles(), RUNNER_SOURCE, BUILD_LIMIT_S, None
        else:
            sources, runner, build_s = libs.browser_bundle(visual), BROWSER_RUNNER_SOURCE, BROWSER_BUILD_LIMIT_S
            browser = {"chromium": CHROMIUM, "page": PAGES[visual], "files": libs.puppeteer_files(),
                       "min_address_mb": 128 << 10}
    except (libs.LibraryError, OSError) as e:
        raise InfraError(f"GeoJSEval's JavaScript libraries: {e}") from e
    nonce = secrets.token_hex(16)
    payload = {"nonce": nonce, "marker": secrets.token_hex(8), "output_cap": OUTPUT_CAP, "node": "node", "runner": runner, "libs": sources, "code": code,
               "function": function, "jsts_geometry": jsts_geometry, "heap_mb": heap_mb,
               "cases": [{**c, "limit_s": limit_s} for c in cases], "build_limit_s": build_s,
               "load_limit_s": limit_s, "grace_s": GRACE_S, "report_max": REPORT_MAX, "output_head": OUTPUT_HEAD}
    if browser is not None:
        payload["browser"] = browser
    # every case may time out and each restart rebuilds the libraries and arguments (and restarts Chromium)
    timeout = (limit_s + GRACE_S + 2.0) * (len(cases) + 1) + build_s * (1 if browser is None else len(cases) + 1) + 10.0
    try:
        async with sandbox.acquire(fresh=fresh) as sb:
            res = await sb.exec(["python3", "-c", DRIVER_SOURCE], input=json.dumps(payload), timeout_s=timeout,
                                output_bytes=2 * REPORT_MAX + (4 << 20))
    except Exception as e:  # the sandbox itself failed: not the model's doing
        raise InfraError(f"sandbox failed: {type(e).__name__}: {e}") from e
    try:
        return _parse(res.stdout, nonce, len(cases))
    except ReportError as e:
        raise ReportError(f"{e} (exit {res.returncode}, timed out {res.timed_out}, output truncated "
                          f"{res.truncated}, OOM {res.oom_killed}; stderr: {res.stderr[-300:]!r})") from None
