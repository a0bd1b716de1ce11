"""Registries by decorator: a task is rebuilt from its name, variant and arguments, which every run stores."""
from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from harness._task import Task

ENTRY_POINT_GROUP = "harness.tasks"


class UsageError(Exception):
    """Bad input from the user: the CLI prints it as one line and exits 2."""


@dataclass
class TaskEntry:
    name: str
    factory: Callable[..., Task]
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)

    def parameters(self) -> dict[str, Any]:
        return {p.name: p.default for p in inspect.signature(self.factory).parameters.values()}

    def build(self, variant: str = "default", args: dict[str, Any] | None = None) -> Task:
        if variant != "default" and variant not in self.variants:
            raise UsageError(f"task {self.name!r} has no variant {variant!r}{_suggest(variant, self.variants)}; "
                             f"variants: {', '.join(['default', *self.variants])}")
        kwargs = {**self.variants.get(variant, {}), **(args or {})}
        params = self.parameters()
        unknown = [k for k in kwargs if k not in params]
        if unknown:
            raise UsageError(f"task {self.name!r} takes no argument {unknown[0]!r}{_suggest(unknown[0], params)}; "
                             f"arguments: {', '.join(params) or 'none'}")
        built = self.factory(**{k: _coerce(v, params[k]) for k, v in kwargs.items()})
        built.variant, built.args = variant, kwargs
        return built


_TASKS: dict[str, TaskEntry] = {}
_loaded = False


def task(name: str, *, variants: dict[str, dict[str, Any]] | None = None):
    """Register a task factory under `name`; `variants` name argument sets (e.g. {"hint": {"hint": True}})."""

    def register(factory: Callable[..., Task]) -> Callable[..., Task]:
        _TASKS[name] = TaskEntry(name, factory, variants or {})
        return factory

    return register


def _load_entry_points() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ep.load()  # importing the module runs its @task decorators


def task_names() -> list[str]:
    _load_entry_points()
    return sorted(_TASKS)


def get_task(name: str) -> TaskEntry:
    _load_entry_points()
    if name not in _TASKS:
        raise UsageError(f"unknown task {name!r}{_suggest(name, _TASKS)}; `harness tasks` lists them")
    return _TASKS[name]


def _suggest(name: str, known) -> str:
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    return f" (did you mean {', '.join(map(repr, close))}?)" if close else ""


def _coerce(value: Any, default: Any) -> Any:
    """-T key=value gives strings; convert them to the type of the parameter's default."""
    if not isinstance(value, str) or isinstance(default, str) or default is None or default is inspect.Parameter.empty:
        return value
    if isinstance(default, bool):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise UsageError(f"expected true/false, got {value!r}")
    try:
        return type(default)(value)
    except (TypeError, ValueError):
        raise UsageError(f"expected a {type(default).__name__}, got {value!r}") from None
