"""The store's schema version: Alembic migrations shipped in `razzle/server/migrations`.

Every process that opens a store (`razzle serve`, a training run's own store) brings the
database to the newest schema before reading it, inside one write transaction: SQLite's
write lock, or a PostgreSQL advisory lock, makes a second process starting at the same time
wait and then find the work done. A database created before migrations existed (tables,
no version) is recognised by its columns and upgraded; a database whose version this
razzle does not know (written by a newer one) or whose tables are someone else's is
refused with the reason, never read with the wrong columns.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
FIRST_REVISION = "0001"
# PostgreSQL advisory lock key of schema upgrades (any constant; "razzle" in ASCII).
UPGRADE_LOCK = 0x72617A7A6C65
FIRST_SCHEMA_COLUMNS = {
    "iterations": {"id", "run", "iteration", "created_at", "updated_at", "worker"},
    "metric_values": {"iteration_id", "name", "value"},
    "reliability_bins": {"iteration_id", "bin", "mean_value", "mean_outcome", "count"},
    "models": {"id", "run", "version", "iteration", "sha256", "size", "uploaded_at", "worker"},
    "workers": {"name", "first_seen", "last_seen", "posts"},
}


class SchemaError(RuntimeError):
    """A database this version of razzle must not read or change."""


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(connection: Connection, description: str) -> str | None:
    """Bring the database on `connection` (inside an open transaction) to the newest
    schema; returns the revision it had before (None: it was empty)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK})
    config = alembic_config(connection)
    script = ScriptDirectory.from_config(config)
    head = script.get_current_head()
    before = current_revision(connection)
    if before is None:
        if _has_first_schema(connection, description):
            command.stamp(config, FIRST_REVISION)
            before = FIRST_REVISION
    elif before not in {revision.revision for revision in script.walk_revisions()}:
        raise SchemaError(
            f"{description} has schema revision {before!r}, which this razzle does not know "
            f"(its newest is {head!r}): it was written by a newer razzle; upgrade razzle to read it"
        )
    if before != head:
        command.upgrade(config, "head")
        if before is not None:
            log.warning("upgraded the schema of %s from revision %s to %s", description, before, head)
    return before


def _has_first_schema(connection: Connection, description: str) -> bool:
    """True for a database of razzle 0.1 (before migrations), False for an empty one."""
    tables = set(inspect(connection).get_table_names())
    ours = tables & set(FIRST_SCHEMA_COLUMNS)
    if not ours:
        return False
    for table, expected in FIRST_SCHEMA_COLUMNS.items():
        found = {column["name"] for column in inspect(connection).get_columns(table)} if table in ours else set()
        if found != expected:
            raise SchemaError(
                f"{description} has a table {table!r} with columns {sorted(found)}, not those of a razzle "
                f"metrics store ({sorted(expected)}): use another database"
            )
    return True
