"""The harness's EvalPlus verdicts and wall time against the official `evalplus.evaluate` 0.3.1, on a
realistic mix of programs, the same files and the same machine.

For every problem of the release files given (`--humaneval`, `--mbpp`; default the bundled first-20
files, unchanged for the full 164 / 378) the mix (bench/_evalplus_mix.py) holds the canonical solution,
`--mutants` mechanical mutants of it and model-shaped variants (a draft and its correction in both
orders, hoisted module constants, a generator helper, the result in a standard-library container
(UserList, Fraction, ...), a guarded definition, the `typing` import removed,
an infinite loop on some inputs, heavy printing): the same number n per problem, written as ONE EvalPlus
samples file per dataset ({task_id, solution}, n rows per task) and a side file with each row's kind.
Both tools score that file: evalplus reads it, the harness replays it (`--model replay:FILE --epochs n`).
This comparison assumes that replay runs an EvalPlus row's `solution` verbatim, as upstream does; a
harness answer that differs from the row's program is reported as "harness sanitizes".

Each side runs cold (empty ground-truth cache) and warm (the cache its cold run filled), `--repeats`
times, interleaved (the first tool alternates between repeats); every run is a whole process timed
from outside; figures are medians. The official evaluator runs in its own virtual environment
(`--venv`, default /tmp/evalplus-venv, `pip install evalplus==0.3.1`), pointed at the files with
HUMANEVAL_OVERRIDE_PATH / MBPP_OVERRIDE_PATH, with `--min-time-limit 4` (the harness's default; 0.3.1
defaults to 1 s) and `--parallel` at the cores. Its ground truth lives under $XDG_CACHE_HOME/evalplus,
the harness's under $XDG_CACHE_HOME/harness/evalplus: each run gets its own XDG_CACHE_HOME.

Verdicts are compared per sample (task, row): base, and plus (= base and plus pass, as both report
it), overall and per kind, and every disagreement is listed with a first classification. Report:
`--out` (default bench/results/evalplus_vs_official) .json and .md.

    .venv/bin/python bench/evalplus_vs_official.py --sandbox bwrap --repeats 3
"""
from __future__ import annotations

import argparse
import collections
import gzip
import json
import os
import platform
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _evalplus_mix as mix  # noqa: E402

DATA = ROOT / "tasks" / "evalplus" / "data"
SETS = {  # evalplus dataset -> (harness task, default data file, override variable)
    "humaneval": ("evalplus/humaneval_plus", DATA / "HumanEvalPlus-v0.1.10.first20.jsonl.gz", "HUMANEVAL_OVERRIDE_PATH"),
    "mbpp": ("evalplus/mbpp_plus", DATA / "MbppPlus-v0.2.0.first20.jsonl.gz", "MBPP_OVERRIDE_PATH"),
}
TOOLS = ("official", "harness")
Verdict = dict  # {"base": bool, "plus": bool, ...details}


def ensure_evalplus(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if subprocess.run([str(python), "-c", "import evalplus.evaluate"], capture_output=True).returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "-q", "evalplus==0.3.1"], check=True)
    return python


def read_release(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            records = [json.loads(line) for line in fh if line.strip()]
    except (OSError, json.JSONDecodeError) as e:
        raise SystemExit(f"{path}: not an EvalPlus release file ({e}); give the .jsonl.gz of HumanEval+ or MBPP+")
    if not records or not all({"task_id", "prompt", "canonical_solution", "entry_point"} <= r.keys() for r in records):
        raise SystemExit(f"{path}: records lack task_id/prompt/canonical_solution/entry_point; give an EvalPlus release file")
    return records


def write_mix(records: list[dict], samples: Path, kinds: Path, n_mutants: int, seed: int,
              exclude: frozenset[str] = frozenset()) -> int:
    """The samples file (n rows per task, in order) and its side file of kinds; returns n. Programs of an
    `exclude`d kind are left out, and every problem keeps as many programs as the one left with fewest."""
    chosen = [[(kind, src) for kind, src in mix.programs(rec, n_mutants, seed) if kind not in exclude]
              for rec in records]
    n = min((len(progs) for progs in chosen), default=0)
    with open(samples, "w") as s, open(kinds, "w") as k:
        for rec, progs in zip(records, chosen):
            for i, (kind, src) in enumerate(progs[:n]):
                s.write(json.dumps({"task_id": rec["task_id"], "solution": src}) + "\n")
                k.write(json.dumps({"task_id": rec["task_id"], "index": i, "kind": kind}) + "\n")
    return n


def timed(cmd: list[str], env: dict[str, str], log: Path) -> float:
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        r = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}\n{log.read_text()[-3000:]}")
    return wall


