import asyncio
import time

import pytest

from harness.sandboxes import SandboxError, SandboxLimits, get_backend
from harness.sandboxes._types import sandbox_path


async def test_exec_stdin_exit_codes_and_stderr(backend):
    async with backend.acquire() as sb:
        r = await sb.exec(["python3", "-c", "import sys; d = sys.stdin.read(); print(d[::-1]); "
                                            "print('err', file=sys.stderr); sys.exit(3)"], input="abc")
        assert (r.returncode, r.stdout, r.stderr, r.timed_out, r.truncated) == (3, "cba\n", "err\n", False, False)
        big = "x" * 300_000  # more than a pipe/socket buffer, to catch stdin/stdout deadlocks
        r = await sb.exec(["python3", "-c", "import sys; print(len(sys.stdin.read()))"], input=big.encode())
        assert r.ok and r.stdout == "300000\n"
        assert (await sb.exec(["sh", "-c", "exit 0"])).returncode == 0
        assert (await sb.exec(["false"])).returncode == 1
        r = await sb.exec(["sh", "-c", "kill -TERM $$"])
        assert r.returncode == 143 and not r.timed_out
        assert (await sb.exec(["no-such-command-xyz"])).returncode not in (0, None)


async def test_cwd_env_and_files(backend):
    async with backend.acquire() as sb:
        await sb.write_file("pkg/data.bin", bytes(range(256)))
        await sb.write_file("/work/pkg/main.py", "import os; print(os.getcwd(), os.environ['X'], open('data.bin','rb').read()[:3])")
        assert await sb.read_file("/work/pkg/data.bin") == bytes(range(256))
        r = await sb.exec(["python3", "main.py"], cwd="pkg", env={"X": "y"})
        assert r.stdout == "/work/pkg y b'\\x00\\x01\\x02'\n", r
        await sb.exec(["sh", "-c", "echo made-inside > /work/out.txt"])
        assert await sb.read_file("out.txt") == b"made-inside\n"
        await sb.write_file("/tmp/t.txt", "in tmp")
        assert (await sb.exec(["cat", "/tmp/t.txt"])).stdout == "in tmp"
        with pytest.raises(FileNotFoundError):
            await sb.read_file("missing.txt")
        # Not root inside.
        assert (await sb.exec(["sh", "-c", "id -u"])).stdout.strip() != "0"


async def test_numpy_and_sympy_where_the_image_has_them(kind, backend):
    if kind != "docker":
        pytest.skip("bwrap uses the host's python3, which need not have numpy")
    async with backend.acquire() as sb:
        r = await sb.exec(["python3", "-c", "import numpy, sympy; print(numpy.arange(4).sum(), sympy.sqrt(8))"])
        assert r.stdout == "6 2*sqrt(2)\n", r


async def test_parallel_execs_share_a_small_pool(make_backend):
    backend = make_backend(pool_size=3)
    seen = set()

    async def one(i: int) -> str:
        async with backend.acquire() as sb:
            seen.add(id(sb))
            r = await sb.exec(["python3", "-c", f"import time; time.sleep(0.4); print({i})"])
            assert r.ok, r
            return r.stdout.strip()

    t0 = time.monotonic()
    out = await asyncio.gather(*(one(i) for i in range(8)))
    elapsed = time.monotonic() - t0
    assert out == [str(i) for i in range(8)]
    assert len(seen) <= 3
    assert elapsed < 8 * 0.4, f"no parallelism: {elapsed:.2f}s"


async def test_trusted_and_candidate_pools_share_the_slots(make_backend):
    """Ground truth (the trusted pool) and candidates never share a sandbox, and never run more sandboxes
    at once than pool_size together: a trusted use waits for the candidate's to end."""
    backend = make_backend(pool_size=1)
    order = []

    async def candidate():
        async with backend.acquire() as sb:
            order.append("candidate in")
            await sb.exec(["true"])
            await asyncio.sleep(0.3)
            order.append("candidate out")
            return id(sb)

    async def trusted():
        await asyncio.sleep(0.05)  # asks while the candidate holds the only slot
        async with backend.acquire(trusted=True) as sb:
            order.append("trusted in")
            assert (await sb.exec(["true"])).ok
            return id(sb)

    ids = await asyncio.gather(candidate(), trusted())
    assert order == ["candidate in", "candidate out", "trusted in"] and ids[0] != ids[1]


