"""The events table (one row per step of a sample: model call, tool call, limit, error, span) and the view
events_v that names each step's run, model, task and variant.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

EVENTS_V = """
CREATE VIEW events_v AS
SELECT r.id AS run_id, r.model AS model, t.task AS task, t.variant AS variant, e.sample_id AS sample_id,
       e.epoch AS epoch, e.seq AS seq, e.span AS span, e.agent AS agent, e.kind AS kind, e.name AS name,
       e.input AS input, e.output AS output, e.error AS error, e.started_at AS started_at,
       e.latency_s AS latency_s, e.input_tokens AS input_tokens, e.output_tokens AS output_tokens
FROM events e JOIN run_tasks t ON e.run_task_id = t.id JOIN runs r ON t.run_id = r.id
"""


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_task_id", sa.Integer(), sa.ForeignKey("run_tasks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("sample_id", sa.String(300), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("span", sa.Integer()),
        sa.Column("agent", sa.String(200)),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200)),
        sa.Column("input", sa.Text()),
        sa.Column("output", sa.Text()),
        sa.Column("error", sa.Text()),
        sa.Column("started_at", sa.Float()),
        sa.Column("latency_s", sa.Float()),
        sa.Column("input_tokens", sa.Integer()),
        sa.Column("output_tokens", sa.Integer()),
        sa.Column("escaped", sa.JSON()),
    )
    op.create_index("ix_events_step", "events", ["run_task_id", "sample_id", "epoch", "seq"], unique=True)
    op.execute(EVENTS_V)


def downgrade() -> None:
    op.execute("DROP VIEW events_v")
    op.drop_index("ix_events_step", table_name="events")
    op.drop_table("events")
