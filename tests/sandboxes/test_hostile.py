"""Model-written code is hostile until proven otherwise: each test here is an attack that must fail,
run against every real backend (docker is skipped only when no daemon answers)."""
import asyncio
import os
import socket
import textwrap
import time
import uuid
from pathlib import Path

import pytest



PY = "python3"


def py(code: str) -> list[str]:
    return [PY, "-c", textwrap.dedent(code)]


async def test_fork_bomb_is_contained(backend, h):
    marker = f"forkbomb-{uuid.uuid4().hex[:8]}"
    code = """
        import os, sys
        while True:
            try:
                os.fork()
            except OSError:
                pass
    """
    async with backend.acquire() as sb:
        task = asyncio.create_task(sb.exec(py(code) + [marker], timeout_s=4))
        await asyncio.sleep(2)
        running = h.host_pids_with(marker)
        r = await task
    # Every fork bomb process carries the marker in its argv; the pids limit caps how many exist
    # (+2: the bwrap launcher and namespace init on the bwrap backend).
    assert len(running) <= h.LIMITS.pids + 2, f"{len(running)} processes escaped the pids limit"
    assert r.timed_out and r.returncode is None
    assert await h.wait_until(lambda: not h.host_pids_with(marker), 10), "fork bomb processes survived"
    async with backend.acquire() as sb:
        assert (await sb.exec(["echo", "alive"])).stdout == "alive\n"


async def test_busy_loop_is_killed_at_the_time_limit(backend, h):
    async with backend.acquire() as sb:
        t0 = time.monotonic()
        r = await sb.exec(py("while True: pass"), timeout_s=1.5)
        elapsed = time.monotonic() - t0
        assert r.timed_out and r.returncode is None
        assert 1.4 <= elapsed < 4, elapsed
        # The same sandbox still answers (docker recycles it on release, not mid-sample).
        assert (await sb.exec(["echo", "again"])).stdout == "again\n"
    async with backend.acquire() as sb:
        r = await sb.exec(["echo", "next"])
        assert r.ok and r.stdout == "next\n"


async def test_allocating_4gib_is_killed(backend, h):
    async with backend.acquire() as sb:
        # bytes * n writes every page (a bare bytearray(n) would stay untouched zero pages).
        r = await sb.exec(py("x = b'\\x01' * (4 << 30); print('ALLOCATED', len(x))"), timeout_s=20)
        assert "ALLOCATED" not in r.stdout
        assert r.returncode != 0 and not r.timed_out
        # docker: the cgroup OOM killer; bwrap: RLIMIT_AS turns it into a MemoryError.
        assert r.oom_killed or "MemoryError" in r.stderr, r
    async with backend.acquire() as sb:
        assert (await sb.exec(["echo", "ok"])).ok


async def test_one_gigabyte_of_stdout_is_truncated(backend, h):
    code = """
        import sys
        chunk = 'x' * (1 << 20)
        for _ in range(1024):
            sys.stdout.write(chunk)
        print('FINISHED', file=sys.stderr)
    """
    async with backend.acquire() as sb:
        t0 = time.monotonic()
        r = await sb.exec(py(code), timeout_s=30)
        assert r.truncated and not r.timed_out
        assert len(r.stdout) == h.LIMITS.output_bytes and set(r.stdout) == {"x"}
        assert "FINISHED" not in r.stderr  # the writer was stopped, not drained
        assert time.monotonic() - t0 < 10
    async with backend.acquire() as sb:
        assert (await sb.exec(["echo", "ok"])).ok


