"""bubblewrap backend: each sandbox is a host temp dir bound at /work (and one at /tmp) inside a
fresh set of namespaces (user, pid, net, ipc, uts, cgroup), running the host's /usr/bin/python3.

Limits are rlimits (no cgroups without a daemon): RLIMIT_AS for memory (or, when `address_space_mb`
asks for more address space than memory, RLIMIT_AS for that and RLIMIT_DATA for memory), RLIMIT_NPROC for pids,
RLIMIT_CPU as a backstop to the wall clock, RLIMIT_FSIZE for files. `cpus` is not enforced.
Memory that RLIMIT_AS does not see is bounded too: /dev is a tmpfs of its own, sized (bwrap's
`--dev` would give each exec a tmpfs of half the host's RAM), and when the harness runs as root,
/work and /tmp are tmpfs mounts of `disk_mb` each with an inode cap, so that a sample can neither
fill the host's disk nor pin its memory. Without root they are plain host directories and only
each file's size is capped (RLIMIT_FSIZE); `info()` says so.
When the harness runs as root, each sandbox runs as its own unprivileged host uid (via setpriv):
root mapped into a user namespace would still own the host's files, and a uid per sandbox gives
each its own RLIMIT_NPROC count.
"""
from __future__ import annotations

import asyncio
import functools
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from ._process import run_process
from ._types import (BASE_ENV, READ_MAX, READ_TIMEOUT_S, WORKDIR, ExecResult, SandboxBackend, SandboxError,
                     SandboxLimits, check_cmd, read_regular_file, sandbox_path)

BWRAP = "bwrap"
_FILE_LIMIT = 1 << 30  # RLIMIT_FSIZE: largest single file a sandbox may write


@functools.lru_cache(maxsize=1)
def bwrap_status() -> dict[str, Any]:
    """Whether bwrap can actually build a sandbox here (it is often installed but blocked)."""
    exe = shutil.which(BWRAP)
    if exe is None:
        return {"ok": False, "error": "bwrap not found (apt-get install bubblewrap)", "version": None}
    if shutil.which("prlimit") is None or shutil.which("nice") is None:
        return {"ok": False, "error": "prlimit or nice not found (apt-get install util-linux coreutils)",
                "version": None}
    try:
        version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
        with tempfile.TemporaryDirectory() as d:
            os.chmod(d, 0o711)  # the probe runs as the sandbox uid, like real sandboxes
            argv = _bwrap_argv(Path(d), Path(d), Path(d), ["/bin/true"], WORKDIR, {})
            r = subprocess.run(_setpriv(_probe_uid()) + argv, capture_output=True, text=True, timeout=20, env={})
        if r.returncode != 0:
            return {"ok": False, "error": f"bwrap cannot create a sandbox here: {r.stderr.strip()}",
                    "version": version}
    except (OSError, subprocess.SubprocessError) as e:
        return {"ok": False, "error": f"bwrap failed: {e}", "version": None}
    return {"ok": True, "error": "", "version": version, "path": exe}


def _probe_uid() -> int | None:
    return 65534 if os.geteuid() == 0 else None


def _setpriv(uid: int | None) -> list[str]:
    if uid is None:
        return []
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all", "--"]


def _ro_system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    # On merged-/usr systems /bin, /lib... are symlinks; recreate them rather than bind them.
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    # Only the parts of /etc that programs need: shared-library config and alternatives
    # (numpy's BLAS is found through /etc/alternatives), never passwd/shadow/ssh or the like.
    for p in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives",
              "/etc/localtime", "/etc/ssl/certs", "/etc/mime.types"):
        args += ["--ro-bind-try", p, p]
    return args


def _dev(size_bytes: int) -> list[str]:
    """What bwrap's --dev makes (a tmpfs with the harmless devices bound in), but of a bounded size."""
    args = ["--size", str(size_bytes), "--tmpfs", "/dev"]
    for node in ("null", "zero", "full", "random", "urandom", "tty"):
        args += ["--dev-bind-try", f"/dev/{node}", f"/dev/{node}"]
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        args += ["--symlink", target, f"/dev/{name}"]
    return args + ["--dir", "/dev/shm"]


