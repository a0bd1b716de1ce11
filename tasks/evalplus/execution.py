"""Running programs on a problem's inputs in the sandbox: the ground truth (the canonical solution,
once per content hash, cached on disk) and the candidates (one sandbox exec per sample, both phases).

Ground truth is computed in a sandbox where no candidate's code has ever run: the backend's pool for
trusted code (a candidate's pooled sandbox could hold what an earlier sample left behind: shared memory,
message queues, processes, memory), and a retry in a brand-new one.
Ground-truth cache: `$XDG_CACHE_HOME/harness/evalplus/<sha256>.json.gz` (default `~/.cache/...`), one
file per problem and phase, keyed on the program, entry point, inputs, oracle mode and driver version:
the full dataset's cache is the set of its problems' files, and an edited record recomputes only itself.
Each file holds the encoded expected outputs, the canonical solution's time on every input (the time
limits derive from it) and the inputs on which the canonical solution itself raises, with the reason:
those are left out of every candidate's test, and each Score says so. An input the canonical solution
did not finish (a timeout, a kill, running out of memory) is retried once in another fresh sandbox;
if it still does not finish, it is left out of this run only, said loudly, and never cached: a
loaded machine must not decide a later run's tests.
"""
from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import InfraError
from harness.tasks.evalplus import driver
from harness.tasks.evalplus.driver import decode, encode

DRIVER_SOURCE = (Path(__file__).parent / "driver.py").read_text()
# Upstream computes the ground truth without a time limit; a canonical input slower than this is
# recorded as unfinished rather than stalling the run.
TRUTH_INPUT_LIMIT_S = 60.0
TRUTH_PHASE_LIMIT_S = 900.0
# The driver's own deadline for one input is the child's limit plus this (SIGALRM fires first).
GRACE_S = 1.0
# The most a report may hold (the driver stops reading its test process past it, and the exec's
# output is capped just above): the largest expected output of the datasets (Mbpp/255, about 1.7M
# tuples) fits; a program that prints or returns more fails.
REPORT_MAX = 96 << 20
# Canonical statuses that a kill, a timeout or memory pressure cause: retried, never cached.
TRANSIENT = ("timeout", "killed", "crashed")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "harness" / "evalplus"


@dataclass
class Truth:
    """The expected outputs of one phase; `skipped` maps input index -> why it is not tested;
    `transient` holds the skipped inputs that were not cached (they did not finish in this run)."""

    expected: dict[int, Any]
    times: dict[int, float]
    skipped: dict[int, str] = field(default_factory=dict)
    transient: set[int] = field(default_factory=set)
    # by tested input, in order: the expected output's fingerprint where `==` alone decides the input,
    # else None (filled on first use by the scorer: it depends on the task's oracle)
    fingerprints: list[str | None] | None = None


@dataclass
class PhaseRun:
    """What a candidate did on one phase, parsed from the driver's report."""

    outputs: list[Any]  # decoded outputs in input order, up to the first input that did not return
    error: str | None  # why the run stopped early (load error, exception, timeout, kill), if it did
    error_index: int | None  # the input the error happened on; None for errors before any input
    tampered: bool = False  # the program sent the driver something no test process sends


class ReportError(Exception):
    """The driver's report is missing, duplicated or malformed: the program interfered with the test."""


