"""EvalPlus through real sandboxes (Docker and bwrap; each skipped where it cannot run): the canonical
solutions pass every bundled problem, known wrong solutions fail on the right input, and hostile
programs submitted as a model's solution are contained, never pass, and leave the harness running."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import math
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
        scores = await asyncio.gather(*(_score(task, s, task.reference_answer(TaskState(s, 0)), backend) for s in samples))
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
# Each defines the entry point of HumanEval/13 and makes its attack when the function is called
# (top-level statements the entry point does not need are dropped by the sanitizer and would never
# run). Each leaves evidence that it ran: an attack that can tell it was stopped returns
# "blocked:<why>" (a wrong answer the test then finds as the output that came back); one that would
# have worked answers correctly, so a pass means it got through; one that ends the test process
# shows as the failure only it can cause. `EVIDENCE[attack]` is (error category, text that must
# appear in the verdict).

GCD = "import math\n"
BLOCKED = "blocked:"


def _attack(body: str) -> str:
    """A function whose body makes the attack; a blocked attack returns what stopped it."""
    indented = "".join(f"        {line}\n" for line in body.strip("\n").splitlines())
    return (f"def greatest_common_divisor(a, b):\n    try:\n{indented}    except BaseException as e:\n"
            f"        return {BLOCKED!r} + type(e).__name__\n    return math.gcd(a, b)\n")


def _hostile(host_file, port):
    return {
        "fork_bomb": "def greatest_common_divisor(a, b):\n    import posix\n    while True:\n        try:\n"
                     "            posix.fork()\n        except OSError:\n            pass\n",
        "memory_bomb": "def greatest_common_divisor(a, b):\n    x = []\n    while True:\n"
                       "        x.append(bytearray(1 << 24))\n",
        "infinite_loop": "def greatest_common_divisor(a, b):\n    while True:\n        pass\n",
        "sleep_past_limit": "def greatest_common_divisor(a, b):\n    import time\n    time.sleep(3600)\n"
                            "    return math.gcd(a, b)\n",
        # the driver's stdout and stdin (where the nonce and the report live) through /proc
        "write_driver_stdout": _attack("import posix\nfd = posix.open(f'/proc/{posix.getppid()}/fd/1', posix.O_WRONLY)\n"
                                       "posix.write(fd, b'x' * (1 << 20))"),
        "read_driver_stdin": _attack("import posix\nfd = posix.open(f'/proc/{posix.getppid()}/fd/0', posix.O_RDONLY)\n"
                                     "posix.read(fd, 1)"),
        # the driver's memory: where a forked child would find the nonce and the report it prints
        "patch_driver_memory": _attack("import posix\nfd = posix.open(f'/proc/{posix.getppid()}/mem', posix.O_RDWR)"),
        "ptrace_driver": _attack("import ctypes, posix\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                                 "if libc.ptrace(16, posix.getppid(), 0, 0) != 0:\n"
                                 "    raise PermissionError(ctypes.get_errno())"),
        # the spare test process the driver forked for a later phase, waiting for its job: its stdin is
        # where that job comes from (LookupError if there is no such process to attack)
        "reach_the_waiting_spare": _attack("import posix\nme, parent = posix.getpid(), posix.getppid()\n"
                                           "def ppid(p):\n    fd = posix.open(f'/proc/{p}/stat', posix.O_RDONLY)\n"
                                           "    try:\n        return int(posix.read(fd, 4096).rsplit(b')', 1)[1].split()[1])\n"
                                           "    finally:\n        posix.close(fd)\n"
                                           "spares = []\nfor p in posix.listdir('/proc'):\n"
                                           "    if p.isdigit() and int(p) != me:\n        try:\n"
                                           "            if ppid(p) == parent:\n                spares.append(p)\n"
                                           "        except OSError:\n            pass\n"
                                           "if not spares:\n    raise LookupError('no spare')\n"
                                           "fd = posix.open(f'/proc/{spares[0]}/fd/0', posix.O_WRONLY)\n"
                                           "posix.write(fd, b'{}')"),
        "find_the_nonce": _attack("import sys, gc\n"
                                  "seen = [o for o in gc.get_objects() if isinstance(o, dict) and 'nonce' in o]\n"
                                  "fr = sys._getframe()\nwhile fr is not None:\n"
                                  "    seen += [v for v in fr.f_locals.values() if isinstance(v, dict) and 'nonce' in v]\n"
                                  "    fr = fr.f_back\n"
                                  "if not seen:\n    raise LookupError('no nonce')"),
        "flood_result_pipe": "def greatest_common_divisor(a, b):\n    import posix\n"
                             "    for fd in sorted(int(f) for f in posix.listdir('/proc/self/fd')):\n"
                             "        if fd > 2:\n            try:\n"
                             "                for _ in range(100):\n                    posix.write(fd, b'x' * (1 << 20))\n"
                             "            except OSError:\n                pass\n    return -1\n",
        "forge_result_lines": "def greatest_common_divisor(a, b):\n    import posix, json\n"
                              "    for fd in sorted(int(f) for f in posix.listdir('/proc/self/fd')):\n"
                              "        if fd > 2:\n            try:\n"
                              "                posix.write(fd, b''.join(json.dumps([i, 'ok', 1, 0.0]).encode() + b'\\n' "
                              "for i in range(0, 9)))\n"
                              "            except OSError:\n                pass\n    return -1\n",
        "socket_outside": _attack("import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=2).close()"),
        "socket_loopback": _attack(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2).close()"),
        "read_host_file": _attack(f"import posix\nfd = posix.open({str(host_file)!r}, posix.O_RDONLY)\n"
                                  f"assert posix.read(fd, 100)"),
        "read_etc_shadow": _attack("import posix\nfd = posix.open('/etc/shadow', posix.O_RDONLY)\nassert posix.read(fd, 10)"),
        # the harness's checkout and home: answers right only if it sees what is there on the host
        "list_repo_and_home": _attack(f"import posix\nseen = set(posix.listdir({str(REPO)!r})) | "
                                      f"set(posix.listdir({str(Path.home())!r}))\n"
                                      f"assert 'pyproject.toml' in seen or {HOME_ENTRY!r} in seen"),
        "write_outside": _attack(f"import posix\nfor p in ({str(host_file)!r}, {str(host_file.parent / 'planted')!r}):\n"
                                 f"    fd = posix.open(p, posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC)\n"
                                 f"    posix.write(fd, b'owned')"),
        "env_secret": _attack(f"import os\nassert {SECRET!r} in str(os.environ)"),
        "kill_parent": "def greatest_common_divisor(a, b):\n    import posix\n    posix.kill(posix.getppid(), 9)\n"
                       "    return -1\n",
        "os_exit0_in_function": "def greatest_common_divisor(a, b):\n    import posix\n    posix._exit(0)\n",
        "systemexit_in_function": "def greatest_common_divisor(a, b):\n    raise SystemExit(0)\n",
        # code the entry point needs runs when the program loads: exit there, before any test
        "os_exit0_at_load": "import posix\n_READY = posix._exit(0)\ndef greatest_common_divisor(a, b):\n"
                            "    return _READY or -1\n",
        "always_equal_result": "class Eq:\n    def __eq__(self, other):\n        return True\n    __ne__ = lambda s, o: False\n"
                               "def greatest_common_divisor(a, b):\n    return Eq()\n",
        # the test process's own encoder: every line it sends after this is the same forged one
        "patch_builtins_and_runner": "def greatest_common_divisor(a, b):\n    import builtins, json, sys\n"
                                     "    builtins.isinstance = lambda *a: True\n"
                                     "    json.dumps = lambda *a, **k: '[0, \"ok\", 0, 0.0]'\n"
                                     "    sys.modules['__main__'].encode = lambda v, *a: 0\n    return -1\n",
    }


EVIDENCE = {  # attack -> (error category, text in the verdict that only the attack can cause), or a list of such
    "fork_bomb": ("timeout", "timeout"),
    # the cgroup (Docker) may slow the allocations past the time limit before RLIMIT_AS stops them
    "memory_bomb": [("runtime_error", "MemoryError"), ("runtime_error", "ended early"), ("timeout", "Timed out")],
    "infinite_loop": ("timeout", "timeout"),
    "sleep_past_limit": ("timeout", "timeout"),
    "write_driver_stdout": ("wrong_output", BLOCKED + "PermissionError"),
    "read_driver_stdin": ("wrong_output", BLOCKED + "PermissionError"),
    "patch_driver_memory": ("wrong_output", BLOCKED + "PermissionError"),
    "ptrace_driver": ("wrong_output", BLOCKED + "PermissionError"),
    "find_the_nonce": ("wrong_output", BLOCKED + "LookupError"),
    "reach_the_waiting_spare": ("wrong_output", BLOCKED + "PermissionError"),
    "flood_result_pipe": ("invalid_report", "more than"),
    # lines in the test process's own format reach the driver as that process's outputs (so forging
    # them is only another way to answer); these answers are wrong, and the function's own -1 never counts
    "forge_result_lines": ("wrong_output", '"got": "1"'),
    "socket_outside": ("wrong_output", BLOCKED + "OSError"),
    "socket_loopback": ("wrong_output", BLOCKED),
    "read_host_file": ("wrong_output", BLOCKED),
    "read_etc_shadow": ("wrong_output", BLOCKED),
    "list_repo_and_home": ("wrong_output", BLOCKED),
    "write_outside": ("wrong_output", BLOCKED),
    "env_secret": ("wrong_output", BLOCKED + "AssertionError"),
    "kill_parent": ("invalid_report", "0 report frames"),
    "os_exit0_in_function": ("runtime_error", "ended early"),
    "systemexit_in_function": ("runtime_error", "SystemExit"),
    "os_exit0_at_load": ("load_error", "ended early"),
    "always_equal_result": ("wrong_output", "Eq object"),
    # the forged first line answers 0 (the function returns -1): the driver stops there as a wrong
    # output; were 0 right, the second forged line (input #0 again) would be out of order
    "patch_builtins_and_runner": [("wrong_output", '"got": "0"'), ("invalid_report", "malformed or out-of-order")],
}


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


ATTACKS = sorted(_hostile(Path("/x"), 1))


def test_every_attack_names_its_evidence():
    assert set(EVIDENCE) == set(ATTACKS)


@pytest.mark.parametrize("attack", ATTACKS)
async def test_hostile_solution_never_passes(backend, attack, tmp_path, loopback_server):
    port, hits = loopback_server
    host_file = tmp_path / "harness.db"
    host_file.write_text(f"secret {SECRET}")
    code = GCD + _hostile(host_file, port)[attack]
    task = get_task("evalplus/humaneval").build(args={"min_time_limit": 1.0, "timeout_per_task": 4.0})
    samples = _samples(task)
    score = await _score(task, samples["HumanEval/13"], f"```python\n{code}\n```", backend)
    assert score.value == 0.0 and score.values == {"base": 0.0}, score.explanation
    # the attack ran: it left the evidence only it can leave
    verdict = json.dumps(score.metadata) + (score.explanation or "")
    expected = EVIDENCE[attack] if isinstance(EVIDENCE[attack], list) else [EVIDENCE[attack]]
    assert any(score.error_category == category and evidence in verdict for category, evidence in expected), \
        (score.error_category, verdict)
    assert SECRET not in verdict
    # the host is untouched
    assert host_file.read_text() == f"secret {SECRET}"
    assert not (tmp_path / "planted").exists()
    assert not hits
    # and the harness goes on: the same backend still scores a correct solution as a pass
    good = await _score(task, samples["HumanEval/13"], f"```python\n{GCD}def greatest_common_divisor(a, b):\n"
                                                        "    return math.gcd(a, b)\n```", backend)
    assert good.value == 1.0, good.explanation


# ---------------------------------------------------------------- ground truth and fidelity

class _Recording:
    """A backend that records how each sandbox was asked for."""

    def __init__(self, backend):
        self.backend, self.fresh = backend, []

    def acquire(self, *, fresh: bool = False, trusted: bool = False):
        self.fresh.append((fresh, trusted))
        return self.backend.acquire(fresh=fresh, trusted=trusted)


async def test_ground_truth_runs_fresh_goes_past_slow_inputs_and_never_caches_them(backend, monkeypatch, tmp_path):
    from harness.tasks.evalplus import execution

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(execution, "TRUTH_INPUT_LIMIT_S", 0.5)
    # hand-written canonical solution: input 1 never finishes in time, input 3 raises
    code = ("import time\ndef f(x):\n    if x == 1:\n        time.sleep(30)\n    if x == 3:\n"
            "        raise ValueError('no')\n    return x * 2\n")
    rec = _Recording(backend)
    truth = (await execution.GroundTruth("humaneval").get(rec, code, "f", {"base": [[0], [1], [2], [3], [4]]}))["base"]
    assert truth.expected == {0: 0, 2: 4, 4: 8}  # the inputs after the slow one were still run
    assert set(truth.skipped) == {1, 3} and truth.transient == {1}
    assert "not cached" in truth.skipped[1] and "ValueError" in truth.skipped[3]
    # computed where no candidate ran (the trusted pool), retried once in a brand-new sandbox
    assert rec.fresh == [(False, True), (True, True)]
    assert not list(execution.cache_dir().glob("*.json.gz"))  # a slow input decides no later run
    # without the slow input the same problem is cached, its deterministic failure with it
    fast = code.replace("time.sleep(30)", "pass")
    first = (await execution.GroundTruth("humaneval").get(rec, fast, "f", {"base": [[0], [1], [3]]}))["base"]
    again = (await execution.GroundTruth("humaneval").get(rec, fast, "f", {"base": [[0], [1], [3]]}))["base"]
    assert first.expected == again.expected == {0: 0, 1: 2} and set(again.skipped) == {2}
    assert len(rec.fresh) == 3  # the second read came from the cache


async def test_ground_truth_goes_past_slow_inputs_in_every_phase(backend, monkeypatch, tmp_path):
    """Each unfinished input costs a test process: once the driver's two forked spares are used (base's
    first process and the one after its slow input), fresh interpreters run plus, and each must get
    its whole job and end of file, or it would wait until its deadline and answer nothing."""
    from harness.tasks.evalplus import execution

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(execution, "TRUTH_INPUT_LIMIT_S", 0.5)
    monkeypatch.setattr(execution, "TRUTH_PHASE_LIMIT_S", 8.0)  # a process that never starts fails in seconds
    # input 1 ignores the test process's own alarm: only the driver's kill ends it, and a new process goes on
    code = ("import signal, time\ndef f(x):\n    if x == 1:\n        signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
            "        time.sleep(30)\n    return x * 2\n")
    truth = await execution.GroundTruth("humaneval").get(backend, code, "f", {"base": [[0], [1], [2]],
                                                                               "plus": [[1], [5], [6]]})
    assert truth["base"].expected == {0: 0, 2: 4} and truth["plus"].expected == {1: 10, 2: 12}
    assert truth["base"].transient == {1} and truth["plus"].transient == {0}


async def test_candidate_code_compiles_as_python_runs_a_file(backend):
    """The driver's own `from __future__ import annotations` must not reach the candidate: an annotation
    naming `List` without importing it fails when the function is defined, as in Python and evalplus."""
    task = get_task("evalplus/humaneval_plus").build()
    sample = _samples(task)["HumanEval/1"]
    without_import = sample.target.replace("from typing import List\n", "")
    assert "List[" in without_import and "import List" not in without_import
    score = await _score(task, sample, f"```python\n{without_import}\n```", backend)
    assert score.value == 0.0 and score.error_category == "load_error" and "NameError" in score.explanation
    with_import = await _score(task, sample, f"```python\n{sample.target}\n```", backend)
    assert with_import.value == 1.0, with_import.explanation


@pytest.mark.parametrize("wrap", ["collections.UserList({})", "type('Groups', (collections.UserList,), {{}})({})",
                                  "collections.deque({})"], ids=["UserList", "UserList_subclass", "deque"])
async def test_standard_library_return_types_compare_as_equality_does(backend, wrap):
    """A UserList of the right strings equals the expected list (evalplus compares with ==); a deque
    does not equal a list, so it fails there and here."""
    task = get_task("evalplus/humaneval_plus").build()
    sample = _samples(task)["HumanEval/1"]
    code = (sample.target.replace("def separate_paren_groups", "def _groups") +
            "\nimport collections\ndef separate_paren_groups(paren_string):\n"
            f"    return {wrap.format('_groups(paren_string)')}\n")
    score = await _score(task, sample, f"```python\n{code}\n```", backend)
    assert score.value == (0.0 if "deque" in wrap else 1.0), score.explanation


async def test_plus_is_not_run_after_base_timed_out(backend):
    """plus counts only with base: a program that spent the time limit on base does not spend it again."""
    task = get_task("evalplus/humaneval_plus").build(args={"min_time_limit": 1.0})
    code = "def greatest_common_divisor(a, b):\n    while True:\n        pass\n"
    score = await _score(task, _samples(task)["HumanEval/13"], f"```python\n{code}```", backend)
    assert score.values == {"base": 0.0, "plus": 0.0} and score.error_category == "timeout"
    assert score.metadata["base"]["status"] == "fail" and score.metadata["plus"]["status"] == "not_run"


async def test_a_wrong_program_stops_at_its_first_wrong_output(backend):
    """As EvalPlus's fast_check: the first wrong output ends the run (the driver holds the expected
    outputs' fingerprints), so neither the rest of base nor plus is spent on a program that failed."""
    task = get_task("evalplus/humaneval_plus").build()
    sample = _samples(task)["HumanEval/13"]
    problem = json.loads(sample.files["problem.json"])
    # gcd(a, b) == 1 is right on base input #0 (3, 7) and wrong on #1 (10, 15)
    assert [math.gcd(*x) for x in problem["base_input"][:2]] == [1, 5]
    wrong = await _score(task, sample, "```python\ndef greatest_common_divisor(a, b):\n    return 1\n```", backend)
    base = wrong.metadata["base"]
    assert wrong.value == 0.0 and wrong.error_category == "wrong_output"
    assert (base["failed_input_index"], base["answered"], base["tested"]) == (1, 2, len(problem["base_input"]))
    assert wrong.metadata["plus"]["status"] == "not_run" and "rerun" not in wrong.metadata


