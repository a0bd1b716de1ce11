"""GeoJSEval's Node runner: wall time per test case with the pooled runner (one Node process for all of a
task's cases, as the suite runs) against a fresh Node process per case (upstream's layout: one driver exec
and one `node` per case), on the hand-written fixtures' reference solutions, per sandbox backend.

    .venv/bin/python bench/geojseval_runners.py [--backend docker|bwrap ...] [--repeats 5] [--data FIXTURES]

Prints, per backend and mode, the median over repeats of the wall time of scoring every fixture task
(each task's cases in one exec, or one exec per case) divided by the number of cases. The sandboxes are
warmed first (one untimed pass), so container starts are not counted.

Then the browser runner (Leaflet, OpenLayers in headless Chromium: on Docker in the harness-js-browser image,
on bwrap with the host's Chromium) on tests/fixtures/geojseval/visual, per backend: the wall time of an exec
with one case (Chromium's start, the page with its library, one case: the runner's start-up cost, to set
against the Node runner's fresh-process figure), the time from the runner's start to the page being ready
(Chromium's start and the page, measured in the runner process: no driver or exec around it), and the wall
time per case when all of a task's cases share the page. `--no-browser` skips it.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

from harness import get_task
from harness.sandboxes import SandboxLimits, get_backend
from harness.tasks.geojseval.execution import run_cases

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "geojseval"  # hand-written fixtures
VISUAL = FIXTURES / "visual"


def _jobs(task, data: Path) -> list[tuple[str, str, list[dict]]]:
    jobs = []
    for s in task.dataset.open(str(data))[1]:
        cases = [{k: c[k] for k in ("index", "params", "eval_methods") if k in c}
                 for c in json.loads(s.files["cases.json"]) if "invalid" not in c]
        jobs.append((s.target, s.metadata["function"], cases))
    return jobs


async def _pass(backend, jobs, pooled: bool, visual: str | None = None) -> float:
    t0 = time.perf_counter()
    for code, function, cases in jobs:
        for group in ([cases] if pooled else [[c] for c in cases]):
            report = await run_cases(backend, code, function, group, limit_s=10.0, heap_mb=1024, jsts_geometry=False,
                                     visual=visual)
            assert all(r["status"] == "ok" for r in report["cases"]), report
    return time.perf_counter() - t0


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", action="append", choices=["docker", "bwrap"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--data", type=Path, default=FIXTURES)
    ap.add_argument("--no-browser", action="store_true")
    args = ap.parse_args()
    task = get_task("geojseval").build()
    jobs = _jobs(task, args.data)
    n_cases = sum(len(c) for _, _, c in jobs)
    limits = SandboxLimits(**{**SandboxLimits().to_dict(), **task.sandbox_limits})
    print(f"{len(jobs)} tasks, {n_cases} cases; median of {args.repeats} passes; sequential")
    for kind in args.backend or ["docker", "bwrap"]:
        backend = get_backend(kind, image="harness-js", limits=limits, pool_size=1)
        try:
            await _pass(backend, jobs, True)  # warm: the pool's sandbox, the library bundles in memory
            for pooled in (True, False):
                walls = [await _pass(backend, jobs, pooled) for _ in range(args.repeats)]
                per_case = statistics.median(walls) / n_cases * 1000
                print(f"{kind:6s} {'pooled (one process per task)' if pooled else 'fresh process per case':32s} "
                      f"{per_case:7.1f} ms per case  (pass: {statistics.median(walls):.2f} s)")
        finally:
            await backend.aclose()
    if not args.no_browser:
        await _browser(args.backend or ["docker", "bwrap"], args.repeats)


async def _one_case(backend, jobs, visual: str) -> tuple[float, dict[str, float]]:
    """(wall s of the exec, ms from the runner's start to Chromium launched and to the page ready, as the
    driver timed them)"""
    code, function, cases = jobs[0]
    t0 = time.perf_counter()
    report = await run_cases(backend, code, function, cases[:1], limit_s=10.0, heap_mb=1024, jsts_geometry=False,
                             visual=visual)
    assert report["cases"][0]["status"] == "ok", report
    return time.perf_counter() - t0, report["start_ms"]


async def _browser(kinds: list[str], repeats: int) -> None:
    for kind in kinds:
        for library in ("leaflet", "openlayers"):
            task = get_task("geojseval").build(args={"library": library})
            jobs = _jobs(task, VISUAL)
            n_cases = sum(len(c) for _, _, c in jobs)
            limits = SandboxLimits(**{**SandboxLimits().to_dict(), **task.sandbox_limits})
            backend = get_backend(kind, image=task.sandbox_image, limits=limits, pool_size=1)
            try:
                await _pass(backend, jobs, True, library)  # warm
                ones = [await _one_case(backend, jobs, library) for _ in range(repeats)]
                start = statistics.median(w for w, _ in ones) * 1000
                launched = statistics.median(r["chromium"] for _, r in ones)
                ready = statistics.median(r["ready"] for _, r in ones)
                walls = [await _pass(backend, jobs, True, library) for _ in range(repeats)]
                print(f"{kind:6s} {library + ' (Chromium)':32s} {start:7.1f} ms for an exec of one case (start-up: "
                      f"Chromium launched {launched:6.1f} ms, page ready {ready:6.1f} ms after the runner's start); "
                      f"{statistics.median(walls) / n_cases * 1000:7.1f} ms per case over {len(jobs)} tasks, "
                      f"{n_cases} cases, one page per task")
            finally:
                await backend.aclose()


if __name__ == "__main__":
    asyncio.run(main())