def _dev_size(limits: SandboxLimits) -> int:
    return min(256, max(16, limits.memory_mb // 8)) << 20


def _bwrap_argv(work: Path, tmp: Path, etc: Path, cmd: list[str], cwd: str, env: dict[str, str],
                *, disable_userns: bool = True, dev_bytes: int = 16 << 20) -> list[str]:
    argv = [BWRAP, "--unshare-all", "--die-with-parent", "--new-session", "--hostname", "sandbox",
            *_ro_system_binds(),
            "--ro-bind-try", str(etc / "passwd"), "/etc/passwd",
            "--ro-bind-try", str(etc / "group"), "/etc/group",
            "--proc", "/proc", *_dev(dev_bytes),
            "--bind", str(work), WORKDIR, "--bind", str(tmp), "/tmp",
            "--remount-ro", "/",  # bwrap's root is a tmpfs; keep it read-only like the docker image
            "--chdir", cwd, "--clearenv"]
    if disable_userns:
        argv += ["--unshare-user", "--disable-userns"]  # no nested namespaces: less kernel surface
    for k, v in env.items():
        argv += ["--setenv", k, v]
    return argv + ["--", *cmd]


def _mount_tmpfs(d: Path, size_mb: int, uid: int | None) -> None:
    owner = f",uid={uid},gid={uid}" if uid is not None else ""
    opts = f"size={size_mb}m,nr_inodes={max(4096, size_mb * 64)},mode=0700,nosuid,nodev{owner}"
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "harness-sandbox", str(d)], capture_output=True, text=True,
                       timeout=30)
    if r.returncode != 0:
        raise SandboxError(f"cannot mount a tmpfs for the sandbox at {d}: {r.stderr.strip()}")


def _count_processes(uid: int) -> int:
    n = 0
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.stat(f"/proc/{d}").st_uid == uid:
                    n += 1
            except OSError:
                pass
    return n


def _wipe(d: Path) -> None:
    def force(func, path, _exc):  # sandboxed code may have chmod'ed things to 000
        os.chmod(os.path.dirname(path), 0o700)
        if os.path.isdir(path) and not os.path.islink(path):
            os.chmod(path, 0o700)
        func(path)

    for p in d.iterdir():
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, onerror=force)
        else:
            p.unlink()


class BwrapSandbox:
    def __init__(self, backend: "BwrapBackend", root: Path, uid: int | None) -> None:
        self._b = backend
        self.root, self.uid = root, uid
        self.work, self.tmp = root / "work", root / "tmp"
        self.uses, self.broken = 0, False

    def _host_path(self, path: str, *, create_parents: bool = False) -> Path:
        p = sandbox_path(path)
        for prefix, host in ((WORKDIR, self.work), ("/tmp", self.tmp)):
            if p == prefix or p.startswith(prefix + "/"):
                target = host / p[len(prefix):].lstrip("/")
                break
        else:
            raise ValueError(f"{path!r}: only files under {WORKDIR} and /tmp are reachable from the host")
        if create_parents:
            self._makedirs(target.parent, host)
        # Sandboxed code may plant symlinks (work/x -> /etc/shadow); never follow one out.
        parent = Path(os.path.realpath(target.parent))
        if parent != host and host not in parent.parents:
            raise PermissionError(f"{path!r} resolves outside the sandbox")
        return parent / target.name

    def _makedirs(self, d: Path, host: Path) -> None:
        missing = []
        while d != host and not d.exists():
            missing.append(d)
            d = d.parent
        for m in reversed(missing):
            if os.path.realpath(m.parent) != str(m.parent) and host not in Path(os.path.realpath(m.parent)).parents:
                raise PermissionError(f"{m} resolves outside the sandbox")
            m.mkdir()
            if self.uid is not None:
                os.chown(m, self.uid, self.uid)

    async def exec(self, cmd: list[str], *, input: str | bytes | None = None, timeout_s: float | None = None,
                   cwd: str | None = None, env: dict[str, str] | None = None,
                   output_bytes: int | None = None) -> ExecResult:
        check_cmd(cmd)
        lim = self._b.limits
        timeout = lim.timeout_s if timeout_s is None else timeout_s
        argv = _setpriv(self.uid) + _bwrap_argv(self.work, self.tmp, self._b._etc, cmd,
                                                sandbox_path(cwd or WORKDIR), {**BASE_ENV, **(env or {})},
                                                dev_bytes=_dev_size(lim))
        nproc = lim.pids if self.uid is not None else lim.pids + await asyncio.to_thread(_count_processes, os.getuid())
        cpu = int(timeout) + 2
        mem = lim.memory_mb << 20
        space = (lim.address_space_mb or lim.memory_mb) << 20
        fsize = min(_FILE_LIMIT, lim.disk_mb << 20)

        rlimits = [f"--as={space}", f"--nproc={nproc}", f"--cpu={cpu}", f"--fsize={fsize}", "--core=0",
                   "--nofile=1024"]
        if space > mem:  # what a process may make writable: its usable memory, whatever it reserves
            rlimits.append(f"--data={mem}")
        # The limits (and a lower priority, to keep the harness itself responsive on small machines) are set by
        # nice(1) and prlimit(1) in the child, before setpriv drops root: a preexec_fn would make Python fork() the
        # whole harness on the event loop (about 40 ms at 300 MB resident), where without one it uses vfork.
        argv = ["nice", "-n", "5", "prlimit", *rlimits, "--", *argv]
        data = input.encode() if isinstance(input, str) else input
        res = await run_process(argv, input=data, timeout_s=timeout, output_bytes=output_bytes or lim.output_bytes,
                                env={})
        if res.returncode == 1 and res.stderr.startswith("bwrap: execvp"):
            res.returncode = 127  # command not found, as a shell (and docker's `timeout`) reports it
        return res

    async def write_file(self, path: str, content: str | bytes) -> None:
        data = content.encode() if isinstance(content, str) else content
        target = self._host_path(path, create_parents=True)

        def write() -> None:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            if self.uid is not None:
                os.chown(target, self.uid, self.uid)

        await asyncio.to_thread(write)

    async def read_file(self, path: str, *, max_bytes: int = READ_MAX) -> bytes:
        target = self._host_path(path)
        return await asyncio.wait_for(asyncio.to_thread(read_regular_file, target, max_bytes), READ_TIMEOUT_S)


