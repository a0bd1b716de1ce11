"""The content-addressed search cache: what a search backend answered, the pages it fetched and the
summaries made of them, on disk, so a run can be replayed offline from the cache alone.

Layout under the cache root (every file named by a SHA-256, so a copy can be checked against its name):

    entries/<k[:2]>/<k>.json     one search (key = request_key(...)): the request as sent, its time, the
                                 backend's response verbatim, the parsed results, a fetch record per result URL
    blobs/<h[:2]>/<h>            extracted page texts, named by the SHA-256 of their UTF-8 bytes
    summaries/<k[:2]>/<k>.json   summariser outputs (key = summary_key(...)): kept apart because they are
                                 conditioned on the question, so another summariser can be re-run offline
    manifests/<run>.json         the keys a run used (entries, blobs, summaries)

Writes are atomic (a temporary file, then rename), so a crash never leaves half a file; a file that does
not parse or whose content does not match its name is a CacheCorrupt error naming it.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
import unicodedata
from pathlib import Path
from typing import Any, Iterable

from harness._types import InfraError

KINDS = ("entries", "blobs", "summaries")
_HEX = re.compile(r"^[0-9a-f]{64}$")


class CacheCorrupt(InfraError):
    """A cache file that does not parse or does not match its content hash."""


class ReplayMiss(InfraError):
    """In replay mode, a request the cache does not hold."""


def sha256(data: bytes | str) -> str:
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def normalize_query(query: str) -> str:
    """A text query as keyed: Unicode NFKC, trimmed, internal whitespace collapsed, case-folded."""
    return " ".join(unicodedata.normalize("NFKC", query).split()).casefold()


def request_key(backend: str, backend_version: str, tool: str, normalized_input: str, params: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of {backend, backend_version, tool, normalized_input, params}."""
    return sha256(canonical_json({"backend": backend, "backend_version": backend_version, "tool": tool,
                                  "normalized_input": normalized_input, "params": params}))


def summary_key(text_sha256: str, question_sha256: str, model: str, prompt_sha256: str, temperature: float) -> str:
    return sha256(canonical_json({"text_sha256": text_sha256, "question_sha256": question_sha256,
                                  "summariser_model": model, "summariser_prompt_sha256": prompt_sha256,
                                  "temperature": temperature}))


