"""GeoJSEval (Chen et al., arXiv 2507.20553; ISPRS IJGI 14(10) 382): function-level JavaScript geospatial
tasks over Turf, geolib and JSTS (and Leaflet / OpenLayers, see below), each with several test cases.

Evaluation as the published harness (LiuZQ802/GeoJSEval at 94f7a33) does it, where it is right:
- Data: one sample per function of a `<lib>_code/` folder (config.yaml, test_instructions/, standard_code/,
  ref_answer/). `--data PATH` takes a dataset root or one `<lib>_code/` folder; `--data hub` downloads the
  folders of lzq677/GeoJSEval (huggingface_hub; the layout is folders, not a table, so not `datasets`),
  without the reference screenshots. Variants per library: `geojseval@turf`, `@geolib`, `@jsts`.
- Prompts: the official system and user messages (prompts.py), temperature 0.2, max_tokens 4096.
- Extraction: `<think>` spans dropped; the last ```javascript / ```js / bare block defining the function
  (upstream: the last block, a ```js block keeping `js` as code); the function under test is the task's
  own name (upstream: the first `function NAME(` of the code, a file without one skipped).
- Execution (driver.py around runner.js, in the sandbox, network off): one Node process runs the
  function on all of a task's cases (upstream: one process per case); the libraries are Turf 7.4.0,
  geolib 3.3.14 and JSTS 2.12.1's UMD bundle as globals, pinned by the committed package-lock.json;
  `!js` factories and `callback` strings built as upstream, before the model's code loads (a factory
  that throws is the data's fault: that case is reported as invalid, never scored). Each case runs
  under `case_time_limit` s (default 10; upstream's 300 s timer cannot interrupt a running case and an
  infinite loop hangs it); a case that runs over, crashes or exits has the process group killed and
  fails, and the next cases go on in a fresh process.
- Verdicts (compare.py), computed outside the sandbox from the driver's nonce-framed report: every
  out_type by the correct rule, and upstream's rule beside it as `*_upstream` (its bugs A-C included:
  boolean and string cases pass whenever the code runs, a non-empty GeoJSON result always fails), with
  upstream's stderr rule (anything on stderr, or on stdout besides the result, fails the case there;
  the correct figures ignore what a program prints). Where upstream's extraction gives other code, it
  is run separately for the upstream figures.
- Metrics: task accuracy (a task passes when all its valid cases pass) and pass@k over `--epochs`,
  case accuracy, normal vs edge cases, case accuracy per out_type, each correct and upstream, per
  library and per function, with 95% CIs; stability over epochs (coefficient of variation of the
  per-epoch task accuracy, and the share of tasks with the same outcome in every epoch); execution
  time (median ms per case, measured in the runner around the call) and peak RSS per case; the
  distribution of error types over failed cases (syntax, reference, type, range and other runtime
  errors, timeout, crashed, wrong output, output format, missing function, no code, invalid report)
  and the share of cases that printed anything (upstream's "stderr noise" failures).

Deliberate differences from upstream, besides the fixed bugs: a function that returns a Promise fails
as output_format (upstream serialises it to {}); Node runs with --no-warnings; the per-case time
limit; a missing function counts as a failure (upstream skips the file); JSTS runs in Node with
upstream's conversion of a returned JSTS geometry (every vertex [x, y], flattened), not in Chromium.
The paper's data-type labels are not in the known schema: there is no per-data-type breakdown.

Leaflet and OpenLayers (`geojseval@leaflet`, `@openlayers`): the visual runner (browser_runner.js, driven by
the same driver) runs one headless Chromium (Debian's, through puppeteer-core, `--no-sandbox` inside the
outer sandbox) per task with one page for all its cases: upstream's page (the map in an 800x600 viewport,
an OpenStreetMap tile layer) with Leaflet 1.9.4 or OpenLayers 10.6.0 served from the pinned install, every
other request aborted and counted per case (`blocked_requests` in each case's record: tiles are never
fetched, and `eval_methods` need none). `map: true` is the page's map; each `eval_methods` expression is
evaluated on the returned value as upstream, and the object compared by the Object rule. The console of
the page is the program's output (log/info on stdout, warn/error and uncaught page errors on stderr) for
upstream's stderr rule. No screenshots (upstream saves them, never compares them). On Docker they run in
the harness-js-browser image (harness-js plus Debian's chromium); on bwrap with the host's Chromium.
Chromium reserves more than 64 GiB of address space (the V8 heap cage, PartitionAlloc's pools) and uses
a few hundred MB: these variants ask the sandbox for BROWSER_ADDRESS_MB of address space apart from
their memory (`address_space_mb`; bwrap's RLIMIT_AS) and keep a real memory limit, `heap_mb` + 2 GiB
(Docker: the container's cgroup, all processes together; bwrap: RLIMIT_DATA, what each process may
make writable), beside V8's heap limit in the page. The other variants keep the Node runner's tight
limit, so the all-library task reports a visual function as an errored sample that names the variant.
"""
from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from harness import Dataset, InfraError, Sample, Score, Task, TaskState, generate, task
from harness._dataset import _safe_samples
from harness.model._builtin import ReplayRow
from harness.scoring import CorpusMetric, Metric, MetricValue, PassAtK, bootstrap_ci, mean
from harness.tasks.geojseval import compare, data, prompts
from harness.tasks.geojseval.execution import ReportError, run_cases

