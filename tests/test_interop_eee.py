"""Runs as Every Eval Ever records (harness.interop.export_eee): every record passes the `every-eval-ever` 0.3.0
validator (schema, datastore path, companion file, row count, score bounds, model identity), one aggregate is
checked by hand, hostile text survives, errored samples are never written as wrong answers, the papers' numbers are
never exported, and `harness leaderboard build --eee` writes the records of what the site shows."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from harness.store._store import storable
from test_interop_runs import HOSTILE, build_runs, cli, need

try:
    from every_eval_ever.validator.validate import main as eee_validate
except ImportError:
    if os.environ.get("CI"):
        raise
    pytest.skip("needs the every-eval-ever validator (./dev.sh installs it)", allow_module_level=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return build_runs(tmp_path_factory.mktemp("runs"))


def export(runs, name: str, out: Path) -> tuple[dict, list[dict], Path]:
    cli("export", need(runs, name), "--format", "eee", "--out", str(out), "--db", runs.db)
    (aggregate,) = sorted(out.glob("data/*/*/*/*.json"))
    samples = aggregate.with_name(aggregate.stem + "_samples.jsonl")
    rows = [json.loads(line) for line in samples.read_text().splitlines()] if samples.exists() else []
    return json.loads(aggregate.read_text()), rows, aggregate


def validate(files: list[Path], capsys) -> list[dict]:
    """The package's own validator, as `eee-validate FILES --format json` runs it; exit 0 means no error and no
    warning."""
    capsys.readouterr()
    code = eee_validate([str(f.resolve()) for f in files] + ["--format", "json"])
    reports = json.loads(capsys.readouterr().out)
    assert code == 0, json.dumps(reports, indent=1)[:4000]
    return reports


@pytest.mark.parametrize("name", ["cipherbank", "mixed", "evalplus", "ineqmath", "hostile"])
def test_records_pass_the_every_eval_ever_validator(runs, name, tmp_path, capsys):
    aggregate, rows, path = export(runs, name, tmp_path / name)
    reports = validate([path, path.with_name(path.stem + "_samples.jsonl")], capsys)
    assert [r["valid"] for r in reports] == [True, True] and not any(r["warnings"] for r in reports)
    store = runs.store()
    (rt,) = store.run_tasks(runs.ids[name])
    assert len(aggregate["evaluation_results"]) == len(rt["metrics"]["overall"])
    assert len(rows) == sum(r["status"] == "scored" for r in store.samples(rt["id"])) == reports[1]["line_count"]


def test_validator_rejects_a_tampered_record(runs, tmp_path, capsys):
    """The check above can fail: a row count that does not match the companion file is an error."""
    aggregate, _, path = export(runs, "cipherbank", tmp_path / "x")
    aggregate["detailed_evaluation_results"]["total_rows"] += 1
    path.write_text(json.dumps(aggregate))
    capsys.readouterr()
    assert eee_validate([str(path.resolve()), "--format", "json"]) == 1
    assert "total_rows does not match" in capsys.readouterr().out


def test_a_hand_checked_aggregate(runs, tmp_path):
    """The mixed run: 4 CipherBank samples, 2 right, 1 wrong, 1 with no response (errored)."""
    aggregate, rows, path = export(runs, "mixed", tmp_path / "m")
    store = runs.store()
    (rt,) = store.run_tasks(runs.ids["mixed"])
    run_id = runs.ids["mixed"]
    assert path.relative_to(tmp_path / "m").parts[:4] == ("data", "cipherbank", "replay", "answers")
    assert aggregate["model_info"]["id"] == "answers" and aggregate["model_info"]["developer"] == "replay"
    assert aggregate["source_metadata"]["source_type"] == "evaluation_run"
    assert aggregate["evaluation_id"] == f"cipherbank/answers/{run_id}"
    results = {r["metric_config"]["metric_id"]: r for r in aggregate["evaluation_results"]}
    assert set(results) == {"accuracy", "levenshtein_similarity"}
    acc = results["accuracy"]
    # 2 of the 3 scored samples right: 66.67%; Wilson 95% interval for 2/3, by hand with z = 1.96:
    # centre (p + z²/2n) / (1 + z²/n) = (0.6667 + 0.6403) / 2.2805 = 0.5731,
    # half-width z sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n) = 1.96 x 0.4252 / 2.2805 = 0.3654 -> [20.77, 93.85]
    assert acc["score_details"]["score"] == pytest.approx(200 / 3)
    ci = acc["score_details"]["uncertainty"]["confidence_interval"]
    assert (ci["lower"], ci["upper"], ci["confidence_level"]) == (pytest.approx(20.77, abs=0.01),
                                                                  pytest.approx(93.85, abs=0.01), 0.95)
    assert acc["score_details"]["uncertainty"]["num_samples"] == 3
    assert acc["score_details"]["details"] == {"scored": "3", "errored": "1", "planned": "4", "complete": "false",
                                               "headline": "true"}
    assert acc["metric_config"]["metric_unit"] == "percent" and acc["metric_config"]["max_score"] == 100.0
    assert acc["source_data"]["source_type"] == "other"
    assert acc["source_data"]["additional_details"]["sha256"] == rt["dataset"]["sha256"]
    repro = json.loads(acc["generation_config"]["additional_details"]["reproducibility"])
    assert repro["dataset"] == rt["dataset"] and repro["run_id"] == run_id and repro["prompt_sha256"]
    assert repro["git_commit"] == store.get_run(run_id)["environment"]["git_commit"]
    assert acc["generation_config"]["generation_args"]["execution_command"] == store.get_run(run_id)["command"]
    # the instance file: the 3 scored samples (the errored one is left out, never written as wrong)
    detail = aggregate["detailed_evaluation_results"]
    samples = path.with_name(path.stem + "_samples.jsonl")
    assert detail["total_rows"] == len(rows) == 3
    assert detail["checksum"] == hashlib.sha256(samples.read_bytes()).hexdigest()
    assert detail["additional_details"]["errored_rows_left_out"] == "1"
    right, right2, wrong, missing = runs.mixed_ids
    by_id = {r["sample_id"]: r for r in rows}
    assert set(by_id) == {right, right2, wrong}
    assert [by_id[s]["evaluation"]["is_correct"] for s in (right, right2, wrong)] == [True, True, False]
    assert all(r["evaluation_result_id"] == "cipherbank/accuracy" for r in rows)
    db = {r["sample_id"]: r for r in store.samples(rt["id"])}
    assert by_id[wrong]["output"]["raw"] == [db[wrong]["response"]]
    assert by_id[wrong]["answer_attribution"][0]["extracted_value"] == db[wrong]["answer"] == "not the plaintext"
    assert by_id[right]["input"]["reference"] == [db[right]["target"]]


def test_paper_numbers_are_never_exported(runs, tmp_path):
    from harness import get_task

    reported = get_task("cipherbank").build().reference
    assert reported
    aggregate, _, path = export(runs, "cipherbank", tmp_path / "c")
    text = path.read_text()
    assert not any(r.model in text for r in reported)
    assert aggregate["source_metadata"]["source_type"] == "evaluation_run"
    assert [r["score_details"]["score"] for r in aggregate["evaluation_results"]] == [100.0, 100.0]  # measured here


def test_judges_are_in_the_llm_scoring_configuration(runs, tmp_path):
    aggregate, rows, _ = export(runs, "ineqmath", tmp_path / "i")
    scoring = aggregate["evaluation_results"][0]["metric_config"]["llm_scoring"]
    roles = {j["additional_details"]["role"] for j in scoring["judges"]}
    assert {"answer", "toy_case", "logical_gap", "numerical_approximation", "numerical_computation"} <= roles
    assert {j["model_info"]["id"] for j in scoring["judges"]} == {"scripted"}
    from harness.tasks.ineqmath import prompts

    assert prompts.SYSTEM in scoring["input_prompt"]
    assert all(r["answer_attribution"][0]["extraction_method"] == "llm_judge" for r in rows)


def test_hostile_text_survives(runs, tmp_path):
    _, rows, path = export(runs, "hostile", tmp_path / "h")
    assert path.read_bytes().isascii()  # every non-ASCII character JSON-escaped: no encoding can mangle it
    store = runs.store()
    db = store.samples(store.run_tasks(runs.ids["hostile"])[0]["id"])
    for r, row in zip(rows, db):
        (raw,) = r["output"]["raw"]
        # character for character, NUL and control characters included; only the lone surrogate is escaped
        assert raw == HOSTILE.replace("\ud800", "\\ud800") and storable(raw)[0] == row["response"]
        assert "<script>document.title='PWNED'</script>" in raw and "\x00 nul \x07 bell \x1b[31m ansi \u202e rtl" in raw
        assert "\\ud800" in raw and len(raw) > 10 ** 6  # a lone surrogate cannot be carried: escaped, and said so
        assert "record.output.raw[0]" in r["metadata"]["escaped"].split(",")


def test_leaderboard_build_writes_the_records_beside_the_site(tmp_path, capsys):
    # with the hostile run: its trace holds a lone surrogate, which the sample pages write escaped
    runs = build_runs(tmp_path)
    site = tmp_path / "site"
    out = json.loads(cli("leaderboard", "build", "--out", str(site), "--eee", "--no-record", "--db", runs.db, "--json"))
    files = [Path(p) for p in out["eee"]]
    assert files and all(site / "eee" in p.parents for p in files) and (site / "index.html").is_file()
    aggregates = [json.loads(p.read_text()) for p in files if p.suffix == ".json"]
    shown = {(a["evaluation_results"][0]["evaluation_name"], a["model_info"]["name"]) for a in aggregates}
    # the newest run per (model, suite): the mixed replay and both reference-model CipherBank runs' newest
    assert ("cipherbank", "answers") in shown and ("cipherbank", "reference") in shown
    run_ids = {a["source_metadata"]["additional_details"]["run_id"] for a in aggregates}
    assert runs.ids["mixed"] in run_ids and runs.ids["cipherbank"] in run_ids
    validate(files, capsys)
