"""The test driver that runs inside the sandbox, and the value codec it shares with the harness.

The harness runs this file's source as `python3 -I -c SOURCE` with a JSON payload on stdin. Two roles:

- The driver (trusted, `python3 -I -c SOURCE`) first forks two test processes, before it has read
  anything: they hold nothing of the payload. Then it reads the whole payload, makes itself
  non-dumpable (so code running as the same uid can neither read nor write its memory or file
  descriptors through /proc or ptrace), and gives each phase (base inputs, plus inputs) a test
  process of its own, like EvalPlus's one forked process per `untrusted_check`: a spare, or a
  fresh interpreter (`python3 -I -c SOURCE child`) once the spares are used. A test process never
  sees the driver's memory, its stdout or the report nonce: it gets only the program and the
  inputs on its stdin and answers on a pipe; a spare stays non-dumpable until it has its job. The
  driver checks every line the child sends (order, shape, size), enforces the per-input and
  per-phase deadlines from outside the child, and prints one report framed by the run's nonce on
  its own stdout, which the child cannot reach.
- The child (untrusted: it runs the model's program) loads the solution as Python would run the
  file (`compile(..., dont_inherit=True)`: nothing of this file's compiler flags leaks into it),
  calls the entry point on every input under a per-input SIGALRM limit and streams the raw
  outputs, encoded, to the driver.

Nothing here decides pass or fail: the expected outputs never enter the sandbox, and the harness
compares the outputs after parsing the report with `json` only. The driver (never the child) may
hold a fingerprint of each expected output that `==` alone decides; it stops a candidate's run at
the first output whose fingerprint differs, so that a wrong program fails after its first wrong
output instead of running every input, as EvalPlus's fast_check stops. That stop is a hint: the
harness compares the outputs it got and, when the stopped-at output is right after all (a
dict_items view where a set of pairs is expected), runs the program again without fingerprints. A
program that exits early, kills the driver, floods or forges the pipe leaves missing or invalid
outputs, which fail.

Stdlib only (numpy is encoded when the solution already imported it): the same file must run on
the host's python3 (bwrap) and in the harness-python image. No `from __future__` import: this file
is also the child's source, and the child's compiler flags must be Python's defaults.
"""
import json
import sys

# Bumped whenever the report or the encoding changes: part of the ground-truth cache key.
VERSION = "4"

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
    for base in t.__mro__:  # a subclass that keeps the standard type's equality compares like it
        kind = STDLIB.get((getattr(base, "__module__", ""), getattr(base, "__qualname__", "")))
        if kind is not None:
            if t.__eq__ is base.__eq__:
                return _encode_stdlib(kind, base.__name__, v, enc)
            break
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


# Standard-library types whose `==` is structural, by (module, qualname): each is
# carried as data that compares as `==` compares the original (a UserList equals the list of its
# items, a dict_keys view equals the set of its keys, a deque equals only a deque, a Fraction equals
# the numbers it is exactly equal to). A dict_values view equals nothing but itself: opaque.
STDLIB = {
    ("collections", "OrderedDict"): "mapping_cls", ("collections", "defaultdict"): "mapping_cls",
    ("collections", "Counter"): "mapping_cls",
    ("collections", "ChainMap"): "mapping", ("collections", "UserDict"): "mapping",
    ("builtins", "mappingproxy"): "mapping",
    ("collections", "UserList"): "userlist", ("collections", "UserString"): "userstring",
    ("collections", "deque"): "deque",
    ("builtins", "dict_keys"): "set", ("builtins", "dict_items"): "dict_items",
    ("builtins", "range"): "range", ("builtins", "bytearray"): "bytearray",
    ("fractions", "Fraction"): "fraction", ("decimal", "Decimal"): "decimal",
    ("datetime", "date"): "date", ("datetime", "datetime"): "datetime", ("datetime", "time"): "time",
    ("datetime", "timedelta"): "timedelta", ("array", "array"): "array",
}


