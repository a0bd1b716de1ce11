"""The command runner that the Docker backend starts once in each container (`python3 -I -S -c <this file>`).

It is not imported by the harness: its source is sent as the argument of one `docker exec`, and every command
of the container's sample then goes to it as a line on that exec's stdin, not as a `docker exec` of its own
(each costs the daemon a runc exec, ~50 ms on two cores; a fork here costs ~1 ms). Standard library only, as it
runs on the image's Python.

Protocol: the first stdin line is a nonce; then one JSON request per line, {"id", "argv", "stdin" (base64 or
null), "cwd", "env", "timeout", "cap"}. Each reply is one stdout line, `<nonce> <json>`, with {"id", "rc",
"out", "err" (base64), "timed_out", "truncated", "duration"}, or {"id", "spawn_error", "rc"} when the command
could not start (127 not found, 126 not executable, as a shell says).

What the sample's code (the same uid, in the same container) can do to it: it runs non-dumpable
(PR_SET_DUMPABLE 0), so no process of the uid can ptrace it or open its /proc/<pid>/fd or mem (no forged
reply, no peek at the nonce, which is never in argv or the environment); commands get fresh pipes and none of
its descriptors. It can be killed or stopped like any process of the uid: the harness sees the stream end, or
no reply by its own deadline, and says so (see _docker.py).

A command runs in its own session. At its deadline or its output cap its process group is killed; when it
exits, what it left in its group is killed too and the pipes are drained for at most DRAIN_S (a process that
left the session can hold them) - the same rules as the host-process backends (sandboxes/_process.py).
"""
import base64
import ctypes
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time

PR_SET_DUMPABLE = 4
DRAIN_S = 1.0
CHUNK = 65536


def kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def feed(pipe, data):
    try:
        pipe.write(data)
    except OSError:
        pass  # the command exited or closed its stdin: what it did not read is its business
    finally:
        try:
            pipe.close()
        except OSError:
            pass


def run(req, reply):
    t0 = time.monotonic()
    data = base64.b64decode(req["stdin"]) if req.get("stdin") is not None else None
    try:
        proc = subprocess.Popen(req["argv"], stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=req["cwd"], env=req["env"],
                                start_new_session=True)
    except OSError as e:
        rc = 127 if isinstance(e, FileNotFoundError) else 126
        reply({"id": req["id"], "spawn_error": f"{req['argv'][0]}: {e.strerror}", "rc": rc})
        return
    if data is not None:
        threading.Thread(target=feed, args=(proc.stdin, data), daemon=True).start()
    cap, deadline = req["cap"], t0 + req["timeout"]
    out, err = bytearray(), bytearray()
    bufs = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
    sel = selectors.DefaultSelector()
    for f in (proc.stdout, proc.stderr):
        sel.register(f, selectors.EVENT_READ)
    timed_out = truncated = False
    drain_until = None  # set once the command is over (exited, timed out, over the cap): pipes are read until then
    while sel.get_map():
        now = time.monotonic()
        if drain_until is not None and now >= drain_until:
            break  # a process outside the group still holds a pipe
        if drain_until is None and now >= deadline:
            timed_out = True
            kill_group(proc.pid)
            drain_until = now + DRAIN_S
        elif drain_until is None and proc.poll() is not None:
            kill_group(proc.pid)  # what the command left running in its group goes with it
            drain_until = now + DRAIN_S
        limit = (drain_until if drain_until is not None else deadline) - now
        for key, _ in sel.select(timeout=max(0.0, min(limit, 0.05))):
            chunk = os.read(key.fd, CHUNK)
            if not chunk:
                sel.unregister(key.fileobj)
                continue
            buf = bufs[key.fd]
            room = cap - len(buf)
            buf += chunk[:max(room, 0)]
            if len(chunk) > room and not truncated:
                truncated = True  # stop the writer at the cap rather than drain a runaway stream
                kill_group(proc.pid)
                drain_until = time.monotonic() + DRAIN_S
    sel.close()
    if drain_until is None:  # both pipes closed, the command still running (coreutils close stdout before exit)
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
    kill_group(proc.pid)
    rc = proc.wait()
    for f in (proc.stdout, proc.stderr):
        f.close()
    reply({"id": req["id"], "rc": 128 - rc if rc < 0 else rc, "timed_out": timed_out, "truncated": truncated,
           "out": base64.b64encode(out).decode(), "err": base64.b64encode(err).decode(),
           "duration": time.monotonic() - t0})


def main():
    ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    nonce = stdin.readline().strip().decode()
    lock = threading.Lock()

    def reply(msg):
        line = f"{nonce} {json.dumps(msg)}\n".encode()
        with lock:
            stdout.write(line)
            stdout.flush()

    for line in stdin:
        req = json.loads(line)
        try:
            threading.Thread(target=run, args=(req, reply), daemon=True).start()
        except RuntimeError:  # no thread to be had: the sample's processes took the container's pids
            reply({"id": req["id"], "spawn_error": "cannot start the command: the container's process limit is "
                                                  "reached", "rc": 126})


main()