def run_official(python: Path, dataset: str, data: Path, samples: Path, cache: Path, parallel: int,
                 log: Path) -> tuple[float, dict[tuple[str, int], Verdict]]:
    var = SETS[dataset][2]
    result = samples.with_name(samples.stem + "_eval_results.json")
    result.unlink(missing_ok=True)  # else evalplus loads it instead of evaluating
    env = {**os.environ, var: str(data), "XDG_CACHE_HOME": str(cache)}
    wall = timed([str(python), "-m", "evalplus.evaluate", "--dataset", dataset, "--samples", str(samples),
                  "--parallel", str(parallel), "--min-time-limit", "4"], env, log)
    verdicts = {}
    for tid, rows in json.loads(result.read_text())["eval"].items():
        for i, r in enumerate(rows):  # evalplus sorts each task's rows by completion id: file order
            verdicts[(tid, i)] = {"base": r["base_status"] == "pass",
                                  "plus": r["base_status"] == "pass" and r["plus_status"] == "pass",
                                  "base_status": r["base_status"], "plus_status": r["plus_status"],
                                  "base_fail": str(r["base_fail_tests"])[:200], "plus_fail": str(r["plus_fail_tests"])[:200]}
    return wall, verdicts


def run_harness(dataset: str, data: Path, samples: Path, n: int, cache: Path, db: Path, sandbox: str,
                log: Path) -> tuple[float, dict[tuple[str, int], Verdict]]:
    db.unlink(missing_ok=True)
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    wall = timed([str(ROOT / ".venv" / "bin" / "harness"), "eval", "--model", f"replay:{samples}",
                  "--task", SETS[dataset][0], "--data", str(data), "--sandbox", sandbox, "--epochs", str(n),
                  "--db", f"sqlite:///{db}", "--json"], env, log)
    verdicts = {}
    with sqlite3.connect(db) as con:
        rows = con.execute("select sample_id, epoch, status, scores, answer, error_category, explanation, "
                           "metadata, error from samples").fetchall()
    for sid, epoch, status, scores, answer, category, explanation, meta, error in rows:
        s = json.loads(scores) if status == "scored" and scores else {}
        meta = json.loads(meta) if meta else {}
        skipped = {p: v["skipped_inputs"] for p, v in meta.items() if isinstance(v, dict) and v.get("skipped_inputs")}
        got = " ".join(str(v.get("got", "")) for v in meta.values() if isinstance(v, dict))
        verdicts[(sid, epoch)] = {"base": s.get("base") == 1.0, "plus": s.get("plus") == 1.0, "status": status,
                                  "category": category, "explanation": (explanation or error or "")[:300],
                                  "answer": answer, "skipped": skipped, "opaque": bool(re.search(r"<[\w.]+ object>", got))}
    return wall, verdicts


