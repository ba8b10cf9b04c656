"""The store's schema versions: an old database is upgraded and read back whole, on SQLite
and PostgreSQL; databases this razzle must not read are refused."""

from __future__ import annotations

import hashlib
import shutil

import pytest
import sqlalchemy
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from razzle.server.schema_version import SchemaError, alembic_config, current_revision, head_revision
from razzle.server.store import Base, MetricsStore
from tests.server.conftest import BOTH_DATABASES

pytestmark = BOTH_DATABASES
T0 = 1_700_000_000.0


def first_schema_database(database, model_file, versioned: bool) -> str:
    """A database as razzle 0.1 left it (revision 0001, or no version table at all, as
    `create_all` made it), holding two iterations, a reliability diagram, a model, a worker."""
    sha256 = hashlib.sha256(model_file.read_bytes()).hexdigest()
    database.models_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(model_file, database.models_dir / f"{sha256}.pt")
    engine = sqlalchemy.create_engine(database.url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0001")
        if not versioned:
            connection.exec_driver_sql("DROP TABLE alembic_version")
        insert = connection.exec_driver_sql
        insert(
            "INSERT INTO iterations (id, run, iteration, created_at, updated_at, worker) VALUES "
            f"(1, 'old', 0, {T0}, {T0}, 'box-1'), (2, 'old', 1, {T0 + 60}, {T0 + 90}, NULL)"
        )
        insert(
            "INSERT INTO metric_values (iteration_id, name, value) VALUES "
            "(1, 'loss_total', 3.5), (1, 'games', 10), (2, 'loss_total', 3.25), (2, 'x_grad_norm', 1.5)"
        )
        bins = ", ".join(
            f"(2, {i}, {-0.9 + 0.2 * i}, {-0.8 + 0.17 * i}, {i})" if i else "(2, 0, NULL, NULL, 0)" for i in range(10)
        )
        insert(f"INSERT INTO reliability_bins (iteration_id, bin, mean_value, mean_outcome, count) VALUES {bins}")
        insert(
            "INSERT INTO models (id, run, version, iteration, sha256, size, uploaded_at, worker) VALUES "
            f"(1, 'old', 'iter_0001', 1, '{sha256}', {model_file.stat().st_size}, {T0 + 95}, 'box-1')"
        )
        insert(f"INSERT INTO workers (name, first_seen, last_seen, posts) VALUES ('box-1', {T0}, {T0 + 95}, 2)")
    engine.dispose()
    return sha256


@pytest.mark.parametrize("versioned", [True, False], ids=["revision-0001", "before-migrations"])
def test_a_first_schema_database_is_upgraded_and_read_back(database, model_file, versioned):
    sha256 = first_schema_database(database, model_file, versioned)
    store = database.store()
    try:
        with store.engine.connect() as connection:
            assert current_revision(connection) == head_revision()
        entries, total = store.list_metrics("old")
        assert total == 2
        assert {k: v for k, v in entries[0].items() if k != "timestamp"} == {
            "run": "old",
            "iteration": 0,
            "worker": "box-1",
            "games": 10.0,
            "loss_total": 3.5,
        }
        assert entries[1]["x_grad_norm"] == 1.5 and entries[1]["reliability"][0] == {
            "mean_value": None,
            "mean_outcome": None,
            "count": 0,
        }
        assert [b["count"] for b in entries[1]["reliability"]] == list(range(10))
        [model] = store.list_models()
        assert (model.version, model.sha256, model.size, model.worker) == (
            "iter_0001",
            sha256,
            model_file.stat().st_size,
            "box-1",
        )
        path, _ = store.model_file("iter_0001")
        assert path.read_bytes() == model_file.read_bytes()
        assert store.workers()[0]["posts"] == 2
        [run] = store.runs()
        assert (run["iterations"], run["games"], run["models"]) == (2, 10, 1)
        # and it keeps working: a new iteration merges beside the old ones
        assert store.record_metrics("old", 2, {"loss_total": 3.0}) is True
        assert store.latest_metrics("old")["iteration"] == 2
    finally:
        store.close()
    assert database.integrity_problems() == []


def test_the_migrated_schema_is_the_one_the_code_expects(database):
    database.store().close()
    engine = sqlalchemy.create_engine(database.url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == []


def test_a_database_of_a_newer_razzle_is_refused(database):
    database.store().close()
    engine = sqlalchemy.create_engine(database.url)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    engine.dispose()
    with pytest.raises(SchemaError, match="schema revision '9999', which this razzle does not know"):
        MetricsStore(database.url, database.models_dir)


def test_someone_elses_tables_are_refused_and_left_alone(database):
    engine = sqlalchemy.create_engine(database.url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE iterations (id INTEGER PRIMARY KEY, label VARCHAR(20))")
    with pytest.raises(SchemaError, match="table 'iterations' with columns \\['id', 'label'\\]"):
        MetricsStore(database.url, database.models_dir)
    with engine.connect() as connection:
        assert sqlalchemy.inspect(connection).get_table_names() == ["iterations"]
    engine.dispose()
