"""CORRECT-Error. No real record is reachable from here (tasks/correct_error docstring), so these tests run on
HAND-WRITTEN FIXTURE records in the published schema, written below; they are not benchmark data."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import harness
from harness import get_task
from harness.store import Store
from harness.tasks.correct_error import data_issues


def hand_written_fixture_records() -> list[dict]:
    """Hand-written, in the hub schema; the defects mirror the ones reported for the release."""
    history = [{"role": "human", "content": "Answer the question."},
               {"role": "Orchestrator (thought)", "content": "Plan: ask the Assistant."},
               {"role": "Orchestrator (-> Assistant)", "content": "Please compute it."},
               {"role": "Assistant", "content": "The result is 12."},
               {"role": "Orchestrator (thought)", "content": "Final answer: 12."}]
    base = {"generator_model": "gpt-4o-mini", "history": history, "mistake_agent": "Assistant", "mistake_step": 3,
            "mistake_reason": "HAND-WRITTEN reason: the sum is wrong", "is_corrected": False, "gaia_level": None,
            "level": 0, "groundtruth": ""}
    return [
        {**base, "trajectory_id": "gpt-4o-mini_arc_task1_0", "dataset": "arc", "question_id": "task1_0",
         "question": "Which gas do plants absorb?"},
        {**base, "trajectory_id": "gpt-4o-mini_math500_task2_0", "dataset": "math500", "question_id": "task2_0",
         "question": "If $ = 5, what is ,000 divided by 10?", "mistake_step": 1, "mistake_agent": "Orchestrator"},
        {**base, "trajectory_id": "gpt-4o-mini_hotpot_task3_0", "dataset": "hotpot", "question_id": "task3_0",
         "question": "", "mistake_step": 2, "mistake_agent": "Orchestrator"},
        {**base, "trajectory_id": "gpt-4o-mini_musique_task4_0", "dataset": "musique", "question_id": "task4_0",
         "question": "Who wrote it?", "groundtruth": "HAND-WRITTEN answer"},
    ]


@pytest.fixture
def jsonl(tmp_path) -> Path:
    path = tmp_path / "hand_written_fixture" / "test.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps(r) + "\n" for r in hand_written_fixture_records()))
    return path


def run(db_url: str, data: str, variant: str = "default", model: str = "reference"):
    store = Store(db_url)
    run_id = harness.eval(f"correct_error@{variant}", model, db=store, data=data).run_id
    rt = store.run_tasks(run_id)[0]
    return rt["metrics"], {r["sample_id"]: r for r in store.samples(rt["id"])}


def test_data_problems_are_reported_per_sample_not_fixed(jsonl):
    task = get_task("correct_error").build()
    samples = {s.id: s for s in task.dataset.open(str(jsonl))[1]}
    issues = {sid: s.metadata["data_issues"] for sid, s in samples.items()}
    assert issues == {
        "gpt-4o-mini_arc_task1_0": "empty_groundtruth",
        "gpt-4o-mini_math500_task2_0": "shell_expansion_suspected,empty_groundtruth",
        "gpt-4o-mini_hotpot_task3_0": "empty_question,empty_groundtruth",
        "gpt-4o-mini_musique_task4_0": "none",
    }
    assert samples["gpt-4o-mini_math500_task2_0"].trajectory.task == "If $ = 5, what is ,000 divided by 10?"
    assert data_issues({"question": "Let $x$ be 2 and pay $10,000.", "groundtruth": "2"}) == []  # intact text
    for s in samples.values():
        prompt = "\n".join(m["content"] for m in s.input)
        assert "HAND-WRITTEN reason" not in prompt and "HAND-WRITTEN answer" not in prompt
        assert not [k for k in ("mistake_agent", "mistake_step", "mistake_reason", "groundtruth") if k in prompt]
        assert "The Answer for the problem is:" not in prompt


def test_reference_scores_everything_and_breaks_down_by_issue(db_url, jsonl):
    metrics, rows = run(db_url, str(jsonl))
    assert all(r["status"] == "scored" for r in rows.values()) and len(rows) == 4
    assert metrics["overall"]["step_accuracy"]["value"] == 100.0
    assert metrics["overall"]["agent_accuracy"]["value"] == 100.0
    assert set(metrics["by"]["data_issues"]) == {"empty_groundtruth", "shell_expansion_suspected,empty_groundtruth",
                                                 "empty_question,empty_groundtruth", "none"}


def test_with_ground_truth_is_refused_where_the_answer_is_missing(sqlite_url, jsonl):
    metrics, rows = run(sqlite_url, str(jsonl), "with_ground_truth")
    refused = {sid for sid, r in rows.items() if r["status"] == "error"}
    assert refused == {"gpt-4o-mini_arc_task1_0", "gpt-4o-mini_math500_task2_0", "gpt-4o-mini_hotpot_task3_0"}
    assert all("groundtruth is empty" in rows[sid]["error"] for sid in refused)
    answered = rows["gpt-4o-mini_musique_task4_0"]
    assert answered["status"] == "scored" and "The Answer for the problem is: HAND-WRITTEN answer" in answered["prompt"]


def test_download_script_layout_and_hub_path(sqlite_url, tmp_path, jsonl):
    root = tmp_path / "data"
    for i, record in enumerate(hand_written_fixture_records()):
        folder = root / "correct_error_gpt5nano" / record["dataset"] / "individual_trajectories"
        folder.mkdir(parents=True, exist_ok=True)
        case = {k: record[k] for k in ("history", "question", "groundtruth", "is_corrected", "mistake_agent",
                                       "mistake_reason", "level")}
        (folder / f"{i}.json").write_text(json.dumps({**case, "mistake_step": str(record["mistake_step"]),
                                                      "question_ID": record["question_id"]}))
    task = get_task("correct_error").build()
    samples = list(task.dataset.open(str(root))[1])
    assert sorted(s.id for s in samples) == ["gpt-5-nano/arc/0", "gpt-5-nano/hotpot/2", "gpt-5-nano/math500/1",
                                             "gpt-5-nano/musique/3"]
    assert {s.metadata["generator"] for s in samples} == {"gpt-5-nano"}
    assert [s.target["faults"][0]["step"] for s in sorted(samples, key=lambda s: s.id)] == [3, 2, 1, 3]
    # the hub path, through `datasets`, on a local folder laid out like the hub repo
    from dataclasses import replace

    hub = replace(task.dataset, hub=str(jsonl.parent))
    assert sorted(s.id for s in hub.open("hub")[1]) == sorted(r["trajectory_id"] for r in hand_written_fixture_records())
