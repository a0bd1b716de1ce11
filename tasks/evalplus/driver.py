"""The test driver that runs inside the sandbox, and the value codec it shares with the harness.

The harness runs this file's source as `python3 -c SOURCE` with a JSON payload on stdin. The driver
process never executes model-written code itself: each phase (base inputs, plus inputs) runs in a
forked child, like EvalPlus's one process per `untrusted_check`. The child loads the solution,
calls the entry point on every input under a per-input SIGALRM limit and streams the raw outputs,
encoded, through a pipe; the driver enforces the per-input and per-phase deadlines from outside
the child and prints one report framed by the run's nonce.

Nothing here decides pass or fail: the expected outputs never enter the sandbox, and the harness
compares the outputs after parsing the report with `json` only. A program that exits early,
kills the driver, forges frames or prints markers leaves missing or invalid outputs, which fail.

Stdlib only (numpy is encoded when the solution already imported it): the same file must run on
the host's python3 (bwrap) and in the harness-python image.
"""
from __future__ import annotations

import json
import sys

# Bumped whenever the report or the encoding changes: part of the ground-truth cache key.
VERSION = "2"

# ---------------------------------------------------------------- codec
# JSON cannot tell a tuple from a list, has no sets, complex numbers or non-string keys, and the
# comparison `out == exp` depends on exactly those. Every JSON object in an encoding is a tag.


# An output string longer than this travels as its SHA-256: `out == exp` for two strings is equality
# of their bytes, and some expected outputs are megabytes (HumanEval/15 has 147 MB of them).
DIGEST_OVER = 1 << 12


def encode(v, digest=False, _depth=0):
    """`digest`: long strings as digests (outputs); inputs always travel whole."""
    t = type(v)
    if v is None or t is bool:
        return v
    if t is str:
        if digest and len(v) > DIGEST_OVER:
            import hashlib

            return {"$": "strdigest", "n": len(v), "sha256": hashlib.sha256(v.encode("utf-8", "surrogatepass")).hexdigest()}
        return v
    if t is int:
        return v if -(1 << 53) < v < (1 << 53) else {"$": "int", "x": format(v, "x")}
    if t is float:
        return v  # json writes nan/inf as NaN/Infinity, which json.loads reads back
    if _depth > 200:
        raise ValueError("nested too deeply")
    d = _depth + 1

    def enc(x):
        return encode(x, digest, d)

    if t is list:
        return [enc(x) for x in v]
    if t is tuple:
        return {"$": "tuple", "v": [enc(x) for x in v]}
    if t is set or t is frozenset:
        return {"$": t.__name__, "v": [enc(x) for x in v]}
    if t is dict:
        return {"$": "dict", "v": [[enc(k), enc(x)] for k, x in v.items()]}
    if t is complex:
        return {"$": "complex", "v": [v.real, v.imag]}
    if t is bytes:
        return {"$": "bytes", "v": v.hex()}
    if t is StrDigest:
        return {"$": "strdigest", "n": v.n, "sha256": v.sha256}
    mod = getattr(t, "__module__", "")
    if mod == "collections" and t.__name__ in ("OrderedDict", "defaultdict", "Counter"):
        return {"$": "dict", "cls": t.__name__, "v": [[enc(k), enc(x)] for k, x in v.items()]}
    np = sys.modules.get("numpy")
    if np is not None and isinstance(v, np.ndarray):
        return {"$": "ndarray", "dtype": str(v.dtype), "v": enc(v.tolist())}
    if np is not None and isinstance(v, np.generic):
        return {"$": "np", "dtype": str(v.dtype), "v": enc(v.item())}
    # Subclasses of builtins that keep the builtin's equality (namedtuples, IntEnum members, str
    # subclasses) compare like the builtin value; anything else is opaque and equals nothing.
    for base in (bool, int, float, str, tuple, list, dict, set, frozenset):
        if isinstance(v, base) and t.__eq__ is base.__eq__:
            return encode(base(v), digest, _depth)
    return {"$": "opaque", "type": f"{mod}.{getattr(t, '__qualname__', '?')}"}


# ---------------------------------------------------------------- driver (sandbox side)

