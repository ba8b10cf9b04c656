"""Model sizes as 64-bit integers, and an index for "the most recently updated iteration".

`--max-model-mb` allows files over 2 GiB, which overflow PostgreSQL's 32-bit INTEGER
(SQLite's INTEGER is already 64-bit). The dashboard asks for the newest update on every
poll; the index keeps that a lookup instead of a scan of every iteration ever stored.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("models", "size", type_=sa.BigInteger, existing_type=sa.Integer, existing_nullable=False)
    op.create_index("ix_iterations_updated_at", "iterations", ["updated_at"])
