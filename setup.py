"""Maps the project's folders under the one import name `harness` (see DESIGN.md, Layout), and ships every
non-code file a package needs (bundled data, migrations, sandbox images, templates) in wheels too."""
from pathlib import Path

from setuptools import find_packages, setup

ROOTS = {
    "harness": "harness",
    "harness.tasks": "tasks",
    "harness.sandboxes": "sandboxes",
    "harness.leaderboards": "leaderboards",
}


def package_files(folder: Path) -> list[str]:
    """Files of this package that are not modules of it or of a subpackage: data files at its top level, and
    everything in its plain (non-package) subfolders, such as Alembic's migrations/ or a suite's data/."""
    files = []
    for path in folder.rglob("*"):
        if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        between = path.relative_to(folder).parents[:-1]  # the subfolders between the package and the file
        if any((folder / sub / "__init__.py").exists() for sub in between):
            continue  # it belongs to a subpackage, which lists it itself
        if path.parent == folder and path.suffix == ".py":
            continue  # a module, not data
        files.append(str(path.relative_to(folder)))
    return files


packages, package_dir, package_data = [], {}, {}
for name, folder in ROOTS.items():
    subpackages = [f"{name}.{sub}" for sub in find_packages(folder)
                   if not (name == "harness" and sub.split(".")[0] in ("tasks", "sandboxes", "leaderboards"))]
    packages += [name, *subpackages]
    package_dir[name] = folder
for name in packages:
    root = next(r for r in sorted(ROOTS, key=len, reverse=True) if name == r or name.startswith(r + "."))
    folder = Path(ROOTS[root], *name[len(root):].split(".")[1:])
    package_data[name] = package_files(folder)

setup(packages=packages, package_dir=package_dir, package_data=package_data)
