"""Docker backend: a pool of warm, locked-down containers (`sleep infinity`), one exec per command.

Every command runs as `timeout -s KILL T cmd` inside the container, and the host also keeps a
deadline: if the exec still hangs past it, the container is killed and replaced. Containers that
timed out, hit the output cap, were OOM-killed or served max_uses samples are replaced.

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
import concurrent.futures
import functools
import os
import socket
import threading
import time
import uuid
from typing import Any

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

    async def _raw_exec(self, cmd: list[str], *, data: bytes | None = None, timeout: float, cwd: str = WORKDIR,
                        env: dict[str, str] | None = None, cap: int | None = None) -> ExecResult:
        lim = self._b.limits
        cap = lim.output_bytes if cap is None else cap
        wrapped = [*self._timeout_prefix(timeout), *cmd]
        full_env = {**BASE_ENV, **(env or {})}
        st = _ExecState()
        t0 = time.monotonic()
        host_killed = False
        try:
            await asyncio.wait_for(
                self._b.run(self._exec_sync, wrapped, data, cwd, full_env, self._b.exec_user, cap, st),
                timeout + 2 + 0.1 * timeout)
        except asyncio.TimeoutError:
            host_killed = True
            self.broken = True
            await self._b._kill_container(self)
            # Unblock the reader thread even if the daemon is too wedged to close the stream.
            raw = getattr(st.sock, "_sock", st.sock)
            if raw is not None:
                try:
                    raw.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        except Exception as e:
            self.broken = True
            raise SandboxError(f"docker exec failed: {e}") from e
        dur = time.monotonic() - t0
        rc = st.exit_code
        timed_out = host_killed or (rc == _KILLED and dur >= timeout * 0.97)
        oom = False
        if st.truncated:
            self.broken = True
            rc = None
        elif timed_out:
            self.broken = True  # escaped children may still run; a new container is cheaper than a hunt
            rc = None
        elif rc == _KILLED:
            oom = await self._oom_happened()
            if oom:
                self.broken = True
        return ExecResult(returncode=rc, stdout=decode(bytes(st.out)), stderr=decode(bytes(st.err)),
                          timed_out=timed_out, duration_s=dur, truncated=st.truncated, oom_killed=oom)

    @staticmethod
    def _timeout_prefix(timeout: float) -> list[str]:
        return ["timeout", "-s", "KILL", f"{max(timeout, 0.001):.3f}"]

    async def _oom_happened(self) -> bool:
        st = _ExecState()
        try:
            await self._b.run(self._exec_sync, ["sh", "-c", _OOM_COUNT], None, "/", {}, self._b.exec_user,
                                    65536, st)
        except Exception:
            return False
        n = _oom_kills(decode(bytes(st.out)))
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
        st = _ExecState()
        try:
            await asyncio.wait_for(self._b.run(self._exec_sync, [*self._timeout_prefix(READ_TIMEOUT_S), "sh", "-c", script,
                                                                 "sh", p, str(max_bytes + 1)], None, "/", {},
                                               self._b.exec_user, max_bytes + 1, st), READ_TIMEOUT_S + 5)
        except asyncio.TimeoutError:
            self.broken = True
            raise OSError(f"read_file({path!r}): no answer within {READ_TIMEOUT_S:.0f} s") from None
        err = decode(bytes(st.err)).strip()
        if st.exit_code == 2:
            raise FileNotFoundError(path)
        if st.exit_code == _KILLED:
            raise OSError(f"read_file({path!r}): not readable within {READ_TIMEOUT_S:.0f} s")
        if st.exit_code != 0:
            raise OSError(f"read_file({path!r}) failed in sandbox: {err or st.exit_code}")
        if len(st.out) > max_bytes:
            raise OSError(f"read_file({path!r}): more than the {max_bytes} bytes allowed")
        return bytes(st.out)


class DockerBackend(SandboxBackend):
    name = "docker"

    def __init__(self, image: str = "harness-python", limits: SandboxLimits = SandboxLimits(),
                 pool_size: int | None = None, max_uses: int = 50) -> None:
        import docker  # lazy: only a run that uses Docker pays for the SDK

        self.limits = limits
        size = pool_size or max(2, os.cpu_count() or 2)
        try:
            # One HTTP connection per concurrent exec; the SDK's default pool of 10 would churn.
            self.client = docker.from_env(timeout=60, max_pool_size=4 * size + 8)
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
        try:
            await self.run(sb.container.remove, force=True)
        except Exception:
            pass  # already gone (e.g. removed by someone else); nothing left to free
