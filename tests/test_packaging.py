"""`pip install .` (not only -e) must give every suite its data, the store its migrations, the sandboxes their
image definitions and the leaderboard its templates."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_the_wheel_carries_every_non_code_file(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(REPO)],
                   check=True, capture_output=True, timeout=300)
    names = set(zipfile.ZipFile(next(tmp_path.glob("harness-*.whl"))).namelist())
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
