"""Tools: what an agent may call. A `Tool` has a name, a description, a JSON schema of its arguments and an
async function; `@tool` makes one from a factory whose inner function's signature and docstring say all
of it (as Inspect's `@tool` does), with pydantic validating the arguments the model sends.

A tool's failure goes back to the model as a tool error with its class (ToolError.kind): `parsing`
(arguments that are not JSON or do not match the schema), `unknown_tool`, `timeout`, `permission`,
`file_not_found`, `output_limit`, `error` (the tool raised, or returned something that is not text).
Only what the harness can prove is not the model's (the sandbox itself failed) errors the sample.
"""
from __future__ import annotations

import contextvars
import inspect
import re
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Protocol, runtime_checkable

from harness._messages import ContentImage, ContentText, ToolInfo
from harness._types import InfraError

# what a tool's result may be: text, or content parts (an image a tool made, with text around it)
ToolResult = str | list[ContentText | ContentImage]

_SANDBOX: contextvars.ContextVar[Any] = contextvars.ContextVar("harness_agent_sandbox", default=None)


def sandbox() -> Any:
    """The sample's own sandbox, inside a tool: one per sample for its whole trajectory."""
    sb = _SANDBOX.get()
    if sb is None:
        raise InfraError("a tool asked for a sandbox, but the task has none: its Task needs needs_sandbox=True")
    return sb


class ToolFailure(Exception):
    """Raised by a tool to tell the model its call failed, and why (kind: see the module docstring).
    output: what the call produced before it failed (a timed-out command's partial output)."""

    def __init__(self, kind: str, message: str, output: str = ""):
        super().__init__(message)
        self.kind, self.output = kind, output


@runtime_checkable
class Tool(Protocol):
    """name, description and parameters (a JSON schema) are what the model is told; `parallel`: whether calls
    of one turn may run at the same time as other parallel calls."""

    name: str
    description: str
    parameters: dict[str, Any]
    parallel: bool

    async def __call__(self, **arguments: Any) -> ToolResult: ...


@dataclass
class FunctionTool:
    """A Tool made from an async function by `@tool`: its arguments are validated against its signature."""

    name: str
    description: str
    parameters: dict[str, Any]
    parallel: bool
    function: Callable[..., Awaitable[Any]]
    validator: Any  # a pydantic model of the arguments

    async def __call__(self, **arguments: Any) -> Any:
        from pydantic import ValidationError

        try:
            checked = self.validator.model_validate(arguments)
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'arguments'}: {err['msg']}" for err in e.errors())
            raise ToolFailure("parsing", f"the arguments do not match {self.name}'s parameters: {problems}") from None
        values = {k: getattr(checked, k) for k in type(checked).model_fields}
        return await self.function(**values)


def info(tool: Tool) -> ToolInfo:
    return ToolInfo(name=tool.name, description=tool.description, parameters=tool.parameters)


def tool(factory: Callable[..., Callable[..., Awaitable[Any]]] | None = None, *, name: str | None = None,
         parallel: bool = True):
    """Make a Tool factory from a function that returns the tool's async `execute` function:

        @tool
        def add():
            async def execute(x: int, y: int) -> str:
                \"\"\"Add two numbers.

                Args:
                    x: the first number
                    y: the second number
                \"\"\"
                return str(x + y)
            return execute

    The tool's name is the factory's (or `name`), its description the docstring's first paragraph, each
    parameter's description its line under "Args:", its JSON schema from the type hints (pydantic)."""

    def wrap(make: Callable[..., Callable[..., Awaitable[Any]]]) -> Callable[..., FunctionTool]:
        def build(*args: Any, **kwargs: Any) -> FunctionTool:
            return function_tool(make(*args, **kwargs), name=name or make.__name__, parallel=parallel)

        build.__name__, build.__doc__ = make.__name__, make.__doc__
        return build

    return wrap(factory) if factory is not None else wrap


def function_tool(execute: Callable[..., Awaitable[Any]], *, name: str, parallel: bool = True) -> FunctionTool:
    from pydantic import ConfigDict, Field, create_model

    doc = inspect.getdoc(execute) or ""
    description, arg_docs = _parse_docstring(doc)
    hints = _hints(execute)
    fields: dict[str, Any] = {}
    for param in inspect.signature(execute).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (hints.get(param.name, Any), Field(default, description=arg_docs.get(param.name)))
    validator = create_model(f"{name}_arguments", __config__=ConfigDict(extra="forbid"), **fields)
    schema = validator.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    schema.setdefault("required", [])
    return FunctionTool(name=name, description=description or name, parameters=schema, parallel=parallel,
                        function=execute, validator=validator)


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    import typing

    try:
        return typing.get_type_hints(fn)
    except (NameError, TypeError):
        return {}


_ARG_LINE = re.compile(r"^\s*(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The first paragraph, and each parameter's description from a Google-style "Args:" section."""
    head, _, rest = doc.partition("\n\n")
    description = " ".join(head.split())
    args: dict[str, str] = {}
    current = None
    in_args = False
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped in ("Args:", "Arguments:", "Parameters:"):
            in_args, current = True, None
            continue
        if in_args and stripped.endswith(":") and not line.startswith((" ", "\t")):
            in_args = False  # the next section (Returns:, Raises:)
        if not in_args or not stripped:
            continue
        match = _ARG_LINE.match(line)
        if match and len(line) - len(line.lstrip()) <= 8:
            current = match.group(1).lstrip("*")
            args[current] = match.group(2).strip()
        elif current:
            args[current] += " " + stripped
    return description, args
