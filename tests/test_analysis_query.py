"""`harness query`: SQL over the documented views, with the database itself refusing every write."""
from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select
from typer.testing import CliRunner

import harness
from harness._registry import UsageError
from harness.cli._analysis import read_only_query
from harness.cli._app import app
from harness.store import Run, SampleRow, Store


@pytest.fixture
def store_with_run(db_url):
    store = Store(db_url)
    return store, harness.eval("cipherbank", "reference", db=store, data="bundled", limit=18).run_id


def _snapshot(store: Store):
    with store.engine.connect() as conn:
        return (sorted(inspect(conn).get_table_names()), sorted(inspect(conn).get_view_names()),
                conn.execute(select(func.count()).select_from(Run)).scalar(),
                conn.execute(select(func.count(), func.sum(SampleRow.score)).select_from(SampleRow)).one())


def test_views_answer_the_documented_columns(store_with_run):
    store, run_id = store_with_run
    cols, rows = read_only_query(store.url, "SELECT run_id, model, task, variant, sample_id, score, answer, "
                                            "error_category FROM samples_v ORDER BY sample_id")
    assert cols == ["run_id", "model", "task", "variant", "sample_id", "score", "answer", "error_category"]
    assert len(rows) == 18  # 2 plaintexts x 9 ciphers
    assert {r[0] for r in rows} == {run_id} and {r[5] for r in rows} == {1.0}
    cols, rows = read_only_query(store.url, "SELECT kind, model, count(*) FROM calls_v GROUP BY kind, model")
    assert rows == [("model", "reference", 18)]


WRITES = [
    "INSERT INTO runs (id, created_at, status, model, model_info, generate_config, epochs, plan, limiters, "
    "environment, command) VALUES ('x', '2026-01-01', 'finished', 'm', '{}', '{}', 1, '{}', '{}', '{}', '')",
    "UPDATE samples SET score = 0",
    "DELETE FROM samples",
    "DROP TABLE calls",
    "DROP VIEW samples_v",
    "CREATE TABLE evil (x integer)",
    "ALTER TABLE runs ADD COLUMN evil integer",
    "COMMIT; DELETE FROM samples",
    "WITH gone AS (DELETE FROM samples RETURNING 1) SELECT count(*) FROM gone",
]
SQLITE_WRITES = ["ATTACH DATABASE '{tmp}/attached.db' AS other", "VACUUM INTO '{tmp}/copy.db'",
                 "PRAGMA query_only = OFF", "PRAGMA user_version = 7", "PRAGMA journal_mode = DELETE"]
POSTGRES_WRITES = ["SET TRANSACTION READ WRITE", "SELECT set_config('transaction_read_only', 'off', false)",
                   "COPY samples TO '{tmp}/copy.csv'", "COPY (SELECT 1) TO PROGRAM 'touch {tmp}/ran'",
                   "SELECT nextval('samples_id_seq')"]


def test_nothing_can_write_through_query(store_with_run, tmp_path):
    store, _ = store_with_run
    before = _snapshot(store)
    # a folder the PostgreSQL server (another user) could write to, so a refused COPY TO is the role's doing
    target = Path(tempfile.mkdtemp(dir="/tmp"))
    target.chmod(0o777)
    extra = SQLITE_WRITES if store.is_sqlite else POSTGRES_WRITES
    try:
        for sql in WRITES + [s.format(tmp=target) for s in extra]:
            with pytest.raises(UsageError, match="query failed"):
                read_only_query(store.url, sql)
            assert _snapshot(store) == before, sql
        assert list(target.iterdir()) == []  # no attached database, VACUUM copy, COPY file or program output
    finally:
        shutil.rmtree(target)
    assert read_only_query(store.url, "SELECT count(*) FROM samples_v")[1] == [(18,)]


def test_query_cli_outputs(store_with_run):
    store, run_id = store_with_run
    sql = "SELECT sample_id, score FROM samples_v WHERE sample_id LIKE 'Rot13-%' ORDER BY sample_id"
    as_json = CliRunner().invoke(app, ["query", sql, "--db", store.url, "--json"])
    assert as_json.exit_code == 0, as_json.output
    rows = json.loads(as_json.output)
    assert len(rows) == 2 and all(r["score"] == 1.0 and r["sample_id"].startswith("Rot13-") for r in rows)
    as_csv = CliRunner().invoke(app, ["query", sql, "--db", store.url, "--csv"])
    parsed = list(csv.reader(io.StringIO(as_csv.output)))
    assert parsed[0] == ["sample_id", "score"] and [r[0] for r in parsed[1:]] == [r["sample_id"] for r in rows]
    table = CliRunner().invoke(app, ["query", "SELECT '[bold]x[/]' AS markup", "--db", store.url])
    assert "[bold]x[/]" in table.output  # cell text is escaped, not read as rich markup
    bad = CliRunner().invoke(app, ["query", "DELETE FROM runs", "--db", store.url])
    assert bad.exit_code != 0


def test_query_refuses_a_missing_sqlite_file(tmp_path):
    with pytest.raises(UsageError, match="no SQLite database"):
        read_only_query(f"sqlite:///{tmp_path}/absent.db", "SELECT 1")
    assert not (tmp_path / "absent.db").exists()