CITATION = ("Chen et al., GeoJSEval: An Automated Evaluation Framework for Large Language Models on JavaScript-Based "
            "Geospatial Computation and Visualization Code Generation, arXiv 2507.20553; ISPRS IJGI 14(10) 382")
HUB = "lzq677/GeoJSEval"
HUB_FILES = ["*_code/config.yaml", "*_code/test_instructions/*", "*_code/standard_code/*", "*_code/ref_answer/*"]
NODE_LIBRARIES = ("turf", "geolib", "jsts")
BROWSER_ADDRESS_MB = 192 << 10  # Chromium's reservations (the V8 heap cage, PartitionAlloc's pools) fail below 128 GiB
ERROR_NAMES = {"SyntaxError": "syntax_error", "ReferenceError": "reference_error", "TypeError": "type_error",
               "RangeError": "range_error", "MissingFunction": "missing_function"}
CATEGORIES = ("syntax_error", "reference_error", "type_error", "range_error", "runtime_error", "timeout", "crashed",
              "wrong_output", "output_format", "missing_function", "no_code", "invalid_report")


class GeoJSEvalDataset(Dataset):
    """The hub repository is a tree of folders: downloaded as files (a mirror folder is read as is)."""

    def _hub(self, location: str, revision: str | None) -> Iterator[Sample]:
        folder = Path(location)
        if not folder.is_dir():
            from huggingface_hub import snapshot_download

            try:
                folder = Path(snapshot_download(location, repo_type="dataset", revision=revision,
                                                allow_patterns=HUB_FILES))
            except Exception as e:  # the hub client raises many types for "unreachable"
                from harness._dataset import DataError

                raise DataError(f"could not download {location} from the hub: {str(e).splitlines()[0][:200]}; "
                                f"offline, use --data PATH (a dataset root or a <lib>_code folder)") from e
        for config, record in data.read_folder(folder):
            yield from _safe_samples(self.to_samples, record, config)


def _to_samples(libraries: tuple[str, ...], browser: bool):
    def to_samples(record: dict[str, Any], config: str | None) -> Iterator[Sample]:
        library, function = record["library"], record["function"]
        if library not in libraries:
            return
        if library in data.VISUAL and not browser:
            raise ValueError(f"{library} runs in headless Chromium, which needs sandbox limits of its own: "
                             f"run it as geojseval@{library}")
        if record.get("instructions") is None:
            raise ValueError(f"test_instructions/{function}.txt is missing")
        cases = record["cases"]
        yield Sample(
            id=f"{library}/{function}",
            input=prompts.user_prompt(library, record["instructions"]),
            target=record.get("standard_code") or "",
            metadata={"library": library, "function": function, "cases": len(cases),
                      "edge_cases": sum(c.get("edge_test", False) for c in cases),
                      "invalid_cases": sum("invalid" in c for c in cases),
                      "out_types": ",".join(sorted({c.get("out_type", "?") for c in cases}))},
            files={"cases.json": json.dumps(cases)},
        )

    return to_samples


def _category(rec: dict[str, Any]) -> str:
    status = rec["status"]
    if status in ("error", "load_error"):
        return ERROR_NAMES.get(rec.get("error_name", ""), "runtime_error")
    return {"timeout": "timeout", "crashed": "crashed", "promise": "output_format", "unserialisable": "output_format",
            "tampered": "invalid_report", "not_run": "invalid_report"}.get(status, "runtime_error")


