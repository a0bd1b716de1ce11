"""The model provider registry: `--model PREFIX/NAME` (or `PREFIX:NAME`, or a bare `PREFIX`) picks the factory
registered under PREFIX, by `@modelapi` here or by a package's entry point in group `harness.models`."""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Callable

from harness._registry import UsageError, load_entry_points
from harness.model._client import ModelClient

ENTRY_POINT_GROUP = "harness.models"

# factory(name, *, base_url, args, db_url) -> ModelClient: `name` is what follows the prefix ("" for a bare one),
# `args` the run's -M settings, `db_url` the run's store (for providers that answer from stored runs)
ModelFactory = Callable[..., ModelClient]


@dataclass(frozen=True)
class ModelAPI:
    prefix: str
    factory: ModelFactory
    usage: str  # how a spec is written: "openai/<model>", "replay:<path>", "mock"

    @property
    def lead(self) -> str:
        """What a spec of this provider starts with: the prefix and its separator, or the whole bare name."""
        return self.usage[:len(self.prefix) + 1] if self.takes_name else self.prefix

    @property
    def takes_name(self) -> bool:
        return self.usage != self.prefix


_APIS: dict[str, ModelAPI] = {}


def modelapi(prefix: str, *, usage: str | None = None) -> Callable[[ModelFactory], ModelFactory]:
    """Register a model provider: `@modelapi("myco")` serves `--model myco/<model>`. `usage` is how its spec is
    written when that is not PREFIX/<model>: the separator after the prefix (`replay:<path>`), or the bare
    prefix for a provider that takes no name (`mock`). The factory is called as
    factory(name, base_url=..., args=..., db_url=...) and returns a ModelClient."""
    form = usage or f"{prefix}/<model>"
    if form != prefix and (not form.startswith(prefix) or form[len(prefix)] not in "/:"):
        raise ValueError(f"usage {form!r} of model provider {prefix!r} must be {prefix!r}, {prefix}/<...> or "
                         f"{prefix}:<...>")

    def register(factory: ModelFactory) -> ModelFactory:
        _APIS[prefix] = ModelAPI(prefix, factory, form)
        return factory

    return register


def model_forms() -> list[str]:
    """Every spec form a provider is registered for, in registration order (built-ins first)."""
    load_entry_points(ENTRY_POINT_GROUP)
    return [api.usage for api in _APIS.values()]


def get_model(spec: str, *, base_url: str | None = None, args: dict[str, Any] | None = None,
              db_url: str | None = None) -> ModelClient:
    """The model client a spec names (`openai/gpt-4o-mini`, `replay:answers.jsonl`, `mock`, ...)."""
    load_entry_points(ENTRY_POINT_GROUP)
    for api in _APIS.values():
        if spec == api.prefix and not api.takes_name:
            return api.factory("", base_url=base_url, args=args or {}, db_url=db_url)
        if api.takes_name and spec.startswith(api.lead):
            name = spec[len(api.lead):]
            if not name:
                raise UsageError(f"model {spec!r} names no {api.usage[len(api.lead):]}; write {api.usage}")
            return api.factory(name, base_url=base_url, args=args or {}, db_url=db_url)
    raise UsageError(f"unknown model {spec!r}{_suggest(spec)}; use one of: {', '.join(model_forms())}")


def _suggest(spec: str) -> str:
    """The nearest spec: a misspelt bare name ("refrence") or a misspelt prefix with its name kept ("opnai/x")."""
    cut = min((i for i in (spec.find("/"), spec.find(":")) if i >= 0), default=-1)
    head, rest = (spec[:cut + 1], spec[cut + 1:]) if cut >= 0 else (spec, "")
    leads = [api.lead for api in _APIS.values()]
    close = difflib.get_close_matches(head, leads, n=1, cutoff=0.5)
    if not close:
        return ""
    fixed = close[0] + rest if close[0][-1] in "/:" else close[0]
    return f" (did you mean {fixed!r}?)"