def _host_ip() -> str | None:
    """The host's address on its default route (no packet is sent)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("1.1.1.1", 53))
            return s.getsockname()[0]
    except OSError:
        return None


async def test_network_is_cut_off(backend, h):
    accepted = []

    async def on_conn(reader, writer):
        accepted.append(1)
        writer.close()

    server = await asyncio.start_server(on_conn, "0.0.0.0", 0)
    port = server.sockets[0].getsockname()[1]
    targets = [("1.1.1.1", 53), ("127.0.0.1", port)] + ([(ip, port)] if (ip := _host_ip()) else [])
    # Positive control: the host can reach its own server, so a failure inside means isolation.
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.close()
    await h.wait_until(lambda: accepted, 2)
    assert accepted == [1]
    code = """
        import socket, sys
        for host, port in %r:
            try:
                socket.create_connection((host, port), timeout=2).close()
                print('CONNECTED', host, port)
            except OSError as e:
                print('blocked', host, port, type(e).__name__)
        try:
            socket.getaddrinfo('deb.debian.org', 80)
            print('RESOLVED')
        except OSError:
            print('no dns')
    """ % (targets,)
    try:
        async with backend.acquire() as sb:
            res = await sb.exec(py(code), timeout_s=15)
    finally:
        server.close()
    assert res.returncode == 0, res
    assert "CONNECTED" not in res.stdout and "RESOLVED" not in res.stdout, res.stdout
    assert res.stdout.count("blocked") == len(targets)
    assert accepted == [1], "the sandbox reached a server on the host"


async def test_shell_out_cannot_write_host_files(backend, tmp_path, h):
    host_dir = tmp_path / "outside"
    host_dir.mkdir(mode=0o777)
    victims = [host_dir / "pwned", Path(f"/tmp/harness-pwned-{uuid.uuid4().hex[:8]}")]
    cmds = "; ".join(f"echo pwned > {v}" for v in victims)
    async with backend.acquire() as sb:
        r = await sb.exec(py(f"import posix; print(posix.system({cmds!r}))"))
        assert r.returncode == 0
    for v in victims:
        assert not v.exists(), f"sandbox wrote {v} on the host"


async def test_cannot_read_shadow_or_host_home(backend, h):
    home_secret = Path.home() / f".harness-sandbox-test-{uuid.uuid4().hex[:8]}"
    home_secret.write_text("host-home-secret")
    try:
        code = """
            import os, sys
            for p in sys.argv[1:]:
                try:
                    data = open(p).read()
                    print('READ', p, data[:40].replace('\\n', ' '))
                except OSError as e:
                    print('denied', p, type(e).__name__)
            try:
                print('LISTED', os.listdir(os.path.dirname(sys.argv[2])))
            except OSError as e:
                print('denied listing', type(e).__name__)
        """
        async with backend.acquire() as sb:
            r = await sb.exec(py(code) + ["/etc/shadow", str(home_secret)])
    finally:
        home_secret.unlink()
    assert r.returncode == 0, r
    assert "READ" not in r.stdout and "host-home-secret" not in r.stdout, r.stdout
    assert "LISTED" not in r.stdout, r.stdout
    assert r.stdout.count("denied") == 3


async def test_host_environment_is_not_visible(backend, secrets_in_env, h):
    code = """
        import os, glob
        print(repr(dict(os.environ)))
        for f in glob.glob('/proc/*/environ'):
            try:
                print(open(f, 'rb').read().replace(b'\\0', b' ').decode(errors='replace'))
            except OSError:
                pass
    """
    async with backend.acquire() as sb:
        r = await sb.exec(py(code), env={"ALLOWED": "yes"})
    assert r.returncode == 0, r
    assert "'ALLOWED': 'yes'" in r.stdout  # positive control: env passed on purpose does arrive
    for name, value in h.SECRETS.items():
        assert value not in r.stdout and name not in r.stdout


async def test_root_filesystem_is_read_only(backend, h):
    code = """
        import sys
        for p in sys.argv[1:]:
            try:
                open(p, 'w').write('x')
                print('WROTE', p)
            except OSError as e:
                print('denied', p, type(e).__name__)
    """
    async with backend.acquire() as sb:
        r = await sb.exec(py(code) + ["/usr/bin/evil", "/etc/evil", "/evil", "/usr/lib/python3/evil.py",
                                      "/work/fine", "/tmp/fine"])
    assert r.returncode == 0, r
    wrote = [line.split()[1] for line in r.stdout.splitlines() if line.startswith("WROTE")]
    assert wrote == ["/work/fine", "/tmp/fine"], r.stdout


async def test_killed_exec_leaves_no_process_behind(backend, h):
    marker = f"sleeper-{uuid.uuid4().hex[:8]}"
    # A detached grandchild in its own session, plus a hung parent that gets killed.
    code = """
        import os, subprocess, sys, time
        subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', sys.argv[1]],
                         start_new_session=True)
        while True:
            time.sleep(1)
    """
    async with backend.acquire() as sb:
        task = asyncio.create_task(sb.exec(py(code) + [marker], timeout_s=2))
        if not await h.wait_until(lambda: len(h.host_pids_with(marker)) >= 2, 5):
            await task
            pytest.skip("sandbox processes are not visible from this host (remote Docker daemon?)")
        r = await task
        assert r.timed_out
    assert await h.wait_until(lambda: not h.host_pids_with(marker), 10), h.host_pids_with(marker)


async def test_background_process_does_not_outlive_the_sample(backend, h):
    marker = f"daemon-{uuid.uuid4().hex[:8]}"
    code = """
        import subprocess, sys
        subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', sys.argv[1]],
                         start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    """
    async with backend.acquire() as sb:
        r = await sb.exec(py(code) + [marker])
        assert r.returncode == 0 and not r.timed_out
        assert r.duration_s < 3  # the exec did not wait for the daemon
    assert await h.wait_until(lambda: not h.host_pids_with(marker), 10), h.host_pids_with(marker)


async def test_pool_reuse_does_not_leak_files(make_backend, h):
    backend = make_backend(pool_size=1)
    async with backend.acquire() as sb1:
        await sb1.write_file("secret.txt", "sample-1-answer")
        r = await sb1.exec(["sh", "-c", "mkdir -p /work/d/e && echo x > /work/d/e/f && echo y > /tmp/t "
                                        "&& echo z > /work/.hidden && chmod 000 /work/d"])
        assert r.returncode == 0, r
    async with backend.acquire() as sb2:
        assert sb2 is sb1  # the pooled sandbox was really reused
        r = await sb2.exec(["sh", "-c", "ls -A /work /tmp"])
        assert r.returncode == 0
        assert "secret" not in r.stdout and ".hidden" not in r.stdout and "t\n" not in r.stdout, r.stdout
        with pytest.raises(FileNotFoundError):
            await sb2.read_file("secret.txt")


async def test_symlink_planted_by_sandbox_does_not_expose_host(backend, h):
    async with backend.acquire() as sb:
        r = await sb.exec(["sh", "-c", "ln -s /etc/shadow /work/leak && ln -s /etc /work/etcdir"])
        assert r.returncode == 0
        for p in ("leak", "etcdir/shadow"):
            with pytest.raises(OSError):
                data = await sb.read_file(p)
                assert b"root:" not in data
        with pytest.raises(OSError):
            await sb.write_file("etcdir/evil", "x")


# ---------------------------------------------------------------- what one sample can leave to the next

POISON = r"""
import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
for _ in range(2):  # System V shared memory: survives its processes
    shmid = libc.shmget(0, 64 << 20, 0o1600)
    ctypes.memset(libc.shmat(shmid, None, 0), 1, 64 << 20)