class SearchCache:
    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()

    def _path(self, kind: str, key: str) -> Path:
        if kind not in KINDS or not _HEX.match(key):
            raise ValueError(f"not a cache {kind} key: {key!r}")
        return self.root / kind / key[:2] / (key if kind == "blobs" else f"{key}.json")

    def _write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _read_json(self, kind: str, key: str) -> dict[str, Any] | None:
        path = self._path(kind, key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            value = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CacheCorrupt(f"search cache file {path} is corrupt ({type(e).__name__}); delete it and refill it "
                               f"(-T search=fill) or import the cache again") from None
        if not isinstance(value, dict) or value.get("key") != key:
            raise CacheCorrupt(f"search cache file {path} does not hold the entry of its key; delete it and refill "
                               f"it (-T search=fill) or import the cache again")
        return value

    def get(self, key: str) -> dict[str, Any] | None:
        return self._read_json("entries", key)

    def put(self, key: str, entry: dict[str, Any]) -> None:
        self._write(self._path("entries", key), canonical_json({**entry, "key": key}).encode())

    def get_summary(self, key: str) -> dict[str, Any] | None:
        return self._read_json("summaries", key)

    def put_summary(self, key: str, record: dict[str, Any]) -> None:
        self._write(self._path("summaries", key), canonical_json({**record, "key": key}).encode())

    def put_text(self, text: str) -> str:
        data = text.encode("utf-8")
        digest = sha256(data)
        path = self._path("blobs", digest)
        if not path.exists():
            self._write(path, data)
        return digest

    def get_text(self, digest: str) -> str | None:
        path = self._path("blobs", digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        if sha256(data) != digest:
            raise CacheCorrupt(f"search cache blob {path} does not match its hash; delete it and refill it "
                               f"(-T search=fill) or import the cache again")
        return data.decode("utf-8")

    def write_manifest(self, run_id: str, keys: dict[str, Iterable[str]]) -> Path:
        """The keys a run used, merged with what an earlier (interrupted) part of the same run wrote."""
        if not re.match(r"^[A-Za-z0-9._-]+$", run_id):
            raise ValueError(f"not a run id: {run_id!r}")
        path = self.root / "manifests" / f"{run_id}.json"
        old = read_manifest(path) if path.exists() else {}
        merged = {k: sorted(set(old.get(k, [])) | set(keys.get(k, []))) for k in KINDS}
        self._write(path, json.dumps(merged, indent=1).encode())
        return path


def read_manifest(path: Path) -> dict[str, list[str]]:
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a search-cache manifest ({type(e).__name__})") from None
    if not isinstance(value, dict) or not all(isinstance(value.get(k, []), list) for k in KINDS):
        raise ValueError(f"{path}: not a search-cache manifest (expected lists of keys under {', '.join(KINDS)})")
    return {k: [str(x) for x in value.get(k, [])] for k in KINDS}


def _referenced(cache: SearchCache, manifest: dict[str, list[str]]) -> dict[str, set[str]]:
    """A manifest's keys plus the page-text blobs its entries and summaries point at."""
    keys = {k: set(manifest.get(k, [])) for k in KINDS}
    for key in list(keys["entries"]):
        entry = cache.get(key)
        if entry is None:
            raise ValueError(f"the manifest names search entry {key}, which the cache {cache.root} does not hold")
        keys["blobs"] |= {f["text_sha256"] for f in (entry.get("fetches") or {}).values() if f.get("text_sha256")}
    return keys


def export_cache(root: str | Path, out: str | Path, manifest: str | Path | None = None) -> dict[str, int]:
    """Write the cache (or only what a run's manifest names) to a .tar.gz; returns the counts per kind."""
    cache = SearchCache(root)
    if manifest is not None:
        keys = _referenced(cache, read_manifest(Path(manifest)))
    else:
        keys = {k: {p.name.removesuffix(".json") for p in (cache.root / k).glob("*/*") if not p.name.startswith(".")}
                for k in KINDS}
    counts = {k: 0 for k in KINDS}
    with tarfile.open(out, "w:gz") as tar:
        for kind in KINDS:
            for key in sorted(keys[kind]):
                path = cache._path(kind, key)
                if not path.exists():
                    raise ValueError(f"the cache {cache.root} lacks {kind[:-1]} {key} that the manifest needs")
                info = tar.gettarinfo(str(path), arcname=str(path.relative_to(cache.root)))
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mtime = 0
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)
                counts[kind] += 1
    return counts


def import_cache(archive: str | Path, root: str | Path) -> dict[str, int]:
    """Add an exported archive's files to the cache at `root`. Each member is checked before anything is
    written: its path must be one the cache itself would write, and its content must match its name; a
    member that fails makes the whole import fail (nothing written)."""
    cache = SearchCache(root)
    staged: list[tuple[Path, bytes]] = []
    counts = {k: 0 for k in KINDS}
    try:
        tar = tarfile.open(archive, "r:gz")
    except (OSError, tarfile.TarError) as e:
        raise ValueError(f"{archive}: not a search-cache archive ({type(e).__name__}: {e})") from None
    with tar:
        for member in tar.getmembers():
            parts = member.name.split("/")
            kind, name = (parts[0], parts[-1]) if len(parts) == 3 else ("", "")
            key = name.removesuffix(".json") if kind != "blobs" else name
            if kind not in KINDS or not member.isfile() or not _HEX.match(key) or parts[1] != key[:2] \
                    or (kind != "blobs" and not name.endswith(".json")):
                raise ValueError(f"{archive}: member {member.name!r} is not a search-cache file; nothing imported")
            fh = tar.extractfile(member)
            data = fh.read() if fh is not None else b""
            if kind == "blobs":
                ok = sha256(data) == key
            else:
                try:
                    ok = json.loads(data).get("key") == key
                except (ValueError, AttributeError):
                    ok = False
            if not ok:
                raise ValueError(f"{archive}: member {member.name!r} does not match its key (corrupt); nothing imported")
            staged.append((cache._path(kind, key), data))
            counts[kind] += 1
    for path, data in staged:
        cache._write(path, data)
    return counts


def image_png(image: Any) -> bytes:
    """The canonical bytes of an image as searched: lossless PNG, RGB, no metadata."""
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="PNG")
    return buf.getvalue()
