"""EvalPlus through real sandboxes (Docker and bwrap; each skipped where it cannot run): the canonical
solutions pass every bundled problem, known wrong solutions fail on the right input, and hostile
programs submitted as a model's solution are contained, never pass, and leave the harness running."""
from __future__ import annotations

import asyncio
import json
import socket
import threading
from pathlib import Path

import pytest

from harness import ModelCall, ModelOutput, SolveContext, TaskState, get_task
from harness.sandboxes import SandboxLimits, get_backend

LIMITS = SandboxLimits(timeout_s=30, memory_mb=512, pids=64, cpus=1.0, output_bytes=1_000_000)
SECRET = "hts-evalplus-7f3a9c-do-not-leak"
REPO = Path(__file__).resolve().parents[2]
HOME_ENTRY = next(iter(sorted(p.name for p in Path.home().iterdir())), "pyproject.toml")


def _unavailable(kind: str) -> str | None:
    if kind == "docker":
        from harness.sandboxes import _image

        ok, err = _image.docker_available()
        if not ok:
            return f"no Docker daemon ({err})"
        return None if _image.image_status("harness-python").get("built") else "harness-python image not built"
    from harness.sandboxes._bwrap import bwrap_status

    st = bwrap_status()
    return None if st["ok"] else st["error"]


@pytest.fixture(params=[pytest.param("docker", marks=pytest.mark.docker), pytest.param("bwrap", marks=pytest.mark.bwrap)])
def kind(request):
    if reason := _unavailable(request.param):
        pytest.skip(reason)
    return request.param


@pytest.fixture(scope="module")
def truth_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("xdg")


