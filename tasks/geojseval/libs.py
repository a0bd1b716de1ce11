"""The JavaScript libraries the Node runner loads, from one pinned install on the host.

`sandboxes/images/harness-js/package-lock.json` pins every package (the image's `npm ci` installs the same
lock). On the host, `npm ci --ignore-scripts` installs it once into `$XDG_CACHE_HOME/harness/geojseval-js/
<hash of the lock>/` (npm checks every tarball's integrity hash); the three UMD bundles the runner needs
are read from there and sent to the sandbox with each job, so Docker and bwrap run the same bytes and the
sandbox needs only `node`. `libs.main()` installs it ahead of a run (CI does).
The browser runner gets Leaflet's or OpenLayers' dist files (served to the page from memory) and the files
of puppeteer-core that Node loads with it (found by loading it once on the host), written out by the driver.
"""
from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

BUNDLES = {  # global name -> file under node_modules
    "turf": "@turf/turf/turf.min.js",
    "geolib": "geolib/lib/index.js",
    "jsts": "jsts/dist/jsts.min.js",
}
BROWSER_BUNDLES = {  # library -> (script, stylesheet) under node_modules, loaded by the page
    "leaflet": ("leaflet/dist/leaflet.js", "leaflet/dist/leaflet.css"),
    "openlayers": ("ol/dist/ol.js", "ol/ol.css"),
}
# Loads puppeteer-core (its whole CommonJS graph is required at once) and lists every file Node read.
_PROBE = ("require(process.argv[1] + '/puppeteer-core');"
          "console.log(JSON.stringify(Object.keys(require.cache)))")


def _image_dir() -> Path:
    """The image definition: next to the suite in a source tree, or under harness.sandboxes once installed."""
    from harness import sandboxes

    return Path(sandboxes.__file__).parent / "images" / "harness-js"


def lock_hash() -> str:
    d = _image_dir()
    h = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        h.update((d / name).read_bytes())
    return h.hexdigest()[:16]


def install_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "harness" / "geojseval-js" / lock_hash()


class LibraryError(RuntimeError):
    pass


def ensure_installed() -> Path:
    """node_modules of the pinned install, installing it first if needed (once, under a file lock)."""
    root = install_dir()
    done = root / ".installed"
    if done.is_file():
        return root / "node_modules"
    root.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f"{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.is_file():
            return root / "node_modules"
        npm = shutil.which("npm")
        if npm is None:
            raise LibraryError("GeoJSEval needs npm on the host to install its pinned JavaScript libraries "
                               "(apt-get install nodejs npm)")
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(_image_dir() / name, root / name)
        r = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--omit=dev"], cwd=root,
                           capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            tail = (r.stderr or r.stdout).strip().splitlines()[-5:]
            raise LibraryError(f"npm ci of the GeoJSEval libraries failed in {root}: {' / '.join(tail)}")
        done.write_text("ok\n")
    return root / "node_modules"


@functools.lru_cache(maxsize=1)
def bundles() -> dict[str, str]:
    modules = ensure_installed()
    return {name: (modules / rel).read_text(encoding="utf-8") for name, rel in BUNDLES.items()}


@functools.lru_cache(maxsize=2)
def browser_bundle(library: str) -> dict[str, str]:
    modules = ensure_installed()
    js, css = BROWSER_BUNDLES[library]
    return {"js": (modules / js).read_text(encoding="utf-8"), "css": (modules / css).read_text(encoding="utf-8")}


@functools.lru_cache(maxsize=1)
def puppeteer_files() -> dict[str, str]:
    """node_modules-relative path -> source of the files `require('puppeteer-core')` loads, with the package.json
    of every package among them (Node resolves packages through them). Listed once per install."""
    modules = ensure_installed()
    listing = modules.parent / ".puppeteer-files.json"
    if not listing.is_file():
        node = shutil.which("node")
        if node is None:
            raise LibraryError("GeoJSEval's browser runner needs node on the host to list puppeteer-core's files")
        r = subprocess.run([node, "-e", _PROBE, str(modules)], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise LibraryError(f"loading puppeteer-core failed: {r.stderr.strip()[-300:]}")
        rels = set()
        for f in json.loads(r.stdout):
            p = Path(f)
            if modules not in p.parents:
                continue
            rel = p.relative_to(modules)
            rels.add(str(rel))
            top = rel.parts[:2] if rel.parts[0].startswith("@") else rel.parts[:1]
            rels.add(str(Path(*top, "package.json")))
        tmp = listing.with_suffix(".tmp")
        tmp.write_text(json.dumps(sorted(rels)))
        tmp.replace(listing)
    return {rel: (modules / rel).read_text(encoding="utf-8") for rel in json.loads(listing.read_text())}


def main() -> None:
    """Install the libraries now (CI's set-up): prints where, or exits with the reason."""
    try:
        print(ensure_installed())
    except LibraryError as e:
        sys.exit(str(e))
