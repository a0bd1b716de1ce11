"""Where a task's records come from: the HF hub at a pinned revision, local files in the upstream format, or
the small real sample bundled with the suite. Records are streamed and turned into Samples one at a time."""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from harness._types import Sample

# record, hub config (None for local files that hold every config) -> samples
RecordToSamples = Callable[[dict[str, Any], "str | None"], Iterable[Sample]]


class DataError(Exception):
    """The data could not be read at all (as opposed to one bad record, which errors only its sample)."""


@dataclass
class Provenance:
    """Stored with the run so its numbers can be traced to the exact data."""

    kind: str  # "hub" | "local" | "bundled"
    location: str
    revision: str | None = None  # hub: the pinned (or resolved) commit
    sha256: str | None = None  # local files: content hash

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Dataset:
    """A suite's data source.

    hub / hub_configs / split / revision: the HF dataset; one load per config.
    bundled: a small real sample shipped with the suite, in the upstream local format.
    read_local: reads a local file or folder in the upstream format, yielding (config, record);
        defaults to JSON Lines / JSON arrays (optionally gzipped).
    size: the full benchmark's sample count, for `harness tasks`.
    """

    to_samples: RecordToSamples
    hub: str | None = None
    hub_configs: list[str] | None = None
    split: str = "test"
    revision: str | None = None
    bundled: Path | None = None
    size: int | None = None
    read_local: Callable[[Path], Iterator[tuple[str | None, dict[str, Any]]]] | None = None
    license: str = ""
    citation: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    _provenances: dict[str, Provenance] = field(default_factory=dict, init=False, repr=False, compare=False)

    def open(self, source: str) -> tuple[Provenance, Iterator[Sample]]:
        """source: "hub", "hub:<repo id or folder laid out like the hub repo>" (a mirror), "bundled", or a local
        path in the upstream format. Returns the provenance and a lazy sample stream of exactly that data."""
        provenance = self.provenance(source)
        if provenance.kind == "hub":
            return provenance, self._hub(provenance.location, provenance.revision)
        return provenance, self._local(Path(provenance.location))

    def provenance(self, source: str) -> Provenance:
        """Where `source` points, worked out once per source: a run opens its data several times (probe, count,
        stream), and each time must read the same commit without hashing files or asking the hub again."""
        if source not in self._provenances:
            self._provenances[source] = self._find(source)
        return self._provenances[source]

    def _find(self, source: str) -> Provenance:
        if source == "bundled":
            if self.bundled is None:
                raise DataError("this task bundles no sample; pass --data PATH or --data hub")
            return Provenance("bundled", str(self.bundled), sha256=content_hash(self.bundled))
        if source == "hub" or source.startswith("hub:"):
            location = source.removeprefix("hub:") if source != "hub" else self.hub
            if not location:
                where = self.extra.get("data_source")  # where a suite without a hub dataset gets its files
                choices = ["--data bundled (the sample shipped with it)"] if self.bundled else []
                choices.append(f"--data PATH with {where}" if where else "--data PATH")
                raise DataError(f"this task has no hub dataset; use {' or '.join(choices)}")
            mirror = Path(location).expanduser()
            if mirror.is_dir():  # a local copy of the hub repo: its content is what identifies it
                return Provenance("hub", str(mirror.resolve()), sha256=content_hash(mirror))
            return Provenance("hub", location, revision=self.revision or _resolve_revision(location))
        path = Path(source).expanduser()
        if not path.exists():
            raise DataError(f"--data {source}: no such file or folder (use 'hub', 'bundled' or a path)")
        return Provenance("local", str(path.resolve()), sha256=content_hash(path))

    def _local(self, path: Path) -> Iterator[Sample]:
        reader = self.read_local or read_json_records
        for config, record in reader(path):
            yield from _safe_samples(self.to_samples, record, config)

    def _hub(self, location: str, revision: str | None) -> Iterator[Sample]:
        """Through `datasets`, streaming; `location` may also be a local folder laid out like the hub repo."""
        os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")
        try:
            from datasets import load_dataset
        except ImportError as e:  # pragma: no cover - a dependency
            raise DataError(f"the `datasets` package is missing: {e}") from e
        for config in self.hub_configs or [None]:
            try:
                stream = load_dataset(location, name=config, split=self.split, revision=revision, streaming=True)
                for record in stream:
                    yield from _safe_samples(self.to_samples, record, config)
            except (OSError, ValueError, ConnectionError) as e:
                raise DataError(f"could not load {location} ({config or 'default'}) from the hub: "
                                f"{str(e).splitlines()[0][:200]}; offline, use --data bundled or --data PATH") from e


def _safe_samples(to_samples: RecordToSamples, record: dict[str, Any], config: str | None) -> Iterator[Sample]:
    """A malformed record becomes one errored sample instead of stopping the run."""
    if "__invalid__" in record:
        yield Sample(id="invalid-" + ":".join(record["__invalid__"].split(":")[:2]), input="", invalid=record["__invalid__"])
        return
    try:
        yield from list(to_samples(record, config))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        rid = record.get("id") or record.get("data_id") or record.get("task_id") if isinstance(record, dict) else None
        digest = hashlib.sha1(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:10]
        yield Sample(id=f"invalid-{rid or digest}", input="", invalid=f"malformed record: {type(e).__name__}: {e}")


def read_json_records(path: Path) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """JSON Lines or a JSON array (optionally .gz); a folder is read file by file in name order. A file that
    cannot be read at all (a corrupt or truncated .gz, bytes that are not UTF-8, a broken JSON array) is a
    DataError naming it; one bad line of JSON Lines errors only its record."""
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in (".jsonl", ".json", ".gz")) if path.is_dir() else [path]
    for file in files:
        try:
            yield from _read_json_file(file)
        except (OSError, EOFError, zlib.error, UnicodeDecodeError) as e:
            what = "not valid UTF-8 text" if isinstance(e, UnicodeDecodeError) else \
                "not a readable gzip file" if file.suffix == ".gz" else "unreadable"
            raise DataError(f"{file}: {what} ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
        except json.JSONDecodeError as e:
            raise DataError(f"{file}: not a JSON array nor JSON Lines ({e.msg} at line {e.lineno})") from None


def _read_json_file(file: Path) -> Iterator[tuple[str | None, dict[str, Any]]]:
    opener = gzip.open if file.suffix == ".gz" else open
    with opener(file, "rt", encoding="utf-8") as fh:
        head = fh.read(1)
        while head and head.isspace():
            head = fh.read(1)
        if head == "[":
            fh.seek(0)
            for record in json.load(fh):
                yield None, record
            return
        fh.seek(0)
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield None, json.loads(line)
            except json.JSONDecodeError as e:
                yield None, {"__invalid__": f"{file.name}:{lineno}: not JSON ({e.msg})"}


def _resolve_revision(repo: str) -> str:
    """The hub's current commit of an unpinned dataset, so the run records (and loads) exactly that commit."""
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")
    try:
        from huggingface_hub import HfApi

        return HfApi().dataset_info(repo).sha
    except Exception as e:  # network, auth and not-found errors all mean: this source cannot be used now
        raise DataError(f"could not reach {repo} on the hub ({type(e).__name__}); offline, use --data bundled or "
                        f"--data PATH") from None


def content_hash(path: Path) -> str:
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        h.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        with open(file, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()