async def test_an_output_that_only_looks_wrong_is_run_again_in_full(backend):
    """`d.items() == set(d.items())`: evalplus passes a dict_items view where a set of pairs is expected.
    Its encoding differs from the set's, so the driver stops at the first output; the harness finds that
    output right and runs every input again, with no early stop."""
    task = get_task("evalplus/humaneval_plus").build()
    # a hand-written problem (a fixture, not benchmark data): the set of a dict's (key, value) pairs
    problem = {"task_id": "fixture/pairs", "entry_point": "pairs", "atol": 0, "prompt": "def pairs(d):\n",
               "canonical_solution": "    return set(d.items())\n",
               "base_input": [[{"a": 1}], [{"b": 2, "c": 3}], [{}]], "plus_input": [[{"x": 9, "y": 8}]]}
    sample = dataclasses.replace(_samples(task)["HumanEval/13"], files={"problem.json": json.dumps(problem)})
    score = await _score(task, sample, "```python\ndef pairs(d):\n    return d.items()\n```", backend)
    assert score.values == {"base": 1.0, "plus": 1.0}, score.explanation
    assert "rerun" in score.metadata  # the early stop happened, and did not decide
    # an output that is wrong is still wrong on the input where it first differs, in the full run
    wrong = "def pairs(d):\n    return d.items() if 'b' not in d else {('b', 2)}\n"
    score = await _score(task, sample, f"```python\n{wrong}\n```", backend)
    assert score.value == 0.0 and "rerun" in score.metadata, score.explanation
    assert score.metadata["base"]["failed_input_index"] == 1 and score.metadata["base"]["answered"] == 3