@pytest.fixture
async def backend(kind, truth_cache, monkeypatch):
    """Made with a secret in the harness's environment, and a ground-truth cache shared by the module."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(truth_cache / kind))
    monkeypatch.setenv("HARNESS_TEST_SECRET", SECRET)
    b = get_backend(kind, limits=LIMITS, pool_size=2)
    yield b
    await b.aclose()


def _samples(task):
    return {s.id: s for s in task.dataset.open("bundled")[1]}


async def _score(task, sample, response, sandbox):
    state = TaskState(sample=sample, epoch=0)
    state.output = ModelOutput(text=response, call=ModelCall(kind="model", model="test", messages=[], config={}))
    return await task.scorers[0](state, SolveContext(model=None, config={}, task=task, sandbox=sandbox))


async def test_canonical_solutions_pass_every_bundled_problem(backend):
    for name in ("evalplus/humaneval_plus", "evalplus/mbpp_plus"):
        task = get_task(name).build()
        samples = list(_samples(task).values())
        scores = await asyncio.gather(*(_score(task, s, task.reference_response(s), backend) for s in samples))
        failed = {s.id: sc.explanation for s, sc in zip(samples, scores) if sc.values != {"base": 1.0, "plus": 1.0}}
        assert not failed, failed
        assert all(sc.metadata["plus"]["tested"] == s.metadata["plus_inputs"] for s, sc in zip(samples, scores))


WRONG = [
    # (task, problem, solution, phase that fails first, failing input index, its expected output, what came back)
    ("evalplus/humaneval_plus", "HumanEval/13", "def greatest_common_divisor(a, b):\n    return 1\n",
     "base", 1, "5", "1"),
    # passes every base input (none holds a 0), fails the first plus input [0]
    ("evalplus/humaneval_plus", "HumanEval/3",
     "def below_zero(operations):\n    if 0 in operations:\n        return True\n    b = 0\n    for op in operations:\n"
     "        b += op\n        if b < 0:\n            return True\n    return False\n", "plus", 0, "False", "True"),
    ("evalplus/mbpp_plus", "Mbpp/2", "def similar_elements(a, b):\n    return tuple(set(a) | set(b))\n",
     "base", 0, "(4, 5)", None),
]


@pytest.mark.parametrize("name, pid, code, phase, index, expected, got", WRONG, ids=[w[1] for w in WRONG])
async def test_known_wrong_solutions_fail_on_the_right_input(backend, name, pid, code, phase, index, expected, got):
    task = get_task(name).build()
    score = await _score(task, _samples(task)[pid], f"```python\n{code}```", backend)
    assert score.value == 0.0 and score.error_category == "wrong_output"
    v = score.metadata[phase]
    assert v["status"] == "fail" and v["failed_input_index"] == index
    assert v["expected"] == expected
    if got is not None:
        assert v["got"] == got
    assert score.values["base"] == (1.0 if phase == "plus" else 0.0)


async def test_set_oracle_accepts_any_order_and_timeouts_fail_on_their_input(backend):
    task = get_task("evalplus/mbpp_plus").build()
    ok = await _score(task, _samples(task)["Mbpp/2"],
                      "def similar_elements(a, b):\n    return tuple(sorted(set(a) & set(b), reverse=True))\n", backend)
    assert ok.value == 1.0
    quick = get_task("evalplus/humaneval").build(args={"min_time_limit": 1.0})
    slow = ("def greatest_common_divisor(a, b):\n    while a > 100:\n        pass\n"
            "    import math\n    return math.gcd(a, b)\n")
    score = await _score(quick, _samples(quick)["HumanEval/13"], slow, backend)
    assert score.value == 0.0 and score.error_category == "timeout"
    assert score.metadata["base"]["failed_input_index"] == 3  # (144, 60), the first with a > 100


# ---------------------------------------------------------------- hostile programs
# Each defines the entry point of HumanEval/13 and tries its attack; where the attack could tell
# whether it worked, it answers correctly only then, so a pass would mean the attack got through.

GCD = "import math\n"


def _hostile(host_file, port):
    return {
        "fork_bomb": "def greatest_common_divisor(a, b):\n    import posix\n    while True:\n        try:\n"
                     "            posix.fork()\n        except OSError:\n            pass\n",
        "memory_bomb": "def greatest_common_divisor(a, b):\n    x = []\n    while True:\n"
                       "        x.append(bytearray(1 << 24))\n",
        "infinite_loop": "def greatest_common_divisor(a, b):\n    while True:\n        pass\n",
        "sleep_past_limit": "def greatest_common_divisor(a, b):\n    import time\n    time.sleep(3600)\n"
                            "    return math.gcd(a, b)\n",
        "output_flood": "def greatest_common_divisor(a, b):\n    import posix\n    for fd in (1, 2):\n"
                        "        try:\n            out = posix.open(f'/proc/{posix.getppid()}/fd/{fd}', posix.O_WRONLY)\n"
                        "            for _ in range(5000):\n                posix.write(out, b'x' * (1 << 20))\n"
                        "        except OSError:\n            pass\n    print('y' * (1 << 30))\n    return -1\n",
        "socket_outside": "def greatest_common_divisor(a, b):\n    import socket\n    socket.create_connection("
                          "('1.1.1.1', 53), timeout=2).close()\n    return math.gcd(a, b)\n",
        "socket_loopback": f"def greatest_common_divisor(a, b):\n    import socket\n    socket.create_connection("
                           f"('127.0.0.1', {port}), timeout=2).close()\n    return math.gcd(a, b)\n",
        "read_host_file": f"def greatest_common_divisor(a, b):\n    import posix\n    fd = posix.open({str(host_file)!r}, "
                          f"posix.O_RDONLY)\n    data = posix.read(fd, 100)\n    return math.gcd(a, b) if data else -1\n",
        "read_etc_shadow": "def greatest_common_divisor(a, b):\n    import posix\n    fd = posix.open('/etc/shadow', "
                           "posix.O_RDONLY)\n    return math.gcd(a, b) if posix.read(fd, 10) else -1\n",
        # the harness's checkout and home: answers right only if it sees what is there on the host
        "list_repo_and_home": f"def greatest_common_divisor(a, b):\n    import posix\n"
                              f"    seen = set(posix.listdir({str(REPO)!r})) | set(posix.listdir({str(Path.home())!r}))\n"
                              f"    return math.gcd(a, b) if 'pyproject.toml' in seen or {HOME_ENTRY!r} in seen else -1\n",
        "write_outside": f"def greatest_common_divisor(a, b):\n    import posix\n    for p in ({str(host_file)!r}, "
                         f"{str(host_file.parent / 'planted')!r}):\n        fd = posix.open(p, posix.O_WRONLY | posix.O_CREAT | "
                         f"posix.O_TRUNC)\n        posix.write(fd, b'owned')\n    return math.gcd(a, b)\n",
        "kill_parent": "import posix\nposix.kill(posix.getppid(), 9)\ndef greatest_common_divisor(a, b):\n    return -1\n",
        "exit0_before_tests": "exit(0)\ndef greatest_common_divisor(a, b):\n    return -1\n",
        "os_exit0_before_tests": "import posix\nposix._exit(0)\ndef greatest_common_divisor(a, b):\n    return -1\n",
        "sys_exit_before_tests": "import sys\nsys.exit(0)\ndef greatest_common_divisor(a, b):\n    return -1\n",
        "systemexit_in_function": "def greatest_common_divisor(a, b):\n    raise SystemExit(0)\n",
        "always_equal_result": "class Eq:\n    def __eq__(self, other):\n        return True\n    __ne__ = lambda s, o: False\n"
                               "def greatest_common_divisor(a, b):\n    return Eq()\n",
        "patch_builtins_and_runner": "import builtins, json, sys\nbuiltins.isinstance = lambda *a: True\n"
                                     "json.dumps = lambda *a, **k: '[0, \"ok\", 0, 0.0]'\n"
                                     "m = sys.modules['__main__']\nm.encode = lambda v, _depth=0: 0\n"
                                     "def greatest_common_divisor(a, b):\n    return -1\n",
        "env_secret": "def greatest_common_divisor(a, b):\n    import os\n"
                      f"    return math.gcd(a, b) if {SECRET!r} in str(os.environ) else repr(dict(os.environ))\n",
    }


FORGE = ("import sys, json, math, posix\n"
         "fr = sys._getframe()\n"
         "while fr is not None and 'payload' not in fr.f_locals:\n    fr = fr.f_back\n"
         "payload = fr.f_locals['payload']\n"
         "phases = {p['name']: {'ready': True, 'error': None, 'results': [['ok', math.gcd(*a), 0.0, i] "
         "for i, a in enumerate(p['inputs'])]} for p in payload['phases']}\n"
         "line = payload['nonce'] + ' inline ' + json.dumps({'version': '2', 'phases': phases}) + '\\n'\n"
         "out = posix.open(f'/proc/{posix.getppid()}/fd/1', posix.O_WRONLY)\n"
         "posix.write(out, line.encode())\n"
         "def greatest_common_divisor(a, b):\n    return -1\n")


@pytest.fixture
def loopback_server():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.settimeout(0.2)
    hits, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                hits.append(srv.accept())
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield srv.getsockname()[1], hits
    stop.set()
    t.join()
    srv.close()


ATTACKS = sorted(_hostile(Path("/x"), 1)) + ["forged_report_with_right_answers"]


@pytest.mark.parametrize("attack", ATTACKS)
async def test_hostile_solution_never_passes(backend, attack, tmp_path, loopback_server):
    port, hits = loopback_server
    host_file = tmp_path / "harness.db"
    host_file.write_text(f"secret {SECRET}")
    code = FORGE if attack == "forged_report_with_right_answers" else GCD + _hostile(host_file, port)[attack]
    task = get_task("evalplus/humaneval").build(args={"min_time_limit": 1.0, "timeout_per_task": 4.0})
    samples = _samples(task)
    score = await _score(task, samples["HumanEval/13"], f"```python\n{code}\n```", backend)
    assert score.value == 0.0 and score.values == {"base": 0.0}, score.explanation
    assert score.error_category is not None
    assert SECRET not in json.dumps(score.metadata) + (score.explanation or "")
    # the host is untouched
    assert host_file.read_text() == f"secret {SECRET}"
    assert not (tmp_path / "planted").exists()
    assert not hits
    # and the harness goes on: the same backend still scores a correct solution as a pass
    good = await _score(task, samples["HumanEval/13"], f"```python\n{GCD}def greatest_common_divisor(a, b):\n"
                                                        "    return math.gcd(a, b)\n```", backend)
    assert good.value == 1.0, good.explanation