def _encode_stdlib(kind, name, v, enc):
    if kind == "mapping_cls":
        return {"$": "dict", "cls": name, "v": [[enc(k), enc(x)] for k, x in v.items()]}
    if kind == "mapping":  # Mapping.__eq__: dict(self.items()) == dict(other.items())
        return {"$": "dict", "v": [[enc(k), enc(x)] for k, x in dict(v.items()).items()]}
    if kind == "userlist":
        return enc(list(v.data))
    if kind == "userstring":
        return enc(str(v.data))
    if kind == "deque":
        return {"$": "deque", "v": [enc(x) for x in v]}
    if kind == "set":
        return {"$": "set", "v": [enc(x) for x in v]}
    if kind == "dict_items":
        return {"$": "dict_items", "v": [[enc(k), enc(x)] for k, x in v]}
    if kind == "range":
        return {"$": "range", "v": [enc(v.start), enc(v.stop), enc(v.step)]}
    if kind == "bytearray":
        return {"$": "bytearray", "v": bytes(v).hex()}
    if kind == "fraction":
        return {"$": "fraction", "v": [enc(int(v.numerator)), enc(int(v.denominator))]}
    if kind == "decimal":
        return {"$": "decimal", "v": str(v)}
    if kind == "timedelta":
        return {"$": "timedelta", "v": [int(v.days), int(v.seconds), int(v.microseconds)]}
    if kind in ("date", "datetime", "time"):
        if getattr(v, "tzinfo", None) is not None and type(v.tzinfo).__name__ != "timezone":
            return {"$": "opaque", "type": f"datetime.{kind} with {type(v.tzinfo).__qualname__}"}
        return {"$": kind, "v": v.isoformat()}
    if kind == "array":
        return {"$": "array", "typecode": str(v.typecode), "v": [enc(x) for x in v.tolist()]}
    raise ValueError(kind)


