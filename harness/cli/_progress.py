from __future__ import annotations

import os
import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn, \
    TimeRemainingColumn

LINE_INTERVAL_S = 30.0  # between progress lines when stderr is not a terminal ($HARNESS_PROGRESS_INTERVAL)


class Progress:
    """One bar per task, with correct/errored counts, on a terminal; elsewhere (a pipe, nohup, CI, a Slurm
    log) a plain line per task at intervals: done/total, rate, errors, ETA. mode: "bar", "lines" or "off"."""

    def __init__(self, mode: str):
        self.console = Console(stderr=True)
        self.mode = mode
        self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                 console=self.console, disable=mode != "bar")
        self._ids: dict[str, int] = {}
        self._counts: dict[str, list[float]] = {}
        self._tasks: dict[str, dict] = {}
        try:
            self.interval = float(os.environ.get("HARNESS_PROGRESS_INTERVAL", LINE_INTERVAL_S))
        except ValueError:
            self.interval = LINE_INTERVAL_S

    def __enter__(self):
        self._bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self._bar.__exit__(*exc)

    def task_started(self, p) -> None:
        self._counts[p.label] = [0, 0, 0]
        self._ids[p.label] = self._bar.add_task(p.label, total=p.total, completed=p.already_done, status="")
        now = time.monotonic()
        self._tasks[p.label] = {"total": p.total, "before": p.already_done, "start": now, "last": now}
        if self.mode == "lines":
            self._line(p.label, final=False)

    def sample_done(self, label: str, result) -> None:
        c = self._counts[label]
        c[0] += 1
        if result.row["status"] == "error":
            c[2] += 1
        elif result.row.get("score"):
            c[1] += result.row["score"]
        if self.mode == "bar":
            status = f"score {c[1] / max(1, c[0] - c[2]):.1%}" + (f" · [red]{c[2]} errored[/]" if c[2] else "")
            self._bar.update(self._ids[label], advance=1, status=status)
        elif self.mode == "lines":
            t = self._tasks[label]
            finished = t["total"] is not None and t["before"] + c[0] >= t["total"]
            if finished or time.monotonic() - t["last"] >= self.interval:
                self._line(label, final=finished)

    def _line(self, label: str, *, final: bool) -> None:
        t, (done, correct, errors) = self._tasks[label], self._counts[label]
        now = time.monotonic()
        t["last"] = now
        elapsed = now - t["start"]
        rate = done / elapsed if elapsed > 0 else 0.0
        total = t["total"]
        have = t["before"] + done
        parts = [f"{have}/{total if total is not None else '?'}"]
        if total:
            parts[0] += f" ({100 * have / total:.0f}%)"
        if done:
            parts.append(f"{rate:.1f} samples/s")
        parts.append(f"{int(errors)} errored")
        if done - errors > 0:
            parts.append(f"score {100 * correct / (done - errors):.1f}%")
        if final:
            parts.append(f"done in {_duration(elapsed)}")
        elif total and rate > 0:
            parts.append(f"ETA {_duration((total - have) / rate)}")
        print(f"[progress] {label}: " + " · ".join(parts), file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
