"""`pip install .` (not only -e) must give every suite its data, the store its migrations, the sandboxes their
image definitions and the leaderboard its templates."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# what a build leaves behind (and what is not the source): never copied, never written into the checkout
NOT_SOURCE = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc", "*.db", ".pytest_cache")


def _state(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p.name in ("build", "dist")
            or p.name.endswith(".egg-info")}


def test_the_wheel_carries_every_non_code_file(tmp_path):
    source = tmp_path / "source"  # a copy of the checkout: the build's build/ and egg-info land there
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*NOT_SOURCE), symlinks=True)
    before = _state(REPO)
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(wheels), str(source)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    assert _state(REPO) == before  # nothing written into the checkout
    log = built.stdout + built.stderr
    # every folder of files is declared as a package: no setuptools warning for any of them
    assert "absent from the `packages` configuration" not in log, log[-3000:]
    assert "BuildBackendWarning" not in log and "SetuptoolsDeprecationWarning" not in log, log[-3000:]
    names = set(zipfile.ZipFile(next(wheels.glob("harness-*.whl"))).namelist())
    expected = {
        "harness/store/migrations/env.py", "harness/store/migrations/versions/0001_initial.py",
        "harness/leaderboards/default.toml", "harness/leaderboards/templates/index.html.j2",
        "harness/sandboxes/images/harness-python/Dockerfile",
    }
    for folder in ("tasks", "sandboxes", "leaderboards"):  # every file in the source tree, by its installed name
        for path in (REPO / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                expected.add(f"harness/{folder}/{path.relative_to(REPO / folder)}")
    missing = sorted(expected - names)
    assert not missing, missing
    assert not any(n.startswith(("tests/", "bench/", "tasks/")) for n in names)  # one top-level name: harness
