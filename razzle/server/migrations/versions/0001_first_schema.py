"""The first schema, as razzle 0.1 created it with `create_all` before migrations existed.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "iterations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run", sa.String(128), nullable=False),
        sa.Column("iteration", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("worker", sa.String(128), nullable=True),
        sa.UniqueConstraint("run", "iteration"),
    )
    op.create_index("ix_iterations_run", "iterations", ["run"])
    op.create_table(
        "metric_values",
        sa.Column("iteration_id", sa.Integer, sa.ForeignKey("iterations.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Float, nullable=False),
    )
    op.create_table(
        "reliability_bins",
        sa.Column("iteration_id", sa.Integer, sa.ForeignKey("iterations.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("bin", sa.Integer, primary_key=True),
        sa.Column("mean_value", sa.Float, nullable=True),
        sa.Column("mean_outcome", sa.Float, nullable=True),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.create_table(
        "models",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run", sa.String(128), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("iteration", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("uploaded_at", sa.Float, nullable=False),
        sa.Column("worker", sa.String(128), nullable=True),
        sa.UniqueConstraint("run", "version"),
    )
    op.create_index("ix_models_run", "models", ["run"])
    op.create_index("ix_models_version", "models", ["version"])
    op.create_table(
        "workers",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("first_seen", sa.Float, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=False),
        sa.Column("posts", sa.Integer, nullable=False),
    )