def fingerprint(enc, max_chars=None):
    """A digest of an encoded value that equal values share where that is cheap to see: set elements
    and mapping items in sorted order (a set of strings iterates in another order in every process),
    a number with an integral value as that int (6.0, Fraction(6), True == 1), no class on a
    mapping (a Counter equals the dict of its items). Equal values may still differ here: a differing
    fingerprint stops a run, and the harness confirms the stop on the values themselves. None when the
    canonical JSON is longer than `max_chars`."""
    import hashlib

    canonical = json.dumps(_canonical(enc), sort_keys=True, separators=(",", ":"))
    if max_chars is not None and len(canonical) > max_chars:
        return None
    return hashlib.blake2b(canonical.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _dump(v):
    return json.dumps(v, sort_keys=True, separators=(",", ":"))


def _int_form(n):
    return n if -(1 << 53) < n < (1 << 53) else {"$": "int", "x": format(n, "x")}


def _canonical(v):
    t = type(v)
    if t is list:
        return [_canonical(x) for x in v]
    if t is bool:
        return int(v)
    if t is float:
        return _int_form(int(v)) if v.is_integer() else v
    if t is not dict:
        return v
    tag, items = v.get("$"), v.get("v")
    if tag == "int":
        return _int_form(int(v["x"], 16))
    if type(items) is not list:
        if tag == "decimal":
            import decimal

            d = decimal.Decimal(str(items))
            return _int_form(int(d)) if d.is_finite() and d == d.to_integral_value() else v
        if tag == "np":
            return _canonical(items)
        return v
    if tag in ("set", "frozenset"):
        return {"$": "set", "v": sorted((_canonical(x) for x in items), key=_dump)}
    if tag in ("dict", "dict_items"):
        pairs = [_canonical(x) for x in items]
        return {"$": tag, "v": sorted(pairs, key=lambda kv: _dump(kv[0] if type(kv) is list and kv else kv))}
    if tag == "fraction" and len(items) == 2 and _canonical(items[1]) == 1:
        return _canonical(items[0])
    if tag == "complex" and len(items) == 2 and items[1] == 0:
        return _canonical(items[0])
    return {**v, "v": _canonical(items)}


# ---------------------------------------------------------------- the child (runs the model's program)

def _child_main(spare=False):
    import copy
    import os
    import signal
    import time

    raw = sys.stdin.buffer.read()
    if not raw:  # a spare the driver did not need
        return
    job = json.loads(raw)
    if spare:  # as a fresh interpreter is: the program may read its own /proc entries
        _set_dumpable(1)
    out = os.dup(1)  # the pipe to the driver; fds 0-2 become /dev/null for the program
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    sys.stdout = sys.stderr = _Discard()
    sys.stdin = _NoRead()

    def emit(item):
        data = (json.dumps(item) + "\n").encode()
        while data:
            data = data[os.write(out, data):]

    class TimeoutException(Exception):
        pass

    def on_alarm(signum, frame):
        raise TimeoutException("Timed out!")

    signal.signal(signal.SIGALRM, on_alarm)
    trusted, first = job["trusted"], job["first"]
    inputs = [decode(x) for x in job["inputs"]]
    limits = job["limits"]
    if not trusted:
        _reliability_guard(4 << 30)
    globs = {}
    try:
        # as Python runs a file: no compiler flags inherited from this driver
        exec(compile(job["code"], "<solution>", "exec", dont_inherit=True), globs)
        fn = globs[job["entry_point"]]
    except BaseException as e:
        emit(["load_error", _describe(e)])
        return
    emit(["ready"])
    for n, inp in enumerate(inputs):
        # the canonical run copies each input (EvalPlus trusted_exec); the candidate run does not
        args = copy.deepcopy(inp) if trusted else inp
        start = time.time()
        try:
            signal.setitimer(signal.ITIMER_REAL, limits[n])
            try:
                value = fn(*args)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except BaseException as e:
            status = "timeout" if isinstance(e, TimeoutException) else "error"
            emit([first + n, status, _describe(e), time.time() - start])
            if not trusted:  # EvalPlus's fast_check: the first failing input ends the phase
                return
            continue
        elapsed = time.time() - start
        try:
            enc = encode(value, True)
        except BaseException:
            enc = {"$": "opaque", "type": "unencodable"}
        emit([first + n, "ok", enc, elapsed])


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


# ---------------------------------------------------------------- the driver (trusted)

def _set_dumpable(flag):
    """Non-dumpable (0): /proc/<pid>/{mem,fd,environ} and ptrace are closed to other processes of this uid."""
    import ctypes

    PR_SET_DUMPABLE = 4
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, flag, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl(PR_SET_DUMPABLE, {flag}) failed")


class _TestProcess:
    """A test process: its pid (the leader of its own session), the pipe its job goes to, the pipe it answers on."""

    def __init__(self, pid, job_fd, out_fd, popen=None):
        self.pid, self.job_fd, self.out_fd, self._popen = pid, job_fd, out_fd, popen

    @classmethod
    def fork(cls):
        """A spare, forked before the driver reads its payload: the state of a fresh `-I` interpreter that
        has imported what the test process needs, without the start-up. Non-dumpable until it has its job."""
        import os

        job_r, job_w = os.pipe()
        out_r, out_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # never returns into the driver's code
            try:
                os.setsid()
                _set_dumpable(0)
                null = os.open(os.devnull, os.O_RDWR)
                os.dup2(job_r, 0)
                os.dup2(out_w, 1)
                os.dup2(null, 2)
                os.closerange(3, 1 << 16)  # the other spares' pipes among them
                _child_main(spare=True)
            finally:
                os._exit(0)
        os.close(job_r)
        os.close(out_w)
        return cls(pid, job_w, out_r)

    @classmethod
    def spawn(cls, source):
        import subprocess

        proc = subprocess.Popen([sys.executable, "-I", "-c", source, "child"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=True,
                                start_new_session=True)
        return cls(proc.pid, proc.stdin.fileno(), proc.stdout.fileno(), proc)

    def send_job(self, data):
        """The whole job, then end of file: the test process reads all of it before it runs anything."""
        import os

        try:
            while data:
                data = data[os.write(self.job_fd, data):]
        except OSError:
            pass
        self._close("job_fd")

    def kill(self):
        """Kill it and what it left in its session, and reap it."""
        import os
        import signal

        for kill in (os.killpg, os.kill):
            try:
                kill(self.pid, signal.SIGKILL)
            except OSError:
                pass
        if self._popen is not None:
            self._popen.wait()
        else:
            os.waitpid(self.pid, 0)
        self._close("job_fd")
        self._close("out_fd")

    def _close(self, name):
        import os

        fd = getattr(self, name)
        if fd is None:
            return
        if self._popen is not None:  # a Popen's pipes are its file objects' descriptors: closed with them
            getattr(self._popen, {"job_fd": "stdin", "out_fd": "stdout"}[name]).close()
        else:
            os.close(fd)
        setattr(self, name, None)


def _own_source():
    argv = sys.orig_argv
    return argv[argv.index("-c") + 1]


def _run_child(source, phase, payload, first, phase_deadline, budget, spares):
    """A test process of its own (a spare, else a fresh interpreter) on the phase's inputs from `first` on.
    Returns (ready, load_error, results, why it stopped early or None, bytes read, the input whose
    output's fingerprint differs from the expected one or None). Every line is checked; the first bad one
    ends the child."""
    import os
    import select
    import time

    limits, grace = phase["limits"], payload["grace_s"]
    expect = phase.get("expect") or [None] * len(limits)  # fingerprints, by input; None: no early stop
    mismatch = None
    job = {"code": payload["code"], "entry_point": payload["entry_point"], "trusted": payload["trusted"],
           "first": first, "inputs": phase["inputs"][first:], "limits": limits[first:]}
    try:
        proc = spares.pop(0) if spares else _TestProcess.spawn(source)
    except OSError as e:
        return False, f"could not start the test process: {e}", [], "start failed", 0, None
    ready, load_error, results, stopped, read = False, None, [], None, 0
    proc.send_job(json.dumps(job).encode())
    fd = proc.out_fd
    expect_next = first
    input_deadline = phase_deadline
    pending = []
    done = False
    while not done:
        now = time.monotonic()
        deadline = min(phase_deadline, input_deadline)
        if now >= deadline:
            stopped = "phase deadline" if deadline == phase_deadline else "input deadline"
            break
        if not select.select([fd], [], [], deadline - now)[0]:
            continue
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            stopped = "the test process ended early"
            break
        read += len(chunk)
        if read > budget:
            stopped = f"tampered: the test process sent more than {budget} bytes"
            break
        if b"\n" not in chunk:  # a long output line: join once it is complete, not per chunk
            pending.append(chunk)
            continue
        *lines, rest = (b"".join(pending) + chunk).split(b"\n")
        pending = [rest]
        for line in lines:
            problem = None
            try:
                item = json.loads(line)
            except ValueError:
                item, problem = None, "an unparsable line"
            if problem is None and not ready and load_error is None:
                if item == ["ready"]:
                    ready = True
                elif isinstance(item, list) and len(item) == 2 and item[0] == "load_error" and isinstance(item[1], str):
                    load_error, done = item[1], True
                else:
                    problem = "a line before the program loaded"
            elif problem is None:
                if not (isinstance(item, list) and len(item) == 4 and item[0] == expect_next
                        and item[1] in ("ok", "error", "timeout") and type(item[3]) in (int, float)
                        and (item[1] == "ok" or isinstance(item[2], str)) and expect_next < len(limits)):
                    problem = "a malformed or out-of-order result"
                else:
                    results.append(item[1:] + [item[0]])
                    expect_next += 1
                    if expect_next == len(limits) or (item[1] != "ok" and not payload["trusted"]):
                        done = True
                    elif item[1] == "ok" and expect[item[0]] is not None and _differs(item[2], expect[item[0]]):
                        mismatch, done = item[0], True
            if problem is not None:
                stopped, done = f"tampered: the test process sent {problem}", True
            if done:
                break
        if ready and expect_next < len(limits):
            input_deadline = time.monotonic() + limits[expect_next] + grace
    proc.kill()
    return ready, load_error, results, stopped, read, mismatch


def _differs(enc, expected_fingerprint):
    try:
        return fingerprint(enc) != expected_fingerprint
    except (ValueError, TypeError, RecursionError):  # nothing the child sends may crash the driver
        return True


def _run_phase(source, phase, payload, spares):
    """The phase's outputs. A candidate's phase ends at its first failure; the canonical solution's goes
    on past an input it could not finish (a fresh interpreter from the next input), so that one slow or
    crashing input never drops the inputs after it."""
    import time

    result = {"ready": False, "error": None, "results": []}
    n = len(phase["limits"])
    phase_deadline = time.monotonic() + phase["deadline_s"]
    budget = payload["report_max"]
    first = 0
    while True:
        ready, load_error, results, stopped, read, mismatch = _run_child(source, phase, payload, first,
                                                                         phase_deadline, budget, spares)
        budget -= read
        result["ready"] = result["ready"] or ready
        result["results"] += results
        first += len(results)
        if load_error is not None:
            result["error"] = load_error
            return result
        if mismatch is not None:  # the candidate's first output that is (probably) wrong: its phase ends
            result["mismatch"] = mismatch
            return result
        if stopped is None or first >= n:
            return result
        if stopped.startswith("tampered"):
            result["error"], result["tampered"] = stopped, True
            return result
        if not payload["trusted"] or not ready or stopped in ("phase deadline", "start failed") or budget <= 0:
            result["killed" if stopped in ("phase deadline", "input deadline") else "error"] = stopped
            return result
        # the canonical solution did not answer input `first`: record why, go on from the next one
        why = "killed" if stopped == "input deadline" else "crashed"
        result["results"].append([why, stopped, 0.0, first])
        first += 1
        if first >= n:
            return result


def main():
    if sys.argv[1:] == ["child"]:
        _child_main()
        return
    # what a test process needs, imported once here; the spares are forked before the payload is read
    import copy, ctypes, faulthandler, resource, select, shutil, signal, subprocess, time  # noqa: E401, F401

    spares = [_TestProcess.fork() for _ in range(2)]
    payload = json.loads(sys.stdin.buffer.read())
    nonce = payload.pop("nonce")
    _set_dumpable(0)
    source = _own_source()
    report = {"version": VERSION, "phases": {}}
    failed = False
    for phase in payload["phases"]:
        if failed:  # a candidate's later phase counts only with this one: not run
            report["phases"][phase["name"]] = {"ready": False, "error": None, "results": [],
                                               "not_run": "an earlier phase failed"}
            continue
        result = report["phases"][phase["name"]] = _run_phase(source, phase, payload, spares)
        failed = not payload["trusted"] and (not result["ready"] or result.get("error") is not None or "killed" in result
                                             or "mismatch" in result or any(r[0] != "ok" for r in result["results"]))
    for spare in spares:  # not needed: they exit without running anything
        spare.kill()
    sys.stdout.write(f"{nonce} {json.dumps(report)}\n")
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
    if tag in _STDLIB_DECODERS:
        return _STDLIB_DECODERS[tag](v)
    raise ValueError(f"unknown tag {tag!r}")


def _decode_deque(v):
    import collections

    return collections.deque(decode(x) for x in v["v"])


def _decode_dict_items(v):
    return dict((decode(k), decode(x)) for k, x in v["v"]).items()


def _decode_fraction(v):
    import fractions

    return fractions.Fraction(*(int(decode(x)) for x in v["v"]))


def _decode_decimal(v):
    import decimal

    return decimal.Decimal(str(v["v"]))


def _decode_datetime(kind):
    def dec(v):
        import datetime

        return getattr(datetime, kind).fromisoformat(str(v["v"]))

    return dec


def _decode_timedelta(v):
    import datetime

    days, seconds, micro = (int(x) for x in v["v"])
    return datetime.timedelta(days=days, seconds=seconds, microseconds=micro)


def _decode_array(v):
    import array

    return array.array(str(v["typecode"]), [decode(x) for x in v["v"]])


_STDLIB_DECODERS = {
    "deque": _decode_deque, "dict_items": _decode_dict_items,
    "range": lambda v: range(*(int(decode(x)) for x in v["v"])),
    "bytearray": lambda v: bytearray.fromhex(v["v"]),
    "fraction": _decode_fraction, "decimal": _decode_decimal,
    "date": _decode_datetime("date"), "datetime": _decode_datetime("datetime"), "time": _decode_datetime("time"),
    "timedelta": _decode_timedelta, "array": _decode_array,
}


if __name__ == "__main__":
    main()
