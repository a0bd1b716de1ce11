"""Data sources: the hub path through `datasets` (pinned to the commit it records), mirrors, local files."""
from __future__ import annotations

import json
import types

import pytest

from harness import get_task
from harness._dataset import DataError


def test_an_unpinned_hub_dataset_is_pinned_to_the_commit_it_resolves(monkeypatch):
    import datasets
    import huggingface_hub

    seen = []
    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", lambda self, repo: types.SimpleNamespace(sha="abc123"))
    record = json.loads(open(get_task("cipherbank").build().dataset.bundled).readline())

    def fake_load(path, name=None, split=None, revision=None, streaming=False):
        seen.append((path, name, split, revision, streaming))
        return iter([record])

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    provenance, stream = get_task("cipherbank").build().dataset.open("hub")
    samples = list(stream)
    assert provenance.revision == "abc123" and provenance.location == "yu0226/CipherBank"
    assert len(samples) == 9 and {s.metadata["cipher"] for s in samples} == {n for _, n, *_ in seen}
    assert all(r == "abc123" and streaming and split == "test" for _, _, split, r, streaming in seen)


def test_an_unreachable_hub_is_a_data_error(monkeypatch):
    import huggingface_hub

    def offline(self, repo):
        raise OSError("no network")

    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", offline)
    with pytest.raises(DataError, match="could not reach yu0226/CipherBank on the hub.*--data bundled"):
        get_task("cipherbank").build().dataset.open("hub")


def test_a_local_mirror_laid_out_like_the_hub_repo_loads_through_datasets(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    task = get_task("cipherbank").build()
    lines = open(task.dataset.bundled).read().splitlines()[:2]
    card = ["---", "configs:"]
    for cipher in task.dataset.hub_configs:
        (tmp_path / cipher).mkdir()
        (tmp_path / cipher / "test.jsonl").write_text("\n".join(lines) + "\n")
        card += [f"- config_name: {cipher}", "  data_files:", "  - split: test", f"    path: {cipher}/test.jsonl"]
    (tmp_path / "README.md").write_text("\n".join(card + ["---", ""]))
    provenance, stream = task.dataset.open(f"hub:{tmp_path}")
    samples = list(stream)
    assert len(samples) == 18 and provenance.kind == "hub" and len(provenance.sha256) == 64
    bundled = {s.id: s for s in task.dataset.open("bundled")[1]}
    assert all(bundled[s.id].input == s.input and bundled[s.id].target == s.target for s in samples)
