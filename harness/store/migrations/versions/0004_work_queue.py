"""The work queue of runs executed by workers (`harness eval --executor slurm`): work_items (one per run task,
sample and epoch, with its state and lease), workers (each worker process seen, for progress), and
runs.executor (how the run is executed, with the job script as submitted).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("executor", sa.JSON()))
    op.create_table(
        "work_items",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("run_task_id", sa.Integer(), sa.ForeignKey("run_tasks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("sample_id", sa.String(300), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("lease_owner", sa.String(200)),
        sa.Column("lease_expires", sa.DateTime()),
        sa.Column("finished_at", sa.DateTime()),
        sa.Column("error", sa.Text()),
        sa.UniqueConstraint("run_task_id", "sample_id", "epoch"),
    )
    op.create_index("ix_work_items_claim", "work_items", ["run_id", "state", "id"])
    op.create_table(
        "workers",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.Column("stopped_at", sa.DateTime()),
        sa.Column("done", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("status", sa.String(16), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("workers")
    op.drop_index("ix_work_items_claim", table_name="work_items")
    op.drop_table("work_items")
    # plain DROP COLUMN, as 0002 does: a batch copy of runs would trip over the views that read it
    op.drop_column("runs", "executor")