def _verdicts(cases: list[dict[str, Any]], report: list[dict[str, Any]] | None, why: tuple[str, str] | None,
              upstream: bool) -> dict[int, dict[str, Any]]:
    """Per valid case: {passed, category, detail, ms, rss_kib, noisy} (category None when passed); a case the
    data broke (a factory that throws) gets {invalid: why}. `why`: (category, detail) for every case when
    nothing ran (no code, a bad report)."""
    out: dict[int, dict[str, Any]] = {}
    for pos, case in enumerate(cases):
        if why is not None:
            out[case["index"]] = {"passed": False, "category": why[0], "detail": why[1]}
            continue
        rec = report[pos]
        if rec["status"] in ("factory_error", "infra"):
            out[case["index"]] = {"invalid": f"the case's arguments could not be built: {rec.get('error')}"}
            continue
        noisy = bool(rec.get("stdout_bytes") or rec.get("stderr_bytes"))
        v: dict[str, Any] = {"ms": rec.get("ms"), "rss_kib": rec.get("rss_kib"), "noisy": noisy}
        if "blocked_requests" in rec:  # the browser runner: requests the page tried, all aborted
            v.update(blocked_requests=rec["blocked_requests"], blocked_urls=rec.get("blocked_urls"))
        if rec["status"] != "ok":
            v.update(passed=False, category=_category(rec), detail=str(rec.get("error"))[:300])
        else:
            try:
                result = json.loads(rec["value"]).get("result", compare.MISSING)
            except (ValueError, AttributeError, RecursionError):
                v.update(passed=False, category="invalid_report", detail="an unparsable result")
                out[case["index"]] = v
                continue
            if upstream:
                ok = not noisy and compare.upstream(case["out_type"], result, case["expected"])
                detail = "" if ok else ("printed to stdout/stderr (upstream fails any output)" if noisy
                                        else "upstream's rule fails it")
                v.update(passed=ok, category=None if ok else ("stderr_noise" if noisy else "wrong_output"),
                         detail=detail)
            else:
                ok, detail = compare.correct(case["out_type"], result, case["expected"])
                fmt = detail.startswith(("not a", "not GeoJSON", "the function returned undefined"))
                v.update(passed=ok, category=None if ok else ("output_format" if fmt else "wrong_output"),
                         detail="" if ok else detail)
        out[case["index"]] = v
    return out


class GeoJSEvalScorer:
    def __init__(self, case_time_limit: float, heap_mb: int):
        self.limit, self.heap_mb = case_time_limit, heap_mb

    async def _run(self, ctx, code: str, function: str, cases: list[dict[str, Any]], library: str,
                   upstream: bool) -> dict[int, dict[str, Any]]:
        if not code.strip():
            return _verdicts(cases, None, ("no_code", "no code in the response"), upstream)
        try:
            report = await run_cases(ctx.sandbox, code, function,
                                     [{k: c[k] for k in ("index", "params", "eval_methods") if k in c} for c in cases],
                                     limit_s=self.limit, heap_mb=self.heap_mb, jsts_geometry=library == "jsts",
                                     visual=library if library in data.VISUAL else None)
        except ReportError as e:
            # Only the program under test can spoil the report (the driver is out of its reach): the model's
            # failure. A sandbox that itself fails raised InfraError instead.
            return _verdicts(cases, None, ("invalid_report", f"invalid test report: {e}"), upstream)
        return _verdicts(cases, report["cases"], None, upstream)

    async def __call__(self, state: TaskState, ctx) -> Score:
        if ctx.sandbox is None:
            raise InfraError("GeoJSEval runs model-written code: it needs a sandbox")
        meta = state.sample.metadata
        function, library = meta["function"], meta["library"]
        cases = json.loads(state.sample.files["cases.json"])
        valid = [c for c in cases if "invalid" not in c]
        code = prompts.extract(state.completion, function)
        verdicts = await self._run(ctx, code, function, valid, library, upstream=False)
        up_code = prompts.clean_upstream(state.completion)
        up_skipped = prompts.upstream_function_name(up_code) != function
        if up_skipped:  # upstream tests the config entry of the first function it finds: not this task's
            up = {c["index"]: {"passed": False, "category": "missing_function", "detail": "upstream skips it"}
                  for c in valid}
        else:
            up = await self._run(ctx, up_code, function, valid, library, upstream=True)
        invalid = {c["index"]: c["invalid"] for c in cases if "invalid" in c}
        invalid.update({i: v["invalid"] for i, v in verdicts.items() if "invalid" in v})
        scored = [c for c in valid if c["index"] not in invalid]
        return _score(scored, verdicts, up, invalid, up_skipped, code)


