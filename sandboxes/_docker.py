"""Docker backend: a pool of warm, locked-down containers (`sleep infinity`).

A sample that runs many commands (a fresh sandbox: an agent's trajectory; or from a use's second
command on) has them served by a command runner that one `docker exec` starts in the container
(sandboxes/_exec_agent.py: deadlines, output caps, the process group killed after the command; a
`docker exec` per command costs the daemon a runc exec, ~50 ms of CPU). A use's first command, and every
command on an image without the runner's Python (`exec_agent` in the image config), is one exec of
`timeout -s KILL T cmd`: a pooled scorer's single command costs no runner start. Either way the host
also keeps a deadline: if no answer comes by it, the container is killed and replaced.
Containers that timed out, hit the output cap, were OOM-killed or served max_uses samples are replaced.

Otherwise a container is reset between uses by a script that runs as root inside it, with only the
capabilities it needs (killing, deleting others' files, dropping to the sample's uid): code of the
sample's uid cannot attach to it, signal it or change what it reports. It kills every process of
the sample's uid, removes its System V IPC objects and POSIX message queues, wipes /work, /tmp and
/dev/shm, and then checks the state it promises: no process but the container's init, no IPC
object, empty directories, and the container's anonymous plus shared memory back under
RESET_MEMORY_MB. Anything else and the container is replaced, not reused. Commands themselves
always run as the unprivileged exec user, whose capability sets are empty.
"""
from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import functools
import json
import os
import secrets
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

from . import _image
from ._types import (BASE_ENV, READ_MAX, READ_TIMEOUT_S, WORKDIR, ExecResult, SandboxBackend, SandboxError,
                     SandboxLimits, check_cmd, decode, sandbox_path)

LABEL = "harness.sandbox"  # value "<hostname>:<pid>:<random>" of the harness process that owns it
_KILLED = 137  # 128 + SIGKILL: what `timeout -s KILL` and the OOM killer both leave behind
# What a reset leaves of the container's own memory at most (anonymous + shared: tmpfs, SysV shm).
RESET_MEMORY_MB = 16
# Run as the exec user, `RESET_SHELL -c _RESET sh INIT_UID EXEC_UID`, through an execute-only copy of the
# shell: the kernel marks a process that executes a file it cannot read as non-dumpable from its
# first instruction, so no process of the same uid can ptrace it, read its memory or reach its
# file descriptors. It uses builtins only for what it checks (an external command would be
# attachable), and every external command's output goes to /dev/null.
_RESET = r"""
me=$$; init_uid=$1; uid=$2
owner() { u=; pp=; { while read -r k v _; do case $k in Uid:) u=$v;; PPid:) pp=$v;; esac; done < "/proc/$1/status"; } 2>/dev/null; }
others() {
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}; [ "$pid" = "$me" ] && continue
    owner "$pid"; [ "$u" = "$uid" ] && return 0
  done
  return 1
}
# every process of this uid but this shell, until none is left (zombies too: what they hold goes only when reaped)
round=0
while others; do
  [ $round -ge 200 ] && { echo "processes of uid $uid survive"; exit 1; }
  kill -9 -1 2>/dev/null; round=$((round + 1)); sleep 0.01 </dev/null >/dev/null 2>&1
done
ipcrm --all </dev/null >/dev/null 2>&1
rm -f /dev/mqueue/* </dev/null >/dev/null 2>&1
chmod -R u+rwX /work /tmp /dev/shm </dev/null >/dev/null 2>&1
find /work /tmp /dev/shm -mindepth 1 -delete </dev/null >/dev/null 2>&1
# the promised state, checked with builtins: only the container's init (PID 1 and its sleep) and this shell
for d in /proc/[0-9]*; do
  pid=${d#/proc/}; owner "$pid"
  [ -z "$u" ] || [ "$pid" = "$me" ] || [ "$pid" = 1 ] || { [ "$u" = "$init_uid" ] && [ "$pp" = 1 ]; } \
    || { echo "process $pid of uid $u left"; exit 1; }
done
lines() { n=0; while read -r _; do n=$((n + 1)); done < "$1"; }
for f in shm msg sem; do
  round=0; lines /proc/sysvipc/$f
  while [ $n -gt 1 ]; do  # a segment goes when its last attachment does: give the killed a moment
    [ $round -ge 50 ] && { echo "SysV $f objects left"; exit 1; }
    sleep 0.01 </dev/null >/dev/null 2>&1; round=$((round + 1)); lines /proc/sysvipc/$f
  done
done
for f in /dev/mqueue/* /dev/mqueue/.* /work/* /work/.* /tmp/* /tmp/.* /dev/shm/* /dev/shm/.*; do
  case ${f##*/} in .|..|'*'|'.*') continue;; esac
  { [ -e "$f" ] || [ -L "$f" ]; } && { echo "left behind: $f"; exit 1; }
done
used=0
stat=/sys/fs/cgroup/memory.stat; [ -r $stat ] || stat=/sys/fs/cgroup/memory/memory.stat
if [ -r $stat ]; then
  while read -r k v; do case $k in anon|shmem|total_rss|total_shmem) used=$((used + v));; esac; done < $stat
fi
[ $used -le @MAX_BYTES@ ] || { echo "$used bytes of memory still held"; exit 1; }
echo clean
""".replace("@MAX_BYTES@", str(RESET_MEMORY_MB << 20))
_OOM_COUNT = ("cat /sys/fs/cgroup/memory.events 2>/dev/null || "
              "cat /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null")


