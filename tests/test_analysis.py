"""`harness errors`, `compare` and `export` on runs made in the test, against SQLite and PostgreSQL."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import harness
from harness.cli._analysis import compare_runs, error_groups, export_run, mcnemar_p, paired_bootstrap
from harness.cli._app import app
from harness.model import MockModel
from harness.store import Store

EASY = {"Rot13", "Atbash", "Reverse"}


def make_run(url: str, name: str, respond, *, variant: str = "default", limit: int | None = None) -> str:
    store = Store(url)
    run_id = harness.eval(f"cipherbank@{variant}", MockModel(respond, name=name), db=store, data="bundled",
                          limit=limit).run_id
    store.close()
    return run_id


def solves(ciphers: set[str]):
    """A model that decrypts only these ciphers; elsewhere it answers without the <result> tag."""
    return lambda sample, _: (f"<result>{sample.target}</result>" if sample.metadata["cipher"] in ciphers
                              else "I cannot decrypt this.")


@pytest.fixture
def runs(db_url):
    a = make_run(db_url, "model-a", solves(EASY))
    b = make_run(db_url, "model-b", solves(EASY - {"Reverse"} | {"Polybius"}))
    return db_url, a, b


def test_errors_by_metadata_key_counts_per_cipher(runs):
    url, a, _ = runs
    groups = {g["group"]: g for g in error_groups(Store(url), by="cipher", run=a, examples=2)}
    assert set(groups) == {"Rot13", "Atbash", "Polybius", "Vigenere", "Reverse", "SwapPairs", "ParityShift",
                           "DualAvgCode", "WordShift"}
    for cipher, g in groups.items():
        assert g["samples"] == g["scored"] == 20  # 20 plaintexts per cipher in the bundled data
        assert g["failed"] == (0 if cipher in EASY else 20)
        assert g["failure_rate"] == (0.0 if cipher in EASY else 1.0)
        assert len(g["examples"]) == (0 if cipher in EASY else 2)
        assert all(e["sample_id"].startswith(f"{cipher}-") and e["run_id"] == a for e in g["examples"])
    assert sum(g["share_of_failures"] or 0 for g in groups.values()) == pytest.approx(1.0)


def test_errors_by_error_category_and_model_filter(runs):
    url, a, b = runs
    groups = {g["group"]: g for g in error_groups(Store(url), by="error_category", model="model-b")}
    assert groups["no_result_tag"]["failed"] == 6 * 20
    assert groups["(correct)"]["samples"] == 3 * 20 and groups["(correct)"]["failed"] == 0
    both = {g["group"]: g for g in error_groups(Store(url), by="model")}
    assert both["model-a"]["failed"] == both["model-b"]["failed"] == 120


def test_errors_cli_json(runs):
    url, a, _ = runs
    result = CliRunner().invoke(app, ["errors", "--db", url, "--task", "cipherbank", "--by", "category", "--json"])
    assert result.exit_code == 0, result.output
    groups = {g["group"]: g for g in json.loads(result.output)}
    # model-a solves 2 of 4 substitution ciphers, model-b 3 of 4; transposition: a 1 of 2, b 0 of 2
    assert groups["substitution"]["failed"] == 2 * 20 + 1 * 20
    assert groups["transposition"]["failed"] == 1 * 20 + 2 * 20
    assert groups["custom"]["failure_rate"] == 1.0


def test_compare_lists_flips_and_mcnemar(runs):
    url, a, b = runs
    result = compare_runs(Store(url), a, b)
    (task,) = result["tasks"]
    assert task["task"] == "cipherbank" and task["metric"] == "accuracy"
    assert task["paired_samples"] == 180
    assert sorted({s.split("-")[0] for s in task["regressed"]}) == ["Reverse"] and len(task["regressed"]) == 20
    assert sorted({s.split("-")[0] for s in task["improved"]}) == ["Polybius"] and len(task["improved"]) == 20
    assert task["difference"] == pytest.approx(0.0)
    assert task["test"]["name"] == "McNemar (exact)" and task["test"]["p_value"] == pytest.approx(1.0)


def test_compare_detects_a_regression(db_url):
    a = make_run(db_url, "model-a", solves(EASY))
    worse = make_run(db_url, "model-a", solves(set()))
    # a unique prefix works (one hex digit short of the id: two runs made in the same second differ there)
    result = CliRunner().invoke(app, ["compare", a[:-1], worse, "--db", db_url, "--json"])
    assert result.exit_code == 0, result.output
    (task,) = json.loads(result.output)["tasks"]
    assert len(task["regressed"]) == 60 and task["improved"] == []
    assert task["difference"] == pytest.approx(-100 * 60 / 180)
    assert task["test"]["p_value"] < 1e-15  # 60 discordant pairs, all one way: 2 / 2**60


def test_compare_uses_bootstrap_for_fractional_scores(db_url):
    a = make_run(db_url, "m", lambda s, _: f"<result>{s.target}</result>", limit=10)
    b = make_run(db_url, "m", lambda s, _: f"<result>{s.target[:-1]}</result>", limit=10)
    store = Store(db_url)
    from sqlalchemy import update

    from harness.store import SampleRow

    # turn the 0/1 scores of run b into fractions (its Levenshtein similarity), as a graded suite stores them
    with store.engine.begin() as conn:
        rt = store.run_tasks(b)[0]["id"]
        for row in store.samples(rt):
            conn.execute(update(SampleRow).where(SampleRow.id == row["id"]).values(score=row["scores"]["levenshtein"]))
    (task,) = compare_runs(store, a, b)["tasks"]
    assert task["test"]["name"] == "paired bootstrap"
    lo, hi = task["test"]["mean_diff_ci"]
    assert hi < 0 and task["test"]["p_value"] < 0.05
    assert len(task["regressed"]) == 10


def test_statistics():
    assert mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(0, 5) == pytest.approx(2 / 32)
    assert mcnemar_p(3, 3) == 1.0
    lo, hi, p = paired_bootstrap([1.0, 0.0] * 50)
    assert lo < 0.5 < hi and p < 0.01
    assert paired_bootstrap([0.0, 0.0, 0.0])[2] == 1.0


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_export_round_trips_every_sample(runs, tmp_path, fmt):
    url, a, _ = runs
    path, n = export_run(Store(url), a, fmt, str(tmp_path / f"out.{fmt}"), traces=True, batch=50)
    assert n == 180
    if fmt == "parquet":
        rows = pq.read_table(path).to_pylist()
    else:
        rows = [json.loads(line) for line in open(path, encoding="utf-8")]
    assert len(rows) == 180 and len({r["sample_id"] for r in rows}) == 180
    row = next(r for r in rows if r["sample_id"].startswith("Rot13-"))
    metadata = json.loads(row["metadata"]) if fmt == "parquet" else row["metadata"]
    trace = json.loads(row["trace"]) if fmt == "parquet" else row["trace"]
    assert metadata["cipher"] == "Rot13" and row["score"] == 1.0 and row["model"] == "model-a"
    assert trace["calls"][0]["text"] == row["response"] == f"<result>{row['target']}</result>"


def test_export_cli_and_unknown_run(runs, tmp_path):
    url, a, _ = runs
    out = tmp_path / "x.jsonl"
    result = CliRunner().invoke(app, ["export", a, "--format", "jsonl", "--out", str(out), "--db", url])
    assert result.exit_code == 0, result.output
    assert sum(1 for _ in open(out)) == 180
    from harness._registry import UsageError

    with pytest.raises(UsageError, match="no run"):
        export_run(Store(url), "nope", "jsonl", str(out))
    with pytest.raises(UsageError, match="parquet or jsonl"):
        export_run(Store(url), a, "csv", str(out))