def _child(phase, code, entry_point, trusted, wfd):
    import copy
    import os
    import signal
    import time

    def emit(item):
        data = (json.dumps(item) + "\n").encode()
        while data:
            data = data[os.write(wfd, data):]

    class TimeoutException(Exception):
        pass

    def on_alarm(signum, frame):
        raise TimeoutException("Timed out!")

    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    sys.stdout = sys.stderr = _Discard()
    sys.stdin = _NoRead()
    signal.signal(signal.SIGALRM, on_alarm)
    inputs = [decode(x) for x in phase["inputs"]]
    limits = phase["limits"]
    if not trusted:
        _reliability_guard(4 << 30)
    globs = {}
    try:
        exec(compile(code, "<solution>", "exec"), globs)
        fn = globs[entry_point]
    except BaseException as e:
        emit(["load_error", _describe(e)])
        return
    emit(["ready"])
    for i, inp in enumerate(inputs):
        # the canonical run copies each input (EvalPlus trusted_exec); the candidate run does not
        args = copy.deepcopy(inp) if trusted else inp
        start = time.time()
        try:
            signal.setitimer(signal.ITIMER_REAL, limits[i])
            try:
                out = fn(*args)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except BaseException as e:
            emit([i, "timeout" if isinstance(e, TimeoutException) else "error", _describe(e), time.time() - start])
            if not trusted:  # EvalPlus's fast_check: the first failing input ends the phase
                return
            continue
        elapsed = time.time() - start
        try:
            enc = encode(out, True)
        except BaseException:
            enc = {"$": "opaque", "type": "unencodable"}
        emit([i, "ok", enc, elapsed])


def _describe(e):
    try:
        return f"{type(e).__name__}: {str(e)[:300]}"
    except BaseException:
        return type(e).__name__


class _Discard:
    def write(self, s):
        return len(s)

    def flush(self):
        pass

    def isatty(self):
        return False


class _NoRead(_Discard):
    # EvalPlus swallows IO: reading stdin raises.
    def read(self, *a):
        raise OSError("stdin is not readable")

    readline = readlines = read

    def readable(self):
        return False


def _reliability_guard(maximum_memory_bytes):
    """EvalPlus's reliability_guard: not a sandbox (this process already runs in one), but a
    solution that calls open(), exit(), os.system(), subprocess... fails there, so it fails here."""
    import builtins
    import faulthandler
    import os
    import resource
    import shutil
    import subprocess

    for lim in (resource.RLIMIT_AS, resource.RLIMIT_DATA, resource.RLIMIT_STACK):
        try:
            resource.setrlimit(lim, (maximum_memory_bytes, maximum_memory_bytes))
        except (ValueError, OSError):
            pass  # the sandbox's own limit is lower and cannot be raised
    faulthandler.disable()
    builtins.exit = None
    builtins.quit = None
    os.environ["OMP_NUM_THREADS"] = "1"
    for name in ("kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid", "fork", "forkpty",
                 "killpg", "rename", "renames", "truncate", "replace", "unlink", "fchmod", "fchown", "chmod", "chown",
                 "chroot", "lchflags", "lchmod", "lchown", "getcwd", "chdir"):
        setattr(os, name, None)
    builtins.open = None
    shutil.rmtree = shutil.move = shutil.chown = None
    subprocess.Popen = None
    builtins.help = None
    for name in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
        sys.modules[name] = None


