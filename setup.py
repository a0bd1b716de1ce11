"""Maps the project's folders under the one import name `harness` (see DESIGN.md, Layout)."""
from setuptools import find_packages, setup

ROOTS = {
    "harness": "harness",
    "harness.tasks": "tasks",
    "harness.sandboxes": "sandboxes",
    "harness.leaderboards": "leaderboards",
}

packages, package_dir = [], {}
for name, folder in ROOTS.items():
    packages.append(name)
    package_dir[name] = folder
    packages += [f"{name}.{sub}" for sub in find_packages(folder) if not (name == "harness" and sub.split(".")[0] in ("tasks", "sandboxes", "leaderboards"))]

setup(packages=packages, package_dir=package_dir)