async def test_fresh_sandbox_keeps_state_and_is_private(make_backend):
    backend = make_backend(pool_size=1)
    async with backend.acquire(fresh=True) as a, backend.acquire(fresh=True) as b:
        assert a is not b
        await a.exec(["sh", "-c", "echo 1 > state"])
        await a.exec(["sh", "-c", "echo 2 >> state"])
        assert await a.read_file("state") == b"1\n2\n"
        with pytest.raises(FileNotFoundError):
            await b.read_file("state")


async def test_info_is_recordable(kind, backend):
    info = backend.info()
    assert info["backend"] == kind == backend.name
    assert info["limits"]["memory_mb"] == 512
    if kind == "docker":
        assert info["image"].startswith("harness-python:") and info["image_id"].startswith("sha256:")
    else:
        assert info["bwrap_version"].startswith("bubblewrap")


async def test_docker_container_is_locked_down(kind, backend):
    if kind != "docker":
        pytest.skip("docker only")
    async with backend.acquire() as sb:
        attrs = await asyncio.to_thread(lambda: backend.api.inspect_container(sb.id))
    hc = attrs["HostConfig"]
    assert hc["NetworkMode"] == "none" and hc["ReadonlyRootfs"] is True
    assert hc["CapDrop"] == ["ALL"] and "no-new-privileges" in hc["SecurityOpt"]
    assert hc["Memory"] == hc["MemorySwap"] == 512 << 20 and hc["PidsLimit"] == 64
    assert hc["NanoCpus"] == 10**9 and not hc.get("Privileged")
    assert attrs["Config"]["User"] not in ("", "0", "root")
    assert not any(e.startswith(("OPENAI", "HARNESS")) for e in attrs["Config"]["Env"])


async def test_docker_recycles_after_timeout_and_after_max_uses(kind, make_backend):
    if kind != "docker":
        pytest.skip("docker only")
    backend = make_backend(pool_size=1)
    backend._pool.max_uses = 2
    ids = []
    for cmd, t in ((["true"], 5), (["true"], 5), (["sleep", "5"], 0.5), (["true"], 5)):
        async with backend.acquire() as sb:
            ids.append(sb.id)
            await sb.exec(cmd, timeout_s=t)
    # uses 1-2 share a container; max_uses retires it; the timed-out one is not reused either.
    assert ids[0] == ids[1] and ids[2] != ids[1] and ids[3] != ids[2]


def test_unsafe_backend_needs_both_switches():
    with pytest.raises(SandboxError, match="allow_unsafe"):
        get_backend("none-UNSAFE")
    with pytest.raises(ValueError):
        get_backend("chroot")


async def test_unsafe_backend_runs_and_still_hides_env(secrets_in_env):
    b = get_backend("none-UNSAFE", allow_unsafe=True, limits=SandboxLimits(timeout_s=2, output_bytes=1000))
    try:
        async with b.acquire() as sb:
            await sb.write_file("a.py", "import os; print(os.environ.get('OPENAI_API_KEY'))")
            r = await sb.exec(["python3", "a.py"])
            assert r.stdout == "None\n"
            r = await sb.exec(["python3", "-c", "while True: print('x' * 100)"])
            assert r.truncated and len(r.stdout) == 1000
            r = await sb.exec(["sleep", "10"], timeout_s=0.5)
            assert r.timed_out
    finally:
        await b.aclose()


def test_auto_picks_a_real_sandbox_or_says_what_to_install():
    try:
        b = get_backend("auto")
    except SandboxError as e:
        assert "apt-get install" in str(e)
        return
    assert b.name in ("docker", "bwrap")
    asyncio.run(b.aclose())


