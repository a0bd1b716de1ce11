"""Alembic: every earlier revision (and an empty database) upgrades to head with its data kept, the migrated
schema is exactly what the SQLAlchemy models declare, and the analysis views answer."""
from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

import harness.store
from harness.store import HEAD, Base, Store

MIGRATIONS = Path(harness.store.__file__).parent / "migrations"


def _config(conn) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def _revisions() -> list[str]:
    script = ScriptDirectory.from_config(_config(None))
    return [r.revision for r in reversed(list(script.walk_revisions()))]  # oldest first


def test_head_constant_is_the_newest_revision():
    script = ScriptDirectory.from_config(_config(None))
    assert script.get_heads() == [HEAD]
    assert _revisions()[-1] == HEAD


@pytest.mark.parametrize("start", ["base", *_revisions()])
def test_upgrade_from_every_revision_keeps_data(db_url, start):
    engine = create_engine(db_url)
    if start != "base":
        with engine.begin() as conn:
            command.upgrade(_config(conn), start)
        with engine.begin() as conn:  # a run written by that revision's schema
            conn.execute(text("INSERT INTO runs (id, created_at, status, model, model_info, generate_config, epochs,"
                              " plan, limiters, environment, command) VALUES ('r1', '2026-01-01 00:00:00', "
                              "'finished', 'm', '{}', '{}', 1, '{}', '{}', '{}', 'harness eval')"))
    store = Store(db_url)  # upgrades to head, as every command does
    assert store.current_revision() == HEAD
    if start != "base":
        assert store.get_run("r1")["model"] == "m"
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM samples_v")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM calls_v")).scalar() == 0
    store.close()
    engine.dispose()


def test_migrated_schema_matches_the_models(db_url):
    store = Store(db_url)
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    store.close()


def test_downgrade_to_base_and_back(db_url):
    store = Store(db_url)
    with store.engine.begin() as conn:
        command.downgrade(_config(conn), "base")
    tables = set(inspect(store.engine).get_table_names()) - {"alembic_version"}
    assert tables == set()
    store.upgrade()
    assert store.current_revision() == HEAD
    assert {"runs", "run_tasks", "samples", "calls", "traces", "leaderboard_builds"} <= set(
        inspect(store.engine).get_table_names())
    store.close()
