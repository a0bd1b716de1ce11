"""The GeoJSEval test driver that runs inside the sandbox (trusted), around Node test processes (untrusted).

The harness runs this file's source as `python3 -c SOURCE` with a JSON payload on stdin (the nonce, the
Node runner's source, the libraries' sources, the model's code, the function name, the cases and their
time limits). The driver reads the whole payload, makes itself non-dumpable (code of the same uid can then
neither read its memory, where the nonce is, nor open its stdout through /proc), and starts
`node -e RUNNER` in a session of its own with the job on stdin. The Node process never sees the nonce,
the expected answers or this process's stdout: it answers on a pipe of its own (`result_fd`), and what
the program prints (console.*, fds 1 and 2) arrives on two more pipes, counted per case for the stderr
rule. Every line is checked (order, shape, size). A case that runs past its limit has the process group
killed; a process that dies (process.exit, a crash, out of memory) fails the case it was running. Either
way the following cases go on in a fresh process, since upstream runs every case in a process of its own.
The driver prints one report framed by the nonce; the verdicts are computed by the harness, outside.

Leaflet and OpenLayers run through browser_runner.js instead: the same protocol, from a Node process of ours
that drives headless Chromium (puppeteer-core, whose files come in the payload and are written to a private
directory here); the model's code runs in the page. That process names Chromium's pid first, and Chromium's
process group (a session of its own) is killed with the runner's. Each case line carries the requests the
page tried (all aborted) as a sixth element.
"""
import json
import os
import sys

VERSION = 1


def _protect():
    """Non-dumpable: /proc/<pid>/{mem,fd,environ} and ptrace are closed to other processes of this uid."""
    import ctypes

    if ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")


class _Stream:
    """What the program wrote on one of its output pipes (kept up to `cap` bytes, counted beyond). The
    runner writes a marker after each step, so the bytes before it belong to that step (see _split)."""

    def __init__(self, fd, cap):
        self.fd, self.cap = fd, cap
        self.data, self.total, self.open = bytearray(), 0, True
        os.set_blocking(fd, False)

    def drain(self):
        while self.open:
            try:
                chunk = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return
            if not chunk:
                self.open = False
                return
            self.total += len(chunk)
            if len(self.data) < self.cap:
                self.data += chunk[: self.cap - len(self.data)]

    def split(self, marker):
        """step label -> bytes; what follows the last marker is under None (the step that did not finish)."""
        import re

        parts = re.split(rb"\x1e" + re.escape(marker) + rb"=([^\x1f]*)\x1f", bytes(self.data))
        out = {}
        for i in range(1, len(parts), 2):
            out[parts[i].decode("ascii", "replace")] = parts[i - 1]
        out[None] = parts[-1]
        return out, self.total - len(self.data)


def _kill(pgids):
    import signal

    for pgid in pgids:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass


