"""The built-in tools: bash, python, text_editor (each in the sample's own sandbox) and submit.

bash and python are stateless per call, as Inspect's are: each call is a new process, and only files
persist between calls (in the sample's sandbox, for its whole trajectory). So no shell can be left
hanging for the next call (Inspect#2751): a call that runs past its timeout is killed and its partial
output is kept (Inspect#1979).
"""
from __future__ import annotations

from typing import Literal

from harness._types import InfraError
from harness.agent._tool import ToolFailure, sandbox, tool

SUBMIT = "submit"
DEFAULT_TIMEOUT_S = 180
# what one exec may produce per stream before the sandbox kills it; the model is shown less (Tool output cap)
EXEC_OUTPUT_BYTES = 1 << 20


async def _run(cmd: list[str], *, input: str | None, timeout: float) -> str:
    from harness.sandboxes import SandboxError

    sb = sandbox()
    # a sandbox that an earlier command of this trajectory broke (it ran past its deadline or output cap and took
    # the container down with it, e.g. by leaving a child holding the output open): its loss is the model's doing
    broken_by_model = getattr(sb, "broken", False)
    try:
        r = await sb.exec(cmd, input=input, timeout_s=timeout, output_bytes=EXEC_OUTPUT_BYTES)
    except SandboxError as e:
        if broken_by_model:
            raise ToolFailure("sandbox", "the sandbox is gone: an earlier command ran past its timeout (or its "
                                         "output cap) and was killed with it; files written so far are lost") from None
        raise InfraError(f"the sample's sandbox failed: {e}") from None  # not the model's doing: the harness's
    output = r.stdout + (("\n" if r.stdout and not r.stdout.endswith("\n") else "") + r.stderr if r.stderr else "")
    if r.timed_out:
        raise ToolFailure("timeout", f"the command ran past its {timeout:g} s timeout and was killed", output)
    if r.oom_killed:
        raise ToolFailure("error", "the command ran out of memory and was killed", output)
    if r.truncated:
        raise ToolFailure("output_limit", f"the command wrote more than {EXEC_OUTPUT_BYTES} bytes and was killed",
                          output)
    if r.returncode:
        output += f"\n[exit code {r.returncode}]"
    return output


@tool
def bash(timeout: float = DEFAULT_TIMEOUT_S):
    """A shell command in the sample's sandbox (a new `bash -c` each call; files persist)."""

    async def execute(cmd: str) -> str:
        """Run a bash command and return its standard output and error.

        Args:
            cmd: the command to run
        """
        return await _run(["bash", "-c", cmd], input=None, timeout=timeout)

    return execute


@tool
def python(timeout: float = DEFAULT_TIMEOUT_S):
    """Python code in the sample's sandbox (a new interpreter each call; files persist)."""

    async def execute(code: str) -> str:
        """Run Python code and return what it prints (standard output and error). Each call starts a new
        interpreter: print what you want to see, and keep state in files.

        Args:
            code: the Python program to run
        """
        return await _run(["python3", "-"], input=code, timeout=timeout)

    return execute


@tool(parallel=False)
def text_editor(timeout: float = 30):
    """View, create and edit text files in the sample's sandbox."""

    async def execute(command: Literal["view", "create", "str_replace", "insert"], path: str,
                      file_text: str | None = None, old_str: str | None = None, new_str: str | None = None,
                      insert_line: int | None = None, view_range: list[int] | None = None) -> str:
        """View a file (with line numbers) or a directory, create a file, replace a unique string in a file, or
        insert text after a line.

        Args:
            command: view, create, str_replace or insert
            path: the file or directory
            file_text: create: the file's content
            old_str: str_replace: the text to replace, which must occur exactly once
            new_str: str_replace: the replacement; insert: the text to insert
            insert_line: insert: the line after which to insert (0: at the start)
            view_range: view: [first, last] line numbers, 1-based (last -1: to the end)
        """
        sb = sandbox()
        if command == "create":
            if file_text is None:
                raise ToolFailure("parsing", "create needs file_text")
            await _write(sb, path, file_text)
            return f"created {path} ({len(file_text)} characters)"
        if command == "view" and await _is_dir(path, timeout):
            return await _run(["find", path, "-maxdepth", "2", "-not", "-path", "*/.*"], input=None, timeout=timeout)
        text = await _read(sb, path)
        if command == "view":
            lines = text.splitlines()
            first, last = 1, len(lines)
            if view_range:
                if len(view_range) != 2:
                    raise ToolFailure("parsing", "view_range must be [first, last]")
                first, last = view_range[0], (len(lines) if view_range[1] == -1 else view_range[1])
                if not 1 <= first <= max(1, len(lines)) or last < first:
                    raise ToolFailure("parsing", f"view_range {view_range} is outside the file's {len(lines)} lines")
            return "\n".join(f"{n:6}\t{line}" for n, line in enumerate(lines[first - 1:last], first))
        if command == "str_replace":
            if old_str is None:
                raise ToolFailure("parsing", "str_replace needs old_str")
            count = text.count(old_str)
            if count != 1:
                raise ToolFailure("error", f"old_str occurs {count} times in {path}; it must occur exactly once")
            await _write(sb, path, text.replace(old_str, new_str or "", 1))
            return f"edited {path}"
        if command == "insert":
            if new_str is None or insert_line is None:
                raise ToolFailure("parsing", "insert needs new_str and insert_line")
            lines = text.splitlines(keepends=True)
            if not 0 <= insert_line <= len(lines):
                raise ToolFailure("parsing", f"insert_line {insert_line} is outside the file's {len(lines)} lines")
            block = new_str if new_str.endswith("\n") else new_str + "\n"
            await _write(sb, path, "".join(lines[:insert_line]) + block + "".join(lines[insert_line:]))
            return f"inserted {block.count(chr(10))} line(s) into {path} after line {insert_line}"
        raise ToolFailure("parsing", f"unknown command {command!r}")

    return execute


async def _write(sb, path: str, text: str) -> None:
    try:
        await sb.write_file(path, text)
    except (PermissionError, ValueError) as e:  # ValueError: outside the directories the sandbox lets one write
        raise ToolFailure("permission", f"{path} cannot be written: {e}") from None
    except OSError as e:  # in a container the refusal comes back as the shell's words
        raise ToolFailure(_kind(e), f"{path} cannot be written: {e}") from None


async def _is_dir(path: str, timeout: float) -> bool:
    return (await _run(["bash", "-c", '[ -d "$1" ] && echo dir || true', "_", path], input=None,
                       timeout=timeout)).strip() == "dir"


def _kind(e: OSError) -> str:
    return "permission" if "Permission denied" in str(e) or "Read-only file system" in str(e) else "error"


# what text_editor reads of one file: a model that asks for a huge file gets a clear error, not the harness's memory
EDITOR_READ_MAX = 4 << 20


async def _read(sb, path: str) -> str:
    try:
        data = await sb.read_file(path, max_bytes=EDITOR_READ_MAX)
    except FileNotFoundError:
        raise ToolFailure("file_not_found", f"{path} does not exist") from None
    except (PermissionError, ValueError) as e:
        raise ToolFailure("permission", f"{path} cannot be read: {e}") from None
    except OSError as e:
        raise ToolFailure(_kind(e), f"{path} cannot be read: {e}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ToolFailure("error", f"{path} is not UTF-8 text") from None


@tool(name=SUBMIT, parallel=False)
def submit():
    """Submit the final answer: the agent's work ends with it."""

    async def execute(answer: str) -> str:
        """Submit your final answer. Call this once, when you are done.

        Args:
            answer: the final answer
        """
        return answer

    return execute