def test_sandbox_paths():
    assert sandbox_path("a/b") == "/work/a/b"
    assert sandbox_path("/tmp/x") == "/tmp/x"
    assert sandbox_path("../../etc/passwd") == "/etc/passwd"  # normalised; the backend decides access


async def test_docker_host_deadline_kills_a_hung_exec(kind, make_backend, monkeypatch):
    """Without the command runner (an image without its Python): if the in-container `timeout` ever fails to
    fire, the host-side deadline still ends the exec and retires the container."""
    if kind != "docker":
        pytest.skip("docker only")
    from harness.sandboxes._docker import DockerSandbox

    monkeypatch.setattr(DockerSandbox, "_timeout_prefix", staticmethod(lambda t: []))  # no inner timeout
    backend = make_backend(pool_size=1)
    backend.exec_agent = None  # one docker exec per command
    async with backend.acquire() as sb:
        t0 = time.monotonic()
        r = await sb.exec(["sleep", "60"], timeout_s=1)
        assert r.timed_out and r.returncode is None
        assert time.monotonic() - t0 < 6
        state = await asyncio.to_thread(lambda: backend.api.inspect_container(sb.id)["State"])
        assert not state["Running"]
    async with backend.acquire() as sb2:
        assert sb2.id != sb.id


async def test_docker_commands_go_through_one_runner_per_container(kind, make_backend, monkeypatch):
    """Every command of a container's sample goes to its command runner: one `docker exec` for many commands,
    with the same results (exit codes, both streams, stdin, deadlines, caps, a missing command) as an exec each."""
    if kind != "docker":
        pytest.skip("docker only")
    backend = make_backend(pool_size=1)
    execs = []
    create = backend.api.exec_create
    monkeypatch.setattr(backend.api, "exec_create", lambda *a, **k: execs.append(a[1]) or create(*a, **k))
    async with backend.acquire(fresh=True) as sb:
        r = await sb.exec(["sh", "-c", "echo out; echo err >&2; exit 3"])
        assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")
        r = await sb.exec(["python3", "-c", "import sys; print(sys.stdin.read()[::-1])"], input="abc")
        assert r.stdout == "cba\n"
        assert (await sb.exec(["no-such-command"])).returncode == 127
        r = await sb.exec(["sh", "-c", "echo partial; sleep 30"], timeout_s=1)
        assert r.timed_out and r.returncode is None and r.stdout == "partial\n"
        r = await sb.exec(["yes"], output_bytes=1000)
        assert r.truncated and len(r.stdout) == 1000
        # what a command leaves running in its group goes with it, as on the other backends
        r = await sb.exec(["sh", "-c", "sleep 30 & echo started"], timeout_s=10)
        assert r.ok and r.duration_s < 2, r
        assert (await sb.exec(["sh", "-c", "pgrep -x sleep || echo none"])).stdout.strip() == "none"
        await sb.write_file("notes/a.txt", "kept")
        assert await sb.read_file("notes/a.txt") == b"kept"
    assert len(execs) == 1 and "python3" in execs[0][0], execs
    # a pooled use (a scorer's single command) costs no runner start: its first command is one exec of its own
    execs.clear()
    async with backend.acquire() as sb:
        assert (await sb.exec(["echo", "one"])).stdout == "one\n"
        assert len(execs) == 1 and execs[0][0] == "timeout", execs
        for word in ("two", "three"):
            assert (await sb.exec(["echo", word])).stdout == f"{word}\n"
    assert len(execs) == 2 and "python3" in execs[1][0], execs