def _score(cases, verdicts, up, invalid, up_skipped, code) -> Score:
    values: dict[str, float] = {"cases_total": float(len(cases)), "invalid_cases": float(len(invalid)),
                                "upstream_skipped": float(up_skipped)}

    def add(key: str, x: float = 1.0) -> None:
        values[key] = values.get(key, 0.0) + x

    failed = []
    for c in cases:
        i, v, u = c["index"], verdicts[c["index"]], up[c["index"]]
        kind = "edge" if c["edge_test"] else "normal"
        add(f"{kind}_total")
        add(f"total_{c['out_type']}")
        for rule, verdict in (("", v), ("_upstream", u)):
            if verdict["passed"]:
                add(f"cases_passed{rule}")
                add(f"{kind}_passed{rule}")
                add(f"passed{rule}_{c['out_type']}")
        if not v["passed"]:
            add("cases_failed")
            add(f"err_{v['category']}")
            failed.append(f"{c['name']}: {v['category']}" + (f" ({v['detail']})" if v.get("detail") else ""))
        if v.get("noisy"):
            add("noisy_cases")
    times = [v["ms"] for v in verdicts.values() if v.get("ms") is not None]
    rss = [v["rss_kib"] for v in verdicts.values() if v.get("rss_kib")]
    if times:
        values["exec_ms_median"] = statistics.median(times)
        values["exec_ms_total"] = sum(times)
    if rss:
        values["peak_rss_mb"] = max(rss) / 1024
    passed = bool(cases) and all(verdicts[c["index"]]["passed"] for c in cases)
    values["task_pass_upstream"] = float(bool(cases) and not up_skipped and all(up[c["index"]]["passed"] for c in cases))
    first = next((verdicts[c["index"]]["category"] for c in cases if not verdicts[c["index"]]["passed"]), None)
    explanation = (f"{int(values.get('cases_passed', 0))}/{len(cases)} cases pass "
                   f"(upstream rules: {int(values.get('cases_passed_upstream', 0))})")
    if failed:
        explanation += "; " + "; ".join(failed[:5])
    if invalid:
        explanation += f"; {len(invalid)} invalid cases not scored: " + "; ".join(f"#{i + 1}: {w}" for i, w in
                                                                                sorted(invalid.items()))
    metadata = {"cases": {c["name"]: {"correct": verdicts[c["index"]], "upstream": up[c["index"]]} for c in cases},
                "invalid_cases": {str(i): w for i, w in invalid.items()}}
    if not cases:  # every case is invalid: nothing the model did can be judged
        raise InfraError(f"no valid test case: {explanation}")
    return Score(value=float(passed), values=values, answer=code, explanation=explanation,
                 error_category=None if passed else first, metadata=metadata)


def _ratio(num: str, den: str):
    import numpy as np

    def statistic(totals, n):
        if den not in totals:
            return np.nan
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(totals[den] > 0, totals.get(num, 0.0) / totals[den], np.nan)

    return statistic


@dataclass(frozen=True)
class Stability(Metric):
    """Over epochs (>= 2): `{name}_cv`, the coefficient of variation (population sigma / mean) of the per-epoch
    task accuracies, and `{name}_consistency`, the share of tasks with the same outcome in every epoch (%)."""

    def compute_named(self, per_sample: Sequence[Sequence[float]]) -> dict[str, MetricValue]:
        samples = [v for v in per_sample if v]
        epochs = min((len(v) for v in samples), default=0)
        if epochs < 2:
            return {}
        accs = [sum(v[e] for v in samples) / len(samples) for e in range(epochs)]
        mu = sum(accs) / epochs
        cv = statistics.pstdev(accs) / mu if mu else 0.0
        same = [float(len(set(v[:epochs])) == 1) for v in samples]
        low, high = bootstrap_ci(same)
        return {f"{self.name}_cv": MetricValue(cv, None, None, len(samples)),
                f"{self.name}_consistency": MetricValue(100 * sum(same) / len(same), 100 * low, 100 * high,
                                                        len(samples))}