def classify(dataset: str, tid: str, kind: str, solution: str, off: Verdict, har: Verdict | None) -> str:
    """A first diagnosis of one disagreement, most specific rule first."""
    if har is None:
        return "harness has no verdict (sample missing)"
    if har["status"] != "scored":
        return f"harness infrastructure error: {har['explanation'][:80]}"
    harness_better = (har["base"], har["plus"]) > (off["base"], off["plus"])
    if tid == "HumanEval/32" and harness_better:
        return "evalplus HumanEval/32 upstream bug (its loop skips the progress counter)"
    if tid == "Mbpp/392" and harness_better:
        return "evalplus Mbpp/392 upstream (worker past 4 GiB after Mbpp/255)"
    if har["answer"] is not None and har["answer"].strip() != solution.strip():
        return "harness sanitizes (answer differs from the row's program)"
    if har["skipped"]:
        return "harness skipped inputs (canonical timeout)"
    if "timeout" in (off["base_status"], off["plus_status"]) or har["category"] == "timeout":
        if har["category"] == "load_error" or "load" in har["explanation"]:
            return "timeout on load"
        return "timeout (" + ("evalplus timed out" if "timeout" in (off["base_status"], off["plus_status"])
                              else "harness timed out") + ")"
    if kind == "variant:typing_removed" and harness_better:
        return "from __future__ annotations leak (typing names unbound, harness passes)"
    if (har["opaque"] or kind == "variant:stdlib_return") and not harness_better:
        return "non-builtin return value opaque in harness"
    if har["category"] == "load_error" and not harness_better:
        return "harness load error"
    return "unknown"


