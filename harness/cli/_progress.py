from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn, \
    TimeRemainingColumn


class Progress:
    """One bar per task, with correct/errored counts; silent when output is not a terminal."""

    def __init__(self, enabled: bool):
        self.console = Console(stderr=True)
        self.enabled = enabled
        self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                 console=self.console, disable=not enabled)
        self._ids: dict[str, int] = {}
        self._counts: dict[str, list[int]] = {}

    def __enter__(self):
        self._bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self._bar.__exit__(*exc)

    def task_started(self, p) -> None:
        self._counts[p.label] = [0, 0, 0]
        self._ids[p.label] = self._bar.add_task(p.label, total=p.total, completed=p.already_done, status="")

    def sample_done(self, label: str, result) -> None:
        c = self._counts[label]
        c[0] += 1
        if result.row["status"] == "error":
            c[2] += 1
        elif result.row.get("score"):
            c[1] += result.row["score"]
        status = f"score {c[1] / max(1, c[0] - c[2]):.1%}" + (f" · [red]{c[2]} errored[/]" if c[2] else "")
        self._bar.update(self._ids[label], advance=1, status=status)
