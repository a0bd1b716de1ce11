"""Running programs on a problem's inputs in the sandbox: the ground truth (the canonical solution,
once per content hash, cached on disk) and the candidates (one sandbox exec per sample, both phases).

Ground-truth cache: `$XDG_CACHE_HOME/harness/evalplus/<sha256>.json.gz` (default `~/.cache/...`), one
file per problem and phase, keyed on the program, entry point, inputs, oracle mode and driver version:
the full dataset's cache is the set of its problems' files, and an edited record recomputes only itself.
Each file holds the encoded expected outputs, the canonical solution's time on every input (the time
limits derive from it) and the inputs the canonical solution itself could not run within the
sandbox's limits, with the reason: those are left out of every candidate's test, and each Score says so.
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
# recorded as unrunnable rather than stalling the run.
TRUTH_INPUT_LIMIT_S = 60.0
TRUTH_PHASE_LIMIT_S = 900.0
# The driver's own deadline for one input is the child's limit plus this (SIGALRM fires first).
GRACE_S = 1.0


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "harness" / "evalplus"


@dataclass
class Truth:
    """The expected outputs of one phase; `skipped` maps input index -> why it is not tested."""

    expected: dict[int, Any]
    times: dict[int, float]
    skipped: dict[int, str] = field(default_factory=dict)


@dataclass
class PhaseRun:
    """What a candidate did on one phase, parsed from the driver's report."""

    outputs: list[Any]  # decoded outputs in input order, up to the first input that did not return
    error: str | None  # why the run stopped early (load error, exception, timeout, kill), if it did
    error_index: int | None  # the input the error happened on; None for errors before any input


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
    except (OSError, ValueError, KeyError, EOFError):
        return None


def _store(path: Path, raw: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.{secrets.token_hex(4)}.tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as fh:
        json.dump(raw, fh)
    os.replace(tmp, path)  # atomic: concurrent runs may compute the same truth


async def run_driver(sandbox: Any, code: str, entry_point: str, phases: list[dict[str, Any]], *,
                     trusted: bool) -> dict[str, dict[str, Any]]:
    """One sandbox exec running `code` on every phase; returns the phases of the driver's report."""
    nonce = secrets.token_hex(16)
    limits = getattr(sandbox, "limits", None)
    stdout_cap = getattr(limits, "output_bytes", 1_000_000)
    exec_timeout = sum(p["deadline_s"] for p in phases) + 10.0 + 2.0 * len(phases)
    payload = {"code": code, "entry_point": entry_point, "trusted": trusted, "phases": phases, "nonce": nonce,
               "grace_s": GRACE_S, "stdout_max": max(1024, stdout_cap // 2)}
    try:
        async with sandbox.acquire() as sb:
            res = await sb.exec(["python3", "-c", DRIVER_SOURCE], input=json.dumps(payload), timeout_s=exec_timeout)
            frames = [line for line in res.stdout.splitlines() if line.startswith(nonce + " ")]
            if len(frames) != 1:
                raise ReportError(f"{len(frames)} report frames (exit {res.returncode}, timed out {res.timed_out}, "
                                  f"output truncated {res.truncated}, OOM {res.oom_killed})")
            _, kind, body = frames[0].split(" ", 2)
            if kind == "file":
                body = (await sb.read_file(body)).decode("utf-8")
            elif kind != "inline":
                raise ReportError(f"unknown report kind {kind!r}")
    except ReportError:
        raise
    except (OSError, UnicodeDecodeError) as e:
        raise ReportError(f"report unreadable: {e}") from None
    except Exception as e:  # the sandbox itself failed: not the model's doing
        raise InfraError(f"sandbox failed: {type(e).__name__}: {e}") from e
    try:
        report = json.loads(body)
        got = report["phases"]
        if report.get("version") != driver.VERSION or set(got) != {p["name"] for p in phases}:
            raise ReportError("report does not match the request")
        return got
    except (ValueError, KeyError, TypeError, RecursionError) as e:
        raise ReportError(f"malformed report: {type(e).__name__}") from None


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
                out[name] = truth
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
                await asyncio.to_thread(_store, cache_dir() / f"{keys[name]}.json.gz", raw)
                futures[keys[name]].set_result(truth)
                out[name] = truth
        return out

    async def _compute(self, sandbox: Any, code: str, entry_point: str, phases: dict[str, list],
                       not_none: bool) -> dict[str, tuple[dict[str, Any], Truth]]:
        request = [{"name": n, "inputs": [encode(x) for x in inputs], "limits": [TRUTH_INPUT_LIMIT_S] * len(inputs),
                    "deadline_s": TRUTH_PHASE_LIMIT_S} for n, inputs in phases.items()]
        t0 = time.perf_counter()
        try:
            report = await run_driver(sandbox, code, entry_point, request, trusted=True)
        except ReportError as e:
            raise InfraError(f"ground truth of {entry_point}: {e}") from None
        result = {}
        for name, inputs in phases.items():
            ph = report[name]
            if not ph["ready"]:
                raise InfraError(f"the canonical solution of {entry_point} does not load: {ph['error']}")
            expected, times, skipped = {}, {}, {}
            for status, value, elapsed, idx in ph["results"]:
                if status == "ok":
                    v = decode(value)
                    expected[idx] = v is not None if not_none else v
                    times[idx] = float(elapsed)
                else:
                    skipped[idx] = f"the canonical solution fails here in this sandbox: {status}: {value}"
            for idx in range(len(inputs)):
                if idx not in expected and idx not in skipped:
                    skipped[idx] = f"the canonical solution did not finish ({ph.get('killed') or ph['error']})"
            raw = {"expected": {i: encode(v, True) for i, v in expected.items()}, "times": times, "skipped": skipped,
                   "computed_s": time.perf_counter() - t0}
            result[name] = (raw, Truth(expected, times, skipped))
        return result


def parse_phase(ph: dict[str, Any], n_inputs: int) -> PhaseRun:
    """Outputs in order up to the first input that did not return a value."""
    outputs: list[Any] = []
    if not isinstance(ph, dict) or not isinstance(ph.get("results"), list):
        raise ReportError("malformed phase")
    if not ph.get("ready"):
        return PhaseRun([], f"the program does not load: {ph.get('error') or ph.get('killed') or 'no answer'}", None)
    for n, item in enumerate(ph["results"]):
        if not (isinstance(item, list) and len(item) == 4 and item[3] == n and n < n_inputs):
            raise ReportError("results out of order")
        status, value = item[0], item[1]
        if status != "ok":
            return PhaseRun(outputs, f"{status}: {value}", n)
        outputs.append(decode(value))
    if len(outputs) < n_inputs:
        why = ph.get("killed") or ph.get("error") or "the test process ended early"
        return PhaseRun(outputs, why if why != "input deadline" else "timeout", len(outputs))
    return PhaseRun(outputs, None, None)