def excluded_kinds(args: argparse.Namespace) -> frozenset[str]:
    return frozenset(k.strip() for k in args.exclude_kinds.split(",") if k.strip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--humaneval", type=Path, default=SETS["humaneval"][1], help="HumanEval+ release file")
    ap.add_argument("--mbpp", type=Path, default=SETS["mbpp"][1], help="MBPP+ release file")
    ap.add_argument("--datasets", default="humaneval,mbpp", help="comma-separated: humaneval, mbpp")
    ap.add_argument("--sandbox", default="docker", help="the harness's sandbox (docker, bwrap)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--mutants", type=int, default=4, help="mutants per problem")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--parallel", type=int, default=os.cpu_count() or 1, help="evalplus workers (default: the cores)")
    ap.add_argument("--venv", type=Path, default=Path("/tmp/evalplus-venv"))
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "evalplus_vs_official",
                    help="report path without suffix (.json and .md are written)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (samples, logs, databases)")
    ap.add_argument("--exclude-kinds", default="",
                    help="comma-separated program kinds to leave out of the mix (e.g. variant:infinite_loop)")
    args = ap.parse_args()
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    if unknown := [d for d in datasets if d not in SETS]:
        raise SystemExit(f"--datasets: unknown {', '.join(unknown)}; use a comma-separated list of {', '.join(SETS)}")
    exclude = excluded_kinds(args)
    if unknown := sorted(k for k in exclude if k.split(":")[-1] not in mix.VARIANTS and k != "canonical"
                         and not k.startswith("mutant:")):
        raise SystemExit(f"--exclude-kinds: unknown {', '.join(unknown)}; kinds are canonical, mutant:<op> and "
                         f"variant:<name> with name one of {', '.join(mix.VARIANTS)}")
    if args.repeats < 1 or args.mutants < 0:
        raise SystemExit("--repeats must be at least 1 and --mutants at least 0")
    data = {"humaneval": args.humaneval.resolve(), "mbpp": args.mbpp.resolve()}
    python = ensure_evalplus(args.venv)
    work = Path(tempfile.mkdtemp(prefix="evalplus-bench-"))
    print(f"work folder: {work}", flush=True)

    records, kinds, solutions, n = {}, {}, {}, {}
    for d in datasets:
        records[d] = {r["task_id"]: r for r in read_release(data[d])}
        n[d] = write_mix(list(records[d].values()), work / f"{d}_samples.jsonl", work / f"{d}_kinds.jsonl",
                         args.mutants, args.seed, exclude)
        rows = [json.loads(line) for line in open(work / f"{d}_kinds.jsonl")]
        kinds[d] = {(r["task_id"], r["index"]): r["kind"] for r in rows}
        programs = [json.loads(line)["solution"] for line in open(work / f"{d}_samples.jsonl")]
        solutions[d] = dict(zip([(r["task_id"], r["index"]) for r in rows], programs))
        print(f"{d}: {len(records[d])} problems x {n[d]} programs = {len(rows)} samples", flush=True)

    times: dict[str, list[float]] = collections.defaultdict(list)
    runs = []  # (dataset, temp, rep, official verdicts, harness verdicts)
    loads = []
    try:
        for rep in range(args.repeats):
            order = TOOLS if rep % 2 == 0 else TOOLS[::-1]
            for d in datasets:
                samples = work / f"{d}_samples.jsonl"
                caches = {t: work / f"cache-{t}-{d}-{rep}" for t in TOOLS}
                for temp in ("cold", "warm"):
                    if temp == "cold":
                        for c in caches.values():
                            shutil.rmtree(c, ignore_errors=True)
                    got = {}
                    for tool in order:
                        loads.append(os.getloadavg()[0])
                        log = work / f"{tool}-{d}-{temp}-{rep}.log"
                        if tool == "official":
                            got[tool] = run_official(python, d, data[d], samples, caches[tool], args.parallel, log)
                        else:
                            got[tool] = run_harness(d, data[d], samples, n[d], caches[tool], work / f"h-{d}.db",
                                                    args.sandbox, log)
                        times[f"{d}/{temp}/{tool}"].append(got[tool][0])
                    runs.append((d, temp, rep, got["official"][1], got["harness"][1]))
                    agree = sum(got["official"][1][k]["plus"] == got["harness"][1].get(k, {}).get("plus")
                                for k in got["official"][1])
                    print(f"{d:9s} {temp} rep {rep}: evalplus {got['official'][0]:7.2f} s  harness "
                          f"{got['harness'][0]:7.2f} s  plus verdicts agree {agree}/{len(got['official'][1])}",
                          flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    report = summarize(args, datasets, data, n, kinds, records, solutions, times, runs, loads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    print(f"report: {args.out.with_suffix('.json')} and .md")


def summarize(args, datasets, data, n, kinds, records, solutions, times, runs, loads) -> dict:
    med = {k: statistics.median(v) for k, v in times.items()}
    wall = {}
    for d in datasets:
        for temp in ("cold", "warm"):
            off, har = med[f"{d}/{temp}/official"], med[f"{d}/{temp}/harness"]
            wall[f"{d}/{temp}"] = {"evalplus_s": round(off, 2), "harness_s": round(har, 2), "ratio": round(har / off, 3),
                                   "runs_evalplus": [round(x, 2) for x in times[f"{d}/{temp}/official"]],
                                   "runs_harness": [round(x, 2) for x in times[f"{d}/{temp}/harness"]]}
    for temp in ("cold", "warm"):
        off = sum(med[f"{d}/{temp}/official"] for d in datasets)
        har = sum(med[f"{d}/{temp}/harness"] for d in datasets)
        wall[f"all/{temp}"] = {"evalplus_s": round(off, 2), "harness_s": round(har, 2), "ratio": round(har / off, 3)}

    # agreement pooled over every run; disagreements listed once per sample with the runs they appear in
    agree: dict = collections.defaultdict(lambda: {"samples": 0, "base_agree": 0, "plus_agree": 0,
                                                   "evalplus_plus_pass": 0, "harness_plus_pass": 0})
    diffs: dict = {}
    for d, temp, rep, off, har in runs:
        for key, o in off.items():
            h = har.get(key)
            kind = kinds[d][key]
            for bucket in (f"{d}/all", f"{d}/{kind}", f"all/{kind.split(':')[0]}", "all/all"):
                a = agree[bucket]
                a["samples"] += 1
                a["base_agree"] += h is not None and o["base"] == h["base"]
                a["plus_agree"] += h is not None and o["plus"] == h["plus"]
                a["evalplus_plus_pass"] += o["plus"]
                a["harness_plus_pass"] += bool(h and h["plus"])
            if h is None or (o["base"], o["plus"]) != (h["base"], h["plus"]):
                solution = solutions[d][key]
                entry = diffs.setdefault((d, *key), {
                    "dataset": d, "task_id": key[0], "index": key[1], "kind": kind,
                    "evalplus": {"base": o["base_status"], "plus": o["plus_status"], "base_fail": o["base_fail"],
                                 "plus_fail": o["plus_fail"]},
                    "harness": None if h is None else {"base": h["base"], "plus": h["plus"], "category": h["category"],
                                                       "explanation": h["explanation"], "skipped": h["skipped"]},
                    "classification": classify(d, key[0], kind, solution, o, h),
                    "runs": [], "solution": solution})
                entry["runs"].append(f"{temp}/{rep}")
    for a in agree.values():
        a["base_rate"] = round(a["base_agree"] / a["samples"], 4)
        a["plus_rate"] = round(a["plus_agree"] / a["samples"], 4)
    harness_commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                    text=True).stdout.strip()
    # the reports this bench writes do not make the measured code dirty
    dirty = bool(subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", ".", ":!bench/results"],
                                capture_output=True, text=True).stdout.strip())
    return {
        "config": {"sandbox": args.sandbox, "repeats": args.repeats, "mutants": args.mutants, "seed": args.seed,
                   "evalplus_parallel": args.parallel, "min_time_limit": 4, "data": {d: str(data[d]) for d in datasets},
                   "programs_per_problem": n, "excluded_kinds": sorted(excluded_kinds(args)), "problems": {d: len(records[d]) for d in datasets},
                   "kinds": {d: dict(collections.Counter(kinds[d].values())) for d in datasets},
                   "replay_assumption": "EvalPlus {task_id, solution} rows are run verbatim by the harness"},
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_1min_at_run_starts": {"min": min(loads), "median": statistics.median(loads), "max": max(loads)},
                    "harness_commit": harness_commit + ("+dirty" if dirty else "")},
        "wall": wall,
        "agreement": dict(sorted(agree.items())),
        "disagreements": sorted(diffs.values(), key=lambda e: (e["dataset"], e["classification"], e["task_id"], e["index"])),
        "classification_counts": dict(collections.Counter(e["classification"] for e in diffs.values()).most_common()),
    }


