"""Maps the project's folders under the one import name `harness` (see DESIGN.md, Layout), and ships every
non-code file a package needs (bundled data, migrations, sandbox images, templates) in wheels too.

Every folder below a root is declared as a package (a namespace package where it has no __init__.py, such
as Alembic's migrations/ or a suite's data/), each listing its own data files: that is what setuptools asks
for, and a build prints no "absent from the `packages` configuration" warnings."""
from pathlib import Path

from setuptools import find_namespace_packages, setup

ROOTS = {
    "harness": "harness",
    "harness.tasks": "tasks",
    "harness.sandboxes": "sandboxes",
    "harness.leaderboards": "leaderboards",
}
MAPPED = {root.split(".")[1] for root in ROOTS if "." in root}  # folders that are roots of their own


def data_files(folder: Path) -> list[str]:
    """The files at the top level of one package folder that are not its Python modules."""
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix not in (".py", ".pyc"))


packages, package_dir, package_data = [], {}, {}
for name, folder in ROOTS.items():
    package_dir[name] = folder
    for sub in ["", *find_namespace_packages(folder)]:
        parts = sub.split(".") if sub else []
        if "__pycache__" in parts or (name == "harness" and parts and parts[0] in MAPPED):
            continue
        package = ".".join([name, *parts])
        packages.append(package)
        files = data_files(Path(folder, *parts))
        if files:
            package_data[package] = files

setup(packages=packages, package_dir=package_dir, package_data=package_data)
