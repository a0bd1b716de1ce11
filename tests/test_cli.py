"""The CLI as a user meets it: real processes, one-line errors, resume after kill -9."""
from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fakeopenai import start_server

HARNESS = [sys.executable, "-m", "harness.cli"]
BUNDLED = Path(__file__).parent.parent / "tasks" / "cipherbank" / "data" / "test.jsonl"


def harness(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*HARNESS, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize("args, message", [
    (["eval", "--model", "reference", "--task", "cipherbnk"], "unknown task 'cipherbnk' (did you mean 'cipherbank'?)"),
    (["eval", "--model", "reference", "--task", "cipherbank@hnt"], "no variant 'hnt' (did you mean 'hint'"),
    (["eval", "--model", "refrence", "--task", "cipherbank"], "unknown model 'refrence' (did you mean 'reference'?)"),
    (["eval", "--model", "reference", "--task", "cipherbank", "-T", "shots=2"], "takes no argument 'shots'"),
    (["eval", "--model", "reference", "--task", "cipherbank", "--data", "/nonexistent.jsonl"], "no such file"),
    (["eval", "--model", "reference", "--task", "cipherbank", "--sandbox", "dockr"],
     "--sandbox 'dockr' is not a sandbox (did you mean 'docker'?); use one of: auto, docker, bwrap, none-UNSAFE"),
    (["eval", "--model", "reference", "--task", "cipherbank", "--sandbox", "none-UNSAFE"],
     "also needs --i-understand-this-runs-untrusted-code-unsandboxed"),
    (["eval", "--model", "reference", "--task", "evalplus/mbpp_plus"],
     "use --data bundled (the sample shipped with it) or --data PATH with the release file MbppPlus-v0.2.0.jsonl.gz"),
    (["runs", "--db", "postgresql+psycopg://x@127.0.0.1:1/db"], "cannot open database"),
])
def test_bad_input_is_one_clear_line(args, message, tmp_path):
    db = [] if "--db" in args else ["--db", f"sqlite:///{tmp_path / 'h.db'}"]
    assert message in one_line_error(harness(*args, *db))


def test_missing_api_key_stops_before_any_work(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    result = subprocess.run([*HARNESS, "eval", "--model", "openai/gpt-4o-mini", "--task", "cipherbank", "--data",
                             "bundled", "--db", f"sqlite:///{tmp_path / 'h.db'}"], capture_output=True, text=True, env=env)
    assert "OPENAI_API_KEY is not set" in one_line_error(result)
    assert not (tmp_path / "h.db").exists() or sqlite3.connect(tmp_path / "h.db").execute(
        "select count(*) from runs").fetchone()[0] == 0


def test_unreachable_endpoint_is_one_line(tmp_path):
    result = harness("eval", "--model", "openai/m", "--base-url", "http://127.0.0.1:9/v1", "--task", "cipherbank",
                     "--data", "bundled", "--db", f"sqlite:///{tmp_path / 'h.db'}")
    assert "cannot reach http://127.0.0.1:9/v1" in one_line_error(result)


def test_a_malformed_record_errors_its_sample_and_the_run_goes_on(tmp_path):
    lines = BUNDLED.read_text().splitlines()[:3]
    broken = json.loads(lines[1])
    del broken["Atbash"]  # a record missing a cipher column
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join([lines[0], json.dumps(broken), "{not json", lines[2]]) + "\n")
    db = f"sqlite:///{tmp_path / 'h.db'}"
    result = harness("eval", "--model", "reference", "--task", "cipherbank", "--data", str(data), "--db", db, "--json")
    assert result.returncode == 0, result.stderr
    task = json.loads(result.stdout)["tasks"][0]
    assert task["counts"] == {"scored": 18, "error": 2}  # two good records x 9 ciphers; one error per bad record
    assert task["metrics"]["overall"]["accuracy"]["value"] == 100.0
    # the errored samples are not in the value: the task is reported incomplete, with the counts beside it
    assert task["complete"] is False and task["status"] == "incomplete"
    assert (task["completeness"]["scored"], task["completeness"]["error"]) == (18, 2)
    table = harness("show", json.loads(result.stdout)["run"]["id"], "--db", db, env={"COLUMNS": "100"}).stdout
    assert "18/20 scored, 2 errored · INCOMPLETE" in table
    assert re.search(r"│ accuracy\s+│\s+100\.00 \[\d+\.\d+, 100\.00\] │ 18 \+2 err", table), table
    con = sqlite3.connect(tmp_path / "h.db")
    errors = sorted(r[0] for r in con.execute("select error from samples where status = 'error'"))
    assert any("KeyError: 'Atbash'" in e for e in errors) and any("data.jsonl:3: not JSON" in e for e in errors)


def test_tasks_runs_and_show_agree_with_eval(tmp_path):
    db = ["--db", f"sqlite:///{tmp_path / 'h.db'}"]
    tasks = json.loads(harness("tasks", "--json").stdout)
    cb = next(t for t in tasks if t["name"] == "cipherbank")
    assert cb["size"] == 2358 and cb["bundled_samples"] == 180 and set(cb["variants"]) == {"default", "hint", "no_system", "agent"}
    out = json.loads(harness("eval", "-m", "reference", "-t", "cipherbank@hint", "--data", "bundled", "--limit", "9",
                             *db, "--json").stdout)
    run_id = out["run"]["id"]
    runs = json.loads(harness("runs", *db, "--json").stdout)
    assert runs[0]["id"] == run_id and runs[0]["tasks"] == ["cipherbank@hint"] and runs[0]["counts"] == {"scored": 9}
    shown = json.loads(harness("show", run_id, *db, "--json").stdout)
    assert shown["tasks"] == out["tasks"]
    table = harness("show", run_id, *db).stdout
    assert "cipherbank@hint" in table and "100.00" in table and "complete" in table
    assert "paper" not in table  # the paper reported the default prompt, not the hint variant


def test_kill_9_halfway_then_resume_does_every_sample_exactly_once(tmp_path):
    log = tmp_path / "requests.jsonl"
    server, url = start_server("--latency", "0.05", "--log", str(log))
    db_path = tmp_path / "h.db"
    db = f"sqlite:///{db_path}"
    try:
        proc = subprocess.Popen([*HARNESS, "eval", "-m", "openai/fake", "--base-url", url, "-t", "cipherbank",
                                 "--data", "bundled", "--db", db, "-M", "max_connections=4"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        committed = 0
        deadline = time.time() + 60
        while committed < 60 and time.time() < deadline:
            time.sleep(0.1)
            try:
                committed = sqlite3.connect(db_path).execute("select count(*) from samples").fetchone()[0]
            except sqlite3.OperationalError:
                pass  # the schema is not there yet
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        con = sqlite3.connect(db_path)
        run_id, status = con.execute("select id, status from runs").fetchone()
        assert status == "running"  # killed: nothing had the chance to mark it
        done_before = {r[0] for r in con.execute("select prompt from samples")}
        assert 60 <= len(done_before) < 180
        requests_before = len(log.read_text().splitlines())

        result = harness("eval", "--resume", run_id[:12], "--db", db, "--json")
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout)
        assert summary["tasks"][0]["counts"] == {"scored": 180}
        rows = con.execute("select sample_id, epoch, count(*) from samples group by 1, 2").fetchall()
        assert len(rows) == 180 and all(n == 1 for *_, n in rows)
        # the resumed process asked only for what had no committed row
        resumed = [json.loads(line)["prompt"] for line in log.read_text().splitlines()[requests_before:]]
        assert not set(resumed) & done_before
        assert len(resumed) == 180 - len(done_before)
        assert con.execute("select status from runs").fetchone()[0] == "finished"
    finally:
        server.terminate()


def test_ctrl_c_keeps_finished_samples_and_says_how_to_resume(tmp_path):
    db_path = tmp_path / "h.db"
    proc = subprocess.Popen([*HARNESS, "eval", "-m", "mock", "-M", "latency=0.05", "-M", "text=x", "-t", "cipherbank",
                             "--data", "bundled", "--db", f"sqlite:///{db_path}", "--max-samples", "4"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    committed = 0
    while committed < 20 and time.time() < deadline:
        time.sleep(0.1)
        try:
            committed = sqlite3.connect(db_path).execute("select count(*) from samples").fetchone()[0]
        except sqlite3.OperationalError:
            pass
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    con = sqlite3.connect(db_path)
    run_id, status = con.execute("select id, status from runs").fetchone()
    assert status == "interrupted"
    kept = con.execute("select count(*) from samples").fetchone()[0]
    assert 20 <= kept < 180
    assert f"harness eval --resume {run_id}" in err


def test_sample_ids_and_epochs(tmp_path):
    db = ["--db", f"sqlite:///{tmp_path / 'h.db'}"]
    ids = ["Rot13-e41d18004b", "Vigenere-6c9cbf5d1a"]
    out = json.loads(harness("eval", "-m", "reference", "-t", "cipherbank", "--data", "bundled", "--epochs", "3",
                             *[a for i in ids for a in ("--sample-id", i)], *db, "--json").stdout)
    assert out["tasks"][0]["counts"] == {"scored": 6}
    assert out["tasks"][0]["metrics"]["overall"]["accuracy"]["n"] == 2  # epochs average within a sample


def test_a_third_party_package_registers_a_suite_by_entry_point(tmp_path):
    pkg = tmp_path / "site" / "thirdparty_suite"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        "from harness import Dataset, Sample, Score, Task, accuracy, generate, task\n"
        "@task('thirdparty/echo')\n"
        "def echo() -> Task:\n"
        "    async def exact(state, ctx):\n"
        "        return Score(value=float(state.completion == state.sample.target))\n"
        "    return Task(name='thirdparty/echo', version='0', dataset=Dataset(to_samples=lambda r, c: "
        "[Sample(id=r['id'], input=r['q'], target=r['a'])]), solver=generate(), scorers=[exact], "
        "metrics=[accuracy()], headline='accuracy')\n")
    dist = tmp_path / "site" / "thirdparty_suite-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-suite\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[harness.tasks]\necho = thirdparty_suite\n")
    data = tmp_path / "d.jsonl"
    data.write_text('{"id": "1", "q": "2+2", "a": "4"}\n{"id": "2", "q": "3+3", "a": "6"}\n')
    env = {"PYTHONPATH": str(tmp_path / "site")}
    listed = json.loads(harness("tasks", "--json", env=env).stdout)
    assert "thirdparty/echo" in [t["name"] for t in listed]
    out = harness("eval", "-m", "reference", "-t", "thirdparty/echo", "--data", str(data),
                  "--db", f"sqlite:///{tmp_path / 'h.db'}", "--json", env=env)
    assert json.loads(out.stdout)["tasks"][0]["metrics"]["overall"]["accuracy"]["value"] == 100.0


def _store_at(path: Path) -> str:
    from harness.store import Store

    url = f"sqlite:///{path}"
    Store(url).close()
    return url


def test_the_summary_of_an_aegis_run_fits_80_columns_and_names_every_metric(tmp_path):
    db = ["--db", f"sqlite:///{tmp_path / 'h.db'}"]
    result = harness("eval", "-m", "reference", "-t", "aegis", "--data", "bundled", *db, env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, "\n".join(line for line in lines if len(line) > 80)
    assert "…" not in result.stdout
    run_id = json.loads(harness("runs", *db, "--json").stdout)[0]["id"]
    stored = json.loads(harness("show", run_id, *db, "--json").stdout)["tasks"][0]["metrics"]["overall"]
    shown = [m for m in stored if any(line.startswith(f"│ {m} ") for line in lines)]
    # the headline and the six metrics the paper reports, each name in full on its own row, with the
    # paper's best number beside it (not a 90-row table of its numbers)
    assert shown == ["pair_micro_f1", "pair_macro_f1", "agent_micro_f1", "agent_macro_f1", "mode_micro_f1",
                     "mode_macro_f1"]
    assert "16.62 Qwen2.5-14B + SFT" in result.stdout and "best of 15" in result.stdout
    assert len(lines) < 50 and f"harness show {run_id} --metrics all" in result.stdout
    every = harness("show", run_id, *db, "--metrics", "all", env={"COLUMNS": "80"}).stdout
    assert max(len(line) for line in every.splitlines()) <= 80
    assert all(any(line.startswith(f"│ {m} ") for line in every.splitlines()) for m in stored)
    wide = harness("show", run_id, *db, env={"COLUMNS": "200"}).stdout
    assert max(len(line) for line in wide.splitlines()) <= 200
    chosen = harness("show", run_id, *db, "--metrics", "agent_micro_recall", env={"COLUMNS": "80"}).stdout
    assert [m for m in stored if any(line.startswith(f"│ {m} ") for line in chosen.splitlines())] == [
        "agent_micro_recall"]
    assert "no metric agnt" in one_line_error(harness("show", run_id, *db, "--metrics", "agnt"))


def test_progress_lines_when_stderr_is_not_a_terminal(tmp_path):
    db = ["--db", f"sqlite:///{tmp_path / 'h.db'}"]
    # one sample at a time, 20 ms each: the run lasts at least 0.6 s, a dozen progress intervals
    args = ["eval", "-m", "mock", "-M", "text=x", "-M", "latency=0.02", "-t", "cipherbank", "--data", "bundled",
            "--limit", "30", "--max-samples", "1", *db]
    result = harness(*args, env={"HARNESS_PROGRESS_INTERVAL": "0.05"})
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("[progress] cipherbank: ")]
    assert len(lines) >= 3, result.stderr
    assert re.search(r"\d+/30 \(\d+%\) · [\d.]+ samples/s · 0 errored · score 0\.0% · ETA \d+s", result.stderr)
    assert lines[-1].startswith("[progress] cipherbank: 30/30 (100%)") and "done in" in lines[-1]
    quiet = harness(*args, "--quiet", env={"HARNESS_PROGRESS_INTERVAL": "0"})
    assert quiet.returncode == 0 and "[progress]" not in quiet.stderr


def test_a_model_argument_no_provider_reads_is_warned_about(tmp_path):
    db = ["--db", f"sqlite:///{tmp_path / 'h.db'}"]
    result = harness("eval", "-m", "mock", "-M", "text=x", "-M", "temprature=0", "-M", "extra.my_gateway_tag=7",
                     "-M", "top_k=5", "-t", "cipherbank", "--data", "bundled", "--limit", "1", *db, "--json")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert warnings == ["warning: -M temprature: no known provider reads this key; did you mean 'temperature'? it "
                        "is sent as is. To send a provider-specific key on purpose, write -M extra.temprature=..."]
    sent = json.loads(result.stdout)["run"]["generate_config"]
    assert sent["temprature"] == 0 and sent["my_gateway_tag"] == 7 and sent["top_k"] == 5  # extra. is dropped
    assert "extra.my_gateway_tag" not in sent


@pytest.mark.parametrize("args", [["runs"], ["show", "2026"], ["errors"], ["compare", "a", "b"], ["export", "a"],
                                  ["leaderboard", "build", "--out", "SITE"], ["eval", "--resume", "a"],
                                  ["rescore", "a"]])
def test_read_only_commands_create_no_database(args, tmp_path):
    missing = tmp_path / "typo" / "dir" / "x.db"
    args = [str(tmp_path / "site") if a == "SITE" else a for a in args]
    message = one_line_error(harness(*args, "--db", f"sqlite:///{missing}"))
    assert f"no database at {missing}" in message
    assert not (tmp_path / "typo").exists()
    env_only = harness(*args, env={"HARNESS_DB_URL": f"sqlite:///{missing}"})
    assert f"no database at {missing}" in one_line_error(env_only) and not (tmp_path / "typo").exists()


def test_an_ambiguous_run_prefix_lists_its_matches(tmp_path):
    db = ["--db", f"sqlite:///{tmp_path / 'h.db'}"]
    ids = []
    for _ in range(2):
        out = harness("eval", "-m", "reference", "-t", "cipherbank", "--data", "bundled", "--limit", "1", *db, "--json")
        ids.append(json.loads(out.stdout)["run"]["id"])
    prefix = os.path.commonprefix(ids)
    message = one_line_error(harness("show", prefix, *db))
    assert f"run id {prefix!r} matches 2 runs: {', '.join(sorted(ids))}; give more of the id" in message
    assert json.loads(harness("show", ids[1][:len(prefix) + 1], *db, "--json").stdout)["run"]["id"] == ids[1]
    assert "no run '_'" in one_line_error(harness("show", "_", *db))  # LIKE wildcards are literal


def test_model_name_is_stored_and_a_replay_is_named_by_its_file(tmp_path):
    db = ["--db", f"sqlite:///{tmp_path / 'h.db'}"]
    replay = tmp_path / "gpt-x-responses.jsonl"
    replay.write_text(json.dumps({"sample_id": "Rot13-e41d18004b", "response": "<result>x</result>"}) + "\n")
    out = harness("eval", "-m", f"replay:{replay}", "-t", "cipherbank", "--data", "bundled", "--sample-id",
                  "Rot13-e41d18004b", *db, "--json")
    assert json.loads(out.stdout)["run"]["model"] == "gpt-x-responses"
    named = harness("eval", "-m", "reference", "--model-name", "gold answers", "-t", "cipherbank", "--data", "bundled",
                    "--limit", "1", *db, "--json")
    assert json.loads(named.stdout)["run"]["model"] == "gold answers"
    assert [r["model"] for r in json.loads(harness("runs", *db, "--json").stdout)] == ["gold answers", "gpt-x-responses"]


def test_an_empty_store_says_how_to_make_a_run(tmp_path):
    url = _store_at(tmp_path / "h.db")
    result = harness("runs", "--db", url)
    assert result.returncode == 0
    assert result.stdout.strip() == (f"No runs yet in {url}. Make one with, e.g.: harness eval --model reference "
                                     "--task cipherbank --data bundled")


def test_help_version_and_short_flags():
    result = harness("eval", "-h", env={"COLUMNS": "80"})
    assert result.returncode == 0
    text = result.stdout
    assert "--i-understand-this-runs-untrusted-code-unsandboxed\n" in text  # the flag's whole name
    assert "vllm/<model>" in text and "none-UNSAFE" in text
    assert "-T, --task-arg KEY=VALUE" in text and "-M, --model-arg KEY=VALUE" in text
    assert "<bool>" not in text and "<str>" not in text and "<list" not in text and "<int" not in text
    assert "│" not in text  # plain help: a description column of about half the width, not a 25-column panel
    starts = {len(line) - len(line.lstrip()) for line in text.splitlines() if line.startswith("    ")}
    assert min(starts) <= 34 and max(len(line) for line in text.splitlines()) <= 80
    assert harness("--version").stdout.strip() == "harness 0.1.0"
    assert harness("-h").returncode == 0 and "Commands:" in harness("-h").stdout


def test_proportions_are_percent_everywhere_and_zero_of_three_has_ci_low_zero(tmp_path):
    db = ["--db", f"sqlite:///{tmp_path / 'h.db'}"]
    wrong = json.loads(harness("eval", "-m", "mock", "-M", "text=x", "-t", "cipherbank", "--data", "bundled",
                               "--limit", "3", *db, "--json").stdout)
    acc = wrong["tasks"][0]["metrics"]["overall"]["accuracy"]
    assert (acc["value"], acc["ci_low"], acc["n"]) == (0.0, 0.0, 3)  # exactly 0, not 5.55e-15
    assert acc["ci_high"] == pytest.approx(56.15, abs=0.01)  # Wilson, hand-checked: 3.8415 / 6.8415
    right = json.loads(harness("eval", "-m", "reference", "-t", "cipherbank", "--data", "bundled", "--limit", "3",
                               *db, "--json").stdout)["tasks"][0]
    overall = right["metrics"]["overall"]
    assert overall["accuracy"]["ci_high"] == 100.0 and overall["levenshtein_similarity"]["value"] == 100.0
    assert all(r["value"] > 1 for r in right["reference"])  # the paper's numbers in percent too