def markdown(r: dict) -> str:
    c, m = r["config"], r["machine"]
    lines = [f"# EvalPlus: harness vs official evalplus.evaluate 0.3.1 on a mix of programs", "",
             f"Sandbox {c['sandbox']}, {c['repeats']} repeat(s) (medians), evalplus --parallel {c['evalplus_parallel']}, "
             f"--min-time-limit 4; {m['cores']} cores, 1-min load at run starts {m['load_1min_at_run_starts']['min']:.1f}"
             f"-{m['load_1min_at_run_starts']['max']:.1f} (shared machine); harness {m['harness_commit']}. "
             f"Programs per problem: {c['programs_per_problem']}; problems: {c['problems']}; left out of the mix: "
             f"{', '.join(c.get('excluded_kinds') or []) or 'nothing'}. "
             f"Assumes: {c['replay_assumption']}.", "",
             "| dataset/cache | evalplus s | harness s | ratio |", "|---|---:|---:|---:|"]
    lines += [f"| {k} | {v['evalplus_s']:.2f} | {v['harness_s']:.2f} | {v['ratio']:.2f} |" for k, v in r["wall"].items()]
    lines += ["", "Verdicts pooled over every run (cold and warm, each repeat): one per sample and run.", "",
              "| bucket | verdicts | base agree | plus agree | evalplus plus pass | harness plus pass |",
              "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {k} | {a['samples']} | {a['base_rate']:.1%} | {a['plus_rate']:.1%} | {a['evalplus_plus_pass']} | "
              f"{a['harness_plus_pass']} |" for k, a in r["agreement"].items()]
    lines += ["", f"## Disagreements ({len(r['disagreements'])} samples)", ""]
    lines += [f"- {k}: {v}" for k, v in r["classification_counts"].items()]
    lines += ["", "| dataset | task | row | kind | evalplus base/plus | harness base/plus (category) | classification | runs |",
              "|---|---|---:|---|---|---|---|---|"]
    for e in r["disagreements"]:
        h = e["harness"]
        hv = "missing" if h is None else f"{'pass' if h['base'] else 'fail'}/{'pass' if h['plus'] else 'fail'} ({h['category']})"
        lines.append(f"| {e['dataset']} | {e['task_id']} | {e['index']} | {e['kind']} | {e['evalplus']['base']}/"
                     f"{e['evalplus']['plus']} | {hv} | {e['classification']} | {len(e['runs'])} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