class _ExecState:
    """Shared between the exec thread and the event loop, so a host-side kill keeps partial output."""

    def __init__(self) -> None:
        self.out, self.err = bytearray(), bytearray()
        self.truncated = False
        self.sock: Any = None
        self.exit_code: int | None = None


@dataclass
class _Ran:
    """What one command did, before the sandbox's own bookkeeping (OOM check, retiring the container)."""
    rc: int | None
    out: bytes
    err: bytes
    timed_out: bool  # the deadline in the container killed it
    truncated: bool
    host_killed: bool  # no answer by the host's deadline: the container was killed
    duration_s: float


AGENT_SOURCE = (Path(__file__).parent / "_exec_agent.py").read_text()
_AGENT_KILLED = ("[the sandbox's command runner was killed from inside the sandbox (its own uid's signal or the "
                 "container's out-of-memory killer); this command's output is lost]")


class _RunnerGone(Exception):
    pass


class _CommandRunner:
    """The harness's end of a container's command runner: requests go down the exec's stdin, replies come back
    on its stdout, read by a thread of their own and matched to the waiting call by id. Every reply line must
    carry the nonce sent first (see _exec_agent.py for what the sample's code can and cannot reach)."""

    def __init__(self, exec_id: str, sock: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.exec_id, self._sock, self._loop = exec_id, sock, loop
        self._raw = getattr(sock, "_sock", sock)
        self._nonce = secrets.token_hex(16)
        self._pending: dict[int, asyncio.Future] = {}
        self._ids = 0
        self._send_lock = threading.Lock()
        self.alive = True
        self.stderr = bytearray()  # the runner's own complaints (a traceback), for the error message
        self._send((self._nonce + "\n").encode())
        threading.Thread(target=self._read, daemon=True, name=f"sandbox-runner-{exec_id[:8]}").start()

    def _send(self, data: bytes) -> None:
        with self._send_lock:
            self._raw.sendall(data)

    def _read(self) -> None:
        from docker.utils.socket import frames_iter

        prefix, pending = (self._nonce + " ").encode(), bytearray()
        try:
            for stream, chunk in frames_iter(self._sock, tty=False):
                if stream != 1:
                    self.stderr = (self.stderr + chunk)[-4096:]
                    continue
                pending += chunk
                *lines, rest = pending.split(b"\n")
                pending = bytearray(rest)
                for line in lines:
                    if line.startswith(prefix):
                        msg = json.loads(line[len(prefix):])
                        self._loop.call_soon_threadsafe(self._resolve, msg)
        except (OSError, ValueError):
            pass
        finally:
            self._loop.call_soon_threadsafe(self._gone)

    def _resolve(self, msg: dict[str, Any]) -> None:
        fut = self._pending.pop(msg.get("id"), None)
        if fut is not None and not fut.done():
            fut.set_result(msg)

    def _gone(self) -> None:
        self.alive = False
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(_RunnerGone())
        self._pending.clear()

    async def call(self, run: Any, req: dict[str, Any]) -> dict[str, Any]:
        if not self.alive:
            raise _RunnerGone()
        self._ids += 1
        req["id"] = self._ids
        fut = self._pending[self._ids] = self._loop.create_future()
        try:
            await run(self._send, (json.dumps(req) + "\n").encode())
        except OSError:
            self._pending.pop(req["id"], None)
            raise _RunnerGone() from None
        return await fut

    def close(self) -> None:
        try:
            self._raw.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self._sock.close()
        except OSError:
            pass


def _oom_kills(text: str) -> int:
    for line in text.splitlines():
        k, _, v = line.partition(" ")
        if k == "oom_kill":
            return int(v)
    return 0


class DockerSandbox:
    def __init__(self, backend: "DockerBackend", container: Any) -> None:
        self._b = backend
        self.container = container
        self.id: str = container.id
        self.uses, self.broken = 0, False
        self._oom_seen = 0
        self._runner: _CommandRunner | None = None
        self._runner_lock = asyncio.Lock()
        self.many_commands = False  # this use is expected to run many (a fresh sandbox): the runner from the first
        self.commands = 0  # run in this use

    def _exec_sync(self, cmd: list[str], data: bytes | None, cwd: str, env: dict[str, str], user: str,
                   cap: int, st: _ExecState) -> None:
        api = self._b.api
        ex = api.exec_create(self.id, cmd, stdin=data is not None, user=user, workdir=cwd, environment=env)
        sock = api.exec_start(ex["Id"], socket=True)
        st.sock = sock
        raw = getattr(sock, "_sock", sock)
        try:
            if data is not None:
                # Feed stdin from its own thread: a command that prints before reading would
                # otherwise deadlock against us once both socket buffers fill.
                def feed() -> None:
                    try:
                        raw.sendall(data)
                        raw.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                threading.Thread(target=feed, daemon=True).start()
            from docker.utils.socket import frames_iter

            for stream, chunk in frames_iter(sock, tty=False):
                buf = st.out if stream == 1 else st.err
                room = cap - len(buf)
                buf += chunk[:max(room, 0)]
                if len(chunk) > room:
                    st.truncated = True  # stop reading; the container is recycled, killing the writer
                    return
        finally:
            try:
                sock.close()
            except OSError:
                pass
        st.exit_code = api.exec_inspect(ex["Id"]).get("ExitCode")

    def drop_runner(self) -> None:
        """Close this container's runner: before a reset (which kills it with the uid's other processes) and for good."""
        if self._runner is not None:
            self._runner.close()
            self._runner = None

    async def _start_runner(self) -> _CommandRunner:
        api, b = self._b.api, self._b
        ex = await b.run(api.exec_create, self.id, [b.exec_agent, "-I", "-S", "-c", AGENT_SOURCE], stdin=True,
                         user=b.exec_user, workdir="/", environment={})
        sock = await b.run(api.exec_start, ex["Id"], socket=True)
        return _CommandRunner(ex["Id"], sock, asyncio.get_running_loop())

    async def _via_runner(self, cmd: list[str], data: bytes | None, timeout: float, cwd: str,
                          env: dict[str, str], cap: int) -> _Ran:
        async with self._runner_lock:
            if self._runner is None or not self._runner.alive:
                self._runner = await self._start_runner()
            runner = self._runner
        req = {"argv": cmd, "stdin": base64.b64encode(data).decode() if data is not None else None, "cwd": cwd,
               "env": env, "timeout": timeout, "cap": cap}
        t0 = time.monotonic()
        try:
            msg = await asyncio.wait_for(runner.call(self._b.run, req), timeout + 2 + 0.1 * timeout)
        except asyncio.TimeoutError:
            # no answer by the host's deadline: the runner was stopped or starved from inside
            await self._b._kill_container(self)
            runner.close()
            return _Ran(None, b"", b"", False, False, True, time.monotonic() - t0)
        except _RunnerGone:
            state = await self._b.run(lambda: self._b.api.inspect_container(self.id)["State"])
            if not state.get("Running"):
                raise SandboxError(f"the sandbox container stopped ({state.get('Status')}, exit "
                                   f"{state.get('ExitCode')}): {bytes(runner.stderr).decode(errors='replace')[-500:]}")
            # the container is up, so its runner was killed from inside: the command was lost with it, and the
            # next command starts a new runner
            return _Ran(_KILLED, b"", _AGENT_KILLED.encode(), False, False, False, time.monotonic() - t0)
        if "spawn_error" in msg:
            return _Ran(msg["rc"], b"", msg["spawn_error"].encode(), False, False, False, time.monotonic() - t0)
        return _Ran(msg["rc"], base64.b64decode(msg["out"]), base64.b64decode(msg["err"]), msg["timed_out"],
                    msg["truncated"], False, msg["duration"])

    async def _via_exec(self, cmd: list[str], data: bytes | None, timeout: float, cwd: str,
                        env: dict[str, str], cap: int) -> _Ran:
        """One `docker exec` of `timeout -s KILL T cmd`, for images without the runner's Python."""
        st = _ExecState()
        t0 = time.monotonic()
        host_killed = False
        try:
            await asyncio.wait_for(
                self._b.run(self._exec_sync, [*self._timeout_prefix(timeout), *cmd], data, cwd, env,
                            self._b.exec_user, cap, st),
                timeout + 2 + 0.1 * timeout)
        except asyncio.TimeoutError:
            host_killed = True
            await self._b._kill_container(self)
            # Unblock the reader thread even if the daemon is too wedged to close the stream.
            raw = getattr(st.sock, "_sock", st.sock)
            if raw is not None:
                try:
                    raw.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        dur = time.monotonic() - t0
        timed_out = not host_killed and st.exit_code == _KILLED and dur >= timeout * 0.97
        return _Ran(st.exit_code, bytes(st.out), bytes(st.err), timed_out, st.truncated, host_killed, dur)

    async def _run(self, cmd: list[str], *, data: bytes | None = None, timeout: float, cwd: str = WORKDIR,
                   env: dict[str, str] | None = None, cap: int | None = None) -> _Ran:
        full_env = {**BASE_ENV, **(env or {})}
        cap = self._b.limits.output_bytes if cap is None else cap
        runner = self._b.exec_agent and (self.many_commands or self.commands > 0)
        self.commands += 1
        how = self._via_runner if runner else self._via_exec
        try:
            ran = await how(cmd, data, timeout, cwd, full_env, cap)
        except SandboxError:
            self.broken = True
            raise
        except Exception as e:
            self.broken = True
            raise SandboxError(f"docker exec failed: {e}") from e
        if ran.host_killed:
            self.broken = True
        return ran

    async def _raw_exec(self, cmd: list[str], *, data: bytes | None = None, timeout: float, cwd: str = WORKDIR,
                        env: dict[str, str] | None = None, cap: int | None = None) -> ExecResult:
        ran = await self._run(cmd, data=data, timeout=timeout, cwd=cwd, env=env, cap=cap)
        rc, timed_out, oom = ran.rc, ran.timed_out or ran.host_killed, False
        if ran.truncated:
            self.broken = True
            rc = None
        elif timed_out:
            self.broken = True  # escaped children may still run; a new container is cheaper than a hunt
            rc = None
        elif rc == _KILLED:
            oom = await self._oom_happened()
            if oom:
                self.broken = True
        return ExecResult(returncode=rc, stdout=decode(ran.out), stderr=decode(ran.err), timed_out=timed_out,
                          duration_s=ran.duration_s, truncated=ran.truncated, oom_killed=oom)

    @staticmethod
    def _timeout_prefix(timeout: float) -> list[str]:
        return ["timeout", "-s", "KILL", f"{max(timeout, 0.001):.3f}"]

    async def _oom_happened(self) -> bool:
        try:
            ran = await self._run(["sh", "-c", _OOM_COUNT], timeout=10, cwd="/", cap=65536)
        except SandboxError:
            return False
        n = _oom_kills(decode(ran.out))
        seen, self._oom_seen = self._oom_seen, n
        return n > seen

    async def exec(self, cmd: list[str], *, input: str | bytes | None = None, timeout_s: float | None = None,
                   cwd: str | None = None, env: dict[str, str] | None = None,
                   output_bytes: int | None = None) -> ExecResult:
        check_cmd(cmd)
        data = input.encode() if isinstance(input, str) else input
        timeout = self._b.limits.timeout_s if timeout_s is None else timeout_s
        return await self._raw_exec(cmd, data=data, timeout=timeout, cwd=sandbox_path(cwd or WORKDIR), env=env,
                                    cap=output_bytes)

    async def write_file(self, path: str, content: str | bytes) -> None:
        # Through an exec, not put_archive: the Docker API cannot write into tmpfs mounts.
        p = sandbox_path(path)
        data = content.encode() if isinstance(content, str) else content
        r = await self._raw_exec(["sh", "-c", 'mkdir -p -- "$(dirname -- "$1")" && cat > "$1"', "sh", p],
                                 data=data, timeout=max(30.0, self._b.limits.timeout_s), cwd="/")
        if r.returncode != 0:
            raise OSError(f"write_file({path!r}) failed in sandbox: {r.stderr.strip() or r}")

    async def read_file(self, path: str, *, max_bytes: int = READ_MAX) -> bytes:
        # In the container, as the exec user, under the exec deadline: a FIFO swapped in after the
        # check can only make `head` wait until it is killed.
        p = sandbox_path(path)
        script = ('[ -e "$1" ] || [ -L "$1" ] || { echo missing >&2; exit 2; }; '
                  '[ -f "$1" ] && [ ! -L "$1" ] || { echo "not a regular file" >&2; exit 3; }; exec head -c "$2" -- "$1"')
        try:
            ran = await self._run(["sh", "-c", script, "sh", p, str(max_bytes + 1)], timeout=READ_TIMEOUT_S, cwd="/",
                                  cap=max_bytes + 1)
        except SandboxError as e:
            raise OSError(f"read_file({path!r}) failed: {e}") from None
        if ran.host_killed:
            raise OSError(f"read_file({path!r}): no answer within {READ_TIMEOUT_S:.0f} s") from None
        err = decode(ran.err).strip()
        if ran.rc == 2:
            raise FileNotFoundError(path)
        if ran.timed_out or ran.rc == _KILLED:
            raise OSError(f"read_file({path!r}): not readable within {READ_TIMEOUT_S:.0f} s")
        if ran.rc != 0:
            raise OSError(f"read_file({path!r}) failed in sandbox: {err or ran.rc}")
        if len(ran.out) > max_bytes:
            raise OSError(f"read_file({path!r}): more than the {max_bytes} bytes allowed")
        return ran.out


class DockerBackend(SandboxBackend):
    name = "docker"

    def __init__(self, image: str = "harness-python", limits: SandboxLimits = SandboxLimits(),
                 pool_size: int | None = None, max_uses: int = 50) -> None:
        import docker  # lazy: only a run that uses Docker pays for the SDK

        self.limits = limits
        size = pool_size or max(2, os.cpu_count() or 2)
        try:
            # The SDK keeps one connection pool per URL (/containers/<id>/start, /exec/<id>/json, ...) and evicts
            # the least recently used past num_pools (25): a pool evicted while it is full (more requests to one
            # URL at once than max_pool_size, as fresh sandboxes' creates are) fails its request with an
            # AttributeError inside urllib3. So: room for every fresh sandbox in flight at one URL, and enough
            # pools that one in use is not the least recent.
            self.client = docker.DockerClient(timeout=60, max_pool_size=max(256, 4 * size + 8), num_pools=1024,
                                              **docker.utils.kwargs_from_env())
            self.client.ping()
        except Exception as e:
            raise SandboxError(f"no Docker daemon answers: {e}") from e
        # An exec holds a thread for the command's whole run. asyncio's default executor has only
        # cpu+4 threads: queued execs would eat into their own host-side deadline.
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=max(64, 4 * size),
                                                               thread_name_prefix="sandbox-docker")
        self.api = self.client.api
        if image in _image.list_images():
            cfg = _image.image_config(image)
            self.image_tag = _image.image_tag(image)
        else:  # an image the user already has; same user split as ours
            cfg = {"exec_user": "10001:10001", "init_user": "65534:65534"}
            self.image_tag = image
        self.image_name = image
        self.exec_user, self._init_user = cfg["exec_user"], cfg["init_user"]
        # the command runner's interpreter (sandboxes/_exec_agent.py); without one, a docker exec per command
        self.exec_agent: str | None = cfg.get("exec_agent")
        # our images ship an execute-only shell for the reset (see _RESET); another image gets a plain
        # one, which the sample's uid could attach to: info() says which
        self._reset_shell = cfg.get("reset_shell", "sh")
        try:
            img = self.client.images.get(self.image_tag)
        except docker.errors.ImageNotFound:
            raise SandboxError(f"sandbox image {self.image_tag} is not built; run `harness sandbox build` "
                               f"(or `python -m harness.sandboxes build`)") from None
        self.image_id: str = img.id
        self._run_label = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.last_reset = ""  # what the last reset script said: "clean", or why the container was replaced
        self._reap_orphans()
        self._make_pools(size, self._create, self._reset, self._destroy, max_uses=max_uses)

    @contextlib.asynccontextmanager
    async def acquire(self, *, fresh: bool = False, trusted: bool = False) -> AsyncIterator[DockerSandbox]:
        async with super().acquire(fresh=fresh, trusted=trusted) as sb:
            sb.many_commands, sb.commands = fresh, 0
            yield sb

    def run(self, fn, *args, **kw) -> asyncio.Future:
        return asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args, **kw))

    def _reap_orphans(self) -> None:
        """Remove sandbox containers left by harness processes on this host that died uncleanly."""
        host = socket.gethostname()
        try:
            for c in self.client.containers.list(all=True, filters={"label": LABEL}):
                h, _, rest = c.labels.get(LABEL, "").partition(":")
                pid = rest.partition(":")[0]
                if h == host and pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                    c.remove(force=True)
        except Exception:
            pass  # best effort: a leftover container costs memory, not safety

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "image": self.image_tag, "image_id": self.image_id,
                "docker_version": self.client.version().get("Version"), "limits": self.limits.to_dict(),
                "pool_size": self._pool.size, "max_uses": self._pool.max_uses, "reset_shell": self._reset_shell,
                "reset_attachable_by_sample": self._reset_shell == "sh"}


    async def aclose(self) -> None:
        await self._close_pools()
        self._executor.shutdown(wait=False)
        self.client.close()

    def _create_sync(self) -> Any:
        lim = self.limits
        mem = f"{lim.memory_mb}m"
        # tmpfs pages are charged to the container's memory limit, so their sizes only need to stop
        # one directory from taking all of it.
        tmpfs_opts = "rw,nosuid,nodev,mode=1777,size={}m"
        return self.client.containers.run(
            self.image_tag, ["sleep", "infinity"], detach=True, init=True, user=self._init_user,
            environment={}, network_mode="none", mem_limit=mem, memswap_limit=mem,
            pids_limit=lim.pids, nano_cpus=int(lim.cpus * 1e9), read_only=True,
            tmpfs={WORKDIR: tmpfs_opts.format(max(16, lim.memory_mb // 2)),
                   "/tmp": tmpfs_opts.format(max(16, lim.memory_mb // 4))},
            shm_size="16m", cap_drop=["ALL"], security_opt=["no-new-privileges"], hostname="sandbox",
            ipc_mode="private", labels={LABEL: self._run_label}, stop_signal="SIGKILL")

    async def _create(self) -> DockerSandbox:
        from requests.exceptions import ConnectionError as DaemonDropped
        from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

        try:
            # a loaded daemon sometimes drops the API connection mid-create; that is worth a retry, nothing else is
            async for attempt in AsyncRetrying(retry=retry_if_exception_type(DaemonDropped), stop=stop_after_attempt(3),
                                               wait=wait_exponential(multiplier=0.5, max=4), reraise=True):
                with attempt:
                    c = await self.run(self._create_sync)
        except Exception as e:
            raise SandboxError(f"could not start a sandbox container from {self.image_tag}: {e}") from e
        return DockerSandbox(self, c)

    async def _reset(self, sb: DockerSandbox) -> bool:
        """True only when the container is back in its promised state (see the module's docstring)."""
        sb.drop_runner()  # the reset kills it; the next sample's first command starts another
        st = _ExecState()
        init_uid, uid = self._init_user.split(":")[0], self.exec_user.split(":")[0]
        await asyncio.wait_for(self.run(sb._exec_sync, [self._reset_shell, "-c", _RESET, "sh", init_uid, uid], None,
                                        "/", {}, self.exec_user, 65536, st), 15)
        self.last_reset = decode(bytes(st.out)).strip()
        return st.exit_code == 0 and self.last_reset.endswith("clean")

    async def _kill_container(self, sb: DockerSandbox) -> None:
        try:
            await self.run(sb.container.kill)
        except Exception:
            pass  # already dead

    async def _destroy(self, sb: DockerSandbox) -> None:
        sb.drop_runner()
        try:
            await self.run(sb.container.remove, force=True)
        except Exception:
            pass  # already gone (e.g. removed by someone else); nothing left to free