def _run_child(payload, cases, budget):
    """One Node process on `cases` (in order). Returns (records by index, why it stopped early or None,
    bytes read, whether its lines were well-formed, ms from its start to each start-up step it reached)."""
    import secrets
    import select
    import subprocess
    import tempfile
    import time

    r, w = os.pipe()
    job = {"libs": payload["libs"], "code": payload["code"], "function": payload["function"],
           "cases": [{k: c[k] for k in ("index", "params", "eval_methods") if k in c} for c in cases],
           "result_fd": w, "jsts_geometry": payload["jsts_geometry"], "marker": payload["marker"],
           "token": secrets.token_hex(16), "heap_mb": payload["heap_mb"], **payload.get("browser", {})}
    if "browser" in payload:  # a fresh profile per Chromium: a killed one leaves its lock behind
        job["profile"] = tempfile.mkdtemp(prefix="geojseval-chromium-")
    try:
        proc = subprocess.Popen([payload["node"], "--no-warnings", f"--max-old-space-size={payload['heap_mb']}",
                                 "-e", payload["runner"]], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, pass_fds=(w,), close_fds=True, start_new_session=True)
    except OSError as e:
        os.close(r)
        os.close(w)
        return {}, f"could not start node: {e}", 0, True, {}
    os.close(w)
    streams = [_Stream(proc.stdout.fileno(), payload["output_cap"]), _Stream(proc.stderr.fileno(), payload["output_cap"])]
    records = {}
    step = "build"  # build -> load -> a case index -> done
    pending = [c["index"] for c in cases]
    limits = {c["index"]: c["limit_s"] for c in cases}
    start = time.monotonic()
    deadline = start + payload["build_limit_s"]
    case_started = start
    stopped = None
    tampered = False
    browser_pgid = None
    started = {}  # start-up step -> ms since the process started (Chromium launched, the page ready)
    buf = b""
    read = 0
    try:
        proc.stdin.write(json.dumps(job).encode())  # the process reads its whole job before anything runs
        proc.stdin.close()
    except OSError:
        pass

    def record(index, **fields):
        records[index] = {"index": index, "wall_ms": (time.monotonic() - case_started) * 1000.0, **fields}

    def next_case():
        nonlocal step, deadline, case_started
        while pending and pending[0] in records:  # factory errors: never run
            pending.pop(0)
        if not pending:
            step = "done"
            return
        step = pending[0]
        case_started = time.monotonic()
        deadline = case_started + limits[step] + payload["grace_s"]

    while step != "done" and stopped is None:
        now = time.monotonic()
        if now >= deadline:
            stopped = "timeout"
            break
        ready = select.select([r] + [s.fd for s in streams if s.open], [], [], deadline - now)[0]
        for s in streams:
            s.drain()
        if r not in ready:
            continue
        chunk = os.read(r, 1 << 20)
        if not chunk:
            stopped = "exited"
            break
        read += len(chunk)
        if read > budget:
            stopped, tampered = f"the test process sent more than {budget} bytes", True
            break
        *lines, buf = (buf + chunk).split(b"\n")
        for line in lines:
            try:
                item = json.loads(line)
            except ValueError:
                item = None
            ok = isinstance(item, list) and len(item) > 1 and item[0] == job["token"]
            item = item[1:] if ok else None
            if ok and step == "build" and item[0] == "browser" and len(item) == 2 and type(item[1]) is int and \
                    item[1] > 1 and browser_pgid is None and "browser" in payload:
                browser_pgid = item[1]
                started["chromium"] = (time.monotonic() - start) * 1000.0
            elif ok and step == "build" and item[0] == "built" and len(item) == 2 and isinstance(item[1], dict):
                for index, why in item[1].items():
                    if not (index.isdigit() and int(index) in limits and isinstance(why, str)):
                        ok = False
                        break
                    record(int(index), status="factory_error", error=why)
                step = "load"
                deadline = time.monotonic() + payload["load_limit_s"]
            elif ok and step == "load" and item == ["ready"]:
                started["ready"] = (time.monotonic() - start) * 1000.0
                next_case()
            elif ok and step == "load" and item[0] == "load_error" and len(item) == 3 and all(isinstance(x, str) for x in item[1:]):
                for index in pending:
                    if index not in records:
                        record(index, status="load_error", error=f"{item[1]}: {item[2]}", error_name=item[1])
                step = "done"
            elif ok and isinstance(step, int) and len(item) == (6 if "browser" in payload else 5) and item[0] == step and \
                    item[1] in ("ok", "error", "promise", "unserialisable") and type(item[3]) in (int, float) and \
                    (item[4] is None or type(item[4]) is int):
                value, error = (item[2], None) if item[1] == "ok" else (None, item[2])
                if item[1] == "ok" and not isinstance(value, str):
                    ok = False
                elif item[1] == "error" and not (isinstance(error, list) and len(error) == 2 and all(isinstance(x, str) for x in error)):
                    ok = False
                else:
                    fields = {"status": item[1], "ms": float(item[3]), "rss_kib": item[4]}
                    if len(item) == 6:
                        extra = item[5] if isinstance(item[5], dict) else {}
                        fields.update(blocked_requests=extra.get("blocked"), blocked_urls=extra.get("blocked_urls"),
                                      page_blocked_requests=extra.get("page_blocked"))
                    if item[1] == "ok":
                        fields["value"] = value
                    elif item[1] == "error":
                        fields.update(error=f"{error[0]}: {error[1]}", error_name=error[0])
                    else:
                        fields["error"] = error if isinstance(error, str) else str(error)[:500]
                    pending.pop(0)
                    record(step, **fields)
                    next_case()
            elif ok and step == "done" and item == ["done"]:
                pass
            else:
                ok = False
            if not ok:
                stopped, tampered = "the test process sent a malformed or out-of-order line", True
                break
            if step == "done":
                break
    _kill([proc.pid] + ([browser_pgid] if browser_pgid else []))
    try:
        proc.kill()
    except OSError:
        pass
    proc.wait()
    if "profile" in job:  # a profile is tens of MB, and the pooled sandbox's /tmp is small
        import shutil

        shutil.rmtree(job["profile"], ignore_errors=True)
    for s in streams:
        s.drain()
    running = step if isinstance(step, int) else None
    os.close(r)
    proc.stdout.close()
    proc.stderr.close()
    if stopped is not None and isinstance(step, int):
        code = proc.returncode
        why = ("timeout" if stopped == "timeout" else "tampered" if tampered else "crashed")
        detail = (f"no answer within {limits[step]} s" if stopped == "timeout" else stopped if tampered else
                  f"the process ended during the case (exit {code if code >= 0 else 'signal ' + str(-code)})")
        pending.pop(0)
        record(step, status=why, error=detail)
    elif stopped is not None and step in ("build", "load"):
        why = "timeout" if stopped == "timeout" else "tampered" if tampered else "crashed"
        if "browser" in payload and step == "build":  # Chromium or the page did not start: say why
            stopped += "; " + bytes(streams[1].data[-600:]).decode("utf-8", "replace").strip()
        for index in pending:
            if index not in records:
                record(index, status=why if step == "load" else "infra", error=f"while {'loading the code' if step == 'load' else 'building the arguments'}: {stopped}")
        pending.clear()
    _attribute(records, streams, payload["marker"].encode(), running, payload["output_head"])
    return records, stopped, read, tampered, started