libc.mq_open.restype = ctypes.c_int
mq = libc.mq_open(b"/poison", os.O_CREAT | os.O_RDWR, 0o600, None)  # a POSIX message queue
print("shm", open("/proc/sysvipc/shm").read().count("\n") - 1, "mq", mq >= 0, flush=True)
if os.fork() == 0:  # a process that outlives the sample, in its own session
    os.setsid()
    if os.fork() == 0:
        time.sleep(600)
    os._exit(0)
"""


async def test_pooled_reset_removes_ipc_queues_and_processes(kind, make_backend):
    """SysV segments, message queues and stray processes of one sample are gone before the next
    sample gets the sandbox (or the sandbox is replaced)."""
    backend = make_backend(pool_size=1)
    async with backend.acquire() as sb1:
        r = await sb1.exec(["python3", "-c", POISON], timeout_s=20)
        assert r.stdout.split()[:2] == ["shm", "2"], r  # the poison was really planted
    async with backend.acquire() as sb2:
        # every process but this shell's parent (Docker's command runner, started for this sample)
        r = await sb2.exec(["sh", "-c", "cat /proc/sysvipc/shm | wc -l; ls -A /dev/mqueue 2>/dev/null | wc -l; "
                                        "for p in /proc/[0-9]*; do [ ${p#/proc/} = $PPID ] && continue; "
                                        "cat $p/cmdline 2>/dev/null | tr '\\0' ' '; echo; done"])
        lines = r.stdout.splitlines()
        assert lines[0] == "1" and lines[1] == "0", r.stdout  # only the header of /proc/sysvipc/shm
        assert not any("sleep" in line and "infinity" not in line for line in lines[2:]) and \
            not any("python3" in line for line in lines[2:]), r.stdout
    if kind == "docker":
        assert sb2 is sb1 and backend.last_reset == "clean"  # reset, not merely replaced


async def test_docker_reset_shell_cannot_be_attached_by_the_sample_uid(kind, make_backend):
    """The reset's shell is execute-only, so the kernel makes it non-dumpable: the sample's uid can
    read neither its memory nor its file descriptors (the ways to forge what it reports)."""
    if kind != "docker":
        pytest.skip("docker only")
    backend = make_backend(pool_size=1)
    assert backend.info()["reset_attachable_by_sample"] is False
    async with backend.acquire() as sb:
        # `; :` keeps the probed process the shell itself (a shell may exec a lone last command)
        r = await sb.exec(["sh", "-c", f"{backend._reset_shell} -c 'sleep 5; :' & pid=$!; sleep 0.3; "
                                       "ls /proc/$pid/fd >/dev/null 2>&1 && echo fd-open || echo fd-closed; "
                                       "head -c1 /proc/$pid/mem >/dev/null 2>&1 && echo mem-open || echo mem-closed; "
                                       "sleep 5 & p2=$!; ls /proc/$p2/fd >/dev/null 2>&1 && echo control-open"])
    assert r.stdout.split() == ["fd-closed", "mem-closed", "control-open"], r  # the control proves the probe works


async def test_docker_runner_cannot_be_forged_or_read_and_survives_its_killing(kind, make_backend):
    """The command runner is the parent of every command and runs as the sample's uid. It is non-dumpable, so a
    command can neither write a forged reply into its output stream nor read its memory (the nonce); a command
    that kills it loses only its own output, and the next command gets a new runner in the same container."""
    if kind != "docker":
        pytest.skip("docker only")
    backend = make_backend(pool_size=1)
    async with backend.acquire(fresh=True) as sb:
        await sb.write_file("kept.txt", "still here")
        forged = '{"id": 2, "rc": 0, "out": "Zm9yZ2Vk", "err": "", "timed_out": false, "truncated": false, ' \
                 '"duration": 0}'
        r = await sb.exec(["sh", "-c", f"echo '{forged}' > /proc/$PPID/fd/1 && echo wrote || echo fd-closed; "
                                       "head -c1 /proc/$PPID/mem >/dev/null 2>&1 && echo mem-open || echo mem-closed; "
                                       "grep -c . /proc/$PPID/cmdline >/dev/null && echo cmdline-readable"])
        # the control (its cmdline, readable by anyone) proves the probes reached the runner
        assert r.stdout.split() == ["fd-closed", "mem-closed", "cmdline-readable"], r
        r = await sb.exec(["sh", "-c", "echo before; kill -9 $PPID; sleep 1; echo after"])
        assert r.returncode == 137 and "runner was killed from inside the sandbox" in r.stderr, r
        assert not sb.broken
        r = await sb.exec(["cat", "kept.txt"])
        assert r.ok and r.stdout == "still here", r


async def test_read_file_refuses_fifos_and_oversized_files_without_hanging(backend):
    async with backend.acquire() as sb:
        r = await sb.exec(["sh", "-c", "mkfifo /work/report && head -c 3000 /dev/zero > /work/big && echo ok > /work/f"])
        assert r.returncode == 0, r
        for path in ("report", "big"):
            with pytest.raises(OSError):
                await asyncio.wait_for(sb.read_file(path, max_bytes=2000), 40)  # a hang fails the test
        assert await sb.read_file("f") == b"ok\n"
        assert await sb.read_file("big", max_bytes=3000) == b"\0" * 3000


async def test_bwrap_dev_work_and_tmp_are_size_limited(kind, make_backend):
    """bwrap's --dev would give each exec a tmpfs of half the host's RAM; /work and /tmp would be
    unlimited host directories."""
    if kind != "bwrap":
        pytest.skip("bwrap only")
    from harness.sandboxes import SandboxLimits

    backend = make_backend(limits=SandboxLimits(timeout_s=20, memory_mb=512, disk_mb=32))
    async with backend.acquire() as sb:
        # files of 30 MB each (under RLIMIT_FSIZE): only the size of the file system can stop them
        fill = "for n in 1 2 3 4; do head -c 30000000 /dev/zero > {d}/x$n; done; du -sb {d} | cut -f1; rm -f {d}/x*; "
        r = await sb.exec(["sh", "-c", fill.format(d="/dev/shm") + fill.format(d="/work") +
                           "i=0; while [ $i -lt 5000 ]; do echo -n > /tmp/f$i || break; i=$((i+1)); done; echo $i"])
        shm, work, files = (int(x) for x in r.stdout.split()[:3])
        assert 30_000_000 <= shm <= 64 << 20, r  # the bomb ran; /dev is memory_mb // 8
        if os.geteuid() == 0:
            assert 30_000_000 <= work <= 32 << 20 and 4000 <= files < 5000, r  # disk_mb; the inode cap
            assert "disk_mb" not in " ".join(backend.info()["not_enforced"])
        else:
            assert work <= 32 << 20  # RLIMIT_FSIZE only