def _run_phase(phase, payload):
    """Fork a child for the phase; collect its lines until it ends or a deadline passes."""
    import os
    import select
    import signal
    import time

    result = {"ready": False, "error": None, "results": []}
    r, w = os.pipe()
    try:
        pid = os.fork()
    except OSError as e:
        result["error"] = f"fork failed: {e}"
        return result
    if pid == 0:
        try:
            os.close(r)
            os.setpgid(0, 0)
            _child(phase, payload["code"], payload["entry_point"], payload["trusted"], w)
        finally:
            os._exit(0)
    os.close(w)
    limits, grace = phase["limits"], payload["grace_s"]
    start = time.monotonic()
    phase_deadline = start + phase["deadline_s"]
    input_deadline = phase_deadline
    pending = []
    killed = None
    while True:
        now = time.monotonic()
        deadline = min(phase_deadline, input_deadline)
        if now >= deadline:
            killed = "phase deadline" if deadline == phase_deadline else "input deadline"
            break
        ready, _, _ = select.select([r], [], [], deadline - now)
        if not ready:
            continue
        chunk = os.read(r, 1 << 20)
        if not chunk:
            break
        if b"\n" not in chunk:  # a long output line: join once it is complete, not per chunk
            pending.append(chunk)
            continue
        *lines, rest = (b"".join(pending) + chunk).split(b"\n")
        pending = [rest]
        for line in lines:
            try:
                item = json.loads(line)
            except ValueError:
                result["error"] = "unparsable line from the test process"
                continue
            if item and item[0] == "ready":
                result["ready"] = True
            elif item and item[0] == "load_error":
                result["error"] = item[1]
            elif isinstance(item, list) and len(item) == 4:
                result["results"].append(item[1:] + [item[0]])
            else:
                result["error"] = "malformed line from the test process"
            n = len(result["results"])
            input_deadline = time.monotonic() + limits[n] + grace if n < len(limits) and result["ready"] else phase_deadline
    for kill in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            kill()
        except OSError:
            pass
    os.waitpid(pid, 0)
    os.close(r)
    if killed:
        result["killed"] = killed
    return result


def main():
    payload = json.loads(sys.stdin.buffer.read())
    report = {"version": VERSION, "phases": {}}
    for phase in payload["phases"]:
        report["phases"][phase["name"]] = _run_phase(phase, payload)
    text = json.dumps(report)
    nonce = payload["nonce"]
    if len(text) > payload["stdout_max"]:
        path = f"/tmp/report-{nonce}.json"
        with open(path, "w") as f:
            f.write(text)
        sys.stdout.write(f"{nonce} file {path}\n")
    else:
        sys.stdout.write(f"{nonce} inline {text}\n")
    sys.stdout.flush()


# ---------------------------------------------------------------- decoding (both sides)

class Opaque:
    """A value the codec cannot carry (an object of some class): equal to nothing, itself included."""

    def __init__(self, type_name):
        self.type_name = type_name

    def __eq__(self, other):
        return False

    def __ne__(self, other):
        return True

    __hash__ = object.__hash__

    def __repr__(self):
        return f"<{self.type_name} object>"


class StrDigest:
    """A long string known by its length and SHA-256: equal to the same string, or to its digest."""

    def __init__(self, n, sha256):
        self.n, self.sha256 = int(n), str(sha256)

    def __eq__(self, other):
        if isinstance(other, StrDigest):
            return (self.n, self.sha256) == (other.n, other.sha256)
        if isinstance(other, str):
            import hashlib

            return len(other) == self.n and \
                hashlib.sha256(other.encode("utf-8", "surrogatepass")).hexdigest() == self.sha256
        return NotImplemented

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self):
        return hash(self.sha256)

    def __repr__(self):
        return f"<str of {self.n} chars, sha256 {self.sha256[:12]}>"


def decode(v):
    if type(v) is list:
        return [decode(x) for x in v]
    if type(v) is not dict:
        return v
    tag = v.get("$")
    if tag == "int":
        return int(v["x"], 16)
    if tag == "tuple":
        return tuple(decode(x) for x in v["v"])
    if tag in ("set", "frozenset"):
        return (set if tag == "set" else frozenset)(decode(x) for x in v["v"])
    if tag == "dict":
        pairs = [(decode(k), decode(x)) for k, x in v["v"]]
        cls = v.get("cls")
        if cls is None:
            return dict(pairs)
        import collections

        return {"OrderedDict": collections.OrderedDict, "Counter": lambda p: collections.Counter(dict(p)),
                "defaultdict": lambda p: collections.defaultdict(None, p)}[cls](pairs)
    if tag == "complex":
        return complex(*v["v"])
    if tag == "bytes":
        return bytes.fromhex(v["v"])
    if tag in ("ndarray", "np"):
        try:
            import numpy as np
        except ImportError:
            return Opaque(f"numpy.{v['dtype']}")
        value = decode(v["v"])
        return np.array(value, dtype=v["dtype"]) if tag == "ndarray" else np.dtype(v["dtype"]).type(value)
    if tag == "opaque":
        return Opaque(str(v.get("type")))
    if tag == "strdigest":
        return StrDigest(v["n"], v["sha256"])
    raise ValueError(f"unknown tag {tag!r}")


if __name__ == "__main__":
    main()