async def test_docker_a_stopped_runner_is_met_by_the_host_deadline(kind, make_backend):
    """A command that stops its own runner (SIGSTOP to its parent) gets no answer: the host's deadline ends the
    call and retires the container, as for a hung exec."""
    if kind != "docker":
        pytest.skip("docker only")
    backend = make_backend(pool_size=1)
    async with backend.acquire(fresh=True) as sb:
        t0 = time.monotonic()
        r = await sb.exec(["sh", "-c", "kill -STOP $PPID; sleep 60"], timeout_s=1)
        assert r.timed_out and r.returncode is None and time.monotonic() - t0 < 6
        assert sb.broken
        state = await asyncio.to_thread(lambda: backend.api.inspect_container(sb.id)["State"])
        assert not state["Running"]


async def test_sandboxes_satisfy_the_protocol(backend):
    from harness.sandboxes import Sandbox

    async with backend.acquire() as sb:
        assert isinstance(sb, Sandbox)


def test_image_tag_follows_the_definition(tmp_path, monkeypatch):
    import shutil

    from harness.sandboxes import _image

    before = _image.image_tag("harness-python")
    assert before == _image.image_tag("harness-python")  # stable
    copy = tmp_path / "images"
    shutil.copytree(_image.IMAGES_DIR, copy)
    monkeypatch.setattr(_image, "IMAGES_DIR", copy)
    assert _image.image_tag("harness-python") == before
    (copy / "harness-python" / "Dockerfile").write_text((copy / "harness-python" / "Dockerfile").read_text() + "\n# x\n")
    assert _image.image_tag("harness-python") != before
    base = _image.base_tag()
    (copy / "base.toml").write_text((copy / "base.toml").read_text().replace('mirror = ""', 'mirror = "http://x/debian"'))
    assert _image.base_tag() == base  # where bytes come from is not what they are
    (copy / "base.toml").write_text((copy / "base.toml").read_text().replace('include = ""', 'include = "curl"'))
    assert _image.base_tag() != base
    with pytest.raises(ValueError):
        _image.image_tag("no-such-image")


def test_cli_status_and_idempotent_build():
    import json

    from typer.testing import CliRunner

    from harness.sandboxes import _image, sandbox_app

    runner = CliRunner()
    r = runner.invoke(sandbox_app, ["status", "--json"])
    assert r.exit_code == 0, r.output
    st = json.loads(r.output)
    images = {i["tag"]: i for i in st["images"]}
    tags = [_image.image_tag(name) for name in ("harness-python", "harness-js")]
    assert set(tags) <= set(images)
    if not all(images[tag]["built"] for tag in tags):
        pytest.skip("images not built here (no Docker daemon or not built); build is exercised by CI setup")
    t0 = time.monotonic()
    r = runner.invoke(sandbox_app, ["build", "--quiet"])
    assert r.exit_code == 0, r.output
    assert all(tag in r.output for tag in tags)
    assert time.monotonic() - t0 < 10  # cached by content hash: nothing rebuilt


def test_docker_reaps_containers_of_dead_harness_processes(kind, secrets_in_env):
    if kind != "docker":
        pytest.skip("docker only")
    import socket as _socket

    from harness.sandboxes import _image
    from harness.sandboxes._docker import LABEL

    client = _image.docker_client()
    dead_pid = 2**22 + 12345  # above pid_max's default range: never alive
    c = client.containers.create(_image.image_tag("harness-python"), ["true"],
                                 labels={LABEL: f"{_socket.gethostname()}:{dead_pid}:x"})
    try:
        b = get_backend("docker", pool_size=1)
        asyncio.run(b.aclose())
        with pytest.raises(Exception):
            c.reload()
    finally:
        try:
            c.remove(force=True)
        except Exception:
            pass


async def test_docker_replaces_a_container_that_died(kind, make_backend):
    if kind != "docker":
        pytest.skip("docker only")
    backend = make_backend(pool_size=1)
    async with backend.acquire() as sb:
        assert (await sb.exec(["true"])).ok
        await asyncio.to_thread(sb.container.kill)  # e.g. the OOM killer took PID 1
        with pytest.raises(SandboxError):
            await sb.exec(["true"])
    async with backend.acquire() as sb2:
        assert sb2.id != sb.id and (await sb2.exec(["echo", "ok"])).stdout == "ok\n"
