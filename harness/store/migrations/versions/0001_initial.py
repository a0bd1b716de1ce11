"""Initial schema: runs, run_tasks, samples, calls, traces, and the analysis views samples_v, calls_v.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SAMPLES_V = """
CREATE VIEW samples_v AS
SELECT r.id AS run_id, r.model AS model, r.created_at AS run_created_at, t.task AS task, t.variant AS variant,
       t.task_version AS task_version, s.sample_id AS sample_id, s.epoch AS epoch, s.status AS status,
       s.score AS score, s.scores AS scores, s.answer AS answer, s.target AS target, s.response AS response,
       s.error_category AS error_category, s.error AS error, s.metadata AS metadata,
       s.input_tokens AS input_tokens, s.output_tokens AS output_tokens, s.latency_s AS latency_s,
       s.trace_hash AS trace_hash, s.created_at AS created_at
FROM samples s JOIN run_tasks t ON s.run_task_id = t.id JOIN runs r ON t.run_id = r.id
"""

CALLS_V = """
CREATE VIEW calls_v AS
SELECT r.id AS run_id, r.model AS run_model, t.task AS task, t.variant AS variant, c.sample_id AS sample_id,
       c.epoch AS epoch, c.idx AS idx, c.kind AS kind, c.model AS model, c.input_tokens AS input_tokens,
       c.output_tokens AS output_tokens, c.latency_s AS latency_s, c.attempts AS attempts, c.error AS error,
       c.started_at AS started_at
FROM calls c JOIN run_tasks t ON c.run_task_id = t.id JOIN runs r ON t.run_id = r.id
"""


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("model", sa.String(200), nullable=False, index=True),
        sa.Column("model_info", sa.JSON(), nullable=False),
        sa.Column("generate_config", sa.JSON(), nullable=False),
        sa.Column("base_url", sa.String(500)),
        sa.Column("seed", sa.Integer()),
        sa.Column("epochs", sa.Integer(), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("limiters", sa.JSON(), nullable=False),
        sa.Column("environment", sa.JSON(), nullable=False),
        sa.Column("command", sa.Text(), nullable=False),
        sa.Column("rescored_from", sa.String(32)),
    )
    op.create_table(
        "run_tasks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("task", sa.String(200), nullable=False, index=True),
        sa.Column("variant", sa.String(100), nullable=False),
        sa.Column("task_args", sa.JSON(), nullable=False),
        sa.Column("task_version", sa.String(50), nullable=False),
        sa.Column("dataset", sa.JSON(), nullable=False),
        sa.Column("samples_planned", sa.Integer()),
        sa.Column("metrics", sa.JSON()),
        sa.UniqueConstraint("run_id", "task", "variant"),
    )
    op.create_table(
        "samples",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_task_id", sa.Integer(), sa.ForeignKey("run_tasks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("sample_id", sa.String(300), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("score", sa.Float()),
        sa.Column("scores", sa.JSON()),
        sa.Column("answer", sa.Text()),
        sa.Column("target", sa.Text()),
        sa.Column("prompt", sa.Text()),
        sa.Column("response", sa.Text()),
        sa.Column("error_category", sa.String(100)),
        sa.Column("error", sa.Text()),
        sa.Column("explanation", sa.Text()),
        sa.Column("metadata", sa.JSON()),
        sa.Column("input_tokens", sa.Integer()),
        sa.Column("output_tokens", sa.Integer()),
        sa.Column("latency_s", sa.Float()),
        sa.Column("trace_hash", sa.String(64)),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("run_task_id", "sample_id", "epoch"),
    )
    op.create_table(
        "calls",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_task_id", sa.Integer(), sa.ForeignKey("run_tasks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("sample_id", sa.String(300), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("input_tokens", sa.Integer()),
        sa.Column("output_tokens", sa.Integer()),
        sa.Column("latency_s", sa.Float()),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("started_at", sa.Float()),
    )
    op.create_index("ix_calls_sample", "calls", ["run_task_id", "sample_id", "epoch"])
    op.create_table(
        "traces",
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )
    op.execute(SAMPLES_V)
    op.execute(CALLS_V)
    op.create_table(
        "leaderboard_builds",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, index=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("cells", sa.JSON(), nullable=False),
    )
    op.create_table(
        "judge_cache",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("input_tokens", sa.Integer()),
        sa.Column("output_tokens", sa.Integer()),
        sa.Column("latency_s", sa.Float()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("judge_cache")
    op.drop_table("leaderboard_builds")
    op.execute("DROP VIEW calls_v")
    op.execute("DROP VIEW samples_v")
    for table in ("traces", "calls", "samples", "run_tasks", "runs"):
        op.drop_table(table)
