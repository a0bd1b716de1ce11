"""Sandbox images: a debootstrapped base imported into Docker, then one `docker build` per image.

Images are tagged by a content hash of their definition (the folder under images/ plus the base's
hash), so `build_image` is a no-op unless the definition changed. An image whose image.toml names
`from_image` builds FROM that image instead of the base (and hashes over its hash): a variant that
only adds packages shares the parent's layers and leaves the parent as small as it was.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path
from typing import Any, Callable

IMAGES_DIR = Path(__file__).parent / "images"
BASE_REPO = "harness-base"
Progress = Callable[[str], None] | None


def docker_client(timeout: int = 120):
    import docker  # lazy: importing the SDK costs ~0.2 s

    return docker.from_env(timeout=timeout)


def docker_available() -> tuple[bool, str]:
    try:
        docker_client(timeout=5).ping()
        return True, ""
    except Exception as e:  # the SDK raises several unrelated types for "no daemon"
        return False, f"{type(e).__name__}: {e}"


def list_images() -> list[str]:
    return sorted(p.name for p in IMAGES_DIR.iterdir() if (p / "Dockerfile").is_file())


def _base_config() -> dict[str, Any]:
    return tomllib.loads((IMAGES_DIR / "base.toml").read_text())


def image_config(name: str) -> dict[str, Any]:
    d = IMAGES_DIR / name
    if not (d / "Dockerfile").is_file():
        raise ValueError(f"unknown sandbox image {name!r}; known: {', '.join(list_images())}")
    # exec_agent: the Python that runs the Docker backend's command runner (all our images are Debian with python3)
    cfg = {"exec_user": "10001:10001", "init_user": "65534:65534", "workdir": "/work", "exec_agent": "/usr/bin/python3"}
    if (d / "image.toml").is_file():
        cfg.update(tomllib.loads((d / "image.toml").read_text()))
    return cfg


def base_hash() -> str:
    cfg = _base_config()
    key = repr(sorted((k, v) for k, v in cfg.items() if k != "mirror"))
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def base_tag() -> str:
    return f"{BASE_REPO}:{base_hash()}"


def image_hash(name: str) -> str:
    parent = image_config(name).get("from_image")  # also validates the name
    h = hashlib.sha256((image_hash(parent) if parent else base_hash()).encode())
    d = IMAGES_DIR / name
    for p in sorted(d.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(d)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def image_tag(name: str) -> str:
    return f"{name}:{image_hash(name)}"


def _find(client, tag: str):
    import docker

    try:
        return client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None


def image_status(name: str = "harness-python") -> dict[str, Any]:
    st: dict[str, Any] = {"name": name, "tag": image_tag(name), "base_tag": base_tag()}
    ok, err = docker_available()
    st["docker"] = ok
    if not ok:
        st.update(built=False, error=err)
        return st
    client = docker_client()
    img, base = _find(client, st["tag"]), _find(client, st["base_tag"])
    st["base_built"] = base is not None
    st["built"] = img is not None
    if img is not None:
        st["id"] = img.id
        st["size_mb"] = round(img.attrs.get("Size", 0) / 2**20, 1)
        st["created"] = img.attrs.get("Created")
    return st


def apt_mirror() -> str:
    """The Debian mirror the host's apt uses (deb.debian.org if none is found)."""
    texts = []
    for p in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        try:
            texts.append(p.read_text())
        except OSError:
            pass
    for text in texts:
        for m in re.finditer(r"(?:^deb\s+(?:\[[^\]]*\]\s+)?|^URIs:\s*)(\S+)", text, re.M):
            uri = m.group(1).rstrip("/")
            if re.search(r"/debian$", uri) and "security" not in uri:
                return uri
    return "http://deb.debian.org/debian"


def _run_logged(cmd: list[str], progress: Progress) -> None:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail: list[str] = []
    assert proc.stdout
    for line in proc.stdout:
        line = line.rstrip()
        tail = (tail + [line])[-30:]
        if progress:
            progress(line)
    if proc.wait():
        raise RuntimeError(f"{cmd[0]} failed (exit {proc.returncode}):\n" + "\n".join(tail))


def build_base(*, force: bool = False, progress: Progress = None) -> str:
    client = docker_client(timeout=600)
    tag = base_tag()
    if not force and (img := _find(client, tag)) is not None:
        return img.id
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is not installed (apt-get install debootstrap)")
    if os.geteuid() != 0:
        raise RuntimeError("building the sandbox base image runs debootstrap, which needs root")
    cfg = _base_config()
    mirror = cfg.get("mirror") or apt_mirror()
    tmp = Path(tempfile.mkdtemp(prefix="harness-base-", dir="/var/tmp"))
    try:
        root = tmp / "root"
        cmd = ["debootstrap", f"--variant={cfg['variant']}"]
        if cfg.get("include"):
            cmd.append(f"--include={cfg['include']}")
        cmd += [cfg["suite"], str(root), mirror]
        if progress:
            progress(f"debootstrap {cfg['suite']} from {mirror} (a few minutes)")
        _run_logged(cmd, progress)
        # Drop the debootstrap apt cache; images run apt-get update themselves.
        shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
        (root / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
        tarball = tmp / "root.tar"
        subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(tarball), "."], check=True)
        if progress:
            progress(f"importing {tarball.stat().st_size >> 20} MiB as {tag}")
        repo, _, t = tag.partition(":")
        client.api.import_image_from_file(str(tarball), repository=repo, tag=t)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    img = _find(client, tag)
    if img is None:
        raise RuntimeError(f"docker import did not produce {tag}")
    return img.id


def build_image(name: str = "harness-python", *, force: bool = False, progress: Progress = None) -> str:
    """Build (if its definition changed, or force) the sandbox image `name`; returns the image id."""
    tag = image_tag(name)
    client = docker_client(timeout=1800)
    if not force and (img := _find(client, tag)) is not None:
        if progress:
            progress(f"{tag} is up to date")
        return img.id
    parent = image_config(name).get("from_image")
    if parent:
        build_image(parent, progress=progress)
        base = image_tag(parent)
    else:
        base = base_tag()
        build_base(force=False, progress=progress)
    if progress:
        progress(f"building {tag} FROM {base}")
    tail: list[str] = []
    # Build context is the image folder alone: nothing from the harness's tree can leak in.
    for chunk in client.api.build(path=str(IMAGES_DIR / name), tag=tag, buildargs={"BASE": base},
                                  rm=True, forcerm=True, decode=True, pull=False, nocache=force,
                                  labels={"harness.image": name, "harness.hash": image_hash(name)}):
        if "error" in chunk:
            raise RuntimeError(f"docker build of {tag} failed: {chunk['error']}\n" + "".join(tail))
        line = chunk.get("stream") or chunk.get("status") or ""
        if line:
            tail = (tail + [line])[-30:]
            if progress and line.strip():
                progress(line.rstrip())
    img = _find(client, tag)
    if img is None:
        raise RuntimeError(f"docker build did not produce {tag}\n" + "".join(tail))
    img.tag(name, "latest")  # convenience for people poking around with the docker CLI
    return img.id
