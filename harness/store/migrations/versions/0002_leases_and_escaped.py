"""Run leases (who is working on a run, and when it last said so) and the fields a sample row stored escaped.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("lease_owner", sa.String(200)))
    op.add_column("runs", sa.Column("heartbeat_at", sa.DateTime()))
    op.add_column("samples", sa.Column("escaped", sa.JSON()))


def downgrade() -> None:
    # plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35 has it): a batch copy of the table would trip over the
    # views that read runs and samples
    op.drop_column("samples", "escaped")
    op.drop_column("runs", "heartbeat_at")
    op.drop_column("runs", "lease_owner")