def _metrics() -> list[Metric]:
    ms: list[Metric] = [PassAtK("task_pass", "value"), PassAtK("task_pass_upstream", "task_pass_upstream")]
    for rule in ("", "_upstream"):
        ms.append(CorpusMetric(f"case_accuracy{rule}", statistic=_ratio(f"cases_passed{rule}", "cases_total")))
        for kind in ("normal", "edge"):
            ms.append(CorpusMetric(f"{kind}_case_accuracy{rule}", statistic=_ratio(f"{kind}_passed{rule}",
                                                                                  f"{kind}_total")))
        for ot in compare.OUT_TYPES:
            ms.append(CorpusMetric(f"case_accuracy{rule}.{ot}", statistic=_ratio(f"passed{rule}_{ot}", f"total_{ot}")))
    ms.append(Stability("stability", "value"))
    for cat in CATEGORIES:
        ms.append(CorpusMetric(f"error_share.{cat}", statistic=_ratio(f"err_{cat}", "cases_failed")))
    ms.append(CorpusMetric("noisy_case_share", statistic=_ratio("noisy_cases", "cases_total")))
    ms += [mean("exec_ms_median", "exec_ms_median", scale=1.0), mean("exec_ms_total", "exec_ms_per_task", scale=1.0),
           mean("peak_rss_mb", "peak_rss_mb", scale=1.0)]
    return ms


def _read_responses(path: Path) -> Iterator[ReplayRow]:
    """upstream's response files: `<lib>/<name>_response.txt` under `path` (several run folders, e.g.
    `<model>_1/turf/...`, `<model>_2/turf/...`, replay as epochs in name order), or the harness's JSON Lines."""
    if path.is_file():
        from harness.model import read_replay_jsonl

        yield from read_replay_jsonl(path)
        return
    files = sorted(path.rglob("*_response.txt"))
    if not files:
        raise ValueError(f"no <name>_response.txt files under {path}")
    for n, f in enumerate(files, 1):
        library = f.parent.name
        if library not in data.LIBRARIES:
            raise ValueError(f"{f}: its folder must be named after its library ({', '.join(data.LIBRARIES)})")
        yield ReplayRow(f"{library}/{f.name.removesuffix('_response.txt')}", None,
                        f.read_text(encoding="utf-8", errors="replace"), "response", n)


def _reference(state: TaskState) -> str:
    return f"```javascript\n{state.sample.target}\n```"


def _invalid_summary(task: Task, facts: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    hit = [r for r in rows if (r.get("scores") or {}).get("invalid_cases")]
    if not hit:
        return []
    total = sum(int(r["scores"]["invalid_cases"]) for r in hit)
    names = sorted({r["sample_id"] for r in hit})
    return [f"{total} test cases of {len(names)} tasks were not scored, the data is broken there (a missing answer "
            f"file, an unknown out_type, a !js factory that throws): {', '.join(names[:10])}"
            f"{', ...' if len(names) > 10 else ''}; the reasons are in each sample's explanation"]


VARIANTS = {lib: {"library": lib} for lib in data.LIBRARIES}


@task("geojseval", variants=VARIANTS)
def geojseval(library: str = "", case_time_limit: float = 10.0, heap_mb: int = 1024) -> Task:
    """library: one of turf, geolib, jsts, leaflet, openlayers (default: all; Leaflet and OpenLayers only as their
    own variants). case_time_limit: seconds per test case."""
    if library and library not in data.LIBRARIES:
        raise ValueError(f"unknown library {library!r}; use one of {', '.join(data.LIBRARIES)}")
    libraries = (library,) if library else data.LIBRARIES
    browser = library in data.VISUAL
    # Node's heap plus the driver; V8 threads count against the process limit. Chromium: see the docstring,
    # and its threads (browser, renderer, network service) need more processes.
    limits = ({"memory_mb": heap_mb + 2048, "address_space_mb": BROWSER_ADDRESS_MB, "pids": 512, "timeout_s": 60}
              if browser else
              {"memory_mb": heap_mb + 1024, "pids": 128, "timeout_s": 60})
    return Task(
        name="geojseval",
        version="1.0",
        description="432 JavaScript geospatial functions (Turf, geolib, JSTS in Node; Leaflet, OpenLayers in Chromium).",
        dataset=GeoJSEvalDataset(to_samples=_to_samples(libraries, browser), hub=HUB, size=432, read_local=data.read_folder,
                                 license="Apache-2.0 (dataset card)", citation=CITATION),
        solver=generate(system=prompts.SYSTEM),
        scorers=[GeoJSEvalScorer(case_time_limit, heap_mb)],
        metrics=_metrics(),
        headline="task_pass@1",
        breakdowns=["library", "function"],
        config={"temperature": 0.2, "max_tokens": 4096},
        needs_sandbox=True,
        sandbox_image="harness-js-browser" if browser else "harness-js",
        sandbox_limits=limits,
        reference_answer=_reference,
        read_replay=_read_responses,
        on_finish=_invalid_summary,
    )
