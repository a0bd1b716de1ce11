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


def task(name: str, *, variants: dict[str, dict[str, Any]] | None = None):
    """Register a task factory under `name`; `variants` name argument sets (e.g. {"hint": {"hint": True}})."""

    def register(factory: Callable[..., Task]) -> Callable[..., Task]:
        _TASKS[name] = TaskEntry(name, factory, variants or {})
        return factory

    return register


_loaded_groups: set[str] = set()


def load_entry_points(group: str) -> None:
    """Import, once per process, every module an installed package names in entry-point `group`: importing it
    runs its registry decorators (@task, @modelapi, @sandbox_backend). A plugin that fails to import is a
    one-line error naming it, not a traceback from inside the registry."""
    if group in _loaded_groups:
        return
    from importlib.metadata import entry_points

    for ep in entry_points(group=group):
        try:
            ep.load()
        except Exception as e:  # noqa: BLE001 - any failure of a third-party import, reported as one line
            dist = f" (package {ep.dist.name})" if ep.dist is not None else ""
            raise UsageError(f"entry point {ep.name} = {ep.value} in group {group}{dist} failed to load: "
                             f"{type(e).__name__}: {e}; fix or uninstall that package") from None
    _loaded_groups.add(group)  # after the loop: a broken plugin fails every lookup, not only the first


def task_names() -> list[str]:
    load_entry_points(ENTRY_POINT_GROUP)
    return sorted(_TASKS)


def get_task(name: str) -> TaskEntry:
    """A registered task, or one defined in a local file: `path/to/tasks.py` (its only task) or `path/to/tasks.py:name`."""
    load_entry_points(ENTRY_POINT_GROUP)
    if ".py" in name and name not in _TASKS:
        return _task_from_file(name)
    if name not in _TASKS:
        raise UsageError(f"unknown task {name!r}{_suggest(name, _TASKS)}; `harness tasks` lists them")
    return _TASKS[name]


def _task_from_file(spec: str) -> TaskEntry:
    import importlib.util
    from pathlib import Path

    file, _, which = spec.partition(".py:")
    path = Path(file if file.endswith(".py") else file + ".py")
    if not path.is_file():
        raise UsageError(f"task file {path} does not exist")
    before = set(_TASKS)
    module_spec = importlib.util.spec_from_file_location(f"harness_user_tasks.{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)  # the user's own task file, run as the user asked
    defined = sorted(set(_TASKS) - before)
    if which:
        if which not in defined:
            raise UsageError(f"{path} defines no task {which!r}; it defines: {', '.join(defined) or 'none'}")
        entry = _TASKS[which]
    elif len(defined) == 1:
        entry = _TASKS[defined[0]]
    else:
        raise UsageError(f"{path} defines {len(defined)} tasks; name one as {path}:NAME ({', '.join(defined)})")
    _TASKS[spec] = entry  # so the run's stored task name rebuilds it
    return entry


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