class BwrapBackend(SandboxBackend):
    name = "bwrap"

    def __init__(self, limits: SandboxLimits = SandboxLimits(), pool_size: int | None = None) -> None:
        st = bwrap_status()
        if not st["ok"]:
            raise SandboxError(st["error"])
        self.limits = limits
        self._quota = os.geteuid() == 0  # tmpfs mounts for /work and /tmp need root
        self._version = st["version"]
        self._root = Path(tempfile.mkdtemp(prefix="harness-bwrap-"))
        os.chmod(self._root, 0o711)  # sandbox uids must traverse it to reach their own dirs
        self._etc = self._root / "etc"
        self._etc.mkdir(mode=0o755)
        # A passwd without the host's accounts; enough for getpass/pwd lookups to work.
        (self._etc / "passwd").write_text("root:x:0:0::/:/usr/sbin/nologin\n"
                                          f"sandbox:x:{os.getuid() if os.geteuid() else 65534}:65534::/work:/bin/sh\n"
                                          "nobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n")
        (self._etc / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
        for f in ("passwd", "group"):
            os.chmod(self._etc / f, 0o644)
        self._make_pools(pool_size or max(2, os.cpu_count() or 2), self._create, self._reset, self._destroy,
                          max_uses=1_000_000)

    def info(self) -> dict[str, Any]:
        not_enforced = ["cpus"] if self._quota else ["cpus", "disk_mb (not root: /work and /tmp are host "
                                                               "directories; only each file is capped)"]
        return {"backend": self.name, "bwrap_version": self._version, "python": "/usr/bin/python3 (host)",
                "limits": self.limits.to_dict(), "pool_size": self._pool.size, "not_enforced": not_enforced,
                "memory_limit": ("RLIMIT_DATA (writable memory; RLIMIT_AS at address_space_mb)"
                                 if (self.limits.address_space_mb or 0) > self.limits.memory_mb else
                                 "RLIMIT_AS (address space)") + " + sized tmpfs for /dev" +
                                (", /work, /tmp" if self._quota else "")}


    async def aclose(self) -> None:
        await self._close_pools()
        await asyncio.to_thread(shutil.rmtree, self._root, True)

    async def _create(self) -> BwrapSandbox:
        def make() -> BwrapSandbox:
            root = Path(tempfile.mkdtemp(prefix="sb-", dir=self._root))
            os.chmod(root, 0o711)
            # Under root: a fresh high uid per sandbox (no passwd entry needed).
            uid = 0x40000 + secrets.randbelow(0x10000) if os.geteuid() == 0 else None
            for d in ("work", "tmp"):
                (root / d).mkdir(mode=0o700)
                if self._quota:
                    _mount_tmpfs(root / d, self.limits.disk_mb, uid)
                elif uid is not None:
                    os.chown(root / d, uid, uid)
            return BwrapSandbox(self, root, uid)

        return await asyncio.to_thread(make)

    async def _reset(self, sb: BwrapSandbox) -> bool:
        def wipe() -> bool:
            for d in (sb.work, sb.tmp):
                _wipe(d)
            return not any(sb.work.iterdir()) and not any(sb.tmp.iterdir())

        return await asyncio.to_thread(wipe)

    async def _destroy(self, sb: BwrapSandbox) -> None:
        def destroy() -> None:
            if self._quota:
                for d in (sb.work, sb.tmp):
                    subprocess.run(["umount", "-l", str(d)], capture_output=True, timeout=30)
            shutil.rmtree(sb.root, True)

        await asyncio.to_thread(destroy)