def _attribute(records, streams, marker, running, head):
    """Each case's share of what the process printed: its own, plus what loading printed (upstream runs every
    case in a process of its own, which loads the code again)."""
    for stream, key in zip(streams, ("stdout", "stderr")):
        parts, lost = stream.split(marker)
        load = parts.get("load", b"")
        for index, rec in records.items():
            own = parts.get(str(index), b"")
            if index == running or (str(index) not in parts and rec["status"] in ("timeout", "crashed", "tampered")):
                own += parts[None]
                own_lost = lost
            else:
                own_lost = 0
            text = load + own
            rec[f"{key}_bytes"] = len(text) + own_lost
            rec[f"{key}_head"] = text[:head].decode("utf-8", "replace")


def _unpack(files):
    """puppeteer-core and what it loads, written into a private directory for the browser runner."""
    import tempfile

    root = os.path.join(tempfile.mkdtemp(prefix="geojseval-"), "node_modules")  # where Node resolves packages
    for rel, text in files.items():
        dest = os.path.realpath(os.path.join(root, rel))
        if not dest.startswith(root + os.sep):
            raise ValueError(f"a module path outside the directory: {rel}")
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "w", encoding="utf-8") as f:
            f.write(text)
    return root


def main():
    payload = json.loads(sys.stdin.buffer.read())
    nonce = payload.pop("nonce")
    _protect()
    browser = payload.get("browser")
    if browser is not None:
        missing = None if os.access(browser["chromium"], os.X_OK) else (
            f"this sandbox has no Chromium at {browser['chromium']}: the Leaflet / OpenLayers runner needs headless "
            f"Chromium (Docker: the harness-js-browser image, `harness sandbox build`; bwrap: Debian's chromium on "
            f"the host, `apt-get install chromium`)")
        import resource

        space = resource.getrlimit(resource.RLIMIT_AS)[0]
        if missing is None and space != resource.RLIM_INFINITY and space < browser["min_address_mb"] << 20:
            missing = (f"the sandbox's address-space limit ({space >> 20} MB) is below the "
                       f"{browser['min_address_mb']} MB Chromium reserves: run Leaflet / OpenLayers as their own "
                       f"variants (geojseval@leaflet, @openlayers), whose limits (address_space_mb) allow it")
        if missing is not None:
            sys.stdout.write(f"{nonce} {json.dumps({'version': VERSION, 'unavailable': missing})}\n")
            return
        browser["modules"] = _unpack(browser.pop("files"))
        del browser["min_address_mb"]
    cases = payload["cases"]
    budget = payload["report_max"]
    results = {}
    children = 0
    start_ms = None  # the first process's start-up (bench/geojseval_runners.py reports Chromium's)
    todo = list(cases)
    while todo:
        records, stopped, read, tampered, started = _run_child(payload, todo, budget)
        start_ms = started if start_ms is None else start_ms
        if tampered:  # a line the runner never sends: none of this process's answers can be trusted
            for rec in records.values():
                if rec["status"] not in ("factory_error", "infra"):
                    rec.update(status="tampered", error=stopped)
        children += 1
        budget -= read
        results.update(records)
        todo = [c for c in todo if c["index"] not in results]
        if stopped is None or tampered or budget <= 0:
            break
    for c in todo:  # what a tampering process left: not run, the case fails
        results[c["index"]] = {"index": c["index"], "status": "not_run", "error": "an earlier case's process tampered with the test"}
    if browser is not None:
        import shutil

        shutil.rmtree(os.path.dirname(browser["modules"]), ignore_errors=True)
    report = {"version": VERSION, "cases": [results[c["index"]] for c in cases], "processes": children,
              "start_ms": start_ms or {}}
    sys.stdout.write(f"{nonce} {json.dumps(report)}\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
