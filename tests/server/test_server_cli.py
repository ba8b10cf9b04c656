"""`razzle serve` refuses bad options with one clear message before starting anything."""

from __future__ import annotations

import argparse
import sqlite3

import pytest

from razzle.cli import serve
from razzle.server.store import MetricsStore


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--port", "70000"], "--port must be between 1 and 65535"),
        (["--model", "/no/such/model.pt"], "--model /no/such/model.pt is not a file"),
        (["--db", "nosuchdialect://host/db"], "cannot open the database 'nosuchdialect://host/db'"),
        (["--max-ai-moves", "0"], "--max-ai-moves must be at least 1"),
    ],
)
def test_bad_options_exit_with_a_message(argv, message, capsys):
    assert serve.main(argv) == 2
    assert message in capsys.readouterr().err


def test_the_subcommand_parses_like_python_m_razzle_server(monkeypatch):
    monkeypatch.setenv(serve.TOKEN_ENV, "from-env")
    parser = argparse.ArgumentParser()
    serve.add_parser(parser.add_subparsers())
    args = parser.parse_args(["serve", "--port", "9000", "--db", "runs/metrics.db"])
    assert (args.host, args.port, args.db, args.token, args.func) == (
        "127.0.0.1",
        9000,
        "runs/metrics.db",
        "from-env",
        serve.serve,
    )


def test_a_database_written_by_a_newer_razzle_is_refused(tmp_path, capsys):
    db = tmp_path / "metrics.db"
    MetricsStore(db).close()
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    assert serve.main(["--db", str(db)]) == 2
    error = capsys.readouterr().err
    assert "schema revision '9999'" in error and "upgrade razzle" in error