def _key(code: str, entry_point: str, inputs: list, dataset: str, not_none: bool) -> str:
    blob = json.dumps([driver.VERSION, dataset, entry_point, not_none, code, encode(inputs)], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _load(path: Path) -> Truth | None:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            d = json.load(fh)
        return Truth({int(k): decode(v) for k, v in d["expected"].items()}, {int(k): v for k, v in d["times"].items()},
                     {int(k): v for k, v in d["skipped"].items()})
    except (OSError, ValueError, KeyError, EOFError, TypeError):
        return None


def _store(path: Path, raw: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.{secrets.token_hex(4)}.tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as fh:
        json.dump(raw, fh)
    os.replace(tmp, path)  # atomic: concurrent runs may compute the same truth


def _parse_report(stdout: str, nonce: str, names: set[str]) -> dict[str, Any]:
    frames = [line for line in stdout.splitlines() if line.startswith(nonce + " ")]
    if len(frames) != 1:
        raise ReportError(f"{len(frames)} report frames")
    try:
        report = json.loads(frames[0][len(nonce) + 1:])
        got = report["phases"]
        if report.get("version") != driver.VERSION or set(got) != names:
            raise ReportError("report does not match the request")
        return got
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        raise ReportError(f"malformed report: {type(e).__name__}") from None


async def run_driver(sandbox: Any, code: str, entry_point: str, phases: list[dict[str, Any]], *,
                     trusted: bool, fresh: bool = False) -> dict[str, dict[str, Any]]:
    """One sandbox exec running `code` on every phase; returns the phases of the driver's report.
    trusted: the canonical solution, run in the backend's trusted pool; fresh: in a brand-new sandbox.
    A candidate's run stops at its first phase that fails by an error or a timeout (plus counts only
    with base: a program that failed base need not spend the time limit again on plus)."""
    nonce = secrets.token_hex(16)
    exec_timeout = sum(p["deadline_s"] for p in phases) + 10.0 + 2.0 * len(phases)
    payload = {"code": code, "entry_point": entry_point, "trusted": trusted, "phases": phases, "nonce": nonce,
               "grace_s": GRACE_S, "report_max": REPORT_MAX}
    try:
        async with sandbox.acquire(fresh=fresh, trusted=trusted) as sb:
            res = await sb.exec(["python3", "-I", "-c", DRIVER_SOURCE], input=json.dumps(payload),
                                timeout_s=exec_timeout, output_bytes=REPORT_MAX + (1 << 20))
    except Exception as e:  # the sandbox itself failed: not the model's doing
        raise InfraError(f"sandbox failed: {type(e).__name__}: {e}") from e
    try:
        # a report can be tens of megabytes: parsed off the event loop
        return await asyncio.to_thread(_parse_report, res.stdout, nonce, {p["name"] for p in phases})
    except ReportError as e:
        raise ReportError(f"{e} (exit {res.returncode}, timed out {res.timed_out}, output truncated "
                          f"{res.truncated}, OOM {res.oom_killed})") from None


class GroundTruth:
    """Expected outputs per (problem, phase), computed at most once per process and cached on disk."""

    def __init__(self, dataset: str):
        self.dataset = dataset
        self._pending: dict[str, asyncio.Future] = {}

    async def get(self, sandbox: Any, code: str, entry_point: str, phases: dict[str, list]) -> dict[str, Truth]:
        from harness.tasks.evalplus.oracle import MBPP_OUTPUT_NOT_NONE_TASKS

        not_none = self.dataset == "mbpp" and entry_point in MBPP_OUTPUT_NOT_NONE_TASKS
        keys = {name: _key(code, entry_point, inputs, self.dataset, not_none) for name, inputs in phases.items()}
        out: dict[str, Truth] = {}
        missing = []
        for name, key in keys.items():
            if key in self._pending:
                out[name] = await asyncio.shield(self._pending[key])
            elif (truth := await asyncio.to_thread(_load, cache_dir() / f"{key}.json.gz")) is not None:
                # held for the rest of the run, as a computed one is: every sample of the problem needs it
                if key not in self._pending:  # (another sample may have loaded it meanwhile)
                    self._pending[key] = asyncio.get_running_loop().create_future()
                    self._pending[key].set_result(truth)
                out[name] = self._pending[key].result()
            else:
                missing.append(name)
        if missing:
            futures = {keys[n]: asyncio.get_running_loop().create_future() for n in missing}
            self._pending.update(futures)
            try:
                computed = await self._compute(sandbox, code, entry_point, {n: phases[n] for n in missing}, not_none)
            except BaseException as e:
                for k, f in futures.items():
                    self._pending.pop(k, None)
                    f.set_exception(e)
                    f.exception()  # retrieved: waiters re-raise it, nobody logs it as unhandled
                raise
            for name in missing:
                raw, truth = computed[name]
                if not truth.transient:
                    await asyncio.to_thread(_store, cache_dir() / f"{keys[name]}.json.gz", raw)
                else:  # this run only: the next one computes it again
                    self._pending.pop(keys[name], None)
                futures[keys[name]].set_result(truth)
                out[name] = truth
        return out

    async def _run(self, sandbox: Any, code: str, entry_point: str, phases: dict[str, list],
                   which: dict[str, list[int]], *, fresh: bool = False) -> dict[str, dict[int, list]]:
        """The canonical solution on the inputs `which[phase]`: index -> [status, value, time]."""
        request = [{"name": n, "inputs": [encode(phases[n][i]) for i in idx], "limits": [TRUTH_INPUT_LIMIT_S] * len(idx),
                    "deadline_s": TRUTH_PHASE_LIMIT_S} for n, idx in which.items() if idx]
        if not request:
            return {}
        try:
            report = await run_driver(sandbox, code, entry_point, request, trusted=True, fresh=fresh)
        except ReportError as e:
            raise InfraError(f"ground truth of {entry_point}: {e}") from None
        got: dict[str, dict[int, list]] = {}
        for name, idx in which.items():
            if not idx:
                continue
            ph = report[name]
            if not ph["ready"]:
                raise InfraError(f"the canonical solution of {entry_point} does not load: {ph['error']}")
            got[name] = {idx[pos]: [status, value, elapsed] for status, value, elapsed, pos in ph["results"]}
            for pos, i in enumerate(idx):
                if i not in got[name]:
                    got[name][i] = ["killed", ph.get("killed") or ph.get("error") or "no answer", 0.0]
        return got

    async def _compute(self, sandbox: Any, code: str, entry_point: str, phases: dict[str, list],
                       not_none: bool) -> dict[str, tuple[dict[str, Any], Truth]]:
        t0 = time.perf_counter()
        got = await self._run(sandbox, code, entry_point, phases, {n: list(range(len(v))) for n, v in phases.items()})

        def transient(status: str, value: Any) -> bool:
            return status in TRANSIENT or (status == "error" and str(value).startswith("MemoryError"))

        retry = {n: [i for i, (s, v, _) in got[n].items() if transient(s, v)] for n in phases}
        if any(retry.values()):  # once more, in a brand-new sandbox
            for n, again in (await self._run(sandbox, code, entry_point, phases, retry, fresh=True)).items():
                got[n].update(again)
        result = {}
        for name in phases:
            expected, times, skipped, unfinished = {}, {}, {}, set()
            for idx, (status, value, elapsed) in sorted(got[name].items()):
                if status == "ok":
                    v = decode(value)
                    expected[idx] = v is not None if not_none else v
                    times[idx] = float(elapsed)
                elif transient(status, value):
                    unfinished.add(idx)
                    skipped[idx] = (f"the canonical solution did not finish this input twice ({status}: {value}); "
                                    f"not tested in this run, not cached")
                else:
                    skipped[idx] = f"the canonical solution fails here in this sandbox: {status}: {value}"
            raw = {"expected": {i: encode(v, True) for i, v in expected.items()}, "times": times,
                   "skipped": {i: why for i, why in skipped.items() if i not in unfinished},
                   "computed_s": time.perf_counter() - t0}
            result[name] = (raw, Truth(expected, times, skipped, unfinished))
        return result


def parse_phase(ph: Any, n_inputs: int) -> PhaseRun:
    """Outputs in order up to the first input that did not return a value."""
    outputs: list[Any] = []
    if not isinstance(ph, dict) or not isinstance(ph.get("results"), list):
        raise ReportError("malformed phase")
    tampered = bool(ph.get("tampered"))
    if not ph.get("ready"):
        return PhaseRun([], f"the program does not load: {ph.get('error') or ph.get('killed') or 'no answer'}", None,
                        tampered)
    for n, item in enumerate(ph["results"]):
        if not (isinstance(item, list) and len(item) == 4 and item[3] == n and n < n_inputs):
            raise ReportError("results out of order")
        status, value = item[0], item[1]
        if status != "ok":
            return PhaseRun(outputs, f"{status}: {value}", n, tampered)
        try:
            outputs.append(decode(value))
        except Exception as e:  # a forged encoding (a zero denominator, an unknown tag): never a pass
            raise ReportError(f"undecodable output for input #{n}: {type(e).__name__}") from None
    if len(outputs) < n_inputs:
        why = ph.get("killed") or ph.get("error") or "the test process ended early"
        return PhaseRun(outputs, why if why != "input deadline" else "timeout", len(outputs), tampered)
    return PhaseRun(outputs, None, None, tampered)
